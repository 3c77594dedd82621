"""ANSI colour helpers: ``red(text, bold=False)`` and friends wrap text in escape codes."""

from __future__ import annotations

from typing import Callable

__all__ = ["blue", "cyan", "green", "magenta", "red", "white", "yellow"]


def _colour(code: int) -> Callable[..., str]:
    def paint(text: str, bold: bool = False) -> str:
        weight = "1;" if bold else ""
        return f"\033[{weight}{code}m{text}\033[0m"

    return paint


red = _colour(31)
green = _colour(32)
yellow = _colour(33)
blue = _colour(34)
magenta = _colour(35)
cyan = _colour(36)
white = _colour(37)
for _name in __all__:
    globals()[_name].__name__ = _name
del _name
