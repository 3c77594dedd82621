"""The SFTP server (``SFTPServer`` + ``LocalDirSFTP``) driven by OpenSSH's ``sftp`` client.

An in-process server (this library's ``Transport`` in server mode on a real 127.0.0.1
socket) serves a temporary directory; ``sftp -b`` runs batch scripts against it.  Raw
protocol tests talk to the subsystem through this library's own client transport.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import List, Tuple

import pytest

import paramiko
from paramiko.message import Message
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_DATA,
    CMD_EXTENDED,
    CMD_EXTENDED_REPLY,
    CMD_HANDLE,
    CMD_INIT,
    CMD_NAME,
    CMD_OPEN,
    CMD_READ,
    CMD_READLINK,
    CMD_REALPATH,
    CMD_STAT,
    CMD_STATUS,
    CMD_SYMLINK,
    CMD_VERSION,
    CMD_WRITE,
    SFTP_BAD_MESSAGE,
    SFTP_EOF,
    SFTP_FAILURE,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_READ,
    SFTP_FLAG_WRITE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
    BaseSFTP,
    SFTPError,
)
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_handle import SFTPHandle
from paramiko.sftp_root import LocalDirSFTP
from paramiko.sftp_server import SFTPServer
from paramiko.sftp_si import SFTPServerInterface
from tests.support.exec_server import load_private_key, read_authorized_blob
from tests.testbed.keys import keygen
from tests.testbed.prereq import require

SFTP = shutil.which("sftp")
SSH_KEYGEN = shutil.which("ssh-keygen")
USER = "tester"


# ---------------------------------------------------------------------------------------------
# in-process server


class _Policy(paramiko.ServerInterface):
    def __init__(self, authorized_blob: bytes) -> None:
        self.authorized_blob = authorized_blob

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        ok = key.asbytes() == self.authorized_blob
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class SFTPTestServer:
    """Accepts SSH connections and serves the "sftp" subsystem from ``root``."""

    def __init__(self, host_key: paramiko.PKey, authorized_blob: bytes, root: Path,
                 si_class=LocalDirSFTP, **si_kwargs) -> None:
        self.host_key = host_key
        self.authorized_blob = authorized_blob
        self.root = root
        self.si_class = si_class
        self.si_kwargs = {"root": str(root), **si_kwargs}
        self.errors: List[str] = []
        self.transports: List[paramiko.Transport] = []
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._threads: List[threading.Thread] = []
        t = threading.Thread(target=self._accept_loop, daemon=True, name="sftp-test-accept")
        t.start()
        self._threads.append(t)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(sock,), daemon=True,
                                 name="sftp-test-conn")
            t.start()
            self._threads.append(t)

    def _serve(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tr = paramiko.Transport(sock)
        self.transports.append(tr)
        try:
            tr.add_server_key(self.host_key)
            tr.set_subsystem_handler("sftp", SFTPServer, self.si_class, **self.si_kwargs)
            try:
                tr.start_server(server=_Policy(self.authorized_blob))
            except Exception as e:  # noqa: BLE001 - recorded for the test
                self.errors.append(f"handshake: {e!r}")
                return
            channels = []
            while tr.is_active() and not self._stop.is_set():
                chan = tr.accept(0.2)
                if chan is not None:
                    channels = [c for c in channels if not c.closed] + [chan]
        finally:
            tr.close()

    def stop(self) -> None:
        self._stop.set()
        for tr in list(self.transports):
            tr.close()
        self._listener.close()
        for t in self._threads:
            t.join(5)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    require(SFTP is not None and SSH_KEYGEN is not None,
            "OpenSSH sftp/ssh-keygen not installed")
    d = tmp_path_factory.mktemp("sftpkeys")
    host = keygen(d / "host_ed25519", "ed25519", ssh_keygen=SSH_KEYGEN)
    user = keygen(d / "id_ed25519", "ed25519", ssh_keygen=SSH_KEYGEN)
    return load_private_key(str(host)), user, read_authorized_blob(str(user) + ".pub")


@pytest.fixture
def area(tmp_path):
    """(root served as "/", an "outside" directory next to it holding a secret)."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret\n")
    return root, outside


