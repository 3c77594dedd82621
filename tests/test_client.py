"""SSHClient against real OpenSSH servers (the gateway of the test bed and the auth bed), plus
a few scripted-transport tests for authentication decisions no stock sshd can be made to take.

Every test checks that no Transport thread outlives it (a failed connect must close its
transport).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

import paramiko
from paramiko.client import (
    AutoAddPolicy,
    MissingHostKeyPolicy,
    RejectPolicy,
    RevokedHostKeyException,
    SSHClient,
    WarningPolicy,
)
from paramiko.ed25519key import Ed25519Key
from paramiko.hostkeys import HostKeys
from paramiko.pkey import PKey
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    BadHostKeyException,
    NoValidConnectionsError,
    PasswordRequiredException,
    SSHException,
)
from tests.testbed.keys import keygen, public_line
from tests.testbed.sshd import Sshd

pytestmark = pytest.mark.openssh

PASSPHRASE = "correct horse 42"
T = 15.0  # generous per-connect bound for a loaded CI machine


# ---------------------------------------------------------------------------------------------
# helpers and fixtures
# ---------------------------------------------------------------------------------------------


def transport_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate()
            if isinstance(t, paramiko.Transport) and t.is_alive()]


@pytest.fixture(autouse=True)
def no_transport_leak():
    before = set(transport_threads())
    yield
    deadline = time.monotonic() + 5
    extra = [t for t in transport_threads() if t not in before]
    while extra and time.monotonic() < deadline:
        time.sleep(0.05)
        extra = [t for t in transport_threads() if t not in before]
    assert not extra, f"transport threads left running: {extra}"


def make_client(known_hosts: Optional[Path] = None) -> SSHClient:
    c = SSHClient()
    if known_hosts is not None:
        c.load_system_host_keys(str(known_hosts))
    return c


def gw_connect(testbed, client: Optional[SSHClient] = None, **kw) -> SSHClient:
    """Connect to the bed's gateway sshd as the bed's user (no agent, no ~/.ssh keys)."""
    c = client or make_client(testbed.known_hosts)
    kw.setdefault("username", testbed.user)
    kw.setdefault("allow_agent", False)
    kw.setdefault("look_for_keys", False)
    kw.setdefault("timeout", T)
    c.connect(testbed.gateway.address, testbed.gateway.port, **kw)
    return c


def run(c: SSHClient, command: str, timeout: float = T) -> Tuple[bytes, bytes, int]:
    _, out, err = c.exec_command(command, timeout=timeout)
    data, errdata = out.read(), err.read()
    return data, errdata, out.channel.recv_exit_status()


def gw_host_key_lines(testbed) -> Dict[str, str]:
    """Host key type -> 'type base64' of the gateway's host keys."""
    out = {}
    for path in testbed.gateway.sshd.host_keys.values():
        line = public_line(path)
        out[line.split()[0]] = line
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The client key matrix: (label, ssh-keygen -t, -b, formats)
KEY_SPECS = [
    ("ed25519", "ed25519", None, ("openssh",)),
    ("ecdsa256", "ecdsa", 256, ("openssh", "pem")),
    ("ecdsa384", "ecdsa", 384, ("openssh", "pem")),
    ("ecdsa521", "ecdsa", 521, ("openssh", "pem")),
    ("rsa2048", "rsa", 2048, ("openssh", "pem")),
    ("rsa4096", "rsa", 4096, ("openssh", "pem")),
]
KEY_CASES = [(label, fmt, enc) for label, _t, _b, fmts in KEY_SPECS for fmt in fmts
             for enc in (False, True)]
PEM_ARMOUR = {"ecdsa": b"-----BEGIN EC PRIVATE KEY-----", "rsa": b"-----BEGIN RSA PRIVATE KEY-----"}


@pytest.fixture(scope="module")
def client_keys(tmp_path_factory, openssh_tools, testbed) -> Dict[Tuple[str, str, bool], Path]:
    """Every key of the matrix, authorized on the bed (one key pair per type; the format and
    passphrase variants are re-encodings of it made with ``ssh-keygen -p``)."""
    d = tmp_path_factory.mktemp("client-keys")
    keygen_bin = openssh_tools["ssh-keygen"]
    out: Dict[Tuple[str, str, bool], Path] = {}
    lines = []
    for label, ktype, bits, fmts in KEY_SPECS:
        base = keygen(d / f"id_{label}", ktype, bits, comment=f"client-{label}",
                      ssh_keygen=keygen_bin)
        lines.append(public_line(base))
        for fmt in fmts:
            for enc in (False, True):
                p = d / f"id_{label}_{fmt}_{'enc' if enc else 'plain'}"
                shutil.copyfile(base, p)
                p.chmod(0o600)
                cmd = [keygen_bin, "-q", "-p", "-f", str(p), "-P", "", "-N",
                       PASSPHRASE if enc else "", "-m", "PEM" if fmt == "pem" else "RFC4716"]
                if fmt == "openssh":
                    cmd = cmd[:-2]  # the default format is OpenSSH's own
                subprocess.run(cmd, check=True, capture_output=True, timeout=60)
                out[(label, fmt, enc)] = p
    with open(testbed.authorized_keys, "a") as f:
        f.write("\n".join(lines) + "\n")
    return out


