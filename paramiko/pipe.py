"""OS-level "event" pipes: a file descriptor that ``select`` reports readable while set.

``Channel.fileno()`` uses one so applications can multiplex channels with ``select``/
``selectors``. Callers serialize ``set``/``clear`` themselves (Channel does, under its lock).
"""

from __future__ import annotations

import os
import socket
from typing import Tuple


class PosixPipe:
    """An ``os.pipe`` pair; the read end is readable exactly while the pipe is set."""

    def __init__(self) -> None:
        self._rfd, self._wfd = os.pipe()
        # Non-blocking both ways: set/clear must never stall the thread that calls them.
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        self._set = False
        self._forever = False
        self._closed = False

    def fileno(self) -> int:
        return self._rfd

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set or self._closed:
            return
        self._set = True
        os.write(self._wfd, b"*")

    def clear(self) -> None:
        if not self._set or self._forever or self._closed:
            return
        self._set = False
        try:
            os.read(self._rfd, 1)
        except BlockingIOError:
            pass

    def set_forever(self) -> None:
        self._forever = True
        self.set()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.close(self._rfd)
        os.close(self._wfd)


class WindowsPipe:
    """The same over a connected socket pair (``select`` on Windows takes only sockets)."""

    def __init__(self) -> None:
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._set = False
        self._forever = False
        self._closed = False

    def fileno(self) -> int:
        return self._rsock.fileno()

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set or self._closed:
            return
        self._set = True
        self._wsock.send(b"*")

    def clear(self) -> None:
        if not self._set or self._forever or self._closed:
            return
        self._set = False
        try:
            self._rsock.recv(1)
        except BlockingIOError:
            pass

    def set_forever(self) -> None:
        self._forever = True
        self.set()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._rsock.close()
        self._wsock.close()


def make_pipe():
    """A new event pipe for this platform."""
    return WindowsPipe() if os.name == "nt" else PosixPipe()


class OrPipe:
    """One of two inputs of a shared pipe that is set while either input is set."""

    def __init__(self, pipe) -> None:
        self._set = False
        self._partner: OrPipe = self
        self._pipe = pipe

    def set(self) -> None:
        self._set = True
        if not self._partner._set:
            self._pipe.set()

    def clear(self) -> None:
        self._set = False
        if not self._partner._set:
            self._pipe.clear()


def make_or_pipe(pipe) -> Tuple[OrPipe, OrPipe]:
    """Two linked inputs over ``pipe``: it stays set while at least one of them is set."""
    a, b = OrPipe(pipe), OrPipe(pipe)
    a._partner = b
    b._partner = a
    return a, b