@pytest.fixture
def server(keys, area):
    host_key, _, blob = keys
    srv = SFTPTestServer(host_key, blob, area[0])
    yield srv
    srv.stop()


def run_sftp(keys, srv: SFTPTestServer, commands: str, cwd: Path,
             timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``sftp -b -`` with ``commands``; returns the completed process (text mode)."""
    _, user_key, _ = keys
    cmd = [
        SFTP, "-b", "-", "-P", str(srv.port), "-i", str(user_key),
        "-F", "/dev/null",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
        f"{USER}@127.0.0.1",
    ]
    return subprocess.run(cmd, input=commands, capture_output=True, text=True,
                          timeout=timeout, cwd=str(cwd))


def tree(path: Path) -> List[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


pytestmark = pytest.mark.openssh


# ---------------------------------------------------------------------------------------------
# OpenSSH sftp against the server


def test_put_get_ls_and_metadata(keys, server, area, tmp_path):
    root, _ = area
    local = tmp_path / "local"
    local.mkdir()
    (local / "hello.txt").write_bytes(b"hello world\n")
    r = run_sftp(keys, server, "\n".join([
        "pwd",
        "put hello.txt",
        "mkdir sub",
        "put hello.txt sub/copy.txt",
        "ls -l",
        "ls sub",
        "rename hello.txt renamed.txt",
        "chmod 600 renamed.txt",
        "get renamed.txt back.txt",
        "get sub/copy.txt",
        "rm sub/copy.txt",
        "rmdir sub",
        "ls -l",
    ]) + "\n", local)
    assert r.returncode == 0, r.stderr
    assert "Remote working directory: /" in r.stdout
    assert "sub/copy.txt" in r.stdout  # `ls sub`
    assert (local / "back.txt").read_bytes() == b"hello world\n"
    assert (local / "copy.txt").read_bytes() == b"hello world\n"
    assert tree(root) == ["renamed.txt"]
    assert (root / "renamed.txt").stat().st_mode & 0o777 == 0o600
    # `ls -l` prints the server's long names
    assert any(line.startswith("-rw-------") and line.endswith("renamed.txt")
               for line in r.stdout.splitlines())


def test_rename_refuses_to_overwrite_and_mkdir_existing_fails(keys, server, area, tmp_path):
    root, _ = area
    (root / "a").write_text("a")
    (root / "b").write_text("b")
    # `rename -l` forces the v3 RENAME, which must not replace an existing file.
    r = run_sftp(keys, server, "rename -l a b\n", tmp_path)
    assert r.returncode != 0
    assert (root / "a").read_text() == "a" and (root / "b").read_text() == "b"
    r = run_sftp(keys, server, "mkdir a\n", tmp_path)
    assert r.returncode != 0
    r = run_sftp(keys, server, "get missing\n", tmp_path)
    assert r.returncode != 0
    assert "No such file" in r.stderr or "not found" in r.stderr


def test_symlink_and_readlink(keys, server, area, tmp_path):
    root, _ = area
    (root / "target.txt").write_text("linked data\n")
    r = run_sftp(keys, server, "\n".join([
        "symlink target.txt link.txt",
        "mkdir d",
        "symlink /target.txt d/abs.txt",
        "ls -l",
        "get link.txt via_link.txt",
        "get d/abs.txt via_abs.txt",
    ]) + "\n", tmp_path)
    assert r.returncode == 0, r.stderr
    assert os.readlink(root / "link.txt") == "target.txt"
    assert (tmp_path / "via_link.txt").read_text() == "linked data\n"
    assert (tmp_path / "via_abs.txt").read_text() == "linked data\n"
    assert any(line.startswith("l") and line.endswith("link.txt")
               for line in r.stdout.splitlines()), r.stdout


def test_large_file_roundtrip_intact(keys, server, area, tmp_path):
    root, _ = area
    data = os.urandom(8 * 1024 * 1024 + 12345)
    digest = hashlib.sha256(data).hexdigest()
    (tmp_path / "big.bin").write_bytes(data)
    start = time.monotonic()
    r = run_sftp(keys, server, "put big.bin\nget big.bin big2.bin\n", tmp_path)
    elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256((root / "big.bin").read_bytes()).hexdigest() == digest
    assert hashlib.sha256((tmp_path / "big2.bin").read_bytes()).hexdigest() == digest
    assert elapsed < 30


def test_df_uses_statvfs(keys, server, tmp_path):
    r = run_sftp(keys, server, "df -h\n", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Size" in r.stdout


def test_hardlink_and_posix_rename(keys, server, area, tmp_path):
    root, _ = area
    (root / "orig").write_text("x")
    (root / "other").write_text("y")
    r = run_sftp(keys, server, "ln orig hard\nrename other orig\n", tmp_path)
    # `ln` without -s uses hardlink@openssh.com; plain `rename` uses posix-rename when
    # the server announces it (so it replaces the existing "orig").
    assert r.returncode == 0, r.stderr
    assert (root / "hard").read_text() == "x"
    assert (root / "orig").read_text() == "y"
    assert not (root / "other").exists()


# ---------------------------------------------------------------------------------------------
# escapes from the root


@pytest.mark.parametrize("command", [
    "get ../../etc/passwd stolen",
    "get ../outside/secret.txt stolen",
    "get /etc/passwd stolen",
    "get ../../../../../../etc/passwd stolen",
])
def test_reading_outside_root_fails(keys, server, tmp_path, command):
    r = run_sftp(keys, server, command + "\n", tmp_path)
    assert r.returncode != 0
    assert not (tmp_path / "stolen").exists()


def test_symlink_pointing_outside_is_refused(keys, server, area, tmp_path):
    root, outside = area
    # Created behind the server's back (e.g. by a local user).
    os.symlink(outside / "secret.txt", root / "evil.txt")
    os.symlink(outside, root / "evildir")
    os.symlink("../outside/secret.txt", root / "evil_rel.txt")
    for cmd in ["get evil.txt stolen", "get evildir/secret.txt stolen",
                "get evil_rel.txt stolen", "ls -l evildir/secret.txt", "cd evildir",
                "put /etc/hostname evildir/planted", "put /etc/hostname evil.txt",
                "chmod 777 evil.txt", "rm evildir/secret.txt", "mkdir evildir/newdir"]:
        r = run_sftp(keys, server, cmd + "\n", tmp_path)
        assert r.returncode != 0, cmd
        assert not (tmp_path / "stolen").exists(), cmd
    # Listing through the link shows at most the link itself (sftp falls back to its
    # lstat), never the outside directory's entries.
    for cmd in ["ls evildir", "ls evildir/", "ls -l evildir/"]:
        r = run_sftp(keys, server, cmd + "\n", tmp_path)
        assert "secret" not in r.stdout, cmd
    assert tree(outside) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "top secret\n"
    assert (outside / "secret.txt").stat().st_mode & 0o777 != 0o777


def _outside_snapshot(tmp_path: Path) -> List[Tuple[str, int, int]]:
    """(path, size, mode) of everything near the served root but not inside it."""
    root = tmp_path / "root"
    out = []
    for base in (tmp_path, tmp_path.parent):
        for p in base.iterdir():
            if p in (root, tmp_path):
                continue
            st = p.lstat()
            out.append((str(p), st.st_size, st.st_mode))
    for p in (tmp_path / "outside").rglob("*"):
        st = p.lstat()
        out.append((str(p), st.st_size, st.st_mode))
    return sorted(out)


def test_writing_outside_root_fails(keys, server, area, tmp_path):
    root, outside = area
    (tmp_path / "x").write_text("payload")
    before = _outside_snapshot(tmp_path)
    for cmd in ["put x ../escape", "put x ../../escape", "put x /../escape",
                "put x ../outside/secret.txt", "mkdir ../newdir", "rename x ../moved",
                "symlink /etc ../link", "ln -s ../../.. up"]:
        run_sftp(keys, server, cmd + "\n", tmp_path)
    assert _outside_snapshot(tmp_path) == before
    assert (outside / "secret.txt").read_text() == "top secret\n"
    # Lexically, ".." stops at the served "/": those writes landed inside the root.
    assert (root / "escape").read_text() == "payload"
    assert os.path.islink(root / "link")
    assert not os.path.lexists(root / "up")  # relative target outside: refused


def test_client_made_symlinks_cannot_escape(keys, server, area, tmp_path):
    root, outside = area
    r = run_sftp(keys, server, "symlink /etc target\n", tmp_path)
    # An absolute target is a path inside the served tree: /etc there does not exist.
    assert r.returncode == 0, r.stderr
    r = run_sftp(keys, server, "get target/passwd stolen\n", tmp_path)
    assert r.returncode != 0
    assert not (tmp_path / "stolen").exists()
    # A relative target climbing out of the root is refused at creation.
    r = run_sftp(keys, server, "symlink ../outside/secret.txt rel\n", tmp_path)
    assert r.returncode != 0
    assert not os.path.lexists(root / "rel")
    # Later changes cannot turn an accepted link into an escape either: "s/.." is the
    # root while s points at a subdirectory, but leaves it once s is ".".
    r = run_sftp(keys, server, "\n".join([
        "mkdir deep", "symlink deep s", "symlink s/.. up", "rm s", "symlink . s",
    ]) + "\n", tmp_path)
    assert r.returncode == 0, r.stderr
    assert os.path.realpath(root / "up") == os.path.realpath(root.parent)
    r = run_sftp(keys, server, "get up/outside/secret.txt stolen\n", tmp_path)
    assert r.returncode != 0
    assert not (tmp_path / "stolen").exists()
    r = run_sftp(keys, server, "ls up/\nls up/outside\n", tmp_path)
    assert "secret" not in r.stdout and "outside" not in r.stdout.replace("ls up/outside", "")


# ---------------------------------------------------------------------------------------------
# raw protocol through this library's own client transport


class RawSFTP(BaseSFTP):
    def __init__(self, chan) -> None:
        super().__init__()
        self.sock = chan
        self.next_id = 1

    def request(self, t: int, *fields) -> Tuple[int, Message]:
        rid = self.next_id
        self.next_id += 1
        msg = Message()
        msg.add_int(rid)
        for f in fields:
            if isinstance(f, SFTPAttributes):
                f._pack(msg)
            elif isinstance(f, int):
                msg.add_int(f)
            else:
                msg.add_string(f)
        self._send_packet(t, msg)
        return self.reply(rid)

    def reply(self, rid: int) -> Tuple[int, Message]:
        t, data = self._read_packet()
        m = Message(data)
        assert m.get_int() == rid
        return t, m


@pytest.fixture
def raw_session(keys, server):
    """An authenticated client Transport to the server and a factory for sftp channels."""
    _, user_key, _ = keys
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    t = paramiko.Transport(sock)
    t.start_client(timeout=10)
    t.auth_publickey(USER, load_private_key(str(user_key)))

    def open_sftp(init: bool = True):
        chan = t.open_session(timeout=10)
        chan.settimeout(10)
        chan.invoke_subsystem("sftp")
        raw = RawSFTP(chan)
        if init:
            raw._send_version()
        return raw

    yield t, open_sftp
    t.close()


def status_of(t: int, m: Message) -> int:
    assert t == CMD_STATUS
    return m.get_int()


def test_version_announces_extensions(raw_session):
    _, open_sftp = raw_session
    raw = open_sftp(init=False)
    assert raw._send_version() == 3
    for name in ["posix-rename@openssh.com", "statvfs@openssh.com", "fstatvfs@openssh.com",
                 "hardlink@openssh.com", "fsync@openssh.com", "lsetstat@openssh.com",
                 "limits@openssh.com", "expand-path@openssh.com", "home-directory"]:
        assert name in raw.extensions
    t, m = raw.request(CMD_EXTENDED, "limits@openssh.com")
    assert t == CMD_EXTENDED_REPLY
    limits = [m.get_int64() for _ in range(4)]
    assert limits[0] >= 34000 and limits[1] >= 32768 and limits[2] >= 32768
    t, m = raw.request(CMD_REALPATH, ".")
    assert t == CMD_NAME and m.get_int() == 1 and m.get_text() == "/"
    t, m = raw.request(CMD_EXTENDED, "expand-path@openssh.com", "~/x/../y")
    assert t == CMD_NAME and m.get_int() == 1 and m.get_text() == "/y"
    t, m = raw.request(CMD_EXTENDED, "home-directory", "")
    assert t == CMD_NAME and m.get_int() == 1 and m.get_text() == "/"
    t, m = raw.request(CMD_EXTENDED, "no-such-extension@example.com")
    assert status_of(t, m) == SFTP_OP_UNSUPPORTED


def test_pipelined_requests_all_answered(raw_session, area):
    root, _ = area
    (root / "f").write_bytes(bytes(range(256)) * 2048)  # 512 KiB
    _, open_sftp = raw_session
    raw = open_sftp()
    t, m = raw.request(CMD_OPEN, "/f", SFTP_FLAG_READ, SFTPAttributes())
    assert t == CMD_HANDLE
    handle = m.get_string()
    ids = []
    for i in range(40):  # 40 reads of 8 KiB, all outstanding at once
        rid = raw.next_id
        raw.next_id += 1
        msg = Message()
        msg.add_int(rid)
        msg.add_string(handle)
        msg.add_int64(i * 8192)
        msg.add_int(8192)
        raw._send_packet(CMD_READ, msg)
        ids.append(rid)
    got = b""
    for rid in ids:
        t, m = raw.reply(rid)
        assert t == CMD_DATA
        got += m.get_string()
    assert got == (root / "f").read_bytes()[: 40 * 8192]
    rid = raw.next_id
    raw.next_id += 1
    msg = Message().add_int(rid).add_string(handle)
    msg.add_int64(1 << 20)
    msg.add_int(10)
    raw._send_packet(CMD_READ, msg)
    assert status_of(*raw.reply(rid)) == SFTP_EOF


def test_raw_symlink_order_and_escape_checks(raw_session, area):
    root, outside = area
    _, open_sftp = raw_session
    raw = open_sftp()
    # OpenSSH order: target, then link path.
    assert status_of(*raw.request(CMD_SYMLINK, "data", "/lnk")) == SFTP_OK
    assert os.readlink(root / "lnk") == "data"
    t, m = raw.request(CMD_SYMLINK, "../../../../../tmp", "/lnk2")
    assert status_of(t, m) == SFTP_PERMISSION_DENIED
    os.symlink(outside, root / "out")
    assert status_of(*raw.request(CMD_STAT, "/out/secret.txt")) == SFTP_PERMISSION_DENIED
    t, m = raw.request(CMD_OPEN, "/out/new", SFTP_FLAG_WRITE | SFTP_FLAG_CREATE,
                       SFTPAttributes())
    assert status_of(t, m) == SFTP_PERMISSION_DENIED
    assert tree(outside) == ["secret.txt"]
    t, m = raw.request(CMD_STAT, "/../../etc/passwd")
    assert status_of(t, m) == SFTP_NO_SUCH_FILE
    t, m = raw.request(CMD_STAT, "/")
    assert t == CMD_ATTRS


def test_malformed_requests_get_bad_message(raw_session):
    transport, open_sftp = raw_session
    raw = open_sftp()
    # An OPEN with a truncated body: request id is there, the rest is not.
    raw._send_packet(CMD_OPEN, struct.pack(">I", 77) + b"\x00\x00\x00\x10ab")
    t, m = raw.reply(77)
    assert status_of(t, m) == SFTP_BAD_MESSAGE
    # Unknown packet type.
    raw._send_packet(99, struct.pack(">I", 78))
    assert status_of(*raw.reply(78)) == SFTP_OP_UNSUPPORTED
    # The session still works afterwards.
    t, m = raw.request(CMD_REALPATH, "a/b/..")
    assert t == CMD_NAME and m.get_int() == 1 and m.get_text() == "/a"
    assert transport.is_active()


@pytest.mark.parametrize("init,garbage", [
    (False, b"\x00\x00\x00\x00"),                    # zero-length frame
    (False, b"\xff\xff\xff\xff" + b"x" * 64),        # absurd length
    (True, b"\x00\x00\x00\x00"),                     # ... also after INIT
    (True, b"\x7f\xff\xff\xff" + b"x" * 64),
    (True, b"\x00\x00\x00\x05\x03\x00\x00"),        # truncated frame, then EOF
    (True, b"\x00\x00\x00\x01\x03"),                # OPEN without request id
    (True, b"\x00\x00\x00\x05\x01\x00\x00\x00\x03"),  # a second INIT
    (False, random.Random(7).randbytes(4096)),       # noise instead of INIT
    (True, random.Random(8).randbytes(4096)),        # noise after INIT
])
def test_garbage_closes_subsystem_not_transport(raw_session, init, garbage):
    transport, open_sftp = raw_session
    raw = open_sftp(init=init)
    raw.sock.sendall(garbage)
    raw.sock.shutdown_write()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if raw.sock.recv(65536) == b"":
                break
        except socket.timeout:
            pytest.fail("server did not close the sftp channel")
    assert transport.is_active()
    # A fresh sftp channel on the same connection still works.
    fresh = open_sftp()
    t, m = fresh.request(CMD_REALPATH, ".")
    assert t == CMD_NAME


def test_hostile_values_get_status_replies(raw_session, area):
    root, _ = area
    (root / "f").write_bytes(b"abc")
    _, open_sftp = raw_session
    raw = open_sftp()
    t, m = raw.request(CMD_OPEN, "/f", SFTP_FLAG_READ | SFTP_FLAG_WRITE, SFTPAttributes())
    handle = m.get_string()
    for offset in (2**63 - 1, 2**64 - 1):
        msg = Message().add_int(raw.next_id).add_string(handle)
        msg.add_int64(offset)
        msg.add_int(0xFFFFFFFF)
        raw._send_packet(CMD_READ, msg)
        raw.next_id += 1
        assert status_of(*raw.reply(raw.next_id - 1)) in (SFTP_EOF, SFTP_FAILURE)
        msg = Message().add_int(raw.next_id).add_string(handle)
        msg.add_int64(offset)
        msg.add_string(b"x")
        raw._send_packet(CMD_WRITE, msg)
        raw.next_id += 1
        assert status_of(*raw.reply(raw.next_id - 1)) == SFTP_FAILURE
    assert status_of(*raw.request(CMD_STAT, "/a\x00b")) == SFTP_FAILURE
    assert status_of(*raw.request(CMD_READLINK, "")) in (SFTP_FAILURE, SFTP_NO_SUCH_FILE)
    assert status_of(*raw.request(CMD_CLOSE, b"no-such-handle")) == SFTP_FAILURE
    # The handle table is bounded.
    codes = set()
    for _ in range(SFTPServer.MAX_OPEN_HANDLES + 5):
        t, m = raw.request(CMD_OPEN, "/f", SFTP_FLAG_READ, SFTPAttributes())
        codes.add(t if t == CMD_HANDLE else status_of(t, m))
    assert codes == {CMD_HANDLE, SFTP_FAILURE}
    t, m = raw.request(CMD_REALPATH, ".")
    assert t == CMD_NAME


def test_readlink_maps_targets_back(raw_session, area):
    root, outside = area
    _, open_sftp = raw_session
    raw = open_sftp()
    assert status_of(*raw.request(CMD_SYMLINK, "/some/where", "/abs")) == SFTP_OK
    assert os.readlink(root / "abs") == str(root / "some" / "where")
    t, m = raw.request(CMD_READLINK, "/abs")
    assert t == CMD_NAME and m.get_int() == 1 and m.get_text() == "/some/where"
    os.symlink("rel/target", root / "rel")
    t, m = raw.request(CMD_READLINK, "rel")
    assert t == CMD_NAME and m.get_int() == 1 and m.get_text() == "rel/target"
    t, m = raw.request(CMD_READLINK, "/nothing")
    assert status_of(t, m) == SFTP_NO_SUCH_FILE


def test_no_init_then_eof(raw_session):
    transport, open_sftp = raw_session
    raw = open_sftp(init=False)
    raw._send_packet(CMD_INIT, b"\x00\x00")  # INIT with a 2-byte version field
    with pytest.raises((EOFError, SFTPError)):
        raw._read_packet()
    assert transport.is_active()


def test_read_only_root(keys, area, tmp_path):
    host_key, _, blob = keys
    root, _ = area
    (root / "f").write_text("data")
    srv = SFTPTestServer(host_key, blob, root, read_only=True)
    try:
        r = run_sftp(keys, srv, "get f got\n", tmp_path)
        assert r.returncode == 0, r.stderr
        for cmd in ["put got x", "rm f", "mkdir d", "chmod 777 f"]:
            assert run_sftp(keys, srv, cmd + "\n", tmp_path).returncode != 0, cmd
        assert tree(root) == ["f"]
    finally:
        srv.stop()


class _FileObjectHandle(SFTPHandle):
    """Upstream-style handle: only ``readfile``/``writefile`` are provided."""

    def stat(self):
        return SFTPAttributes.from_stat(os.fstat((self.readfile or self.writefile).fileno()))


class _PlainSI(SFTPServerInterface):
    """A minimal interface in the style of upstream's examples (no containment!)."""

    def __init__(self, server, root):
        super().__init__(server)
        self.root = root

    def _real(self, path):
        return self.root + self.canonicalize(path)

    def list_folder(self, path):
        try:
            real = self._real(path)
            return [SFTPAttributes.from_stat(os.lstat(os.path.join(real, n)), n)
                    for n in os.listdir(real)]
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)

    def stat(self, path):
        try:
            return SFTPAttributes.from_stat(os.stat(self._real(path)))
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)

    lstat = stat

    def open(self, path, flags, attr):
        real = self._real(path)
        try:
            if flags & SFTP_FLAG_WRITE:
                fobj = open(real, "r+b" if os.path.exists(real) else "w+b")
                fobj.truncate(0)
            else:
                fobj = open(real, "rb")
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)
        h = _FileObjectHandle(flags)
        h.readfile = fobj
        h.writefile = fobj if flags & SFTP_FLAG_WRITE else None
        return h

    def chattr(self, path, attr):
        try:
            SFTPServer.set_file_attr(self._real(path), attr)
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)
        return SFTP_OK


