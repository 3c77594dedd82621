"""``paramiko.agent`` against a real OpenSSH ``ssh-agent``, ``sshd`` and ``ssh -A``.

* the agent client: identities, fingerprints and signatures (checked with our key classes);
* publickey authentication to the bed's gateway sshd with agent keys;
* forwarding, client side (our client -> OpenSSH sshd, remote ``ssh-add``/``ssh-keygen``),
  in-process (our client <-> our server), and server side (``ssh -A`` -> our server);
* failures: no agent, dead agent, garbage replies, refused forwarding: typed errors, no hang,
  no thread, fd, process or socket left behind.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

import paramiko
from paramiko._core.hostkey import key_from_blob
from paramiko.agent import (
    SSH2_AGENT_IDENTITIES_ANSWER,
    SSH2_AGENT_SIGN_RESPONSE,
    SSH_AGENT_FAILURE,
    Agent,
    AgentClientProxy,
    AgentKey,
    AgentRequestHandler,
    AgentServerProxy,
)
from paramiko.message import Message
from paramiko.ssh_exception import SSHException
from tests.support.interop import run_command, start_client, tcp_connect
from tests.support.loopserver import PASSWORD, USER, LoopServer, make_pair
from tests.testbed.keys import keygen
from tests.testbed.prereq import require
from tests.testbed.sshd import pid_alive

DATA = b"data to be signed by the agent"


# ---------------------------------------------------------------------------------------------
# helpers and fixtures
# ---------------------------------------------------------------------------------------------


def _agent_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if "agent" in t.name and t.is_alive()]


def _fds() -> Dict[str, str]:
    """Open file descriptors -> what they point to (the listing's own fd drops out)."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return out


@pytest.fixture(autouse=True)
def no_agent_thread_left():
    """Every test must end without agent threads (they get a short grace period)."""
    before = set(_agent_threads())
    yield
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and set(_agent_threads()) - before:
        time.sleep(0.05)
    left = set(_agent_threads()) - before
    assert not left, f"agent threads left running: {sorted(t.name for t in left)}"


@pytest.fixture
def fd_guard():
    """Assert that the test leaves no file descriptor open (checked after the test)."""
    before = _fds()
    yield
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and len(_fds()) > len(before):
        time.sleep(0.05)
    after = _fds()
    assert len(after) <= len(before), {k: v for k, v in after.items() if before.get(k) != v}


@dataclass
class AgentKeyFile:
    name: str  # our label
    path: Path  # private key
    key_type: str
    blob: bytes  # public key (or certificate) blob
    comment: str
    fingerprint: str  # as ssh-keygen -l prints it
    bits: int


@dataclass
class RealAgent:
    sock: str
    proc: subprocess.Popen
    keys: Dict[str, AgentKeyFile] = field(default_factory=dict)

    def env(self) -> Dict[str, str]:
        return {**os.environ, "SSH_AUTH_SOCK": self.sock}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        assert not pid_alive(self.proc.pid)
        assert not os.path.exists(self.sock), "ssh-agent left its socket behind"


def _ssh_keygen_fingerprint(pub: Path) -> Tuple[int, str]:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], check=True,
                         capture_output=True, text=True, timeout=30).stdout.split()
    return int(out[0]), out[1]


def _public_entry(label: str, path: Path, pub: Path, comment: str) -> AgentKeyFile:
    key_type, b64 = pub.read_text().split()[:2]
    bits, fp = _ssh_keygen_fingerprint(pub)
    return AgentKeyFile(label, path, key_type, base64.b64decode(b64), comment, fp, bits)


