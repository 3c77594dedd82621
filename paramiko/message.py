"""``Message``: build and parse SSH wire-format data (RFC 4251 section 5)."""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Iterable, List, Optional, Union

from paramiko.ssh_exception import SSHException

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class MessageDecodeError(SSHException):
    """The bytes do not hold the field being read (truncated or malformed message)."""


def _mpint(n: int) -> bytes:
    """Two's-complement big-endian bytes of ``n`` with the minimal sign-correct length."""
    if n == 0:
        return b""
    length = (n.bit_length() + 8) // 8  # one spare bit for the sign
    raw = n.to_bytes(length, "big", signed=True)
    # Drop redundant leading 0x00/0xff bytes while keeping the sign bit right.
    while len(raw) > 1 and (
        (raw[0] == 0 and raw[1] < 0x80) or (raw[0] == 0xFF and raw[1] >= 0x80)
    ):
        raw = raw[1:]
    return raw


class Message:
    """A growable SSH message for writing, or a cursor over received bytes for reading.

    Reading past the end raises :class:`MessageDecodeError` (an ``SSHException``), so a
    truncated or hostile packet can never crash a parser with a foreign exception.
    """

    big_int = 0xFF000000

    def __init__(self, content: Optional[bytes] = None) -> None:
        if content is not None:
            self.packet = BytesIO(bytes(content))
        else:
            self.packet = BytesIO()

    def __bytes__(self) -> bytes:
        return self.asbytes()

    def __repr__(self) -> str:
        return f"paramiko.Message({self.asbytes()!r})"

    def asbytes(self) -> bytes:
        return self.packet.getvalue()

    def rewind(self) -> None:
        self.packet.seek(0)

    def get_remainder(self) -> bytes:
        pos = self.packet.tell()
        return self.asbytes()[pos:]

    def get_so_far(self) -> bytes:
        pos = self.packet.tell()
        self.rewind()
        return self.packet.read(pos)

    # -- reading -------------------------------------------------------------------------
    def _take(self, n: int) -> bytes:
        b = self.packet.read(n)
        if len(b) < n:
            raise MessageDecodeError(f"message truncated: wanted {n} bytes, had {len(b)}")
        return b

    def get_bytes(self, n: int) -> bytes:
        """Exactly ``n`` raw bytes (upstream pads with zeros; we refuse truncation)."""
        if n < 0:
            raise MessageDecodeError("negative length")
        return self._take(n)

    def get_byte(self) -> bytes:
        return self._take(1)

    def get_boolean(self) -> bool:
        return self._take(1) != b"\x00"

    def get_adaptive_int(self) -> int:
        byte = self._take(1)
        if byte[0] == 0xFF:
            return int.from_bytes(self._take(8), "big")
        return _U32.unpack(byte + self._take(3))[0]

    def get_int(self) -> int:
        return _U32.unpack(self._take(4))[0]

    def get_int64(self) -> int:
        return _U64.unpack(self._take(8))[0]

    def get_mpint(self) -> int:
        return int.from_bytes(self.get_binary(), "big", signed=True)

    def get_string(self) -> bytes:
        """An SSH ``string``: uint32 length then that many bytes."""
        return self._take(self.get_int())

    def get_text(self) -> str:
        return self.get_string().decode("utf-8", "replace")

    def get_binary(self) -> bytes:
        return self.get_string()

    def get_list(self) -> List[str]:
        text = self.get_text()
        return text.split(",") if text else []

    # -- writing -------------------------------------------------------------------------
    def add_bytes(self, b: bytes) -> Message:
        self.packet.write(b)
        return self

    def add_byte(self, b: bytes) -> Message:
        self.packet.write(b)
        return self

    def add_boolean(self, b: bool) -> Message:
        self.packet.write(b"\x01" if b else b"\x00")
        return self

    def add_int(self, n: int) -> Message:
        self.packet.write(_U32.pack(n))
        return self

    def add_adaptive_int(self, n: int) -> Message:
        if n >= Message.big_int:
            self.packet.write(b"\xff")
            self.packet.write(n.to_bytes(8, "big"))
        else:
            self.packet.write(_U32.pack(n))
        return self

    def add_int64(self, n: int) -> Message:
        self.packet.write(_U64.pack(n))
        return self

    def add_mpint(self, z: int) -> Message:
        self.add_string(_mpint(z))
        return self

    def add_string(self, s: Union[str, bytes]) -> Message:
        if isinstance(s, str):
            s = s.encode("utf-8")
        elif not isinstance(s, (bytes, bytearray, memoryview)):
            s = s.asbytes()
        self.packet.write(_U32.pack(len(s)))
        self.packet.write(s)
        return self

    def add_list(self, items: Iterable[str]) -> Message:
        self.add_string(",".join(items))
        return self

    def _add(self, i) -> Message:
        if isinstance(i, bool):
            return self.add_boolean(i)
        if isinstance(i, int):
            return self.add_int(i)
        if isinstance(i, (list, tuple)):
            return self.add_list(i)
        return self.add_string(i)

    def add(self, *seq) -> Message:
        """Add each value by type: bool, int (uint32), list (name-list), else string."""
        for item in seq:
            self._add(item)
        return self