def test_upstream_style_interface_and_file_object_handles(keys, area, tmp_path):
    host_key, _, blob = keys
    root, _ = area
    data = os.urandom(300_000)
    (tmp_path / "up.bin").write_bytes(data)
    srv = SFTPTestServer(host_key, blob, root, si_class=_PlainSI)
    try:
        r = run_sftp(keys, srv, "put up.bin\nchmod 640 up.bin\nget up.bin down.bin\n"
                                "ls -l\nrm up.bin\n", tmp_path)
    finally:
        srv.stop()
    # The transfer and chmod work; rm is not implemented (SFTP_OP_UNSUPPORTED).
    assert "up.bin" in r.stdout
    assert (root / "up.bin").read_bytes() == data
    assert (root / "up.bin").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "down.bin").read_bytes() == data
    assert r.returncode != 0 and "rm up.bin" in r.stdout
    assert "nsupported" in r.stderr


# ---------------------------------------------------------------------------------------------
# units (no network)


def test_attributes_roundtrip_and_longname():
    a = SFTPAttributes()
    a.st_size, a.st_uid, a.st_gid, a.st_mode = 1234, 1000, 100, 0o100644
    a.st_atime, a.st_mtime = 1_000_000_000, 1_000_000_000
    a.attr = {"x@example.com": b"v"}
    a.filename = "name.txt"
    m = Message()
    a._pack(m)
    m.rewind()
    b = SFTPAttributes._from_msg(m, "name.txt", "long")
    assert (b.st_size, b.st_uid, b.st_gid, b.st_mode, b.st_mtime) == (
        1234, 1000, 100, 0o100644, 1_000_000_000)
    assert b.attr == {"x@example.com": b"v"} and b.longname == "long"
    line = str(a)
    assert line.startswith("-rw-r--r--") and line.endswith(" name.txt") and "1234" in line
    assert str(SFTPAttributes()).startswith("?---------")
    d = SFTPAttributes()
    d.st_mode = 0o41777
    assert d._mode_string() == "drwxrwxrwt"
    # A truncated ATTRS raises the library's decode error, never a foreign exception.
    with pytest.raises(paramiko.SSHException):
        SFTPAttributes._from_msg(Message(b"\x00\x00\x00\x0f\x00"))


