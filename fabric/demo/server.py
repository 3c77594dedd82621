"""A small multi-threaded SSH server for 127.0.0.1, built on this repo's paramiko server API.

:class:`LocalSSHServer` is the fast in-process server behind the Fabric tests and the demo
(a gateway plus targets on loopback). It offers:

* authentication: ``publickey`` (keys listed in ``authorized_keys``) and, when ``passwords``
  is given, ``password`` and ``keyboard-interactive`` (a single ``Password: `` prompt);
* ``session`` channels: ``exec`` (``/bin/sh -c CMD``), ``shell``, ``pty-req``,
  ``window-change``, ``env`` and the ``sftp`` subsystem (the whole filesystem; relative
  paths start in ``cwd``, as OpenSSH's sftp-server starts in the home directory);
* ``direct-tcpip`` (local forwarding, the gateway hop) and ``tcpip-forward`` (remote
  forwarding), both restricted to loopback addresses so test traffic stays on the machine.

Whatever username a client logs in as, every command runs as the OS user running this
server: the username only picks the password that applies (and ``users`` may restrict it).
This is a test and demo tool, not a real SSH server.
"""

from __future__ import annotations

import base64
import fcntl
import hmac
import ipaddress
import logging
import os
import posixpath
import pwd
import select
import selectors
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple, Union

import paramiko
from paramiko.sftp_root import LocalDirSFTP

__all__ = ["LocalSSHServer", "generate_host_key"]

log = logging.getLogger("fabric.demo.server")

_CHUNK = 32768
# Loops that also watch conditions without a file descriptor (stop requested, channel closed
# after EOF) re-check them this often; everything else wakes them through descriptors.
_TICK = 0.2
_CONNECT_TIMEOUT = 10.0
# A local socket peer that accepts nothing for this long is treated as dead.
_SOCK_SEND_TIMEOUT = 30.0
# Unwritten stdin held for a child before we stop reading the channel (back-pressure).
_STDIN_CAP = 1 << 20
# A pty child has exited: its last output may still be in the tty layer; stop reading once
# the master has been quiet this long (or at the latest after _PTY_DRAIN_MAX).
_PTY_QUIET = 0.1
_PTY_DRAIN_MAX = 2.0
_WAIT_TIMEOUT = 5.0
# Time processes get between SIGTERM and SIGKILL when a session is torn down.
_KILL_GRACE = 1.0

KeySpec = Union[paramiko.PKey, paramiko.PublicBlob, bytes, str]


def generate_host_key() -> paramiko.PKey:
    """A fresh Ed25519 key pair (instant to make, understood by every modern client)."""
    return paramiko.Ed25519Key.generate()


def _key_blob(spec: KeySpec) -> bytes:
    """The SSH wire blob of a key given as PKey, PublicBlob, raw blob or ``.pub`` line."""
    if isinstance(spec, paramiko.PKey):
        return spec.asbytes()
    if isinstance(spec, paramiko.PublicBlob):
        return spec.key_blob
    if isinstance(spec, (bytes, bytearray)):
        return bytes(spec)
    if isinstance(spec, str):
        parts = spec.split()
        if len(parts) >= 2:
            return base64.b64decode(parts[1])
    raise TypeError(f"cannot use {spec!r} as an authorized key")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


# Bind addresses that mean "all interfaces" (or the loopback name): like sshd with its
# default GatewayPorts=no, they get the loopback address instead.
_LOOPBACK_ALIASES = ("", "*", "0.0.0.0", "::", "localhost")


def _forward_bind_host(address: str) -> Optional[str]:
    if address in _LOOPBACK_ALIASES:
        return "127.0.0.1"
    if _is_loopback(address):
        return address
    return None


def _set_winsize(fd: int, cols: int, rows: int, xpixels: int, ypixels: int) -> None:
    def clamp(v: int) -> int:
        return max(0, min(int(v), 0xFFFF))

    size = struct.pack("HHHH", clamp(rows), clamp(cols), clamp(xpixels), clamp(ypixels))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, size)


# Runs a command on the pty named by $1 as its controlling terminal. The child is a new
# session leader (start_new_session) without one, and such a process acquires the tty it
# opens; doing it this way avoids Popen's preexec_fn, which is unsafe in threaded programs.
_CTTY_WRAPPER = ["/bin/sh", "-c", 'exec 0<>"$1" 1>&0 2>&0 || exit 127; shift; exec "$@"', "sh"]


def _session_members(sids: Iterable[int]) -> Dict[int, List[int]]:
    """Live pids (and our unreaped zombies) per session id, from /proc (Linux; else empty)."""
    wanted = set(sids)
    found: Dict[int, List[int]] = {}
    if not wanted:
        return found
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    me = os.getpid()
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp session ...
        fields = stat.rpartition(b")")[2].split()
        try:
            state, ppid, sid = fields[0], int(fields[1]), int(fields[3])
        except (IndexError, ValueError):
            continue
        if sid not in wanted:
            continue
        if state == b"Z" and ppid != me:
            continue  # someone else's zombie, about to be reaped by its parent
        found.setdefault(sid, []).append(int(name))
    return found


def _session_processes(sids: Iterable[int]) -> List[int]:
    return [pid for pids in _session_members(sids).values() for pid in pids]