def start_ssh_agent(directory: Path) -> RealAgent:
    require(subprocess.run(["which", "ssh-agent"], capture_output=True).returncode == 0,
            "ssh-agent is not installed")
    sock = str(directory / f"agent.{os.getpid()}.{time.monotonic_ns() % 100000}")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    agent = RealAgent(sock, proc)
    # The socket file appears at bind(), before listen(): wait until a connect succeeds.
    deadline = time.monotonic() + 10
    while not _accepts_connections(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            agent.stop()
            raise RuntimeError("ssh-agent did not start listening")
        time.sleep(0.02)
    return agent


def _accepts_connections(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


def ssh_add(agent: RealAgent, *paths: Path) -> None:
    subprocess.run(["ssh-add", *map(str, paths)], env=agent.env(), check=True,
                   capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def key_files(tmp_path_factory) -> Dict[str, AgentKeyFile]:
    """ed25519, ecdsa and rsa keys, plus an OpenSSH certificate of the rsa key."""
    d = tmp_path_factory.mktemp("agent-keys")
    out: Dict[str, AgentKeyFile] = {}
    for label, ktype, bits in (("ed25519", "ed25519", None), ("ecdsa", "ecdsa", 256),
                               ("rsa", "rsa", 2048)):
        p = keygen(d / f"id_{label}", ktype, bits, comment=f"agent-test-{label}")
        out[label] = _public_entry(label, p, Path(f"{p}.pub"), f"agent-test-{label}")
    ca = keygen(d / "ca", "ed25519", comment="test-ca")
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "agent-test-cert", "-n", "nobody",
                    "-V", "+1h", str(out["rsa"].path) + ".pub"], check=True,
                   capture_output=True, timeout=30)
    cert_pub = Path(f"{out['rsa'].path}-cert.pub")
    out["rsa-cert"] = _public_entry("rsa-cert", out["rsa"].path, cert_pub, "agent-test-rsa")
    return out


@pytest.fixture(scope="module")
def real_agent(tmp_path_factory, key_files) -> RealAgent:
    """A real ssh-agent holding every key (ssh-add loads the rsa certificate alongside)."""
    agent = start_ssh_agent(tmp_path_factory.mktemp("agent"))
    try:
        ssh_add(agent, key_files["ed25519"].path, key_files["ecdsa"].path,
                key_files["rsa"].path)
        yield agent
    finally:
        agent.stop()


@pytest.fixture
def agent_env(monkeypatch, real_agent) -> RealAgent:
    monkeypatch.setenv("SSH_AUTH_SOCK", real_agent.sock)
    return real_agent


def _by_label(keys, key_files) -> Dict[str, AgentKey]:
    blobs = {kf.blob: label for label, kf in key_files.items()}
    return {blobs[k.asbytes()]: k for k in keys}


def _assert_agent_keys(keys, key_files) -> Dict[str, AgentKey]:
    assert len(keys) == len(key_files)
    found = _by_label(keys, key_files)
    assert set(found) == set(key_files)
    return found


# ---------------------------------------------------------------------------------------------
# the agent client
# ---------------------------------------------------------------------------------------------


def test_get_keys_lists_every_identity(fd_guard, agent_env, key_files):
    with Agent() as agent:
        keys = agent.get_keys()
        assert isinstance(keys, tuple)
        found = _assert_agent_keys(keys, key_files)
        for label, key in found.items():
            kf = key_files[label]
            assert isinstance(key, AgentKey) and isinstance(key, paramiko.PKey)
            assert key.get_name() == kf.key_type
            assert key.asbytes() == kf.blob
            assert key.get_base64() == base64.b64encode(kf.blob).decode()
            assert key.fingerprint == kf.fingerprint
            assert key.get_bits() == kf.bits
            assert key.comment == kf.comment
            assert key.can_sign()
            assert len(key.get_fingerprint()) == 16
        assert found["rsa"].public_blob is None
        cert = found["rsa-cert"]
        assert cert.get_name() == "ssh-rsa-cert-v01@openssh.com"
        assert cert.public_blob.key_type == cert.get_name()
        assert cert.public_blob.key_blob == key_files["rsa-cert"].blob
        # ssh-add -l shows a certificate with its key's fingerprint, and so do we.
        assert cert.fingerprint == found["rsa"].fingerprint
        assert cert.get_fingerprint() == found["rsa"].get_fingerprint()
        assert found["ecdsa"].algorithm_name == "ECDSA"
    assert agent.get_keys() == ()


def test_fingerprints_match_ssh_add(agent_env, key_files):
    listing = subprocess.run(["ssh-add", "-l"], env=agent_env.env(), capture_output=True,
                             text=True, timeout=30).stdout
    with Agent() as agent:
        for key in agent.get_keys():
            assert key.fingerprint in listing


SIGN_CASES = [
    ("ed25519", None, "ssh-ed25519"),
    ("ed25519", "ssh-ed25519", "ssh-ed25519"),
    ("ecdsa", None, "ecdsa-sha2-nistp256"),
    ("rsa", None, "rsa-sha2-512"),
    ("rsa", "rsa-sha2-512", "rsa-sha2-512"),
    ("rsa", "rsa-sha2-256", "rsa-sha2-256"),
    ("rsa", "ssh-rsa", "ssh-rsa"),
    ("rsa-cert", "rsa-sha2-256-cert-v01@openssh.com", "rsa-sha2-256"),
    ("rsa-cert", "rsa-sha2-512", "rsa-sha2-512"),
]


@pytest.mark.parametrize("label,algorithm,expected", SIGN_CASES)
def test_agent_signatures_verify_with_our_key_classes(agent_env, key_files, label, algorithm,
                                                      expected):
    with Agent() as agent:
        key = _by_label(agent.get_keys(), key_files)[label]
        sig = key.sign_ssh_data(DATA, algorithm)
        assert isinstance(sig, bytes)
        m = Message(sig)
        assert m.get_text() == expected
        # Verify with a key object parsed from the .pub file, not with the agent key.
        plain = key_files["rsa" if label == "rsa-cert" else label]
        verifier = key_from_blob(plain.blob)
        assert verifier.verify_ssh_sig(DATA, Message(sig))
        assert not verifier.verify_ssh_sig(DATA + b"!", Message(sig))
        assert key.verify_ssh_sig(DATA, sig)


def test_impossible_algorithm_is_refused_before_asking(agent_env, key_files):
    with Agent() as agent:
        found = _by_label(agent.get_keys(), key_files)
        with pytest.raises(SSHException, match="cannot sign with 'rsa-sha2-512'"):
            found["ed25519"].sign_ssh_data(DATA, "rsa-sha2-512")
        with pytest.raises(SSHException, match="cannot sign with 'ssh-ed25519'"):
            found["rsa"].sign_ssh_data(DATA, "ssh-ed25519")


def test_no_agent_configured_means_no_keys(fd_guard, monkeypatch, tmp_path):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    assert Agent().get_keys() == ()
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "missing.sock"))
    assert Agent().get_keys() == ()
    regular = tmp_path / "file"
    regular.write_text("not a socket")
    assert Agent(str(regular)).get_keys() == ()
    # A stale socket file whose agent is gone: connection refused.
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()
    t0 = time.monotonic()
    assert Agent(str(stale)).get_keys() == ()
    assert time.monotonic() - t0 < 2