def test_swapped_in_symlink_is_not_followed(area, monkeypatch):
    """The realpath check can race with a rename; the O_NOFOLLOW walk must catch it.

    Simulated by making the check see no symlinks at all: every request below would
    escape if the descriptor walk trusted the checked path.
    """
    import paramiko.sftp_root as sftp_root

    root, outside = area
    os.symlink(outside, root / "d")
    os.symlink(outside / "secret.txt", root / "f")
    si = LocalDirSFTP(None, root)
    si.session_started()
    monkeypatch.setattr(sftp_root.os.path, "realpath", os.path.normpath)
    try:
        for call in (
            lambda: si.stat("/d/secret.txt"),
            lambda: si.list_folder("/d"),
            lambda: si.open("/d/secret.txt", SFTP_FLAG_READ, SFTPAttributes()),
            lambda: si.open("/d/new", SFTP_FLAG_WRITE | SFTP_FLAG_CREATE, SFTPAttributes()),
            lambda: si.open("/f", SFTP_FLAG_READ, SFTPAttributes()),
            lambda: si.mkdir("/d/newdir", SFTPAttributes()),
            lambda: si.remove("/d/secret.txt"),
            lambda: si.chattr("/f", _mode_attr(0o777)),
            lambda: si.list_folder("/d/"),
        ):
            with pytest.raises(OSError):
                call()
    finally:
        si.session_ended()
    assert tree(outside) == ["secret.txt"]
    assert (outside / "secret.txt").stat().st_mode & 0o777 != 0o777