def _signal_sessions(sids: List[int], signums: Iterable[int]) -> None:
    # Only sessions that still have members: a session id whose processes are all gone
    # may be reused by an unrelated process group, which must never get our signals.
    members = _session_members(sids)
    for signum in signums:
        for sid, pids in members.items():
            try:
                os.killpg(sid, signum)
            except OSError:
                pass
            # Job-control shells put jobs in process groups of their own.
            for pid in pids:
                try:
                    os.kill(pid, signum)
                except OSError:
                    pass


def _wait_gone(pids: List[int], timeout: float) -> None:
    """Wait (on pidfds, no polling) until every pid has exited or ``timeout`` passed."""
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except (AttributeError, OSError):
            continue  # already gone (or no pidfd support: nothing to wait on)
    try:
        deadline = time.monotonic() + timeout
        while fds:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select(fds, [], [], left)
            for fd in ready:
                fds.remove(fd)
                os.close(fd)
    finally:
        for fd in fds:
            os.close(fd)


def _terminate_sessions(sids: Iterable[int], grace: float = _KILL_GRACE) -> None:
    """End every process of the given sessions: hang-up and TERM first (as a closing
    terminal would, so they may clean up, e.g. drop lock files), SIGKILL after ``grace``."""
    sids = list(sids)
    if not sids:
        return
    # SIGCONT last, so stopped jobs wake up to handle the other two.
    _signal_sessions(sids, (signal.SIGHUP, signal.SIGTERM, signal.SIGCONT))
    _wait_gone(_session_processes(sids), grace)
    _signal_sessions(sids, (signal.SIGKILL,))


def _send_to_channel(chan: paramiko.Channel, data: bytes, stderr: bool,
                     stopping: threading.Event) -> bool:
    """Send all of ``data``; False if the channel closed or the server is stopping."""
    view = memoryview(data)
    send = chan.send_stderr if stderr else chan.send
    while len(view):
        try:
            n = send(view)
        except socket.timeout:
            # The client has not opened its window yet; wait on, unless we are told to stop.
            if stopping.is_set() or chan.closed:
                return False
            continue
        except OSError:
            return False
        if n <= 0:
            return False
        view = view[n:]
    return True


def _sync_selector(sel: selectors.BaseSelector, want: Dict[int, int]) -> None:
    """Make ``sel`` watch exactly ``want`` (fd -> event mask)."""
    for fd in list(sel.get_map()):
        if fd not in want:
            sel.unregister(fd)
    for fd, mask in want.items():
        try:
            key = sel.get_key(fd)
        except KeyError:
            sel.register(fd, mask)
        else:
            if key.events != mask:
                sel.modify(fd, mask)


class _StartDirSFTP(LocalDirSFTP):
    """``LocalDirSFTP`` whose relative paths start in ``start_dir``.

    OpenSSH's sftp-server starts in the home directory; starting where our commands start
    keeps ``put("f")`` followed by ``run("cat f")`` consistent.
    """

    def __init__(self, server: Any, root: str, *args: Any, start_dir: str = "/",
                 **kwargs: Any) -> None:
        super().__init__(server, root, *args, **kwargs)
        self.start_dir = start_dir

    def _from_start(self, path: str) -> str:
        return path if path.startswith("/") else posixpath.join(self.start_dir, path)

    def canonicalize(self, path: str) -> Any:
        return super().canonicalize(self._from_start(path))

    def stat(self, path: str) -> Any:
        return super().stat(self._from_start(path))

    def lstat(self, path: str) -> Any:
        return super().lstat(self._from_start(path))

    def list_folder(self, path: str) -> Any:
        return super().list_folder(self._from_start(path))

    def readlink(self, path: str) -> Any:
        return super().readlink(self._from_start(path))

    def statvfs(self, path: str) -> Any:
        return super().statvfs(self._from_start(path))

    def open(self, path: str, flags: int, attr: Any) -> Any:
        return super().open(self._from_start(path), flags, attr)

    def remove(self, path: str) -> int:
        return super().remove(self._from_start(path))

    def rename(self, oldpath: str, newpath: str) -> int:
        return super().rename(self._from_start(oldpath), self._from_start(newpath))

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return super().posix_rename(self._from_start(oldpath), self._from_start(newpath))

    def link(self, oldpath: str, newpath: str) -> int:
        return super().link(self._from_start(oldpath), self._from_start(newpath))

    def mkdir(self, path: str, attr: Any) -> int:
        return super().mkdir(self._from_start(path), attr)

    def rmdir(self, path: str) -> int:
        return super().rmdir(self._from_start(path))

    def symlink(self, target_path: str, path: str) -> int:
        # A relative target is relative to the link's directory: leave it alone.
        return super().symlink(target_path, self._from_start(path))

    def chattr(self, path: str, attr: Any) -> int:
        return super().chattr(self._from_start(path), attr)

    def lchattr(self, path: str, attr: Any) -> int:
        return super().lchattr(self._from_start(path), attr)


