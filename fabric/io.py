"""Input/output plumbing for remote commands.

:class:`OutputLooper` turns the bytes of one remote stream (stdout or stderr) into console
output with ``[host] out:`` prefixes, a capture buffer, and automatic answers to the sudo
password prompt and to ``env.prompts``. :func:`pump_channel` drives one command's channel
with ``select`` until it ends: no polling loop, so a short command returns as soon as its
exit status arrives. :func:`input_loop` forwards a local stream to a channel (the classic
thread-style helper).

Console writes hold :data:`fabric.utils.output_lock`; in linewise mode (``env.linewise`` or
``env.parallel``) only whole lines are written, so parallel hosts never interleave mid-line.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import socket
import sys
import threading
import time
from typing import Any, Callable, Iterator, List, Optional

from fabric.exceptions import CommandTimeout
from fabric.state import env
from fabric.utils import handle_prompt_abort, output_lock

__all__ = ["CaptureBuffer", "OutputLooper", "input_loop", "pump_channel"]

#: Bytes asked of the channel per read.
READ_SIZE = 65536
# How much recent output is kept for prompt matching (prompts longer than this never match).
_PROMPT_WINDOW = 4096


class CaptureBuffer:
    """Text collected from a stream, optionally only the last ``maxlen`` characters.

    Stored as a list of chunks so appending megabytes stays linear; ``maxlen`` gives the
    ``deque(maxlen=...)`` semantics of Fabric's capture buffers.
    """

    def __init__(self, maxlen: Optional[int] = None) -> None:
        self.maxlen = maxlen if maxlen is None else max(0, int(maxlen))
        self._chunks: List[str] = []
        self._size = 0

    def __len__(self) -> int:
        return min(self._size, self.maxlen) if self.maxlen is not None else self._size

    def append(self, text: str) -> None:
        if not text:
            return
        self._chunks.append(text)
        self._size += len(text)
        # Trim lazily (at twice the limit) so each character is copied O(1) times.
        if self.maxlen is not None and self._size > 2 * self.maxlen + _PROMPT_WINDOW:
            self._compact()

    def _compact(self) -> None:
        joined = "".join(self._chunks)
        if self.maxlen is not None and len(joined) > self.maxlen:
            joined = joined[len(joined) - self.maxlen:] if self.maxlen else ""
        self._chunks = [joined] if joined else []
        self._size = len(joined)

    def drop_tail(self, count: int) -> None:
        """Remove the last ``count`` characters (an answered prompt)."""
        while count > 0 and self._chunks:
            last = self._chunks[-1]
            if len(last) <= count:
                self._chunks.pop()
                self._size -= len(last)
                count -= len(last)
            else:
                self._chunks[-1] = last[:-count]
                self._size -= count
                count = 0

    def getvalue(self) -> str:
        self._compact()
        return self._chunks[0] if self._chunks else ""


class _PromptState:
    """What the stdout and stderr loopers of one command share about password prompts."""

    def __init__(self) -> None:
        self.reprompt = False  # the remote said env.again_prompt: ask the user afresh
        self.answered = 0


def _current_host_parts() -> tuple:
    from fabric.network import normalize

    return normalize(env.host_string)


def _sudo_password(state: _PromptState, before_prompt: Callable[[], None]) -> str:
    """The password to send for a sudo prompt on the current host, asking when needed."""
    from fabric.auth import get_password, set_password
    from fabric.network import prompt_for_password

    user, host, port = _current_host_parts()
    password = None if state.reprompt else get_password(user, host, port)
    if password is None:
        handle_prompt_abort("a connection or sudo password")
        # Serialized with every other prompt and console write; names the host asked about.
        with output_lock:
            before_prompt()
            password = prompt_for_password(
                prompt=f"[{env.host_string}] sudo password for {user}@{host}")
        set_password(user, host, port, password)
        sudo_store = env.get("sudo_passwords")
        if isinstance(sudo_store, dict):
            # Also the sudo store, so a wrong env.sudo_password cannot shadow the new answer.
            from fabric.network import join_host_strings

            sudo_store[join_host_strings(user, host, port)] = password
        state.reprompt = False
    return password


class OutputLooper:
    """Console echo, capture and prompt answering for one remote stream.

    ``feed(data)`` takes the bytes as they arrive, ``finish()`` flushes what is left. The
    capture keeps the raw text (``\\r\\n`` from a pty included); the console gets
    ``prefix`` at the start of every line, ``\\r\\n`` shown as ``\\n``, and a prefix again
    after a lone ``\\r`` so progress bars keep their host label.
    """

    def __init__(self, chan: Any, stream: Any, capture: Optional[CaptureBuffer],
                 prefix: str = "", printing: bool = True, linewise: bool = False,
                 prompt_state: Optional[_PromptState] = None,
                 before_prompt: Optional[Callable[[], None]] = None,
                 raw: bool = False) -> None:
        self.chan = chan
        self.raw = raw  # an interactive shell: pass everything through untouched
        self.stream = stream
        self.capture = capture
        self.prefix = prefix
        self.printing = printing
        self.linewise = linewise
        self.prompt_state = prompt_state or _PromptState()
        self._before_prompt = before_prompt or (lambda: None)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._at_line_start = True
        self._pending_cr = False  # a "\r" ended the last chunk: is it half of "\r\n"?
        self._partial = ""  # linewise: the unfinished line
        self._recent = ""  # tail of the output since the last answered prompt
        self._break_pending = False  # a prompt was answered on the current line

    # -- console ----------------------------------------------------------------------
    def _write(self, text: str) -> None:
        if not text:
            return
        with output_lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (ValueError, OSError):  # a closed console must not kill the command
                pass

    def _display(self, text: str) -> None:
        if self._break_pending:
            self._break_pending = False
            if not (text.startswith("\n") or text.startswith("\r") or self._pending_cr):
                self.end_line()
        if self._pending_cr:
            text = "\r" + text
            self._pending_cr = False
        if text.endswith("\r"):
            text = text[:-1]
            self._pending_cr = True
        if not text:
            return
        text = text.replace("\r\n", "\n")
        if self.linewise:
            self._partial += text
            cut = self._partial.rfind("\n")
            if cut < 0:
                return
            complete, self._partial = self._partial[:cut], self._partial[cut + 1:]
            self._write("".join(self._decorate(line) + "\n" for line in complete.split("\n")))
            return
        prefix = self.prefix
        pieces = []
        if self._at_line_start:
            pieces.append(prefix)
        body = text.replace("\r", "\r" + prefix) if prefix else text
        if body.endswith("\n"):
            pieces.append(body[:-1].replace("\n", "\n" + prefix) + "\n" if prefix else body)
            self._at_line_start = True
        else:
            pieces.append(body.replace("\n", "\n" + prefix) if prefix else body)
            self._at_line_start = False
        self._write("".join(pieces))

    def _decorate(self, line: str) -> str:
        if self.prefix:
            return self.prefix + line.replace("\r", "\r" + self.prefix)
        return line

    def end_line(self) -> None:
        """Finish a half-written console line (before a prompt, or at the end)."""
        if self.linewise:
            if self._partial or self._pending_cr:
                self._pending_cr = False
                line, self._partial = self._partial, ""
                self._write(self._decorate(line) + "\n")
            return
        self._pending_cr = False
        if not self._at_line_start:
            self._write("\n")
            self._at_line_start = True

    # -- input --------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if not text:
            return
        if self.capture is not None:
            self.capture.append(text)
        if self.raw:
            self._write(text)
            return
        if self.printing:
            self._display(text)
        if self.capture is not None:
            self._check_prompts(text)

    def finish(self) -> None:
        text = self._decoder.decode(b"", final=True)
        if self.raw:
            self._write(text)
            return
        if text:
            if self.capture is not None:
                self.capture.append(text)
            if self.printing:
                self._display(text)
        if self.printing:
            self.end_line()

    # -- prompts ------------------------------------------------------------------------
    def _check_prompts(self, text: str) -> None:
        old = len(self._recent)
        recent = self._recent + text
        state = self.prompt_state
        again = env.get("again_prompt") or ""
        if again:
            for ending in (again + "\r\n", again + "\n"):
                at = recent.rfind(ending)
                if at >= 0 and at + len(ending) > old:
                    state.reprompt = True
                    # Like the answered prompt, the complaint is not part of the result.
                    after = recent[at + len(ending):]
                    if self.capture is not None:
                        self.capture.drop_tail(len(recent) - at)
                        self.capture.append(after)
                    recent = recent[:at] + after
                    break
        sudo_prompt = env.get("sudo_prompt") or ""
        if sudo_prompt and recent.endswith(sudo_prompt):
            if self.capture is not None:
                self.capture.drop_tail(len(sudo_prompt))
            # The answer is not echoed: what follows belongs on a new line (see _display).
            self._break_pending = True
            password = _sudo_password(state, self._before_prompt)
            state.answered += 1
            self._send(password + "\n")
            self._recent = ""
            return
        for expected, response in (env.get("prompts") or {}).items():
            if expected and recent.endswith(expected):
                self._send(f"{response}\n")
                self._recent = ""
                return
        self._recent = recent[-_PROMPT_WINDOW:]

    def _send(self, text: str) -> None:
        try:
            self.chan.sendall(text)
        except OSError:  # the command already went away; its exit status will tell
            pass

    # -- compatibility ------------------------------------------------------------------
    def loop(self, read_func: Callable[[int], bytes], timeout: Optional[float] = None) -> None:
        """Read with ``read_func`` until EOF (thread style); ``CommandTimeout`` after
        ``timeout`` seconds in total."""
        start = time.monotonic()
        try:
            while True:
                try:
                    data = read_func(READ_SIZE)
                except socket.timeout:
                    if timeout is not None and time.monotonic() - start > timeout:
                        raise CommandTimeout(timeout=timeout) from None
                    continue
                if not data:
                    break
                self.feed(data)
        finally:
            self.finish()


# ---------------------------------------------------------------------------------------------
# local terminal input
# ---------------------------------------------------------------------------------------------


def stdin_fd_for_forwarding(stdin: Any) -> Optional[int]:
    """The fd of the local standard input to forward to the remote command, or None.

    Like Fabric 1.x, whatever ``sys.stdin`` holds is forwarded -- a terminal's keystrokes or
    a pipe's contents (``yes | fab upgrade``) -- but never in parallel mode, where several
    hosts would compete for it, and never a stand-in without a descriptor (test runners).
    """
    if stdin is not None and stdin is not sys.stdin:
        return None
    if env.get("parallel"):
        return None
    try:
        return sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return None


@contextlib.contextmanager
def char_buffered(fd: Optional[int]) -> Iterator[None]:
    """Put the terminal on ``fd`` in cbreak mode (keys arrive one by one), then restore."""
    if fd is None:
        yield
        return
    try:
        import termios
        import tty

        old = termios.tcgetattr(fd)
    except Exception:  # not a terminal after all
        yield
        return
    try:
        # TCSADRAIN, not the default TCSAFLUSH: keys typed ahead must not be thrown away.
        tty.setcbreak(fd, termios.TCSADRAIN)
    except Exception:
        yield
        return
    try:
        yield
    finally:
        try:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        except Exception:
            pass


def _forward(chan: Any, data: bytes, using_pty: bool, echo: Any) -> None:
    chan.sendall(data)
    # Without a pty nobody echoes what is typed; with one the remote terminal does.
    if echo is not None and not using_pty and env.get("echo_stdin", True):
        text = data.decode("utf-8", "replace")
        with output_lock:
            try:
                echo.write(text)
                echo.flush()
            except (ValueError, OSError):
                pass


def input_loop(chan: Any, f: Any, using_pty: bool, stop: Optional[threading.Event] = None,
               echo: Any = None) -> None:
    """Send what can be read from file ``f`` to ``chan`` until EOF, ``stop`` or close.

    Meant for a helper thread. Only reads ``f`` when it has a usable descriptor and
    ``select`` says data is there, so it never blocks past ``stop`` for more than 0.1 s.
    """
    if echo is None:
        echo = sys.stdout
    try:
        fd = f.fileno()
    except (AttributeError, ValueError, OSError):
        return
    while not (stop is not None and stop.is_set()) and not chan.closed:
        try:
            ready, _, _ = select.select([fd], [], [], 0.1)
        except (OSError, ValueError):
            return
        if not ready:
            continue
        data = os.read(fd, 1024)
        if not data:
            return
        try:
            _forward(chan, data, using_pty, echo)
        except OSError:
            return


# ---------------------------------------------------------------------------------------------
# the channel pump
# ---------------------------------------------------------------------------------------------


def _stream_done(chan: Any) -> bool:
    return (chan.eof_received or chan.closed) and not (chan.recv_ready()
                                                      or chan.recv_stderr_ready())


def pump_channel(chan: Any, out: OutputLooper, err: Optional[OutputLooper], *,
                 deadline: Optional[float] = None, timeout: Optional[float] = None,
                 stdin_fd: Optional[int] = None, using_pty: bool = False,
                 remote_interrupt: bool = False, echo: Any = None,
                 on_stdin_eof: Optional[Callable[[], None]] = None) -> int:
    """Move data between ``chan`` and the loopers until the command ends; its exit status.

    Waits in ``select`` on the channel's descriptor (and the local terminal when
    ``stdin_fd`` is given). Raises :class:`CommandTimeout` at ``deadline`` (a
    ``time.monotonic()`` value). Ctrl-C is passed on as ``\\x03`` when ``remote_interrupt``
    and a pty are in use, otherwise it propagates.
    """
    fd = chan.fileno()
    watch_stdin = stdin_fd
    streams_open = True
    while streams_open:
        wait = None
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise CommandTimeout(timeout=timeout)
        fds = [fd] if watch_stdin is None else [fd, watch_stdin]
        try:
            try:
                ready, _, _ = select.select(fds, [], [], wait)
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
            if watch_stdin is not None and watch_stdin in ready:
                data = os.read(watch_stdin, 1024)
                if not data:
                    watch_stdin = None
                    if on_stdin_eof is not None:
                        try:
                            on_stdin_eof()
                        except OSError:
                            pass
                else:
                    try:
                        _forward(chan, data, using_pty, echo)
                    except OSError:
                        watch_stdin = None
            if fd in ready or not ready:
                while chan.recv_ready():
                    out.feed(chan.recv(READ_SIZE))
                while chan.recv_stderr_ready():
                    data = chan.recv_stderr(READ_SIZE)
                    (err or out).feed(data)
                if _stream_done(chan):
                    streams_open = False
        except KeyboardInterrupt:
            if not (remote_interrupt and using_pty):
                raise
            try:
                chan.send(b"\x03")
            except OSError:
                pass
    # Output is over; the exit status follows (or the channel closes: -1).
    while not chan.status_event.is_set():
        wait = 1.0
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                raise CommandTimeout(timeout=timeout)
        chan.status_event.wait(wait)
    return chan.exit_status
