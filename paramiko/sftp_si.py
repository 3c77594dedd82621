"""``SFTPServerInterface``: the policy/storage object an ``SFTPServer`` delegates to.

Subclass it and override the operations you support.  Each method returns its result
(an ``SFTPHandle``, ``SFTPAttributes``, a list, a string) on success or an ``SFTP_*``
status code on failure.  Raising ``OSError`` is also accepted: the server maps its errno
to a status code and sends the error text.  Paths arrive as ``str`` exactly as the client
sent them (decoded as UTF-8 with ``surrogateescape``); relative paths are relative to
the session's starting directory, which ``canonicalize(".")`` names.

Unoverridden operations answer ``SFTP_OP_UNSUPPORTED``.  The optional OpenSSH
extensions (``posix_rename``, ``statvfs``, ``link``, ``lchattr``) are only announced
to clients when a subclass overrides them.
"""

from __future__ import annotations

import posixpath
from typing import Any, List, Union

from paramiko.sftp import SFTP_NO_SUCH_FILE, SFTP_OP_UNSUPPORTED
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_handle import SFTPHandle


class SFTPServerInterface:
    """Backend for an SFTP server; one instance is created per SFTP session."""

    def __init__(self, server: Any, *args: Any, **kwargs: Any) -> None:
        # ``server`` is the ServerInterface of the SSH connection.
        self.server = server

    # -- session ---------------------------------------------------------------------------
    def session_started(self) -> None:
        """Called once when the client's INIT has been answered."""

    def session_ended(self) -> None:
        """Called once when the session ends (open handles have been closed)."""

    # -- files -------------------------------------------------------------------------------
    def open(self, path: str, flags: int, attr: SFTPAttributes) -> Union[SFTPHandle, int]:
        """Open ``path`` with SFTP open ``flags`` (SFTP_FLAG_*); ``attr`` applies on create."""
        return SFTP_OP_UNSUPPORTED

    def list_folder(self, path: str) -> Union[List[SFTPAttributes], int]:
        """Entries of a directory, each ``SFTPAttributes`` with ``filename`` set."""
        return SFTP_OP_UNSUPPORTED

    def stat(self, path: str) -> Union[SFTPAttributes, int]:
        """Attributes of ``path``, following symlinks."""
        return SFTP_OP_UNSUPPORTED

    def lstat(self, path: str) -> Union[SFTPAttributes, int]:
        """Attributes of ``path`` itself (a symlink is not followed)."""
        return SFTP_OP_UNSUPPORTED

    def remove(self, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def rename(self, oldpath: str, newpath: str) -> int:
        """SFTP v3 rename: must fail if ``newpath`` exists."""
        return SFTP_OP_UNSUPPORTED

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        """POSIX rename (replaces ``newpath``): posix-rename@openssh.com."""
        return SFTP_OP_UNSUPPORTED

    def mkdir(self, path: str, attr: SFTPAttributes) -> int:
        return SFTP_OP_UNSUPPORTED

    def rmdir(self, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def chattr(self, path: str, attr: SFTPAttributes) -> int:
        """SETSTAT: change the attributes present in ``attr`` (following symlinks)."""
        return SFTP_OP_UNSUPPORTED

    def canonicalize(self, path: str) -> Union[str, int]:
        """REALPATH: an absolute, normalised form of ``path``."""
        if posixpath.isabs(path):
            out = posixpath.normpath(path)
        else:
            out = posixpath.normpath("/" + path)
        # normpath keeps a leading "//"; the SFTP namespace has one root.
        if out.startswith("//"):
            out = "/" + out.lstrip("/")
        return out

    def readlink(self, path: str) -> Union[str, int]:
        """The target text of the symlink ``path``."""
        return SFTP_OP_UNSUPPORTED

    def symlink(self, target_path: str, path: str) -> int:
        """Create a symlink at ``path`` pointing to ``target_path``."""
        return SFTP_OP_UNSUPPORTED

    # -- OpenSSH extensions (optional) ----------------------------------------------------------
    def lchattr(self, path: str, attr: SFTPAttributes) -> int:
        """lsetstat@openssh.com: like ``chattr`` without following a final symlink."""
        return SFTP_OP_UNSUPPORTED

    def link(self, oldpath: str, newpath: str) -> int:
        """hardlink@openssh.com: create ``newpath`` as a hard link to ``oldpath``."""
        return SFTP_OP_UNSUPPORTED

    def statvfs(self, path: str) -> Union[Any, int]:
        """statvfs@openssh.com: an ``os.statvfs_result``-like object for ``path``."""
        return SFTP_OP_UNSUPPORTED

    def home_directory(self, username: str) -> Union[str, int]:
        """home-directory: the home of ``username`` ("" means the session user)."""
        if username:
            return SFTP_NO_SUCH_FILE
        result = self.canonicalize(".")
        return result

    def expand_path(self, path: str) -> Union[str, int]:
        """expand-path@openssh.com: expand ``~`` / ``~/...`` then ``canonicalize``."""
        if path == "~" or path.startswith("~/"):
            home = self.home_directory("")
            if isinstance(home, int):
                return home
            rest = path[2:]
            path = posixpath.join(home, rest) if rest else home
        elif path.startswith("~"):
            user, _, rest = path[1:].partition("/")
            home = self.home_directory(user)
            if isinstance(home, int):
                return home
            path = posixpath.join(home, rest) if rest else home
        return self.canonicalize(path)


__all__ = ["SFTPServerInterface"]