def test_agent_killed_after_connect_gives_clean_error(fd_guard, tmp_path, key_files):
    agent_proc = start_ssh_agent(tmp_path)
    try:
        ssh_add(agent_proc, key_files["ed25519"].path)
        agent = Agent(agent_proc.sock, timeout=5)
        (key,) = agent.get_keys()
        key.sign_ssh_data(DATA)
    finally:
        agent_proc.stop()
    t0 = time.monotonic()
    with pytest.raises(SSHException, match="closed the connection|lost the connection"):
        key.sign_ssh_data(DATA)
    assert time.monotonic() - t0 < 2
    # The broken connection was dropped: later requests fail at once, no resend on garbage.
    with pytest.raises(SSHException, match="not connected"):
        key.sign_ssh_data(DATA)
    agent.close()


# -- a scripted fake agent for the garbage cases ------------------------------------------------

STALL = object()  # do not answer at all
CLOSE = object()  # close the connection instead of answering


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _identities(*blobs: bytes, count: Optional[int] = None) -> bytes:
    m = Message()
    m.add_byte(bytes((SSH2_AGENT_IDENTITIES_ANSWER,)))
    m.add_int(len(blobs) if count is None else count)
    for b in blobs:
        m.add_string(b)
        m.add_string("fake")
    return _frame(m.asbytes())


