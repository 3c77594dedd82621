"""``ProxyCommand``: a socket-like object that speaks through a subprocess's stdin and stdout.

The command line runs the way OpenSSH runs its ``ProxyCommand``: ``exec <command>`` through the
user's shell (``$SHELL``, else ``/bin/sh``), so pipes, ``$VARS`` and ``$(...)`` work (but, as
with OpenSSH, a line such as ``FOO=bar; cmd`` does not: ``exec`` takes ``FOO=bar`` for a
program). Callers substitute ``%h``/``%p`` and friends themselves.

Design (made to avoid the classic failure modes of proxy sockets):

* Two pump threads move the child's stdout into an internal buffer and keep the last
  :data:`STDERR_KEEP` bytes of its stderr. Nothing waits for a pipe on the caller's thread, and
  stderr is always drained, so a chatty proxy (``ssh -v``) can never block on a full pipe.
* ``recv`` waits on a condition variable: it returns data, ``b""`` once the child closed its
  output (never a busy loop), or raises ``socket.timeout``. When the child exited with a
  non-zero status or died from a signal, ``recv`` raises :class:`ProxyCommandFailure` (an
  ``SSHException``) naming the exit status and the tail of stderr instead of returning ``b""``,
  so the Transport's error says why the connection went away.
* The child runs in a session (and process group) of its own. ``close`` closes stdin, allows a
  short grace period, then SIGTERMs the whole group, escalates to SIGKILL, reaps the child and
  joins the threads, each step bounded. Pipeline members die with the shell; no zombie is left.
  A consequence: the proxy has no controlling terminal, so a proxy that wants to prompt on
  ``/dev/tty`` fails at once (use keys, an agent or ``SSH_ASKPASS``) instead of hanging.
* On POSIX the pumps wait for their pipe in bounded slices so ``close`` can always stop them,
  even when a stray grandchild (e.g. an ``ssh`` ControlPersist master) keeps a pipe open.
  On Windows they use plain blocking reads, which ``close`` ends by killing the child.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
import subprocess
import threading
import time
from typing import List, Optional, Sequence, Tuple, Union

from paramiko.ssh_exception import ProxyCommandFailure

__all__ = ["ProxyCommand", "ProxyCommandFailure", "STDERR_KEEP"]

_log = logging.getLogger("paramiko.proxy")

_WINDOWS = os.name == "nt"
if not _WINDOWS:
    import select

#: How much of the child's stderr is kept (the most recent bytes).
STDERR_KEEP = 64 * 1024
#: Longest stderr excerpt quoted in an error message, in characters.
_MESSAGE_TAIL = 1000
_CHUNK = 64 * 1024
#: The stdout pump stops reading while this much is buffered and unread (back-pressure).
_MAX_BUFFERED = 1024 * 1024
#: The POSIX pumps and ``send`` re-check for ``close`` at least this often (seconds).
_SLICE = 0.25


def _shell_argv(command_line: str) -> List[str]:
    """The argv OpenSSH would use for ``command_line``: ``$SHELL -c "exec <command>"``."""
    if _WINDOWS:
        return [os.environ.get("COMSPEC") or "cmd.exe", "/c", command_line]
    shell = os.environ.get("SHELL") or "/bin/sh"
    # OpenSSH prepends "exec" unconditionally, so its "exec cat" fails ("exec: exec: not
    # found"); a command that already starts with exec is taken as meant instead.
    words = command_line.split(None, 1)
    if words and words[0] == "exec":
        return [shell, "-c", command_line]
    return [shell, "-c", "exec " + command_line]


def _describe_exit(returncode: Optional[int]) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            return f"killed by signal {-returncode}"
        return f"killed by signal {-returncode} ({name})"
    return f"exit status {returncode}"


def _wait_readable(fd: int, timeout: float) -> bool:
    """POSIX: True if ``fd`` is readable (or at EOF/error) within ``timeout`` seconds."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def _wait_writable(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLOUT | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(max(0, int(timeout * 1000))))


