"""A small facade over ``paramiko.SFTPClient`` for ``put()`` and ``get()``.

:class:`SFTP` opens one SFTP session on the host's cached connection and adds what the
operations need on top: directory tests, remote globbing, a remote ``os.walk``, recursive
upload and download, and ``use_sudo`` transfers "bounced" through a temporary file that
``sudo`` then moves (upload) or copies (download).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import stat
import uuid
from typing import Any, Iterator, List, Optional, Tuple

from fabric.state import env, output
from fabric.utils import output_lock

__all__ = ["SFTP"]

_MAGIC = re.compile(r"[*?\[]")


def _status(text: str) -> None:
    import sys

    if output.get("running", True):
        with output_lock:
            try:
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
            except (ValueError, OSError):
                pass


def _join(base: str, name: str) -> str:
    if not base:
        return name
    if base.endswith("/"):
        return base + name
    return base + "/" + name


class _BytesReader:
    """Reads a file-like object as bytes (text streams are encoded as UTF-8)."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        return data.encode("utf-8") if isinstance(data, str) else data


class _BytesWriter:
    """Writes bytes to a file-like object, decoding them for text streams."""

    def __init__(self, f: Any) -> None:
        import codecs

        self.f = f
        self._text = _is_text_stream(f)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, data: bytes) -> int:
        if self._text:
            self.f.write(self._decoder.decode(bytes(data)))
        else:
            self.f.write(data)
        return len(data)

    def finish(self) -> None:
        if self._text:
            tail = self._decoder.decode(b"", final=True)
            if tail:
                self.f.write(tail)


def _is_text_stream(f: Any) -> bool:
    import io

    if isinstance(f, io.TextIOBase):
        return True
    if isinstance(f, (io.BufferedIOBase, io.RawIOBase)):
        return False
    return "b" not in getattr(f, "mode", "b")


def _check_sudo(result: Any, what: str) -> None:
    if getattr(result, "failed", False):
        detail = str(result).strip() or str(getattr(result, "stderr", "")).strip()
        raise OSError(f"sudo {what} failed (return code {result.return_code})"
                      + (f": {detail}" if detail else ""))


