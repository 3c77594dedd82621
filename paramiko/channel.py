"""``Channel``: one socket-like SSH channel, and the file objects made from it.

Threading model: the transport's reader thread calls the ``_handle_*`` methods; application
threads call the public API. All state lives behind one lock with three conditions (input,
output window, events); nothing busy-waits and every wait honours a timeout.

Message ordering: once our CHANNEL_CLOSE is on the wire the peer may forget the channel and
treat anything more as a fatal protocol error. So every outbound message is "in flight"
(counted in ``_sending``) from the moment it is accounted until it was handed to the
transport, and EOF/CLOSE are queued as *finals* that go out only when nothing is in flight.
The reader thread therefore never waits for an application thread (no self-deadlock), and
no message ever follows our CLOSE.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union

from paramiko._core.channel_state import (
    DEFAULT_BUFFER_CAP,
    SSH_EXTENDED_DATA_STDERR,
    ChannelState,
)
from paramiko.buffered_pipe import ChunkBuffer
from paramiko.common import DEBUG, ERROR, WARNING
from paramiko.file import BufferedFile
from paramiko.pipe import make_pipe
from paramiko.ssh_exception import SSHException
from paramiko.util import ClosingContextManager

BytesLike = Union[bytes, bytearray, memoryview]
_logger = logging.getLogger("paramiko.transport")


class _Reply:
    """Slot for the reply to one CHANNEL_REQUEST sent with want_reply (replies are FIFO)."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = False
        self.ok = False


def _as_bytes(data: Union[str, BytesLike]) -> BytesLike:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray)):
        return data
    if isinstance(data, memoryview):
        return data if data.format == "B" and data.ndim == 1 else data.cast("B")
    raise TypeError(f"expected bytes or str, got {type(data).__name__}")