def _sign_response(sig_blob: bytes) -> bytes:
    m = Message()
    m.add_byte(bytes((SSH2_AGENT_SIGN_RESPONSE,)))
    m.add_string(sig_blob)
    return _frame(m.asbytes())


def _sig_blob(name: str, sig: bytes = b"\x01" * 64) -> bytes:
    return Message().add_string(name).add_string(sig).asbytes()


class FakeAgent:
    """Answers the n-th request on a connection with ``script[n]`` (bytes, STALL or CLOSE)."""

    def __init__(self, directory: Path, script: List[object]) -> None:
        self.path = str(directory / "fake.sock")
        self.script = script
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(4)
        self.listener.settimeout(0.1)
        self.halt = threading.Event()
        self.requests: List[bytes] = []
        self.thread = threading.Thread(target=self._serve, name="fake-agent-server", daemon=True)
        self.thread.start()

    def _recv_request(self, conn: socket.socket) -> Optional[bytes]:
        buf = b""
        while not self.halt.is_set():
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return None
            buf += data
            if len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                return buf
        return None

    def _serve(self) -> None:
        while not self.halt.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(0.1)
            with conn:
                for step in self.script:
                    req = self._recv_request(conn)
                    if req is None:
                        break
                    self.requests.append(req)
                    if step is CLOSE:
                        break
                    if step is STALL:
                        self.halt.wait()
                        break
                    conn.sendall(step)

    def close(self) -> None:
        self.halt.set()
        self.thread.join(5)
        self.listener.close()
        os.unlink(self.path)


@pytest.fixture
def fake_agent(tmp_path):
    agents: List[FakeAgent] = []

    def make(script: List[object]) -> FakeAgent:
        agents.append(FakeAgent(tmp_path, script))
        return agents[-1]

    yield make
    for a in agents:
        a.close()


ED_BLOB = (Message().add_string("ssh-ed25519").add_string(b"\x11" * 32)).asbytes()
RSA_BLOB = Message().add_string("ssh-rsa").add_mpint(65537).add_mpint((1 << 2047) + 1).asbytes()

GARBAGE_IDENTITIES = {
    "failure": (_frame(bytes((SSH_AGENT_FAILURE,))), "could not get keys.*SSH_AGENT_FAILURE"),
    "wrong type": (_frame(b"\x63hello"), "unexpected message type 99"),
    "truncated": (_identities(ED_BLOB, count=3), "malformed identities answer"),
    "absurd count": (_identities(ED_BLOB, count=0xFFFFFFFF), "malformed identities answer"),
    "trailing": (_frame(_identities(ED_BLOB)[4:] + b"junk"), "trailing bytes"),
    "empty blob": (_identities(b""), "malformed identities answer"),
    "oversized": (b"\xff\xff\xff\xff", "more than the 262144 allowed"),
    "empty reply": (b"\x00\x00\x00\x00", "empty reply"),
    "cut short": (b"\x00\x00\x01\x00\x0c\x00", "closed the connection in the middle"),
    "closed": (CLOSE, "closed the connection"),
}


@pytest.mark.parametrize("case", sorted(GARBAGE_IDENTITIES))
def test_garbage_identities_answer_is_an_ssh_exception(fd_guard, fake_agent, case):
    reply, pattern = GARBAGE_IDENTITIES[case]
    fake = fake_agent([reply])
    t0 = time.monotonic()
    with pytest.raises(SSHException, match=pattern):
        Agent(fake.path, timeout=5)
    assert time.monotonic() - t0 < 2


def test_silent_agent_times_out(fd_guard, fake_agent):
    fake = fake_agent([STALL])
    t0 = time.monotonic()
    with pytest.raises(SSHException, match="did not answer within 0.3s"):
        Agent(fake.path, timeout=0.3)
    assert time.monotonic() - t0 < 2


