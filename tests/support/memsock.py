"""An in-memory, socket-like pair for fast protocol tests.

Each end offers exactly what the transport may rely on for a ``sock=``: ``send``, ``recv``
(``b""`` at EOF, ``socket.timeout`` on timeout), ``settimeout``, ``gettimeout``, ``close`` and
``_closed``. There is deliberately no ``fileno()``, so nothing can sneak in a ``select``.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Optional, Tuple


class _Pipe:
    """One direction: bytes written by one end, read by the other."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.buf = bytearray()
        self.eof = False


class MemorySocket:
    def __init__(self, inbound: _Pipe, outbound: _Pipe, name: str) -> None:
        self._in = inbound
        self._out = outbound
        self._timeout: Optional[float] = None
        self._closed = False
        self.name = name

    def __repr__(self) -> str:
        return f"<MemorySocket {self.name}{' closed' if self._closed else ''}>"

    def settimeout(self, timeout: Optional[float]) -> None:
        self._timeout = timeout

    def gettimeout(self) -> Optional[float]:
        return self._timeout

    def send(self, data) -> int:
        if self._closed:
            raise OSError(errno.EBADF, "send on a closed MemorySocket")
        with self._out.cond:
            if self._out.eof:
                raise BrokenPipeError(errno.EPIPE, "peer closed the MemorySocket")
            self._out.buf += data
            self._out.cond.notify_all()
        return len(data)

    def sendall(self, data) -> None:
        self.send(data)

    def recv(self, n: int) -> bytes:
        if self._closed:
            raise OSError(errno.EBADF, "recv on a closed MemorySocket")
        pipe = self._in
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with pipe.cond:
            while not pipe.buf and not pipe.eof and not self._closed:
                if deadline is None:
                    pipe.cond.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("timed out")
                pipe.cond.wait(left)
            if self._closed:
                raise OSError(errno.EBADF, "MemorySocket closed while reading")
            chunk = bytes(pipe.buf[:n])
            del pipe.buf[:n]
            return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Our reads end and the peer sees EOF after what we already sent.
        for pipe in (self._in, self._out):
            with pipe.cond:
                pipe.eof = True
                pipe.cond.notify_all()


def socket_pair() -> Tuple[MemorySocket, MemorySocket]:
    """Two connected ends: ``(client_end, server_end)``."""
    a_to_b, b_to_a = _Pipe(), _Pipe()
    return MemorySocket(b_to_a, a_to_b, "client"), MemorySocket(a_to_b, b_to_a, "server")
