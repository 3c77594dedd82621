"""``SFTPAttributes``: the SFTP v3 ATTRS structure, shaped like an ``os.stat_result``.

Wire layout (draft-ietf-secsh-filexfer-02 section 5)::

    uint32  flags
    uint64  size             if flags & FLAG_SIZE
    uint32  uid, gid         if flags & FLAG_UIDGID
    uint32  permissions      if flags & FLAG_PERMISSIONS
    uint32  atime, mtime     if flags & FLAG_AMTIME
    uint32  extended_count   if flags & FLAG_EXTENDED, then that many
    string  type, string data pairs
"""

from __future__ import annotations

import stat as _stat
import time
from typing import Any, Dict, Optional, Union

from paramiko.message import Message

_U32_MASK = 0xFFFFFFFF
_U64_MASK = 0xFFFFFFFFFFFFFFFF
_SIX_MONTHS = 365 * 24 * 60 * 60 // 2


def _as_text(value: Union[str, bytes, None]) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    return bytes(value).decode("utf-8", "replace")


class SFTPAttributes:
    """File attributes as carried by SFTP; every ``st_*`` field may be ``None`` (absent).

    ``attr`` holds extended attributes (name -> value).  ``filename`` and ``longname``
    are filled in for directory-listing entries.
    """

    FLAG_SIZE = 1
    FLAG_UIDGID = 2
    FLAG_PERMISSIONS = 4
    FLAG_AMTIME = 8
    FLAG_ACMODTIME = FLAG_AMTIME
    FLAG_EXTENDED = 0x80000000

    def __init__(self) -> None:
        self._flags = 0
        self.st_size: Optional[int] = None
        self.st_uid: Optional[int] = None
        self.st_gid: Optional[int] = None
        self.st_mode: Optional[int] = None
        self.st_atime: Optional[Union[int, float]] = None
        self.st_mtime: Optional[Union[int, float]] = None
        self.attr: Dict[Any, Any] = {}
        self.filename: Optional[str] = None
        self.longname: Optional[str] = None

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_stat(cls, obj: Any, filename: Optional[str] = None) -> SFTPAttributes:
        """Build from an ``os.stat_result`` (or anything with the same ``st_*`` fields)."""
        attr = cls()
        attr.st_size = obj.st_size
        attr.st_uid = obj.st_uid
        attr.st_gid = obj.st_gid
        attr.st_mode = obj.st_mode
        attr.st_atime = obj.st_atime
        attr.st_mtime = obj.st_mtime
        if filename is not None:
            attr.filename = filename
        return attr

    @classmethod
    def _from_msg(
        cls,
        msg: Message,
        filename: Union[str, bytes, None] = None,
        longname: Union[str, bytes, None] = None,
    ) -> SFTPAttributes:
        """Decode an ATTRS structure from ``msg`` (raises ``MessageDecodeError`` if short)."""
        attr = cls()
        attr._unpack(msg)
        if filename is not None:
            attr.filename = _as_text(filename)
        if longname is not None:
            attr.longname = _as_text(longname)
        return attr

    # -- wire format ----------------------------------------------------------------------
    def _unpack(self, msg: Message) -> None:
        self._flags = flags = msg.get_int()
        if flags & self.FLAG_SIZE:
            self.st_size = msg.get_int64()
        if flags & self.FLAG_UIDGID:
            self.st_uid = msg.get_int()
            self.st_gid = msg.get_int()
        if flags & self.FLAG_PERMISSIONS:
            self.st_mode = msg.get_int()
        if flags & self.FLAG_AMTIME:
            self.st_atime = msg.get_int()
            self.st_mtime = msg.get_int()
        if flags & self.FLAG_EXTENDED:
            count = msg.get_int()
            for _ in range(count):
                name = msg.get_string().decode("utf-8", "replace")
                self.attr[name] = msg.get_string()

    def _compute_flags(self) -> int:
        flags = 0
        if self.st_size is not None:
            flags |= self.FLAG_SIZE
        if self.st_uid is not None and self.st_gid is not None:
            flags |= self.FLAG_UIDGID
        if self.st_mode is not None:
            flags |= self.FLAG_PERMISSIONS
        if self.st_atime is not None and self.st_mtime is not None:
            flags |= self.FLAG_AMTIME
        if self.attr:
            flags |= self.FLAG_EXTENDED
        return flags

    def _pack(self, msg: Message) -> Message:
        """Append this ATTRS structure to ``msg`` (values are coerced to wire widths)."""
        self._flags = flags = self._compute_flags()
        msg.add_int(flags)
        if flags & self.FLAG_SIZE:
            msg.add_int64(int(self.st_size) & _U64_MASK)  # type: ignore[arg-type]
        if flags & self.FLAG_UIDGID:
            msg.add_int(int(self.st_uid) & _U32_MASK)  # type: ignore[arg-type]
            msg.add_int(int(self.st_gid) & _U32_MASK)  # type: ignore[arg-type]
        if flags & self.FLAG_PERMISSIONS:
            msg.add_int(int(self.st_mode) & _U32_MASK)  # type: ignore[arg-type]
        if flags & self.FLAG_AMTIME:
            msg.add_int(int(self.st_atime) & _U32_MASK)  # type: ignore[arg-type]
            msg.add_int(int(self.st_mtime) & _U32_MASK)  # type: ignore[arg-type]
        if flags & self.FLAG_EXTENDED:
            msg.add_int(len(self.attr))
            for key, val in self.attr.items():
                msg.add_string(key if isinstance(key, (str, bytes)) else str(key))
                msg.add_string(val if isinstance(val, (str, bytes)) else str(val))
        return msg

    # -- presentation ---------------------------------------------------------------------
    def _debug_str(self) -> str:
        parts = []
        if self.st_size is not None:
            parts.append(f"size={self.st_size}")
        if self.st_uid is not None and self.st_gid is not None:
            parts.append(f"uid={self.st_uid} gid={self.st_gid}")
        if self.st_mode is not None:
            parts.append(f"mode={oct(self.st_mode)}")
        if self.st_atime is not None and self.st_mtime is not None:
            parts.append(f"atime={self.st_atime} mtime={self.st_mtime}")
        for key, val in self.attr.items():
            parts.append(f"{key!r}={val!r}")
        return "[ " + " ".join(parts) + " ]"

    def __repr__(self) -> str:
        return f"<SFTPAttributes: {self._debug_str()}>"

    @staticmethod
    def _rwx(n: int, suid: int, sticky: bool = False) -> str:
        """Three ``ls`` permission characters for the 3-bit group ``n``."""
        out = "r" if n & 4 else "-"
        out += "w" if n & 2 else "-"
        execute = bool(n & 1)
        if suid:
            if sticky:
                out += "t" if execute else "T"
            else:
                out += "s" if execute else "S"
        else:
            out += "x" if execute else "-"
        return out

    def _mode_string(self) -> str:
        mode = self.st_mode
        if mode is None:
            return "?---------"
        kind = _stat.S_IFMT(mode)
        type_char = {
            _stat.S_IFREG: "-",
            _stat.S_IFDIR: "d",
            _stat.S_IFLNK: "l",
            _stat.S_IFCHR: "c",
            _stat.S_IFBLK: "b",
            _stat.S_IFIFO: "p",
            _stat.S_IFSOCK: "s",
        }.get(kind, "?")
        return (
            type_char
            + self._rwx((mode >> 6) & 7, mode & _stat.S_ISUID)
            + self._rwx((mode >> 3) & 7, mode & _stat.S_ISGID)
            + self._rwx(mode & 7, mode & _stat.S_ISVTX, sticky=True)
        )

    def _date_string(self) -> str:
        if self.st_mtime is None:
            return "(unknown date)"
        try:
            mtime = int(self.st_mtime)
            tm = time.localtime(mtime)
            now = time.time()
            if mtime > now or now - mtime > _SIX_MONTHS:
                return time.strftime("%b %e  %Y", tm)
            return time.strftime("%b %e %H:%M", tm)
        except (OverflowError, OSError, ValueError):
            return "(unknown date)"

    def __str__(self) -> str:
        """An ``ls -l`` style line, laid out like OpenSSH's sftp long listing."""
        uid = "0" if self.st_uid is None else str(self.st_uid)
        gid = "0" if self.st_gid is None else str(self.st_gid)
        size = 0 if self.st_size is None else self.st_size
        name = self.filename if self.filename is not None else "?"
        mode, date = self._mode_string(), self._date_string()
        return f"{mode} {1:>3} {uid:<8} {gid:<8} {size:>8} {date} {name}"

    def asbytes(self) -> bytes:
        return str(self).encode("utf-8")


__all__ = ["SFTPAttributes"]
