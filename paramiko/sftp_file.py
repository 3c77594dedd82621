"""``SFTPFile``: a remote file opened through :class:`~paramiko.sftp_client.SFTPClient`.

Reading
    Sequential reads are served by a read-ahead window of READ requests kept in flight. The
    window starts small (a random ``seek`` + ``read`` costs one request) and doubles with
    every byte read in sequence, up to ``READAHEAD_MAX_BYTES``/``READAHEAD_MAX_REQUESTS``.
    A seek outside the window drops it (replies still in flight are discarded on arrival).
    ``prefetch()`` opens the window fully at once; ``readv()`` fetches scattered ranges
    concurrently.

Writing
    Writes are pipelined by default: WRITE requests go out without waiting for their status
    and small writes are coalesced into requests of the server's maximum write size. Data
    held back is sent before any other request of this file or of its client, so the
    server always sees operations in program order. Failed writes surface as ``OSError`` at
    the next ``write``, at ``flush()`` (which waits for every outstanding write) or at the
    latest at ``close()``. ``set_pipelined(False)`` makes every write wait for its status.

Not thread-safe for concurrent use of one file object (like Python file objects); the
client itself may be shared between threads.
"""

from __future__ import annotations

import errno
import threading
from collections import deque
from typing import Any, Deque, Iterator, List, Optional, Sequence, Tuple, Union

from paramiko.file import BufferedFile
from paramiko.message import Message
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_DATA,
    CMD_EXTENDED_REPLY,
    CMD_FSETSTAT,
    CMD_FSTAT,
    CMD_NAMES,
    CMD_READ,
    CMD_STATUS,
    CMD_WRITE,
    SFTP_EOF,
    SFTP_OK,
    SFTPError,
)
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_client import (
    _U32,
    _U64,
    SFTPStatVFS,
    _pack_attrs,
    _parse_status,
    _parse_statvfs,
    _Request,
    _status_error,
    _string,
    _times_attr,
)

BytesLike = Union[bytes, bytearray, memoryview]