def test_unknown_key_types_are_listed_opaque(fake_agent):
    blob = Message().add_string("sk-ssh-ed25519@openssh.com").add_string(b"\x11" * 32)
    blob.add_string("ssh:")
    fake = fake_agent([_identities(blob.asbytes()),
                       _sign_response(_sig_blob("sk-ssh-ed25519@openssh.com"))])
    with Agent(fake.path, timeout=5) as agent:
        (key,) = agent.get_keys()
        assert key.get_name() == "sk-ssh-ed25519@openssh.com"
        assert key.inner_key is None and key.get_bits() == 0
        assert key.fingerprint.startswith("SHA256:")
        assert Message(key.sign_ssh_data(DATA)).get_text() == "sk-ssh-ed25519@openssh.com"


SIGN_GARBAGE = {
    "refused": (ED_BLOB, None, _frame(bytes((SSH_AGENT_FAILURE,))), "refused to sign"),
    "sha1 for sha2": (RSA_BLOB, "rsa-sha2-512", _sign_response(_sig_blob("ssh-rsa")),
                      "signed with 'ssh-rsa' instead of the requested 'rsa-sha2-512'"),
    "other hash": (RSA_BLOB, "rsa-sha2-256", _sign_response(_sig_blob("rsa-sha2-512")),
                   "instead of the requested 'rsa-sha2-256'"),
    "not a blob": (ED_BLOB, None, _sign_response(b"\x00\x00\x00\x09ssh"),
                   "malformed sign response"),
    "trailing": (ED_BLOB, None, _frame(_sign_response(_sig_blob("ssh-ed25519"))[4:] + b"x"),
                 "malformed sign response"),
    "closed": (ED_BLOB, None, CLOSE, "closed the connection"),
}


@pytest.mark.parametrize("case", sorted(SIGN_GARBAGE))
def test_bad_sign_responses_are_ssh_exceptions(fd_guard, fake_agent, case):
    blob, algorithm, reply, pattern = SIGN_GARBAGE[case]
    fake = fake_agent([_identities(blob), reply])
    with Agent(fake.path, timeout=5) as agent:
        (key,) = agent.get_keys()
        with pytest.raises(SSHException, match=pattern):
            key.sign_ssh_data(DATA, algorithm)
    # What we asked for: the key blob, the data and the RSA flag for the algorithm.
    req = Message(fake.requests[1][4:])
    assert req.get_byte() == b"\x0d"
    assert req.get_binary() == blob
    assert req.get_binary() == DATA
    assert req.get_int() == {None: 0, "rsa-sha2-512": 4, "rsa-sha2-256": 2}[algorithm]


def test_agent_key_without_agent_cannot_sign():
    key = AgentKey(None, ED_BLOB)
    with pytest.raises(SSHException, match="no agent"):
        key.sign_ssh_data(DATA)
    with pytest.raises(SSHException):
        AgentKey(None, b"\x00\x00")


# ---------------------------------------------------------------------------------------------
# authentication with agent keys against OpenSSH
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def authorized_agent_keys(testbed, key_files):
    """Let the bed's sshds accept the agent's plain keys (restored afterwards)."""
    original = testbed.authorized_keys.read_text()
    extra = "".join(f"{kf.key_type} {base64.b64encode(kf.blob).decode()} {kf.comment}\n"
                    for label, kf in key_files.items() if label != "rsa-cert")
    testbed.authorized_keys.write_text(original + extra)
    yield
    testbed.authorized_keys.write_text(original)


@pytest.mark.openssh
@pytest.mark.timeout(60)
@pytest.mark.parametrize("label", ["ed25519", "ecdsa", "rsa"])
def test_auth_publickey_with_agent_key_against_sshd(testbed, agent_env, key_files,
                                                    authorized_agent_keys, label):
    gw = testbed.gateway
    mark = len(gw.sshd.log_text())
    with Agent() as agent:
        key = _by_label(agent.get_keys(), key_files)[label]
        t = start_client(tcp_connect(gw.address, gw.port))
        try:
            t.auth_publickey(testbed.user, key)
            assert t.is_authenticated()
            result = run_command(t, "echo agent-ok")
            assert result.stdout == b"agent-ok\n"
        finally:
            t.close()
    log = gw.sshd.log_text()[mark:]
    assert f"Accepted publickey for {testbed.user}" in log
    assert key.fingerprint in log


