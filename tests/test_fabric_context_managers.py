"""fabric.context_managers: settings and friends, output levels, remote_tunnel."""

from __future__ import annotations

import contextvars
import os
import socket
import termios
import threading
import time

import pytest

from fabric import state
from fabric.context_managers import (
    cd,
    char_buffered,
    hide,
    lcd,
    nested,
    path,
    prefix,
    quiet,
    remote_tunnel,
    settings,
    shell_env,
    show,
    warn_only,
)
from fabric.state import env, output

pytestmark = pytest.mark.usefixtures("fabric_state")


# --- settings ---------------------------------------------------------------------------------


def test_settings_sets_and_restores_existing_and_new_keys():
    env.user = "before"
    assert "brand_new" not in env
    with settings(user="inside", brand_new=42):
        assert env.user == "inside"
        assert env.brand_new == 42
    assert env.user == "before"
    assert "brand_new" not in env


def test_settings_restores_on_exception():
    env.warn_only = False
    with pytest.raises(RuntimeError):
        with settings(warn_only=True, other="x"):
            raise RuntimeError("boom")
    assert env.warn_only is False
    assert "other" not in env


def test_settings_nesting_restores_each_level():
    env.shell = "sh0"
    with settings(shell="sh1"):
        with settings(shell="sh2"):
            assert env.shell == "sh2"
        assert env.shell == "sh1"
    assert env.shell == "sh0"


def test_settings_reverts_changes_made_inside_without_clean_revert():
    env.user = "before"
    with settings(user="set"):
        env.user = "changed inside"
    assert env.user == "before"


def test_clean_revert_keeps_values_changed_inside_the_block():
    env.user = "u0"
    env.port = "22"
    with settings(user="u1", port="2222", fresh="f", fresh2="g", clean_revert=True):
        env.user = "changed"  # changed inside: must survive
        env.fresh2 = "changed too"
    assert env.user == "changed"
    assert env.port == "22"  # unchanged inside: reverted
    assert "fresh" not in env  # new and unchanged: deleted
    assert env.fresh2 == "changed too"  # new but changed: kept
    assert "clean_revert" not in env


def test_settings_combines_managers_and_kwargs_and_returns_values():
    with settings(hide("running"), cd("/srv"), warn_only=True) as values:
        assert output.running is False
        assert env.cwd == "/srv"
        assert env.warn_only is True
        assert isinstance(values, list) and len(values) == 3
    assert output.running is True
    assert env.cwd == ""
    assert env.warn_only is False


def test_settings_object_is_reusable_and_reentrant():
    manager = settings(user="reused")
    env.user = "orig"
    for _ in range(2):
        with manager:
            assert env.user == "reused"
            env.user = "mid"
            with manager:  # re-entered while active
                assert env.user == "reused"
            assert env.user == "mid"
        assert env.user == "orig"


