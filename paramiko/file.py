"""``BufferedFile``: Python file semantics over two hooks, ``_read(size)`` and ``_write(data)``.

Subclasses (channel files, SFTP files) implement the hooks; this class adds read buffering,
line splitting (optionally with universal newlines), write buffering (none, line or block)
and iteration.

Text vs bytes follows upstream: ``read()`` always returns bytes; ``readline()``, ``readlines``
and iteration return ``str`` (UTF-8) unless the mode contains ``"b"``.
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Union

from paramiko.util import ClosingContextManager

_LF = 10
_CR = 13
_VALID_MODE_CHARS = frozenset("rwaxbtU+")


class BufferedFile(ClosingContextManager):
    """Base of file-like objects in this library (see module docstring)."""

    _DEFAULT_BUFSIZE = 8192
    # Size asked of ``_read`` per call when reading to EOF; big calls mean few lock trips.
    _READ_ALL_SIZE = 256 * 1024

    SEEK_SET = 0
    SEEK_CUR = 1
    SEEK_END = 2

    FLAG_READ = 0x1
    FLAG_WRITE = 0x2
    FLAG_APPEND = 0x4
    FLAG_BINARY = 0x10
    FLAG_BUFFERED = 0x20
    FLAG_LINE_BUFFERED = 0x40
    FLAG_UNIVERSAL_NEWLINE = 0x80

    def __init__(self) -> None:
        self.newlines: Union[None, str, tuple] = None
        self._flags = 0
        self._bufsize = self._DEFAULT_BUFSIZE
        self._wbuffer = bytearray()
        # Unread input lives in _rbuf[_rpos:]; consuming just moves _rpos (no copying).
        self._rbuf = bytearray()
        self._rpos = 0
        self._closed = False
        self._at_trailing_cr = False
        # Our idea of the file position (what tell() reports) and the position of the
        # underlying stream; they differ by what sits in the buffers.
        self._pos = self._realpos = 0
        self._size = 0

    # -- hooks for subclasses ------------------------------------------------------------
    def _read(self, size: int) -> Optional[bytes]:
        """Up to ``size`` bytes from the underlying stream; empty/None means EOF."""
        raise OSError("read not implemented")

    def _write(self, data: bytes) -> int:
        """Write some of ``data``; return how many bytes were taken."""
        raise OSError("write not implemented")

    def _get_size(self) -> int:
        """Size of the underlying file (used by append mode); 0 if unknown."""
        return 0

    # -- state -------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def _rbuffer(self) -> bytes:
        # Subclasses that seek reset the read buffer through this attribute.
        return bytes(self._rbuf[self._rpos:])

    @_rbuffer.setter
    def _rbuffer(self, value: bytes) -> None:
        self._rbuf = bytearray(value)
        self._rpos = 0

    def _unread_len(self) -> int:
        return len(self._rbuf) - self._rpos

    def _consume(self, n: int) -> bytes:
        """Take ``n`` bytes from the front of the read buffer."""
        start = self._rpos
        out = bytes(self._rbuf[start:start + n])
        self._rpos = start + n
        self._compact()
        return out

    def _unread(self, parts: List[bytes]) -> None:
        """Put ``parts`` back in front of the read buffer."""
        if parts:
            self._rbuf = bytearray(b"".join(parts)) + self._rbuf[self._rpos:]
            self._rpos = 0

    def _compact(self) -> None:
        if self._rpos >= len(self._rbuf):
            self._rbuf = bytearray()
            self._rpos = 0
        elif self._rpos > 65536 and self._rpos * 2 > len(self._rbuf):
            del self._rbuf[:self._rpos]
            self._rpos = 0

    def _check_readable(self) -> None:
        if self._closed:
            raise OSError("File is closed")
        if not self._flags & self.FLAG_READ:
            raise OSError("File is not open for reading")

    def _check_writable(self) -> None:
        if self._closed:
            raise OSError("File is closed")
        if not self._flags & self.FLAG_WRITE:
            raise OSError("File is not open for writing")

    def readable(self) -> bool:
        return bool(self._flags & self.FLAG_READ)

    def writable(self) -> bool:
        return bool(self._flags & self.FLAG_WRITE)

    def seekable(self) -> bool:
        return False

    # -- iteration -----------------------------------------------------------------------
    def __iter__(self) -> Iterator[Union[str, bytes]]:
        if self._closed:
            raise ValueError("I/O operation on closed file")
        return self

    def __next__(self) -> Union[str, bytes]:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Flush pending writes and mark the file closed (idempotent)."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True

    def flush(self) -> None:
        if self._wbuffer:
            data = bytes(self._wbuffer)
            self._wbuffer = bytearray()
            self._write_all(data)

    # -- reading -------------------------------------------------------------------------
    def read(self, size: Optional[int] = None) -> bytes:
        """Up to ``size`` bytes (all until EOF if None or negative); fewer only at EOF."""
        self._check_readable()
        if size is None or size < 0:
            parts: List[bytes] = []
            if self._unread_len():
                parts.append(self._consume(self._unread_len()))
            try:
                while True:
                    new = self._read(max(self._bufsize, self._READ_ALL_SIZE))
                    if not new:
                        break
                    parts.append(new)
            except BaseException:
                self._unread(parts)  # a timeout must not lose what was already read
                raise
            result = parts[0] if len(parts) == 1 else b"".join(parts)
            self._pos += len(result)
            return result
        if size == 0:
            return b""
        have = self._unread_len()
        if have >= size:
            result = self._consume(size)
            self._pos += size
            return result
        parts = [self._consume(have)] if have else []
        try:
            while have < size:
                want = size - have
                if self._flags & self.FLAG_BUFFERED:
                    want = max(self._bufsize, want)
                new = self._read(want)
                if not new:
                    break
                if have + len(new) > size:
                    keep = size - have
                    parts.append(new[:keep])
                    self._rbuf += memoryview(new)[keep:]  # the surplus stays buffered
                    have = size
                else:
                    parts.append(new)
                    have += len(new)
        except BaseException:
            self._unread(parts)
            raise
        result = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pos += len(result)
        return result

    def readinto(self, buff) -> int:
        data = self.read(len(buff))
        buff[:len(data)] = data
        return len(data)

    def _find_eol(self, start: int, end: int) -> int:
        """Index of the first line terminator in ``_rbuf[start:end]``, or -1."""
        buf = self._rbuf
        lf = buf.find(b"\n", start, end)
        if self._flags & self.FLAG_UNIVERSAL_NEWLINE:
            cr = buf.find(b"\r", start, end if lf < 0 else lf)
            if cr >= 0:
                return cr
        return lf

    def _record_newline(self, nl: str) -> None:
        if not self._flags & self.FLAG_UNIVERSAL_NEWLINE:
            return
        if self.newlines is None:
            self.newlines = nl
        elif isinstance(self.newlines, str):
            if self.newlines != nl:
                self.newlines = (self.newlines, nl)
        elif nl not in self.newlines:
            self.newlines = self.newlines + (nl,)

    def readline(self, size: Optional[int] = None) -> Union[str, bytes]:
        """One line including its terminator ("" / b"" at EOF); at most ``size`` bytes.

        With universal newlines (mode "U") "\\r" and "\\r\\n" end lines too and come back
        as "\\n".
        """
        self._check_readable()
        limit = None if size is None or size < 0 else size
        universal = self._flags & self.FLAG_UNIVERSAL_NEWLINE
        scanned = self._rpos  # bytes before this were already searched
        while True:
            if self._at_trailing_cr and self._unread_len():
                # A "\r" ended the previous line at the buffer edge; swallow its "\n".
                self._at_trailing_cr = False
                if self._rbuf[self._rpos] == _LF:
                    self._rpos += 1
                    self._pos += 1
                    self._record_newline("\r\n")
                else:
                    self._record_newline("\r")
                scanned = max(scanned, self._rpos)
            start = self._rpos
            end = len(self._rbuf) if limit is None else min(len(self._rbuf), start + limit)
            eol = self._find_eol(scanned, end)
            if eol >= 0:
                break
            scanned = end
            if limit is not None and end - start >= limit:
                break  # size reached without a terminator
            new = self._read(self._bufsize)
            if not new:
                break  # EOF: return what is left
            self._rbuf += new
        start = self._rpos
        if eol < 0:
            line = self._consume(end - start)
            self._pos += len(line)
        elif universal and self._rbuf[eol] == _CR:
            line_end = eol + 1
            if line_end < len(self._rbuf):
                if self._rbuf[line_end] == _LF:
                    line_end += 1
                    self._record_newline("\r\n")
                else:
                    self._record_newline("\r")
            else:
                self._at_trailing_cr = True  # don't block waiting to see a "\n"
            raw_len = line_end - start
            line = bytes(self._rbuf[start:eol]) + b"\n"
            self._rpos = line_end
            self._compact()
            self._pos += raw_len
        else:
            if universal:
                self._record_newline("\n")
            line = self._consume(eol + 1 - start)
            self._pos += len(line)
        if self._flags & self.FLAG_BINARY:
            return line
        return line.decode("utf-8")

    def readlines(self, sizehint: Optional[int] = None) -> List[Union[str, bytes]]:
        """All remaining lines (stopping once ``sizehint`` bytes were read, if given)."""
        lines: List[Union[str, bytes]] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                break
            lines.append(line)
            total += len(line)
            if sizehint is not None and 0 < sizehint <= total:
                break
        return lines

    # -- writing -------------------------------------------------------------------------
    def write(self, data: Union[str, bytes, bytearray, memoryview]) -> None:
        """Write ``data`` (str is UTF-8 encoded), buffered per the file's mode."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._check_writable()
        if not self._flags & self.FLAG_BUFFERED:
            self._write_all(data)
            return
        if self._flags & self.FLAG_LINE_BUFFERED:
            self._wbuffer += data
            last = self._wbuffer.rfind(b"\n")
            if last >= 0:
                out = bytes(self._wbuffer[:last + 1])
                del self._wbuffer[:last + 1]
                self._write_all(out)
            return
        if not self._wbuffer and len(data) >= self._bufsize:
            self._write_all(data)  # big write with nothing pending: skip the copy
            return
        self._wbuffer += data
        if len(self._wbuffer) >= self._bufsize:
            self.flush()

    def writelines(self, sequence) -> None:
        for line in sequence:
            self.write(line)

    def _write_all(self, data: Union[bytes, bytearray, memoryview]) -> None:
        view = memoryview(data)
        while len(view):
            count = self._write(view)
            if count is None or count <= 0:
                raise OSError("write made no progress (underlying stream accepted 0 bytes)")
            view = view[count:]
            if self._flags & self.FLAG_APPEND:
                self._size += count
                self._pos = self._realpos = self._size
            else:
                self._pos += count
                self._realpos += count

    # -- positioning ---------------------------------------------------------------------
    def seek(self, offset: int, whence: int = 0) -> None:
        raise OSError("File does not support seeking.")

    def tell(self) -> int:
        return self._pos

    # -- mode ----------------------------------------------------------------------------
    def _set_mode(self, mode: str = "r", bufsize: int = -1) -> None:
        """Parse a Python-style mode string and buffering size into ``_flags``.

        ``bufsize``: 0 or negative = unbuffered writes (upstream's default, so interactive
        writes go out at once), 1 = line buffered, >1 = block buffered with that size.
        """
        bad = set(mode) - _VALID_MODE_CHARS
        if bad:
            raise ValueError(f"invalid mode {mode!r}")
        self._bufsize = self._DEFAULT_BUFSIZE
        self._flags &= ~(self.FLAG_BUFFERED | self.FLAG_LINE_BUFFERED)
        if bufsize == 1:
            self._flags |= self.FLAG_BUFFERED | self.FLAG_LINE_BUFFERED
        elif bufsize > 1:
            self._bufsize = bufsize
            self._flags |= self.FLAG_BUFFERED
        if "r" in mode or "+" in mode:
            self._flags |= self.FLAG_READ
        if "w" in mode or "x" in mode or "+" in mode:
            self._flags |= self.FLAG_WRITE
        if "a" in mode:
            self._flags |= self.FLAG_WRITE | self.FLAG_APPEND
            self._size = self._get_size()
            self._pos = self._realpos = self._size
        if "b" in mode:
            self._flags |= self.FLAG_BINARY
        if "U" in mode:
            self._flags |= self.FLAG_UNIVERSAL_NEWLINE
            self.newlines = None
