"""Helpers for the interoperability tests against real OpenSSH (public ``paramiko`` API only)."""

from __future__ import annotations

import re
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import paramiko

# Which of the bed's host key files (KeyStore names) proves each host key algorithm.
HOST_KEY_FILE_FOR_ALG: Dict[str, str] = {
    "ssh-ed25519": "ed25519",
    "ecdsa-sha2-nistp256": "ecdsa256",
    "ecdsa-sha2-nistp384": "ecdsa384",
    "ecdsa-sha2-nistp521": "ecdsa521",
    "rsa-sha2-512": "rsa",
    "rsa-sha2-256": "rsa",
}

# The key type name (``PKey.get_name()``) behind each host key algorithm.
KEY_NAME_FOR_ALG: Dict[str, str] = {
    "ssh-ed25519": "ssh-ed25519",
    "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521",
    "rsa-sha2-512": "ssh-rsa",
    "rsa-sha2-256": "ssh-rsa",
}

REPO_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the ``tests`` package


def public_key_of(private_path: Path) -> Tuple[str, str]:
    """``(key type, base64 blob)`` from the ``.pub`` file next to an OpenSSH private key."""
    parts = Path(str(private_path) + ".pub").read_text().split()
    return parts[0], parts[1]


def host_public_keys(host_keys: Dict[str, Path]) -> Dict[str, Tuple[str, str]]:
    """KeyStore name (``ed25519``, ``rsa`` ...) -> ``(type, base64)`` for a server's host keys."""
    return {name: public_key_of(path) for name, path in host_keys.items()}


def key_id(key: paramiko.PKey) -> Tuple[str, str]:
    """``(type, base64)`` of a key object, comparable with :func:`public_key_of`."""
    return key.get_name(), key.get_base64()


