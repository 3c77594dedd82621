"""``SFTPClient``: an SFTP version 3 client over one SSH channel (OpenSSH extensions included).

Request engine
--------------
Every request gets an id and a :class:`_Request` slot in ``_pending``; replies are matched by
id, so any number of requests may be outstanding. There is no background thread: whichever
caller needs a reply takes the *reader* role, reads whole packets off the channel and files
each reply in its slot until its own has arrived (other threads wait on a condition and take
over the role when it is free). Every wait is bounded by the channel's timeout
(``get_channel().settimeout``); a timeout before a reply started arriving abandons the
request and raises ``socket.timeout``; a dead or desynchronised channel fails every pending
request with :class:`SFTPConnectionError` (both ``SSHException`` and ``OSError``).

Speed
-----
Request sizes come from the server's ``limits@openssh.com`` reply when offered (OpenSSH:
255 KiB), else 32 KiB. :class:`~paramiko.sftp_file.SFTPFile` keeps a sequential read-ahead
window of requests in flight and pipelines (and coalesces) writes, so plain ``read``/``write``
loops run at transfer speed; ``get``/``put`` use the same machinery.

Errors
------
Server status codes become ``OSError`` subclasses carrying the path: ``FileNotFoundError``
(ENOENT), ``PermissionError`` (EACCES), ``OSError`` with EOPNOTSUPP/EBADMSG, or a plain
``OSError("Failure: 'path'")`` for the generic failure code.
"""

from __future__ import annotations

import errno
import os
import socket
import stat as _stat
import struct
import threading
import time
import weakref
from collections import deque
from typing import (
    IO,
    Any,
    Callable,
    Deque,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from paramiko.common import DEBUG, INFO
from paramiko.message import Message, MessageDecodeError
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_DATA,
    CMD_EXTENDED,
    CMD_EXTENDED_REPLY,
    CMD_HANDLE,
    CMD_LSTAT,
    CMD_MKDIR,
    CMD_NAME,
    CMD_NAMES,
    CMD_OPEN,
    CMD_OPENDIR,
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
    SFTP_CONNECTION_LOST,
    SFTP_DESC,
    SFTP_EOF,
    SFTP_FLAG_APPEND,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_EXCL,
    SFTP_FLAG_READ,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
    SFTP_NO_CONNECTION,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
    BaseSFTP,
    SFTPError,
)
from paramiko.sftp_attr import SFTPAttributes
from paramiko.ssh_exception import SSHException
from paramiko.util import ClosingContextManager, get_logger

PathLike = Union[str, bytes, "os.PathLike[str]"]
Callback = Optional[Callable[[int, int], Any]]

_HDR = struct.Struct(">IBI")  # length, type, request id
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_STATVFS = struct.Struct(">11Q")
_LIMITS = struct.Struct(">4Q")

#: Request size when the server states no limits (the protocol's de-facto minimum).
DEFAULT_REQUEST_SIZE = 32768
# Our own ceiling on a reply we accept (the shared framing's limit) and a margin for headers.
_MAX_PACKET = BaseSFTP.max_packet_length
_HEADER_MARGIN = 1024

_UNSET: Any = object()


class SFTPConnectionError(SSHException, ConnectionError):
    """The SFTP session is gone (channel closed, dropped, or out of sync).

    Both an ``SSHException`` (what upstream raises) and an ``OSError`` (``ConnectionError``).
    """


class SFTPStatVFS(NamedTuple):
    """File-system statistics (``statvfs@openssh.com``), shaped like ``os.statvfs_result``."""

    f_bsize: int
    f_frsize: int
    f_blocks: int
    f_bfree: int
    f_bavail: int
    f_files: int
    f_ffree: int
    f_favail: int
    f_fsid: int
    f_flag: int
    f_namemax: int


class SFTPLimits(NamedTuple):
    """The server's ``limits@openssh.com`` reply (0 means "no specific limit")."""

    max_packet_length: int
    max_read_length: int
    max_write_length: int
    max_open_handles: int


class _Request:
    """One outstanding request: filled in by whoever reads its reply."""

    __slots__ = ("rid", "cmd", "done", "t", "body", "error", "__weakref__")

    def __init__(self, rid: int, cmd: int) -> None:
        self.rid = rid
        self.cmd = cmd
        self.done = False
        self.t = 0
        self.body: bytes = b""
        self.error: Optional[BaseException] = None


# -- encoding helpers -----------------------------------------------------------------------


def _to_bytes(path: Any) -> bytes:
    if isinstance(path, bytes):
        return path
    if isinstance(path, str):
        return path.encode("utf-8", "surrogateescape")
    if isinstance(path, (bytearray, memoryview)):
        return bytes(path)
    fspath = os.fspath(path)
    return fspath if isinstance(fspath, bytes) else fspath.encode("utf-8", "surrogateescape")