# ---------------------------------------------------------------------------------------------
# publickey: the key matrix, by pkey= and by key_filename=
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label,fmt,enc", KEY_CASES,
                         ids=[f"{a}-{b}-{'enc' if c else 'plain'}" for a, b, c in KEY_CASES])
@pytest.mark.parametrize("how", ["pkey", "key_filename"])
def test_publickey_matrix(testbed, client_keys, label, fmt, enc, how):
    path = client_keys[(label, fmt, enc)]
    data = path.read_bytes()
    if fmt == "pem":
        assert data.startswith(PEM_ARMOUR["rsa" if label.startswith("rsa") else "ecdsa"])
        assert (b"ENCRYPTED" in data) == enc
    else:
        assert data.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    secret = PASSPHRASE if enc else None
    mark = testbed.gateway.sshd.log_mark()
    if how == "pkey":
        key = PKey.from_path(path, passphrase=secret)
        c = gw_connect(testbed, pkey=key)
    else:
        c = gw_connect(testbed, key_filename=str(path), passphrase=secret)
    with c:
        out, _, status = run(c, "echo matrix-ok")
        assert (out, status) == (b"matrix-ok\n", 0)
    counts = testbed.gateway.sshd.wait_counts(lambda k: k.login_count >= 1, mark)
    assert [m for m, _u, _s in counts.logins] == ["publickey"]


def test_password_decrypts_key_when_no_passphrase(testbed, client_keys):
    """Paramiko's rule: ``password`` doubles as the key passphrase when ``passphrase`` is None."""
    path = client_keys[("ecdsa256", "pem", True)]
    with gw_connect(testbed, key_filename=str(path), password=PASSPHRASE) as c:
        assert c.get_transport().is_authenticated()


def test_key_filename_list_skips_unusable_files(testbed, client_keys, tmp_path):
    junk = tmp_path / "not-a-key"
    junk.write_text("hello\n")
    good = client_keys[("ed25519", "openssh", False)]
    with gw_connect(testbed, key_filename=[str(tmp_path / "missing"), str(junk), str(good)]) as c:
        assert c.get_transport().is_authenticated()


def test_encrypted_key_without_passphrase(testbed, client_keys):
    path = client_keys[("ed25519", "openssh", True)]
    c = make_client(testbed.known_hosts)
    with pytest.raises(PasswordRequiredException) as ei:
        gw_connect(testbed, c, key_filename=str(path))
    msg = str(ei.value)
    assert str(path) in msg and "encrypted" in msg
    assert f"{testbed.user}@{testbed.gateway.address}:{testbed.gateway.port}" in msg
    assert c.get_transport() is None


def test_wrong_passphrase(testbed, client_keys):
    path = client_keys[("rsa2048", "openssh", True)]
    with pytest.raises(SSHException, match="passphrase"):
        gw_connect(testbed, key_filename=str(path), passphrase="nope")


def test_unauthorized_key_names_methods_tried(testbed, tmp_path, openssh_tools):
    stranger = keygen(tmp_path / "stranger", "ed25519", ssh_keygen=openssh_tools["ssh-keygen"])
    other = keygen(tmp_path / "other", "ecdsa", 256, ssh_keygen=openssh_tools["ssh-keygen"])
    c = make_client(testbed.known_hosts)
    with pytest.raises(AuthenticationException) as ei:
        gw_connect(testbed, c, key_filename=[str(stranger), str(other)])
    e = ei.value
    assert type(e) is AuthenticationException
    gw = testbed.gateway
    assert f"Authentication failed for {testbed.user}@{gw.address}:{gw.port}" in str(e)
    assert "tried: publickey (2 keys)" in str(e)
    assert e.phase == "auth" and e.tried == {"publickey": 2}
    assert c.get_transport() is None


def test_password_refused_keeps_bad_authentication_type(testbed, tmp_path, openssh_tools):
    """The gateway only takes publickey: the password attempt's BadAuthenticationType comes
    through (as upstream), its message naming everything tried."""
    stranger = keygen(tmp_path / "stranger", "ed25519", ssh_keygen=openssh_tools["ssh-keygen"])
    with pytest.raises(BadAuthenticationType) as ei:
        gw_connect(testbed, key_filename=str(stranger), password="whatever")
    e = ei.value
    assert e.allowed_types == ["publickey"]
    assert "tried: publickey (1 key), password" in str(e)


def test_nothing_to_try(testbed):
    with pytest.raises(SSHException, match="No authentication methods available") as ei:
        gw_connect(testbed)
    assert not isinstance(ei.value, AuthenticationException)