def test_one_manager_entered_by_two_threads_in_separate_contexts():
    manager = settings(hide("stdout"), marker="m")
    entered = threading.Barrier(2, timeout=10)
    seen = {}

    def body(name):
        with manager:
            entered.wait()
            env.marker = name  # each host context has its own env
            entered.wait()
            seen[name] = (env.marker, output.stdout)
        seen[name + "-after"] = ("marker" in env, output.stdout)

    threads = [threading.Thread(target=state.isolated_context().run, args=(body, n))
               for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    assert seen["a"] == ("a", False) and seen["b"] == ("b", False)
    assert seen["a-after"] == (False, True) and seen["b-after"] == (False, True)
    assert "marker" not in env and output.stdout is True


def test_nested_unwinds_already_entered_managers_when_one_fails():
    log = []

    class Rec:
        def __init__(self, name, fail=False):
            self.name, self.fail = name, fail

        def __enter__(self):
            if self.fail:
                raise ValueError(self.name)
            log.append("enter " + self.name)
            return self.name

        def __exit__(self, *exc):
            log.append("exit " + self.name)
            return False

    with nested(Rec("a"), Rec("b")) as values:
        assert values == ["a", "b"]
    assert log == ["enter a", "enter b", "exit b", "exit a"]
    log.clear()
    with pytest.raises(ValueError):
        with nested(Rec("a"), Rec("bad", fail=True), Rec("c")):
            pass
    assert log == ["enter a", "exit a"]


# --- cd / lcd / path / prefix / shell_env -----------------------------------------------------


def test_cd_relative_appends_absolute_and_home_reset():
    with cd("/var"):
        assert env.cwd == "/var"
        with cd("www"):
            assert env.cwd == "/var/www"
            with cd("/opt"):
                assert env.cwd == "/opt"
            with cd("~/x"):
                assert env.cwd == "~/x"
        assert env.cwd == "/var"
    assert env.cwd == ""


def test_cd_escapes_spaces_and_relative_start():
    with cd("my dir"):
        assert env.cwd == r"my\ dir"
        with cd("sub dir"):
            assert env.cwd == r"my\ dir/sub\ dir"


def test_cd_inside_settings_builds_on_previous_level():
    with settings(cd("/a"), cd("b"), cd("c")):
        assert env.cwd == "/a/b/c"
    assert env.cwd == ""


def test_lcd_sets_lcwd_only():
    with lcd("/tmp"):
        with lcd("sub"):
            assert env.lcwd == "/tmp/sub"
            assert env.cwd == ""
    assert env.lcwd == ""


def test_path_sets_path_and_behavior():
    with path("/opt/bin"):
        assert (env.path, env.path_behavior) == ("/opt/bin", "append")
        with path("/usr/local/bin", behavior="prepend"):
            assert (env.path, env.path_behavior) == ("/usr/local/bin", "prepend")
        with path("/only", "replace"):
            assert env.path_behavior == "replace"
    assert (env.path, env.path_behavior) == ("", "append")
    with pytest.raises(ValueError, match="behavior"):
        path("/x", behavior="sideways")


def test_prefix_nests_and_restores():
    with prefix("source venv/bin/activate"):
        with prefix("export A=1"):
            assert env.command_prefixes == ["source venv/bin/activate", "export A=1"]
        assert env.command_prefixes == ["source venv/bin/activate"]
    assert env.command_prefixes == []


def test_shell_env_merges_and_restores():
    with shell_env(A="1", B="2"):
        assert env.shell_env == {"A": "1", "B": "2"}
        with shell_env(B="3", C="4"):
            assert env.shell_env == {"A": "1", "B": "3", "C": "4"}
        assert env.shell_env == {"A": "1", "B": "2"}
    assert env.shell_env == {}


# --- output levels ------------------------------------------------------------------------


def test_hide_everything_expands_aliases_and_restores():
    with hide("everything"):
        for level in ("warnings", "running", "user", "stdout", "stderr", "exceptions"):
            assert output[level] is False, level
        assert output.status is True and output.aborts is True
    assert output.running is True and output.exceptions is False
    assert output.stdout is True and output.user is True


def test_show_restores_previous_exact_values():
    output.running = False
    with show("everything", "debug"):
        assert output.running is True and output.debug is True and output.exceptions is True
    assert output.running is False
    assert output.debug is False and output.exceptions is False


def test_hide_commands_alias():
    with hide("commands"):
        assert output.stdout is False and output.running is False
        assert output.stderr is True


def test_hide_unknown_level_is_a_clear_error():
    with pytest.raises(ValueError, match="bogus"):
        with hide("bogus"):
            pass
    assert "bogus" not in output


def test_quiet_and_warn_only():
    with quiet():
        assert env.warn_only is True
        assert output.stdout is False and output.running is False
    assert env.warn_only is False and output.stdout is True
    with warn_only():
        assert env.warn_only is True
        assert output.stdout is True
    assert env.warn_only is False


# --- char_buffered -------------------------------------------------------------------------


def test_char_buffered_is_noop_for_non_tty(tmp_path):
    with open(tmp_path / "f", "w") as f:
        with char_buffered(f):
            f.write("x")


def test_char_buffered_sets_cbreak_and_restores():
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "rb", buffering=0, closefd=False) as pipe:
            before = termios.tcgetattr(slave)
            assert before[3] & termios.ICANON
            with char_buffered(pipe):
                assert not termios.tcgetattr(slave)[3] & termios.ICANON
            assert termios.tcgetattr(slave) == before
            with char_buffered(slave):  # a bare fd works too
                assert not termios.tcgetattr(slave)[3] & termios.ICANON
            assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


# --- remote_tunnel (against the in-process SSH server) ----------------------------------------