def _to_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _string(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def _pack_attrs(attr: SFTPAttributes) -> bytes:
    return attr._pack(Message()).asbytes()


def _path_for_error(path: Any) -> Any:
    if path is None or isinstance(path, str):
        return path
    if isinstance(path, bytes):
        return _to_text(path)
    try:
        return os.fspath(path)
    except TypeError:
        return str(path)


def _status_error(code: int, text: str, path: Any = None, path2: Any = None) -> OSError:
    """The ``OSError`` for a non-OK SFTP status (``path`` is named in it when given;
    ``path2`` too, for two-path operations such as rename)."""
    path = _path_for_error(path)
    path2 = _path_for_error(path2)
    if not text:
        text = SFTP_DESC[code] if 0 <= code < len(SFTP_DESC) else f"Unknown status {code}"
    known = {
        SFTP_NO_SUCH_FILE: (FileNotFoundError, errno.ENOENT),
        SFTP_PERMISSION_DENIED: (PermissionError, errno.EACCES),
        SFTP_OP_UNSUPPORTED: (OSError, errno.EOPNOTSUPP),
        SFTP_BAD_MESSAGE: (OSError, errno.EBADMSG),
        SFTP_NO_CONNECTION: (ConnectionError, errno.ENOTCONN),
        SFTP_CONNECTION_LOST: (ConnectionError, errno.ECONNABORTED),
    }.get(code)
    if known is not None:
        cls, num = known
        if path is None:
            return cls(num, text)
        if path2 is None:
            return cls(num, text, path)
        return cls(num, text, path, None, path2)
    # SSH_FX_FAILURE (or an unknown code): the server gives no errno, so none is invented.
    if path is None:
        return OSError(text)
    if path2 is None:
        return OSError(f"{text}: {path!r}")
    return OSError(f"{text}: {path!r} -> {path2!r}")


def _parse_status(body: bytes) -> Tuple[int, str]:
    msg = Message(body)
    try:
        code = msg.get_int()
    except MessageDecodeError:
        return SFTP_BAD_MESSAGE, "Malformed status reply"
    try:
        text = msg.get_string().decode("utf-8", "replace")
    except MessageDecodeError:  # version-3 servers may omit the message
        text = ""
    return code, text


class SFTPClient(BaseSFTP, ClosingContextManager):
    """SFTP session over a channel whose ``sftp`` subsystem was started (see module doc)."""

    #: Most READDIR requests ``listdir_iter`` keeps in flight by default.
    DEFAULT_READ_AHEADS = 50

    def __init__(self, sock: Any) -> None:
        BaseSFTP.__init__(self)
        self.sock = sock
        self.ultra_debug = False
        self.request_number = 1
        self._cwd: Optional[bytes] = None
        transport = getattr(sock, "transport", None) or getattr(sock, "get_transport",
                                                                lambda: None)()
        log_channel = getattr(transport, "get_log_channel", None)
        if callable(log_channel):
            try:
                self.logger = get_logger(log_channel() + ".sftp")
            except Exception:  # pragma: no cover - a transport without a log channel
                pass
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._pending: Dict[int, _Request] = {}
        self._reading = False  # a thread holds the reader role
        self._waiters = 0
        self._dead: Optional[BaseException] = None
        self._closed = False
        # Work queued by finalizers (which must never send): ("close", handle) and
        # ("write", handle, offset, data), flushed before the next request goes out.
        self._deferred: Deque[tuple] = deque()
        # Files holding coalesced write data not yet sent; flushed before any path request.
        self._dirty: weakref.WeakSet[Any] = weakref.WeakSet()
        # Nagle at a jump host: a gateway's sshd holds a small segment back until the one
        # before it is ACKed, and our kernel delays that ACK by up to 40 ms when we have
        # nothing to send. So when we are about to block after receiving, we send an
        # SSH_MSG_IGNORE, which carries the ACK at once (measured: stalls of 40 ms gone).
        self._ack_owed = False
        self._nudge: Optional[Callable[[], None]] = None
        self._recv_ready: Optional[Callable[[], bool]] = None
        send_ignore = getattr(transport, "send_ignore", None)
        recv_ready = getattr(sock, "recv_ready", None)
        if callable(send_ignore) and callable(recv_ready):
            self._nudge = lambda: send_ignore(0)
            self._recv_ready = recv_ready
        self._nudges = 0
        self._limits_req: Optional[_Request] = None
        self._limits_lock = threading.Lock()
        self._limits: Optional[SFTPLimits] = None
        self._sizes: Optional[Tuple[int, int]] = None
        try:
            version = self._send_version()
        except EOFError as exc:
            raise SSHException("EOF during negotiation") from exc
        self._log(INFO, f"Opened sftp connection (server version {version})")
        if self._has_ext("limits@openssh.com"):
            # Sent now, collected lazily: the answer costs no extra round trip.
            self._limits_req = self._send_request(CMD_EXTENDED,
                                                  (_string(b"limits@openssh.com"),))

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_transport(cls, t: Any, window_size: Optional[int] = None,
                       max_packet_size: Optional[int] = None) -> Optional[SFTPClient]:
        """Open a session channel on transport ``t``, start ``sftp`` on it, return a client."""
        chan = t.open_session(window_size=window_size, max_packet_size=max_packet_size)
        if chan is None:
            return None
        try:
            chan.invoke_subsystem("sftp")
            return cls(chan)
        except BaseException:
            chan.close()
            raise

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("broken" if self._dead else "open")
        return f"<paramiko.SFTPClient ({state}) over {self.sock!r}>"

    # -- session ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the SFTP session (its channel). Deferred handle closes are sent first."""
        if self._closed:
            return
        self._closed = True
        if self._dead is None:
            try:
                self._send_deferred()
            except Exception:  # the session is going away anyway
                pass
        with self._lock:
            if self._dead is None:
                self._dead = SFTPConnectionError("SFTP session closed")
            self._fail_pending_locked(self._dead)
        self._log(INFO, "sftp session closed.")
        self.sock.close()

    def get_channel(self) -> Any:
        """The underlying channel."""
        return self.sock

    @property
    def server_extensions(self) -> Dict[str, bytes]:
        """Extensions the server announced (name -> version)."""
        return dict(self.extensions)

    def _has_ext(self, name: str, version: Optional[bytes] = None) -> bool:
        got = self.extensions.get(name)
        return got is not None and (version is None or got == version)

    def _require_ext(self, name: str, what: str, version: Optional[bytes] = None) -> None:
        if not self._has_ext(name, version):
            raise OSError(errno.EOPNOTSUPP,
                          f"{what} is not supported by this server (no {name} extension)")

    # -- request engine ---------------------------------------------------------------------
    def _dead_error(self) -> BaseException:
        dead = self._dead
        if isinstance(dead, SFTPConnectionError):
            return SFTPConnectionError(*dead.args)
        return SFTPConnectionError(f"SFTP session is broken: {dead}")

    def _fail_pending_locked(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for req in pending.values():
            req.error = exc
            req.done = True
        self._cv.notify_all()

    def _fail(self, exc: BaseException) -> None:
        """The channel is unusable: fail every pending request and close it."""
        with self._lock:
            if self._dead is None:
                self._dead = exc
            self._fail_pending_locked(self._dead)
        try:
            self.sock.close()
        except Exception:
            pass

    def _send_request(self, cmd: int, parts: Sequence[bytes]) -> _Request:
        """Send one request (``parts`` after the id); returns its slot (not waited for)."""
        if self._deferred:
            self._send_deferred()
        return self._send_raw(cmd, parts)

    def _send_raw(self, cmd: int, parts: Sequence[bytes]) -> _Request:
        with self._lock:
            if self._dead is not None:
                raise self._dead_error()
            rid = self.request_number
            self.request_number = (rid + 1) & 0xFFFFFFFF or 1
            req = _Request(rid, cmd)
            self._pending[rid] = req
        size = 5 + sum(len(p) for p in parts)
        frame = b"".join((_HDR.pack(size, cmd, rid), *parts))
        if self.ultra_debug:
            self._log(DEBUG, f"[{rid}] -> {CMD_NAMES.get(cmd, cmd)} ({size} bytes)")
        try:
            with self._send_lock:
                self.sock.sendall(frame)
            self._ack_owed = False
        except BaseException as exc:
            # A partly sent frame leaves the stream unusable whatever the reason.
            err = SFTPConnectionError(f"Server connection dropped: {exc}")
            self._fail(err)
            if isinstance(exc, socket.timeout):
                raise socket.timeout(f"timed out sending an SFTP request: {exc}") from exc
            raise err from exc
        return req

    def _send_deferred(self) -> None:
        while True:
            try:
                item = self._deferred.popleft()
            except IndexError:
                return
            if item[0] == "write":
                _, handle, offset, data = item
                self._send_raw(CMD_WRITE, (_string(handle), _U64.pack(offset),
                                           _U32.pack(len(data)), data))
            else:
                self._send_raw(CMD_CLOSE, (_string(item[1]),))

    def _defer(self, item: tuple) -> None:
        """Queue work from a finalizer (sent before the next request; never blocks)."""
        if self._dead is None and not self._closed:
            self._deferred.append(item)

    def _abandon(self, reqs: Any) -> None:
        """Forget requests whose replies nobody will read (they are dropped on arrival)."""
        with self._lock:
            pending = self._pending
            for req in reqs:
                pending.pop(req.rid, None)

    def _wait(self, req: _Request, timeout: Any = _UNSET) -> None:
        """Until ``req`` has its reply; raises ``socket.timeout`` or the session's error."""
        if req.done:
            if req.error is not None:
                raise self._dead_error()
            return
        if timeout is _UNSET:
            timeout = self.sock.gettimeout()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if req.done:
                    break
                if self._dead is not None:
                    raise self._dead_error()
                if self._reading:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        self._pending.pop(req.rid, None)
                        raise socket.timeout("timed out waiting for an SFTP reply")
                    self._waiters += 1
                    try:
                        self._cv.wait(left)
                    finally:
                        self._waiters -= 1
                    continue
                self._reading = True
            try:
                self._read_one()
            except socket.timeout:
                with self._lock:
                    self._pending.pop(req.rid, None)
                raise
            finally:
                with self._lock:
                    self._reading = False
                    if self._waiters:
                        self._cv.notify_all()
        if req.error is not None:
            raise self._dead_error()

    def _recv_exact(self, n: int, first: bool = False) -> bytes:
        """Exactly ``n`` bytes from the channel.

        Interrupted before anything of a packet was read (``first``: a timeout, or e.g.
        KeyboardInterrupt) the stream is intact and the exception propagates as is. Anywhere
        else the stream is out of step: EOF, errors and interruptions kill the session.
        """
        got = 0
        try:
            if self._ack_owed and self._nudge is not None and not self._recv_ready():
                self._send_nudge()
            data = self.sock.recv(n)
            got = len(data)
            if got == n:
                self._ack_owed = True
                return data
            if not data:
                raise EOFError("channel closed by the server")
            parts = [data]
            while got < n:
                if self._nudge is not None and not self._recv_ready():
                    self._send_nudge()
                more = self.sock.recv(n - got)
                if not more:
                    raise EOFError("channel closed by the server")
                parts.append(more)
                got += len(more)
            self._ack_owed = True
            return b"".join(parts)
        except BaseException as exc:
            timeout = isinstance(exc, socket.timeout)
            broken = isinstance(exc, (EOFError, OSError)) and not timeout
            if first and got == 0 and not broken:
                raise  # clean: no byte of this packet was consumed
            if broken:
                err = SFTPConnectionError(f"Server connection dropped: {exc}")
            elif timeout:
                err = SFTPConnectionError(f"Server connection stalled mid-reply: {exc}")
            else:
                err = SFTPConnectionError(f"SFTP reply interrupted half-read: {exc!r}")
            self._fail(err)
            if broken:
                raise err from exc
            raise  # the timeout or interruption itself; the session is now closed

    def _send_nudge(self) -> None:
        self._ack_owed = False
        self._nudges += 1
        try:
            self._nudge()  # type: ignore[misc]
        except Exception:  # a dying transport: the read that follows reports it
            pass

    def _read_one(self) -> None:
        """Read one reply packet and file it in its request's slot (reader role held)."""
        hdr = self._recv_exact(9, first=True)
        length, t, rid = _HDR.unpack(hdr)
        if length < 5 or length > _MAX_PACKET:
            err = SFTPConnectionError(f"Malformed SFTP reply (length {length})")
            self._fail(err)
            raise err
        if t == CMD_DATA and length >= 9:
            (n,) = _U32.unpack(self._recv_exact(4))
            if n != length - 9:
                err = SFTPConnectionError("Malformed SFTP DATA reply")
                self._fail(err)
                raise err
            body = self._recv_exact(n) if n else b""
        else:
            body = self._recv_exact(length - 5) if length > 5 else b""
        if self.ultra_debug:
            self._log(DEBUG, f"[{rid}] <- {CMD_NAMES.get(t, t)} ({length} bytes)")
        with self._lock:
            req = self._pending.pop(rid, None)
            if req is not None:
                req.t = t
                req.body = body
                req.done = True
                if self._waiters:
                    self._cv.notify_all()
        if req is None and self.ultra_debug:
            self._log(DEBUG, f"dropped reply to abandoned request {rid}")

    # -- request helpers -------------------------------------------------------------------
    def _pre_request(self) -> None:
        """Before a path request: send coalesced writes so the server sees them first."""
        if self._dirty:
            with self._lock:
                files = list(self._dirty)
            for f in files:
                f._send_coalesced()

    def _mark_dirty(self, f: Any, dirty: bool) -> None:
        with self._lock:
            if dirty:
                self._dirty.add(f)
            else:
                self._dirty.discard(f)

    def _result(self, req: _Request, path: Any = None,
                path2: Any = None) -> Tuple[int, bytes]:
        """Wait for ``req``; a non-OK status raises, otherwise ``(type, body)``."""
        self._wait(req)
        if req.t == CMD_STATUS:
            code, text = _parse_status(req.body)
            if code != SFTP_OK:
                raise _status_error(code, text, path, path2)
        return req.t, req.body

    def _call(self, cmd: int, parts: Sequence[bytes], path: Any = None,
              expect: Optional[int] = None) -> Message:
        """Send, wait, check; returns the reply body (after the id) as a ``Message``."""
        self._pre_request()
        t, body = self._result(self._send_request(cmd, parts), path)
        if expect is not None and t != expect:
            got = "an OK status" if t == CMD_STATUS else CMD_NAMES.get(t, str(t))
            raise SFTPError(f"Expected {CMD_NAMES.get(expect, expect)}, got {got}")
        return Message(body)

    def _call_status(self, cmd: int, parts: Sequence[bytes], path: Any = None,
                     path2: Any = None) -> None:
        self._pre_request()
        t, _ = self._result(self._send_request(cmd, parts), path, path2)
        if t != CMD_STATUS:
            raise SFTPError(f"Expected status, got {CMD_NAMES.get(t, t)}")

    def _extended(self, name: str, parts: Sequence[bytes], path: Any = None,
                  expect: Optional[int] = None) -> Message:
        return self._call(CMD_EXTENDED, (_string(name.encode()), *parts), path, expect)

    # -- limits ---------------------------------------------------------------------------
    def limits(self) -> Optional[SFTPLimits]:
        """The server's ``limits@openssh.com`` answer, or None if it offers none."""
        if self._limits_req is not None:
            with self._limits_lock:
                req = self._limits_req
                if req is not None:
                    try:
                        t, body = self._result(req)
                        if t == CMD_EXTENDED_REPLY and len(body) >= _LIMITS.size:
                            self._limits = SFTPLimits(*_LIMITS.unpack_from(body))
                    except OSError as exc:
                        if isinstance(exc, (socket.timeout, SFTPConnectionError)):
                            raise
                        self._log(DEBUG, f"limits@openssh.com failed: {exc}")
                    finally:
                        self._limits_req = None  # asked once; defaults if it failed
        return self._limits

    def _io_sizes(self) -> Tuple[int, int]:
        """(read request size, write request size) for this server."""
        sizes = self._sizes
        if sizes is None:
            lim = self.limits()
            rsize = wsize = DEFAULT_REQUEST_SIZE
            if lim is not None:
                ceiling = _MAX_PACKET - _HEADER_MARGIN
                if lim.max_packet_length:
                    ceiling = min(ceiling, lim.max_packet_length - _HEADER_MARGIN)
                if lim.max_read_length:
                    rsize = lim.max_read_length
                if lim.max_write_length:
                    wsize = lim.max_write_length
                rsize = max(4096, min(rsize, ceiling))
                wsize = max(4096, min(wsize, ceiling))
            self._sizes = sizes = (rsize, wsize)
        return sizes

    # -- paths ----------------------------------------------------------------------------
    def _adjust_cwd(self, path: Any) -> bytes:
        path = _to_bytes(path)
        cwd = self._cwd
        if cwd is None or path.startswith(b"/"):
            return path
        if cwd == b"/":
            return cwd + path
        return cwd + b"/" + path

    def chdir(self, path: Optional[PathLike] = None) -> None:
        """Change the client-side working directory used for relative paths (None: unset)."""
        if path is None:
            self._cwd = None
            return
        attr = self.stat(path)
        if attr.st_mode is None or not _stat.S_ISDIR(attr.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                     _path_for_error(path))
        self._cwd = _to_bytes(self.normalize(path))

    def getcwd(self) -> Optional[str]:
        """The directory set by ``chdir``, or None."""
        return None if self._cwd is None else _to_text(self._cwd)

    def normalize(self, path: PathLike) -> str:
        """The server's canonical absolute form of ``path`` (REALPATH)."""
        msg = self._call(CMD_REALPATH, (_string(self._adjust_cwd(path)),), path, CMD_NAME)
        return self._single_name(msg, path)

    def _single_name(self, msg: Message, path: Any) -> str:
        try:
            count = msg.get_int()
            if count != 1:
                raise SFTPError(f"Realpath returned {count} results")
            return _to_text(msg.get_string())
        except MessageDecodeError as exc:
            raise SFTPError(f"Malformed NAME reply for {path!r}: {exc}") from exc

    # -- directories ----------------------------------------------------------------------
    def _opendir(self, path: Any) -> bytes:
        msg = self._call(CMD_OPENDIR, (_string(self._adjust_cwd(path)),), path, CMD_HANDLE)
        return msg.get_string()

    @staticmethod
    def _parse_names(body: bytes) -> List[SFTPAttributes]:
        msg = Message(body)
        out = []
        try:
            count = msg.get_int()
            for _ in range(count):
                name = msg.get_string()
                longname = msg.get_string()
                out.append(SFTPAttributes._from_msg(msg, _to_text(name), _to_text(longname)))
        except MessageDecodeError as exc:
            raise SFTPError(f"Malformed NAME reply: {exc}") from exc
        return out

    def _close_handle(self, handle: bytes, path: Any = None) -> None:
        self._result(self._send_request(CMD_CLOSE, (_string(handle),)), path)

    def listdir(self, path: PathLike = ".") -> List[str]:
        """Names in directory ``path`` (without ``.`` and ``..``), in server order."""
        return [a.filename for a in self.listdir_attr(path)]  # type: ignore[misc]

    def listdir_attr(self, path: PathLike = ".") -> List[SFTPAttributes]:
        """``SFTPAttributes`` (with ``filename``/``longname``) for each entry of ``path``."""
        return list(self.listdir_iter(path))

    def listdir_iter(self, path: PathLike = ".",
                     read_aheads: int = DEFAULT_READ_AHEADS) -> Iterator[SFTPAttributes]:
        """Like ``listdir_attr`` but a generator, with ``read_aheads`` READDIRs in flight."""
        read_aheads = max(1, int(read_aheads))
        handle = self._opendir(path)
        reqs: Deque[_Request] = deque()
        finished = False
        try:
            eof = False
            ramp = 1  # start small: most directories fit in one or two replies
            while True:
                while not eof and len(reqs) < min(ramp, read_aheads):
                    reqs.append(self._send_request(CMD_READDIR, (_string(handle),)))
                if not reqs:
                    break
                req = reqs.popleft()
                self._wait(req)
                if req.t == CMD_STATUS:
                    code, text = _parse_status(req.body)
                    if code == SFTP_EOF:
                        eof = True
                        self._abandon(reqs)
                        reqs.clear()
                        continue
                    raise _status_error(code, text, path)
                if req.t != CMD_NAME:
                    raise SFTPError(f"Expected name, got {CMD_NAMES.get(req.t, req.t)}")
                ramp *= 2
                for attr in self._parse_names(req.body):
                    if attr.filename not in (".", ".."):
                        yield attr
            finished = True
        finally:
            self._abandon(reqs)
            if finished:
                self._close_handle(handle, path)
            else:
                self._defer(("close", handle))  # maybe inside a finalizer: never block here

    def mkdir(self, path: PathLike, mode: int = 0o777) -> None:
        """Create directory ``path`` with ``mode`` (the server applies its umask)."""
        attr = SFTPAttributes()
        attr.st_mode = mode
        self._call_status(CMD_MKDIR, (_string(self._adjust_cwd(path)), _pack_attrs(attr)),
                          path)

    def rmdir(self, path: PathLike) -> None:
        """Remove the (empty) directory ``path``."""
        self._call_status(CMD_RMDIR, (_string(self._adjust_cwd(path)),), path)

    # -- files ----------------------------------------------------------------------------
    def open(self, filename: PathLike, mode: str = "r", bufsize: int = -1) -> Any:
        """Open a remote file; ``mode`` as for Python's ``open`` ("r", "w", "a", "x", "+", "b").

        Returns an :class:`~paramiko.sftp_file.SFTPFile` (reads ahead when read sequentially,
        pipelines writes; see its docs).
        """
        from paramiko.sftp_file import SFTPFile

        imode = 0
        if "r" in mode or "+" in mode:
            imode |= SFTP_FLAG_READ
        if "w" in mode or "+" in mode or "a" in mode or "x" in mode:
            imode |= SFTP_FLAG_WRITE
        if "w" in mode:
            imode |= SFTP_FLAG_CREATE | SFTP_FLAG_TRUNC
        if "a" in mode:
            imode |= SFTP_FLAG_CREATE | SFTP_FLAG_APPEND
        if "x" in mode:
            imode |= SFTP_FLAG_CREATE | SFTP_FLAG_EXCL
        if not imode:
            raise ValueError(f"invalid mode {mode!r}")
        self._log(DEBUG, f"open({filename!r}, {mode!r})")
        msg = self._call(CMD_OPEN, (_string(self._adjust_cwd(filename)), _U32.pack(imode),
                                    _pack_attrs(SFTPAttributes())), filename, CMD_HANDLE)
        handle = msg.get_string()
        try:
            return SFTPFile(self, handle, mode, bufsize, path=filename)
        except BaseException:
            self._defer(("close", handle))
            raise

    file = open

    def remove(self, path: PathLike) -> None:
        """Remove the file ``path`` (not a directory)."""
        self._call_status(CMD_REMOVE, (_string(self._adjust_cwd(path)),), path)

    unlink = remove

    def rename(self, oldpath: PathLike, newpath: PathLike) -> None:
        """Rename ``oldpath`` to ``newpath`` (SFTP RENAME: OpenSSH fails if it exists)."""
        self._call_status(CMD_RENAME, (_string(self._adjust_cwd(oldpath)),
                                       _string(self._adjust_cwd(newpath))), oldpath, newpath)

    def posix_rename(self, oldpath: PathLike, newpath: PathLike) -> None:
        """Rename with POSIX semantics, replacing ``newpath`` (``posix-rename@openssh.com``)."""
        self._require_ext("posix-rename@openssh.com", "posix_rename")
        self._pre_request()
        req = self._send_request(CMD_EXTENDED, (
            _string(b"posix-rename@openssh.com"), _string(self._adjust_cwd(oldpath)),
            _string(self._adjust_cwd(newpath))))
        self._result(req, oldpath, newpath)

    def link(self, oldpath: PathLike, newpath: PathLike) -> None:
        """Create the hard link ``newpath`` to ``oldpath`` (``hardlink@openssh.com``)."""
        self._require_ext("hardlink@openssh.com", "link")
        self._pre_request()
        req = self._send_request(CMD_EXTENDED, (
            _string(b"hardlink@openssh.com"), _string(self._adjust_cwd(oldpath)),
            _string(self._adjust_cwd(newpath))))
        self._result(req, oldpath, newpath)

    def symlink(self, source: PathLike, dest: PathLike) -> None:
        """Create the symbolic link ``dest`` pointing at ``source``.

        ``source`` is stored as given (relative targets stay relative). Arguments go on the
        wire target first, as OpenSSH's server expects (its order is the reverse of the
        draft's; every common server follows OpenSSH).
        """
        self._call_status(CMD_SYMLINK, (_string(_to_bytes(source)),
                                        _string(self._adjust_cwd(dest))), source, dest)

    def readlink(self, path: PathLike) -> Optional[str]:
        """The target of symbolic link ``path`` (None if the server returns no name)."""
        msg = self._call(CMD_READLINK, (_string(self._adjust_cwd(path)),), path, CMD_NAME)
        count = msg.get_int()
        if count == 0:
            return None
        if count != 1:
            raise SFTPError(f"Readlink returned {count} results")
        return _to_text(msg.get_string())

    # -- metadata -------------------------------------------------------------------------
    def stat(self, path: PathLike) -> SFTPAttributes:
        """Attributes of ``path``, following symlinks."""
        msg = self._call(CMD_STAT, (_string(self._adjust_cwd(path)),), path, CMD_ATTRS)
        return SFTPAttributes._from_msg(msg)

    def lstat(self, path: PathLike) -> SFTPAttributes:
        """Attributes of ``path`` itself (a symlink is not followed)."""
        msg = self._call(CMD_LSTAT, (_string(self._adjust_cwd(path)),), path, CMD_ATTRS)
        return SFTPAttributes._from_msg(msg)

    def _setstat(self, path: Any, attr: SFTPAttributes) -> None:
        self._call_status(CMD_SETSTAT, (_string(self._adjust_cwd(path)), _pack_attrs(attr)),
                          path)

    def chmod(self, path: PathLike, mode: int) -> None:
        """Change the permission bits of ``path``."""
        attr = SFTPAttributes()
        attr.st_mode = mode
        self._setstat(path, attr)

    def chown(self, path: PathLike, uid: int, gid: int) -> None:
        """Change the owner and group of ``path`` (both are required by the protocol)."""
        attr = SFTPAttributes()
        attr.st_uid, attr.st_gid = uid, gid
        self._setstat(path, attr)

    def utime(self, path: PathLike, times: Optional[Tuple[float, float]]) -> None:
        """Set ``(atime, mtime)`` of ``path``; None means now."""
        self._setstat(path, _times_attr(times))

    def truncate(self, path: PathLike, size: int) -> None:
        """Truncate (or extend) ``path`` to ``size`` bytes."""
        attr = SFTPAttributes()
        attr.st_size = size
        self._setstat(path, attr)

    def lsetstat(self, path: PathLike, attr: SFTPAttributes) -> None:
        """Set attributes of ``path`` without following a symlink (``lsetstat@openssh.com``)."""
        self._require_ext("lsetstat@openssh.com", "lsetstat")
        self._pre_request()
        req = self._send_request(CMD_EXTENDED, (
            _string(b"lsetstat@openssh.com"), _string(self._adjust_cwd(path)),
            _pack_attrs(attr)))
        self._result(req, path)

    def lutime(self, path: PathLike, times: Optional[Tuple[float, float]]) -> None:
        """``utime`` on a symlink itself (``lsetstat@openssh.com``)."""
        self.lsetstat(path, _times_attr(times))

    def lchown(self, path: PathLike, uid: int, gid: int) -> None:
        """``chown`` on a symlink itself (``lsetstat@openssh.com``)."""
        attr = SFTPAttributes()
        attr.st_uid, attr.st_gid = uid, gid
        self.lsetstat(path, attr)

    def statvfs(self, path: PathLike) -> SFTPStatVFS:
        """File-system statistics for the file system holding ``path``."""
        self._require_ext("statvfs@openssh.com", "statvfs")
        msg = self._extended("statvfs@openssh.com", (_string(self._adjust_cwd(path)),), path,
                             CMD_EXTENDED_REPLY)
        return _parse_statvfs(msg)

    def expand_path(self, path: PathLike) -> str:
        """``path`` with ``~``/``~user`` expanded and canonicalised by the server.

        Uses ``expand-path@openssh.com``; without it, ``~`` and ``~/...`` are resolved
        relative to the session's initial directory (the home directory on OpenSSH).
        """
        if self._has_ext("expand-path@openssh.com"):
            msg = self._extended("expand-path@openssh.com",
                                 (_string(self._adjust_cwd(path)),), path, CMD_NAME)
            return self._single_name(msg, path)
        raw = _to_bytes(path)
        if raw == b"~" or raw.startswith(b"~/"):
            saved, self._cwd = self._cwd, None
            try:
                return self.normalize(b"." + raw[1:])
            finally:
                self._cwd = saved
        if raw.startswith(b"~"):
            self._require_ext("expand-path@openssh.com", "expanding ~user")
        return self.normalize(path)

    def home_directory(self, username: str = "") -> str:
        """The home directory of ``username`` (empty: the session user)."""
        if not username and self._has_ext("expand-path@openssh.com"):
            return self.expand_path("~")  # OpenSSH's home-directory rejects an empty name
        if self._has_ext("home-directory"):
            msg = self._extended("home-directory", (_string(_to_bytes(username)),), username,
                                 CMD_NAME)
            return self._single_name(msg, username)
        if self._has_ext("expand-path@openssh.com"):
            return self.expand_path("~" + username)
        raise OSError(errno.EOPNOTSUPP, "home_directory is not supported by this server")

    # -- transfers ------------------------------------------------------------------------
    def putfo(self, fl: IO[bytes], remotepath: PathLike, file_size: int = 0,
              callback: Callback = None, confirm: bool = True) -> SFTPAttributes:
        """Upload the contents of file object ``fl`` to ``remotepath``.

        ``callback(bytes_so_far, file_size)`` is called after each chunk. With ``confirm``
        the remote size is checked afterwards (``OSError`` on mismatch) and the remote
        attributes are returned; otherwise an empty ``SFTPAttributes``.
        """
        with self.open(remotepath, "wb") as fr:
            fr.set_pipelined(True)
            _, wsize = self._io_sizes()
            chunk = max(wsize, 65536)
            size = 0
            while True:
                data = fl.read(chunk)
                if not data:
                    break
                fr.write(data)
                size += len(data)
                if callback is not None:
                    callback(size, file_size)
        if confirm:
            s = self.stat(remotepath)
            if s.st_size != size:
                raise OSError(f"size mismatch in put!  {s.st_size} != {size}")
        else:
            s = SFTPAttributes()
        return s

    def put(self, localpath: PathLike, remotepath: PathLike, callback: Callback = None,
            confirm: bool = True) -> SFTPAttributes:
        """Upload local file ``localpath`` to ``remotepath`` (see ``putfo``)."""
        file_size = os.stat(localpath).st_size
        with open(localpath, "rb") as fl:
            return self.putfo(fl, remotepath, file_size, callback, confirm)

    def getfo(self, remotepath: PathLike, fl: IO[bytes], callback: Callback = None,
              prefetch: bool = True,
              max_concurrent_prefetch_requests: Optional[int] = None) -> int:
        """Download ``remotepath`` into file object ``fl``; returns the byte count.

        Requests stay in flight up to ``max_concurrent_prefetch_requests`` (default: a
        bounded window). ``prefetch=False`` starts with a small window that grows as the
        data streams (the transfer is still pipelined).
        """
        with self.open(remotepath, "rb") as fr:
            return self._copy_out(fr, fl, callback, prefetch, max_concurrent_prefetch_requests)

    @staticmethod
    def _copy_out(fr: Any, fl: IO[bytes], callback: Callback, prefetch: bool,
                  max_requests: Optional[int]) -> int:
        file_size = fr.stat().st_size or 0
        if prefetch:
            fr.prefetch(file_size, max_requests)
        elif max_requests:
            fr._ra_max_reqs = max(1, int(max_requests))
        size = 0
        write = fl.write
        for data in fr._iter_chunks():
            write(data)
            size += len(data)
            if callback is not None:
                callback(size, file_size)
        return size

    def get(self, remotepath: PathLike, localpath: PathLike, callback: Callback = None,
            prefetch: bool = True,
            max_concurrent_prefetch_requests: Optional[int] = None) -> None:
        """Download ``remotepath`` to local file ``localpath`` (see ``getfo``).

        The remote file is opened first, so a missing one leaves no empty local file.
        """
        with self.open(remotepath, "rb") as fr, open(localpath, "wb") as fl:
            size = self._copy_out(fr, fl, callback, prefetch, max_concurrent_prefetch_requests)
        local = os.stat(localpath).st_size
        if local != size:
            raise OSError(f"size mismatch in get!  {local} != {size}")


def _times_attr(times: Optional[Tuple[float, float]]) -> SFTPAttributes:
    if times is None:
        now = time.time()
        times = (now, now)
    attr = SFTPAttributes()
    attr.st_atime, attr.st_mtime = times
    return attr


def _parse_statvfs(msg: Message) -> SFTPStatVFS:
    data = msg.get_remainder()
    if len(data) < _STATVFS.size:
        raise SFTPError("Malformed statvfs reply")
    return SFTPStatVFS(*_STATVFS.unpack_from(data))


#: Upstream's alias.
SFTP = SFTPClient

__all__ = [
    "SFTP",
    "SFTPClient",
    "SFTPConnectionError",
    "SFTPLimits",
    "SFTPStatVFS",
    "DEFAULT_REQUEST_SIZE",
]