class _Session:
    """One ``session`` channel: its pty/env requests, then one command, shell or subsystem."""

    def __init__(self, conn: _Connection, chanid: int) -> None:
        self.conn = conn
        self.server = conn.server
        self.chanid = chanid
        self.lock = threading.Lock()
        self.started = False
        self.env: Dict[str, str] = {}
        # (term, cols, rows, xpixels, ypixels) once a pty was requested.
        self.pty: Optional[Tuple[str, int, int, int, int]] = None
        self.master_fd = -1
        self.proc: Optional[subprocess.Popen] = None

    # -- requests (transport reader thread: must return quickly) ----------------------------
    def request_pty(self, term: str, cols: int, rows: int, xpix: int, ypix: int) -> bool:
        with self.lock:
            if self.started:
                return False
            self.pty = (term, cols, rows, xpix, ypix)
        return True

    def window_change(self, cols: int, rows: int, xpix: int, ypix: int) -> bool:
        with self.lock:
            if self.pty is None:
                return False
            self.pty = (self.pty[0], cols, rows, xpix, ypix)
            if self.master_fd >= 0:
                try:
                    # The kernel sends SIGWINCH to the terminal's foreground group.
                    _set_winsize(self.master_fd, cols, rows, xpix, ypix)
                except OSError:
                    return False
        return True

    def set_env(self, name: str, value: str) -> bool:
        with self.lock:
            self.env[name] = value
        return True

    def send_signal(self, name: str) -> bool:
        signum = getattr(signal, "SIG" + name.upper().removeprefix("SIG"), None)
        with self.lock:
            proc = self.proc
        if not isinstance(signum, int) or proc is None or proc.returncode is not None:
            return False
        try:
            os.killpg(proc.pid, signum)
        except OSError:
            return False
        return True

    def claim(self) -> bool:
        """Mark the one command/shell/subsystem as started; False if one already was."""
        with self.lock:
            if self.started:
                return False
            self.started = True
        return True

    # -- the command (own thread) -----------------------------------------------------------
    def _environment(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(self.server.env)
        with self.lock:
            env.update(self.env)
        peer, local = self.conn.peer, self.conn.local
        env["SSH_CLIENT"] = f"{peer[0]} {peer[1]} {local[1]}"
        env["SSH_CONNECTION"] = f"{peer[0]} {peer[1]} {local[0]} {local[1]}"
        env["PWD"] = self.server.cwd
        return env

    def _spawn(self, command: Optional[str]) -> Tuple[subprocess.Popen, Dict[int, Any], int]:
        """Start the child; returns (proc, readable fds -> file or None, stdin fd)."""
        env = self._environment()
        with self.lock:
            pty = self.pty
        if command is None:
            shell = env.get("SHELL") or pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
            # Like sshd: interactive on a terminal, reading commands from stdin otherwise.
            argv = [shell, "-i"] if pty else [shell]
        else:
            argv = ["/bin/sh", "-c", command]
        cwd = self.server.cwd
        if pty is None:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd=cwd, env=env,
                                    start_new_session=True)
            readers = {proc.stdout.fileno(): proc.stdout, proc.stderr.fileno(): proc.stderr}
            # Partial writes, never a blocked one: a child that stops reading stdin while we
            # wait to write would otherwise stop us draining its output too (deadlock).
            os.set_blocking(proc.stdin.fileno(), False)
            return proc, readers, proc.stdin.fileno()
        master, slave = os.openpty()
        try:
            with self.lock:
                # Size and publish the master together, so a window-change that arrives
                # meanwhile is either in self.pty already or applied to the master.
                term, cols, rows, xpix, ypix = self.pty or pty
                _set_winsize(master, cols, rows, xpix, ypix)
                self.master_fd = master
            tty = os.ttyname(slave)
            env["TERM"] = term or "dumb"
            env["SSH_TTY"] = tty
            proc = subprocess.Popen(_CTTY_WRAPPER + [tty] + argv, stdin=slave, stdout=slave,
                                    stderr=slave, cwd=cwd, env=env, start_new_session=True)
        except BaseException:
            with self.lock:
                self.master_fd = -1
            os.close(master)
            raise
        finally:
            # Only the child keeps the slave open, so the master reads EIO once it is gone.
            os.close(slave)
        os.set_blocking(master, False)
        return proc, {master: None}, master

    def run(self, chan: paramiko.Channel, command: Optional[str]) -> None:
        server = self.server
        chan.settimeout(1.0)
        try:
            proc, readers, in_fd = self._spawn(command)
        except (OSError, subprocess.SubprocessError) as e:
            log.info("[%s] cannot start %r: %s", server.name, command, e)
            _send_to_channel(chan, f"cannot start command: {e}\r\n".encode(), True,
                             server._stopping)
            chan.send_exit_status(127)
            chan.shutdown_write()
            chan.close()
            return
        with self.lock:
            self.proc = proc
        if not server._register_proc(proc):
            _terminate_sessions([proc.pid])
        completed = False
        try:
            completed = self._pump(chan, proc, readers, in_fd)
        except Exception:  # noqa: BLE001 - never leave the child behind on a bug here
            log.exception("[%s] session on channel %s failed", server.name, self.chanid)
            completed = False
        finally:
            if not completed:
                _terminate_sessions([proc.pid])
            try:
                rc: Optional[int] = proc.wait(_WAIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                rc = None
            with self.lock:
                master, self.master_fd = self.master_fd, -1
            if master >= 0:
                os.close(master)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
            server._unregister_proc(proc)
        if completed and rc is not None and rc >= 0:
            # A child killed by a signal gets no exit-status (OpenSSH sends exit-signal
            # instead, which this paramiko cannot send from the server side).
            chan.send_exit_status(rc)
        chan.shutdown_write()
        chan.close()

    def _pump(self, chan: paramiko.Channel, proc: subprocess.Popen, readers: Dict[int, Any],
              in_fd: int) -> bool:
        """Shuttle data until the child exited and its output is drained.

        Returns False if the session must be abandoned (client closed, server stopping).
        """
        stopping = self.server._stopping
        is_pty = in_fd in readers
        stdin_file = None if is_pty else proc.stdin
        err_fd = -1 if is_pty else proc.stderr.fileno()
        chan_fd = chan.fileno()
        try:
            pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            pidfd = -1  # no pidfd: notice the exit on the next tick instead
        pending = bytearray()
        chan_eof = False
        exited_at: Optional[float] = None
        last_output = time.monotonic()
        sel = selectors.DefaultSelector()

        def close_stdin() -> None:
            # Unregister before closing: the fd number may be reused at once.
            nonlocal in_fd, stdin_file
            if stdin_file is not None:
                if in_fd in sel.get_map():
                    sel.unregister(in_fd)
                stdin_file.close()
            in_fd, stdin_file = -1, None

        try:
            while readers or exited_at is None:
                if stopping.is_set() or chan.closed:
                    return False
                want: Dict[int, int] = {fd: selectors.EVENT_READ for fd in readers}
                if not chan_eof and len(pending) < _STDIN_CAP:
                    want[chan_fd] = selectors.EVENT_READ
                if pending and in_fd >= 0:
                    want[in_fd] = want.get(in_fd, 0) | selectors.EVENT_WRITE
                if pidfd >= 0 and exited_at is None:
                    want[pidfd] = selectors.EVENT_READ
                _sync_selector(sel, want)
                timeout = _PTY_QUIET if (is_pty and exited_at is not None) else _TICK
                events = sel.select(timeout)
                now = time.monotonic()
                for key, mask in events:
                    fd = key.fd
                    if fd == pidfd:
                        exited_at = now
                        continue
                    if fd == chan_fd:
                        got = self._read_channel(chan)
                        if got is None:
                            chan_eof = True
                            if chan.closed:
                                return False
                            if not is_pty and not pending:
                                close_stdin()
                        else:
                            pending += got
                        continue
                    if mask & selectors.EVENT_WRITE and fd == in_fd and pending:
                        try:
                            n = os.write(in_fd, pending[:_CHUNK])
                            del pending[:n]
                        except BlockingIOError:
                            pass
                        except OSError:
                            pending.clear()  # the child stopped reading stdin for good
                        if not is_pty and chan_eof and not pending:
                            close_stdin()
                    if mask & selectors.EVENT_READ and fd in readers:
                        try:
                            data = os.read(fd, _CHUNK)
                        except BlockingIOError:
                            continue
                        except OSError:
                            data = b""  # EIO: every slave side of the pty is closed
                        if not data:
                            sel.unregister(fd)
                            stream = readers.pop(fd)
                            if stream is not None:
                                stream.close()
                            continue
                        last_output = now
                        if not _send_to_channel(chan, data, fd == err_fd, stopping):
                            return False
                if exited_at is None and pidfd < 0 and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None:
                    if not is_pty and stdin_file is not None:
                        pending.clear()  # nobody will read it any more
                        close_stdin()
                    if is_pty and readers and (
                            (not events and now - last_output >= _PTY_QUIET)
                            or now - exited_at >= _PTY_DRAIN_MAX):
                        # A background job may hold the terminal: like sshd, end the
                        # session with its shell.
                        for fd in list(readers):
                            if fd in sel.get_map():
                                sel.unregister(fd)
                        readers.clear()
            return True
        finally:
            sel.close()
            if pidfd >= 0:
                os.close(pidfd)

    @staticmethod
    def _read_channel(chan: paramiko.Channel) -> Optional[bytes]:
        """Data from the client; None at EOF/close; b"" if nothing was there after all."""
        while chan.recv_stderr_ready():
            chan.recv_stderr(_CHUNK)  # clients have no stderr to send: drop it
        if not (chan.recv_ready() or chan.eof_received or chan.closed):
            return b""
        try:
            data = chan.recv(_CHUNK)
        except socket.timeout:
            return b""
        return data or None


class _RemoteForward:
    """One ``tcpip-forward`` listener on loopback."""

    def __init__(self, address: str, port: int, lsock: socket.socket) -> None:
        self.address = address
        self.port = port
        self.lsock = lsock
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()


class _Policy(paramiko.ServerInterface):
    """The per-connection policy paramiko asks; it defers to the connection and server."""

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self.server = conn.server
        self._kbd_user: Optional[str] = None

    # -- authentication ----------------------------------------------------------------------
    def get_allowed_auths(self, username: str) -> str:
        methods = ["publickey"]
        if self.server.passwords:
            methods += ["password", "keyboard-interactive"]
        return ",".join(methods)

    def check_auth_none(self, username: str) -> int:
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: Any) -> int:
        if self.server._user_allowed(username) and key.asbytes() in self.server._authorized:
            self.conn.note_login(username, "publickey")
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username: str, password: Any) -> int:
        if self.server._password_ok(username, password):
            self.conn.note_login(username, "password")
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_interactive(self, username: str, submethods: str) -> Any:
        if not self.server.passwords:
            return paramiko.AUTH_FAILED
        self._kbd_user = username
        return paramiko.InteractiveQuery("", "", ("Password: ", False))

    def check_auth_interactive_response(self, responses: List[str]) -> Any:
        user, self._kbd_user = self._kbd_user, None
        if user is not None and len(responses) == 1 and \
                self.server._password_ok(user, responses[0]):
            self.conn.note_login(user, "keyboard-interactive")
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    # -- channels and global requests --------------------------------------------------------
    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            self.conn.new_session(chanid)
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(self, chanid: int, origin: Tuple[str, int],
                                           destination: Tuple[str, int]) -> int:
        return self.conn.open_direct(chanid, origin, destination)

    def check_port_forward_request(self, address: str, port: int) -> Union[bool, int]:
        return self.conn.add_remote_forward(address, port)

    def cancel_port_forward_request(self, address: str, port: int) -> None:
        self.conn.cancel_remote_forward(address, port)

    def check_global_request(self, kind: str, msg: Any) -> bool:
        return False

    # -- session requests --------------------------------------------------------------------
    def check_channel_pty_request(self, channel: Any, term: Any, width: int, height: int,
                                  pixelwidth: int, pixelheight: int, modes: bytes) -> bool:
        session = self.conn.session(channel)
        if session is None:
            return False
        if isinstance(term, bytes):
            term = term.decode("ascii", "replace")
        # Terminal modes are not applied: the pty starts with the kernel's defaults.
        return session.request_pty(term, width, height, pixelwidth, pixelheight)

    def check_channel_window_change_request(self, channel: Any, width: int, height: int,
                                            pixelwidth: int, pixelheight: int) -> bool:
        session = self.conn.session(channel)
        return session is not None and session.window_change(width, height, pixelwidth,
                                                             pixelheight)

    def check_channel_env_request(self, channel: Any, name: Any, value: Any) -> bool:
        session = self.conn.session(channel)
        if session is None:
            return False
        if isinstance(name, bytes):
            name = name.decode("utf-8", "surrogateescape")
        if isinstance(value, bytes):
            value = value.decode("utf-8", "surrogateescape")
        if not name or "=" in name or "\x00" in name or "\x00" in value:
            return False
        return session.set_env(name, value)

    def check_channel_signal_request(self, channel: Any, name: str) -> bool:
        """``signal`` request: forward to the command's process group.

        Note: this paramiko does not yet route ``signal`` requests to the ServerInterface;
        the hook is here for when it does.
        """
        session = self.conn.session(channel)
        return session is not None and session.send_signal(name)

    def check_channel_exec_request(self, channel: Any, command: Any) -> bool:
        if isinstance(command, bytes):
            command = command.decode("utf-8", "surrogateescape")
        return self.conn.start_command(channel, command)

    def check_channel_shell_request(self, channel: Any) -> bool:
        return self.conn.start_command(channel, None)

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        return self.conn.start_subsystem(channel, name, self)

    def check_channel_forward_agent_request(self, channel: Any) -> bool:
        return False

    def check_channel_x11_request(self, channel: Any, single_connection: bool,
                                  auth_protocol: str, auth_cookie: bytes,
                                  screen_number: int) -> bool:
        return False