# ---------------------------------------------------------------------------------------------
# forwarding, client side: our client -> OpenSSH sshd
# ---------------------------------------------------------------------------------------------


def _connect_gateway(testbed) -> paramiko.Transport:
    gw = testbed.gateway
    t = start_client(tcp_connect(gw.address, gw.port))
    try:
        key = paramiko.Ed25519Key.from_private_key_file(str(testbed.identity))
        t.auth_publickey(testbed.user, key)
        assert t.is_authenticated()
    except BaseException:
        t.close()
        raise
    return t


def _run_forwarded(t: paramiko.Transport, command: str,
                   make_handler: Callable[[paramiko.Channel], AgentRequestHandler],
                   timeout: float = 30.0) -> Tuple[int, bytes, bytes]:
    chan = t.open_session(timeout=timeout)
    handler = make_handler(chan)
    try:
        chan.settimeout(timeout)
        chan.exec_command(command)
        chan.shutdown_write()
        out = b""
        while True:
            data = chan.recv(65536)
            if not data:
                break
            out += data
        err = b""
        while True:
            data = chan.recv_stderr(65536)
            if not data:
                break
            err += data
        status = chan.recv_exit_status(timeout)
    finally:
        chan.close()
        handler.close()
    return status, out, err


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_forwarding_to_openssh_sshd_lists_and_signs(testbed, agent_env, key_files):
    t = _connect_gateway(testbed)
    try:
        status, out, err = _run_forwarded(t, "ssh-add -l", AgentRequestHandler)
        assert status == 0, err
        listing = out.decode()
        for kf in key_files.values():
            assert kf.fingerprint in listing, listing
        # Signing through the forwarded agent: only the public key is named, the agent signs.
        pub = f"{key_files['ecdsa'].path}.pub"
        status, out, err = _run_forwarded(
            t, f"printf hello | ssh-keygen -Y sign -f {pub} -n agent-test",
            AgentRequestHandler)
        assert status == 0, err
        assert b"-----BEGIN SSH SIGNATURE-----" in out
    finally:
        t.close()


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_forwarding_with_dead_local_agent_fails_fast_remotely(testbed, tmp_path, caplog):
    t = _connect_gateway(testbed)
    try:
        t0 = time.monotonic()
        status, out, err = _run_forwarded(
            t, "ssh-add -l", lambda c: AgentRequestHandler(c, str(tmp_path / "gone.sock")))
        assert status != 0, (status, out, err)
        assert time.monotonic() - t0 < 15
    finally:
        t.close()
    assert "cannot reach the local ssh-agent" in caplog.text


# ---------------------------------------------------------------------------------------------
# forwarding in process: our client <-> our server, AgentServerProxy in the middle
# ---------------------------------------------------------------------------------------------


class ForwardingLoopServer(LoopServer):
    def __init__(self) -> None:
        super().__init__()
        self.agent_requested = threading.Event()

    def check_channel_forward_agent_request(self, channel):
        self.agent_requested.set()
        return True


@pytest.fixture
def loop_pair():
    key = paramiko.Ed25519Key.generate()
    server = ForwardingLoopServer()
    client, srv, _ = make_pair(key, server=server)
    client.auth_password(USER, PASSWORD)
    yield client, srv, server
    client.close()
    srv.close()