class CountingSocket:
    """A socket-like wrapper (no ``fileno``) that counts the bytes crossing the wire."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.bytes_in = 0
        self.bytes_out = 0

    def send(self, data: bytes) -> int:
        n = self._sock.send(data)
        self.bytes_out += n
        return n

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)
        self.bytes_out += len(data)

    def recv(self, n: int) -> bytes:
        data = self._sock.recv(n)
        self.bytes_in += len(data)
        return data

    def settimeout(self, t: Optional[float]) -> None:
        self._sock.settimeout(t)

    def gettimeout(self) -> Optional[float]:
        return self._sock.gettimeout()

    def getpeername(self):
        return self._sock.getpeername()

    def close(self) -> None:
        self._sock.close()

    @property
    def _closed(self) -> bool:
        return self._sock.fileno() == -1


def tcp_connect(address: str, port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection((address, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def start_client(sock, configure: Optional[Callable[[paramiko.Transport], None]] = None,
                 timeout: float = 20.0) -> paramiko.Transport:
    """A Transport over ``sock``, optionally restricted by ``configure``, after key exchange."""
    t = paramiko.Transport(sock)
    try:
        if configure is not None:
            configure(t)
        t.start_client(timeout=timeout)
        if not t.is_active():
            raise paramiko.SSHException("key exchange did not complete")
    except BaseException:
        t.close()
        raise
    return t


def authenticate(t: paramiko.Transport, user: str, identity: Path) -> None:
    key = paramiko.Ed25519Key.from_private_key_file(str(identity))
    remaining = t.auth_publickey(user, key)
    assert t.is_authenticated(), f"publickey auth incomplete, server still wants {remaining}"


@dataclass
class CommandResult:
    stdout: bytes
    stderr: bytes
    status: int


def recv_until_eof(recv: Callable[[int], bytes], deadline: float, chunk: int = 65536) -> bytes:
    """Call ``recv`` until it returns ``b""``; raise TimeoutError past ``deadline``."""
    parts: List[bytes] = []
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("stream did not reach EOF in time")
        data = recv(chunk)
        if not data:
            return b"".join(parts)
        parts.append(data)


def wait_exit_status(chan: paramiko.Channel, timeout: float = 20.0) -> int:
    """The exit status, waiting at most ``timeout`` (``recv_exit_status`` itself has none)."""
    deadline = time.monotonic() + timeout
    while not chan.exit_status_ready():
        if time.monotonic() > deadline:
            raise TimeoutError("no exit status received")
        time.sleep(0.01)
    return chan.recv_exit_status()


def run_command(t: paramiko.Transport, command: str, timeout: float = 30.0,
                stdin: bytes = b"") -> CommandResult:
    """Run ``command`` on a session channel, feeding ``stdin`` then EOF.

    Small outputs only: stdout is read to EOF before stderr, and ``stdin`` must fit the
    remote window (OpenSSH's is 2 MiB).
    """
    deadline = time.monotonic() + timeout
    chan = t.open_session(timeout=timeout)
    try:
        chan.settimeout(timeout)
        chan.exec_command(command)
        if stdin:
            chan.sendall(stdin)
        chan.shutdown_write()
        out = recv_until_eof(chan.recv, deadline)
        err = recv_until_eof(chan.recv_stderr, deadline)
        status = wait_exit_status(chan, max(1.0, deadline - time.monotonic()))
    finally:
        chan.close()
    return CommandResult(out, err, status)


_SHA256_LINE = re.compile(rb"^([0-9a-f]{64})  -\r?$", re.MULTILINE)


def sha256_reported(stderr: Union[bytes, str]) -> str:
    """The digest a remote ``sha256sum`` (reading stdin) printed to ``stderr``."""
    if isinstance(stderr, str):
        stderr = stderr.encode()
    m = _SHA256_LINE.search(stderr)
    assert m, f"no sha256sum output in stderr: {stderr[-500:]!r}"
    return m.group(1).decode()


def parse_ssh_connection(stdout: bytes, prefix: bytes = b"hello ") -> Tuple[str, int, str, int]:
    """``(src, sport, dst, dport)`` from output ``<prefix>$SSH_CONNECTION``."""
    assert stdout.startswith(prefix), stdout[:200]
    fields = stdout[len(prefix):].decode().split()
    assert len(fields) == 4, fields
    return fields[0], int(fields[1]), fields[2], int(fields[3])


def mlkem_available() -> bool:
    """True when the installed ``cryptography`` can generate ML-KEM-768 keys."""
    try:
        from cryptography.hazmat.primitives.asymmetric import mlkem  # type: ignore
    except ImportError:
        return False
    try:
        mlkem.MLKEM768PrivateKey.generate()
    except Exception:  # noqa: BLE001 - e.g. UnsupportedAlgorithm from the OpenSSL build
        return False
    return True


# ---------------------------------------------------------------------------------------------
# our exec server as a separate process, and OpenSSH's ssh against it
# ---------------------------------------------------------------------------------------------


class ExecServerProcess:
    """``python -m tests.support.exec_server`` in a child process; always killed and reaped."""

    def __init__(self, host_keys: Sequence[Path], authorized_key: Path, log_path: Path,
                 python: str = sys.executable, host: str = "127.0.0.1") -> None:
        self.host = host
        self.host_keys = list(host_keys)
        self.log_path = log_path
        self.port = 0
        # Filled in by whoever sets up clients for it (see write_ssh_client_files).
        self.config: Optional[Path] = None
        self.user = ""
        self.identity: Optional[Path] = None
        self.host_key_paths: Dict[str, Path] = {}
        cmd = [python, "-m", "tests.support.exec_server", "--host", host, "--port", "0",
               "--authorized-key", str(authorized_key)]
        for k in self.host_keys:
            cmd += ["--host-key", str(k)]
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._log,
                                     start_new_session=True)

    def wait_port(self, timeout: float = 30.0) -> int:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"exec server did not start: {line!r} {self.log_text()[-2000:]}")
        self.port = int(line)
        return self.port

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


def write_ssh_client_files(workdir: Path, alias: str, host: str, port: int, user: str,
                           identity: Path, host_keys: Sequence[Path]) -> Path:
    """An ssh_config (and known_hosts of ``host_keys``) for OpenSSH's ``ssh``; returns config."""
    known = workdir / "known_hosts"
    name = host if port == 22 else f"[{host}]:{port}"
    known.write_text("".join(f"{name} {' '.join(public_key_of(k))}\n" for k in host_keys))
    cfg = workdir / "ssh_config"
    cfg.write_text("\n".join([
        f"Host {alias}",
        f"  HostName {host}",
        f"  Port {port}",
        f"  User {user}",
        f"  IdentityFile {identity}",
        "  IdentitiesOnly yes",
        "  IdentityAgent none",
        f"  UserKnownHostsFile {known}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  UpdateHostKeys no",
        "  BatchMode yes",
        "  ConnectTimeout 10",
        "  LogLevel ERROR",
    ]) + "\n")
    return cfg


_KEX_LINE = re.compile(r"debug1: kex: algorithm: (\S+)")
_HOSTKEY_LINE = re.compile(r"debug1: kex: host key algorithm: (\S+)")
_DIR_LINE = re.compile(
    r"debug1: kex: (server->client|client->server) cipher: (\S+) MAC: (\S+) compression: (\S+)")


def parse_ssh_debug(stderr: str) -> Dict[str, str]:
    """What OpenSSH's ``ssh -v`` says it negotiated: kex, hostkey, and per-direction algos."""
    out: Dict[str, str] = {}
    m = _KEX_LINE.search(stderr)
    if m:
        out["kex"] = m.group(1)
    m = _HOSTKEY_LINE.search(stderr)
    if m:
        out["hostkey"] = m.group(1)
    for m in _DIR_LINE.finditer(stderr):
        d = "s2c" if m.group(1) == "server->client" else "c2s"
        out[f"{d}_cipher"], out[f"{d}_mac"], out[f"{d}_compression"] = m.group(2, 3, 4)
    return out