class _Connection:
    """One accepted TCP connection: its transport, sessions and forwardings."""

    def __init__(self, server: LocalSSHServer, sock: socket.socket,
                 peer: Tuple[str, int], local: Tuple[str, int]) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.local = local
        self.lock = threading.Lock()
        self.transport: Optional[paramiko.Transport] = None
        self.closing = False
        self.logged_in = False
        self.username: Optional[str] = None
        self.sessions: Dict[int, _Session] = {}
        self.pending_direct: Dict[int, socket.socket] = {}
        self.forwards: Dict[Tuple[str, int], _RemoteForward] = {}

    @property
    def label(self) -> str:
        return f"{self.server.name} {self.peer[0]}:{self.peer[1]}"

    def close(self) -> None:
        """From any thread: end this connection (its thread then cleans up)."""
        with self.lock:
            self.closing = True
            tr = self.transport
            forwards = list(self.forwards.values())
            self.forwards.clear()
        for fwd in forwards:
            fwd.close()
        if tr is not None:
            tr.close()
        else:
            self.sock.close()

    # -- main loop (connection thread) -------------------------------------------------------
    def run(self) -> None:
        server = self.server
        try:
            tr = paramiko.Transport(self.sock)
        except Exception as e:  # noqa: BLE001 - a broken socket ends only this connection
            log.info("[%s] cannot set up transport: %s", self.label, e)
            self.sock.close()
            return
        tr.banner_timeout = server.handshake_timeout
        tr.handshake_timeout = server.handshake_timeout
        tr.add_server_key(server.host_key)
        # Kept for code that inspects the transport; the policy starts the handler itself
        # (with the start directory) so its thread can be joined at stop().
        tr.set_subsystem_handler("sftp", paramiko.SFTPServer, LocalDirSFTP, root="/")
        with self.lock:
            if self.closing:
                self.sock.close()
                return
            self.transport = tr
        try:
            try:
                tr.start_server(server=_Policy(self))
            except Exception as e:  # noqa: BLE001 - failed handshake: drop the client
                log.info("[%s] handshake failed: %s", self.label, e)
                return
            log.debug("[%s] handshake done", self.label)
            self._accept_channels(tr)
        finally:
            tr.close()
            self._cleanup(tr)

    def _accept_channels(self, tr: paramiko.Transport) -> None:
        deadline = time.monotonic() + self.server.auth_timeout
        while not self.closing and tr.is_active():
            if tr.authenticated:
                wait = 5.0
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.info("[%s] no authentication within %gs; disconnecting", self.label,
                             self.server.auth_timeout)
                    return
                wait = min(left, 5.0)
            chan = tr.accept(wait)
            if chan is None:
                continue
            with self.lock:
                sock = self.pending_direct.pop(chan.get_id(), None)
            if sock is not None:
                self.server._spawn_thread(self.server._pump_socket, "direct-tcpip", chan,
                                          sock)
            # Session channels are driven by their requests (see _Policy).

    def _cleanup(self, tr: paramiko.Transport) -> None:
        with self.lock:
            self.closing = True
            socks = list(self.pending_direct.values())
            self.pending_direct.clear()
            forwards = list(self.forwards.values())
            self.forwards.clear()
        for s in socks:
            s.close()
        for fwd in forwards:
            fwd.close()
        if self.logged_in and not tr.authenticated:
            # A publickey query succeeded but no signed request followed.
            self.server._count_login(-1)
        log.debug("[%s] connection closed", self.label)

    # -- auth --------------------------------------------------------------------------------
    def note_login(self, username: str, method: str) -> None:
        self.username = username
        with self.lock:
            first = not self.logged_in
            self.logged_in = True
        if first:
            self.server._count_login(1)
            log.info("[%s] %s logged in with %s", self.label, username, method)

    # -- sessions ----------------------------------------------------------------------------
    def new_session(self, chanid: int) -> None:
        with self.lock:
            self.sessions[chanid] = _Session(self, chanid)

    def session(self, channel: Any) -> Optional[_Session]:
        with self.lock:
            return self.sessions.get(channel.get_id())

    def start_command(self, channel: paramiko.Channel, command: Optional[str]) -> bool:
        session = self.session(channel)
        if session is None or self.server._stopping.is_set() or not session.claim():
            return False
        log.debug("[%s] %s: %r", self.label, "exec" if command is not None else "shell",
                  command)
        self.server._spawn_thread(session.run, "session", channel, command)
        return True

    def start_subsystem(self, channel: paramiko.Channel, name: str,
                        policy: paramiko.ServerInterface) -> bool:
        session = self.session(channel)
        if name != "sftp" or session is None or self.server._stopping.is_set() \
                or not session.claim():
            return False
        handler = paramiko.SFTPServer(channel, name, policy, _StartDirSFTP, root="/",
                                      start_dir=self.server.cwd)
        self.server._track_thread(handler)
        handler.start()
        return True

    # -- direct-tcpip (reader thread) --------------------------------------------------------
    def open_direct(self, chanid: int, origin: Tuple[str, int],
                    destination: Tuple[str, int]) -> int:
        server = self.server
        host, port = destination
        if not server.allow_forwarding or server._stopping.is_set():
            return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        try:
            infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as e:
            log.info("[%s] direct-tcpip to %s:%s: %s", self.label, host, port, e)
            return paramiko.OPEN_FAILED_CONNECT_FAILED
        targets = [info for info in infos if _is_loopback(info[4][0])]
        if not targets:
            log.info("[%s] direct-tcpip to %s:%s refused: not a loopback address",
                     self.label, host, port)
            return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        # Connect before answering, so a refused connection is reported as an open failure.
        for family, socktype, proto, _name, addr in targets:
            sock = socket.socket(family, socktype, proto)
            try:
                sock.settimeout(_CONNECT_TIMEOUT)
                if server.forward_source and family == socket.AF_INET:
                    sock.bind((server.forward_source, 0))
                sock.connect(addr)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as e:
                sock.close()
                log.debug("[%s] direct-tcpip to %s: %s", self.label, addr, e)
                continue
            with self.lock:
                if self.closing:
                    sock.close()
                    return paramiko.OPEN_FAILED_CONNECT_FAILED
                self.pending_direct[chanid] = sock
            log.debug("[%s] direct-tcpip %s:%s -> %s:%s", self.label, origin[0], origin[1],
                      host, port)
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_CONNECT_FAILED

    # -- tcpip-forward (reader thread) -------------------------------------------------------
    def add_remote_forward(self, address: str, port: int) -> Union[bool, int]:
        server = self.server
        if not server.allow_forwarding or server._stopping.is_set():
            return False
        bind_host = _forward_bind_host(address)
        if bind_host is None:
            log.info("[%s] tcpip-forward on %r refused: not loopback", self.label, address)
            return False
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((bind_host, port))
            lsock.listen(16)
            lsock.settimeout(_TICK)
        except OSError as e:
            lsock.close()
            log.info("[%s] tcpip-forward on %s:%s failed: %s", self.label, bind_host, port, e)
            return False
        bound = lsock.getsockname()[1]
        fwd = _RemoteForward(address, bound, lsock)
        with self.lock:
            if self.closing:
                fwd.close()
                return False
            self.forwards[(address, bound)] = fwd
        log.debug("[%s] tcpip-forward listening on %s:%s", self.label, bind_host, bound)
        server._spawn_thread(self._serve_forward, "tcpip-forward", fwd)
        return bound

    def cancel_remote_forward(self, address: str, port: int) -> None:
        with self.lock:
            fwd = self.forwards.pop((address, port), None)
            if fwd is None:
                # Some clients cancel with another spelling of the address: match the port.
                for key in list(self.forwards):
                    if key[1] == port:
                        fwd = self.forwards.pop(key)
                        break
        if fwd is not None:
            fwd.close()

    def _serve_forward(self, fwd: _RemoteForward) -> None:
        server = self.server
        tr = self.transport
        try:
            while not fwd.closed.is_set() and not server._stopping.is_set() \
                    and tr is not None and tr.is_active():
                try:
                    csock, caddr = fwd.lsock.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                server._spawn_thread(self._forward_one, "forwarded-tcpip", fwd, csock, caddr)
        finally:
            fwd.close()

    def _forward_one(self, fwd: _RemoteForward, csock: socket.socket,
                     caddr: Tuple[str, int]) -> None:
        tr = self.transport
        try:
            csock.settimeout(_SOCK_SEND_TIMEOUT)
            csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tr is None:
                raise paramiko.SSHException("no transport")
            chan = tr.open_channel("forwarded-tcpip", dest_addr=(fwd.address, fwd.port),
                                   src_addr=(caddr[0], caddr[1]), timeout=_CONNECT_TIMEOUT)
        except Exception as e:  # noqa: BLE001 - client refused or went away
            log.info("[%s] forwarded-tcpip from %s:%s failed: %s", self.label, caddr[0],
                     caddr[1], e)
            csock.close()
            return
        self.server._pump_socket(chan, csock)