class _EchoServer:
    """TCP echo on 127.0.0.1 that records how many connections are still open."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.open_conns = 0
        self.total_conns = 0
        self.lock = threading.Condition()
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _echo(self, conn):
        with self.lock:
            self.open_conns += 1
            self.total_conns += 1
        conn.settimeout(0.2)
        try:
            while not self.stop.is_set():
                try:
                    data = conn.recv(4096)
                except socket.timeout:
                    continue
                if not data:
                    break
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                self.open_conns -= 1
                self.lock.notify_all()

    def wait_closed(self, timeout=5.0):
        with self.lock:
            return self.lock.wait_for(lambda: self.open_conns == 0, timeout)

    def close(self):
        self.stop.set()
        self.listener.close()
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _tunnel_threads():
    return [t for t in threading.enumerate() if t.name.startswith("rtunnel ")]


@pytest.fixture
def echo_server():
    server = _EchoServer()
    yield server
    server.close()


def _use_local_ssh(local_ssh):
    env.host_string = local_ssh.host_string
    env.user = local_ssh.user
    env.key_filename = [local_ssh.key_filename]
    env.no_agent = True
    env.no_keys = True


def _recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_remote_tunnel_forwards_both_ways_and_cleans_up(local_ssh, echo_server):
    _use_local_ssh(local_ssh)
    remote_port = _free_port()
    with remote_tunnel(remote_port, local_port=echo_server.port, local_host="127.0.0.1"):
        # The in-process server listens on the remote side's 127.0.0.1:remote_port.
        clients = [socket.create_connection(("127.0.0.1", remote_port), timeout=10)
                   for _ in range(2)]
        for i, client in enumerate(clients):
            payload = (f"hello {i} ".encode() * 2000)
            client.sendall(payload)
            assert _recv_exact(client, len(payload)) == payload
        # Half-close: EOF from the far end travels to the echo server, which closes.
        clients[0].shutdown(socket.SHUT_WR)
        assert clients[0].recv(10) == b""
        assert _tunnel_threads()
        clients[1].sendall(b"still open")
        assert _recv_exact(clients[1], 10) == b"still open"
    # Leaving the block closed every tunnelled connection and the remote listener.
    assert echo_server.wait_closed(), "echo connections left open after remote_tunnel exit"
    assert not _tunnel_threads()
    assert clients[1].recv(10) == b""
    for client in clients:
        client.close()
    deadline = time.monotonic() + 5
    refused = False
    while time.monotonic() < deadline and not refused:
        try:
            socket.create_connection(("127.0.0.1", remote_port), timeout=2).close()
            time.sleep(0.05)
        except OSError:
            refused = True
    assert refused, "remote listener still accepting after remote_tunnel exit"


def _roundtrip(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(payload)
        return _recv_exact(client, len(payload))


def test_two_remote_tunnels_on_one_connection_each_reach_their_target(local_ssh):
    _use_local_ssh(local_ssh)
    first, second = _EchoServer(), _EchoServer()
    try:
        port_a, port_b = _free_port(), _free_port()
        with remote_tunnel(port_a, local_port=first.port, local_host="127.0.0.1"):
            with remote_tunnel(port_b, local_port=second.port, local_host="127.0.0.1"):
                assert _roundtrip(port_a, b"to-first") == b"to-first"
                assert _roundtrip(port_b, b"to-second") == b"to-second"
                assert (first.total_conns, second.total_conns) == (1, 1)
            # The inner tunnel's exit must not break the outer one.
            assert _roundtrip(port_a, b"again") == b"again"
            assert (first.total_conns, second.total_conns) == (2, 1)
            with pytest.raises(ValueError, match="already tunnelled"):
                with remote_tunnel(port_a, local_port=second.port):
                    pass
            assert _roundtrip(port_a, b"still") == b"still"
        assert first.wait_closed() and second.wait_closed()
        assert not _tunnel_threads()
    finally:
        first.close()
        second.close()


def test_remote_tunnel_unreachable_local_side_reports_and_closes(local_ssh, capsys):
    _use_local_ssh(local_ssh)
    remote_port = _free_port()
    dead_port = _free_port()
    with remote_tunnel(remote_port, local_port=dead_port, local_host="127.0.0.1"):
        client = socket.create_connection(("127.0.0.1", remote_port), timeout=10)
        client.settimeout(10)
        assert client.recv(10) == b""  # forwarded channel closed, not hung
        client.close()
    err = capsys.readouterr().err
    assert f"rtunnel: cannot connect to 127.0.0.1:{dead_port} (from local)" in err
    assert local_ssh.host_string in err


def test_remote_tunnel_refused_forward_is_a_network_error(local_ssh):
    from fabric.exceptions import NetworkError

    _use_local_ssh(local_ssh)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        with pytest.raises(NetworkError) as info:
            with remote_tunnel(port, local_port=1, local_host="127.0.0.1"):
                pass
        assert str(port) in str(info.value)
        assert info.value.host == local_ssh.host_string
    finally:
        busy.close()


def test_remote_tunnel_without_host_is_clear_error():
    with pytest.raises(ValueError, match="host_string"):
        with remote_tunnel(1234):
            pass


def test_context_managers_only_touch_current_context():
    ctx = state.isolated_context()

    def inside():
        with settings(hide("running"), cd("/x"), only_here=1):
            return env.cwd, output.running, "only_here" in env

    with settings(cd("/outer")):
        assert ctx.run(inside) == ("/x", False, True)
        assert env.cwd == "/outer" and output.running is True and "only_here" not in env
    assert isinstance(contextvars.copy_context(), contextvars.Context)
