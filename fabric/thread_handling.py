"""Helper threads that remember how they died, and carry the host's env with them."""

from __future__ import annotations

import contextvars
import sys
import threading
from typing import Any, Callable, Optional, Tuple

__all__ = ["ThreadHandler"]


class ThreadHandler:
    """Run ``callable(*args, **kwargs)`` in a daemon thread named ``name``.

    The thread runs in a copy of the creating thread's context, so Fabric's ``env`` and
    ``output`` are the same host-specific ones its creator sees. An exception is kept in
    :attr:`exception` (a ``sys.exc_info()`` triple) for :meth:`raise_if_needed`.
    """

    def __init__(self, name: str, callable: Callable[..., Any], *args: Any,
                 **kwargs: Any) -> None:
        self.exception: Optional[Tuple[Any, Any, Any]] = None
        ctx = contextvars.copy_context()

        def wrapper() -> None:
            try:
                ctx.run(callable, *args, **kwargs)
            except BaseException:
                self.exception = sys.exc_info()

        self.thread = threading.Thread(target=wrapper, name=name, daemon=True)
        self.thread.start()

    def join(self, timeout: Optional[float] = None) -> None:
        self.thread.join(timeout)

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def raise_if_needed(self) -> None:
        if self.exception is not None:
            raise self.exception[1].with_traceback(self.exception[2])