class LocalSSHServer:
    """An SSH server on ``host:port`` (default 127.0.0.1, a free port) for tests and demos.

    ``authorized_keys`` holds PKeys, PublicBlobs, raw key blobs or ``.pub`` lines.
    ``passwords`` (``{user: password}``) enables password and keyboard-interactive auth.
    ``users`` restricts the accepted login names (default: any); commands always run as the
    OS user running the server, in ``cwd`` (default: that user's home directory), with
    ``os.environ`` plus ``env`` plus the client's ``env`` requests.
    """

    def __init__(self, host_key: Optional[paramiko.PKey] = None,
                 authorized_keys: Iterable[KeySpec] = (),
                 passwords: Optional[Mapping[str, str]] = None,
                 users: Optional[Iterable[str]] = None,
                 cwd: Optional[str] = None,
                 host: str = "127.0.0.1",
                 port: int = 0,
                 name: str = "ssh",
                 allow_forwarding: bool = True,
                 env: Optional[Mapping[str, str]] = None,
                 handshake_timeout: float = 10.0,
                 auth_timeout: float = 30.0,
                 forward_source: Optional[str] = None,
                 only_from: Optional[Iterable[str]] = None) -> None:
        # forward_source: the local address direct-tcpip connections leave from (e.g.
        # 127.0.0.2); only_from: peer addresses this server accepts. Together they let a demo
        # on loopback make targets reachable only through the gateway.
        self.forward_source = forward_source
        self.only_from: Optional[Set[str]] = set(only_from) if only_from is not None else None
        self._host_key = host_key if host_key is not None else generate_host_key()
        self._authorized: Set[bytes] = {_key_blob(k) for k in authorized_keys}
        self.passwords: Dict[str, str] = dict(passwords or {})
        self.users: Optional[Set[str]] = set(users) if users is not None else None
        self.cwd = os.path.abspath(cwd or pwd.getpwuid(os.getuid()).pw_dir or "/")
        self.host = host
        self._port = port
        self.name = name
        self.allow_forwarding = allow_forwarding
        self.env: Dict[str, str] = dict(env or {})
        self.handshake_timeout = handshake_timeout
        self.auth_timeout = auth_timeout
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: Optional[socket.socket] = None
        self._started = False
        self._threads: Set[threading.Thread] = set()
        self._conns: Set[_Connection] = set()
        self._procs: Dict[int, subprocess.Popen] = {}
        self._sids: Set[int] = set()
        self._logins = 0
        self._connections = 0
        self._refused = 0

    # -- properties ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def refused(self) -> int:
        """Connections closed at once because the peer was not in ``only_from``."""
        with self._lock:
            return self._refused

    @property
    def host_key(self) -> paramiko.PKey:
        return self._host_key

    @property
    def logins(self) -> int:
        """Successful authentications so far (one per connection at most)."""
        with self._lock:
            return self._logins

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._connections

    def active_transports(self) -> List[paramiko.Transport]:
        with self._lock:
            conns = list(self._conns)
        return [c.transport for c in conns if c.transport is not None and
                c.transport.is_active()]

    def known_hosts_line(self) -> str:
        """An OpenSSH known_hosts line (not hashed) for this server's address and key."""
        host = self.host if self._port == 22 else f"[{self.host}]:{self._port}"
        return f"{host} {self._host_key.get_name()} {self._host_key.get_base64()}"

    def add_authorized_key(self, key: KeySpec) -> None:
        with self._lock:
            self._authorized.add(_key_blob(key))

    def leftover_processes(self) -> List[int]:
        """Pids of live processes from any session this server started (should be none
        after :meth:`stop`)."""
        with self._lock:
            sids = set(self._sids)
        return _session_processes(sids)

    def running_threads(self) -> List[threading.Thread]:
        """Threads this server started that are still alive (none after :meth:`stop`)."""
        with self._lock:
            return [t for t in self._threads if t.is_alive()]

    def __repr__(self) -> str:
        return f"<LocalSSHServer {self.name} {self.host}:{self._port}>"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> int:
        """Bind, listen and start accepting; returns the bound port."""
        if self._started:
            raise RuntimeError("server already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((self.host, self._port))
            lsock.listen(64)
            lsock.settimeout(_TICK)
        except OSError:
            lsock.close()
            raise
        self._listener = lsock
        self._port = lsock.getsockname()[1]
        self._started = True
        self._spawn_thread(self._accept_loop, "accept")
        log.info("[%s] listening on %s:%s", self.name, self.host, self._port)
        return self._port

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, kill every command, join every thread."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._stopping.set()
            conns = list(self._conns)
            procs = list(self._procs.values())
            sids = set(self._sids)
        _terminate_sessions(sids)
        for conn in conns:
            conn.close()
        self._join_threads(deadline)
        # A connection thread past its registration check may still have added one.
        with self._lock:
            conns = list(self._conns)
            procs += list(self._procs.values())
            sids = set(self._sids)
        for conn in conns:
            conn.close()
        _terminate_sessions(sids)
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("[%s] pid %s did not exit", self.name, proc.pid)
        self._join_threads(deadline)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("[%s] threads still running after stop: %s", self.name, alive)
        log.info("[%s] stopped", self.name)

    def __enter__(self) -> LocalSSHServer:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------------
    def _user_allowed(self, username: str) -> bool:
        return self.users is None or username in self.users

    def _password_ok(self, username: str, password: Any) -> bool:
        expected = self.passwords.get(username)
        if expected is None or not self._user_allowed(username):
            return False
        if isinstance(password, str):
            password = password.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(expected.encode("utf-8"), bytes(password))

    def _count_login(self, delta: int) -> None:
        with self._lock:
            self._logins += delta

    def _track_thread(self, thread: threading.Thread) -> None:
        with self._lock:
            # Forget finished threads so a long-lived server does not accumulate them.
            self._threads = {t for t in self._threads if t.is_alive() or t.ident is None}
            self._threads.add(thread)

    def _spawn_thread(self, target: Any, what: str, *args: Any) -> threading.Thread:
        def body() -> None:
            try:
                target(*args)
            except Exception:  # noqa: BLE001 - log it; other connections carry on
                log.exception("[%s] %s thread failed", self.name, what)

        t = threading.Thread(target=body, name=f"{self.name}-{what}", daemon=True)
        self._track_thread(t)
        t.start()
        return t

    def _join_threads(self, deadline: float) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                pending = [t for t in self._threads
                           if t is not me and t.ident is not None and t.is_alive()]
            if not pending:
                return
            for t in pending:
                t.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return

    def _register_proc(self, proc: subprocess.Popen) -> bool:
        """Record a child; False if stop() is under way (the caller kills it)."""
        with self._lock:
            self._procs[proc.pid] = proc
            self._sids.add(proc.pid)
            return not self._stopping.is_set()

    def _unregister_proc(self, proc: subprocess.Popen) -> None:
        # The session id stays recorded while background jobs outlive the command (stop()
        # ends them); an empty session can never be joined again, so forget it then.
        empty = not _session_processes([proc.pid])
        with self._lock:
            self._procs.pop(proc.pid, None)
            if empty:
                self._sids.discard(proc.pid)

    def _accept_loop(self) -> None:
        lsock = self._listener
        assert lsock is not None
        while not self._stopping.is_set():
            try:
                sock, peer = lsock.accept()
            except socket.timeout:
                continue
            except OSError as e:
                if self._stopping.is_set():
                    return
                log.warning("[%s] accept failed: %s", self.name, e)
                self._stopping.wait(_TICK)  # e.g. out of descriptors: do not spin
                continue
            with self._lock:
                self._connections += 1
            if self.only_from is not None and peer[0] not in self.only_from:
                log.info("[%s] refused connection from %s (only %s allowed)", self.name,
                         peer[0], ", ".join(sorted(self.only_from)))
                sock.close()
                with self._lock:
                    self._refused += 1
                continue
            try:
                local = sock.getsockname()
            except OSError:
                sock.close()
                continue
            sock.settimeout(None)
            conn = _Connection(self, sock, peer[:2], local[:2])
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    return
                self._conns.add(conn)
            log.debug("[%s] connection from %s:%s", self.name, peer[0], peer[1])
            self._spawn_thread(self._serve, "conn", conn)

    def _serve(self, conn: _Connection) -> None:
        try:
            conn.run()
        finally:
            with self._lock:
                self._conns.discard(conn)

    def _pump_socket(self, chan: paramiko.Channel, sock: socket.socket) -> None:
        """Copy bytes both ways between a forwarding channel and a local TCP socket."""
        stopping = self._stopping
        chan.settimeout(1.0)
        sock.settimeout(_SOCK_SEND_TIMEOUT)
        chan_fd = chan.fileno()
        sock_fd = sock.fileno()
        sock_eof = chan_eof = False
        sel = selectors.DefaultSelector()
        try:
            while not (sock_eof and chan_eof):
                if stopping.is_set() or (chan_eof and chan.closed):
                    return
                want: Dict[int, int] = {}
                if not sock_eof:
                    want[sock_fd] = selectors.EVENT_READ
                if not chan_eof:
                    want[chan_fd] = selectors.EVENT_READ
                _sync_selector(sel, want)
                for key, _mask in sel.select(_TICK):
                    if key.fd == sock_fd:
                        try:
                            data = sock.recv(_CHUNK)
                        except (BlockingIOError, InterruptedError, socket.timeout):
                            continue
                        except OSError:
                            data = b""
                        if not data:
                            sock_eof = True
                            chan.shutdown_write()
                        elif not _send_to_channel(chan, data, False, stopping):
                            return
                    else:
                        got = _Session._read_channel(chan)
                        if got is None:
                            chan_eof = True
                            try:
                                sock.shutdown(socket.SHUT_WR)
                            except OSError:
                                pass
                        elif got:
                            try:
                                sock.sendall(got)
                            except OSError:
                                return
        finally:
            sel.close()
            sock.close()
            chan.close()