def test_look_for_keys_in_home(testbed, client_keys, tmp_path, monkeypatch):
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    shutil.copyfile(client_keys[("ecdsa384", "openssh", False)], ssh_dir / "id_ecdsa")
    (ssh_dir / "id_ecdsa").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    with gw_connect(testbed, look_for_keys=True) as c:
        assert c.get_transport().is_authenticated()


def test_agent_keys(testbed, client_keys, tmp_path, monkeypatch):
    agent_bin = shutil.which("ssh-agent")
    add_bin = shutil.which("ssh-add")
    if not agent_bin or not add_bin:
        pytest.skip("ssh-agent/ssh-add not installed")
    sock_path = tmp_path / "agent.sock"
    proc = subprocess.Popen([agent_bin, "-D", "-a", str(sock_path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not sock_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env = dict(os.environ, SSH_AUTH_SOCK=str(sock_path))
        subprocess.run([add_bin, str(client_keys[("rsa2048", "openssh", False)])], env=env,
                       check=True, capture_output=True, timeout=30)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock_path))
        mark = testbed.gateway.sshd.log_mark()
        with gw_connect(testbed, allow_agent=True) as c:
            assert c.get_transport().is_authenticated()
        counts = testbed.gateway.sshd.wait_counts(lambda k: k.login_count >= 1, mark)
        assert counts.logins[0][0] == "publickey"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# host keys and policies
# ---------------------------------------------------------------------------------------------


def test_reject_policy_is_default(testbed, tmp_path):
    c = SSHClient()
    assert isinstance(c._policy, RejectPolicy)
    with pytest.raises(SSHException, match="not found in known_hosts") as ei:
        gw_connect(testbed, c, key_filename=str(testbed.identity))
    assert ei.value.phase == "hostkey"
    assert testbed.gateway.address in str(ei.value)
    assert c.get_transport() is None


def test_auto_add_policy_saves_to_loaded_file(testbed, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("# my hosts\n")
    c = SSHClient()
    c.load_host_keys(str(kh))
    c.set_missing_host_key_policy(AutoAddPolicy)  # a class is instantiated
    with gw_connect(testbed, c, key_filename=str(testbed.identity)):
        pass
    text = kh.read_text()
    assert text.startswith("# my hosts\n")
    name = testbed.gateway.known_hosts_name()
    served = c.get_host_keys().lookup(name)
    assert served is not None and len(served) == 1
    (keytype, key), = served.items()
    assert f"{name} {keytype} {key.get_base64()}" in text
    assert gw_host_key_lines(testbed)[keytype] == f"{keytype} {key.get_base64()}"
    # The saved file is now enough for the strict default policy.
    c2 = SSHClient()
    c2.load_host_keys(str(kh))
    with gw_connect(testbed, c2, key_filename=str(testbed.identity)) as c2:
        assert c2.get_transport().get_remote_server_key() == key


def test_warning_policy_accepts_without_saving(testbed, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    c = SSHClient()
    c.load_host_keys(str(kh))
    c.set_missing_host_key_policy(WarningPolicy())
    with pytest.warns(UserWarning, match="Unknown .* host key for"):
        gw_connect(testbed, c, key_filename=str(testbed.identity))
    c.close()
    assert kh.read_text() == ""


def test_custom_policy_sees_lookup_name(testbed):
    seen = []

    class Record(MissingHostKeyPolicy):
        def missing_host_key(self, client, hostname, key):
            seen.append((client, hostname, key.get_name()))

    c = SSHClient()
    c.set_missing_host_key_policy(Record())
    with gw_connect(testbed, c, key_filename=str(testbed.identity)):
        pass
    gw = testbed.gateway
    want = gw.address if gw.port == 22 else f"[{gw.address}]:{gw.port}"
    assert seen == [(c, want, seen[0][2])]


def test_changed_host_key(testbed, tmp_path):
    impostor = Ed25519Key.from_private_key_file(str(testbed.identity))
    name = testbed.gateway.known_hosts_name()
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{name} ssh-ed25519 {impostor.get_base64()}\n")
    c = SSHClient()
    c.load_host_keys(str(kh))
    c.set_missing_host_key_policy(AutoAddPolicy())  # must not matter: the host is known
    with pytest.raises(BadHostKeyException) as ei:
        gw_connect(testbed, c, key_filename=str(testbed.identity))
    e = ei.value
    assert e.hostname == name and e.expected_key == impostor
    assert e.key.get_name() == "ssh-ed25519" and e.key != impostor
    assert e.phase == "hostkey"
    assert c.get_transport() is None
    assert kh.read_text() == f"{name} ssh-ed25519 {impostor.get_base64()}\n"


@pytest.mark.parametrize("keytype", ["ssh-rsa", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"])
def test_known_key_type_is_preferred(testbed, tmp_path, keytype):
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{testbed.gateway.known_hosts_name()} {gw_host_key_lines(testbed)[keytype]}\n")
    with gw_connect(testbed, make_client(kh), key_filename=str(testbed.identity)) as c:
        t = c.get_transport()
        assert t.get_remote_server_key().get_name() == keytype
        if keytype == "ssh-rsa":
            assert t.host_key_type == "rsa-sha2-512"


def test_revoked_host_key(testbed, tmp_path):
    lines = gw_host_key_lines(testbed)
    kh = tmp_path / "known_hosts"
    kh.write_text(f"@revoked * {lines['ssh-ed25519']}\n")
    c = make_client(kh)
    c.set_missing_host_key_policy(AutoAddPolicy())
    with pytest.raises(BadHostKeyException) as ei:
        gw_connect(testbed, c, key_filename=str(testbed.identity))
    assert isinstance(ei.value, RevokedHostKeyException)
    assert "revoked" in str(ei.value)
    assert c.get_transport() is None
    # With another key of the host on record, that one is negotiated instead.
    kh.write_text(f"@revoked * {lines['ssh-ed25519']}\n"
                  f"{testbed.gateway.known_hosts_name()} {lines['ecdsa-sha2-nistp256']}\n")
    with gw_connect(testbed, make_client(kh), key_filename=str(testbed.identity)) as c:
        assert c.get_transport().get_remote_server_key().get_name() == "ecdsa-sha2-nistp256"


def test_sock_given_uses_callers_name_and_port(testbed, tmp_path):
    gw = testbed.gateway
    lines = gw_host_key_lines(testbed)
    kh = tmp_path / "known_hosts"
    kh.write_text("".join(f"[alias.example]:2222 {v}\n" for v in lines.values()))
    sock = socket.create_connection((gw.address, gw.port), timeout=T)
    c = make_client(kh)
    c.connect("alias.example", 2222, username=testbed.user, key_filename=str(testbed.identity),
              allow_agent=False, look_for_keys=False, sock=sock, timeout=T)
    with c:
        assert run(c, "echo via-sock")[0] == b"via-sock\n"
    # The same keys under the port-22 name do not count for port 2222.
    kh.write_text("".join(f"alias.example {v}\n" for v in lines.values()))
    sock = socket.create_connection((gw.address, gw.port), timeout=T)
    c = make_client(kh)
    with pytest.raises(SSHException, match=r"\[alias\.example\]:2222"):
        c.connect("alias.example", 2222, username=testbed.user, sock=sock, timeout=T,
                  key_filename=str(testbed.identity), allow_agent=False, look_for_keys=False)
    assert c.get_transport() is None


def test_save_host_keys_merges_loaded_file(testbed, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    c = SSHClient()
    c.load_host_keys(str(kh))
    # Another process adds a line after we loaded the file.
    lines = gw_host_key_lines(testbed)
    kh.write_text(f"other.example {lines['ssh-ed25519']}\n")
    key = Ed25519Key.from_private_key_file(str(testbed.identity))
    c.get_host_keys().add("mine.example", "ssh-ed25519", key)
    out = tmp_path / "saved"
    c.save_host_keys(str(out))
    saved = HostKeys(str(out))
    assert saved.lookup("other.example") is not None
    assert saved.lookup("mine.example")["ssh-ed25519"] == key


def test_load_system_host_keys_default_missing_is_quiet(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    c = SSHClient()
    c.load_system_host_keys()
    with pytest.raises(OSError):
        c.load_system_host_keys(str(tmp_path / "nope"))
    with pytest.raises(OSError):
        c.load_host_keys(str(tmp_path / "nope"))


def test_set_policy_rejects_non_policy():
    with pytest.raises(TypeError):
        SSHClient().set_missing_host_key_policy(object())


# ---------------------------------------------------------------------------------------------
# TCP and negotiation failures: typed, bounded, nothing left running
# ---------------------------------------------------------------------------------------------


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_closed_port_gives_no_valid_connections():
    port = free_port()
    c = SSHClient()
    with pytest.raises(NoValidConnectionsError) as ei:
        c.connect("127.0.0.1", port, username="x", password="y", timeout=5)
    e = ei.value
    assert list(e.errors) == [("127.0.0.1", port)]
    assert f"port {port} on 127.0.0.1" in str(e)
    assert isinstance(e, OSError) and not isinstance(e, SSHException)
    assert c.get_transport() is None


def test_every_address_is_tried(monkeypatch):
    """Both loopbacks refuse: both are listed (::1 only where the host has IPv6)."""
    port = free_port()
    infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
    if _ipv6_loopback():
        infos.insert(0, (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)))
    monkeypatch.setattr(paramiko.client.socket, "getaddrinfo", lambda *a, **k: infos)
    with pytest.raises(NoValidConnectionsError) as ei:
        SSHClient().connect("dual.example", port, username="x", password="y", timeout=5)
    assert set(ei.value.errors) == {info[4] for info in infos}
    for info in infos:
        assert info[4][0] in str(ei.value)


def test_resolution_failure_names_host(monkeypatch):
    def fail(*a, **k):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(paramiko.client.socket, "getaddrinfo", fail)
    with pytest.raises(socket.gaierror) as ei:
        SSHClient().connect("no-such-host.invalid", 22, username="x", password="y")
    assert "no-such-host.invalid" in str(ei.value)
    assert ei.value.phase == "resolve"


def test_tcp_connect_timeout_names_host(monkeypatch):
    closed = []

    class SlowSocket:
        def __init__(self, *a):
            pass

        def settimeout(self, t):
            self.t = t

        def connect(self, addr):
            raise socket.timeout("timed out")

        def close(self):
            closed.append(True)

    monkeypatch.setattr(paramiko.client.socket, "socket", SlowSocket)
    with pytest.raises(socket.timeout) as ei:
        SSHClient().connect("127.0.0.1", 2222, username="x", password="y", timeout=0.5)
    assert "127.0.0.1" in str(ei.value) and "0.5" in str(ei.value)
    assert ei.value.phase == "tcp-connect"
    assert closed == [True]


@pytest.fixture
def silent_listener():
    """A TCP listener that never accepts: the kernel completes the handshake, nobody talks."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def test_negotiation_timeout_raises_in_time(silent_listener):
    c = SSHClient()
    start = time.monotonic()
    with pytest.raises(SSHException) as ei:
        c.connect("127.0.0.1", silent_listener, username="x", password="y", timeout=1.0)
    elapsed = time.monotonic() - start
    assert elapsed < 4.0
    e = ei.value
    assert "No existing session" not in str(e)
    assert e.phase == "banner"
    assert f"127.0.0.1:{silent_listener}" in str(e) or e.peer == f"127.0.0.1:{silent_listener}"
    assert c.get_transport() is None


def test_banner_timeout_parameter(silent_listener):
    start = time.monotonic()
    with pytest.raises(SSHException):
        SSHClient().connect("127.0.0.1", silent_listener, username="x", password="y",
                            banner_timeout=0.5)
    assert time.monotonic() - start < 4.0


def test_garbage_server_raises_typed_error():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(b"SSH-1.5-ancient\r\n")
            time.sleep(0.5)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        with pytest.raises(SSHException) as ei:
            SSHClient().connect("127.0.0.1", port, username="x", password="y", timeout=5)
        assert ei.value.phase is not None
    finally:
        th.join(5)
        srv.close()


# ---------------------------------------------------------------------------------------------
# using the connection
# ---------------------------------------------------------------------------------------------


def test_exec_command_streams_and_status(testbed):
    with gw_connect(testbed, key_filename=str(testbed.identity)) as c:
        t = c.get_transport()
        assert t.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        stdin, stdout, stderr = c.exec_command("cat; echo done >&2; exit 7", timeout=T)
        assert isinstance(stdin, paramiko.ChannelStdinFile)
        assert isinstance(stdout, paramiko.ChannelFile)
        assert isinstance(stderr, paramiko.ChannelStderrFile)
        stdin.write(b"line one\nline two\n")
        stdin.close()  # sends EOF
        assert stdout.readline() == "line one\n"
        assert stdout.read() == b"line two\n"
        assert stderr.read() == b"done\n"
        assert stdout.channel.recv_exit_status() == 7


def test_exec_command_environment_and_pty(testbed):
    with gw_connect(testbed, key_filename=str(testbed.identity)) as c:
        _, out, _ = c.exec_command('printf "%s" "$LC_FGW_TEST"; [ -t 0 ] && echo " tty"',
                                   environment={"LC_FGW_TEST": "hello env"}, get_pty=True,
                                   timeout=T)
        assert out.read().strip() == b"hello env tty"


def test_exec_command_timeout(testbed):
    with gw_connect(testbed, key_filename=str(testbed.identity)) as c:
        _, out, _ = c.exec_command("sleep 5", timeout=0.3)
        start = time.monotonic()
        with pytest.raises(socket.timeout):
            out.read()
        assert time.monotonic() - start < 3


def test_invoke_shell_with_environment(testbed):
    with gw_connect(testbed, key_filename=str(testbed.identity)) as c:
        chan = c.invoke_shell(term="xterm", width=100, height=30,
                              environment={"LC_FGW_SHELL": "shell-env-ok"})
        chan.settimeout(T)
        chan.sendall(b'echo "V=$LC_FGW_SHELL"; stty size; exit\n')
        buf = b""
        deadline = time.monotonic() + T
        while time.monotonic() < deadline:
            data = chan.recv(4096)
            if not data:
                break
            buf += data
        assert b"V=shell-env-ok" in buf
        assert b"30 100" in buf


def test_refused_environment_variable_raises_and_closes_channel(testbed):
    with gw_connect(testbed, key_filename=str(testbed.identity)) as c:
        with pytest.raises(SSHException, match="NOT_ACCEPTED"):
            c.exec_command("true", environment={"NOT_ACCEPTED": "x"}, timeout=T)
        # The connection is still usable.
        assert run(c, "echo still")[0] == b"still\n"


def test_not_connected_errors():
    c = SSHClient()
    assert c.get_transport() is None
    with pytest.raises(SSHException, match="not connected"):
        c.exec_command("true")
    with pytest.raises(SSHException, match="not connected"):
        c.invoke_shell()
    c.close()  # harmless


def test_open_sftp(testbed):
    with gw_connect(testbed, key_filename=str(testbed.identity)) as c:
        try:
            import paramiko.sftp_client  # noqa: F401
        except ImportError:
            with pytest.raises(SSHException, match="SFTP is not available"):
                c.open_sftp()
        else:
            sftp = c.open_sftp()
            try:
                assert sftp.listdir(".") is not None
            finally:
                sftp.close()


def test_context_manager_closes(testbed):
    with gw_connect(testbed, key_filename=str(testbed.identity)) as c:
        t = c.get_transport()
        assert t.is_active() and t.is_alive()
    assert not t.is_active()
    t.join(5)
    assert not t.is_alive()
    assert c.get_transport() is None


def test_transport_factory_call_shape_and_settings(testbed):
    made = []

    def factory(sock, disabled_algorithms=None):
        t = paramiko.Transport(sock, disabled_algorithms=disabled_algorithms)
        made.append((sock, disabled_algorithms, t))
        return t

    disabled = {"ciphers": ["chacha20-poly1305@openssh.com"]}
    with gw_connect(testbed, key_filename=str(testbed.identity), transport_factory=factory,
                    disabled_algorithms=disabled, compress=True, banner_timeout=7,
                    auth_timeout=8, channel_timeout=9) as c:
        (sock, dis, t), = made
        assert c.get_transport() is t and isinstance(sock, socket.socket)
        assert dis == disabled
        assert t.local_cipher != "chacha20-poly1305@openssh.com"
        assert (t.banner_timeout, t.auth_timeout, t.channel_timeout) == (7, 8, 9)
        assert t.get_security_options().compression[0].startswith("zlib")


def test_second_connect_closes_the_first(testbed):
    c = gw_connect(testbed, key_filename=str(testbed.identity))
    first = c.get_transport()
    gw_connect(testbed, c, key_filename=str(testbed.identity))
    assert not first.is_active() and c.get_transport() is not first
    c.close()


# ---------------------------------------------------------------------------------------------
# the auth bed: password, keyboard-interactive (PAM), certificates
# ---------------------------------------------------------------------------------------------


def bed_connect(auth_bed, tmp_path, client: Optional[SSHClient] = None, **kw) -> SSHClient:
    c = client
    if c is None:
        c = SSHClient()
        c.load_system_host_keys(str(auth_bed.write_known_hosts(tmp_path / "kh_bed")))
    kw.setdefault("username", auth_bed.user)
    kw.setdefault("allow_agent", False)
    kw.setdefault("look_for_keys", False)
    kw.setdefault("timeout", T)
    c.connect(auth_bed.host, auth_bed.port, **kw)
    return c


def test_password(auth_bed, tmp_path):
    mark = auth_bed.sshd.log_mark()
    with bed_connect(auth_bed, tmp_path, password=auth_bed.password) as c:
        assert run(c, "id -un")[0].decode().strip() == auth_bed.user
    counts = auth_bed.sshd.wait_counts(lambda k: k.login_count >= 1, mark)
    assert [m for m, _u, _s in counts.logins] == ["password"]


class PasswordRefusingTransport(paramiko.Transport):
    """Acts as if the server listed only keyboard-interactive (a common PAM setup)."""

    def auth_password(self, username, password, event=None, fallback=True):
        raise BadAuthenticationType("Bad authentication type",
                                    ["publickey", "keyboard-interactive"])


def test_keyboard_interactive_answered_with_password(auth_bed, tmp_path):
    mark = auth_bed.sshd.log_mark()
    with bed_connect(auth_bed, tmp_path, password=auth_bed.password,
                     transport_factory=PasswordRefusingTransport) as c:
        assert c.get_transport().is_authenticated()
    counts = auth_bed.sshd.wait_counts(lambda k: k.login_count >= 1, mark)
    assert [m for m, _u, _s in counts.logins] == ["keyboard-interactive/pam"]


def test_wrong_password_names_methods(auth_bed, tmp_path, openssh_tools):
    stranger = keygen(tmp_path / "stranger", "ed25519", ssh_keygen=openssh_tools["ssh-keygen"])
    c = SSHClient()
    c.load_system_host_keys(str(auth_bed.write_known_hosts(tmp_path / "kh")))
    with pytest.raises(AuthenticationException) as ei:
        bed_connect(auth_bed, tmp_path, c, key_filename=str(stranger), password="wrong-pw")
    e = ei.value
    assert type(e) is AuthenticationException
    assert (f"Authentication failed for {auth_bed.user}@{auth_bed.host}:{auth_bed.port} "
            f"(tried: publickey (1 key), password)") in str(e)
    assert c.get_transport() is None


def test_user_certificate(auth_bed, tmp_path, openssh_tools):
    key = keygen(tmp_path / "id_cert_user", "ecdsa", 256, ssh_keygen=openssh_tools["ssh-keygen"])
    auth_bed.sign_user_key(key)  # not in authorized_keys: only the certificate can work
    mark = auth_bed.sshd.log_mark()
    with bed_connect(auth_bed, tmp_path, key_filename=str(key)) as c:
        assert c.get_transport().is_authenticated()
    counts = auth_bed.sshd.wait_counts(lambda k: k.login_count >= 1, mark)
    assert counts.logins[0][0] == "publickey"
    accepted = [line for line in auth_bed.sshd.log_text()[mark:].splitlines()
                if line.startswith("Accepted publickey")]
    assert "ECDSA-CERT" in accepted[0] and "ID test-user" in accepted[0]


def test_host_certificate_trusted_by_ca(auth_bed, tmp_path):
    kh = auth_bed.write_known_hosts(tmp_path / "kh_ca", with_ca=True, keys=False)
    c = SSHClient()  # RejectPolicy: only the CA can vouch for the host
    c.load_host_keys(str(kh))
    with bed_connect(auth_bed, tmp_path, c, password=auth_bed.password) as c:
        t = c.get_transport()
        assert t.host_key_type == "ssh-ed25519-cert-v01@openssh.com"
        assert t.get_remote_server_key().public_blob is not None
    assert "@cert-authority" in kh.read_text()


def test_host_certificate_from_untrusted_ca(auth_bed, tmp_path):
    # A CA line with the wrong CA (the user CA) for this host.
    name = f"[{auth_bed.host}]:{auth_bed.port}"
    kh = tmp_path / "kh_bad_ca"
    kh.write_text(f"@cert-authority {name} {public_line(auth_bed.user_ca)}\n")
    c = SSHClient()
    c.load_host_keys(str(kh))
    with pytest.raises(BadHostKeyException) as ei:
        bed_connect(auth_bed, tmp_path, c, password=auth_bed.password)
    assert "CA" in str(ei.value)
    assert c.get_transport() is None


def test_host_certificate_without_ca_falls_back_to_plain_key(auth_bed, tmp_path):
    with bed_connect(auth_bed, tmp_path, password=auth_bed.password) as c:
        assert c.get_transport().host_key_type == "ssh-ed25519"


@pytest.fixture(scope="module")
def two_factor_sshd(auth_bed, keystore, openssh_tools, tmp_path_factory):
    """An sshd for the auth bed's user that wants a key AND then a password (or PAM)."""
    port = free_port()
    sshd = Sshd("twofactor", tmp_path_factory.mktemp("twofactor"), openssh_tools["sshd"],
                openssh_tools["sftp-server"], keystore.host_keys("twofactor"),
                Path("%h/.ssh/authorized_keys"), [("127.0.0.1", port)],
                overrides={"UsePAM": "yes", "PasswordAuthentication": "yes",
                           "KbdInteractiveAuthentication": "yes",
                           "AuthorizedKeysFile": ".ssh/authorized_keys"},
                extra_config=["AuthenticationMethods publickey,password",
                              f"AllowUsers {auth_bed.user}"])
    sshd.start()
    yield sshd, port
    sshd.stop()


def test_two_factor_key_then_password(auth_bed, two_factor_sshd, tmp_path, openssh_tools):
    sshd, port = two_factor_sshd
    key = keygen(tmp_path / "id_2fa", "ed25519", ssh_keygen=openssh_tools["ssh-keygen"])
    auth_bed.authorize(public_line(key))
    c = SSHClient()
    c.set_missing_host_key_policy(AutoAddPolicy())
    mark = sshd.log_mark()
    c.connect("127.0.0.1", port, username=auth_bed.user, key_filename=str(key),
              password=auth_bed.password, allow_agent=False, look_for_keys=False, timeout=T)
    with c:
        assert run(c, "echo 2fa")[0] == b"2fa\n"
    counts = sshd.wait_counts(lambda k: k.login_count >= 1, mark)
    assert counts.logins[0][0] == "password"
    assert "Partial publickey" in sshd.log_text()[mark:]
    # Without the password the key alone is not enough, and the error says so.
    c = SSHClient()
    c.set_missing_host_key_policy(AutoAddPolicy())
    with pytest.raises(AuthenticationException, match=r"tried: publickey \(1 key\)"):
        c.connect("127.0.0.1", port, username=auth_bed.user, key_filename=str(key),
                  allow_agent=False, look_for_keys=False, timeout=T)
    assert c.get_transport() is None


# ---------------------------------------------------------------------------------------------
# scripted transport: authentication decisions in isolation (no network)
# ---------------------------------------------------------------------------------------------


class ScriptedTransport:
    """Just enough of Transport for SSHClient; auth answers come from ``script``."""

    host_key: PKey = None  # set per test
    script: Dict[str, object] = {}

    def __init__(self, sock, disabled_algorithms=None):
        self.sock = sock
        self.calls: List[Tuple[str, str]] = []
        self.active = True
        self.authenticated = False
        self.closed = False
        self.peer_name = "?"

    def use_compression(self, compress=True):
        pass

    def start_client(self, event=None, timeout=None):
        pass

    def get_remote_server_key(self):
        return self.host_key

    def is_active(self):
        return self.active

    def is_authenticated(self):
        return self.authenticated

    def _answer(self, method, detail):
        self.calls.append((method, detail))
        outcome = self.script.get(method)
        if callable(outcome):
            outcome = outcome(self, detail)
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome == []:
            self.authenticated = True
        return outcome

    def auth_publickey(self, username, key):
        return self._answer("publickey", key.get_name())

    def auth_password(self, username, password, event=None, fallback=True):
        self.last_user = username
        return self._answer("password", password)

    def auth_interactive(self, username, handler, submethods=""):
        return self._answer("keyboard-interactive", handler("", "", [("Password: ", False)])[0])

    def close(self):
        self.closed = True
        self.active = False


@pytest.fixture
def scripted(testbed):
    key = Ed25519Key.from_private_key_file(str(testbed.identity))
    made: List[ScriptedTransport] = []

    def connect(script, **kw):
        ScriptedTransport.host_key = key
        ScriptedTransport.script = script
        c = SSHClient()
        c.get_host_keys().add("scripted.example", key.get_name(), key)

        def factory(sock, disabled_algorithms=None):
            t = ScriptedTransport(sock, disabled_algorithms)
            made.append(t)
            return t

        kw.setdefault("allow_agent", False)
        kw.setdefault("look_for_keys", False)
        kw.setdefault("username", "u")
        c.connect("scripted.example", sock=object(), transport_factory=factory, **kw)
        return c, made[-1]

    return connect, key


def test_scripted_second_factor_by_keyboard_interactive(scripted):
    connect, key = scripted
    c, t = connect({"publickey": ["keyboard-interactive"], "keyboard-interactive": []},
                   pkey=key, password="pw")
    assert t.calls == [("publickey", "ssh-ed25519"), ("keyboard-interactive", "pw")]
    assert c.get_transport() is t


def test_scripted_publickey_not_allowed_skips_remaining_keys(scripted, client_keys):
    connect, key = scripted
    refuse = BadAuthenticationType("Bad authentication type", ["password"])
    with pytest.raises(AuthenticationException) as ei:
        connect({"publickey": refuse, "password": AuthenticationException("Authentication "
                                                                           "failed.")},
                pkey=key, key_filename=[str(client_keys[("rsa2048", "pem", False)])],
                password="pw")
    assert "tried: publickey (1 key), password" in str(ei.value)
    assert ei.value.tried == {"publickey": 1, "password": 1}


def test_scripted_dead_transport_stops_trying(scripted, client_keys):
    connect, key = scripted

    def die(t, detail):
        t.active = False
        err = SSHException("connection closed by peer")
        err.phase = "auth"
        return err

    with pytest.raises(SSHException, match="connection closed by peer") as ei:
        connect({"publickey": die}, pkey=key, password="pw",
                key_filename=[str(client_keys[("rsa2048", "pem", False)])])
    assert "tried: publickey (1 key)" in str(ei.value)
    assert "password" not in str(ei.value)


def test_scripted_same_key_offered_once(scripted, testbed):
    connect, key = scripted
    with pytest.raises(AuthenticationException, match=r"publickey \(1 key\)"):
        connect({"publickey": AuthenticationException("Authentication failed.")},
                pkey=key, key_filename=[str(testbed.identity)])


def test_scripted_failed_connect_closes_transport(scripted):
    connect, key = scripted
    holder = []

    def fail(t, detail):
        holder.append(t)
        return AuthenticationException("Authentication failed.")

    with pytest.raises(AuthenticationException):
        connect({"password": fail}, password="pw")
    assert holder[0].closed


def test_scripted_username_defaults_to_local_user(scripted, monkeypatch):
    connect, key = scripted
    monkeypatch.setattr(paramiko.client.getpass, "getuser", lambda: "local-me")
    c, t = connect({"password": []}, username=None, password="pw")
    assert t.last_user == "local-me"


def test_log_channel_reaches_transport(testbed):
    c = SSHClient()
    c.load_system_host_keys(str(testbed.known_hosts))
    c.set_log_channel("fgw.test.client")
    with gw_connect(testbed, c, key_filename=str(testbed.identity)):
        assert c.get_transport().get_log_channel() == "fgw.test.client"


def test_scripted_silent_negotiation_timeout_is_reported(scripted, monkeypatch):
    """A transport that returns from start_client without a session (upstream's habit on a
    timeout) is reported as an incomplete negotiation, not 'No existing session'."""
    connect, key = scripted

    def no_session(self):
        raise SSHException("No existing session")

    monkeypatch.setattr(ScriptedTransport, "get_remote_server_key", no_session)
    with pytest.raises(SSHException, match="did not complete") as ei:
        connect({}, password="pw")
    assert ei.value.phase == "kex"