def test_in_process_forwarding_round_trip(fd_guard, loop_pair, agent_env, key_files):
    client, srv, server = loop_pair
    chan = client.open_session(timeout=10)
    handler = AgentRequestHandler(chan)
    assert server.agent_requested.wait(10)
    proxy = AgentServerProxy(srv, timeout=10)
    try:
        with pytest.raises(SSHException, match="connect"):
            proxy.get_env()
        proxy.connect()
        sock_path = proxy.get_env()["SSH_AUTH_SOCK"]
        directory = os.path.dirname(sock_path)
        assert os.stat(directory).st_mode & 0o777 == 0o700
        # Our own agent client through the forwarded socket: list and sign with every key.
        with Agent(sock_path, timeout=10) as remote:
            found = _assert_agent_keys(remote.get_keys(), key_files)
            for label, key in found.items():
                plain = key_files["rsa" if label == "rsa-cert" else label]
                assert key_from_blob(plain.blob).verify_ssh_sig(DATA, key.sign_ssh_data(DATA))
        # OpenSSH's ssh-add through it, several times (several channels).
        for _ in range(3):
            r = subprocess.run(["ssh-add", "-l"], env={**os.environ, "SSH_AUTH_SOCK": sock_path},
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            for kf in key_files.values():
                assert kf.fingerprint in r.stdout
        # And straight from the server object (over an agent channel of its own).
        keys = proxy.get_keys()
        _assert_agent_keys(keys, key_files)
        assert keys[0].verify_ssh_sig(DATA, keys[0].sign_ssh_data(DATA))
    finally:
        proxy.close()
        handler.close()
        chan.close()
    assert not os.path.exists(sock_path) and not os.path.exists(directory)


def test_in_process_forwarding_with_unreachable_local_agent(fd_guard, loop_pair, tmp_path):
    client, srv, server = loop_pair
    chan = client.open_session(timeout=10)
    handler = AgentRequestHandler(chan, sock_path=str(tmp_path / "nothing-here"))
    assert server.agent_requested.wait(10)
    with AgentServerProxy(srv, timeout=5) as proxy:
        proxy.connect()
        t0 = time.monotonic()
        with pytest.raises(SSHException, match="closed the connection|lost the connection"):
            Agent(proxy.get_env()["SSH_AUTH_SOCK"], timeout=5)
        assert time.monotonic() - t0 < 3
    handler.close()
    chan.close()


def test_server_proxy_when_client_never_asked_for_forwarding(fd_guard, loop_pair):
    client, srv, _ = loop_pair
    with AgentServerProxy(srv, timeout=5) as proxy:
        proxy.connect()
        t0 = time.monotonic()
        with pytest.raises(SSHException, match="closed the connection|lost the connection"):
            Agent(proxy.get_env()["SSH_AUTH_SOCK"], timeout=5)
        with pytest.raises(paramiko.ChannelException):
            proxy.get_keys()
        assert time.monotonic() - t0 < 3


def test_handler_close_ends_live_bridges_and_refuses_new_ones(loop_pair, agent_env, key_files):
    client, srv, server = loop_pair
    chan = client.open_session(timeout=10)
    handler = AgentRequestHandler(chan)
    assert server.agent_requested.wait(10)
    with AgentServerProxy(srv, timeout=10) as proxy:
        proxy.connect()
        path = proxy.get_env()["SSH_AUTH_SOCK"]
        # A connection kept open: its bridge threads are alive until somebody closes.
        held = Agent(path, timeout=10)
        assert len(held.get_keys()) == len(key_files)
        assert any(t.name == "paramiko-agent-client-proxy" for t in _agent_threads())
        handler.close()
        # The client end is gone: the held connection now fails instead of hanging.
        with pytest.raises(SSHException):
            held.get_keys()[0].sign_ssh_data(DATA)
        held.close()
        # New forwarded connections are refused by the client transport.
        with pytest.raises(SSHException):
            Agent(path, timeout=5)
    chan.close()


def test_agent_client_proxy_reports_unreachable_agent(tmp_path):
    class _Chan:
        closed = False

        def close(self):
            self.closed = True

    chan = _Chan()
    proxy = AgentClientProxy(chan, sock_path=str(tmp_path / "absent"))
    with pytest.raises(SSHException, match="cannot reach the local ssh-agent"):
        proxy.connect()
    proxy.close()
    assert chan.closed


def test_server_proxy_on_inactive_transport_refuses():
    class _Dead:
        def is_active(self):
            return False

    with pytest.raises(SSHException, match="not active"):
        AgentServerProxy(_Dead()).connect()


# ---------------------------------------------------------------------------------------------
# forwarding, server side with OpenSSH's client: ssh -A -> our server
# ---------------------------------------------------------------------------------------------


class _AgentExecPolicy(paramiko.ServerInterface):
    """publickey for one key, session channels, agent forwarding, exec via /bin/sh."""

    def __init__(self, t: paramiko.Transport, authorized_blob: bytes) -> None:
        self.t = t
        self.authorized_blob = authorized_blob
        self.proxy: Optional[AgentServerProxy] = None
        self.workers: List[threading.Thread] = []
        self.done = threading.Event()

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        if key.asbytes() == self.authorized_blob:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_forward_agent_request(self, channel):
        self.proxy = AgentServerProxy(self.t, timeout=10)
        self.proxy.connect()
        return True

    def check_channel_exec_request(self, channel, command):
        w = threading.Thread(target=self._run, args=(channel, command), name="test-exec")
        self.workers.append(w)
        w.start()
        return True

    def _run(self, channel, command) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"}
        if self.proxy is not None:
            env.update(self.proxy.get_env())
        try:
            r = subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            channel.sendall(r.stdout)
            channel.sendall_stderr(r.stderr)
            channel.send_exit_status(r.returncode)
        finally:
            channel.close()
            self.done.set()


class OneShotServer:
    """Serves one SSH connection on 127.0.0.1 in a thread, with agent forwarding."""

    def __init__(self, host_key: paramiko.PKey, authorized_blob: bytes) -> None:
        self.host_key = host_key
        self.authorized_blob = authorized_blob
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.halt = threading.Event()
        self.policy: Optional[_AgentExecPolicy] = None
        self.transport: Optional[paramiko.Transport] = None
        self.errors: List[BaseException] = []
        self.thread = threading.Thread(target=self._serve, name="test-oneshot-server")
        self.thread.start()

    def _serve(self) -> None:
        sock = None
        while sock is None and not self.halt.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
        if sock is None:
            return
        t = self.transport = paramiko.Transport(sock)
        t.add_server_key(self.host_key)
        self.policy = _AgentExecPolicy(t, self.authorized_blob)
        try:
            t.start_server(server=self.policy)
            chans = []
            while t.is_active() and not self.halt.is_set():
                c = t.accept(0.2)
                if c is not None:
                    chans.append(c)
        except BaseException as e:  # reported by the test
            self.errors.append(e)
        finally:
            if self.policy.proxy is not None:
                self.policy.proxy.close()
            for w in self.policy.workers:
                w.join(10)
            t.close()

    def close(self) -> None:
        self.halt.set()
        self.thread.join(15)
        self.listener.close()
        assert not self.thread.is_alive()


@pytest.mark.openssh
@pytest.mark.timeout(60)
def test_openssh_ssh_dash_a_to_our_server(tmp_path, testbed, agent_env, key_files):
    host_key = paramiko.Ed25519Key.generate()
    identity = Path(testbed.identity)
    id_blob = base64.b64decode(Path(f"{identity}.pub").read_text().split()[1])
    server = OneShotServer(host_key, id_blob)
    try:
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{server.port} {host_key.get_name()} "
                         f"{host_key.get_base64()}\n")
        cfg = tmp_path / "ssh_config"
        cfg.write_text("\n".join([
            "Host oursrv",
            "  HostName 127.0.0.1",
            f"  Port {server.port}",
            f"  User {testbed.user}",
            f"  IdentityFile {identity}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {known}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            "  BatchMode yes",
            "  ConnectTimeout 10",
            "  LogLevel ERROR",
        ]) + "\n")
        pub = f"{key_files['ed25519'].path}.pub"
        cmd = f"ssh-add -l && printf hi | ssh-keygen -Y sign -f {pub} -n agent-test"
        r = subprocess.run(["ssh", "-F", str(cfg), "-A", "oursrv", cmd], env=agent_env.env(),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=45)
        assert r.returncode == 0, (r.stdout, r.stderr, server.errors)
        for kf in key_files.values():
            assert kf.fingerprint in r.stdout
        assert "-----BEGIN SSH SIGNATURE-----" in r.stdout
        assert server.policy is not None and server.policy.proxy is not None
        sock_path = server.policy.proxy.get_env()["SSH_AUTH_SOCK"]
    finally:
        server.close()
    assert not server.errors, server.errors
    assert not os.path.exists(os.path.dirname(sock_path))
