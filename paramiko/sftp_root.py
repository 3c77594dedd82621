"""``LocalDirSFTP``: a ready-made SFTP backend serving one local directory as ``/``.

Usage::

    transport.set_subsystem_handler("sftp", SFTPServer, LocalDirSFTP, root="/srv/files")

Containment rules (nothing outside ``root`` is ever read, written, listed or changed):

* Client paths live in a virtual namespace whose ``/`` is ``root``.  They are normalised
  lexically first, so ``..`` can never climb above ``/`` (``/../etc`` is ``/etc`` *inside*
  the root, which normally does not exist).
* The host path is then resolved with ``os.path.realpath``; if the result (all symlinks
  followed) is not ``root`` or below it, the request fails with PERMISSION_DENIED.  This
  covers symlinks inside the root that point outside, however they were created.
* To close the window between that check and the actual operation, the resolved path is
  walked component by component from a directory descriptor of ``root``, each step
  opened with ``O_NOFOLLOW``; the final operation uses ``*at`` calls relative to the
  parent descriptor and never follows a final symlink.  A symlink swapped in after the
  check therefore makes the request fail (``ELOOP``/``ENOTDIR``) instead of escaping.
* New symlinks get their target checked: an absolute target means a path in the virtual
  namespace (stored as the matching host path, shown back as the virtual one by
  ``readlink``); a relative target that resolves outside the root is refused.
* Only regular files can be opened, so a FIFO or device node cannot stall the server.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as _stat
from typing import Any, List, Optional, Union

from paramiko.sftp import (
    SFTP_FLAG_APPEND,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_EXCL,
    SFTP_FLAG_READ,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
    SFTP_OK,
)
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_handle import SFTPHandle
from paramiko.sftp_si import SFTPServerInterface

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
# O_PATH descriptors need only search permission and work as dir_fd (Linux).
_O_PATH = getattr(os, "O_PATH", 0)
_DIR_OPEN_FLAGS = (_O_PATH or os.O_RDONLY) | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
_PROC_FD = "/proc/self/fd"


def _escape_error() -> PermissionError:
    return PermissionError(errno.EACCES, "Permission denied (path escapes the served root)")


class _Target:
    """A resolved request path: ``name`` inside the directory open as ``dir_fd``."""

    __slots__ = ("dir_fd", "name", "real", "virtual")

    def __init__(self, dir_fd: int, name: str, real: str, virtual: str) -> None:
        self.dir_fd = dir_fd
        self.name = name
        self.real = real
        self.virtual = virtual

    def close(self) -> None:
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1

    def __enter__(self) -> _Target:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalFileHandle(SFTPHandle):
    """An open regular file of a ``LocalDirSFTP`` session (positional I/O on one fd)."""

    def __init__(self, fd: int, flags: int = 0, path: str = "") -> None:
        super().__init__(flags)
        self.fd = fd
        self.path = path
        self._append = bool(flags & SFTP_FLAG_APPEND)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def read(self, offset: int, length: int) -> Union[bytes, int]:
        return os.pread(self.fd, length, offset)

    def write(self, offset: int, data: bytes) -> int:
        view = memoryview(data)
        while view:
            if self._append:
                n = os.write(self.fd, view)
            else:
                n = os.pwrite(self.fd, view, offset)
                offset += n
            if n <= 0:
                raise OSError(errno.EIO, "short write")
            view = view[n:]
        return SFTP_OK

    def stat(self) -> Union[SFTPAttributes, int]:
        return SFTPAttributes.from_stat(os.fstat(self.fd))

    def chattr(self, attr: SFTPAttributes) -> int:
        if attr.st_size is not None:
            os.ftruncate(self.fd, attr.st_size)
        if attr.st_uid is not None and attr.st_gid is not None:
            os.fchown(self.fd, attr.st_uid, attr.st_gid)
        if attr.st_mode is not None:
            os.fchmod(self.fd, attr.st_mode & 0o7777)
        if attr.st_atime is not None and attr.st_mtime is not None:
            os.utime(self.fd, (attr.st_atime, attr.st_mtime))
        return SFTP_OK

    def sync(self) -> int:
        os.fsync(self.fd)
        return SFTP_OK

    def statvfs(self) -> Any:
        return os.fstatvfs(self.fd)


class LocalDirSFTP(SFTPServerInterface):
    """Serve the local directory ``root`` as the whole SFTP namespace.

    ``read_only=True`` refuses every modifying request with PERMISSION_DENIED.
    """

    def __init__(self, server: Any, root: Union[str, os.PathLike], *args: Any,
                 read_only: bool = False, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        real = os.path.realpath(os.fspath(root))
        if not os.path.isdir(real):
            raise ValueError(f"SFTP root is not a directory: {root!r}")
        self.root = real
        self.read_only = read_only
        self._root_fd = -1

    # -- session ---------------------------------------------------------------------------
    def session_started(self) -> None:
        self._root_dir_fd()

    def session_ended(self) -> None:
        self.close()

    def close(self) -> None:
        fd, self._root_fd = self._root_fd, -1
        if fd >= 0:
            os.close(fd)

    def _root_dir_fd(self) -> int:
        if self._root_fd < 0:
            self._root_fd = os.open(self.root, _DIR_OPEN_FLAGS)
        return self._root_fd

    # -- path mapping ------------------------------------------------------------------------
    @staticmethod
    def _virtual(path: str) -> str:
        """Lexically normalised absolute virtual path (never above ``/``)."""
        if "\x00" in path:
            raise OSError(errno.EINVAL, "Invalid path (NUL byte)")
        out = posixpath.normpath(posixpath.join("/", path))
        if out.startswith("//"):
            out = "/" + out.lstrip("/")
        return out

    def _host(self, virtual: str) -> str:
        if virtual == "/":
            return self.root
        return self.root.rstrip("/") + virtual

    def _to_virtual(self, real: str) -> Optional[str]:
        """The virtual path of host path ``real``, or None if it is outside the root."""
        root = self.root
        if real == root:
            return "/"
        prefix = root.rstrip("/") + "/"
        if real.startswith(prefix):
            return "/" + real[len(prefix):]
        return None

    def _resolve(self, path: str, follow: bool = True) -> _Target:
        """Resolve ``path`` and open its parent directory without following any symlink.

        ``follow=False`` keeps a final symlink itself (lstat/remove/rename/readlink...).
        """
        virtual = self._virtual(path)
        host = self._host(virtual)
        if follow or virtual == "/":
            real = os.path.realpath(host)
        else:
            real = os.path.join(os.path.realpath(os.path.dirname(host)),
                                os.path.basename(host))
        rel_virtual = self._to_virtual(real)
        if rel_virtual is None:
            raise _escape_error()
        parts = [p for p in rel_virtual.split("/") if p]
        fd = os.dup(self._root_dir_fd())
        try:
            for part in parts[:-1]:
                if part in (".", ".."):
                    raise _escape_error()
                nfd = os.open(part, _DIR_OPEN_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        name = parts[-1] if parts else "."
        return _Target(fd, name, real, rel_virtual)

    def _check_writable(self) -> None:
        if self.read_only:
            raise PermissionError(errno.EACCES, "Permission denied (read-only)")

    @staticmethod
    def _attrs_of(st: os.stat_result, name: Optional[str] = None) -> SFTPAttributes:
        attr = SFTPAttributes.from_stat(st, name)
        if name is not None:
            attr.longname = str(attr)
        return attr

    # -- read-only operations ------------------------------------------------------------------
    def canonicalize(self, path: str) -> Union[str, int]:
        virtual = self._virtual(path)
        real = os.path.realpath(self._host(virtual))
        mapped = self._to_virtual(real)
        return mapped if mapped is not None else virtual

    def stat(self, path: str) -> Union[SFTPAttributes, int]:
        with self._resolve(path, follow=True) as t:
            return self._attrs_of(os.stat(t.name, dir_fd=t.dir_fd, follow_symlinks=False))

    def lstat(self, path: str) -> Union[SFTPAttributes, int]:
        with self._resolve(path, follow=False) as t:
            return self._attrs_of(os.stat(t.name, dir_fd=t.dir_fd, follow_symlinks=False))

    def list_folder(self, path: str) -> Union[List[SFTPAttributes], int]:
        with self._resolve(path, follow=True) as t:
            dfd = os.open(t.name, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC,
                          dir_fd=t.dir_fd)
        out: List[SFTPAttributes] = []
        try:
            with os.scandir(dfd) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # vanished meanwhile
                    out.append(self._attrs_of(st, entry.name))
        finally:
            os.close(dfd)
        out.sort(key=lambda a: a.filename or "")
        return out

    def readlink(self, path: str) -> Union[str, int]:
        with self._resolve(path, follow=False) as t:
            text = os.readlink(t.name, dir_fd=t.dir_fd)
        if posixpath.isabs(text):
            mapped = self._to_virtual(posixpath.normpath(text))
            if mapped is not None:
                return mapped
        return text

    def statvfs(self, path: str) -> Any:
        with self._resolve(path, follow=True) as t:
            fd = os.open(t.name, (_O_PATH or os.O_RDONLY) | _O_NOFOLLOW | _O_CLOEXEC
                         | _O_NONBLOCK, dir_fd=t.dir_fd)
        try:
            return os.fstatvfs(fd)
        finally:
            os.close(fd)

    # -- files --------------------------------------------------------------------------------
    def open(self, path: str, flags: int, attr: SFTPAttributes) -> Union[SFTPHandle, int]:
        writing = bool(flags & (SFTP_FLAG_WRITE | SFTP_FLAG_APPEND | SFTP_FLAG_CREATE
                                | SFTP_FLAG_TRUNC))
        if writing:
            self._check_writable()
        if flags & SFTP_FLAG_WRITE or (flags & SFTP_FLAG_APPEND and not flags & SFTP_FLAG_READ):
            oflags = os.O_RDWR if flags & SFTP_FLAG_READ else os.O_WRONLY
        else:
            oflags = os.O_RDONLY
        if flags & SFTP_FLAG_APPEND:
            oflags |= os.O_APPEND
        if flags & SFTP_FLAG_CREATE:
            oflags |= os.O_CREAT
        if flags & SFTP_FLAG_TRUNC:
            oflags |= os.O_TRUNC
        if flags & SFTP_FLAG_EXCL:
            oflags |= os.O_EXCL
        mode = 0o666
        if attr is not None and attr.st_mode is not None:
            mode = attr.st_mode & 0o7777
        with self._resolve(path, follow=True) as t:
            # O_NONBLOCK keeps a FIFO from blocking the open; only regular files pass below.
            fd = os.open(t.name, oflags | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK, mode,
                         dir_fd=t.dir_fd)
        try:
            st = os.fstat(fd)
            if not _stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL if not _stat.S_ISDIR(st.st_mode) else errno.EISDIR,
                              "Not a regular file")
            if _O_NONBLOCK:
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return LocalFileHandle(fd, flags, self._virtual(path))

    def remove(self, path: str) -> int:
        self._check_writable()
        with self._resolve(path, follow=False) as t:
            os.unlink(t.name, dir_fd=t.dir_fd)
        return SFTP_OK

    def _rename(self, oldpath: str, newpath: str, replace: bool) -> int:
        self._check_writable()
        with self._resolve(oldpath, follow=False) as src, \
                self._resolve(newpath, follow=False) as dst:
            if src.name == "." or dst.name == ".":
                raise OSError(errno.EBUSY, "Cannot rename the root directory")
            if not replace:
                try:
                    os.stat(dst.name, dir_fd=dst.dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    pass
                else:
                    raise FileExistsError(errno.EEXIST, "File exists")
            os.rename(src.name, dst.name, src_dir_fd=src.dir_fd, dst_dir_fd=dst.dir_fd)
        return SFTP_OK

    def rename(self, oldpath: str, newpath: str) -> int:
        return self._rename(oldpath, newpath, replace=False)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return self._rename(oldpath, newpath, replace=True)

    def link(self, oldpath: str, newpath: str) -> int:
        self._check_writable()
        with self._resolve(oldpath, follow=False) as src, \
                self._resolve(newpath, follow=False) as dst:
            os.link(src.name, dst.name, src_dir_fd=src.dir_fd, dst_dir_fd=dst.dir_fd,
                    follow_symlinks=False)
        return SFTP_OK

    # -- directories ---------------------------------------------------------------------------
    def mkdir(self, path: str, attr: SFTPAttributes) -> int:
        self._check_writable()
        mode = 0o777
        if attr is not None and attr.st_mode is not None:
            mode = attr.st_mode & 0o7777
        with self._resolve(path, follow=False) as t:
            os.mkdir(t.name, mode, dir_fd=t.dir_fd)
        return SFTP_OK

    def rmdir(self, path: str) -> int:
        self._check_writable()
        with self._resolve(path, follow=False) as t:
            if t.name == ".":
                raise OSError(errno.EBUSY, "Cannot remove the root directory")
            os.rmdir(t.name, dir_fd=t.dir_fd)
        return SFTP_OK

    # -- symlinks ------------------------------------------------------------------------------
    def symlink(self, target_path: str, path: str) -> int:
        self._check_writable()
        if not target_path or "\x00" in target_path:
            raise OSError(errno.EINVAL, "Invalid symlink target")
        with self._resolve(path, follow=False) as t:
            parent_real = os.path.dirname(t.real) if t.name != "." else t.real
            if posixpath.isabs(target_path):
                stored = self._host(self._virtual(target_path))
            else:
                stored = target_path
            resolved = os.path.realpath(os.path.join(parent_real, stored))
            if self._to_virtual(resolved) is None:
                raise _escape_error()
            os.symlink(stored, t.name, dir_fd=t.dir_fd)
        return SFTP_OK

    # -- attributes ----------------------------------------------------------------------------
    def chattr(self, path: str, attr: SFTPAttributes) -> int:
        self._check_writable()
        self._set_attrs(path, attr, follow=True)
        return SFTP_OK

    def lchattr(self, path: str, attr: SFTPAttributes) -> int:
        self._check_writable()
        self._set_attrs(path, attr, follow=False)
        return SFTP_OK

    def _set_attrs(self, path: str, attr: SFTPAttributes, follow: bool) -> None:
        with self._resolve(path, follow=follow) as t:
            if not _O_PATH or not os.path.isdir(_PROC_FD):
                self._set_attrs_at(t, attr)
                return
            pfd = os.open(t.name, _O_PATH | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=t.dir_fd)
        try:
            st = os.fstat(pfd)
            if _stat.S_ISLNK(st.st_mode):
                if follow:
                    # realpath saw no symlink here: it was swapped in since.
                    raise OSError(errno.ELOOP, "Too many levels of symbolic links")
                with self._resolve(path, follow=False) as t:
                    self._set_link_attrs(t, attr)
                return
            # Every change goes through the descriptor's /proc link, which names exactly
            # the inode opened above: no path lookup can be redirected any more.
            proc = f"{_PROC_FD}/{pfd}"
            if attr.st_size is not None:
                os.truncate(proc, attr.st_size)
            if attr.st_uid is not None and attr.st_gid is not None:
                os.chown(proc, attr.st_uid, attr.st_gid)
            if attr.st_mode is not None:
                os.chmod(proc, attr.st_mode & 0o7777)
            if attr.st_atime is not None and attr.st_mtime is not None:
                os.utime(proc, (attr.st_atime, attr.st_mtime))
        finally:
            os.close(pfd)

    @staticmethod
    def _set_link_attrs(t: _Target, attr: SFTPAttributes) -> None:
        """lsetstat on a symlink: owner and times only (POSIX has no symlink modes)."""
        if attr.st_size is not None:
            raise OSError(errno.EINVAL, "Cannot set the size of a symlink")
        if attr.st_mode is not None:
            raise OSError(errno.EOPNOTSUPP, "Cannot change the mode of a symlink")
        if attr.st_uid is not None and attr.st_gid is not None:
            os.chown(t.name, attr.st_uid, attr.st_gid, dir_fd=t.dir_fd, follow_symlinks=False)
        if attr.st_atime is not None and attr.st_mtime is not None:
            os.utime(t.name, (attr.st_atime, attr.st_mtime), dir_fd=t.dir_fd,
                     follow_symlinks=False)

    def _set_attrs_at(self, t: _Target, attr: SFTPAttributes) -> None:
        """Fallback without /proc: operate relative to the parent, refusing symlinks."""
        st = os.stat(t.name, dir_fd=t.dir_fd, follow_symlinks=False)
        if _stat.S_ISLNK(st.st_mode):
            self._set_link_attrs(t, attr)
            return
        if attr.st_size is not None:
            fd = os.open(t.name, os.O_WRONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK,
                         dir_fd=t.dir_fd)
            try:
                os.ftruncate(fd, attr.st_size)
            finally:
                os.close(fd)
        if attr.st_uid is not None and attr.st_gid is not None:
            os.chown(t.name, attr.st_uid, attr.st_gid, dir_fd=t.dir_fd, follow_symlinks=False)
        if attr.st_mode is not None:
            os.chmod(t.name, attr.st_mode & 0o7777, dir_fd=t.dir_fd)
        if attr.st_atime is not None and attr.st_mtime is not None:
            os.utime(t.name, (attr.st_atime, attr.st_mtime), dir_fd=t.dir_fd,
                     follow_symlinks=False)


__all__ = ["LocalDirSFTP", "LocalFileHandle"]
