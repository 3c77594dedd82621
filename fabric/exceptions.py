"""Exceptions Fabric raises on purpose (most failures end in ``abort()`` instead)."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["CommandTimeout", "NetworkError"]


class NetworkError(Exception):
    """A host (or a gateway on the way to it) could not be reached or logged in to.

    ``message`` is the text shown to the user, ``wrapped`` the low-level exception behind it.
    Beyond Fabric 1.x, ``host`` names the host string being connected, ``hop`` the hop that
    failed (``user@host:port``; equal to the target's when the target itself failed),
    ``hop_index`` its place in the route (0 = first dialled) and ``phase`` what was being done
    (``dns``, ``tcp``, ``proxycommand``, ``banner``, ``kex``, ``hostkey``, ``auth``,
    ``channel-open``, ``transport``, ``config``), when known.
    """

    def __init__(self, message: Optional[str] = None, wrapped: Optional[BaseException] = None,
                 *, host: Optional[str] = None, hop: Optional[str] = None,
                 hop_index: Optional[int] = None, phase: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.wrapped = wrapped
        self.host = host
        self.hop = hop
        self.hop_index = hop_index
        self.phase = phase

    def __str__(self) -> str:
        if self.message:
            return self.message
        return str(self.wrapped) if self.wrapped is not None else ""

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.message, self.wrapped, self.__dict__.copy()))


def _rebuild(cls: type, message: Any, wrapped: Any, state: dict) -> NetworkError:
    obj = cls(message, wrapped)
    obj.__dict__.update(state)
    return obj


class CommandTimeout(Exception):
    """A remote command ran longer than its ``timeout`` (``env.command_timeout``)."""

    def __init__(self, timeout: Any) -> None:
        self.timeout = timeout
        self.message = f"Command failed to finish in {timeout} seconds"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message
