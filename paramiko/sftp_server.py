"""``SFTPServer``: serves SFTP v3 on a channel, delegating to an ``SFTPServerInterface``.

Register it on a server ``Transport``::

    transport.set_subsystem_handler("sftp", SFTPServer, MySFTPInterface, *args, **kwargs)

Each session runs in its own thread (``SubsystemHandler``).  Requests are answered in
the order they arrive, so a client may keep many requests outstanding.  A malformed
request is answered with ``SFTP_BAD_MESSAGE``; a broken frame (bad length, missing
request id, no INIT first) ends the session and closes the channel -- it never takes the
SSH transport down.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from paramiko.common import DEBUG, ERROR, INFO
from paramiko.message import Message, MessageDecodeError
from paramiko.server import SubsystemHandler
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_DATA,
    CMD_EXTENDED,
    CMD_EXTENDED_REPLY,
    CMD_FSETSTAT,
    CMD_FSTAT,
    CMD_HANDLE,
    CMD_INIT,
    CMD_LSTAT,
    CMD_MKDIR,
    CMD_NAME,
    CMD_NAMES,
    CMD_OPEN,
    CMD_OPENDIR,
    CMD_READ,
    CMD_READDIR,
    CMD_READLINK,
    CMD_REALPATH,
    CMD_REMOVE,
    CMD_RENAME,
    CMD_RMDIR,
    CMD_SETSTAT,
    CMD_STAT,
    CMD_STATUS,
    CMD_SYMLINK,
    CMD_WRITE,
    SFTP_BAD_MESSAGE,
    SFTP_DESC,
    SFTP_EOF,
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
    BaseSFTP,
    SFTPError,
)
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_handle import SFTPHandle
from paramiko.sftp_si import SFTPServerInterface
from paramiko.util import get_logger

_HASHES: Dict[str, Callable[[], Any]] = {
    "sha512": hashlib.sha512,
    "sha384": hashlib.sha384,
    "sha256": hashlib.sha256,
    "sha224": hashlib.sha224,
    "sha1": hashlib.sha1,
    "md5": hashlib.md5,
}


def _enc(text: Union[str, bytes]) -> bytes:
    """Wire bytes for a path/name; undecodable bytes survive via ``surrogateescape``."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _dec(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class SFTPServer(BaseSFTP, SubsystemHandler):
    """SFTP subsystem handler; ``sftp_si`` is the ``SFTPServerInterface`` class to use.

    Extra ``*args``/``**kwargs`` go to ``sftp_si(server, *args, **kwargs)``.
    """

    #: advertised in limits@openssh.com; the whole-packet and per-request caps
    MAX_PACKET_LENGTH = 256 * 1024
    MAX_READ_LENGTH = 255 * 1024
    MAX_WRITE_LENGTH = 255 * 1024
    MAX_OPEN_HANDLES = 256
    #: entries per READDIR reply, and a soft byte budget for one NAME packet
    READDIR_BATCH = 100
    READDIR_BYTES = 192 * 1024

    # Incoming frames up to this size are accepted (more than announced, for lenience).
    max_packet_length = 1024 * 1024 + 1024

    def __init__(
        self,
        channel: Any,
        name: str,
        server: Any,
        sftp_si: Callable[..., SFTPServerInterface] = SFTPServerInterface,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        BaseSFTP.__init__(self)
        SubsystemHandler.__init__(self, channel, name, server)
        transport = channel.get_transport()
        try:
            self.logger = get_logger(transport.get_log_channel() + ".sftp")
            self.ultra_debug = bool(transport.get_hexdump())
        except AttributeError:
            pass
        self.next_handle = 1
        self.file_table: Dict[bytes, SFTPHandle] = {}
        self.folder_table: Dict[bytes, SFTPHandle] = {}
        self.server: SFTPServerInterface = sftp_si(server, *args, **kwargs)
        self._session_started = False

    # -- logging -------------------------------------------------------------------------
    def _log(self, level: int, msg: Union[str, List[str]], *args: Any) -> None:
        if isinstance(msg, list):
            for line in msg:
                self._log(level, line, *args)
            return
        if not self.logger.isEnabledFor(level):
            return
        try:
            text = msg % args if args else msg
        except (TypeError, ValueError):
            text = f"{msg} {args!r}"
        self.logger.log(level, "[chan %s] %s", self._chanid(), text)

    def _chanid(self) -> Any:
        sock = self.sock
        get_id = getattr(sock, "get_id", None)
        return get_id() if get_id is not None else "?"

    # -- subsystem lifecycle -------------------------------------------------------------------
    def start_subsystem(self, name: str, transport: Any, channel: Any) -> None:
        self.sock = channel
        try:
            self._send_server_version(self._extension_list())
        except (EOFError, SFTPError) as exc:
            self._log(DEBUG, "SFTP session did not start: %s", exc)
            return
        except OSError as exc:
            self._log(DEBUG, "SFTP session did not start: %s", exc)
            return
        self._session_started = True
        self.server.session_started()
        while True:
            try:
                t, data = self._read_packet()
            except EOFError:
                self._log(DEBUG, "EOF -- end of SFTP session")
                return
            except SFTPError as exc:
                self._log(INFO, "closing SFTP session: %s", exc)
                return
            except OSError as exc:
                self._log(DEBUG, "SFTP channel error: %s", exc)
                return
            try:
                self._process(t, data)
            except EOFError:
                self._log(DEBUG, "SFTP channel closed while replying")
                return
            except SFTPError as exc:
                self._log(INFO, "closing SFTP session: %s", exc)
                return
            except OSError as exc:
                self._log(DEBUG, "SFTP channel error while replying: %s", exc)
                return

    def finish_subsystem(self) -> None:
        for table in (self.file_table, self.folder_table):
            for handle in list(table.values()):
                try:
                    handle.close()
                except Exception as exc:  # noqa: BLE001 - best effort at session end
                    self._log(DEBUG, "error closing handle: %r", exc)
            table.clear()
        if self._session_started:
            self._session_started = False
            try:
                self.server.session_ended()
            except Exception as exc:  # noqa: BLE001 - a user hook must not break clean-up
                self._log(ERROR, "session_ended failed: %r", exc)
        super().finish_subsystem()

    # -- extensions ------------------------------------------------------------------------------
    def _overrides(self, method: str) -> bool:
        mine = getattr(type(self.server), method, None)
        base = getattr(SFTPServerInterface, method, None)
        return mine is not None and mine is not base

    def _extension_list(self) -> List[Tuple[str, str]]:
        exts: List[Tuple[str, str]] = []
        if self._overrides("posix_rename"):
            exts.append(("posix-rename@openssh.com", "1"))
        if self._overrides("statvfs"):
            exts.append(("statvfs@openssh.com", "2"))
        exts.append(("fstatvfs@openssh.com", "2"))
        if self._overrides("link"):
            exts.append(("hardlink@openssh.com", "1"))
        exts.append(("fsync@openssh.com", "1"))
        if self._overrides("lchattr"):
            exts.append(("lsetstat@openssh.com", "1"))
        exts.append(("limits@openssh.com", "1"))
        exts.append(("expand-path@openssh.com", "1"))
        exts.append(("home-directory", "1"))
        return exts

    # -- static helpers (upstream API) -------------------------------------------------------
    @staticmethod
    def convert_errno(e: Union[int, OSError, None]) -> int:
        """Map an errno (or an ``OSError``) to an SFTP status code."""
        if isinstance(e, OSError):
            e = e.errno
        if e in (errno.EACCES, errno.EPERM):
            return SFTP_PERMISSION_DENIED
        if e in (errno.ENOENT, errno.ENOTDIR):
            return SFTP_NO_SUCH_FILE
        return SFTP_FAILURE

    @staticmethod
    def set_file_attr(filename: str, attr: SFTPAttributes) -> None:
        """Apply the fields present in ``attr`` to local file ``filename`` (follows symlinks).

        Raises ``OSError`` on failure.  Order: size, owner, mode, then times.
        """
        if attr.st_size is not None:
            os.truncate(filename, attr.st_size)
        if attr.st_uid is not None and attr.st_gid is not None and sys.platform != "win32":
            os.chown(filename, attr.st_uid, attr.st_gid)
        if attr.st_mode is not None:
            os.chmod(filename, attr.st_mode & 0o7777)
        if attr.st_atime is not None and attr.st_mtime is not None:
            os.utime(filename, (attr.st_atime, attr.st_mtime))

    # -- replies -------------------------------------------------------------------------------
    def _response(self, request_id: int, t: int, *args: Any) -> None:
        msg = Message()
        msg.add_int(request_id)
        for item in args:
            if isinstance(item, SFTPAttributes):
                item._pack(msg)
            elif isinstance(item, bool):
                msg.add_boolean(item)
            elif isinstance(item, int):
                msg.add_int(item)
            elif isinstance(item, (bytes, bytearray, memoryview)):
                msg.add_string(bytes(item))
            else:
                msg.add_string(_enc(str(item)))
        self._send_packet(t, msg)

    def _send_status(self, request_id: int, code: int, desc: Optional[str] = None) -> None:
        if desc is None:
            desc = SFTP_DESC[code] if 0 <= code < len(SFTP_DESC) else "Unknown"
        msg = Message()
        msg.add_int(request_id)
        msg.add_int(code & 0xFFFFFFFF)
        msg.add_string(desc.encode("utf-8", "replace"))
        msg.add_string(b"")
        self._send_packet(CMD_STATUS, msg)

    def _send_os_error(self, request_id: int, exc: OSError) -> None:
        code = self.convert_errno(exc)
        desc = exc.strerror or (SFTP_DESC[code] if code < len(SFTP_DESC) else str(exc))
        self._send_status(request_id, code, desc)

    def _result_status(self, request_id: int, result: Any) -> None:
        """Answer a status-only operation with ``result`` (a code; ``None`` means OK)."""
        if result is None:
            result = SFTP_OK
        if not isinstance(result, int) or isinstance(result, bool):
            raise TypeError(f"SFTP interface returned {result!r}, expected a status code")
        self._send_status(request_id, result)

    def _send_name(self, request_id: int, path: str) -> None:
        """A NAME reply holding one entry (REALPATH, READLINK and friends)."""
        msg = Message()
        msg.add_int(request_id)
        msg.add_int(1)
        msg.add_string(_enc(path))
        msg.add_string(_enc(path))
        SFTPAttributes()._pack(msg)
        self._send_packet(CMD_NAME, msg)

    def _new_handle_id(self, folder: bool) -> bytes:
        hid = ("hd" if folder else "hf").encode() + str(self.next_handle).encode()
        self.next_handle += 1
        return hid

    def _open_handles(self) -> int:
        return len(self.file_table) + len(self.folder_table)

    def _send_handle_response(
        self, request_id: int, handle: Any, folder: bool = False
    ) -> None:
        if isinstance(handle, int) and not isinstance(handle, bool):
            self._send_status(request_id, handle)
            return
        if not isinstance(handle, SFTPHandle):
            raise TypeError(f"SFTP interface returned {handle!r}, expected an SFTPHandle")
        hid = self._new_handle_id(folder)
        handle._set_name(hid.decode())
        if folder:
            self.folder_table[hid] = handle
        else:
            self.file_table[hid] = handle
        self._response(request_id, CMD_HANDLE, hid)

    def _file_handle(self, hid: bytes) -> Optional[SFTPHandle]:
        return self.file_table.get(hid)

    # -- request dispatch ------------------------------------------------------------------------
    def _process(self, t: int, data: bytes) -> None:
        if t == CMD_INIT:
            raise SFTPError("unexpected second INIT")
        msg = Message(data)
        try:
            request_id = msg.get_int()
        except MessageDecodeError as exc:
            raise SFTPError(f"request of type {t} has no request id") from exc
        if self.ultra_debug:
            self._log(DEBUG, "request %d: %s", request_id, CMD_NAMES.get(t, t))
        handler = self._handlers.get(t)
        if handler is None:
            self._send_status(request_id, SFTP_OP_UNSUPPORTED, f"Unsupported request type {t}")
            return
        try:
            handler(self, request_id, msg)
        except (MessageDecodeError, UnicodeError) as exc:
            self._log(DEBUG, "bad request %d: %s", request_id, exc)
            self._send_status(request_id, SFTP_BAD_MESSAGE, f"Bad message: {exc}")
        except OSError as exc:
            self._send_os_error(request_id, exc)
        except OverflowError as exc:
            # e.g. an offset beyond what the OS accepts
            self._log(DEBUG, "request %d out of range: %s", request_id, exc)
            self._send_status(request_id, SFTP_FAILURE, "Value out of range")
        except (EOFError, SFTPError):
            raise
        except Exception as exc:  # noqa: BLE001 - an interface bug must not end the session
            self._log(ERROR, "error serving %s: %r", CMD_NAMES.get(t, t), exc)
            self._send_status(request_id, SFTP_FAILURE, "Server error")

    def _path(self, msg: Message) -> str:
        return _dec(msg.get_string())

    def _attrs(self, msg: Message) -> SFTPAttributes:
        return SFTPAttributes._from_msg(msg)

    def _do_open(self, rid: int, msg: Message) -> None:
        path = self._path(msg)
        flags = msg.get_int()
        attr = self._attrs(msg)
        if self._open_handles() >= self.MAX_OPEN_HANDLES:
            self._send_status(rid, SFTP_FAILURE, "Too many open handles")
            return
        self._send_handle_response(rid, self.server.open(path, flags, attr))

    def _do_close(self, rid: int, msg: Message) -> None:
        hid = msg.get_string()
        handle = self.file_table.pop(hid, None) or self.folder_table.pop(hid, None)
        if handle is None:
            self._send_status(rid, SFTP_FAILURE, "Invalid handle")
            return
        result = handle.close()
        self._result_status(rid, result)

    def _do_read(self, rid: int, msg: Message) -> None:
        hid = msg.get_string()
        offset = msg.get_int64()
        length = msg.get_int()
        handle = self._file_handle(hid)
        if handle is None:
            self._send_status(rid, SFTP_FAILURE, "Invalid handle")
            return
        data = handle.read(offset, min(length, self.MAX_READ_LENGTH))
        if isinstance(data, int) and not isinstance(data, bool):
            self._send_status(rid, data)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            if len(data) == 0:
                self._send_status(rid, SFTP_EOF)
            else:
                self._response(rid, CMD_DATA, bytes(data[: self.MAX_READ_LENGTH]))
        else:
            raise TypeError(f"SFTPHandle.read returned {type(data).__name__}")

    def _do_write(self, rid: int, msg: Message) -> None:
        hid = msg.get_string()
        offset = msg.get_int64()
        data = msg.get_string()
        handle = self._file_handle(hid)
        if handle is None:
            self._send_status(rid, SFTP_FAILURE, "Invalid handle")
            return
        self._result_status(rid, handle.write(offset, data))

    def _send_attrs(self, rid: int, result: Any) -> None:
        if isinstance(result, SFTPAttributes):
            self._response(rid, CMD_ATTRS, result)
        elif isinstance(result, int) and not isinstance(result, bool):
            self._send_status(rid, result)
        else:
            raise TypeError(f"SFTP interface returned {result!r}, expected SFTPAttributes")

    def _do_stat(self, rid: int, msg: Message) -> None:
        self._send_attrs(rid, self.server.stat(self._path(msg)))

    def _do_lstat(self, rid: int, msg: Message) -> None:
        self._send_attrs(rid, self.server.lstat(self._path(msg)))

    def _do_fstat(self, rid: int, msg: Message) -> None:
        handle = self._file_handle(msg.get_string())
        if handle is None:
            self._send_status(rid, SFTP_FAILURE, "Invalid handle")
            return
        self._send_attrs(rid, handle.stat())

    def _do_setstat(self, rid: int, msg: Message) -> None:
        path = self._path(msg)
        attr = self._attrs(msg)
        self._result_status(rid, self.server.chattr(path, attr))

    def _do_fsetstat(self, rid: int, msg: Message) -> None:
        hid = msg.get_string()
        attr = self._attrs(msg)
        handle = self._file_handle(hid)
        if handle is None:
            self._send_status(rid, SFTP_FAILURE, "Invalid handle")
            return
        self._result_status(rid, handle.chattr(attr))

    def _do_opendir(self, rid: int, msg: Message) -> None:
        path = self._path(msg)
        if self._open_handles() >= self.MAX_OPEN_HANDLES:
            self._send_status(rid, SFTP_FAILURE, "Too many open handles")
            return
        result = self.server.list_folder(path)
        if isinstance(result, int) and not isinstance(result, bool):
            self._send_status(rid, result)
            return
        folder = SFTPHandle()
        folder._set_files(list(result))
        self._send_handle_response(rid, folder, folder=True)

    def _do_readdir(self, rid: int, msg: Message) -> None:
        hid = msg.get_string()
        folder = self.folder_table.get(hid)
        if folder is None:
            self._send_status(rid, SFTP_FAILURE, "Invalid handle")
            return
        body = Message()
        count = 0
        while count == 0:
            entries = folder._get_next_files(self.READDIR_BATCH)
            if not entries:
                break
            count = self._pack_names(folder, entries, body)
        if count == 0:
            self._send_status(rid, SFTP_EOF)
            return
        out = Message()
        out.add_int(rid)
        out.add_int(count)
        out.add_bytes(body.asbytes())
        self._send_packet(CMD_NAME, out)

    def _pack_names(self, folder: SFTPHandle, entries: List[SFTPAttributes],
                    body: Message) -> int:
        """Append NAME entries to ``body`` within the byte budget; returns how many."""
        count = 0
        size = len(body.asbytes())
        for index, attr in enumerate(entries):
            entry = Message()
            name = attr.filename if attr.filename is not None else ""
            longname = attr.longname if attr.longname is not None else str(attr)
            entry.add_string(_enc(name))
            entry.add_string(_enc(longname))
            attr._pack(entry)
            raw = entry.asbytes()
            if count and size + len(raw) > self.READDIR_BYTES:
                # Keep the reply well under the client's packet limit; the rest
                # goes out with the next READDIR.
                folder._push_back_files(entries[index:])
                break
            if len(raw) > self.READDIR_BYTES:
                continue  # an entry that can never fit in a packet is skipped
            body.add_bytes(raw)
            size += len(raw)
            count += 1
        return count

    def _do_remove(self, rid: int, msg: Message) -> None:
        self._result_status(rid, self.server.remove(self._path(msg)))

    def _do_mkdir(self, rid: int, msg: Message) -> None:
        path = self._path(msg)
        attr = self._attrs(msg)
        self._result_status(rid, self.server.mkdir(path, attr))

    def _do_rmdir(self, rid: int, msg: Message) -> None:
        self._result_status(rid, self.server.rmdir(self._path(msg)))

    def _send_path_result(self, rid: int, result: Any) -> None:
        if isinstance(result, int) and not isinstance(result, bool):
            self._send_status(rid, result)
        elif isinstance(result, (str, bytes)):
            self._send_name(rid, result if isinstance(result, str) else _dec(result))
        else:
            raise TypeError(f"SFTP interface returned {result!r}, expected a path")

    def _do_realpath(self, rid: int, msg: Message) -> None:
        self._send_path_result(rid, self.server.canonicalize(self._path(msg)))

    def _do_rename(self, rid: int, msg: Message) -> None:
        old = self._path(msg)
        new = self._path(msg)
        self._result_status(rid, self.server.rename(old, new))

    def _do_readlink(self, rid: int, msg: Message) -> None:
        self._send_path_result(rid, self.server.readlink(self._path(msg)))

    def _do_symlink(self, rid: int, msg: Message) -> None:
        # OpenSSH's (now de facto) order: target first, then the link's own path.
        target = self._path(msg)
        link = self._path(msg)
        self._result_status(rid, self.server.symlink(target, link))

    # -- SSH_FXP_EXTENDED ----------------------------------------------------------------------
    def _do_extended(self, rid: int, msg: Message) -> None:
        name = msg.get_string().decode("utf-8", "replace")
        handler = self._ext_handlers.get(name)
        if handler is None:
            self._send_status(rid, SFTP_OP_UNSUPPORTED, f"Unsupported extension {name!r}")
            return
        handler(self, rid, msg)

    def _ext_posix_rename(self, rid: int, msg: Message) -> None:
        old = self._path(msg)
        new = self._path(msg)
        self._result_status(rid, self.server.posix_rename(old, new))

    def _send_statvfs(self, rid: int, st: Any) -> None:
        if isinstance(st, int) and not isinstance(st, bool):
            self._send_status(rid, st)
            return
        flag = 0
        f_flag = int(getattr(st, "f_flag", 0))
        if f_flag & getattr(os, "ST_RDONLY", 1):
            flag |= 0x1
        if f_flag & getattr(os, "ST_NOSUID", 2):
            flag |= 0x2
        out = Message()
        out.add_int(rid)
        mask = 0xFFFFFFFFFFFFFFFF
        for value in (
            st.f_bsize,
            st.f_frsize,
            st.f_blocks,
            st.f_bfree,
            st.f_bavail,
            st.f_files,
            st.f_ffree,
            st.f_favail,
            getattr(st, "f_fsid", 0),
            flag,
            st.f_namemax,
        ):
            out.add_int64(int(value) & mask)
        self._send_packet(CMD_EXTENDED_REPLY, out)

    def _ext_statvfs(self, rid: int, msg: Message) -> None:
        self._send_statvfs(rid, self.server.statvfs(self._path(msg)))

    def _ext_fstatvfs(self, rid: int, msg: Message) -> None:
        handle = self._file_handle(msg.get_string())
        if handle is None:
            self._send_status(rid, SFTP_FAILURE, "Invalid handle")
            return
        self._send_statvfs(rid, handle.statvfs())

    def _ext_hardlink(self, rid: int, msg: Message) -> None:
        old = self._path(msg)
        new = self._path(msg)
        self._result_status(rid, self.server.link(old, new))

    def _ext_fsync(self, rid: int, msg: Message) -> None:
        handle = self._file_handle(msg.get_string())
        if handle is None:
            self._send_status(rid, SFTP_FAILURE, "Invalid handle")
            return
        self._result_status(rid, handle.sync())

    def _ext_lsetstat(self, rid: int, msg: Message) -> None:
        path = self._path(msg)
        attr = self._attrs(msg)
        self._result_status(rid, self.server.lchattr(path, attr))

    def _ext_limits(self, rid: int, msg: Message) -> None:
        out = Message()
        out.add_int(rid)
        out.add_int64(self.MAX_PACKET_LENGTH)
        out.add_int64(self.MAX_READ_LENGTH)
        out.add_int64(self.MAX_WRITE_LENGTH)
        out.add_int64(self.MAX_OPEN_HANDLES)
        self._send_packet(CMD_EXTENDED_REPLY, out)

    def _ext_expand_path(self, rid: int, msg: Message) -> None:
        self._send_path_result(rid, self.server.expand_path(self._path(msg)))

    def _ext_home_directory(self, rid: int, msg: Message) -> None:
        self._send_path_result(rid, self.server.home_directory(self._path(msg)))

    def _ext_check_file(self, rid: int, msg: Message) -> None:
        """check-file (filexfer extensions draft): hashes of a byte range of a handle."""
        hid = msg.get_string()
        algorithms = [a for a in msg.get_string().decode("ascii", "replace").split(",") if a]
        start = msg.get_int64()
        length = msg.get_int64()
        block_size = msg.get_int()
        handle = self._file_handle(hid)
        if handle is None:
            self._send_status(rid, SFTP_FAILURE, "Invalid handle")
            return
        alg = next((a for a in algorithms if a in _HASHES), None)
        if alg is None:
            self._send_status(rid, SFTP_FAILURE, "No supported hash algorithm")
            return
        if length == 0:
            st = handle.stat()
            if not isinstance(st, SFTPAttributes) or st.st_size is None:
                self._send_status(rid, SFTP_FAILURE, "Cannot determine file size")
                return
            length = max(0, st.st_size - start)
        if block_size == 0:
            block_size = length
        elif block_size < 256:
            self._send_status(rid, SFTP_BAD_MESSAGE, "Block size too small")
            return
        if length and block_size and length // block_size > 65536:
            self._send_status(rid, SFTP_FAILURE, "Too many blocks")
            return
        digests = b""
        offset, end = start, start + length
        while True:
            h = _HASHES[alg]()
            block_end = min(end, offset + block_size) if block_size else end
            while offset < block_end:
                chunk = handle.read(offset, min(32768, block_end - offset))
                if isinstance(chunk, int) and not isinstance(chunk, bool):
                    self._send_status(rid, chunk)
                    return
                if not chunk:
                    break
                h.update(chunk)
                offset += len(chunk)
            digests += h.digest()
            if offset >= end or offset < block_end:
                break
        out = Message()
        out.add_int(rid)
        out.add_string(b"check-file")
        out.add_string(alg.encode())
        out.add_bytes(digests)
        self._send_packet(CMD_EXTENDED_REPLY, out)

    _handlers: Dict[int, Callable[[SFTPServer, int, Message], None]] = {
        CMD_OPEN: _do_open,
        CMD_CLOSE: _do_close,
        CMD_READ: _do_read,
        CMD_WRITE: _do_write,
        CMD_LSTAT: _do_lstat,
        CMD_FSTAT: _do_fstat,
        CMD_SETSTAT: _do_setstat,
        CMD_FSETSTAT: _do_fsetstat,
        CMD_OPENDIR: _do_opendir,
        CMD_READDIR: _do_readdir,
        CMD_REMOVE: _do_remove,
        CMD_MKDIR: _do_mkdir,
        CMD_RMDIR: _do_rmdir,
        CMD_REALPATH: _do_realpath,
        CMD_STAT: _do_stat,
        CMD_RENAME: _do_rename,
        CMD_READLINK: _do_readlink,
        CMD_SYMLINK: _do_symlink,
        CMD_EXTENDED: _do_extended,
    }

    _ext_handlers: Dict[str, Callable[[SFTPServer, int, Message], None]] = {
        "posix-rename@openssh.com": _ext_posix_rename,
        "statvfs@openssh.com": _ext_statvfs,
        "fstatvfs@openssh.com": _ext_fstatvfs,
        "hardlink@openssh.com": _ext_hardlink,
        "fsync@openssh.com": _ext_fsync,
        "lsetstat@openssh.com": _ext_lsetstat,
        "limits@openssh.com": _ext_limits,
        "expand-path@openssh.com": _ext_expand_path,
        "home-directory": _ext_home_directory,
        "check-file": _ext_check_file,
        "check-file-handle": _ext_check_file,
    }


__all__ = ["SFTPServer"]