def _mode_attr(mode: int) -> SFTPAttributes:
    a = SFTPAttributes()
    a.st_mode = mode
    return a


def test_convert_errno():
    import errno

    assert SFTPServer.convert_errno(errno.ENOENT) == SFTP_NO_SUCH_FILE
    assert SFTPServer.convert_errno(errno.EACCES) == SFTP_PERMISSION_DENIED
    assert SFTPServer.convert_errno(errno.EPERM) == SFTP_PERMISSION_DENIED
    assert SFTPServer.convert_errno(errno.EEXIST) == SFTP_FAILURE
    assert SFTPServer.convert_errno(FileNotFoundError(errno.ENOENT, "x")) == SFTP_NO_SUCH_FILE


def test_default_interface_is_unsupported():
    si = SFTPServerInterface(None)
    assert si.open("/x", 0, SFTPAttributes()) == SFTP_OP_UNSUPPORTED
    assert si.canonicalize("a/../b") == "/b"
    assert si.canonicalize("//x/./y") == "/x/y"
    assert si.expand_path("~") == "/"


class _FakeChan:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sent = b""

    def recv(self, n: int) -> bytes:
        out, self.data = self.data[:n], self.data[n:]
        return out

    def sendall(self, b: bytes) -> None:
        self.sent += bytes(b)


def test_base_framing():
    b = BaseSFTP()
    b.sock = _FakeChan(b"")
    b._send_packet(CMD_VERSION, b"\x00\x00\x00\x03")
    assert b.sock.sent == b"\x00\x00\x00\x05\x02\x00\x00\x00\x03"
    b.sock = _FakeChan(b.sock.sent)
    assert b._read_packet() == (CMD_VERSION, b"\x00\x00\x00\x03")
    with pytest.raises(EOFError):
        b._read_packet()
    b.sock = _FakeChan(b"\x00\x00\x00\x09\x02\x00")
    with pytest.raises(EOFError):
        b._read_packet()
    b.sock = _FakeChan(b"\x7f\x00\x00\x00")
    with pytest.raises(SFTPError):
        b._read_packet()