class Channel(ClosingContextManager):
    """A socket-like SSH channel (normally obtained from ``Transport.open_session``)."""

    # Unread bytes per stream (stdout, stderr) beyond which we stop granting window.
    stream_buffer_cap = DEFAULT_BUFFER_CAP

    def __init__(self, chanid: int) -> None:
        self.chanid = chanid
        self.transport: Any = None
        self.active = False
        self.closed = False
        self.exit_status = -1
        # (signal name, core dumped, error message) if the remote process died by signal.
        self.exit_signal: Optional[Tuple[str, bool, str]] = None
        self.status_event = threading.Event()
        self.combine_stderr = False
        self.origin_addr: Optional[Tuple[str, int]] = None
        self.timeout: Optional[float] = None
        self._name = str(chanid)
        self._state = ChannelState(chanid, buffer_cap=self.stream_buffer_cap)
        self._lock = threading.Lock()
        self._in_cv = threading.Condition(self._lock)
        self._out_cv = threading.Condition(self._lock)
        self._event_cv = threading.Condition(self._lock)
        self._stdout = ChunkBuffer()
        self._stderr = ChunkBuffer()
        self._read_shutdown = False
        self._pipe: Any = None
        self._pipe_finalizer: Optional[weakref.finalize] = None
        self._pipe_released = False  # close() closed the fileno pipe
        self._sending = 0  # outbound messages accounted but not yet handed to the transport
        self._finals: List[Tuple[str, bytes]] = []  # queued EOF/CLOSE
        self._close_queued = False  # after this no new message may start
        self._close_transmitted = False
        self._unlinked = False
        self._dead = False  # the transport is gone
        self._dead_exc: Optional[BaseException] = None
        self._replies: Deque[_Reply] = deque()
        self._request_lock = threading.Lock()  # keeps request order == reply order
        self._session_started = False
        self._forward_agent_handler: Optional[Callable] = None
        self._x11_handler: Optional[Callable] = None
        # Push mode (a Transport riding on this channel): arriving bytes go straight to the
        # sink on the reader thread instead of a buffer and a second thread. The sink lock
        # keeps deliveries in order across the switch from buffering to pushing.
        self._sink: Optional[Callable[[Optional[bytes]], None]] = None
        self._sink_lock = threading.Lock()

    def __repr__(self) -> str:
        if self.closed:
            state = "closed"
        elif self.active:
            state = "open"
            if self._state.eof_received:
                state += ", EOF received"
            if self._state.eof_sent:
                state += ", EOF sent"
        else:
            state = "not open"
        return (f"<paramiko.Channel {self.chanid} ({state}) window={self._state.remote_window}"
                f" -> {self.transport!r}>")

    # -- attributes kept for API compatibility -----------------------------------------
    @property
    def _closed(self) -> bool:
        # Transport reads ``sock._closed``; this lets a Channel be a Transport's socket.
        return self.closed

    @property
    def remote_chanid(self) -> int:
        rid = self._state.remote_id
        return 0 if rid is None else rid

    @property
    def eof_received(self) -> bool:
        return self._state.eof_received or self._read_shutdown

    @property
    def eof_sent(self) -> bool:
        return self._state.eof_sent

    @property
    def in_window_size(self) -> int:
        return self._state.local_window_size

    @property
    def in_max_packet_size(self) -> int:
        return self._state.local_max_packet

    @property
    def out_window_size(self) -> int:
        return self._state.remote_window

    @property
    def out_max_packet_size(self) -> int:
        return self._state.remote_max_packet

    def set_stream_buffer_cap(self, nbytes: int) -> None:
        """Change the per-stream unread-bytes cap that gates window replenishment."""
        if nbytes <= 0:
            raise ValueError("stream buffer cap must be positive")
        with self._lock:
            self._state.buffer_cap = nbytes

    def get_transport(self):
        return self.transport

    def get_id(self) -> int:
        return self.chanid

    def get_name(self) -> str:
        return self._name

    def set_name(self, name: str) -> None:
        self._name = name

    def getpeername(self):
        """The transport's peer address (for a nested transport, the outer hop's)."""
        return self.transport.getpeername()

    # -- timeouts ----------------------------------------------------------------------
    def settimeout(self, timeout: Optional[float]) -> None:
        """Seconds blocking reads/writes may wait (None: forever, 0.0: never)."""
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be non-negative or None")
        self.timeout = timeout

    def gettimeout(self) -> Optional[float]:
        return self.timeout

    def setblocking(self, blocking: Union[bool, int]) -> None:
        self.settimeout(None if blocking else 0.0)

    def _request_timeout(self) -> Optional[float]:
        if self.timeout is not None and self.timeout > 0:
            return self.timeout
        return getattr(self.transport, "channel_timeout", None)

    # -- logging -----------------------------------------------------------------------
    def _log(self, level: int, msg: str) -> None:
        text = f"[chan {self.chanid}] {msg}"
        log = getattr(self.transport, "_log", None)
        if log is not None:
            log(level, text)
        else:
            _logger.log(level, text)

    # -- outbound plumbing (see module docstring) ---------------------------------------
    def _begin_send_locked(self) -> bool:
        if self._close_queued or self._dead:
            return False
        self._sending += 1
        return True

    def _end_send(self) -> None:
        with self._lock:
            self._sending -= 1
            if self._sending or not self._finals:
                return
        self._flush_finals()

    def _send_quietly(self, payload: bytes) -> None:
        """Send an already-begun message from the reader thread; errors are only logged."""
        try:
            self.transport._send_user_message(payload)
        except Exception as exc:  # transport dying: _transport_closed will follow
            self._log(DEBUG, f"send failed: {exc!r}")
        finally:
            self._end_send()

    def _queue_final_locked(self, kind: str) -> None:
        st = self._state
        if kind == "eof":
            st.eof_sent = True
            self._finals.append((kind, st.eof_message()))
        else:
            st.close_sent = True
            self._close_queued = True
            self._finals.append((kind, st.close_message()))

    def _flush_finals(self) -> None:
        while True:
            with self._lock:
                if self._sending or not self._finals or self._dead:
                    return
                batch, self._finals = self._finals, []
                self._sending += 1
            unlink = False
            try:
                for kind, payload in batch:
                    self.transport._send_user_message(payload)
                    if kind == "close":
                        with self._lock:
                            self._close_transmitted = True
                            if self._state.close_received and not self._unlinked:
                                self._unlinked = unlink = True
            except Exception as exc:
                self._log(DEBUG, f"sending EOF/CLOSE failed: {exc!r}")
            finally:
                with self._lock:
                    self._sending -= 1
            if unlink:
                self.transport._unlink_channel(self.chanid)

    def _mark_closed_locked(self) -> None:
        self.closed = True
        self.active = False
        self._in_cv.notify_all()
        self._out_cv.notify_all()
        self._event_cv.notify_all()
        self.status_event.set()
        if self._pipe is not None:
            self._pipe.set_forever()

    # -- transport -> channel (reader thread) ------------------------------------------
    def _set_transport(self, transport) -> None:
        self.transport = transport

    def _set_window(self, window_size: int, max_packet_size: int) -> None:
        with self._lock:
            self._state.set_local_window(window_size, max_packet_size)

    def _set_remote_channel(self, chanid: int, window_size: int, max_packet_size: int) -> None:
        with self._lock:
            self._state.set_remote(chanid, window_size, max_packet_size)
            if not self.closed:
                self.active = True
            self._out_cv.notify_all()

    def _handle_data(self, data: BytesLike) -> None:
        self._receive(data, False)

    def _handle_extended_data(self, code: int, data: BytesLike) -> None:
        self._receive(data, None if code != SSH_EXTENDED_DATA_STDERR else True)

    def _set_data_sink(self, sink: Optional[Callable[[Optional[bytes]], None]]) -> None:
        """Deliver stdout bytes to ``sink(data)`` (``sink(None)`` at EOF) from now on.

        Bytes already buffered are handed over first, in order.
        """
        with self._sink_lock:
            with self._lock:
                backlog = self._stdout.take(len(self._stdout)) if len(self._stdout) else b""
                self._sink = sink
                ended = self._state.eof_received or self._dead
            if sink is not None:
                if backlog:
                    sink(bytes(backlog))
                if ended:
                    sink(None)

    def _push_eof(self) -> None:
        sink = self._sink
        if sink is not None:
            with self._sink_lock:
                sink(None)

    def _receive(self, data: BytesLike, stderr: Optional[bool]) -> None:
        """Buffer arriving data (``stderr`` None: an unknown stream, dropped)."""
        n = len(data)
        with self._lock:
            st = self._state
            accepted = st.accept_inbound(n)
            if accepted < n:
                data = data[:accepted]
            sink = self._sink if stderr is False else None
            if sink is not None and accepted and not (self.closed or st.eof_received):
                pass  # delivered below, outside the channel lock
            elif stderr is not None and accepted and not (
                    self.closed or self._read_shutdown or st.eof_received):
                buf = self._stderr if stderr and not self.combine_stderr else self._stdout
                buf.append(data)
                self._in_cv.notify_all()
                if self._pipe is not None:
                    self._pipe.set()
            adjust = st.window_adjust(max(len(self._stdout), len(self._stderr)))
            if adjust is not None and not self._begin_send_locked():
                adjust = None
        if sink is not None and accepted:
            with self._sink_lock:
                sink(data)
        if accepted < n:
            self._log(WARNING, f"peer exceeded the channel window; dropped {n - accepted} bytes")
        if adjust is not None:
            self._send_quietly(adjust)

    def _handle_window_adjust(self, nbytes: int) -> None:
        with self._lock:
            self._state.add_remote_window(nbytes)
            self._out_cv.notify_all()

    def _handle_eof(self) -> None:
        with self._lock:
            self._state.eof_received = True
            self._in_cv.notify_all()
            if self._pipe is not None:
                self._pipe.set_forever()
        self._push_eof()

    def _handle_close(self) -> None:
        with self._lock:
            st = self._state
            if st.close_received:
                return
            st.close_received = True
            st.eof_received = True
            self._mark_closed_locked()
            need_close = (not self._close_queued and not self._dead
                          and st.remote_id is not None)
            if need_close:
                self._queue_final_locked("close")
            unlink = self._close_transmitted and not self._unlinked
            if unlink:
                self._unlinked = True
        if need_close:
            self._flush_finals()
        if unlink:
            self.transport._unlink_channel(self.chanid)
        self._push_eof()

    def _transport_closed(self, exc: Optional[BaseException] = None) -> None:
        with self._lock:
            self._dead = True
            self._dead_exc = exc
            self._finals.clear()
            self._mark_closed_locked()
        self._push_eof()

    def _handle_request_reply(self, ok: bool) -> None:
        with self._lock:
            if self._replies:
                slot = self._replies.popleft()
                slot.ok = bool(ok)
                slot.done = True
                self._event_cv.notify_all()
                return
        self._log(DEBUG, "unexpected channel request reply (no request pending)")

    def _handle_request(self, m) -> None:
        """A CHANNEL_REQUEST; ``m`` is positioned at the request type."""
        try:
            kind = m.get_text()
            want_reply = m.get_boolean()
        except SSHException as exc:
            self._log(WARNING, f"malformed channel request ignored: {exc}")
            return
        # Reserve the reply's place before the handler runs: a handler (e.g. a subsystem
        # thread) may close the channel at once, and its EOF/CLOSE must wait for our reply.
        reserved = False
        if want_reply:
            with self._lock:
                reserved = self._begin_send_locked()  # False once our CLOSE is queued
        ok = False
        try:
            ok = bool(self._dispatch_request(kind, m))
        except SSHException as exc:
            self._log(WARNING, f"malformed {kind!r} request refused: {exc}")
        except Exception as exc:  # a ServerInterface callback failed: refuse, keep running
            self._log(ERROR, f"handler for {kind!r} request raised {exc!r}; refusing")
        finally:
            if reserved:
                st = self._state
                self._send_quietly(st.success_message() if ok else st.failure_message())

    def _dispatch_request(self, kind: str, m) -> bool:
        if kind == "exit-status":
            status = m.get_int()
            with self._lock:
                self.exit_status = status
                self.status_event.set()
                self._event_cv.notify_all()
            return True
        if kind == "exit-signal":
            name = m.get_text()
            core = m.get_boolean()
            message = m.get_text()
            m.get_text()  # language tag
            with self._lock:
                self.exit_signal = (name, core, message)
                self.status_event.set()
                self._event_cv.notify_all()
            self._log(DEBUG, f"remote process killed by signal {name}")
            return True
        if kind == "keepalive@openssh.com":
            return False  # what OpenSSH replies; any reply proves we are alive
        transport = self.transport
        server = getattr(transport, "server_object", None)
        if not getattr(transport, "server_mode", False) or server is None:
            self._log(DEBUG, f"refusing unsupported channel request {kind!r}")
            return False
        if kind == "pty-req":
            term = m.get_string()
            width, height, pw, ph = m.get_int(), m.get_int(), m.get_int(), m.get_int()
            modes = m.get_string()
            return server.check_channel_pty_request(self, term, width, height, pw, ph, modes)
        if kind == "shell":
            return server.check_channel_shell_request(self)
        if kind == "exec":
            return server.check_channel_exec_request(self, m.get_string())
        if kind == "subsystem":
            return server.check_channel_subsystem_request(self, m.get_text())
        if kind == "window-change":
            width, height, pw, ph = m.get_int(), m.get_int(), m.get_int(), m.get_int()
            return server.check_channel_window_change_request(self, width, height, pw, ph)
        if kind == "x11-req":
            single = m.get_boolean()
            proto = m.get_text()
            cookie = m.get_binary()
            screen = m.get_int()
            return server.check_channel_x11_request(self, single, proto, cookie, screen)
        if kind == "auth-agent-req@openssh.com":
            return server.check_channel_forward_agent_request(self)
        if kind == "env":
            name = m.get_string()
            value = m.get_string()
            return server.check_channel_env_request(self, name, value)
        if kind == "signal":
            check = getattr(server, "check_channel_signal_request", None)
            return bool(check(self, m.get_text())) if check is not None else False
        self._log(DEBUG, f"refusing unsupported channel request {kind!r}")
        return False

    # -- requests (client side) --------------------------------------------------------
    def _check_open_locked(self) -> None:
        st = self._state
        if self.closed or not self.active or st.eof_sent or self.eof_received:
            raise SSHException("Channel is not open")

    def _request(self, what: str, build: Callable[[], bytes], want_reply: bool = True,
                 open_only: bool = True) -> None:
        """Send one CHANNEL_REQUEST and (if ``want_reply``) wait for the answer."""
        slot = _Reply() if want_reply else None
        with self._request_lock:
            with self._lock:
                if open_only:
                    self._check_open_locked()
                payload = build()  # validates arguments before anything is queued
                if not self._begin_send_locked():
                    raise SSHException("Channel is closed")
                if slot is not None:
                    self._replies.append(slot)
            try:
                self.transport._send_user_message(payload)
            except BaseException:
                with self._lock:
                    if slot is not None and slot in self._replies:
                        self._replies.remove(slot)
                raise
            finally:
                self._end_send()
        if slot is not None:
            self._wait_reply(slot, what)

    def _wait_reply(self, slot: _Reply, what: str) -> None:
        timeout = self._request_timeout()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not slot.done:
                if self.closed:
                    reason = f": {self._dead_exc}" if self._dead_exc else ""
                    raise SSHException(f"Channel closed while waiting for the reply to the "
                                       f"{what} request{reason}")
                if deadline is None:
                    self._event_cv.wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        # The slot stays queued so a late reply is matched correctly.
                        raise SSHException(f"Timed out after {timeout} s waiting for the "
                                           f"reply to the {what} request")
                    self._event_cv.wait(left)
        if not slot.ok:
            raise SSHException(f"The server refused the {what} request")

    def _start_session(self, what: str, build: Callable[[], bytes]) -> None:
        with self._lock:
            if self._session_started:
                raise SSHException("A command, shell or subsystem was already started on "
                                   "this channel; open a new channel for another")
            self._session_started = True
        try:
            self._request(what, build)
        except BaseException:
            with self._lock:
                self._session_started = False
            raise

    def exec_command(self, command: Union[str, bytes]) -> None:
        """Run ``command`` remotely; raises ``SSHException`` if refused or closed."""
        self._start_session("exec", lambda: self._state.exec_request(command))

    def invoke_shell(self) -> None:
        """Start an interactive shell (usually after ``get_pty``)."""
        self._start_session("shell", lambda: self._state.shell_request())

    def invoke_subsystem(self, subsystem: str) -> None:
        """Start a subsystem such as ``"sftp"``."""
        self._start_session("subsystem", lambda: self._state.subsystem_request(subsystem))

    def get_pty(self, term: Union[str, bytes] = "vt100", width: int = 80, height: int = 24,
                width_pixels: int = 0, height_pixels: int = 0, *,
                modes: Union[None, bytes, Dict[Union[str, int], int]] = None) -> None:
        """Request a pseudo-terminal; ``modes`` maps RFC 4254 mode names/opcodes to values."""
        self._request("pty-req", lambda: self._state.pty_request(
            term, width, height, width_pixels, height_pixels, modes))

    def resize_pty(self, width: int = 80, height: int = 24, width_pixels: int = 0,
                   height_pixels: int = 0) -> None:
        """Tell the server the terminal size changed (no reply is expected)."""
        self._request("window-change", lambda: self._state.window_change_request(
            width, height, width_pixels, height_pixels), want_reply=False)

    def update_environment(self, environment: Dict[Union[str, bytes], Union[str, bytes]]) -> None:
        """Set each variable; raises ``SSHException`` naming the first refused one."""
        for name, value in environment.items():
            try:
                self.set_environment_variable(name, value)
            except SSHException as exc:
                raise SSHException(f"Failed to set environment variable {name!r}: {exc}") from exc

    def set_environment_variable(self, name: Union[str, bytes], value: Union[str, bytes]) -> None:
        """Set one remote environment variable (servers often allow only a few, AcceptEnv)."""
        self._request("env", lambda: self._state.env_request(name, value))

    def send_signal(self, name: str) -> None:
        """Ask the server to deliver signal ``name`` (``"TERM"``, ``"INT"``, ... without the
        ``SIG`` prefix) to the remote command (RFC 4254 6.9; no reply is sent)."""
        self._request("signal", lambda: self._state.signal_request(name), want_reply=False)

    def send_exit_status(self, status: int) -> None:
        """Server side: report the command's exit status (silently skipped once closed)."""
        try:
            self._request("exit-status", lambda: self._state.exit_status_request(status),
                          want_reply=False, open_only=False)
        except SSHException as exc:
            self._log(DEBUG, f"exit status {status} not sent: {exc}")

    def request_x11(self, screen_number: int = 0, auth_protocol: Optional[str] = None,
                    auth_cookie: Union[None, str, bytes] = None,
                    single_connection: bool = False, handler: Optional[Callable] = None):
        """Ask for X11 forwarding; returns the auth cookie used (random if not given)."""
        if auth_protocol is None:
            auth_protocol = "MIT-MAGIC-COOKIE-1"
        if auth_cookie is None:
            auth_cookie = os.urandom(16).hex().encode("ascii")
        # Handlers go in first: the server may open its channel as soon as it has the request.
        self._x11_handler = handler
        setter = getattr(self.transport, "_set_x11_handler", None)
        if setter is not None:
            setter(handler)
        self._request("x11-req", lambda: self._state.x11_request(
            single_connection, auth_protocol, auth_cookie, screen_number))
        return auth_cookie

    def request_forward_agent(self, handler: Callable) -> bool:
        """Ask the server to forward agent connections; ``handler`` serves them."""
        self._forward_agent_handler = handler
        setter = getattr(self.transport, "_set_forward_agent_handler", None)
        if setter is not None:
            setter(handler)
        self._request("auth-agent-req@openssh.com",
                      lambda: self._state.forward_agent_request(False), want_reply=False)
        return True

    # -- exit status -------------------------------------------------------------------
    def exit_status_ready(self) -> bool:
        return self.status_event.is_set()

    def recv_exit_status(self, timeout: Optional[float] = None) -> int:
        """Wait for the exit status (or channel close: then -1).

        Waits up to ``timeout``, else the channel timeout when one (> 0) is set, else
        without limit; raises ``socket.timeout`` on expiry. Unread output never blocks
        this: the window keeps being granted while output is buffered (up to the cap).
        """
        if timeout is None and self.timeout is not None and self.timeout > 0:
            timeout = self.timeout
        if not self.status_event.wait(timeout):
            raise socket.timeout(f"no exit status within {timeout} seconds")
        return self.exit_status

    # -- receiving ---------------------------------------------------------------------
    def _recv_from(self, stderr: bool, nbytes: int) -> bytes:
        if nbytes < 0:
            raise ValueError("negative buffersize in recv")
        if nbytes == 0:
            return b""
        with self._lock:
            buf = self._stderr if stderr else self._stdout
            if not buf:
                st = self._state
                timeout = self.timeout
                deadline = None
                while not buf and not (st.eof_received or self.closed or self._read_shutdown):
                    if timeout is None:
                        self._in_cv.wait()
                        continue
                    if deadline is None:
                        deadline = time.monotonic() + timeout
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise socket.timeout("timed out waiting for channel data")
                    self._in_cv.wait(left)
                if not buf:
                    return b""
            out = buf.take(nbytes)
            if (self._pipe is not None and not self._stdout and not self._stderr):
                self._pipe.clear()  # no-op once EOF made it permanent
            adjust = self._state.window_adjust(max(len(self._stdout), len(self._stderr)))
            if adjust is not None and not self._begin_send_locked():
                adjust = None
        if adjust is not None:
            self._send_quietly(adjust)
        return out

    def recv(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` of stdout; ``b""`` at EOF/close; ``socket.timeout`` on timeout."""
        return self._recv_from(False, nbytes)

    def recv_stderr(self, nbytes: int) -> bytes:
        """Like ``recv`` for the stderr stream."""
        return self._recv_from(True, nbytes)

    def recv_ready(self) -> bool:
        with self._lock:
            return bool(self._stdout)

    def recv_stderr_ready(self) -> bool:
        with self._lock:
            return bool(self._stderr)

    def set_combine_stderr(self, combine: bool) -> bool:
        """Deliver stderr through ``recv``; returns the previous setting."""
        with self._lock:
            old = self.combine_stderr
            self.combine_stderr = bool(combine)
            if combine and not old and self._stderr:
                self._stderr.move_to(self._stdout)
                self._in_cv.notify_all()
            return old

    # -- sending -----------------------------------------------------------------------
    def _send_to(self, data: Union[str, BytesLike], stderr: bool) -> int:
        data = _as_bytes(data)
        if not len(data):
            return 0
        with self._lock:
            st = self._state
            deadline = None
            while True:
                if self.closed:
                    raise OSError("Socket is closed")
                if st.eof_sent or self._close_queued:
                    return 0
                size = st.send_size(len(data))
                if size:
                    break
                timeout = self.timeout
                if timeout is None:
                    self._out_cv.wait()
                    continue
                if deadline is None:
                    deadline = time.monotonic() + timeout
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("timed out waiting for the remote window")
                self._out_cv.wait(left)
            st.consume_remote(size)
            self._sending += 1
        try:
            chunk = data if size == len(data) else memoryview(data)[:size]
            if stderr:
                payload = st.extended_data_message(chunk)
            else:
                payload = st.data_message(chunk)
            self.transport._send_user_message(payload)
        except SSHException as exc:
            raise OSError(f"Socket is closed: {exc}") from exc
        finally:
            self._end_send()
        return size

    def send(self, s: Union[str, BytesLike]) -> int:
        """Send some of ``s``; returns the count (0 after EOF was sent).

        Limited by the remote window and the peer's max packet; waits (up to the timeout)
        only while the window is empty. Raises ``OSError`` if the channel is closed.
        """
        return self._send_to(s, False)

    def send_stderr(self, s: Union[str, BytesLike]) -> int:
        """Like ``send`` on the stderr stream (server side)."""
        return self._send_to(s, True)

    def _sendall_to(self, s: Union[str, BytesLike], stderr: bool) -> None:
        view = memoryview(_as_bytes(s))
        while len(view):
            sent = self._send_to(view, stderr)
            if sent == 0:
                raise OSError("Channel is shut down for writing (EOF already sent)")
            view = view[sent:]

    def sendall(self, s: Union[str, BytesLike]) -> None:
        """Send all of ``s`` (each wait for window honours the timeout)."""
        self._sendall_to(s, False)

    def sendall_stderr(self, s: Union[str, BytesLike]) -> None:
        self._sendall_to(s, True)

    def send_ready(self) -> bool:
        """True if ``send`` would not block (also when closed, so the error surfaces)."""
        with self._lock:
            st = self._state
            if self.closed or st.eof_sent:
                return True
            return st.send_size(1) > 0

    # -- select support ----------------------------------------------------------------
    def fileno(self) -> int:
        """An OS fd that ``select`` reports readable while data or EOF is pending.

        Created on first use; closed by ``close()`` (afterwards -1, like a closed socket).
        """
        with self._lock:
            if self._pipe is not None:
                return self._pipe.fileno()
            if self._pipe_released:
                return -1  # close() already released the pipe
            pipe = make_pipe()
            if self.closed or self.eof_received:
                pipe.set_forever()
            elif self._stdout or self._stderr:
                pipe.set()
            self._pipe = pipe
            # Release the fds if the channel is dropped unclosed; never takes a lock.
            self._pipe_finalizer = weakref.finalize(self, pipe.close)
            return pipe.fileno()

    # -- shutdown / close --------------------------------------------------------------
    def shutdown(self, how: int) -> None:
        """0: stop reading, 1: stop writing (send EOF), 2: both."""
        if how not in (0, 1, 2):
            raise ValueError("how must be 0, 1 or 2")
        if how in (0, 2):
            self.shutdown_read()
        if how in (1, 2):
            self.shutdown_write()

    def shutdown_read(self) -> None:
        """Discard buffered and future input; the window keeps being granted."""
        with self._lock:
            self._read_shutdown = True
            self._stdout.clear()
            self._stderr.clear()
            self._in_cv.notify_all()
            if self._pipe is not None:
                self._pipe.set_forever()
            adjust = self._state.window_adjust(0)
            if adjust is not None and not self._begin_send_locked():
                adjust = None
        if adjust is not None:
            self._send_quietly(adjust)

    def shutdown_write(self) -> None:
        """Send EOF: the remote side sees end of input; we can still receive."""
        with self._lock:
            st = self._state
            if self.closed or st.eof_sent or self._close_queued or not self.active:
                return
            self._queue_final_locked("eof")
            self._out_cv.notify_all()
        self._flush_finals()

    def close(self) -> None:
        """Close the channel (sends EOF and CLOSE once); buffered input stays readable."""
        with self._lock:
            pipe, self._pipe = self._pipe, None
            self._pipe_released = True
            if not self.closed:
                st = self._state
                if self.active and not self._dead and not self._close_queued:
                    if not st.eof_sent:
                        self._queue_final_locked("eof")
                    self._queue_final_locked("close")
                self._mark_closed_locked()
        if pipe is not None:
            if self._pipe_finalizer is not None:
                self._pipe_finalizer.detach()
            pipe.close()
        self._flush_finals()

    # -- files -------------------------------------------------------------------------
    def makefile(self, *params) -> ChannelFile:
        """A file over stdout (reads) and data (writes): ``makefile("r"|"w"|"rb", bufsize)``."""
        return ChannelFile(self, *params)

    def makefile_stderr(self, *params) -> ChannelStderrFile:
        return ChannelStderrFile(self, *params)

    def makefile_stdin(self, *params) -> ChannelStdinFile:
        """A write file whose ``close()`` also sends EOF."""
        return ChannelStdinFile(self, *params)


class ChannelFile(BufferedFile):
    """File over a channel's stdout/data stream."""

    def __init__(self, channel: Channel, mode: str = "r", bufsize: int = -1) -> None:
        super().__init__()
        self.channel = channel
        self._set_mode(mode, bufsize)

    def __repr__(self) -> str:
        return f"<paramiko.ChannelFile from {self.channel!r}>"

    def _read(self, size: int) -> bytes:
        return self.channel.recv(size)

    def _write(self, data: BytesLike) -> int:
        self.channel.sendall(data)
        return len(data)


class ChannelStderrFile(ChannelFile):
    """File over a channel's stderr stream."""

    def _read(self, size: int) -> bytes:
        return self.channel.recv_stderr(size)

    def _write(self, data: BytesLike) -> int:
        self.channel.sendall_stderr(data)
        return len(data)


class ChannelStdinFile(ChannelFile):
    """File for the remote command's stdin: closing it flushes and sends EOF."""

    def close(self) -> None:
        was_closed = self._closed
        try:
            super().close()
        finally:
            if not was_closed:
                self.channel.shutdown_write()
