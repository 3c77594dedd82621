"""SFTP version 3 wire constants and the packet framing shared by client and server.

Protocol facts follow draft-ietf-secsh-filexfer-02 plus the OpenSSH extensions
described in OpenSSH's ``PROTOCOL`` file (section 4).  Every SFTP packet is::

    uint32  length        (of everything that follows)
    byte    type
    ...     body          (normally: uint32 request-id, then fields)

:class:`BaseSFTP` owns the framing for both ends: ``_send_packet`` writes one whole
packet atomically (a lock serialises concurrent senders) and ``_read_packet`` returns
``(type, body)`` or raises :class:`EOFError` (peer closed) / :class:`SFTPError`
(malformed or oversized frame).  No other exception type is produced by the framing
itself, except a ``socket.timeout`` coming from a socket whose timeout was set.
"""

from __future__ import annotations

import struct
import threading
from typing import Any, Dict, List, Optional, Tuple, Union

from paramiko.common import DEBUG
from paramiko.message import Message, MessageDecodeError
from paramiko.util import get_logger

# -- packet types ---------------------------------------------------------------------
CMD_INIT = 1
CMD_VERSION = 2
CMD_OPEN = 3
CMD_CLOSE = 4
CMD_READ = 5
CMD_WRITE = 6
CMD_LSTAT = 7
CMD_FSTAT = 8
CMD_SETSTAT = 9
CMD_FSETSTAT = 10
CMD_OPENDIR = 11
CMD_READDIR = 12
CMD_REMOVE = 13
CMD_MKDIR = 14
CMD_RMDIR = 15
CMD_REALPATH = 16
CMD_STAT = 17
CMD_RENAME = 18
CMD_READLINK = 19
CMD_SYMLINK = 20
CMD_STATUS = 101
CMD_HANDLE = 102
CMD_DATA = 103
CMD_NAME = 104
CMD_ATTRS = 105
CMD_EXTENDED = 200
CMD_EXTENDED_REPLY = 201

CMD_NAMES: Dict[int, str] = {
    CMD_INIT: "init",
    CMD_VERSION: "version",
    CMD_OPEN: "open",
    CMD_CLOSE: "close",
    CMD_READ: "read",
    CMD_WRITE: "write",
    CMD_LSTAT: "lstat",
    CMD_FSTAT: "fstat",
    CMD_SETSTAT: "setstat",
    CMD_FSETSTAT: "fsetstat",
    CMD_OPENDIR: "opendir",
    CMD_READDIR: "readdir",
    CMD_REMOVE: "remove",
    CMD_MKDIR: "mkdir",
    CMD_RMDIR: "rmdir",
    CMD_REALPATH: "realpath",
    CMD_STAT: "stat",
    CMD_RENAME: "rename",
    CMD_READLINK: "readlink",
    CMD_SYMLINK: "symlink",
    CMD_STATUS: "status",
    CMD_HANDLE: "handle",
    CMD_DATA: "data",
    CMD_NAME: "name",
    CMD_ATTRS: "attrs",
    CMD_EXTENDED: "extended",
    CMD_EXTENDED_REPLY: "extended_reply",
}

# -- status codes (SSH_FXP_STATUS) ------------------------------------------------------
SFTP_OK = 0
SFTP_EOF = 1
SFTP_NO_SUCH_FILE = 2
SFTP_PERMISSION_DENIED = 3
SFTP_FAILURE = 4
SFTP_BAD_MESSAGE = 5
SFTP_NO_CONNECTION = 6
SFTP_CONNECTION_LOST = 7
SFTP_OP_UNSUPPORTED = 8

SFTP_DESC: List[str] = [
    "Success",
    "End of file",
    "No such file",
    "Permission denied",
    "Failure",
    "Bad message",
    "No connection",
    "Connection lost",
    "Operation unsupported",
]

# -- SSH_FXP_OPEN pflags ------------------------------------------------------------------
SFTP_FLAG_READ = 0x01
SFTP_FLAG_WRITE = 0x02
SFTP_FLAG_APPEND = 0x04
SFTP_FLAG_CREATE = 0x08
SFTP_FLAG_CREAT = SFTP_FLAG_CREATE  # the draft's spelling
SFTP_FLAG_TRUNC = 0x10
SFTP_FLAG_EXCL = 0x20

# -- statvfs f_flag bits ------------------------------------------------------------------
SFTP_STATVFS_ST_RDONLY = 0x1
SFTP_STATVFS_ST_NOSUID = 0x2

_VERSION = 3
SFTP_VERSION = _VERSION

# OpenSSH's own limit on a whole SFTP packet (its client refuses larger ones).
SFTP_MAX_PACKET_LENGTH = 256 * 1024

_U32 = struct.Struct(">I")


def _status_text(code: int) -> str:
    if 0 <= code < len(SFTP_DESC):
        return SFTP_DESC[code]
    return f"Unknown status {code}"


class SFTPError(Exception):
    """An SFTP protocol-level failure (bad framing, unexpected reply, version mismatch)."""


