"""ProxyCommand: shell semantics, EOF without spinning, failure reporting, bounded close
(no zombie, no stray process, thread or fd), and real SSH sessions through ``ssh -W``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import signal
import socket
import threading
import time
from typing import List, Optional, Tuple

import pytest

from paramiko.client import SSHClient
from paramiko.proxy import STDERR_KEEP, ProxyCommand
from paramiko.ssh_exception import ProxyCommandFailure, SSHException
from tests.support.interop import authenticate, run_command, start_client

T = 20.0  # generous bound for anything that should take milliseconds


def sh(script: str) -> str:
    """A proxy command line that runs ``script`` in a child shell (the line itself is exec'd)."""
    return "sh -c " + shlex.quote(script)


def proc_stat(pid: int) -> Optional[Tuple[str, int, int]]:
    """``(state, ppid, pgrp)`` of ``pid`` from /proc, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().decode("ascii", "replace").rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2])


def all_pids() -> List[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def group_members(pgrp: int) -> List[int]:
    """Living (non-zombie) processes in process group ``pgrp``."""
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st is not None and st[2] == pgrp and st[0] != "Z":
            out.append(pid)
    return out


def our_zombies() -> List[int]:
    me = os.getpid()
    return [pid for pid in all_pids() if (st := proc_stat(pid)) and st[1] == me and st[0] == "Z"]


def proxy_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ProxyCommand-")]


def open_fds() -> set:
    return set(os.listdir("/proc/self/fd"))


def assert_gone(proxy: ProxyCommand) -> None:
    """Nothing of ``proxy`` is left: the child is reaped, its group is empty, threads ended."""
    pid = proxy.process.pid
    assert proc_stat(pid) is None, f"child {pid} still exists: {proc_stat(pid)}"
    deadline = time.monotonic() + 2
    while group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # killed orphans may take a moment to disappear
    assert group_members(pid) == []
    assert pid not in our_zombies()
    assert not [t for t in proxy_threads() if str(pid) in t.name]


@pytest.fixture(autouse=True)
def no_leaks():
    threads_before = set(proxy_threads())
    yield
    deadline = time.monotonic() + 5
    while set(proxy_threads()) - threads_before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not set(proxy_threads()) - threads_before, "proxy pump threads left running"
    assert not our_zombies(), "zombie children left behind"


def recv_exactly(p: ProxyCommand, n: int, bound: float = T) -> bytes:
    out = b""
    deadline = time.monotonic() + bound
    while len(out) < n and time.monotonic() < deadline:
        try:
            chunk = p.recv(n - len(out))
        except socket.timeout:
            continue
        if not chunk:
            break
        out += chunk
    return out


def recv_to_eof(p: ProxyCommand, bound: float = T) -> bytes:
    out = b""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            chunk = p.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            return out
        out += chunk
    raise AssertionError(f"no EOF within {bound}s; got {out[:200]!r}")


# ---------------------------------------------------------------------------------------------
# unit tests: local commands
# ---------------------------------------------------------------------------------------------


def test_runs_through_the_shell_like_openssh(monkeypatch):
    monkeypatch.setenv("SHELL", "/bin/sh")
    with ProxyCommand("cat") as p:
        assert p.cmd == ["/bin/sh", "-c", "exec cat"]
        assert p.command == "cat"
        assert p.timeout is None
    monkeypatch.delenv("SHELL")
    with ProxyCommand("true") as p:
        assert p.cmd[0] == "/bin/sh"


def test_exec_cat_relays_both_ways():
    fds = open_fds()
    with ProxyCommand("exec cat") as p:  # not doubled to "exec exec cat" (OpenSSH would)
        assert p.cmd[2] == "exec cat"
        p.settimeout(5)
        assert p.gettimeout() == 5
        assert p.send(b"hello\x00world") == 11
        assert recv_exactly(p, 11) == b"hello\x00world"
        p.sendall(b"x" * 300000)  # more than a pipe holds: relayed while we write
        assert recv_exactly(p, 300000) == b"x" * 300000
    assert_gone(p)
    assert open_fds() == fds


def test_pipes_variables_and_substitution(monkeypatch):
    with ProxyCommand("printf x | cat") as p:
        p.settimeout(5)
        assert recv_to_eof(p) == b"x"
    monkeypatch.setenv("FG_PROXY_VAR", "bar")
    with ProxyCommand('printf %s "$FG_PROXY_VAR-$(echo sub)"') as p:
        p.settimeout(5)
        assert recv_to_eof(p) == b"bar-sub"
    with ProxyCommand(sh("FOO=bar; echo $FOO")) as p:
        p.settimeout(5)
        assert recv_to_eof(p) == b"bar\n"


def test_leading_assignment_fails_as_in_openssh():
    # OpenSSH runs "exec <command>", so a bare assignment is taken for a program name.
    with ProxyCommand("FOO=bar; echo $FOO") as p:
        p.settimeout(5)
        with pytest.raises(ProxyCommandFailure) as ei:
            recv_to_eof(p)
    assert "exit status 127" in str(ei.value)
    assert "not found" in str(ei.value)


def test_argv_list_runs_without_a_shell():
    with ProxyCommand(["printf", "%s", "a b $HOME"]) as p:
        p.settimeout(5)
        assert recv_to_eof(p) == b"a b $HOME"
        assert p.command == "printf %s 'a b $HOME'"


def test_unstartable_command_raises_at_construction():
    with pytest.raises(ProxyCommandFailure) as ei:
        ProxyCommand(["/nonexistent/fg-proxy"])
    assert "No such file" in str(ei.value)


def test_recv_returns_pending_data_then_empty_at_eof_without_burning_cpu():
    with ProxyCommand("printf abc") as p:
        p.settimeout(10)
        assert recv_exactly(p, 3) == b"abc"
        wall, cpu = time.monotonic(), time.process_time()
        assert p.recv(10) == b""  # at EOF: at once, not after the timeout
        assert p.recv(10) == b""
        assert time.monotonic() - wall < 3
        assert p.closed and p._closed
        assert p.returncode == 0
        assert p.failure() is None
        # A dead proxy read in a loop with a timeout, for one second: b"" each time, no spin
        # inside recv (the test's own loop is throttled, as a caller at EOF would stop anyway).
        wall, cpu = time.monotonic(), time.process_time()
        calls = 0
        while time.monotonic() - wall < 1.0:
            assert p.recv(4096) == b""
            calls += 1
            time.sleep(0.05)
        assert time.process_time() - cpu < 0.15, "CPU burnt while reading a dead proxy"


def test_silent_proxy_times_out_without_burning_cpu():
    with ProxyCommand("sleep 30") as p:
        p.settimeout(0.2)
        wall, cpu = time.monotonic(), time.process_time()
        timeouts = 0
        while time.monotonic() - wall < 1.0:
            with pytest.raises(socket.timeout):
                p.recv(100)
            timeouts += 1
        assert 3 <= timeouts <= 6
        assert time.process_time() - cpu < 0.15
        assert not p.closed
    assert_gone(p)


def test_recv_without_timeout_wakes_at_eof():
    with ProxyCommand(sh("sleep 0.3; printf late")) as p:
        assert p.gettimeout() is None
        assert p.recv(10) == b"late"
        assert p.recv(10) == b""


def test_failure_carries_exit_status_and_stderr_tail():
    with ProxyCommand(sh("printf partial; echo 'no route to db1' >&2; exit 3")) as p:
        p.settimeout(5)
        assert recv_exactly(p, 7) == b"partial"  # output before the failure is delivered
        with pytest.raises(ProxyCommandFailure) as ei:
            p.recv(10)
        with pytest.raises(ProxyCommandFailure):
            p.recv(10)  # again: the failure stays visible
    err = ei.value
    assert isinstance(err, SSHException)
    assert err.error == "exit status 3: no route to db1"
    assert err.command == sh("printf partial; echo 'no route to db1' >&2; exit 3")
    assert "exit status 3: no route to db1" in str(err)
    assert p.failure() is not None and p.failure().error == err.error


def test_multiline_stderr_is_joined_and_capped():
    script = "i=0; while [ $i -lt 500 ]; do echo line$i >&2; i=$((i+1)); done; exit 2"
    with ProxyCommand(sh(script)) as p:
        p.settimeout(5)
        with pytest.raises(ProxyCommandFailure) as ei:
            recv_to_eof(p)
    error = ei.value.error
    assert error.startswith("exit status 2: ...")
    assert error.endswith("line498; line499")
    assert len(error) < 1100


def test_killed_proxy_reports_the_signal():
    with ProxyCommand("sleep 30") as p:
        p.settimeout(5)
        os.kill(p.process.pid, signal.SIGKILL)
        with pytest.raises(ProxyCommandFailure) as ei:
            recv_to_eof(p)
        assert "killed by signal 9 (SIGKILL)" in str(ei.value)


def test_clean_exit_with_stderr_is_a_plain_eof():
    # ssh writes warnings to stderr and exits 0 when the far side closes: not a failure.
    with ProxyCommand(sh("echo 'Warning: added host' >&2; printf ok")) as p:
        p.settimeout(5)
        assert recv_to_eof(p) == b"ok"
        assert p.failure() is None
        assert "Warning: added host" in p.stderr_text()


def test_send_to_a_dead_proxy_raises_with_status_and_stderr():
    with ProxyCommand(sh("echo gone >&2; exit 5")) as p:
        p.settimeout(5)
        deadline = time.monotonic() + T
        while p.returncode is None and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(ProxyCommandFailure) as ei:
            p.send(b"data")
    assert "exit status 5" in str(ei.value)
    assert "gone" in str(ei.value)


def test_send_times_out_when_the_proxy_does_not_read():
    with ProxyCommand("sleep 30") as p:
        p.settimeout(0.2)
        start, cpu = time.monotonic(), time.process_time()
        with pytest.raises(socket.timeout):
            for _ in range(100):  # the pipe holds 64 KiB: a few sends fill it
                p.send(b"y" * 65536)
        assert time.monotonic() - start < 3
        assert time.process_time() - cpu < 0.2
    assert_gone(p)


def test_chatty_stderr_never_blocks_the_child():
    # 1 MiB on stderr before relaying stdin: a never-read stderr pipe would block at 64 KiB.
    with ProxyCommand(sh("yes error-line | head -n 100000 >&2; cat")) as p:
        p.settimeout(10)
        p.sendall(b"ping")
        assert recv_exactly(p, 4) == b"ping"
        deadline = time.monotonic() + T
        while len(p.stderr_text()) < STDERR_KEEP and time.monotonic() < deadline:
            time.sleep(0.01)  # the last 64 KiB may still sit in the pipe for a moment
        text = p.stderr_text()
        assert len(text) == STDERR_KEEP
        assert text.endswith("error-line\nerror-line\n")


def test_large_stdout_with_slow_reader_is_complete():
    with ProxyCommand("head -c 3000000 /dev/zero") as p:
        p.settimeout(5)
        time.sleep(0.3)  # let the pump hit its buffer limit
        assert len(recv_to_eof(p)) == 3000000


def test_close_kills_a_proxy_that_ignores_sigterm():
    with ProxyCommand(sh("trap '' TERM; sleep 30 & wait; sleep 30")) as p:
        time.sleep(0.2)  # let the trap be installed
        members = group_members(p.process.pid)
        assert len(members) >= 2  # the shell and its sleep
        start = time.monotonic()
        p.close()
        took = time.monotonic() - start
    bound = p.close_grace + p.term_timeout + 1.0
    assert took < bound, f"close took {took:.2f}s"
    assert took >= p.term_timeout * 0.9  # it really waited for SIGTERM first
    assert p.process.returncode == -signal.SIGKILL
    assert_gone(p)
    for pid in members:
        assert proc_stat(pid) is None or proc_stat(pid)[0] == "Z"


def test_close_is_prompt_idempotent_and_leaves_nothing():
    fds = open_fds()
    threads = threading.active_count()
    p = ProxyCommand("cat | cat | cat")
    p.settimeout(5)
    p.sendall(b"abc")
    assert recv_exactly(p, 3) == b"abc"
    assert not p.closed
    start = time.monotonic()
    p.close()
    assert time.monotonic() - start < 1.0  # closing stdin ends the pipeline: no signals needed
    p.close()
    assert p.closed and p._closed
    assert p.recv(10) == b""
    with pytest.raises(ProxyCommandFailure):
        p.send(b"x")
    assert_gone(p)
    assert open_fds() == fds
    assert threading.active_count() == threads


def test_shutdown_like_a_socket():
    with ProxyCommand("cat") as p:
        p.settimeout(5)
        p.sendall(b"last words")
        p.shutdown(socket.SHUT_WR)  # cat sees EOF, flushes and exits cleanly
        assert recv_to_eof(p) == b"last words"
        assert p.failure() is None
        with pytest.raises(ProxyCommandFailure):
            p.send(b"more")
    with ProxyCommand("sleep 30") as p:
        p.settimeout(5)
        start = time.monotonic()
        p.shutdown(socket.SHUT_RDWR)
        assert p.recv(10) == b""  # at once, although the child still runs
        assert time.monotonic() - start < 1
        assert not p.closed
    assert_gone(p)


def test_close_while_another_thread_waits_in_recv():
    p = ProxyCommand("sleep 30")
    got: List[object] = []

    def reader() -> None:
        got.append(p.recv(10))  # no timeout: must be woken by close

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.1)
    p.close()
    t.join(5)
    assert not t.is_alive()
    assert got == [b""]
    assert_gone(p)


def test_escaped_grandchild_holding_the_pipes_does_not_block_close():
    # setsid puts the grandchild outside the proxy's group: it survives and keeps our pipes
    # open, so the pumps never see EOF; close must still finish and stop them.
    p = ProxyCommand(sh("setsid sleep 3 & echo $!; exec sleep 30"))
    p.settimeout(5)
    line = b""
    while not line.endswith(b"\n"):
        line += p.recv(100)
    grandchild = int(line)
    try:
        start = time.monotonic()
        p.close()
        assert time.monotonic() - start < p.close_grace + p.term_timeout + 2
        assert not [t for t in proxy_threads() if str(p.process.pid) in t.name]
        assert proc_stat(p.process.pid) is None
    finally:
        try:
            os.kill(grandchild, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_getpeername_and_repr():
    with ProxyCommand("cat") as p:
        assert p.getpeername() == ("proxy:cat", 0)
        assert "cat" in repr(p) and "open" in repr(p)
    assert "closed" in repr(p)
    with ProxyCommand("cat", peer=("db1", 2222)) as p:
        assert p.getpeername() == ("db1", 2222)


def test_closed_after_child_exit_without_close():
    p = ProxyCommand("true")
    try:
        deadline = time.monotonic() + T
        while not p.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert p.closed and p._closed
    finally:
        p.close()
    assert_gone(p)


# ---------------------------------------------------------------------------------------------
# real SSH through the test bed's gateway
# ---------------------------------------------------------------------------------------------

HELLO = "printf 'hello %s' \"$SSH_CONNECTION\""


def w_command(testbed, host: str, port: int, extra: str = "") -> str:
    """``ssh -F cfg -W host:port gw``: the %h/%p of a ProxyCommand, substituted."""
    ssh = shlex.quote(testbed.tools["ssh"])
    cfg = shlex.quote(str(testbed.ssh_config))
    return f"{ssh} -F {cfg} -W {host}:{port} {extra}gw"


def connect_via(testbed, proxy: ProxyCommand, ep) -> SSHClient:
    c = SSHClient()
    c.load_system_host_keys(str(testbed.known_hosts))
    try:
        c.connect(ep.address, ep.port, username=testbed.user,
                  key_filename=str(testbed.identity), allow_agent=False, look_for_keys=False,
                  timeout=T, sock=proxy)
    except BaseException:
        c.close()
        raise
    return c


def hello(c: SSHClient) -> str:
    _, out, _ = c.exec_command(HELLO, timeout=T)
    data = out.read()
    assert data.startswith(b"hello "), data
    return data.split()[1].decode()  # where the target saw us come from


def wait_inactive(t, bound: float = 5.0) -> float:
    start = time.monotonic()
    while t.is_active() and time.monotonic() - start < bound:
        time.sleep(0.02)
    assert not t.is_active(), f"transport still active {bound}s after the proxy died"
    return time.monotonic() - start


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_sshclient_through_ssh_w(testbed):
    t0 = testbed.targets[0]
    mark = t0.sshd.log_mark()
    p = ProxyCommand(w_command(testbed, t0.address, t0.port), peer=(t0.address, t0.port))
    with connect_via(testbed, p, t0) as c:
        src = hello(c)
        if testbed.isolated:
            assert src == testbed.gw_address_towards_targets
        # bulk both ways through the proxy
        stdin, out, _ = c.exec_command("sha256sum", timeout=T)
        stdin.write(b"z" * 1000000)
        stdin.channel.shutdown_write()
        assert out.read().split()[0].decode() == hashlib.sha256(b"z" * 1000000).hexdigest()
        assert out.channel.recv_exit_status() == 0
    assert p.closed
    assert_gone(p)
    assert t0.sshd.wait_counts(lambda k: k.login_count >= 1, mark).login_count >= 1


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_transport_through_ssh_w_reports_the_given_peer(testbed):
    t4 = testbed.targets[4]
    p = ProxyCommand(w_command(testbed, t4.address, t4.port), peer=(t4.address, t4.port))
    t = start_client(p)
    try:
        assert t.getpeername() == (t4.address, t4.port)
        authenticate(t, testbed.user, testbed.identity)
        result = run_command(t, HELLO)
        assert result.stdout.startswith(b"hello ")
    finally:
        t.close()
    assert not t.is_alive()
    assert_gone(p)


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_sshclient_through_a_shell_pipeline(testbed):
    t1 = testbed.targets[1]
    cmd = w_command(testbed, t1.address, t1.port) + " 2>/dev/null | cat"
    p = ProxyCommand(cmd)
    with connect_via(testbed, p, t1) as c:
        assert len(group_members(p.process.pid)) >= 3  # sh, ssh and cat
        src = hello(c)
        if testbed.isolated:
            assert src == testbed.gw_address_towards_targets
    assert_gone(p)


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_proxy_killed_mid_session_ends_the_transport_quickly_without_spinning(testbed):
    t2 = testbed.targets[2]
    p = ProxyCommand(w_command(testbed, t2.address, t2.port))
    c = connect_via(testbed, p, t2)
    try:
        hello(c)
        t = c.get_transport()
        cpu = time.process_time()
        os.kill(p.process.pid, signal.SIGKILL)  # "exec ssh": the child is ssh itself
        took = wait_inactive(t)
        assert took < 5
        err = t.get_exception()
        assert isinstance(err, ProxyCommandFailure), repr(err)
        assert "killed by signal 9" in str(err)
        time.sleep(1.0)  # the dead connection must cost nothing while it sits there
        assert time.process_time() - cpu < 0.25
        with pytest.raises(SSHException):
            c.exec_command("true", timeout=5)
    finally:
        c.close()
    assert_gone(p)


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_pipeline_member_killed_mid_session_ends_the_transport(testbed):
    t3 = testbed.targets[3]
    p = ProxyCommand(w_command(testbed, t3.address, t3.port) + " | cat")
    c = connect_via(testbed, p, t3)
    try:
        hello(c)
        ssh_pids = [pid for pid in group_members(p.process.pid)
                    if open(f"/proc/{pid}/comm").read().strip() == "ssh"]
        assert len(ssh_pids) == 1
        t = c.get_transport()
        cpu = time.process_time()
        os.kill(ssh_pids[0], signal.SIGKILL)
        wait_inactive(t)
        time.sleep(0.5)
        assert time.process_time() - cpu < 0.25
        assert "closed" in str(t.get_exception())
    finally:
        c.close()
    assert_gone(p)


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_failing_proxy_error_reaches_connect(testbed):
    t0 = testbed.targets[0]
    p = ProxyCommand(sh("echo 'no route to db1' >&2; exit 3"))
    start = time.monotonic()
    with pytest.raises(ProxyCommandFailure) as ei:
        connect_via(testbed, p, t0)
    assert time.monotonic() - start < 10
    assert "no route to db1" in str(ei.value)
    assert "exit status 3" in str(ei.value)
    assert ei.value.phase is not None and ei.value.peer is not None
    assert p.closed  # the failed connect closed its transport, which closed the proxy
    assert_gone(p)


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_ssh_w_to_a_closed_port_reports_openssh_reason(testbed):
    t0 = testbed.targets[0]
    p = ProxyCommand(w_command(testbed, t0.address, 1))
    with pytest.raises(ProxyCommandFailure) as ei:
        connect_via(testbed, p, t0)
    msg = str(ei.value)
    assert "exit status 255" in msg
    assert "Connection refused" in msg or "forwarding failed" in msg, msg
    assert_gone(p)
