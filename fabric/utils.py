"""Small helpers shared by every Fabric module: messages (abort, warn, puts), the attribute
dictionaries behind ``env``/``output``, and terminal queries.

All console writes go through :data:`output_lock`, so lines from hosts running in parallel
threads never interleave mid-line.
"""

from __future__ import annotations

import os
import sys
import textwrap
import threading
from typing import Any, Dict, Iterable, List, Optional, Tuple

__all__ = [
    "abort",
    "apply_lcwd",
    "error",
    "fastprint",
    "handle_prompt_abort",
    "indent",
    "isatty",
    "output_lock",
    "puts",
    "warn",
]

#: Held while anything is written to the console (stdout or stderr) or a prompt is shown.
output_lock = threading.RLock()


class _AttributeDict(dict):
    """A dict whose keys can also be read and written as attributes (``env.host``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def first(self, *names: str) -> Any:
        """The value of the first of ``names`` that is set to something truthy, else None."""
        for name in names:
            value = self.get(name)
            if value:
                return value
        return None


class _AliasDict(_AttributeDict):
    """A dict where some keys are aliases for groups of other keys.

    Setting an alias sets every key it stands for (aliases may nest); reading an alias reads
    the real key of the same name if there is one. ``output['everything'] = False`` hides all.
    """

    def __init__(self, arg: Any = None, aliases: Optional[Dict[str, List[str]]] = None) -> None:
        init = super().__init__
        if arg is not None:
            init(arg)
        else:
            init()
        # Stored in __dict__ so it is not a key of the mapping.
        object.__setattr__(self, "aliases", dict(aliases or {}))

    def __getattr__(self, key: str) -> Any:
        if key == "aliases":
            return object.__getattribute__(self, "aliases")
        return super().__getattr__(key)

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "aliases":
            object.__setattr__(self, key, value)
        else:
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self.aliases:
            for target in self.expand_aliases([key]):
                dict.__setitem__(self, target, value)
        else:
            dict.__setitem__(self, key, value)

    def expand_aliases(self, keys: Iterable[str]) -> List[str]:
        """The real keys behind ``keys``, aliases expanded recursively (no duplicates)."""
        out: List[str] = []
        seen: set = set()

        def walk(key: str) -> None:
            if key in seen:
                return
            seen.add(key)
            if key in self.aliases:
                for sub in self.aliases[key]:
                    walk(sub)
            elif key not in out:
                out.append(key)

        for key in keys:
            walk(key)
        return out

    def copy(self) -> _AliasDict:
        return _AliasDict(dict(self), aliases=self.aliases)

    def __reduce__(self) -> Any:
        return (_AliasDict, (dict(self), self.aliases))


def _state() -> Any:
    from fabric import state

    return state


def isatty(stream: Any) -> bool:
    """True if ``stream`` is an interactive terminal (False for anything without ``isatty``)."""
    try:
        return bool(stream.isatty())
    except Exception:
        return False


def _write(stream: Any, text: str, flush: bool = True) -> None:
    with output_lock:
        try:
            stream.write(text)
            if flush:
                stream.flush()
        except (ValueError, OSError):  # a closed or broken console must not mask the error
            pass


def abort(msg: str) -> None:
    """Print ``Fatal error: msg`` and ``Aborting.`` to stderr, then stop.

    Raises ``env.abort_exception(msg)`` when set, else ``SystemExit(1)`` carrying ``.message``.
    """
    state = _state()
    env, output = state.env, state.output
    if output.get("aborts", True):
        text = f"\nFatal error: {msg}\n"
        if env.get("colorize_errors"):
            from fabric.colors import red

            text = red(text)
        _write(sys.stderr, text + "\nAborting.\n")
    exc_class = env.get("abort_exception")
    if exc_class:
        raise exc_class(msg)
    exit_exc = SystemExit(1)
    exit_exc.message = msg  # type: ignore[attr-defined]
    raise exit_exc


def warn(msg: str) -> None:
    """Print ``Warning: msg`` (between blank lines) to stderr unless warnings are hidden."""
    state = _state()
    if state.output.get("warnings", True):
        text = f"\nWarning: {msg}\n\n"
        if state.env.get("colorize_errors"):
            from fabric.colors import magenta

            text = magenta(text)
        _write(sys.stderr, text)


def indent(text: Any, spaces: int = 4, strip: bool = False) -> str:
    """Indent every line of ``text`` (a string or a list of lines) by ``spaces``.

    ``strip=True`` first removes the common leading whitespace.
    """
    if not hasattr(text, "splitlines"):
        text = "\n".join(text)
    if strip:
        text = textwrap.dedent(text)
    pad = " " * spaces
    return "\n".join(pad + line for line in text.splitlines())


def puts(text: Any, show_prefix: Optional[bool] = None, end: str = "\n",
         flush: bool = False) -> None:
    """Print ``text`` to stdout, prefixed ``[host_string] `` when a host is set, unless the
    ``user`` output level is hidden."""
    state = _state()
    if not state.output.get("user", True):
        return
    if show_prefix is None:
        show_prefix = bool(state.env.get("output_prefix", True))
    prefix = ""
    host = state.env.get("host_string")
    if show_prefix and host:
        prefix = f"[{host}] "
    _write(sys.stdout, f"{prefix}{text}{end}", flush=flush)


def fastprint(text: Any, show_prefix: bool = False, end: str = "",
              flush: bool = True) -> None:
    """:func:`puts` without prefix or newline, flushed at once (for progress output)."""
    puts(text, show_prefix=show_prefix, end=end, flush=flush)


def error(message: str, func: Any = None, exception: Optional[BaseException] = None,
          stdout: Optional[str] = None, stderr: Optional[str] = None) -> Any:
    """Report a failure: ``abort`` (default) or ``warn`` when ``env.warn_only``.

    ``stdout``/``stderr`` are appended to the message when those output levels are hidden,
    so a quiet command's failure still shows what it printed; ``exception`` adds its
    traceback when the ``debug`` level is shown.
    """
    state = _state()
    env, output = state.env, state.output
    if func is None:
        func = warn if env.get("warn_only") else abort
    if exception is not None and output.get("debug"):
        import traceback

        message += "\n\nUnderlying exception:\n" + indent(
            "".join(traceback.format_exception(type(exception), exception,
                                               exception.__traceback__)))
    if stdout and not output.get("stdout", True):
        message += _labelled("Standard output", stdout)
    if stderr and not output.get("stderr", True):
        message += _labelled("Standard error", stderr)
    return func(message)


def _labelled(label: str, body: str) -> str:
    return f"\n\n{label}:\n\n{indent(body)}"


def handle_prompt_abort(prompt_for: str) -> None:
    """Abort instead of prompting when ``env.abort_on_prompts`` is set.

    Unlike Fabric 1.x, parallel mode does not abort: prompts there are serialized (see
    :data:`output_lock`) and name the host they are for.
    """
    state = _state()
    if state.env.get("abort_on_prompts"):
        host = state.env.get("host_string")
        abort(f"Needed to prompt for {prompt_for} (host: {host}), but abort-on-prompts "
              "was set to True")


def apply_lcwd(path: str, env: Any) -> str:
    """Join ``path`` onto ``env.lcwd`` (the ``lcd()`` directory) unless it is absolute."""
    lcwd = env.get("lcwd") or ""
    if lcwd and not os.path.isabs(os.path.expanduser(path)):
        return os.path.join(lcwd, path)
    return path


def _pty_size() -> Tuple[int, int]:
    """``(rows, cols)`` of the controlling terminal, or ``(24, 80)`` without one."""
    rows, cols = 24, 80
    if not isatty(sys.stdout):
        return rows, cols
    try:
        import fcntl
        import struct
        import termios

        packed = fcntl.ioctl(sys.stdout.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        r, c = struct.unpack("hhhh", packed)[:2]
        if r > 0 and c > 0:
            rows, cols = r, c
    except Exception:
        pass
    return rows, cols