class SFTP:
    """One SFTP session on ``host_string``'s cached connection (use as a context manager)."""

    def __init__(self, host_string: str) -> None:
        from fabric import state

        self.host_string = host_string
        self.ftp = state.connections[host_string].open_sftp()

    def close(self) -> None:
        self.ftp.close()

    def __enter__(self) -> SFTP:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- queries ----------------------------------------------------------------------
    def normalize(self, path: str) -> str:
        return self.ftp.normalize(path)

    def isdir(self, path: str) -> bool:
        try:
            return stat.S_ISDIR(self.ftp.stat(path).st_mode or 0)
        except OSError:
            return False

    def islink(self, path: str) -> bool:
        try:
            return stat.S_ISLNK(self.ftp.lstat(path).st_mode or 0)
        except OSError:
            return False

    def exists(self, path: str) -> bool:
        try:
            self.ftp.lstat(path)
        except OSError:
            return False
        return True

    def glob(self, path: str) -> List[str]:
        """Remote paths matching ``path`` (``*``, ``?``, ``[...]`` in any component),
        sorted; dot files only match a pattern that starts with a dot."""
        if not _MAGIC.search(path):
            return [path] if self.exists(path) else []
        parts = [p for p in path.split("/") if p]
        found = ["/" if path.startswith("/") else ""]
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            matches: List[str] = []
            for base in found:
                if _MAGIC.search(part):
                    try:
                        names = self.ftp.listdir(base or ".")
                    except OSError:
                        continue
                    for name in names:
                        if name.startswith(".") and not part.startswith("."):
                            continue
                        if fnmatch.fnmatchcase(name, part):
                            matches.append(_join(base, name))
                else:
                    candidate = _join(base, part)
                    if not last or self.exists(candidate):
                        matches.append(candidate)
            found = matches
        return sorted(found)

    def walk(self, top: str, topdown: bool = True, onerror: Any = None,
             followlinks: bool = False) -> Iterator[Tuple[str, List[str], List[str]]]:
        """``os.walk`` for the remote side: ``(dirpath, dirnames, filenames)`` tuples."""
        try:
            entries = self.ftp.listdir_attr(top)
        except OSError as exc:
            if onerror is not None:
                onerror(exc)
            return
        dirs: List[str] = []
        files: List[str] = []
        links_to_dirs = set()
        for attr in entries:
            mode = attr.st_mode or 0
            if stat.S_ISDIR(mode):
                dirs.append(attr.filename)
            elif stat.S_ISLNK(mode) and self.isdir(posixpath.join(top, attr.filename)):
                dirs.append(attr.filename)
                links_to_dirs.add(attr.filename)
            else:
                files.append(attr.filename)
        dirs.sort()
        files.sort()
        if topdown:
            yield top, dirs, files
        for name in dirs:
            if name in links_to_dirs and not followlinks:
                continue
            yield from self.walk(posixpath.join(top, name), topdown, onerror, followlinks)
        if not topdown:
            yield top, dirs, files

    # -- changes ----------------------------------------------------------------------
    def _sudo(self, command: str, what: str) -> None:
        from fabric.operations import _settings, sudo

        # cwd="" because every path here is already absolute or home-relative.
        with _settings(hide=("everything",), cwd="", warn_only=True):
            result = sudo(command)
        _check_sudo(result, what)

    def mkdir(self, path: str, use_sudo: bool) -> None:
        if use_sudo:
            self._sudo(f'mkdir "{path}"', f"mkdir of '{path}'")
        else:
            self.ftp.mkdir(path)

    def put(self, local_path: Any, remote_path: str, use_sudo: bool,
            mirror_local_mode: bool, mode: Any, local_is_path: bool = True,
            temp_dir: str = "") -> str:
        """Upload one file (a path, or a file-like object); returns the remote path."""
        if self.isdir(remote_path):
            if not local_is_path:
                raise ValueError(f"'{remote_path}' is a directory: give put() a remote file "
                                 "name when uploading a file-like object")
            remote_path = posixpath.join(remote_path, os.path.basename(local_path))
        shown = local_path if local_is_path else "<file obj>"
        _status(f"[{env.host_string}] put: {shown} -> {remote_path}")
        target = remote_path
        if use_sudo:
            remote_path = posixpath.join(temp_dir or "", uuid.uuid4().hex)
        try:
            if local_is_path:
                attrs = self.ftp.put(local_path, remote_path)
            else:
                attrs = self._put_fileobj(local_path, remote_path)
            wanted = None
            if mirror_local_mode and local_is_path:
                wanted = os.stat(local_path).st_mode
            elif mode is not None:
                wanted = int(mode, 8) if isinstance(mode, str) else int(mode)
            if wanted is not None:
                wanted &= 0o7777
                current = attrs.st_mode & 0o7777 if attrs.st_mode is not None else None
                if wanted != current:
                    # The (temporary) file is ours, so no sudo is needed; mv keeps the mode.
                    self.ftp.chmod(remote_path, wanted)
            if use_sudo:
                self._sudo(f'mv "{remote_path}" "{target}"', f"move into '{target}'")
        except BaseException:
            if use_sudo:
                try:
                    self.ftp.remove(remote_path)
                except OSError:
                    pass
            raise
        return target

    def _put_fileobj(self, fileobj: Any, remote_path: str) -> Any:
        try:
            position = fileobj.tell()
            fileobj.seek(0)  # Fabric uploads the whole object, wherever it was read to
        except (AttributeError, OSError, ValueError):
            position = None
        try:
            return self.ftp.putfo(_BytesReader(fileobj), remote_path)
        finally:
            if position is not None:
                fileobj.seek(position)

    def put_dir(self, local_path: str, remote_path: str, use_sudo: bool,
                mirror_local_mode: bool, mode: Any, temp_dir: str = "") -> List[str]:
        """Upload directory ``local_path`` as ``remote_path/<its basename>``, recursively."""
        local_path = local_path.rstrip(os.sep) or local_path
        base = os.path.dirname(local_path)
        uploaded: List[str] = []
        for top, _dirs, files in os.walk(local_path):
            relative = os.path.relpath(top, base) if base else top
            rtop = posixpath.join(remote_path, relative.replace(os.sep, "/"))
            if not self.exists(rtop):
                self.mkdir(rtop, use_sudo)
            for name in sorted(files):
                uploaded.append(self.put(os.path.join(top, name), posixpath.join(rtop, name),
                                         use_sudo, mirror_local_mode, mode, True, temp_dir))
        return uploaded

    def get(self, remote_path: str, local_path: Any, use_sudo: bool,
            local_is_path: bool = True, rremote: Optional[str] = None,
            temp_dir: str = "") -> Any:
        """Download one file; returns the local path (or the file-like object).

        ``local_path`` is interpolated with ``host``, ``dirname``, ``basename`` and ``path``
        (taken from ``rremote``, the remote path relative to what was asked for, default
        ``remote_path``); missing local directories are created.
        """
        rremote = remote_path if rremote is None else rremote
        if local_is_path:
            values = {
                "host": (env.host_string or "").replace(":", "-"),
                "basename": posixpath.basename(rremote),
                "dirname": posixpath.dirname(rremote),
                "path": rremote,
            }
            # A '%' that does not start a "%(key)" placeholder is literal.
            template = re.sub(r"%(?!\()", "%%", local_path)
            try:
                local_path = os.path.abspath(template % values)
            except KeyError as exc:
                raise ValueError(f"get(): unknown key {exc} in local path '{local_path}' "
                                 "(use host, dirname, basename or path)") from None
            parent = os.path.dirname(local_path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            if os.path.isdir(local_path):
                local_path = os.path.join(local_path, values["basename"])
        shown = local_path if local_is_path else "<file obj>"
        _status(f"[{env.host_string}] download: {shown} <- {remote_path}")
        source = remote_path
        if use_sudo:
            from fabric.network import normalize

            source = posixpath.join(temp_dir or "", uuid.uuid4().hex)
            login_user = normalize(env.host_string)[0]
            self._sudo(f'cp -p "{remote_path}" "{source}"', f"copy of '{remote_path}'")
        try:
            if use_sudo:
                self._sudo(f'chown {login_user} "{source}"', f"chown of '{source}'")
            if local_is_path:
                self.ftp.get(source, local_path)
            else:
                writer = _BytesWriter(local_path)
                self.ftp.getfo(source, writer)
                writer.finish()
        finally:
            if use_sudo:
                try:
                    self.ftp.remove(source)
                except OSError:
                    try:
                        self._sudo(f'rm -f "{source}"', f"removal of '{source}'")
                    except Exception:
                        pass
        return local_path

    def get_dir(self, remote_path: str, local_path: str, use_sudo: bool,
                temp_dir: str = "") -> List[str]:
        """Download directory ``remote_path`` recursively; paths below ``local_path`` start
        with the directory's own name (``get('/var/log', 'x')`` gives ``x/log/...``)."""
        trimmed = remote_path.rstrip("/") or "/"
        base = posixpath.dirname(trimmed)
        templated = "%(path)s" in local_path or "%(dirname)s" in local_path
        downloaded: List[str] = []
        for top, _dirs, files in self.walk(trimmed):
            relative = top[len(base):].lstrip("/") if top.startswith(base) else top
            for name in files:
                rremote = posixpath.join(relative, name)
                lpath = local_path if templated else os.path.join(
                    local_path, *[p for p in relative.split("/") if p], name)
                downloaded.append(self.get(posixpath.join(top, name), lpath, use_sudo, True,
                                           rremote, temp_dir))
        return downloaded
