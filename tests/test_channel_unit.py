"""Channel, its files, flow control and the server-side hooks, driven by a fake transport.

No sockets: the fake transport records every payload the channel sends and the tests play the
transport's reader thread by calling the ``_handle_*`` methods (from other threads where the
timing matters). Every wait is bounded.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time

import pytest

from paramiko._core.channel_state import (
    ChannelState,
    decode_terminal_modes,
    encode_terminal_modes,
)
from paramiko.buffered_pipe import BufferedPipe, ChunkBuffer, PipeTimeout
from paramiko.channel import Channel, ChannelFile, ChannelStderrFile, ChannelStdinFile
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    MSG_CHANNEL_CLOSE,
    MSG_CHANNEL_DATA,
    MSG_CHANNEL_EOF,
    MSG_CHANNEL_EXTENDED_DATA,
    MSG_CHANNEL_FAILURE,
    MSG_CHANNEL_REQUEST,
    MSG_CHANNEL_SUCCESS,
    MSG_CHANNEL_WINDOW_ADJUST,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
)
from paramiko.file import BufferedFile
from paramiko.message import Message
from paramiko.pipe import make_or_pipe, make_pipe
from paramiko.server import InteractiveQuery, ServerInterface, SubsystemHandler
from paramiko.ssh_exception import SSHException

MiB = 1024 * 1024
REMOTE_ID = 7


class FakeTransport:
    """Implements the transport side of the channel contract and records what is sent."""

    def __init__(self, server_mode: bool = False, server_object=None,
                 reply: bool | None = None) -> None:
        self.server_mode = server_mode
        self.server_object = server_object
        self.channel_timeout = 2.0
        self.active = True
        self.sent: list[bytes] = []
        self.unlinked: list[int] = []
        self.logs: list[tuple[int, str]] = []
        self.subsystems: dict = {}
        self.cond = threading.Condition()
        self.reply = reply  # auto-answer requests that want a reply
        self.channel: Channel | None = None
        self.on_send = None

    def _send_user_message(self, payload: bytes) -> None:
        if not self.active:
            raise SSHException("transport is not active")
        payload = bytes(payload)
        with self.cond:
            self.sent.append(payload)
            self.cond.notify_all()
        if self.on_send is not None:
            self.on_send(payload)
        if self.reply is not None and payload[0] == MSG_CHANNEL_REQUEST:
            _, _, want = parse_request(payload)
            if want:
                self.channel._handle_request_reply(self.reply)

    def _unlink_channel(self, chanid: int) -> None:
        self.unlinked.append(chanid)

    def _get_subsystem_handler(self, name: str):
        return self.subsystems.get(name, (None, (), {}))

    def getpeername(self):
        return ("192.0.2.1", 22)

    def is_active(self) -> bool:
        return self.active

    def _log(self, level: int, msg: str) -> None:
        self.logs.append((level, msg))

    # -- test helpers --------------------------------------------------------------
    def types(self) -> list[int]:
        with self.cond:
            return [p[0] for p in self.sent]

    def of_type(self, t: int) -> list[bytes]:
        with self.cond:
            return [p for p in self.sent if p[0] == t]

    def wait_for(self, predicate, timeout: float = 2.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


def parse_request(payload: bytes):
    m = Message(payload[1:])
    rid = m.get_int()
    return rid, m.get_text(), m.get_boolean()


def request_body(payload: bytes) -> Message:
    m = Message(payload[1:])
    m.get_int()
    m.get_text()
    m.get_boolean()
    return m


def adjust_amount(payload: bytes) -> int:
    return struct.unpack(">I", payload[5:9])[0]


def make_channel(transport: FakeTransport | None = None, window: int = 2 * MiB,
                 max_packet: int = 32768, remote_window: int = 2 * MiB,
                 remote_max_packet: int = 32768) -> tuple[Channel, FakeTransport]:
    t = transport or FakeTransport()
    chan = Channel(3)
    chan._set_transport(t)
    chan._set_window(window, max_packet)
    chan._set_remote_channel(REMOTE_ID, remote_window, remote_max_packet)
    t.channel = chan
    return chan, t


def request_msg(kind: str, want_reply: bool, *fields) -> Message:
    m = Message()
    m.add_string(kind)
    m.add_boolean(want_reply)
    for f in fields:
        if isinstance(f, bool):
            m.add_boolean(f)
        elif isinstance(f, int):
            m.add_int(f)
        else:
            m.add_string(f)
    return Message(m.asbytes())


def later(delay: float, fn, *args) -> threading.Thread:
    def run():
        time.sleep(delay)
        fn(*args)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


# -- receiving ------------------------------------------------------------------------
def test_recv_gathers_chunks_and_respects_nbytes():
    chan, _ = make_channel()
    chan._handle_data(b"hello ")
    chan._handle_data(b"world")
    assert chan.recv_ready()
    assert chan.recv(3) == b"hel"
    assert chan.recv(1024) == b"lo world"
    assert not chan.recv_ready()
    assert chan.recv(0) == b""
    with pytest.raises(ValueError):
        chan.recv(-1)


def test_recv_timeout_and_nonblocking():
    chan, _ = make_channel()
    chan.settimeout(0.05)
    assert chan.gettimeout() == 0.05
    start = time.monotonic()
    with pytest.raises(socket.timeout):
        chan.recv(10)
    assert 0.04 <= time.monotonic() - start < 1.0
    chan.setblocking(False)
    assert chan.gettimeout() == 0.0
    with pytest.raises(socket.timeout):
        chan.recv_stderr(10)
    chan.setblocking(True)
    assert chan.gettimeout() is None


def test_recv_blocks_until_data_arrives_from_reader_thread():
    chan, _ = make_channel()
    chan.settimeout(2.0)
    later(0.05, chan._handle_data, b"late")
    assert chan.recv(100) == b"late"
    later(0.05, chan._handle_extended_data, 1, b"err")
    assert chan.recv_stderr(100) == b"err"


def test_eof_drains_then_returns_empty():
    chan, _ = make_channel()
    chan._handle_data(b"tail")
    chan._handle_eof()
    assert chan.eof_received
    assert chan.recv(2) == b"ta"
    assert chan.recv(10) == b"il"
    assert chan.recv(10) == b""
    assert chan.recv_stderr(10) == b""


def test_unknown_extended_data_code_is_dropped_but_credited():
    chan, t = make_channel(window=65536)
    chan._handle_extended_data(2, b"x" * 60000)
    assert not chan.recv_ready() and not chan.recv_stderr_ready()
    adj = t.of_type(MSG_CHANNEL_WINDOW_ADJUST)
    assert adj and adjust_amount(adj[0]) == 60000


def test_combine_stderr_moves_buffered_and_future_stderr():
    chan, _ = make_channel()
    chan._handle_extended_data(1, b"e1 ")
    assert chan.set_combine_stderr(True) is False
    chan._handle_extended_data(1, b"e2 ")
    chan._handle_data(b"o1")
    assert chan.recv(100) == b"e1 e2 o1"
    assert not chan.recv_stderr_ready()
    assert chan.set_combine_stderr(False) is True


# -- sending --------------------------------------------------------------------------
def test_send_limited_by_max_packet_and_window():
    chan, t = make_channel(remote_window=50000, remote_max_packet=32768)
    n = chan.send(b"a" * 100000)
    assert n == 32768 - 64
    p = t.of_type(MSG_CHANNEL_DATA)[0]
    rid, length = struct.unpack(">II", p[1:9])
    assert (rid, length) == (REMOTE_ID, n) and p[9:] == b"a" * n
    assert chan.send(b"b" * 100000) == 50000 - n  # the rest of the window
    assert chan.out_window_size == 0
    assert not chan.send_ready()
    chan.settimeout(0.05)
    with pytest.raises(socket.timeout):
        chan.send(b"c")


def test_send_waits_for_window_adjust():
    chan, t = make_channel(remote_window=0)
    chan.settimeout(2.0)
    later(0.05, chan._handle_window_adjust, 10)
    assert chan.send(b"0123456789abc") == 10
    assert t.of_type(MSG_CHANNEL_DATA)[0][9:] == b"0123456789"


def test_sendall_and_stderr_payloads():
    chan, t = make_channel(remote_window=100000, remote_max_packet=1064)
    data = bytes(range(256)) * 100
    chan.sendall(data)
    got = b"".join(p[9:] for p in t.of_type(MSG_CHANNEL_DATA))
    assert got == data
    assert all(len(p) - 9 <= 1000 for p in t.of_type(MSG_CHANNEL_DATA))
    chan.sendall_stderr("oops")  # str is UTF-8 encoded
    p = t.of_type(MSG_CHANNEL_EXTENDED_DATA)[0]
    assert struct.unpack(">III", p[1:13]) == (REMOTE_ID, 1, 4) and p[13:] == b"oops"


def test_sendall_in_pieces_as_window_opens():
    chan, t = make_channel(remote_window=1000)
    chan.settimeout(2.0)

    def open_window():
        for _ in range(5):
            time.sleep(0.01)
            chan._handle_window_adjust(1000)

    threading.Thread(target=open_window, daemon=True).start()
    chan.sendall(b"z" * 5500)
    assert sum(len(p) - 9 for p in t.of_type(MSG_CHANNEL_DATA)) == 5500


def test_send_after_eof_and_after_close():
    chan, t = make_channel()
    chan.shutdown_write()
    assert chan.eof_sent and t.types() == [MSG_CHANNEL_EOF]
    assert chan.send(b"x") == 0
    assert chan.send_ready()
    with pytest.raises(OSError):
        chan.sendall(b"x")
    chan.close()
    with pytest.raises(OSError, match="closed"):
        chan.send(b"x")


def test_send_on_dead_transport_is_a_socket_error():
    chan, t = make_channel()
    t.active = False
    with pytest.raises(OSError):
        chan.send(b"data")


# -- requests -------------------------------------------------------------------------
def test_exec_command_success_and_payload():
    t = FakeTransport(reply=True)
    chan, _ = make_channel(t)
    chan.exec_command("ls -l")
    req = t.of_type(MSG_CHANNEL_REQUEST)[0]
    assert parse_request(req) == (REMOTE_ID, "exec", True)
    assert request_body(req).get_string() == b"ls -l"
    with pytest.raises(SSHException, match="already"):
        chan.exec_command("again")


def test_exec_command_refused_raises_and_channel_stays_usable():
    t = FakeTransport(reply=False)
    chan, _ = make_channel(t)
    with pytest.raises(SSHException, match="refused the exec"):
        chan.exec_command("nope")
    t.reply = True
    chan.invoke_shell()  # a refusal does not consume the one-session-request allowance
    assert [parse_request(p)[1] for p in t.of_type(MSG_CHANNEL_REQUEST)] == ["exec", "shell"]


def test_request_reply_from_another_thread():
    chan, t = make_channel()
    t.on_send = lambda p: p[0] == MSG_CHANNEL_REQUEST and later(
        0.05, chan._handle_request_reply, True)
    chan.get_pty("xterm", 100, 40, modes={"ECHO": 0, 128: 38400})
    body = request_body(t.of_type(MSG_CHANNEL_REQUEST)[0])
    assert body.get_string() == b"xterm"
    assert [body.get_int() for _ in range(4)] == [100, 40, 0, 0]
    assert decode_terminal_modes(body.get_string()) == {53: 0, 128: 38400}


def test_request_timeout_then_late_reply_is_matched_in_order():
    chan, t = make_channel()
    t.channel_timeout = 0.05
    with pytest.raises(SSHException, match="Timed out"):
        chan.set_environment_variable("A", "1")
    # The late "failure" belongs to the timed-out request; the next one gets its own reply.
    chan._handle_request_reply(False)
    t.reply = True
    chan.update_environment({"B": "2"})
    with pytest.raises(SSHException, match="not open"):
        Channel(9).exec_command("x")  # never opened


def test_update_environment_names_refused_variable():
    t = FakeTransport(reply=False)
    chan, _ = make_channel(t)
    with pytest.raises(SSHException, match="LANG"):
        chan.update_environment({"LANG": "C"})


def test_resize_and_forward_agent_need_no_reply():
    chan, t = make_channel()
    chan.resize_pty(120, 50)
    handler = object()
    assert chan.request_forward_agent(handler) is True
    kinds = [parse_request(p)[1:] for p in t.of_type(MSG_CHANNEL_REQUEST)]
    assert kinds == [("window-change", False), ("auth-agent-req@openssh.com", False)]
    assert chan._forward_agent_handler is handler


def test_request_x11_returns_cookie():
    t = FakeTransport(reply=True)
    chan, _ = make_channel(t)
    cookie = chan.request_x11()
    body = request_body(t.of_type(MSG_CHANNEL_REQUEST)[0])
    assert body.get_boolean() is False
    assert body.get_text() == "MIT-MAGIC-COOKIE-1"
    assert body.get_string() == cookie and len(cookie) == 32


# -- exit status ----------------------------------------------------------------------
def test_exit_status_and_signal():
    chan, t = make_channel()
    assert not chan.exit_status_ready()
    later(0.05, chan._handle_request, request_msg("exit-status", False, 3))
    assert chan.recv_exit_status(timeout=2) == 3
    assert chan.exit_status_ready()
    assert t.sent == []  # no reply wanted, none sent

    chan2, _ = make_channel()
    chan2._handle_request(request_msg("exit-signal", False, "KILL", True, "killed", ""))
    assert chan2.exit_signal == ("KILL", True, "killed")
    assert chan2.recv_exit_status() == -1


def test_recv_exit_status_timeout_and_close():
    chan, _ = make_channel()
    chan.settimeout(0.05)
    with pytest.raises(socket.timeout):
        chan.recv_exit_status()
    later(0.05, chan._handle_close)
    assert chan.recv_exit_status(timeout=2) == -1


def test_send_exit_status_server_side():
    chan, t = make_channel()
    chan.send_exit_status(42)
    req = t.of_type(MSG_CHANNEL_REQUEST)[0]
    assert parse_request(req)[1:] == ("exit-status", False)
    assert request_body(req).get_int() == 42
    chan.close()
    chan.send_exit_status(1)  # after close: skipped, not an error
    assert len(t.of_type(MSG_CHANNEL_REQUEST)) == 1


# -- fileno / select ------------------------------------------------------------------
def readable(chan, timeout=0.0) -> bool:
    r, _, _ = select.select([chan], [], [], timeout)
    return bool(r)


def test_fileno_select_data_then_eof_then_close():
    chan, _ = make_channel()
    fd = chan.fileno()
    assert chan.fileno() == fd and not readable(chan)
    later(0.05, chan._handle_data, b"ping")
    assert readable(chan, 2.0)
    assert chan.recv(100) == b"ping"
    assert not readable(chan)
    chan._handle_extended_data(1, b"e")
    assert readable(chan)
    chan.recv_stderr(1)
    assert not readable(chan)
    chan._handle_eof()
    assert readable(chan) and readable(chan)  # stays readable at EOF
    assert chan.recv(10) == b""
    chan.close()
    assert chan.fileno() == -1
    with pytest.raises(OSError):
        import os
        os.fstat(fd)


def test_fileno_created_after_data_is_already_readable():
    chan, _ = make_channel()
    chan._handle_data(b"x")
    chan.fileno()
    assert readable(chan)
    chan.close()


# -- files ----------------------------------------------------------------------------
def test_makefile_text_lines_and_binary_read():
    chan, _ = make_channel()
    f = chan.makefile("r")
    assert isinstance(f, ChannelFile)
    chan._handle_data(b"one\ntwo\r\nthr")
    chan._handle_data(b"ee\nrest")
    chan._handle_eof()
    assert f.readline() == "one\n"
    assert next(iter(f)) == "two\r\n"  # no universal newlines: \r stays
    assert f.readline() == "three\n"
    assert f.read() == b"rest"  # read() is bytes even in text mode
    assert f.readline() == ""
    assert list(f) == []


def test_makefile_binary_iteration_and_readlines():
    chan, _ = make_channel()
    f = chan.makefile("rb")
    chan._handle_data(b"a\nb\nc")
    chan._handle_eof()
    assert list(f) == [b"a\n", b"b\n", b"c"]
    chan2, _ = make_channel()
    chan2._handle_data(b"x\ny\n")
    chan2._handle_eof()
    assert chan2.makefile().readlines() == ["x\n", "y\n"]


def test_stderr_file_and_readline_limit():
    chan, _ = make_channel()
    f = chan.makefile_stderr("r")
    assert isinstance(f, ChannelStderrFile)
    chan._handle_extended_data(1, b"abcdef\n")
    assert f.readline(3) == "abc"
    assert f.readline() == "def\n"


def test_read_exact_size_across_arrivals_and_timeout_keeps_data():
    chan, _ = make_channel()
    chan.settimeout(0.05)
    f = chan.makefile("rb")
    chan._handle_data(b"12345")
    with pytest.raises(socket.timeout):
        f.read(10)  # only 5 bytes so far
    chan._handle_data(b"67890abc")
    assert f.read(10) == b"1234567890"  # nothing was lost to the timeout
    assert f.tell() == 10
    chan._handle_eof()
    assert f.read(100) == b"abc"


def test_stdin_file_close_sends_eof_once_and_flushes():
    chan, t = make_channel()
    f = chan.makefile_stdin("wb", 4096)
    assert isinstance(f, ChannelStdinFile)
    f.write(b"buffered")
    assert t.sent == []  # block-buffered until flush/close
    f.close()
    f.close()
    assert t.types() == [MSG_CHANNEL_DATA, MSG_CHANNEL_EOF]
    assert chan.eof_sent
    with pytest.raises(OSError):
        f.write(b"x")


def test_default_stdin_file_is_unbuffered_and_line_buffering():
    chan, t = make_channel()
    f = chan.makefile_stdin("wb")
    f.write("immediate")
    assert t.of_type(MSG_CHANNEL_DATA)[0][9:] == b"immediate"
    g = chan.makefile("w", 1)
    g.write("a\nb")
    assert t.of_type(MSG_CHANNEL_DATA)[-1][9:] == b"a\n"
    g.flush()
    assert t.of_type(MSG_CHANNEL_DATA)[-1][9:] == b"b"
    with pytest.raises(OSError, match="not open for reading"):
        g.read()


class _StrFile(BufferedFile):
    def __init__(self, data: bytes, mode: str = "r", chunk: int = 3):
        super().__init__()
        self._data = data
        self._chunk = chunk
        self._set_mode(mode)

    def _read(self, size):
        out, self._data = self._data[:min(size, self._chunk)], self._data[self._chunk:]
        return out


def test_universal_newlines():
    f = _StrFile(b"a\rb\r\nc\nd\r", "rU", chunk=2)
    assert [f.readline() for _ in range(5)] == ["a\n", "b\n", "c\n", "d\n", ""]
    assert set(f.newlines) == {"\r", "\r\n", "\n"}
    with pytest.raises(ValueError):
        _StrFile(b"", "rz")
    with pytest.raises(OSError, match="seeking"):
        f.seek(0)


# -- flow control ---------------------------------------------------------------------
class WindowedPeer:
    """Plays the remote sender: never exceeds the credit granted by our WINDOW_ADJUSTs."""

    def __init__(self, chan: Channel, transport: FakeTransport, window: int) -> None:
        self.chan = chan
        self.credit = window
        self.cond = threading.Condition()
        self.waiting = False
        self.adjusts = 0
        transport.on_send = self._on_send

    def _on_send(self, payload: bytes) -> None:
        if payload[0] == MSG_CHANNEL_WINDOW_ADJUST:
            with self.cond:
                self.credit += adjust_amount(payload)
                self.adjusts += 1
                self.cond.notify_all()

    def feed(self, plan, chunk: int = 32768, stall: float = 5.0) -> bool:
        """``plan``: list of [is_stderr, nbytes]; interleaves them; False if starved."""
        plan = [list(p) for p in plan]
        while any(left for _, left in plan):
            for item in plan:
                is_err, left = item
                if not left:
                    continue
                n = min(chunk, left)
                with self.cond:
                    self.waiting = True
                    self.cond.notify_all()
                    ok = self.cond.wait_for(lambda n=n: self.credit >= n, stall)
                    self.waiting = False
                    if not ok:
                        return False
                    self.credit -= n
                data = (b"E" if is_err else b"O") * n
                if is_err:
                    self.chan._handle_extended_data(1, data)
                else:
                    self.chan._handle_data(data)
                item[1] = left - n
        self.chan._handle_eof()
        return True


def test_stdout_first_then_stderr_never_deadlocks():
    chan, t = make_channel(window=2 * MiB)
    chan.settimeout(5.0)
    peer = WindowedPeer(chan, t, 2 * MiB)
    result = {}
    feeder = threading.Thread(
        target=lambda: result.setdefault("ok", peer.feed([[True, 8 * MiB], [False, 8 * MiB]])),
        daemon=True)
    feeder.start()
    out = chan.makefile("rb").read()  # all of stdout first, stderr untouched meanwhile
    err = chan.makefile_stderr("rb").read()
    feeder.join(5)
    assert result.get("ok") is True
    assert len(out) == 8 * MiB and out.count(b"O") == len(out)
    assert len(err) == 8 * MiB and err.count(b"E") == len(err)
    chan._handle_request(request_msg("exit-status", False, 0))
    assert chan.recv_exit_status() == 0


def test_memory_cap_stops_window_adjusts_until_app_reads():
    window = 256 * 1024
    cap = 1 * MiB
    chan, t = make_channel(window=window)
    chan.set_stream_buffer_cap(cap)
    chan.settimeout(5.0)
    peer = WindowedPeer(chan, t, window)
    total = 4 * MiB
    result = {}
    feeder = threading.Thread(
        target=lambda: result.setdefault("ok", peer.feed([[False, total]], stall=5.0)),
        daemon=True)
    feeder.start()
    # Nobody reads: the peer must end up starved with the buffer between cap and cap+window.
    with peer.cond:
        assert peer.cond.wait_for(
            lambda: peer.waiting and peer.credit < 32768 and len(chan._stdout) >= cap, 5)
        adjusts_at_stall = peer.adjusts
    buffered = len(chan._stdout)
    assert cap <= buffered <= cap + window
    time.sleep(0.05)
    assert peer.adjusts == adjusts_at_stall and len(chan._stdout) == buffered
    # Now the application drains: credit resumes and everything arrives intact.
    data = chan.makefile("rb").read()
    feeder.join(5)
    assert result.get("ok") is True and len(data) == total
    assert peer.adjusts > adjusts_at_stall


def test_window_adjust_sent_on_arrival_without_reading():
    chan, t = make_channel(window=2 * MiB)
    step = chan._state.adjust_threshold
    assert 0 < step < 2 * MiB
    chan._handle_data(b"x" * (step - 1))
    assert t.of_type(MSG_CHANNEL_WINDOW_ADJUST) == []  # below the batching threshold
    chan._handle_data(b"x")
    adj = t.of_type(MSG_CHANNEL_WINDOW_ADJUST)
    assert len(adj) == 1 and adjust_amount(adj[0]) == step
    assert struct.unpack(">I", adj[0][1:5])[0] == REMOTE_ID
    assert len(chan._stdout) == step  # still unread


def test_window_overrun_is_dropped_and_logged():
    chan, t = make_channel(window=32768)
    chan._handle_data(b"a" * 40000)
    assert len(chan._stdout) == 32768
    assert any("exceeded" in msg for _, msg in t.logs)


# -- close, ordering and transport death ----------------------------------------------
def test_close_sends_eof_close_and_unlinks_after_peer_close():
    chan, t = make_channel()
    chan.close()
    assert t.types() == [MSG_CHANNEL_EOF, MSG_CHANNEL_CLOSE]
    assert chan.closed and chan._closed and not chan.active
    assert t.unlinked == []
    chan._handle_close()
    assert t.unlinked == [3]
    chan.close()
    assert t.types() == [MSG_CHANNEL_EOF, MSG_CHANNEL_CLOSE]


def test_peer_close_is_answered_and_buffered_data_survives():
    chan, t = make_channel()
    chan._handle_data(b"last words")
    chan._handle_close()
    assert t.types() == [MSG_CHANNEL_CLOSE] and t.unlinked == [3]
    assert chan.recv(100) == b"last words"
    assert chan.recv(100) == b""
    with pytest.raises(OSError):
        chan.send(b"x")


def test_close_waits_for_in_flight_data_so_nothing_follows_close():
    chan, t = make_channel()
    gate = threading.Event()
    entered = threading.Event()

    def slow(payload):
        if payload[0] == MSG_CHANNEL_DATA:
            entered.set()
            gate.wait(2)

    t.on_send = slow
    sender = threading.Thread(target=chan.send, args=(b"data",), daemon=True)
    sender.start()
    assert entered.wait(2)
    chan.close()  # must not put EOF/CLOSE on the wire while DATA is still being sent
    chan._handle_data(b"y" * (300 * 1024))  # no WINDOW_ADJUST may be sent after close
    gate.set()
    sender.join(2)
    assert t.wait_for(lambda: len(t.sent) == 3)
    assert t.types() == [MSG_CHANNEL_DATA, MSG_CHANNEL_EOF, MSG_CHANNEL_CLOSE]


def test_transport_closed_wakes_blocked_reader_writer_and_requester():
    chan, t = make_channel(remote_window=0)
    errors = {}

    def reader():
        errors["recv"] = chan.recv(10)

    def writer():
        try:
            chan.send(b"x")
        except OSError as e:
            errors["send"] = e

    def requester():
        try:
            chan.exec_command("sleep")
        except SSHException as e:
            errors["exec"] = e

    def waiter():
        errors["status"] = chan.recv_exit_status()

    threads = [threading.Thread(target=f, daemon=True)
               for f in (reader, writer, requester, waiter)]
    for th in threads:
        th.start()
    assert t.wait_for(lambda: MSG_CHANNEL_REQUEST in [p[0] for p in t.sent])
    time.sleep(0.05)
    chan._transport_closed(EOFError("connection lost"))
    for th in threads:
        th.join(2)
        assert not th.is_alive()
    assert errors["recv"] == b""
    assert "closed" in str(errors["send"])
    assert "connection lost" in str(errors["exec"])
    assert errors["status"] == -1


def test_shutdown_read_discards_and_keeps_crediting():
    chan, t = make_channel(window=65536)
    chan._handle_data(b"a" * 1000)
    chan.shutdown(0)
    assert chan.eof_received and chan.recv(10) == b""
    chan._handle_data(b"b" * 60000)
    assert len(chan._stdout) == 0
    assert t.of_type(MSG_CHANNEL_WINDOW_ADJUST)
    with pytest.raises(ValueError):
        chan.shutdown(5)
    chan.shutdown(2)
    assert chan.eof_sent


def test_channel_misc_api():
    chan, t = make_channel()
    assert chan.get_id() == 3 and chan.remote_chanid == REMOTE_ID
    assert chan.get_transport() is t and chan.getpeername() == ("192.0.2.1", 22)
    assert chan.get_name() == "3"
    chan.set_name("mine")
    assert chan.get_name() == "mine"
    assert "open" in repr(chan)
    with chan:
        pass
    assert chan.closed and "closed" in repr(chan)


# -- server side ----------------------------------------------------------------------
class RecordingServer(ServerInterface):
    def __init__(self):
        self.calls = []

    def check_channel_pty_request(self, channel, term, w, h, pw, ph, modes):
        self.calls.append(("pty", term, w, h, pw, ph, modes))
        return True

    def check_channel_shell_request(self, channel):
        self.calls.append(("shell",))
        return True

    def check_channel_exec_request(self, channel, command):
        self.calls.append(("exec", command))
        return command == b"allowed"

    def check_channel_env_request(self, channel, name, value):
        self.calls.append(("env", name, value))
        return True

    def check_channel_window_change_request(self, channel, w, h, pw, ph):
        self.calls.append(("resize", w, h))
        return True

    def check_channel_forward_agent_request(self, channel):
        raise RuntimeError("boom")


def replies(t):
    return [p[0] for p in t.sent if p[0] in (MSG_CHANNEL_SUCCESS, MSG_CHANNEL_FAILURE)]


def test_server_side_request_dispatch():
    server = RecordingServer()
    chan, t = make_channel(FakeTransport(server_mode=True, server_object=server))
    modes = encode_terminal_modes({"ECHO": 1})
    chan._handle_request(request_msg("pty-req", True, b"xterm", 80, 24, 0, 0, modes))
    chan._handle_request(request_msg("env", True, b"LANG", b"C"))
    chan._handle_request(request_msg("exec", True, b"forbidden"))
    chan._handle_request(request_msg("exec", True, b"allowed"))
    chan._handle_request(request_msg("window-change", False, 100, 30, 0, 0))
    chan._handle_request(request_msg("x11-req", True, False, "MIT-MAGIC-COOKIE-1", b"c", 0))
    chan._handle_request(request_msg("auth-agent-req@openssh.com", True))  # raises -> refused
    chan._handle_request(request_msg("no-such-request", True))
    chan._handle_request(request_msg("exec", True))  # truncated: no command string
    assert server.calls == [
        ("pty", b"xterm", 80, 24, 0, 0, modes), ("env", b"LANG", b"C"),
        ("exec", b"forbidden"), ("exec", b"allowed"), ("resize", 100, 30),
    ]
    S, F = MSG_CHANNEL_SUCCESS, MSG_CHANNEL_FAILURE
    assert replies(t) == [S, S, F, S, F, F, F, F]
    assert all(struct.unpack(">I", p[1:5])[0] == REMOTE_ID for p in t.sent)


def test_client_side_refuses_keepalive_and_unknown_requests():
    chan, t = make_channel()
    chan._handle_request(request_msg("keepalive@openssh.com", True))
    chan._handle_request(request_msg("exec", True, b"ls"))  # servers can't ask us that
    chan._handle_request(request_msg("whatever", False))
    chan._handle_request(Message(b"\x00\x00"))  # garbage: ignored, no crash
    assert replies(t) == [MSG_CHANNEL_FAILURE, MSG_CHANNEL_FAILURE]


def test_subsystem_handler_thread_runs_and_closes_channel():
    started = threading.Event()

    class Echo(SubsystemHandler):
        def __init__(self, channel, name, server, greeting):
            super().__init__(channel, name, server)
            self.greeting = greeting

        def start_subsystem(self, name, transport, channel):
            assert self.get_server() is server
            channel.sendall(self.greeting + name.encode())
            started.set()

    server = ServerInterface()
    t = FakeTransport(server_mode=True, server_object=server)
    t.subsystems["echo"] = (Echo, (b"hi ",), {})
    chan, _ = make_channel(t)
    chan._handle_request(request_msg("subsystem", True, "echo"))
    assert started.wait(2)
    assert t.wait_for(lambda: MSG_CHANNEL_CLOSE in [p[0] for p in t.sent])
    assert t.of_type(MSG_CHANNEL_DATA)[0][9:] == b"hi echo"
    kinds = t.types()  # the reply was reserved first, so the handler's CLOSE follows it
    assert kinds.index(MSG_CHANNEL_SUCCESS) < kinds.index(MSG_CHANNEL_EOF) < \
        kinds.index(MSG_CHANNEL_CLOSE) == len(kinds) - 1
    chan2, t2 = make_channel(FakeTransport(server_mode=True, server_object=server))
    chan2._handle_request(request_msg("subsystem", True, "missing"))
    assert replies(t2) == [MSG_CHANNEL_FAILURE]


def test_subsystem_handler_failure_still_closes_channel():
    class Broken(SubsystemHandler):
        def start_subsystem(self, name, transport, channel):
            raise RuntimeError("broken")

    server = ServerInterface()
    chan, t = make_channel(FakeTransport(server_mode=True, server_object=server))
    h = Broken(chan, "b", server)
    h.start()
    h.join(2)
    assert chan.closed and any("broken" in m for _, m in t.logs)


def test_server_interface_defaults_and_interactive_query():
    s = ServerInterface()
    assert s.check_channel_request("session", 1) == OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
    assert s.get_allowed_auths("u") == "password"
    assert s.check_auth_none("u") == AUTH_FAILED
    assert s.check_auth_password("u", "p") == AUTH_FAILED
    assert s.check_auth_publickey("u", None) == AUTH_FAILED
    assert s.check_auth_interactive("u", "") == AUTH_FAILED
    assert s.check_auth_interactive_response([]) == AUTH_FAILED
    assert s.check_auth_gssapi_with_mic("u") == AUTH_FAILED
    assert s.check_auth_gssapi_keyex("u", AUTH_SUCCESSFUL) == AUTH_SUCCESSFUL
    assert s.enable_auth_gssapi() is False
    assert s.check_port_forward_request("", 0) is False
    assert s.check_global_request("x", None) is False
    assert s.get_banner() == (None, None)
    assert s.check_channel_direct_tcpip_request(1, ("a", 1), ("b", 2)) == \
        OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
    for name in ("shell", "forward_agent"):
        assert getattr(s, f"check_channel_{name}_request")(None) is False
    assert s.check_channel_x11_request(None, False, "p", b"c", 0) is False
    q = InteractiveQuery("title", "do it", "User: ", ("Password: ", False))
    q.add_prompt("OTP: ", echo=False)
    assert q.prompts == [("User: ", True), ("Password: ", False), ("OTP: ", False)]
    assert (q.name, q.instructions) == ("title", "do it")


# -- building blocks ------------------------------------------------------------------
def test_chunk_buffer_take_paths():
    b = ChunkBuffer()
    for part in (b"abc", b"defg", b"hi"):
        b.append(part)
    assert len(b) == 9
    assert b.take(2) == b"ab"
    assert b.take(4) == b"cdef"  # spans chunks, ends mid-chunk
    assert b.take(1) == b"g"
    assert b.take(100) == b"hi" and not b
    b.append(bytearray(b"xy"))
    other = ChunkBuffer()
    other.append(b"1")
    b.take(1)
    b.move_to(other)
    assert other.take_all() == b"1y" and len(b) == 0


def test_buffered_pipe_api():
    p = BufferedPipe()
    ev = threading.Event()
    p.set_event(ev)
    assert not ev.is_set() and not p.read_ready()
    with pytest.raises(PipeTimeout):
        p.read(5, 0.02)
    with pytest.raises(PipeTimeout):
        p.read(5, 0)
    later(0.03, p.feed, "hello")
    assert p.read(3, 2) == b"hel"
    assert ev.is_set() and len(p) == 2
    assert p.empty() == b"lo" and not ev.is_set()
    p.feed(b"z")
    p.close()
    assert ev.is_set()
    assert p.read(10) == b"z" and p.read(10) == b"" and ev.is_set()
    assert isinstance(PipeTimeout(), IOError)


def test_pipes_are_selectable():
    p = make_pipe()
    a, b = make_or_pipe(p)
    assert not select.select([p], [], [], 0)[0]
    a.set()
    b.set()
    a.clear()
    assert select.select([p], [], [], 0)[0]  # b still set
    b.clear()
    assert not select.select([p], [], [], 0)[0]
    p.set_forever()
    p.clear()
    assert select.select([p], [], [], 0)[0]
    p.close()


def test_channel_state_windows_and_builders():
    st = ChannelState(1, window_size=10, max_packet_size=10)  # clamped to the minimums
    assert st.local_window_size == 32768 and st.local_max_packet == 4096
    assert st.send_size(100) == 0  # not open yet
    with pytest.raises(SSHException):
        st.eof_message()
    st.set_remote(9, 2**32 - 10, 100)
    assert st.send_size(1000) == 36  # max packet minus header room
    st.add_remote_window(100)
    assert st.remote_window == 2**32 - 1
    assert st.accept_inbound(40000) == 32768 and st.overrun_bytes == 40000 - 32768
    assert st.window_adjust(st.buffer_cap) is None  # at the cap: no credit
    adj = st.window_adjust(0)
    assert adj == struct.pack(">BII", MSG_CHANNEL_WINDOW_ADJUST, 9, 32768)
    assert st.window_adjust(0) is None  # nothing owed any more
    assert st.exit_signal_request("TERM")[0] == MSG_CHANNEL_REQUEST
    assert parse_request(st.keepalive_request()) == (9, "keepalive@openssh.com", True)
    with pytest.raises(ValueError):
        st.window_change_request(-1, 24)
    assert encode_terminal_modes(None) == b"\x00"
    assert encode_terminal_modes(b"raw") == b"raw"
    with pytest.raises(ValueError):
        encode_terminal_modes({"NOPE": 1})
    with pytest.raises(ValueError):
        encode_terminal_modes({200: 1})
    with pytest.raises(SSHException):
        decode_terminal_modes(b"\x35\x00\x00")
    assert decode_terminal_modes(b"\x35\x00\x00\x00\x01\xa0junk") == {53: 1}
