"""Interoperability of the transport with real OpenSSH, through the public API only.

Direction A: this library's client against the bed's OpenSSH ``sshd`` (the gateway, and a
target through one ``direct-tcpip`` hop), one algorithm dimension restricted at a time.
Direction B: OpenSSH's ``ssh`` against this library's server (``tests.support.exec_server``).
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, List

import pytest

import paramiko
from tests.support.interop import (
    HOST_KEY_FILE_FOR_ALG,
    KEY_NAME_FOR_ALG,
    CountingSocket,
    ExecServerProcess,
    authenticate,
    host_public_keys,
    key_id,
    mlkem_available,
    parse_ssh_connection,
    parse_ssh_debug,
    recv_until_eof,
    run_command,
    sha256_reported,
    start_client,
    tcp_connect,
    wait_exit_status,
    write_ssh_client_files,
)
from tests.testbed.prereq import require

pytestmark = pytest.mark.openssh

COMMAND = "printf 'hello %s' \"$SSH_CONNECTION\"; exit 3"
# The same, plus a digest of stdin on stderr: exercises the client->server direction with data.
STDIN_COMMAND = "printf 'hello %s' \"$SSH_CONNECTION\"; sha256sum >&2; exit 3"
STDIN_DATA = hashlib.sha256(b"interop").digest() * 8192  # 256 KiB
STDIN_SHA256 = hashlib.sha256(STDIN_DATA).hexdigest()

KEXES = [
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
]
CIPHERS = [
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
]
MACS = [
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha1",
]
HOST_KEY_ALGS = list(HOST_KEY_FILE_FOR_ALG)
NON_AEAD_CIPHER = "aes128-ctr"


# ---------------------------------------------------------------------------------------------
# direction A: this client -> OpenSSH sshd
# ---------------------------------------------------------------------------------------------


def _connect_gateway(testbed, configure: Callable[[paramiko.Transport], None] | None = None,
                     sock=None) -> paramiko.Transport:
    gw = testbed.gateway
    sock = sock if sock is not None else tcp_connect(gw.address, gw.port)
    t = start_client(sock, configure)
    try:
        authenticate(t, testbed.user, testbed.identity)
    except BaseException:
        t.close()
        raise
    return t


def _check_hello(testbed, result, endpoint) -> None:
    assert result.status == 3, (result.status, result.stderr)
    src, _sport, dst, dport = parse_ssh_connection(result.stdout)
    assert (dst, dport) == (endpoint.address, endpoint.port)
    if testbed.isolated and endpoint is testbed.gateway:
        assert src == testbed.client_address


def _check_gateway_host_key(testbed, t: paramiko.Transport) -> None:
    served = host_public_keys(testbed.gateway.sshd.host_keys)
    assert key_id(t.get_remote_server_key()) in served.values()


def _restrict(dimension: str, names: List[str]) -> Callable[[paramiko.Transport], None]:
    def configure(t: paramiko.Transport) -> None:
        opts = t.get_security_options()
        setattr(opts, dimension, tuple(names))
        assert tuple(getattr(opts, dimension)) == tuple(names)

    return configure


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kex", KEXES)
def test_client_kex_against_openssh(testbed, kex):
    t = _connect_gateway(testbed, _restrict("kex", [kex]))
    try:
        _check_gateway_host_key(testbed, t)
        _check_hello(testbed, run_command(t, COMMAND), testbed.gateway)
    finally:
        t.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cipher", CIPHERS)
def test_client_cipher_against_openssh(testbed, cipher):
    t = _connect_gateway(testbed, _restrict("ciphers", [cipher]))
    try:
        assert (t.local_cipher, t.remote_cipher) == (cipher, cipher)
        _check_gateway_host_key(testbed, t)
        result = run_command(t, STDIN_COMMAND, stdin=STDIN_DATA)
        _check_hello(testbed, result, testbed.gateway)
        assert sha256_reported(result.stderr) == STDIN_SHA256
    finally:
        t.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mac", MACS)
def test_client_mac_against_openssh(testbed, mac):
    def configure(t: paramiko.Transport) -> None:
        _restrict("ciphers", [NON_AEAD_CIPHER])(t)
        _restrict("digests", [mac])(t)

    t = _connect_gateway(testbed, configure)
    try:
        assert (t.local_cipher, t.remote_cipher) == (NON_AEAD_CIPHER, NON_AEAD_CIPHER)
        assert (t.local_mac, t.remote_mac) == (mac, mac)
        result = run_command(t, STDIN_COMMAND, stdin=STDIN_DATA)
        _check_hello(testbed, result, testbed.gateway)
        assert sha256_reported(result.stderr) == STDIN_SHA256
    finally:
        t.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("alg", HOST_KEY_ALGS)
def test_client_host_key_algorithm_against_openssh(testbed, alg):
    t = _connect_gateway(testbed, _restrict("key_types", [alg]))
    try:
        assert t.host_key_type == alg
        key = t.get_remote_server_key()
        assert key.get_name() == KEY_NAME_FOR_ALG[alg]
        expected = host_public_keys(testbed.gateway.sshd.host_keys)[HOST_KEY_FILE_FOR_ALG[alg]]
        assert key_id(key) == expected
        _check_hello(testbed, run_command(t, COMMAND), testbed.gateway)
    finally:
        t.close()


@pytest.mark.timeout(60)
def test_client_compression_against_openssh(testbed):
    payload = 4 * 1024 * 1024
    command = f"head -c {payload} /dev/zero; exit 3"
    wire = {}
    for compress in (False, True):
        gw = testbed.gateway
        counting = CountingSocket(tcp_connect(gw.address, gw.port))

        def configure(t: paramiko.Transport, compress: bool = compress) -> None:
            t.use_compression(compress)

        t = _connect_gateway(testbed, configure, sock=counting)
        try:
            expected = "zlib@openssh.com" if compress else "none"
            assert (t.local_compression, t.remote_compression) == (expected, expected)
            before = counting.bytes_in
            result = run_command(t, command)
            wire[compress] = counting.bytes_in - before
        finally:
            t.close()
        assert result.status == 3
        assert result.stdout == b"\0" * payload
    assert wire[False] > payload, wire
    assert wire[True] < payload // 20, wire


@pytest.mark.timeout(60)
def test_client_through_direct_tcpip_hop(testbed):
    gw, t0 = testbed.gateway, testbed.targets[0]
    gw_mark, t0_mark = gw.sshd.log_mark(), t0.sshd.log_mark()
    outer = _connect_gateway(testbed)
    try:
        chan = outer.open_channel("direct-tcpip", (t0.address, t0.port), ("127.0.0.1", 0),
                                  timeout=20)
        inner = start_client(chan)
        try:
            served = host_public_keys(t0.sshd.host_keys)
            assert key_id(inner.get_remote_server_key()) in served.values()
            authenticate(inner, testbed.user, testbed.identity)
            result = run_command(inner, COMMAND)
        finally:
            inner.close()
    finally:
        outer.close()
    _check_hello(testbed, result, t0)
    src = parse_ssh_connection(result.stdout)[0]
    if testbed.isolated:
        assert src == testbed.gw_address_towards_targets
    gw_logins = gw.sshd.wait_counts(lambda c: c.login_count >= 1, gw_mark).login_count
    t0_counts = t0.sshd.wait_counts(lambda c: c.login_count >= 1, t0_mark)
    assert gw_logins == 1
    assert t0_counts.login_count == 1
    assert t0_counts.logins[0][2] == src


@pytest.mark.timeout(180)
def test_rekey_in_the_middle_of_a_64mib_stream(testbed):
    size = 64 * 1024 * 1024
    # tee copies the stream to stdout (fd 3) and to sha256sum, whose digest goes to stderr.
    command = (f"{{ head -c {size} /dev/urandom | tee /dev/fd/3 | sha256sum >&2; }} 3>&1; "
               "exit 3")
    gw = testbed.gateway
    counting = CountingSocket(tcp_connect(gw.address, gw.port))
    t = _connect_gateway(testbed, sock=counting)
    try:
        session_id = t.session_id
        chan = t.open_session(timeout=20)
        chan.settimeout(30)
        chan.exec_command(command)
        deadline = time.monotonic() + 120
        digest = hashlib.sha256()
        received = 0
        rekeyed_at = None
        while True:
            assert time.monotonic() < deadline, "stream too slow"
            data = chan.recv(262144)
            if not data:
                break
            digest.update(data)
            received += len(data)
            if rekeyed_at is None and received >= size // 4:
                rekeyed_at = received
                sent_before = counting.bytes_out
                t.renegotiate_keys()
                # Only window adjustments would flow out otherwise; a KEXINIT listing the
                # client's algorithms plus the key exchange init is far larger.
                rekey_bytes = counting.bytes_out - sent_before
        stderr = recv_until_eof(chan.recv_stderr, deadline)
        status = wait_exit_status(chan)
        assert t.is_active()
        assert t.session_id == session_id  # a rekey keeps the session identifier
    finally:
        t.close()
    assert rekeyed_at is not None and rekeyed_at < size, "the rekey did not happen mid-stream"
    assert rekey_bytes >= 400, f"renegotiate_keys() sent only {rekey_bytes} bytes"
    assert received == size
    assert status == 3
    remote_digest = stderr.split()[0].decode()
    assert remote_digest == digest.hexdigest()


@pytest.mark.timeout(120)
def test_full_stdout_before_any_stderr_does_not_deadlock(testbed):
    size = 8 * 1024 * 1024
    # stderr is written first and in full: a client that reads only stdout must keep going.
    command = (f"head -c {size} /dev/zero | tr '\\000' e >&2; "
               f"head -c {size} /dev/zero | tr '\\000' o; exit 3")
    t = _connect_gateway(testbed)
    try:
        chan = t.open_session(timeout=20)
        chan.settimeout(20)
        chan.exec_command(command)
        deadline = time.monotonic() + 60
        out = recv_until_eof(chan.recv, deadline, 262144)
        err = recv_until_eof(chan.recv_stderr, deadline, 262144)
        status = wait_exit_status(chan)
    finally:
        t.close()
    assert len(out) == size and out.count(b"o") == size
    assert len(err) == size and err.count(b"e") == size
    assert status == 3


@pytest.mark.timeout(60)
@pytest.mark.parametrize("state", ["idle", "streaming"])
def test_close_ends_the_transport_thread(testbed, state):
    t = _connect_gateway(testbed)
    try:
        if state == "idle":
            _check_hello(testbed, run_command(t, COMMAND), testbed.gateway)
        else:
            chan = t.open_session(timeout=20)
            chan.settimeout(20)
            chan.exec_command("head -c 268435456 /dev/zero")
            assert len(chan.recv(65536)) > 0
        assert t.is_alive()
    finally:
        started = time.monotonic()
        t.close()
        elapsed = time.monotonic() - started
    assert not t.is_alive(), "close() returned while the transport thread was still running"
    assert not t.is_active()
    assert elapsed < 10


# ---------------------------------------------------------------------------------------------
# our server: OpenSSH ssh -> this library, and this client -> this server (ML-KEM)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exec_server(tmp_path_factory, keystore, openssh_tools, testbed):
    workdir = tmp_path_factory.mktemp("exec-server")
    host_keys = keystore.host_keys("exec-server")
    identity = testbed.identity
    server = ExecServerProcess(list(host_keys.values()), Path(str(identity) + ".pub"),
                               workdir / "server.log")
    try:
        port = server.wait_port()
        server.config = write_ssh_client_files(workdir, "execsrv", server.host, port,
                                               testbed.user, identity, list(host_keys.values()))
        server.host_key_paths = host_keys
        server.user, server.identity = testbed.user, identity
        yield server
    finally:
        server.stop()


def _ssh(exec_server, openssh_tools, options: List[str], command: str = COMMAND,
         stdin: bytes = b"") -> subprocess.CompletedProcess:
    cmd = [openssh_tools["ssh"], "-F", str(exec_server.config), "-o", "LogLevel=DEBUG1"]
    for opt in options:
        cmd += ["-o", opt]
    r = subprocess.run(cmd + ["execsrv", command], input=stdin, capture_output=True,
                       timeout=60)
    r.stdout, r.stderr = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    return r


def _check_ssh_hello(exec_server, r: subprocess.CompletedProcess) -> dict:
    assert exec_server.proc.poll() is None, exec_server.log_text()[-2000:]
    assert r.returncode == 3, (r.returncode, r.stderr[-3000:], exec_server.log_text()[-2000:])
    _src, _sport, dst, dport = parse_ssh_connection(r.stdout.encode())
    assert (dst, dport) == (exec_server.host, exec_server.port)
    return parse_ssh_debug(r.stderr)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kex", KEXES)
def test_openssh_client_kex_against_our_server(exec_server, openssh_tools, kex):
    if kex == "diffie-hellman-group-exchange-sha256":
        require(Path("/etc/ssh/moduli").is_file(), "group exchange needs /etc/ssh/moduli")
    r = _ssh(exec_server, openssh_tools, [f"KexAlgorithms={kex}"])
    assert _check_ssh_hello(exec_server, r)["kex"] == kex


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cipher", CIPHERS)
def test_openssh_client_cipher_against_our_server(exec_server, openssh_tools, cipher):
    r = _ssh(exec_server, openssh_tools, [f"Ciphers={cipher}"], STDIN_COMMAND, STDIN_DATA)
    got = _check_ssh_hello(exec_server, r)
    assert (got["c2s_cipher"], got["s2c_cipher"]) == (cipher, cipher)
    assert sha256_reported(r.stderr) == STDIN_SHA256


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mac", MACS)
def test_openssh_client_mac_against_our_server(exec_server, openssh_tools, mac):
    r = _ssh(exec_server, openssh_tools, [f"Ciphers={NON_AEAD_CIPHER}", f"MACs={mac}"],
             STDIN_COMMAND, STDIN_DATA)
    got = _check_ssh_hello(exec_server, r)
    assert (got["c2s_mac"], got["s2c_mac"]) == (mac, mac)
    assert sha256_reported(r.stderr) == STDIN_SHA256


@pytest.mark.timeout(60)
@pytest.mark.parametrize("alg", HOST_KEY_ALGS)
def test_openssh_client_host_key_algorithm_against_our_server(exec_server, openssh_tools, alg):
    # StrictHostKeyChecking is on and known_hosts holds only the server's keys: success
    # means our server proved possession of the key of this type with this signature.
    r = _ssh(exec_server, openssh_tools, [f"HostKeyAlgorithms={alg}"])
    assert _check_ssh_hello(exec_server, r)["hostkey"] == alg


@pytest.mark.timeout(60)
def test_openssh_client_compression_against_our_server(exec_server, openssh_tools):
    r = _ssh(exec_server, openssh_tools, ["Compression=yes"])
    got = _check_ssh_hello(exec_server, r)
    assert (got["c2s_compression"], got["s2c_compression"]) == ("zlib@openssh.com",) * 2


@pytest.mark.timeout(60)
def test_openssh_client_rejected_with_another_key(exec_server, openssh_tools, keystore,
                                                  tmp_path):
    other = keystore.user_key("id_other_ed25519")
    # IdentityFile accumulates across config and command line: use a config naming only it.
    lines = Path(exec_server.config).read_text().splitlines()
    config = tmp_path / "ssh_config"
    config.write_text("\n".join(f"  IdentityFile {other}" if "IdentityFile" in line else line
                                for line in lines) + "\n")
    r = subprocess.run([openssh_tools["ssh"], "-F", str(config), "execsrv", COMMAND],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 255 and "hello" not in r.stdout
    assert "Permission denied" in r.stderr


@pytest.mark.timeout(60)
def test_client_mlkem_against_our_server(exec_server):
    # OpenSSH 9.2 offers no ML-KEM kex, so both ends of this case are this library.
    require(mlkem_available(), "the installed cryptography has no ML-KEM-768 "
                               "(mlkem768x25519-sha256 needs it)")
    kex = "mlkem768x25519-sha256"
    t = start_client(tcp_connect(exec_server.host, exec_server.port), _restrict("kex", [kex]))
    try:
        served = host_public_keys(exec_server.host_key_paths)
        assert key_id(t.get_remote_server_key()) in served.values()
        authenticate(t, exec_server.user, exec_server.identity)
        result = run_command(t, COMMAND)
    finally:
        t.close()
    assert result.status == 3
    _src, _sport, dst, dport = parse_ssh_connection(result.stdout)
    assert (dst, dport) == (exec_server.host, exec_server.port)


@pytest.mark.timeout(60)
def test_exec_server_process_serves_and_stops_on_sigterm(keystore, testbed, tmp_path):
    keys = keystore.host_keys("exec-server")
    server = ExecServerProcess([keys["ed25519"]], Path(str(testbed.identity) + ".pub"),
                               tmp_path / "server.log")
    try:
        port = server.wait_port()
        with socket.create_connection((server.host, port), timeout=5) as s:
            s.settimeout(10)
            assert s.recv(64).startswith(b"SSH-2.0-")
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.log_text()[-2000:]
    with pytest.raises(OSError):
        socket.create_connection((server.host, port), timeout=5).close()
