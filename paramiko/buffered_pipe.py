"""``BufferedPipe``: a byte buffer filled by one thread and read (with a timeout) by another.

Also home of :class:`ChunkBuffer`, the chunk queue that ``Channel`` uses for its streams: data
is kept as the chunks it arrived in, so feeding is O(1) and reading copies each byte at most
once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Deque, Optional, Union

BytesLike = Union[bytes, bytearray, memoryview]


class PipeTimeout(IOError):
    """A read on a :class:`BufferedPipe` timed out before any data arrived."""


class ChunkBuffer:
    """FIFO of byte chunks with O(1) amortized append and consumption. Not thread-safe."""

    __slots__ = ("_chunks", "_pos", "_len")

    def __init__(self) -> None:
        self._chunks: Deque[bytes] = deque()
        self._pos = 0  # bytes already consumed from the head chunk
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def append(self, data: BytesLike) -> None:
        if not data:
            return
        if type(data) is not bytes:
            data = bytes(data)  # never keep a view of a buffer the caller may reuse
        self._chunks.append(data)
        self._len += len(data)

    def take(self, n: int) -> bytes:
        """Remove and return up to ``n`` bytes (the head chunk itself when it fits exactly)."""
        if n <= 0 or not self._len:
            return b""
        chunks = self._chunks
        head = chunks[0]
        pos = self._pos
        avail = len(head) - pos
        if avail > n:
            self._pos = pos + n
            self._len -= n
            return head[pos:pos + n]
        if avail == n or len(chunks) == 1:
            chunks.popleft()
            self._pos = 0
            self._len -= avail
            return head if pos == 0 else head[pos:]
        # Gather several chunks into one result: a single copy via join.
        parts = [head if pos == 0 else memoryview(head)[pos:]]
        chunks.popleft()
        self._pos = 0
        got = avail
        while got < n and chunks:
            nxt = chunks[0]
            need = n - got
            if len(nxt) <= need:
                parts.append(nxt)
                chunks.popleft()
                got += len(nxt)
            else:
                parts.append(memoryview(nxt)[:need])
                self._pos = need
                got = n
        self._len -= got
        return b"".join(parts)

    def take_all(self) -> bytes:
        return self.take(self._len)

    def clear(self) -> None:
        self._chunks.clear()
        self._pos = 0
        self._len = 0

    def move_to(self, other: ChunkBuffer) -> None:
        """Append everything buffered here to ``other`` (keeps chunk boundaries)."""
        if not self._len:
            return
        if self._pos:
            self._chunks[0] = self._chunks[0][self._pos:]
            self._pos = 0
        other._chunks.extend(self._chunks)
        other._len += self._len
        self.clear()


class BufferedPipe:
    """A thread-safe byte pipe: ``feed`` from a producer, ``read`` with a timeout elsewhere.

    ``set_event(event)`` attaches anything with ``set()``/``clear()`` (a ``threading.Event``
    or a pollable pipe); it is set while data is buffered, and forever once closed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._buffer = ChunkBuffer()
        self._closed = False
        self._event = None

    def set_event(self, event) -> None:
        with self._lock:
            self._event = event
            if self._closed or self._buffer:
                event.set()
            else:
                event.clear()

    def feed(self, data: Union[BytesLike, str]) -> None:
        """Add ``data`` (str is UTF-8 encoded) and wake any reader."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        with self._lock:
            if self._event is not None:
                self._event.set()
            self._buffer.append(data)
            self._cv.notify_all()

    def read_ready(self) -> bool:
        """True if a ``read`` would return data immediately (EOF alone does not count)."""
        with self._lock:
            return bool(self._buffer)

    def read(self, nbytes: int, timeout: Optional[float] = None) -> bytes:
        """Up to ``nbytes`` bytes; waits up to ``timeout`` seconds (None: forever, 0: never).

        Returns ``b""`` once the pipe is closed and drained; raises :class:`PipeTimeout` if
        the timeout expires with nothing buffered.
        """
        if nbytes < 0:
            raise ValueError("nbytes must not be negative")
        with self._lock:
            if not self._buffer and not self._closed:
                if timeout is not None and timeout <= 0:
                    raise PipeTimeout("no data buffered")
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._buffer and not self._closed:
                    if deadline is None:
                        self._cv.wait()
                    else:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise PipeTimeout(f"no data within {timeout} seconds")
                        self._cv.wait(left)
            out = self._buffer.take(nbytes)
            if self._event is not None and not self._buffer and not self._closed:
                self._event.clear()
            return out

    def empty(self) -> bytes:
        """Remove and return everything buffered, without waiting."""
        with self._lock:
            out = self._buffer.take_all()
            if self._event is not None and not self._closed:
                self._event.clear()
            return out

    def close(self) -> None:
        """Mark end of data: readers drain what is left, then get ``b""``."""
        with self._lock:
            self._closed = True
            self._cv.notify_all()
            if self._event is not None:
                self._event.set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._buffer)