class SFTPFile(BufferedFile):
    """A remote file (see the module docstring for read-ahead and write pipelining)."""

    #: Request size used when the server states no limits (upstream's fixed size).
    MAX_REQUEST_SIZE = 32768
    #: Read-ahead ceiling: bytes requested beyond the read position, and requests in flight.
    READAHEAD_MAX_BYTES = 8 * 1024 * 1024
    READAHEAD_MAX_REQUESTS = 64
    #: Read-ahead window once reading is sequential (then twice the bytes read in sequence).
    READAHEAD_MIN_BYTES = 64 * 1024
    #: Pipelined writes: unacknowledged bytes / requests before a write waits for the oldest.
    WRITE_MAX_BYTES = 8 * 1024 * 1024
    WRITE_MAX_REQUESTS = 64

    def __init__(self, sftp: Any, handle: bytes, mode: str = "r", bufsize: int = -1,
                 path: Any = None) -> None:
        BufferedFile.__init__(self)
        self.sftp = sftp
        self.handle = handle
        self._path = path
        self._hstr = _string(handle)
        self.pipelined = True
        rsize, wsize = sftp._io_sizes()
        self._rsize = rsize
        self._wsize = wsize
        # read-ahead: [offset, length, request] in offset order, contiguous up to _ra_next
        self._ra: Deque[list] = deque()
        self._ra_next = 0
        self._ra_seq = 0  # bytes read in sequence since the window was last reset
        self._ra_full = False  # prefetch(): window fully open from the start
        self._ra_size: Optional[int] = None  # known file size: no read-ahead past it
        self._ra_max_reqs = self.READAHEAD_MAX_REQUESTS
        self._ra_max_bytes = self.READAHEAD_MAX_BYTES
        self._chunk: bytes = b""  # received data not yet handed out, starting at _chunk_off
        self._chunk_off = 0
        # pipelined writes
        self._wreqs: Deque[Tuple[_Request, int]] = deque()
        self._wbytes = 0
        self._werror: Optional[BaseException] = None
        self._wreported = False
        self._cbuf = bytearray()  # coalesced write data for offset _cbuf_off
        self._cbuf_off = 0
        self._wlock = threading.RLock()
        self._set_mode(mode, bufsize)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<paramiko.SFTPFile {self._path!r} ({state})>"

    def __del__(self) -> None:
        # A finalizer must not block or send (it may run inside a send): queue the leftover
        # data and the CLOSE; the client sends them before its next request.
        try:
            if self._closed:
                return
            sftp = self.sftp
            if self._cbuf:
                sftp._defer(("write", self.handle, self._cbuf_off, bytes(self._cbuf)))
            if self._wbuffer:
                sftp._defer(("write", self.handle, self._realpos, bytes(self._wbuffer)))
            sftp._defer(("close", self.handle))
        except Exception:
            pass

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Send pending writes, wait for every write's status, close the handle.

        The first write error not yet reported is raised here (after the handle is closed).
        """
        if self._closed:
            return
        err: Optional[BaseException] = None
        try:
            self.flush()
        except BaseException as exc:
            err = exc
        self._closed = True
        self._ra_reset()
        self.sftp._mark_dirty(self, False)
        self._cbuf = bytearray()
        if self.sftp._dead is None:
            try:
                self.sftp._close_handle(self.handle, self._path)
            except BaseException as exc:
                if err is None:
                    err = exc
        if err is not None:
            raise err

    def flush(self) -> None:
        """Send buffered data and wait until the server acknowledged every write."""
        if self._closed:
            return
        BufferedFile.flush(self)
        self._send_coalesced()
        self._reap_writes(wait_all=True)
        self._raise_write_error(always=False)

    # -- timeouts ---------------------------------------------------------------------------
    def settimeout(self, timeout: Optional[float]) -> None:
        """Timeout (seconds) for every wait on the server (the channel's timeout)."""
        self.sftp.sock.settimeout(timeout)

    def gettimeout(self) -> Optional[float]:
        return self.sftp.sock.gettimeout()

    def setblocking(self, blocking: Union[bool, int]) -> None:
        self.sftp.sock.setblocking(blocking)

    def seekable(self) -> bool:
        return True

    # -- positioning ------------------------------------------------------------------------
    def seek(self, offset: int, whence: int = 0) -> None:
        """Move the file position (``SEEK_SET``, ``SEEK_CUR`` or ``SEEK_END``)."""
        if self._closed:
            raise ValueError("I/O operation on closed file")
        self._send_pending()
        if whence == self.SEEK_SET:
            pos = offset
        elif whence == self.SEEK_CUR:
            pos = self._pos + offset
        elif whence == self.SEEK_END:
            pos = self._get_size() + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if pos < 0:
            raise OSError(errno.EINVAL, "negative seek position", self._path)
        if pos != self._realpos:
            self._ra_seq = 0  # no longer sequential: the window regrows from nothing
        self._realpos = self._pos = pos
        self._rbuffer = b""
        self._at_trailing_cr = False

    def _get_size(self) -> int:
        size = self.stat().st_size
        return 0 if size is None else size

    # -- reading ----------------------------------------------------------------------------
    def _read(self, size: int) -> bytes:
        """Up to ``size`` bytes at ``_realpos`` (``b""`` at EOF), through the read-ahead."""
        if self._cbuf or self._wbuffer:
            self._send_pending()
        pos = self._realpos
        while True:
            chunk = self._chunk
            if chunk:
                i = pos - self._chunk_off
                if 0 <= i < len(chunk):
                    n = len(chunk) - i
                    if size >= n:
                        data = chunk if i == 0 else chunk[i:]
                        self._chunk = b""
                    else:
                        n = size
                        data = chunk[i:i + n]
                    self._realpos = pos + n
                    self._ra_seq += n
                    return data
                self._chunk = b""
            data = self._next_chunk(pos, size)
            if data is None:
                return b""

    def _next_chunk(self, pos: int, size: int) -> Optional[bytes]:
        """Fetch the read-ahead entry covering ``pos`` into ``_chunk``; None at EOF."""
        self._ra_sync(pos)
        self._ra_fill(pos, size)
        ra = self._ra
        off, length, req = ra[0]
        try:
            self.sftp._wait(req)
        except BaseException:
            self._ra_reset()
            raise
        ra.popleft()
        if req.t == CMD_DATA:
            data = req.body
            req.body = b""
            n = len(data)
            if self._ra_size is not None and off + n > self._ra_size:
                self._ra_size = None  # the file grew: stop trusting the size
            if n < length:
                if n == 0:  # nothing at all: treat like EOF
                    self._ra_reset()
                    return None
                # Short read (not necessarily EOF): ask again for the rest, in order.
                rest = self._send_read(off + n, length - n)
                ra.appendleft([off + n, length - n, rest])
            self._ra_fill(pos, 0, cont=True)
            self._chunk = data
            self._chunk_off = off
            return data
        self._ra_reset()
        if req.t == CMD_STATUS:
            code, text = _parse_status(req.body)
            if code == SFTP_EOF:
                return None
            raise _status_error(code, text, self._path)
        raise SFTPError(f"Expected data, got {CMD_NAMES.get(req.t, req.t)}")

    def _send_read(self, offset: int, length: int) -> _Request:
        return self.sftp._send_request(CMD_READ, (self._hstr, _U64.pack(offset),
                                                  _U32.pack(length)))

    def _ra_reset(self) -> None:
        """Drop the read-ahead window (replies still in flight are discarded on arrival)."""
        if self._ra:
            self.sftp._abandon([e[2] for e in self._ra])
            self._ra.clear()
        self._chunk = b""
        self._ra_seq = 0

    def _ra_sync(self, pos: int) -> None:
        """Make the window start at ``pos``: skip entries before it, or reset on a jump."""
        ra = self._ra
        if not ra:
            return
        head = ra[0]
        if head[0] == pos:
            return
        if head[0] < pos < self._ra_next:
            dropped = []
            while ra and ra[0][0] + ra[0][1] <= pos:
                dropped.append(ra.popleft()[2])
            self.sftp._abandon(dropped)
            if ra:
                return
        self._ra_reset()

    def _ra_fill(self, pos: int, need: int, cont: bool = False) -> None:
        """Issue READs so that ``[pos, pos+need)`` and the read-ahead window are covered.

        With an empty window the requests start at ``pos``, or with ``cont`` where the
        last request ended (the chunk just taken from the window covers the gap).
        """
        ra = self._ra
        if not ra and not cont:
            self._ra_next = pos
        nxt = self._ra_next
        if self._ra_full:
            window = self._ra_max_bytes
        elif self._ra_seq:
            window = min(self._ra_max_bytes, max(self.READAHEAD_MIN_BYTES, 2 * self._ra_seq))
        else:
            window = 0  # nothing read in sequence yet: random access costs one request
        want = pos + window
        if self._ra_size is not None and want > self._ra_size:
            want = self._ra_size
        if want < pos + need:
            want = pos + need
        if not ra and not cont and nxt >= want:
            want = nxt + 1  # a read with an empty window always asks (it may find EOF)
        rsize = self._rsize
        max_reqs = self._ra_max_reqs
        known = self._ra_size
        while nxt < want and len(ra) < max_reqs:
            if ra or cont:
                length = rsize  # streaming: full-size requests
            else:  # a fresh start (e.g. after a seek) asks for what is needed
                length = min(rsize, max(self.MAX_REQUEST_SIZE, want - nxt))
            if known is not None and nxt < known < nxt + length:
                length = known - nxt
            ra.append([nxt, length, self._send_read(nxt, length)])
            nxt += length
        self._ra_next = nxt

    def _iter_chunks(self) -> Iterator[bytes]:
        """The rest of the file as the replies arrive (used by ``getfo``)."""
        self._check_readable()
        if self._unread_len():
            data = self._consume(self._unread_len())
            self._pos += len(data)
            yield data
        while True:
            data = self._read(1 << 62)
            if not data:
                return
            self._pos += len(data)
            yield data

    def prefetch(self, file_size: Optional[int] = None,
                 max_concurrent_requests: Optional[int] = None) -> None:
        """Read ahead at full window from the current position up to ``file_size``.

        ``file_size`` defaults to the size from ``stat()``; ``max_concurrent_requests``
        bounds the READ requests in flight (default ``READAHEAD_MAX_REQUESTS``).
        """
        if file_size is None:
            file_size = self._get_size()
        self._ra_size = file_size
        self._ra_full = True
        if max_concurrent_requests:
            self._ra_max_reqs = max(1, int(max_concurrent_requests))
        self._send_pending()
        pos = self._realpos
        self._ra_sync(pos)
        if pos < file_size:
            self._ra_fill(pos, 0)

    def readv(self, chunks: Sequence[Tuple[int, int]],
              max_concurrent_prefetch_requests: Optional[int] = None) -> Iterator[bytes]:
        """Read each ``(offset, length)`` in ``chunks``; yields their data in that order.

        All ranges are requested concurrently (at most ``max_concurrent_prefetch_requests``
        READs in flight). A range reaching past EOF yields what exists. Does not move the
        file position.
        """
        self._send_pending()
        maxreq = max(1, int(max_concurrent_prefetch_requests or self.READAHEAD_MAX_REQUESTS))
        pieces: List[Tuple[int, int, int]] = []
        rsize = self._rsize
        for idx, (offset, length) in enumerate(chunks):
            end = offset + length
            while offset < end:
                n = min(rsize, end - offset)
                pieces.append((idx, offset, n))
                offset += n
        return self._readv_iter(len(chunks), pieces, maxreq)

    def _readv_iter(self, count: int, pieces: List[Tuple[int, int, int]],
                    maxreq: int) -> Iterator[bytes]:
        inflight: Deque[Tuple[int, int, int, _Request]] = deque()
        nexti = 0
        current = 0
        parts: List[bytes] = []
        try:
            while nexti < len(pieces) or inflight:
                while nexti < len(pieces) and len(inflight) < maxreq:
                    idx, off, n = pieces[nexti]
                    nexti += 1
                    inflight.append((idx, off, n, self._send_read(off, n)))
                idx, off, n, req = inflight.popleft()
                data = self._exact_read(req, off, n)
                while current < idx:
                    yield b"".join(parts)
                    parts = []
                    current += 1
                parts.append(data)
            while current < count:
                yield b"".join(parts)
                parts = []
                current += 1
        finally:
            self.sftp._abandon([e[3] for e in inflight])

    def _exact_read(self, req: _Request, off: int, n: int) -> bytes:
        """The data of READ ``req`` for ``[off, off+n)``, re-asking after short reads."""
        got: List[bytes] = []
        while True:
            self.sftp._wait(req)
            if req.t == CMD_DATA:
                data = req.body
                if not data:
                    break
                got.append(data)
                off += len(data)
                n -= len(data)
                if n <= 0:
                    break
                req = self._send_read(off, n)
                continue
            if req.t == CMD_STATUS:
                code, text = _parse_status(req.body)
                if code == SFTP_EOF:
                    break
                raise _status_error(code, text, self._path)
            raise SFTPError(f"Expected data, got {CMD_NAMES.get(req.t, req.t)}")
        return got[0] if len(got) == 1 else b"".join(got)

    # -- writing ----------------------------------------------------------------------------
    def set_pipelined(self, pipelined: bool = True) -> None:
        """Pipelined (default): writes don't wait for their status (errors surface at the
        next write, ``flush`` or ``close``). Not pipelined: every write waits."""
        if not pipelined:
            self._send_coalesced()
        self.pipelined = bool(pipelined)

    def write(self, data: Union[str, BytesLike]) -> None:
        """Write ``data`` (str is UTF-8 encoded). See the module docstring for buffering."""
        if (self._flags & self.FLAG_BUFFERED and not self._flags & self.FLAG_LINE_BUFFERED
                and self.pipelined):
            # Block-buffered: the coalescing buffer already does the job, without the
            # wait-for-every-write a plain flush() implies.
            if isinstance(data, str):
                data = data.encode("utf-8")
            self._check_writable()
            self._write_all(data)
            return
        BufferedFile.write(self, data)

    def _write(self, data: BytesLike) -> int:
        self._raise_write_error(always=True)
        try:
            return self._write_some(data)
        except BaseException as exc:
            if exc is self._werror:
                self._wreported = True  # reported right here, to the writer
            raise

    def _write_some(self, data: BytesLike) -> int:
        if self._ra or self._chunk:
            self._ra_reset()  # read-ahead data may predate this write
        n = len(data)
        pos = self._realpos
        if not self.pipelined or self._flags & self.FLAG_LINE_BUFFERED:
            with self._wlock:
                self._send_coalesced()
                self._send_writes(pos, data)
            if not self.pipelined:
                self._reap_writes(wait_all=True)
                self._raise_write_error(always=True)
            return n
        wsize = self._wsize
        view = data if isinstance(data, memoryview) else memoryview(data)
        with self._wlock:
            if self._cbuf and self._cbuf_off + len(self._cbuf) != pos:
                self._send_coalesced()
            off = 0
            while off < n:
                cbuf = self._cbuf
                if not cbuf:
                    if n - off >= wsize:
                        self._send_write(pos + off, view[off:off + wsize])
                        off += wsize
                        continue
                    self._cbuf_off = pos + off
                    self.sftp._mark_dirty(self, True)
                take = min(wsize - len(cbuf), n - off)
                cbuf += view[off:off + take]
                off += take
                if len(cbuf) >= wsize:
                    self._send_coalesced()
        return n

    def _send_writes(self, pos: int, data: BytesLike) -> None:
        wsize = self._wsize
        view = data if isinstance(data, memoryview) else memoryview(data)
        for off in range(0, len(view), wsize):
            self._send_write(pos + off, view[off:off + wsize])

    def _send_write(self, offset: int, data: BytesLike) -> None:
        try:
            req = self.sftp._send_request(CMD_WRITE, (self._hstr, _U64.pack(offset),
                                                      _U32.pack(len(data)), data))
        except BaseException as exc:
            # Maybe raised inside another operation (coalesced data sent on its behalf):
            # the file's own flush/close must still report the loss.
            if self._werror is None:
                self._werror = exc
                self._wreported = False
            raise
        self._wreqs.append((req, len(data)))
        self._wbytes += len(data)
        if len(self._wreqs) > 8:
            self._reap_writes()

    def _send_coalesced(self) -> None:
        """Send the coalesced write data (no waiting)."""
        if not self._cbuf:
            return
        with self._wlock:
            cbuf = self._cbuf
            if not cbuf:
                return
            self._cbuf = bytearray()
            self.sftp._mark_dirty(self, False)
            self._send_write(self._cbuf_off, cbuf)

    def _send_pending(self) -> None:
        """Put every buffered write on the wire (ordering before another request)."""
        if self._wbuffer:
            BufferedFile.flush(self)
        if self._cbuf:
            self._send_coalesced()

    def _reap_writes(self, wait_all: bool = False) -> None:
        """Collect write statuses: finished ones, and wait while over the limits."""
        wreqs = self._wreqs
        while wreqs:
            req, n = wreqs[0]
            if not req.done:
                if not (wait_all or len(wreqs) > self.WRITE_MAX_REQUESTS
                        or self._wbytes > self.WRITE_MAX_BYTES):
                    return
                try:
                    self.sftp._wait(req)
                except BaseException as exc:
                    wreqs.popleft()
                    self._wbytes -= n
                    if self._werror is None:
                        self._werror = exc
                        self._wreported = True  # raised right now
                    raise
            wreqs.popleft()
            self._wbytes -= n
            if req.error is not None:
                if self._werror is None:
                    self._werror = self.sftp._dead_error()
                continue
            if req.t == CMD_STATUS:
                code, text = _parse_status(req.body)
                if code == SFTP_OK:
                    continue
                err: BaseException = _status_error(code, text, self._path)
            else:
                err = SFTPError(f"Expected status, got {CMD_NAMES.get(req.t, req.t)}")
            if self._werror is None:
                self._werror = err

    def _raise_write_error(self, always: bool) -> None:
        err = self._werror
        if err is not None and (always or not self._wreported):
            self._wreported = True
            raise err

    # -- metadata ---------------------------------------------------------------------------
    def stat(self) -> SFTPAttributes:
        """Attributes of the open file (FSTAT)."""
        self._send_pending()
        msg = self.sftp._call(CMD_FSTAT, (self._hstr,), self._path, CMD_ATTRS)
        return SFTPAttributes._from_msg(msg)

    def _fsetstat(self, attr: SFTPAttributes) -> None:
        self._send_pending()
        self.sftp._call_status(CMD_FSETSTAT, (self._hstr, _pack_attrs(attr)), self._path)

    def chmod(self, mode: int) -> None:
        attr = SFTPAttributes()
        attr.st_mode = mode
        self._fsetstat(attr)

    def chown(self, uid: int, gid: int) -> None:
        attr = SFTPAttributes()
        attr.st_uid, attr.st_gid = uid, gid
        self._fsetstat(attr)

    def utime(self, times: Optional[Tuple[float, float]]) -> None:
        """Set ``(atime, mtime)``; None means now."""
        self._fsetstat(_times_attr(times))

    def truncate(self, size: int) -> None:
        """Truncate (or extend) the file to ``size`` bytes (the position is unchanged)."""
        attr = SFTPAttributes()
        attr.st_size = size
        self._fsetstat(attr)
        self._ra_reset()

    def fsync(self) -> None:
        """Flush, then have the server fsync the file (``fsync@openssh.com``)."""
        self.flush()
        self.sftp._require_ext("fsync@openssh.com", "fsync")
        self.sftp._extended("fsync@openssh.com", (self._hstr,), self._path)

    def statvfs(self) -> SFTPStatVFS:
        """File-system statistics for this file (``fstatvfs@openssh.com``)."""
        self.sftp._require_ext("fstatvfs@openssh.com", "fstatvfs")
        self._send_pending()
        msg = self.sftp._extended("fstatvfs@openssh.com", (self._hstr,), self._path,
                                  CMD_EXTENDED_REPLY)
        return _parse_statvfs(msg)

    def check(self, hash_algorithm: str, offset: int = 0, length: int = 0,
              block_size: int = 0) -> bytes:
        """Server-side hash of a range (``check-file-handle`` extension).

        ``hash_algorithm`` is a comma-separated preference list (e.g. ``"sha256,sha1"``);
        ``length`` 0 means to the end; ``block_size`` 0 means one hash for the whole range,
        otherwise one per block, concatenated. Raises ``OSError`` (EOPNOTSUPP) if the
        server lacks the extension (OpenSSH does).
        """
        self._send_pending()
        msg: Message = self.sftp._extended(
            "check-file-handle",
            (self._hstr, _string(hash_algorithm.encode("ascii")), _U64.pack(offset),
             _U64.pack(length), _U32.pack(block_size)),
            self._path, CMD_EXTENDED_REPLY)
        msg.get_text()  # "check-file"
        msg.get_text()  # the algorithm the server chose
        return msg.get_remainder()


__all__ = ["SFTPFile"]
