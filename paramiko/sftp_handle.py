"""``SFTPHandle``: one open file (or directory listing) on the SFTP server side.

A server implementation returns an ``SFTPHandle`` (usually a subclass) from
``SFTPServerInterface.open``.  The simplest subclass only sets ``readfile`` and/or
``writefile`` to Python file objects; the default ``read``/``write``/``close`` then work
on those.  Subclasses may instead override ``read``, ``write``, ``stat``, ``chattr``,
``close`` and, optionally, ``sync`` (fsync@openssh.com) and ``statvfs``
(fstatvfs@openssh.com).

Methods return data/attributes on success and an ``SFTP_*`` status code on failure;
they may also raise ``OSError``, which the server turns into a status reply.
"""

from __future__ import annotations

import os
import threading
from typing import Any, List, Optional, Union

from paramiko.sftp import SFTP_FLAG_APPEND, SFTP_OK, SFTP_OP_UNSUPPORTED
from paramiko.sftp_attr import SFTPAttributes
from paramiko.util import ClosingContextManager


class SFTPHandle(ClosingContextManager):
    """Server-side state of one client handle.  ``flags`` are the SFTP open flags."""

    def __init__(self, flags: int = 0) -> None:
        self.__flags = flags
        self.__name: Optional[str] = None
        self.__files: List[SFTPAttributes] = []
        self.__tell: Optional[int] = None
        self.__lock = threading.Lock()
        #: file objects used by the default ``read``/``write``/``close``
        self.readfile: Any = None
        self.writefile: Any = None

    # -- file operations -------------------------------------------------------------------
    def close(self) -> None:
        """Release the handle (the default closes ``readfile`` and ``writefile``)."""
        readfile = getattr(self, "readfile", None)
        writefile = getattr(self, "writefile", None)
        if readfile is not None:
            readfile.close()
        if writefile is not None and writefile is not readfile:
            writefile.close()

    def read(self, offset: int, length: int) -> Union[bytes, int]:
        """Up to ``length`` bytes at ``offset``; ``b""`` at end of file, or a status code."""
        readfile = getattr(self, "readfile", None)
        if readfile is None:
            return SFTP_OP_UNSUPPORTED
        with self.__lock:
            if self.__tell != offset:
                readfile.seek(offset)
                self.__tell = offset
            data = readfile.read(length)
            self.__tell = offset + len(data)
        return data

    def write(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` (appending if opened with APPEND); a status code."""
        writefile = getattr(self, "writefile", None)
        if writefile is None:
            return SFTP_OP_UNSUPPORTED
        with self.__lock:
            if self.__flags & SFTP_FLAG_APPEND:
                # Append mode ignores the offset (and the stream position is unknown).
                self.__tell = None
            elif self.__tell != offset:
                writefile.seek(offset)
                self.__tell = offset
            writefile.write(data)
            writefile.flush()
            if self.__tell is not None:
                self.__tell += len(data)
        return SFTP_OK

    def stat(self) -> Union[SFTPAttributes, int]:
        """Attributes of the open file (FSTAT), or a status code."""
        return SFTP_OP_UNSUPPORTED

    def chattr(self, attr: SFTPAttributes) -> int:
        """Change attributes of the open file (FSETSTAT); a status code."""
        return SFTP_OP_UNSUPPORTED

    def sync(self) -> int:
        """Flush the file to stable storage (fsync@openssh.com); a status code."""
        target = getattr(self, "writefile", None) or getattr(self, "readfile", None)
        fileno = getattr(target, "fileno", None)
        if fileno is None:
            return SFTP_OP_UNSUPPORTED
        flush = getattr(target, "flush", None)
        if flush is not None:
            flush()
        os.fsync(fileno())
        return SFTP_OK

    def statvfs(self) -> Union[Any, int]:
        """``os.statvfs_result`` of the file's file system (fstatvfs@openssh.com)."""
        target = getattr(self, "readfile", None) or getattr(self, "writefile", None)
        fileno = getattr(target, "fileno", None)
        if fileno is None:
            return SFTP_OP_UNSUPPORTED
        return os.fstatvfs(fileno())

    # -- bookkeeping used by the server -----------------------------------------------------
    def _set_files(self, files: List[SFTPAttributes]) -> None:
        """Remember a directory listing for READDIR."""
        self.__files = list(files)

    def _get_next_files(self, limit: int = 100) -> List[SFTPAttributes]:
        """Take up to ``limit`` listing entries (an empty list means the listing is done)."""
        batch = self.__files[:limit]
        self.__files = self.__files[limit:]
        return batch

    def _push_back_files(self, files: List[SFTPAttributes]) -> None:
        """Return unsent entries to the front of the listing."""
        self.__files = list(files) + self.__files

    def _set_name(self, name: str) -> None:
        self.__name = name

    def _get_name(self) -> Optional[str]:
        return self.__name

    def _get_flags(self) -> int:
        return self.__flags


__all__ = ["SFTPHandle"]