class BaseSFTP:
    """Packet framing over a channel-like ``sock`` (``sendall``/``send`` and ``recv``).

    Subclasses must call ``BaseSFTP.__init__`` and then set ``self.sock``.
    ``max_packet_length`` bounds the size of an incoming frame (``length`` field).
    """

    max_packet_length: int = SFTP_MAX_PACKET_LENGTH

    def __init__(self) -> None:
        self.logger = get_logger("paramiko.sftp")
        self.sock: Any = None
        self.ultra_debug = False
        #: extensions the peer announced in its VERSION packet: name -> version bytes
        self.extensions: Dict[str, bytes] = {}
        self._send_lock = threading.Lock()

    # -- logging ------------------------------------------------------------------------
    def _log(self, level: int, msg: Union[str, List[str]], *args: Any) -> None:
        if isinstance(msg, list):
            for line in msg:
                self._log(level, line, *args)
            return
        self.logger.log(level, msg, *args)

    # -- raw I/O --------------------------------------------------------------------------
    def _write_all(self, out: bytes) -> None:
        sock = self.sock
        if sock is None:
            raise EOFError("SFTP session has no channel")
        sendall = getattr(sock, "sendall", None)
        try:
            if sendall is not None:
                sendall(out)
                return
            view = memoryview(out)
            while view:
                n = sock.send(view)
                if n <= 0:
                    raise EOFError("SFTP channel closed while sending")
                view = view[n:]
        except EOFError:
            raise
        except OSError as exc:
            # A closed channel shows up as OSError("Socket is closed") or similar.
            if isinstance(exc, TimeoutError):
                raise
            raise EOFError(f"SFTP channel closed while sending: {exc}") from exc

    def _read_all(self, n: int) -> bytes:
        sock = self.sock
        if sock is None:
            raise EOFError("SFTP session has no channel")
        chunks: List[bytes] = []
        remaining = n
        while remaining > 0:
            try:
                data = sock.recv(min(remaining, 65536))
            except (TimeoutError, BlockingIOError):
                raise
            except OSError as exc:
                raise EOFError(f"SFTP channel error while reading: {exc}") from exc
            if not data:
                raise EOFError("SFTP channel closed by peer")
            chunks.append(bytes(data))
            remaining -= len(data)
        return b"".join(chunks)

    # -- framing -------------------------------------------------------------------------
    def _send_packet(self, t: int, packet: Union[Message, bytes, bytearray]) -> None:
        """Send one SFTP packet of type ``t`` whose body is ``packet``."""
        if isinstance(packet, Message):
            body = packet.asbytes()
        else:
            body = bytes(packet)
        frame = _U32.pack(len(body) + 1) + bytes((t & 0xFF,)) + body
        if self.ultra_debug:
            self._log(DEBUG, "out packet %s (%d bytes)", CMD_NAMES.get(t, t), len(body))
        with self._send_lock:
            self._write_all(frame)

    def _read_packet(self) -> Tuple[int, bytes]:
        """Read one SFTP packet and return ``(type, body)``.

        Raises ``EOFError`` if the peer closed the stream (also mid-packet) and
        ``SFTPError`` for a zero-length or oversized frame.
        """
        header = self._read_all(4)
        (size,) = _U32.unpack(header)
        if size == 0:
            raise SFTPError("Malformed SFTP packet: zero length")
        if size > self.max_packet_length:
            raise SFTPError(
                f"SFTP packet too long: {size} bytes (limit {self.max_packet_length})"
            )
        data = self._read_all(size)
        t = data[0]
        if self.ultra_debug:
            self._log(DEBUG, "in packet %s (%d bytes)", CMD_NAMES.get(t, t), size - 1)
        return t, data[1:]

    # -- version exchange ---------------------------------------------------------------
    def _send_version(self) -> int:
        """Client side: send INIT(3), read VERSION, record the server's extensions."""
        self._send_packet(CMD_INIT, _U32.pack(_VERSION))
        t, data = self._read_packet()
        if t != CMD_VERSION:
            raise SFTPError(f"Incompatible sftp protocol: expected VERSION, got type {t}")
        msg = Message(data)
        try:
            version = msg.get_int()
            self.extensions = _parse_extension_pairs(msg)
        except MessageDecodeError as exc:
            raise SFTPError(f"Malformed SFTP VERSION packet: {exc}") from exc
        return version

    def _send_server_version(
        self, extensions: Optional[List[Tuple[str, str]]] = None
    ) -> int:
        """Server side: read INIT, answer VERSION(3) listing ``extensions``.

        Returns the version the client asked for.
        """
        t, data = self._read_packet()
        if t != CMD_INIT:
            raise SFTPError(f"Incompatible sftp protocol: expected INIT, got type {t}")
        msg = Message(data)
        try:
            version = msg.get_int()
            # A v3 INIT carries no extension data, but tolerate (and record) any.
            self.extensions = _parse_extension_pairs(msg)
        except MessageDecodeError as exc:
            raise SFTPError(f"Malformed SFTP INIT packet: {exc}") from exc
        reply = Message()
        reply.add_int(_VERSION)
        for name, ver in extensions or []:
            reply.add_string(name)
            reply.add_string(ver)
        self._send_packet(CMD_VERSION, reply)
        return version


def _parse_extension_pairs(msg: Message) -> Dict[str, bytes]:
    out: Dict[str, bytes] = {}
    while msg.get_remainder():
        name = msg.get_string().decode("utf-8", "replace")
        out[name] = msg.get_string()
    return out


__all__ = [
    name for name in dir() if name.isupper() and not name.startswith("_") and name != "DEBUG"
] + [
    "BaseSFTP",
    "SFTPError",
]