class ProxyCommand:
    """Run ``command_line`` as a proxy and use its stdin/stdout as a socket.

    ``command_line`` is a string run through the shell like OpenSSH's ``ProxyCommand``, or an
    argv sequence run directly (no shell). The process starts at construction; if it cannot be
    started at all, :class:`ProxyCommandFailure` is raised.

    ``peer`` (optional ``(host, port)``) is what :meth:`getpeername` reports, e.g. the ``%h``/
    ``%p`` the caller substituted; without it ``("proxy:" + command, 0)`` is reported.

    Attributes: ``cmd`` (the argv actually executed), ``command`` (the command as given, as
    text), ``process`` (the ``subprocess.Popen``), ``timeout`` (for ``recv``/``send``).
    """

    #: After ``close`` has closed stdin: how long the child may take to exit on its own.
    close_grace = 0.25
    #: After SIGTERM: how long to wait before SIGKILL.
    term_timeout = 1.0
    #: After SIGKILL: how long to wait for the child to be reaped.
    kill_timeout = 2.0
    #: Once stdout ended: how long to wait for the exit status (and the rest of stderr).
    exit_wait = 2.0

    def __init__(self, command_line: Union[str, Sequence[str]], *,
                 peer: Optional[Tuple[str, int]] = None) -> None:
        if isinstance(command_line, str):
            self.command: str = command_line
            self.cmd: List[str] = _shell_argv(command_line)
        else:
            self.cmd = [os.fspath(a) for a in command_line]
            if not self.cmd:
                raise ValueError("ProxyCommand needs a command")
            self.command = shlex.join(self.cmd)
        self.timeout: Optional[float] = None
        self._peer = peer
        self._cv = threading.Condition()
        self._rbuf = bytearray()
        self._err = bytearray()
        self._eof = False  # stdout ended and the outcome (exit status, stderr) was collected
        self._failure: Optional[ProxyCommandFailure] = None
        self._closing = False
        self._shut_rd = False  # shutdown(SHUT_RD): recv reports EOF
        self._shut_wr = False  # shutdown(SHUT_WR): stdin closed
        self._close_lock = threading.Lock()
        self._closed_done = False
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        extra = {} if _WINDOWS else {"start_new_session": True}
        try:
            self.process = subprocess.Popen(
                self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, bufsize=0, close_fds=True, **extra)
        except OSError as e:
            raise ProxyCommandFailure(self.command, e.strerror or str(e)) from e
        assert self.process.stdin and self.process.stdout and self.process.stderr
        self._in_fd = self.process.stdin.fileno()
        self._out_fd = self.process.stdout.fileno()
        self._err_fd = self.process.stderr.fileno()
        if not _WINDOWS:
            for fd in (self._in_fd, self._out_fd, self._err_fd):
                os.set_blocking(fd, False)
        pid = self.process.pid
        self._err_thread = threading.Thread(target=self._pump_stderr, daemon=True,
                                            name=f"ProxyCommand-stderr-{pid}")
        self._out_thread = threading.Thread(target=self._pump_stdout, daemon=True,
                                            name=f"ProxyCommand-stdout-{pid}")
        self._err_thread.start()
        self._out_thread.start()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<paramiko.ProxyCommand {self.command!r} pid={self.process.pid} {state}>"

    # -- pumps -----------------------------------------------------------------------------
    def _read(self, fd: int) -> Optional[bytes]:
        """One chunk from ``fd``: data, ``b""`` at EOF, ``None`` once ``close`` stops us."""
        while not self._stop.is_set():
            if not _WINDOWS and not _wait_readable(fd, _SLICE):
                continue
            try:
                return os.read(fd, _CHUNK)
            except BlockingIOError:
                continue
            except OSError:
                return b""  # the pipe is unusable: treat it as the end of the stream
        return None

    def _pump_stderr(self) -> None:
        while True:
            chunk = self._read(self._err_fd)
            if not chunk:
                return
            with self._cv:
                self._err += chunk
                if len(self._err) > STDERR_KEEP:
                    del self._err[:-STDERR_KEEP]

    def _pump_stdout(self) -> None:
        try:
            while True:
                with self._cv:
                    while len(self._rbuf) >= _MAX_BUFFERED and not self._stop.is_set():
                        self._cv.wait(_SLICE)
                chunk = self._read(self._out_fd)
                if not chunk:
                    return
                with self._cv:
                    self._rbuf += chunk
                    self._cv.notify_all()
        finally:
            self._collect_outcome()

    def _collect_outcome(self) -> None:
        """stdout ended: learn the exit status and the rest of stderr (bounded), then flag EOF."""
        failure = None
        if not self._closing:
            try:
                self.process.wait(self.exit_wait)
            except subprocess.TimeoutExpired:
                pass
            self._err_thread.join(self.exit_wait)
            rc = self.process.returncode
            if rc and not self._closing:
                failure = ProxyCommandFailure(self.command, self._error_text(rc))
                _log.debug("proxy %r ended: %s", self.command, failure.error)
        with self._cv:
            self._failure = failure
            self._eof = True
            self._cv.notify_all()

    # -- diagnostics -----------------------------------------------------------------------
    def stderr_text(self) -> str:
        """The last :data:`STDERR_KEEP` bytes the child wrote to stderr, decoded."""
        with self._cv:
            data = bytes(self._err)
        return data.decode("utf-8", "replace")

    def _error_text(self, returncode: Optional[int], reason: str = "") -> str:
        lines = [ln.strip() for ln in self.stderr_text().splitlines()]
        tail = "; ".join(ln for ln in lines if ln)
        if len(tail) > _MESSAGE_TAIL:
            tail = "..." + tail[-_MESSAGE_TAIL:]
        head = _describe_exit(returncode)
        if reason:
            head = f"{reason} ({head})"
        return f"{head}: {tail}" if tail else head

    def failure(self) -> Optional[ProxyCommandFailure]:
        """Why the proxy ended, once it ended with a non-zero status or a signal; else None."""
        with self._cv:
            return self._failure

    @property
    def returncode(self) -> Optional[int]:
        """The child's exit status (negative: killed by that signal); None while it runs."""
        return self.process.poll()

    # -- socket API ------------------------------------------------------------------------
    def settimeout(self, timeout: Optional[float]) -> None:
        self.timeout = None if timeout is None else float(timeout)

    def gettimeout(self) -> Optional[float]:
        return self.timeout

    def getpeername(self) -> Tuple[str, int]:
        if self._peer is not None:
            return (str(self._peer[0]), int(self._peer[1]))
        return ("proxy:" + self.command, 0)

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes; ``b""`` at EOF; raises ``socket.timeout`` after ``timeout``.

        Raises :class:`ProxyCommandFailure` instead of returning ``b""`` when the child
        ended with a non-zero exit status or a signal (after all its output was delivered).
        """
        if size <= 0:
            return b""
        timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while not self._rbuf:
                if self._closing or self._shut_rd:
                    return b""
                if self._eof:
                    f = self._failure
                    if f is not None:
                        raise ProxyCommandFailure(f.command, f.error)
                    return b""
                if deadline is None:
                    self._cv.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("timed out")
                self._cv.wait(left)
            data = bytes(self._rbuf[:size])
            del self._rbuf[:size]
            self._cv.notify_all()  # the stdout pump may be waiting for room
        return data

    def send(self, data: bytes) -> int:
        """Write to the child's stdin; returns how many bytes were taken (maybe fewer).

        Raises ``socket.timeout`` when the child accepts nothing within ``timeout`` and
        :class:`ProxyCommandFailure` (with exit status and stderr) when it is gone.
        """
        if self._closing:
            raise ProxyCommandFailure(self.command, "the ProxyCommand was closed")
        if not data:
            return 0
        timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._write_lock:
                if self._closing or self._shut_wr:
                    raise ProxyCommandFailure(self.command, "the ProxyCommand was closed")
                try:
                    if _WINDOWS:
                        n = self.process.stdin.write(data)  # type: ignore[union-attr]
                        return len(data) if n is None else n
                    return os.write(self._in_fd, data)
                except BlockingIOError:
                    pass
                except OSError as e:
                    raise self._send_failure(e) from e
                left = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
                if left <= 0:
                    raise socket.timeout("timed out")
                try:
                    _wait_writable(self._in_fd, left)
                except (OSError, ValueError) as e:
                    raise self._send_failure(e) from e
            if deadline is not None and time.monotonic() >= deadline:
                raise socket.timeout("timed out")

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view):]

    def _send_failure(self, e: OSError) -> ProxyCommandFailure:
        """stdin broke: wait (bounded) for the child's outcome and describe it."""
        with self._cv:
            end = time.monotonic() + self.exit_wait + 0.5
            while not self._eof and not self._closing:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            if self._failure is not None:
                return ProxyCommandFailure(self._failure.command, self._failure.error)
        reason = e.strerror or str(e)
        return ProxyCommandFailure(self.command, self._error_text(self.process.poll(), reason))

    # -- closing ---------------------------------------------------------------------------
    def shutdown(self, how: int) -> None:
        """Like ``socket.shutdown``: SHUT_WR closes the child's stdin (it sees EOF), SHUT_RD
        makes ``recv`` report EOF, SHUT_RDWR does both. The child is left to :meth:`close`."""
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            with self._cv:
                self._shut_rd = True
                self._cv.notify_all()
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            if self._write_lock.acquire(timeout=2 * _SLICE + 1):
                try:
                    self._shut_wr = True
                    self._close_file(self.process.stdin)
                finally:
                    self._write_lock.release()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called or the child has exited."""
        return self._closing or self.process.poll() is not None

    _closed = closed

    def close(self) -> None:
        """Stop the proxy: close stdin, terminate, kill if needed, reap, join. Idempotent.

        Bounded by ``close_grace + term_timeout + kill_timeout`` plus about a second.
        """
        with self._close_lock:
            if self._closed_done:
                return
            with self._cv:
                self._closing = True
                self._cv.notify_all()
            self.shutdown(socket.SHUT_WR)  # EOF first: a well-behaved proxy exits by itself
            self._terminate()
            self._stop.set()
            with self._cv:
                self._cv.notify_all()
            for thread, f in ((self._out_thread, self.process.stdout),
                              (self._err_thread, self.process.stderr)):
                thread.join(2 * _SLICE + 1)
                if thread.is_alive():  # never close an fd a thread may still read
                    _log.warning("proxy %r: %s did not stop", self.command, thread.name)
                else:
                    self._close_file(f)
            if self.process.stdin is not None and not self.process.stdin.closed:
                self._close_file(self.process.stdin)
            self._closed_done = True

    @staticmethod
    def _close_file(f) -> None:
        if f is None:
            return
        try:
            f.close()
        except OSError:
            pass

    def _terminate(self) -> None:
        p = self.process
        try:
            p.wait(self.close_grace)
        except subprocess.TimeoutExpired:
            pass
        for sig, bound in ((signal.SIGTERM, self.term_timeout),
                           (getattr(signal, "SIGKILL", signal.SIGTERM), self.kill_timeout)):
            if p.returncode is not None:
                break
            self._signal(sig)
            try:
                p.wait(bound)
            except subprocess.TimeoutExpired:
                pass
        if p.returncode is None:
            _log.warning("proxy %r (pid %d) survived SIGKILL for %gs", self.command, p.pid,
                         self.kill_timeout)
        elif not _WINDOWS:
            # Leftover members of the child's group (e.g. the rest of a pipeline) go too.
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        p = self.process
        if _WINDOWS:
            if p.returncode is None:
                try:
                    p.kill()
                except OSError:
                    pass
            return
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            if p.returncode is None:
                try:
                    p.send_signal(sig)
                except OSError:
                    pass

    def __enter__(self) -> ProxyCommand:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
