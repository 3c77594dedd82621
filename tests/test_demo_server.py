"""The in-process LocalSSHServer, exercised with this repo's paramiko client."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

import paramiko
from fabric.demo.server import LocalSSHServer, generate_host_key

TIMEOUT = 10.0


@contextmanager
def connected(ep, *, password: Optional[str] = None, sock=None,
              use_key: bool = True) -> Iterator[paramiko.SSHClient]:
    client = paramiko.SSHClient()
    client.load_host_keys(ep.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(ep.host, ep.port, username=ep.user, password=password,
                       key_filename=ep.key_filename if use_key else None,
                       look_for_keys=False, allow_agent=False, timeout=TIMEOUT, sock=sock,
                       banner_timeout=TIMEOUT, auth_timeout=TIMEOUT)
        yield client
    finally:
        client.close()


def run(client: paramiko.SSHClient, command: str, stdin: bytes = b"", pty: bool = False,
        env: Optional[dict] = None):
    chan = client.get_transport().open_session(timeout=TIMEOUT)
    chan.settimeout(TIMEOUT)
    if env:
        chan.update_environment(env)
    if pty:
        chan.get_pty(width=100, height=40)
    chan.exec_command(command)
    if stdin:
        chan.sendall(stdin)
    chan.shutdown_write()
    out = read_all(chan)
    err = b""
    while True:
        chunk = chan.recv_stderr(65536)
        if not chunk:
            break
        err += chunk
    status = chan.recv_exit_status(TIMEOUT)
    chan.close()
    return status, out, err


def read_all(chan: paramiko.Channel) -> bytes:
    out = b""
    while True:
        chunk = chan.recv(65536)
        if not chunk:
            return out
        out += chunk


def read_until(chan: paramiko.Channel, marker: bytes) -> bytes:
    out = b""
    while marker not in out:
        chunk = chan.recv(65536)
        if not chunk:
            break
        out += chunk
    return out


def wait_pid_gone(pid: int, timeout: float) -> bool:
    """True once ``pid`` has exited (waits on a pidfd: no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(fd)


def closed_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of_me() -> List[int]:
    me, found = os.getpid(), []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rpartition(b")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                found.append(int(name))
    return found


# -- authentication ---------------------------------------------------------------------------
def test_key_auth_exec_status_and_separate_stderr(local_ssh):
    with connected(local_ssh) as client:
        status, out, err = run(client, "echo out; echo err >&2; pwd; exit 3")
    assert status == 3
    assert out == f"out\n{os.path.realpath(local_ssh.workdir)}\n".encode()
    assert err == b"err\n"


def test_password_auth(local_ssh):
    with connected(local_ssh, password=local_ssh.password, use_key=False) as client:
        assert run(client, "echo ok")[:2] == (0, b"ok\n")


def test_keyboard_interactive_auth(local_ssh):
    prompts_seen = []

    def answer(title, instructions, prompts):
        prompts_seen.extend(prompts)
        return [local_ssh.password for _ in prompts]

    with closing(paramiko.Transport((local_ssh.host, local_ssh.port))) as tr:
        tr.start_client(timeout=TIMEOUT)
        tr.auth_interactive(local_ssh.user, answer)
        assert tr.is_authenticated()
    assert prompts_seen == [("Password: ", False)]


def test_wrong_password_rejected(local_ssh):
    with pytest.raises(paramiko.AuthenticationException):
        with connected(local_ssh, password="not-the-password", use_key=False):
            pass


def test_unknown_key_rejected(local_ssh, tmp_path):
    other = paramiko.Ed25519Key.generate()
    path = tmp_path / "other"
    other.write_private_key_file(str(path))
    client = paramiko.SSHClient()
    client.load_host_keys(local_ssh.known_hosts)
    with closing(client), pytest.raises(paramiko.AuthenticationException):
        client.connect(local_ssh.host, local_ssh.port, username=local_ssh.user,
                       key_filename=str(path), look_for_keys=False, allow_agent=False,
                       timeout=TIMEOUT)


def test_logins_counter(local_ssh):
    before = local_ssh.server.logins
    connections = local_ssh.server.connections
    with connected(local_ssh):
        assert local_ssh.server.logins == before + 1
    assert local_ssh.server.connections >= connections + 1


def test_known_hosts_line(local_ssh):
    line = local_ssh.server.known_hosts_line()
    key = local_ssh.server.host_key
    assert line == f"[127.0.0.1]:{local_ssh.port} ssh-ed25519 {key.get_base64()}"


# -- sessions ---------------------------------------------------------------------------------
def test_stdin_round_trip(local_ssh):
    data = os.urandom(300_000)
    with connected(local_ssh) as client:
        status, out, err = run(client, "cat", stdin=data)
    assert (status, err) == (0, b"")
    assert out == data


def test_large_stdin_and_stdout_at_once(local_ssh):
    # More than every buffer on the way in both directions: only flows if the server keeps
    # draining the child's output while it feeds the child's input.
    data = os.urandom(8 << 20)
    with connected(local_ssh) as client:
        chan = client.get_transport().open_session(timeout=TIMEOUT)
        chan.settimeout(TIMEOUT)
        chan.exec_command("cat; echo done >&2")

        def feed() -> None:
            chan.sendall(data)
            chan.shutdown_write()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        out = read_all(chan)
        writer.join(TIMEOUT)
        assert chan.recv_stderr(100) == b"done\n"
        assert chan.recv_exit_status(TIMEOUT) == 0
    assert out == data


def test_env_request_visible(local_ssh):
    with connected(local_ssh) as client:
        status, out, _ = run(client, 'printf "%s" "$FABRIC_DEMO_VAR"',
                             env={"FABRIC_DEMO_VAR": "hello world"})
    assert (status, out) == (0, b"hello world")


def test_pty_exec(local_ssh):
    with connected(local_ssh) as client:
        status, out, err = run(client, "tty; stty size; echo err >&2", pty=True)
    assert status == 0
    assert err == b""  # a pty merges stderr into the output
    lines = out.split(b"\r\n")
    assert lines[0].startswith(b"/dev/pts/"), out
    assert lines[1] == b"40 100"
    assert lines[2] == b"err"


def test_pty_window_change(local_ssh):
    with connected(local_ssh) as client:
        chan = client.get_transport().open_session(timeout=TIMEOUT)
        chan.settimeout(TIMEOUT)
        chan.get_pty(width=80, height=24)
        chan.exec_command("read line; stty size")
        chan.resize_pty(width=132, height=50)
        chan.sendall(b"go\n")  # arrives after the window-change: same channel, in order
        out = read_all(chan)
        assert chan.recv_exit_status(TIMEOUT) == 0
    assert out.endswith(b"50 132\r\n"), out


def test_shell_on_pty(local_ssh):
    with connected(local_ssh) as client:
        chan = client.invoke_shell(width=80, height=24)
        chan.settimeout(TIMEOUT)
        chan.sendall(b"echo h''i; exit\n")
        out = read_all(chan)
        assert chan.recv_exit_status(TIMEOUT) == 0
    assert b"hi\r\n" in out, out


def test_shell_without_pty_reads_stdin(local_ssh):
    with connected(local_ssh) as client:
        chan = client.get_transport().open_session(timeout=TIMEOUT)
        chan.settimeout(TIMEOUT)
        chan.invoke_shell()
        chan.sendall(b"echo from-shell\n")
        chan.shutdown_write()
        assert read_all(chan) == b"from-shell\n"
        assert chan.recv_exit_status(TIMEOUT) == 0


def test_missing_command_is_127(local_ssh):
    with connected(local_ssh) as client:
        status, out, err = run(client, "no-such-command-anywhere")
    assert status == 127
    assert b"not found" in err


# -- forwarding -------------------------------------------------------------------------------
def test_direct_tcpip_through_gateway(local_gateway_pair):
    gw, target = local_gateway_pair.gateway, local_gateway_pair.target
    with connected(gw) as gw_client:
        chan = gw_client.get_transport().open_channel(
            "direct-tcpip", (target.host, target.port), ("127.0.0.1", 0), timeout=TIMEOUT)
        target_logins = target.server.logins
        with connected(target, sock=chan) as client:
            status, out, _ = run(client, "echo via-gateway; pwd")
        assert target.server.logins == target_logins + 1
    assert status == 0
    assert out == f"via-gateway\n{os.path.realpath(target.workdir)}\n".encode()


def test_direct_tcpip_closed_port(local_gateway_pair):
    with connected(local_gateway_pair.gateway) as client:
        with pytest.raises(paramiko.ChannelException) as info:
            client.get_transport().open_channel(
                "direct-tcpip", ("127.0.0.1", closed_port()), ("127.0.0.1", 0),
                timeout=TIMEOUT)
    assert info.value.code == paramiko.OPEN_FAILED_CONNECT_FAILED


def test_direct_tcpip_non_loopback_prohibited(local_gateway_pair):
    with connected(local_gateway_pair.gateway) as client:
        with pytest.raises(paramiko.ChannelException) as info:
            # Refused before any connection attempt: no packet leaves the machine.
            client.get_transport().open_channel(
                "direct-tcpip", ("192.0.2.1", 22), ("127.0.0.1", 0), timeout=TIMEOUT)
    assert info.value.code == paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


def test_remote_port_forward(local_ssh):
    with connected(local_ssh) as client:
        tr = client.get_transport()
        port = tr.request_port_forward("127.0.0.1", 0)
        assert port > 0
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(b"ping")
            chan = tr.accept(TIMEOUT)
            assert chan is not None
            chan.settimeout(TIMEOUT)
            assert chan.recv(100) == b"ping"
            chan.sendall(b"pong")
            assert s.recv(100) == b"pong"
            s.shutdown(socket.SHUT_WR)
            assert chan.recv(100) == b""
            chan.close()
        tr.cancel_port_forward("127.0.0.1", port)
        # The cancel is sent without a reply: a round trip proves it was handled.
        run(client, "true")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


def test_remote_forward_non_loopback_refused(local_ssh):
    with connected(local_ssh) as client:
        with pytest.raises(paramiko.SSHException):
            client.get_transport().request_port_forward("192.0.2.1", 0)


# -- sftp -------------------------------------------------------------------------------------
def test_sftp_put_get(local_ssh, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(100_000))
    with connected(local_ssh) as client, closing(client.open_sftp()) as sftp:
        sftp.put(str(src), "uploaded.bin")  # relative: lands in the server's cwd
        assert Path(local_ssh.workdir, "uploaded.bin").read_bytes() == src.read_bytes()
        absolute = os.path.join(local_ssh.workdir, "uploaded.bin")
        sftp.get(absolute, str(tmp_path / "back.bin"))
        assert sftp.normalize(".") == os.path.realpath(local_ssh.workdir)
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()


# -- clean-up ---------------------------------------------------------------------------------
def test_disconnect_mid_command_kills_it(local_ssh):
    with connected(local_ssh) as client:
        chan = client.get_transport().open_session(timeout=TIMEOUT)
        chan.settimeout(TIMEOUT)
        chan.exec_command("echo $$; exec sleep 30")
        pid = int(read_until(chan, b"\n"))
    started = time.monotonic()
    assert wait_pid_gone(pid, 5.0), f"sleep (pid {pid}) survived the disconnect"
    assert time.monotonic() - started < 3.0


def test_signal_request_reaches_the_command(local_ssh):
    with connected(local_ssh) as client:
        chan = client.get_transport().open_session(timeout=TIMEOUT)
        chan.settimeout(TIMEOUT)
        chan.exec_command("trap 'echo got-term; exit 7' TERM; echo ready; "
                          "while :; do sleep 0.05; done")
        read_until(chan, b"ready\n")
        chan.send_signal("TERM")
        assert b"got-term" in read_all(chan)
        assert chan.recv_exit_status(TIMEOUT) == 7


def test_channel_close_mid_command_kills_it(local_ssh):
    with connected(local_ssh) as client:
        chan = client.get_transport().open_session(timeout=TIMEOUT)
        chan.settimeout(TIMEOUT)
        chan.get_pty()
        chan.exec_command("echo $$; exec sleep 30")
        pid = int(read_until(chan, b"\n"))
        chan.close()
        assert wait_pid_gone(pid, 5.0), f"sleep (pid {pid}) survived the channel close"
        assert run(client, "echo still-usable")[:2] == (0, b"still-usable\n")


def test_stop_leaves_nothing_behind(tmp_path, local_ssh_client_key):
    key, key_filename = local_ssh_client_key
    threads_before = set(threading.enumerate())
    children_before = set(children_of_me())
    # A private HOME: the shell below is killed during its start-up files.
    server = LocalSSHServer(host_key=generate_host_key(), authorized_keys=[key],
                            cwd=str(tmp_path), name="stop-test", env={"HOME": str(tmp_path)})
    port = server.start()
    (tmp_path / "known_hosts").write_text(server.known_hosts_line() + "\n")
    client = paramiko.SSHClient()
    client.load_host_keys(str(tmp_path / "known_hosts"))
    client.connect("127.0.0.1", port, username="anyone", key_filename=key_filename,
                   look_for_keys=False, allow_agent=False, timeout=TIMEOUT)
    tr = client.get_transport()
    busy = []
    for command in ("echo $$; sleep 30", "echo $$; sleep 30 & sleep 30"):
        chan = tr.open_session(timeout=TIMEOUT)
        chan.settimeout(TIMEOUT)
        chan.exec_command(command)
        busy.append(int(read_until(chan, b"\n")))
    shell = tr.open_session(timeout=TIMEOUT)
    shell.get_pty()
    shell.invoke_shell()
    fwd_port = tr.request_port_forward("127.0.0.1", 0)
    assert server.active_transports()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5.0
    assert server.running_threads() == []
    assert server.leftover_processes() == []
    assert not server.active_transports()
    for pid in busy:
        assert wait_pid_gone(pid, 1.0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", fwd_port), timeout=TIMEOUT).close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
    client.close()
    assert set(children_of_me()) - children_before == set()
    leftover = [t for t in threading.enumerate() if t not in threads_before]
    assert leftover == [], leftover


def test_context_manager_and_users(tmp_path, local_ssh_client_key):
    key, key_filename = local_ssh_client_key
    with LocalSSHServer(authorized_keys=[key.asbytes()], users=["alice"], cwd=str(tmp_path),
                        passwords={"alice": "pw", "bob": "pw"}) as server:
        (tmp_path / "kh").write_text(server.known_hosts_line() + "\n")
        for user, ok in (("alice", True), ("bob", False)):
            client = paramiko.SSHClient()
            client.load_host_keys(str(tmp_path / "kh"))
            with closing(client):
                if ok:
                    client.connect("127.0.0.1", server.port, username=user, password="pw",
                                   look_for_keys=False, allow_agent=False, timeout=TIMEOUT)
                else:
                    with pytest.raises(paramiko.AuthenticationException):
                        client.connect("127.0.0.1", server.port, username=user,
                                       key_filename=key_filename, look_for_keys=False,
                                       allow_agent=False, timeout=TIMEOUT)
        assert server.logins == 1
    assert server.running_threads() == []


def test_silent_and_unauthenticated_clients_are_dropped(tmp_path):
    with LocalSSHServer(cwd=str(tmp_path), name="grace", handshake_timeout=0.5,
                        auth_timeout=0.5) as server:
        # Says nothing: dropped after the banner timeout.
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as s:
            received = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                received += chunk
        assert received.startswith(b"SSH-2.0-")
        # Leaves in the middle of the handshake.
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as s:
            s.sendall(b"SSH-2.0-half\r\n\x00\x00")
        # Negotiates but never authenticates: dropped after auth_timeout.
        tr = paramiko.Transport(("127.0.0.1", server.port))
        with closing(tr):
            tr.start_client(timeout=TIMEOUT)
            tr.join(TIMEOUT)  # the reader thread ends when the server hangs up
            assert not tr.is_active()
        assert server.logins == 0
        assert server.connections == 3
    assert server.running_threads() == []
