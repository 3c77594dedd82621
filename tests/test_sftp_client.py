"""SFTPClient / SFTPFile against OpenSSH's sftp-server, and the request engine against a fake.

The real server sits behind the test bed's gateway (client -> gw -> t0). The bed's sshd runs
as root in a network namespace but on this host's file system, so a test's ``tmp_path`` is
reachable both remotely and locally, and results are checked with plain ``os`` calls.

The scripted fake server (over an in-memory socket pair) covers what OpenSSH never does on
demand: stalls, dropped connections, short reads, replies out of order.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import socket
import stat
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

import paramiko
from paramiko.message import Message
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_DATA,
    CMD_EXTENDED,
    CMD_FSTAT,
    CMD_HANDLE,
    CMD_INIT,
    CMD_OPEN,
    CMD_READ,
    CMD_STAT,
    CMD_STATUS,
    CMD_VERSION,
    CMD_WRITE,
    SFTP_EOF,
    SFTP_OK,
)
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_client import SFTP, SFTPClient, SFTPConnectionError, SFTPStatVFS
from paramiko.sftp_file import SFTPFile
from tests.support.interop import authenticate, start_client, tcp_connect

MiB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# fixtures: a client through the gateway
# ---------------------------------------------------------------------------------------------


class Hop:
    """client -> gw -> t0 (two transports), plus SFTP sessions on the inner one."""

    def __init__(self, testbed) -> None:
        gw, t0 = testbed.gateway, testbed.targets[0]
        self.outer = start_client(tcp_connect(gw.address, gw.port))
        try:
            authenticate(self.outer, testbed.user, testbed.identity)
            chan = self.outer.open_channel("direct-tcpip", (t0.address, t0.port),
                                           ("127.0.0.1", 0), timeout=20)
            self.inner = start_client(chan)
            authenticate(self.inner, testbed.user, testbed.identity)
        except BaseException:
            self.outer.close()
            raise

    def sftp(self) -> SFTPClient:
        client = SFTPClient.from_transport(self.inner)
        assert client is not None
        client.get_channel().settimeout(60)  # no test may hang
        return client

    def close(self) -> None:
        self.inner.close()
        self.outer.close()


@pytest.fixture(scope="module")
def hop(testbed):
    h = Hop(testbed)
    yield h
    h.close()


@pytest.fixture
def sftp(hop):
    client = hop.sftp()
    yield client
    client.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def _random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


pytestmark = pytest.mark.openssh


# ---------------------------------------------------------------------------------------------
# session, paths, extensions
# ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_session_extensions_limits_and_paths(sftp, tmp_path):
    assert SFTP is SFTPClient
    assert isinstance(sftp, paramiko.sftp.BaseSFTP)
    ext = sftp.server_extensions
    for name in ("posix-rename@openssh.com", "statvfs@openssh.com", "hardlink@openssh.com",
                 "fsync@openssh.com", "limits@openssh.com", "lsetstat@openssh.com"):
        assert name in ext
    limits = sftp.limits()
    assert limits is not None and limits.max_read_length >= 32768
    # Request sizes follow the server's limits.
    assert sftp._io_sizes() == (limits.max_read_length, limits.max_write_length)
    assert sftp.normalize(".") == "/root"
    assert sftp.expand_path("~") == "/root"
    assert sftp.expand_path("~/../root/.") == "/root"
    assert sftp.home_directory() == "/root"
    assert sftp.home_directory("root") == "/root"
    assert sftp.get_channel().get_transport() is not None

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_bytes(b"abc")
    assert sftp.getcwd() is None
    sftp.chdir(str(tmp_path))
    assert sftp.getcwd() == str(tmp_path.resolve())
    sftp.chdir("sub")
    assert sftp.getcwd().endswith("/sub")
    assert sftp.listdir() == ["f"]
    assert sftp.stat("f").st_size == 3
    with sftp.open("f") as f:
        assert f.read() == b"abc"
    with pytest.raises(NotADirectoryError) as ei:
        sftp.chdir("f")
    assert ei.value.errno == errno.ENOTDIR and ei.value.filename == "f"
    with pytest.raises(FileNotFoundError):
        sftp.chdir("missing")
    sftp.chdir("/")
    assert sftp.getcwd() == "/"
    assert sftp.stat(str(tmp_path)[1:]).st_mode is not None  # "/" + relative
    sftp.chdir(None)
    assert sftp.getcwd() is None


@pytest.mark.timeout(60)
def test_context_manager_and_ssh_client_open_sftp(testbed, tmp_path):
    gw, t0 = testbed.gateway, testbed.targets[0]
    outer = paramiko.SSHClient()
    outer.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    outer.connect(gw.address, gw.port, username=testbed.user, key_filename=str(testbed.identity),
                  allow_agent=False, look_for_keys=False)
    try:
        chan = outer.get_transport().open_channel("direct-tcpip", (t0.address, t0.port),
                                                  ("127.0.0.1", 0))
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(t0.address, t0.port, username=testbed.user, sock=chan,
                       key_filename=str(testbed.identity), allow_agent=False,
                       look_for_keys=False)
        try:
            with client.open_sftp() as sftp:
                chan = sftp.get_channel()
                with sftp.open(str(tmp_path / "cm"), "w") as f:
                    f.write(b"context")
                assert f.closed
            assert chan.closed
            assert (tmp_path / "cm").read_bytes() == b"context"
            with pytest.raises(SFTPConnectionError) as ei:
                sftp.stat(str(tmp_path))
            assert isinstance(ei.value, OSError) and isinstance(ei.value, paramiko.SSHException)
        finally:
            client.close()
    finally:
        outer.close()


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_open_modes_text_lines_and_positions(sftp, tmp_path):
    p = str(tmp_path / "f.txt")
    with sftp.open(p, "w") as f:
        assert isinstance(f, SFTPFile) and f.writable() and not f.readable() and f.seekable()
        f.write("line one\nline two\n")
        f.write(b"line three\nno newline")
        assert f.tell() == 39
    assert Path(p).read_bytes() == b"line one\nline two\nline three\nno newline"
    with sftp.open(p) as f:
        assert f.readline() == "line one\n"
        assert f.tell() == 9
        assert list(f) == ["line two\n", "line three\n", "no newline"]
    with sftp.open(p, "rb") as f:
        assert f.readlines() == [b"line one\n", b"line two\n", b"line three\n", b"no newline"]
        f.seek(5)
        assert f.read(3) == b"one"
        f.seek(-7, f.SEEK_END)
        assert f.read() == b"newline"
        f.seek(-4, f.SEEK_CUR)
        assert f.tell() == 35 and f.read(2) == b"li"
        assert f.read(100) == b"ne" and f.read(1) == b""
        with pytest.raises(OSError) as ei:
            f.seek(-1)
        assert ei.value.errno == errno.EINVAL
        with pytest.raises(OSError):
            f.write(b"x")  # not open for writing
    with sftp.open(p, "a") as f:
        f.write(b"!\n")
        assert f.tell() == 41
    assert Path(p).read_bytes().endswith(b"no newline!\n")
    with sftp.open(p, "r+") as f:
        f.seek(5)
        f.write(b"ONE")
        f.seek(0)
        assert f.read(9) == b"line ONE\n"  # the write is seen by the read that follows
    with pytest.raises(OSError):
        sftp.open(p, "x")
    with sftp.file(str(tmp_path / "new"), "x") as f:
        f.write(b"exclusive")
    assert (tmp_path / "new").read_bytes() == b"exclusive"
    with pytest.raises(ValueError):
        sftp.open(p, "q")
    f = sftp.open(p)
    f.close()
    f.close()  # idempotent
    assert f.closed and "closed" in repr(f)


@pytest.mark.timeout(60)
def test_small_buffered_and_line_buffered_writes_are_sent_in_order(sftp, tmp_path):
    p = str(tmp_path / "w")
    with sftp.open(p, "w", bufsize=1) as f:  # line buffered: each line goes out at once
        f.write(b"partial")
        f.write(b" line\nrest")
        # The completed line is on the server already (seen through the path, not the file).
        assert sftp.stat(p).st_size == len(b"partial line\n")
    assert Path(p).read_bytes() == b"partial line\nrest"
    with sftp.open(p, "w", bufsize=8192) as f:
        for i in range(1000):
            f.write(b"%05d," % i)
        f.flush()
        assert sftp.stat(p).st_size == 6000
        f.write(b"end")
    assert Path(p).read_bytes() == b"".join(b"%05d," % i for i in range(1000)) + b"end"
    # Coalesced (unbuffered mode) data is sent before any other request of the client.
    f = sftp.open(p, "w")
    f.write(b"x" * 100)
    assert sftp.stat(p).st_size == 100
    assert sftp.listdir(str(tmp_path)) == ["w"]
    f.write(b"y" * 100)
    assert f.stat().st_size == 200
    f.close()


@pytest.mark.timeout(120)
def test_put_and_get_64mib_with_sha256(sftp, tmp_path):
    data = _random_bytes(64 * MiB + 12345, seed=64)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    remote = str(tmp_path / "remote.bin")
    progress: List[Tuple[int, int]] = []
    attrs = sftp.put(str(src), remote, callback=lambda a, b: progress.append((a, b)))
    assert attrs.st_size == len(data)
    assert progress[-1] == (len(data), len(data))
    assert all(a < b for (a, _), (b, _) in zip(progress, progress[1:]))
    assert _file_sha(remote) == _sha(data)

    dst = tmp_path / "dst.bin"
    seen: List[Tuple[int, int]] = []
    assert sftp.get(remote, str(dst), callback=lambda a, b: seen.append((a, b))) is None
    assert seen[-1] == (len(data), len(data))
    assert _file_sha(dst) == _sha(data)
    dst.unlink()
    sftp.get(remote, str(dst), prefetch=False, max_concurrent_prefetch_requests=3)
    assert _file_sha(dst) == _sha(data)


@pytest.mark.timeout(60)
def test_putfo_getfo_and_confirm(sftp, tmp_path):
    remote = str(tmp_path / "fo")
    attrs = sftp.putfo(io.BytesIO(b"in memory"), remote, file_size=9)
    assert attrs.st_size == 9 and stat.S_ISREG(attrs.st_mode)
    attrs = sftp.putfo(io.BytesIO(b""), str(tmp_path / "empty"), confirm=False)
    assert attrs.st_size is None  # nothing was asked of the server
    assert (tmp_path / "empty").read_bytes() == b""
    buf = io.BytesIO()
    assert sftp.getfo(remote, buf) == 9 and buf.getvalue() == b"in memory"
    buf = io.BytesIO()
    assert sftp.getfo(str(tmp_path / "empty"), buf) == 0 and buf.getvalue() == b""


@pytest.mark.timeout(120)
def test_naive_loops_and_odd_sizes_round_trip(sftp, tmp_path):
    data = _random_bytes(9 * MiB + 7, seed=9)
    p = str(tmp_path / "loop")
    with sftp.open(p, "wb") as f:
        for off in range(0, len(data), 32768):
            f.write(data[off:off + 32768])
    assert _file_sha(p) == _sha(data)
    # Odd write sizes straddle the coalescing boundary in every way.
    rnd = random.Random(1)
    with sftp.open(p, "wb") as f:
        off = 0
        while off < len(data):
            n = rnd.choice([1, 7, 4096, 32767, 65537, 300001, 1 << 20])
            f.write(memoryview(data)[off:off + n])
            off += n
    assert _file_sha(p) == _sha(data)
    with sftp.open(p, "rb") as f:
        parts = []
        while True:
            block = f.read(32768)
            if not block:
                break
            parts.append(block)
    assert _sha(b"".join(parts)) == _sha(data)
    with sftp.open(p, "rb") as f:
        parts = []
        while True:
            block = f.read(rnd.choice([1, 100, 8191, 65536, 500000]))
            if not block:
                break
            parts.append(block)
        assert f.tell() == len(data)
    assert _sha(b"".join(parts)) == _sha(data)
    with sftp.open(p, "rb") as f:
        assert _sha(f.read()) == _sha(data)


@pytest.mark.timeout(120)
def test_read_ahead_stays_correct_across_seeks(sftp, tmp_path):
    data = _random_bytes(6 * MiB + 333, seed=6)
    local = tmp_path / "ra"
    local.write_bytes(data)
    rnd = random.Random(42)
    with sftp.open(str(local), "rb") as f:
        assert f.read(100000) == data[:100000]
        pos = 100000
        for _ in range(300):
            action = rnd.random()
            if action < 0.3:  # jump anywhere, sometimes beyond EOF
                pos = rnd.randrange(0, len(data) + 5000)
                f.seek(pos)
            elif action < 0.45:  # small skip forward, usually inside the read-ahead window
                pos += rnd.randrange(1, 300000)
                f.seek(pos)
            elif action < 0.55:  # back a little
                pos = max(0, pos - rnd.randrange(1, 200000))
                f.seek(pos)
            n = rnd.choice([1, 10, 4096, 32768, 100000, 700000])
            got = f.read(n)
            assert got == data[pos:pos + n], (pos, n)
            pos += len(got)
            assert f.tell() == pos
        f.seek(len(data) - 10)
        assert f.read() == data[-10:]
        assert f.read(10) == b""
    # Reads after EOF see data appended meanwhile (nothing stale is cached).
    with sftp.open(str(local), "rb") as f:
        f.seek(len(data) - 3)
        assert f.read() == data[-3:]
        with open(local, "ab") as w:
            w.write(b"grown")
        assert f.read() == b"grown"
    # A file truncated while being read ends early instead of returning stale data.
    with sftp.open(str(local), "rb") as f:
        assert f.read(1000) == data[:1000]
        os.truncate(local, 5000)
        rest = f.read()  # what was read ahead before the truncation, then EOF
        assert len(rest) >= 4000 and rest == data[1000:1000 + len(rest)]


@pytest.mark.timeout(60)
def test_prefetch_and_readv(sftp, tmp_path):
    data = _random_bytes(3 * MiB + 5, seed=3)
    local = tmp_path / "pf"
    local.write_bytes(data)
    with sftp.open(str(local), "rb") as f:
        f.prefetch()
        assert f.read() == data
    with sftp.open(str(local), "rb") as f:
        f.prefetch(len(data), max_concurrent_requests=2)
        assert f.read(10) == data[:10]
        assert f.read() == data[10:]
    with sftp.open(str(local), "rb") as f:
        f.seek(1000)
        f.prefetch(len(data))
        assert f.read(5000) == data[1000:6000]
    chunks = [(0, 10), (2 * MiB, 700000), (5, 0), (len(data) - 4, 100), (len(data) + 9, 5),
              (1, 1 * MiB)]
    with sftp.open(str(local), "rb") as f:
        f.seek(77)
        out = list(f.readv(chunks))
        assert out == [data[o:o + n] for o, n in chunks]
        assert f.tell() == 77 and f.read(3) == data[77:80]
        out = list(f.readv(chunks, max_concurrent_prefetch_requests=1))
        assert out == [data[o:o + n] for o, n in chunks]
        gen = f.readv([(0, 100)] * 200)
        assert next(gen) == data[:100]
        gen.close()  # abandoning the rest is fine
        assert f.read(5) == data[80:85]


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_missing_paths_raise_file_not_found_with_the_path(sftp, tmp_path):
    missing = str(tmp_path / "nope")
    calls: List[Callable[[], object]] = [
        lambda: sftp.open(missing),
        lambda: sftp.stat(missing),
        lambda: sftp.lstat(missing),
        lambda: sftp.remove(missing),
        lambda: sftp.rmdir(missing),
        lambda: sftp.listdir(missing),
        lambda: sftp.chmod(missing, 0o644),
        lambda: sftp.utime(missing, None),
        lambda: sftp.truncate(missing, 0),
        lambda: sftp.rename(missing, missing + "2"),
        lambda: sftp.posix_rename(missing, missing + "2"),
        lambda: sftp.readlink(missing),
        lambda: sftp.get(missing, str(tmp_path / "local")),
    ]
    for call in calls:
        with pytest.raises(FileNotFoundError) as ei:
            call()
        assert ei.value.errno == errno.ENOENT
        assert ei.value.filename == missing
        assert missing in str(ei.value)
    with pytest.raises(FileNotFoundError) as ei:
        sftp.rename(missing, missing + "2")
    assert ei.value.filename2 == missing + "2" and "->" in str(ei.value)
    assert not (tmp_path / "local").exists()  # get opens the remote file first
    with pytest.raises(FileNotFoundError):
        sftp.put(__file__, str(tmp_path / "no" / "dir" / "x"))
    with pytest.raises(OSError) as ei:
        sftp.mkdir(str(tmp_path))  # exists: OpenSSH reports a generic failure
    assert str(tmp_path) in str(ei.value)


@pytest.fixture
def user_sftp(auth_bed):
    sock = tcp_connect(auth_bed.host, auth_bed.port)
    t = start_client(sock)
    try:
        t.auth_password(auth_bed.user, auth_bed.password)
        assert t.is_authenticated()
        client = SFTPClient.from_transport(t)
        client.get_channel().settimeout(60)
        yield client
        client.close()
    finally:
        t.close()


@pytest.mark.timeout(60)
def test_permission_denied_for_an_unprivileged_user(user_sftp, auth_bed):
    sftp = user_sftp
    assert sftp.normalize(".") == str(auth_bed.home)
    target = "/etc/fgw-sftp-denied"
    with pytest.raises(PermissionError) as ei:
        sftp.open(target, "w")
    assert ei.value.errno == errno.EACCES and ei.value.filename == target
    assert not os.path.exists(target)
    with pytest.raises(PermissionError):
        sftp.put(__file__, target)
    with pytest.raises(PermissionError):
        sftp.mkdir("/etc/fgw-sftp-denied-dir")
    with pytest.raises(PermissionError):
        sftp.listdir("/root")
    locked = auth_bed.home / "locked"
    locked.write_bytes(b"secret")
    pw = __import__("pwd").getpwnam(auth_bed.user)
    os.chown(locked, pw.pw_uid, pw.pw_gid)
    locked.chmod(0)
    try:
        for mode in ("r", "w", "a"):
            with pytest.raises(PermissionError) as ei:
                sftp.open(str(locked), mode)
            assert ei.value.errno == errno.EACCES and ei.value.filename == str(locked)
        with pytest.raises(PermissionError):
            sftp.get(str(locked), os.devnull)
        sftp.chmod(str(locked), 0o600)  # the owner may fix it
        assert sftp.open(str(locked)).read() == b"secret"
        with pytest.raises(PermissionError):
            sftp.chown(str(locked), 0, 0)
    finally:
        locked.unlink()


@pytest.mark.timeout(60)
def test_pipelined_write_error_surfaces_by_close(sftp, tmp_path):
    p = tmp_path / "ro"
    p.write_bytes(b"original")
    # A handle the server opened read-only; writing through it fails on the server side.
    f = sftp.open(str(p), "r")
    f._flags |= f.FLAG_WRITE
    for _ in range(4):
        f.write(b"x" * 100000)  # pipelined: nothing waits here
    with pytest.raises(OSError) as ei:
        f.close()
    assert str(p) in str(ei.value)
    assert f.closed
    assert p.read_bytes() == b"original"
    # Once reported, the error is not raised again, and the handle was closed anyway.
    f.close()

    # flush() reports it too; a later write keeps failing; close stays quiet.
    f = sftp.open(str(p), "r")
    f._flags |= f.FLAG_WRITE
    f.write(b"y" * 10)
    with pytest.raises(OSError):
        f.flush()
    with pytest.raises(OSError):
        f.write(b"z")
    f.close()

    # Not pipelined: the write itself raises.
    f = sftp.open(str(p), "r")
    f._flags |= f.FLAG_WRITE
    f.set_pipelined(False)
    with pytest.raises(OSError):
        f.write(b"w")
    f.close()
    # The session is still fine.
    assert sftp.stat(str(p)).st_size == 8


@pytest.mark.timeout(120)
def test_disk_full_surfaces_by_close(sftp, testbed, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    # Mount a 1 MiB tmpfs where the target's sftp-server sees it: in its sshd's mount
    # namespace (``ip netns exec`` gives it its own).
    pid = testbed.targets[0].sshd.proc.pid
    enter = ["nsenter", "-t", str(pid), "-m"]
    r = subprocess.run(enter + ["mount", "-t", "tmpfs", "-o", "size=1m", "fgw-sftp-test",
                                str(mnt)], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the server: {r.stderr.strip()}")
    try:
        vfs = sftp.statvfs(str(mnt))
        assert vfs.f_blocks * vfs.f_frsize <= 2 * MiB
        f = sftp.open(str(mnt / "big"), "wb")
        with pytest.raises(OSError) as ei:
            for _ in range(16):
                f.write(b"\0" * 256 * 1024)  # may already report an earlier failure
            f.close()
        assert str(mnt / "big") in str(ei.value)
        f.close()
        assert f.closed
        assert sftp.listdir(str(mnt)) == ["big"]
        assert sftp.stat(str(mnt / "big")).st_size <= 1 * MiB
    finally:
        subprocess.run(enter + ["umount", "-l", str(mnt)], capture_output=True, timeout=30)


# ---------------------------------------------------------------------------------------------
# directories, links, metadata, extensions
# ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_listdir_iter_with_many_entries(sftp, tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    names = {f"entry-{i:05d}-{'x' * (i % 40)}" for i in range(2500)}
    for name in names:
        (d / name).write_bytes(b"z" * (len(name) % 7))
    it = sftp.listdir_iter(str(d), read_aheads=7)
    got = {}
    for attr in it:
        assert isinstance(attr, SFTPAttributes)
        got[attr.filename] = attr
    assert set(got) == names
    assert all(got[n].st_size == len(n) % 7 for n in names)
    assert all(got[n].longname and n in got[n].longname for n in names)
    assert set(sftp.listdir(str(d))) == names
    assert {a.filename for a in sftp.listdir_attr(str(d))} == names
    assert {a.filename for a in sftp.listdir_iter(str(d), read_aheads=1)} == names
    # Stopping early leaves nothing half-done: the handle is closed later, quietly.
    gen = sftp.listdir_iter(str(d))
    assert next(gen).filename in names
    gen.close()
    assert sftp._deferred  # its CLOSE waits for the next request...
    assert sftp.listdir(str(tmp_path)) == ["many"]
    assert not sftp._deferred  # ...which sent it first
    empty = tmp_path / "empty"
    empty.mkdir()
    assert sftp.listdir(str(empty)) == [] and list(sftp.listdir_iter(str(empty))) == []
    with pytest.raises(OSError):
        sftp.listdir(str(d / "entry-00001-x"))  # not a directory


@pytest.mark.timeout(60)
def test_symlink_readlink_round_trip(sftp, tmp_path):
    (tmp_path / "target").write_bytes(b"pointed at")
    link = str(tmp_path / "link")
    sftp.symlink("target", link)  # relative target, stored as given
    assert os.readlink(link) == "target"  # OpenSSH's argument order handled
    assert sftp.readlink(link) == "target"
    assert stat.S_ISLNK(sftp.lstat(link).st_mode)
    assert stat.S_ISREG(sftp.stat(link).st_mode) and sftp.stat(link).st_size == 10
    with sftp.open(link) as f:
        assert f.read() == b"pointed at"
    abs_link = str(tmp_path / "abs")
    sftp.symlink(str(tmp_path / "target"), abs_link)
    assert sftp.readlink(abs_link) == str(tmp_path / "target")
    sftp.chdir(str(tmp_path))
    try:
        sftp.symlink("nowhere", "dangling")
        assert os.readlink(tmp_path / "dangling") == "nowhere"
        assert sftp.readlink("dangling") == "nowhere"
    finally:
        sftp.chdir(None)
    with pytest.raises(OSError):
        sftp.symlink("x", link)  # exists
    with pytest.raises(OSError):
        sftp.readlink(str(tmp_path / "target"))  # not a link
    # lsetstat changes the link, not its target.
    target_mtime = os.stat(tmp_path / "target").st_mtime
    sftp.lutime(link, (1000000000, 1000000000))
    assert os.lstat(link).st_mtime == 1000000000
    assert os.stat(tmp_path / "target").st_mtime == target_mtime
    sftp.lchown(link, 4321, 4321)
    assert os.lstat(link).st_uid == 4321 and os.stat(tmp_path / "target").st_uid == 0


@pytest.mark.timeout(60)
def test_metadata_rename_remove_and_links(sftp, tmp_path):
    d = str(tmp_path / "dir")
    sftp.mkdir(d, 0o750)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o750 & ~_umask()
    sftp.rmdir(d)
    assert not os.path.exists(d)
    sftp.mkdir(d)
    (tmp_path / "dir" / "inner").write_bytes(b"1")
    with pytest.raises(OSError):
        sftp.rmdir(d)  # not empty
    p = str(tmp_path / "f")
    Path(p).write_bytes(b"0123456789")
    sftp.chmod(p, 0o604)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o604
    sftp.chown(p, 1234, 5678)
    assert (os.stat(p).st_uid, os.stat(p).st_gid) == (1234, 5678)
    sftp.utime(p, (1500000000, 1600000000))
    st = os.stat(p)
    assert (st.st_atime, st.st_mtime) == (1500000000, 1600000000)
    sftp.utime(p, None)
    assert abs(os.stat(p).st_mtime - time.time()) < 60
    sftp.truncate(p, 4)
    assert Path(p).read_bytes() == b"0123"
    attr = sftp.stat(p)
    st = os.stat(p)
    assert (attr.st_size, attr.st_uid, attr.st_gid, attr.st_mode) == (
        4, 1234, 5678, st.st_mode)
    assert attr.st_mtime == int(st.st_mtime)
    q = str(tmp_path / "g")
    sftp.rename(p, q)
    assert not os.path.exists(p) and Path(q).read_bytes() == b"0123"
    Path(p).write_bytes(b"other")
    with pytest.raises(OSError):
        sftp.rename(p, q)  # plain SFTP rename refuses to replace
    sftp.posix_rename(p, q)
    assert Path(q).read_bytes() == b"other" and not os.path.exists(p)
    hard = str(tmp_path / "hard")
    sftp.link(q, hard)
    assert os.stat(hard).st_ino == os.stat(q).st_ino and os.stat(q).st_nlink == 2
    sftp.remove(hard)
    sftp.unlink(q)
    assert sorted(os.listdir(tmp_path)) == ["dir"]
    with pytest.raises(OSError):
        sftp.remove(d)  # a directory


def _umask() -> int:
    # The bed's sshd runs with the default umask of its parent (this test run).
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.timeout(60)
def test_file_metadata_fsync_statvfs_and_check(sftp, tmp_path):
    p = str(tmp_path / "f")
    with sftp.open(p, "w") as f:
        f.write(b"hello world")
        attr = f.stat()
        assert attr.st_size == 11  # pending data went out first
        f.chmod(0o640)
        f.chown(99, 98)
        f.truncate(5)
        f.utime((1234567890, 1234567890))
        f.fsync()
        vfs = f.statvfs()
        assert isinstance(vfs, SFTPStatVFS)
        with pytest.raises(OSError) as ei:
            f.check("sha256")  # OpenSSH has no check-file extension
        assert ei.value.errno == errno.EOPNOTSUPP
        f.settimeout(12.5)
        assert f.gettimeout() == 12.5 == sftp.get_channel().gettimeout()
        f.setblocking(True)
        assert f.gettimeout() is None
        f.settimeout(60)
    st = os.stat(p)
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (99, 98)
    assert st.st_mtime == 1234567890 and st.st_size == 5
    vfs = sftp.statvfs(str(tmp_path))
    local = os.statvfs(tmp_path)
    assert (vfs.f_bsize, vfs.f_frsize, vfs.f_blocks, vfs.f_files, vfs.f_namemax) == (
        local.f_bsize, local.f_frsize, local.f_blocks, local.f_files, local.f_namemax)
    assert 0 <= vfs.f_bavail <= vfs.f_bfree <= vfs.f_blocks
    with pytest.raises(FileNotFoundError):
        sftp.statvfs(str(tmp_path / "missing"))


@pytest.mark.timeout(60)
def test_threads_share_one_client(sftp, tmp_path):
    data = _random_bytes(2 * MiB, seed=11)
    for i in range(4):
        (tmp_path / f"t{i}").write_bytes(data[i:])
    errors: List[BaseException] = []

    def worker(i: int) -> None:
        try:
            for _ in range(3):
                with sftp.open(str(tmp_path / f"t{i}"), "rb") as f:
                    assert f.read() == data[i:]
                assert sftp.stat(str(tmp_path / f"t{i}")).st_size == len(data) - i
                with sftp.open(str(tmp_path / f"w{i}"), "wb") as f:
                    f.write(data[:100000 * (i + 1)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(50)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    for i in range(4):
        assert (tmp_path / f"w{i}").read_bytes() == data[:100000 * (i + 1)]


@pytest.mark.timeout(60)
def test_no_threads_started_and_dropped_files_are_closed(hop, tmp_path):
    before = set(threading.enumerate())
    sftp = hop.sftp()
    (tmp_path / "x").write_bytes(b"x" * 1000)
    sftp.get(str(tmp_path / "x"), str(tmp_path / "y"))
    f = sftp.open(str(tmp_path / "z"), "w")
    f.write(b"unflushed")
    del f  # its data and CLOSE are sent with the next request
    assert len(sftp._deferred) == 2
    assert sftp.stat(str(tmp_path / "z")).st_size == 9
    assert not sftp._deferred
    assert set(threading.enumerate()) == before
    sftp.close()
    sftp.close()


# ---------------------------------------------------------------------------------------------
# the request engine against a scripted fake server (in-memory socket pair)
# ---------------------------------------------------------------------------------------------

_HDR = struct.Struct(">IBI")


class FakeServer:
    """Answers SFTP requests with ``handler(cmd, rid, body) -> [(type, rid, payload)]``.

    Files live in ``self.files`` (name -> bytes); the default handler serves OPEN, READ
    (at most ``max_read`` bytes per reply), WRITE, FSTAT, STAT and CLOSE.
    """

    def __init__(self, sock, extensions: Optional[Dict[str, str]] = None) -> None:
        self.sock = sock
        self.extensions = extensions or {}
        self.files: Dict[bytes, bytearray] = {}
        self.handles: Dict[bytes, bytes] = {}
        self.max_read = 1 << 30
        self.hook: Optional[Callable[[int, int, Message], Optional[list]]] = None
        self.seen: List[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _recv(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    def send(self, t: int, rid: Optional[int], payload: bytes) -> None:
        head = struct.pack(">B", t) + (b"" if rid is None else struct.pack(">I", rid))
        self.sock.sendall(struct.pack(">I", len(head) + len(payload)) + head + payload)

    @staticmethod
    def status(code: int, text: str = "") -> bytes:
        return struct.pack(">I", code) + _s(text.encode()) + _s(b"")

    def _run(self) -> None:
        try:
            (n,) = struct.unpack(">I", self._recv(4))
            pkt = self._recv(n)
            assert pkt[0] == CMD_INIT
            ext = b"".join(_s(k.encode()) + _s(v.encode()) for k, v in self.extensions.items())
            self.send(CMD_VERSION, None, struct.pack(">I", 3) + ext)
            while True:
                (n,) = struct.unpack(">I", self._recv(4))
                pkt = self._recv(n)
                cmd, rid = pkt[0], struct.unpack(">I", pkt[1:5])[0]
                self.seen.append(cmd)
                msg = Message(pkt[5:])
                replies = self.hook(cmd, rid, msg) if self.hook else None
                if replies is None:
                    msg.rewind()
                    replies = self.default(cmd, rid, msg)
                for t, r, payload in replies:
                    self.send(t, r, payload)
        except (EOFError, OSError):
            pass

    def default(self, cmd: int, rid: int, msg: Message) -> list:
        if cmd == CMD_OPEN:
            name = msg.get_string()
            handle = b"h%d" % len(self.handles)
            self.handles[handle] = name
            self.files.setdefault(name, bytearray())
            return [(CMD_HANDLE, rid, _s(handle))]
        if cmd == CMD_READ:
            data = self.files[self.handles[msg.get_string()]]
            off, n = msg.get_int64(), msg.get_int()
            if off >= len(data):
                return [(CMD_STATUS, rid, self.status(SFTP_EOF))]
            chunk = bytes(data[off:off + min(n, self.max_read)])
            return [(CMD_DATA, rid, _s(chunk))]
        if cmd == CMD_WRITE:
            data = self.files[self.handles[msg.get_string()]]
            off, chunk = msg.get_int64(), msg.get_string()
            data[off:off + len(chunk)] = chunk
            return [(CMD_STATUS, rid, self.status(SFTP_OK))]
        if cmd in (CMD_FSTAT, CMD_STAT):
            key = msg.get_string()
            name = self.handles[key] if cmd == CMD_FSTAT else key
            if name not in self.files:
                return [(CMD_STATUS, rid, self.status(2, "No such file"))]
            attr = SFTPAttributes()
            attr.st_size = len(self.files[name])
            return [(CMD_ATTRS, rid, attr._pack(Message()).asbytes())]
        if cmd == CMD_CLOSE:
            return [(CMD_STATUS, rid, self.status(SFTP_OK))]
        return [(CMD_STATUS, rid, self.status(8, "Unsupported"))]


def _s(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


@pytest.fixture
def fake(mem_socket_pair):
    client_end, server_end = mem_socket_pair
    server = FakeServer(server_end)
    client_end.settimeout(10)
    client = SFTPClient(client_end)
    yield client, server
    client.close()
    server_end.close()
    server.thread.join(5)


def test_fake_short_reads_are_completed(fake):
    client, server = fake
    data = _random_bytes(300000, seed=5)
    server.files[b"/f"] = bytearray(data)
    server.max_read = 1000  # every reply shorter than asked, long before EOF
    assert client._io_sizes() == (32768, 32768)  # no limits extension: 32 KiB requests
    with client.open("/f", "rb") as f:
        assert f.read() == data
    with client.open("/f", "rb") as f:
        assert f.read(50000) == data[:50000]
        f.seek(123456)
        assert f.read(40000) == data[123456:163456]
        assert list(f.readv([(10, 70000), (299990, 100)])) == [data[10:70010], data[299990:]]
    buf = io.BytesIO()
    assert client.getfo("/f", buf) == len(data) and buf.getvalue() == data


def test_fake_replies_out_of_order(fake):
    client, server = fake
    data = _random_bytes(2 * MiB, seed=8)
    server.files[b"/f"] = bytearray(data)
    held: List[tuple] = []

    def hook(cmd, rid, msg):
        if cmd != CMD_READ:
            return None
        held.extend(server.default(cmd, rid, msg))
        if len(held) < 4:
            return []
        out = list(reversed(held))
        held.clear()
        return out

    server.hook = hook
    with client.open("/f", "rb") as f:
        f.prefetch(len(data) + 3 * 32768)  # a whole number of batches of four
        assert f.read() == data


def test_fake_timeout_abandons_request_and_session_continues(fake):
    client, server = fake
    server.files[b"/a"] = bytearray(b"abc")
    stalled: List[int] = []

    def hook(cmd, rid, msg):
        if cmd == CMD_STAT and not stalled:
            stalled.append(rid)
            return []  # no answer (yet)
        if cmd == CMD_STAT and stalled:
            # Now answer the stale request first: the client must drop it.
            stale = SFTPAttributes()
            stale.st_size = 999
            late = (CMD_ATTRS, stalled.pop(), stale._pack(Message()).asbytes())
            stalled.append(-1)
            msg.rewind()
            return [late] + server.default(cmd, rid, msg)
        return None

    server.hook = hook
    client.get_channel().settimeout(0.3)
    start = time.monotonic()
    with pytest.raises(socket.timeout):
        client.stat("/a")
    assert time.monotonic() - start < 3
    client.get_channel().settimeout(10)
    assert client.stat("/a").st_size == 3


def test_fake_connection_drop_fails_everything_without_hanging(fake):
    client, server = fake
    server.files[b"/a"] = bytearray(b"x" * 100000)

    def hook(cmd, rid, msg):
        if cmd == CMD_READ:
            server.sock.close()
            return []
        return None

    server.hook = hook
    g = client.open("/b", "wb")
    f = client.open("/a", "rb")
    g.write(b"held back")  # coalesced, not sent yet (a READ does not push it out)
    with pytest.raises(SFTPConnectionError) as ei:
        f.read()
    assert isinstance(ei.value, OSError) and isinstance(ei.value, paramiko.SSHException)
    with pytest.raises(SFTPConnectionError):
        client.stat("/a")
    f.close()  # nothing pending: closing a file of a dead session is quiet
    with pytest.raises(SFTPConnectionError):
        g.close()  # its data never reached the server: that is an error
    assert f.closed and g.closed
    g.close()


def test_fake_malformed_reply_breaks_the_session(fake):
    client, server = fake

    def hook(cmd, rid, msg):
        server.sock.sendall(struct.pack(">IBI", 1 << 30, CMD_ATTRS, rid))  # absurd length
        return []

    server.hook = hook
    with pytest.raises(SFTPConnectionError):
        client.stat("/x")
    with pytest.raises(SFTPConnectionError):
        client.stat("/x")


def test_fake_concurrent_waiters_get_their_own_replies(fake):
    client, server = fake
    for i in range(8):
        server.files[b"/f%d" % i] = bytearray(b"y" * (i * 1000))
    batch: List[tuple] = []
    lock = threading.Lock()

    def hook(cmd, rid, msg):
        if cmd != CMD_STAT:
            return None
        with lock:
            batch.extend(server.default(cmd, rid, msg))
            if len(batch) < 8:
                return []
            out = list(reversed(batch))
            batch.clear()
            return out

    server.hook = hook
    results: Dict[int, int] = {}
    errors: List[BaseException] = []

    def worker(i: int) -> None:
        try:
            results[i] = client.stat(f"/f{i}").st_size
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors and results == {i: i * 1000 for i in range(8)}


def test_fake_unsupported_extensions_raise_oserror(fake):
    client, server = fake
    assert client.limits() is None
    for call in (lambda: client.posix_rename("/a", "/b"), lambda: client.statvfs("/"),
                 lambda: client.link("/a", "/b"), lambda: client.home_directory()):
        with pytest.raises(OSError) as ei:
            call()
        assert ei.value.errno == errno.EOPNOTSUPP
    assert CMD_EXTENDED not in server.seen  # refused locally: nothing was sent


def test_fake_random_access_costs_one_small_request_per_read(fake):
    client, server = fake
    data = _random_bytes(4 * MiB, seed=4)
    server.files[b"/f"] = bytearray(data)
    reads: List[Tuple[int, int]] = []

    def hook(cmd, rid, msg):
        if cmd == CMD_READ:
            msg.get_string()
            reads.append((msg.get_int64(), msg.get_int()))
        return None

    server.hook = hook
    with client.open("/f", "rb") as f:
        for off in (3 * MiB, 17, 2 * MiB + 5, MiB):
            f.seek(off)
            assert f.read(100) == data[off:off + 100]
    assert len(reads) == 4 and all(n == 32768 for _, n in reads)


def test_fake_requests_in_flight_are_bounded(fake):
    client, server = fake
    data = _random_bytes(3 * MiB, seed=12)
    server.files[b"/f"] = bytearray(data)
    most = [0]
    send_raw = client._send_raw

    def counting(cmd, parts):
        req = send_raw(cmd, parts)
        most[0] = max(most[0], len(client._pending))
        return req

    client._send_raw = counting
    buf = io.BytesIO()
    assert client.getfo("/f", buf, max_concurrent_prefetch_requests=3) == len(data)
    assert buf.getvalue() == data and most[0] <= 3
    most[0] = 0
    with client.open("/f", "rb") as f:
        assert f.read() == data
    assert 3 < most[0] <= SFTPFile.READAHEAD_MAX_REQUESTS
    most[0] = 0
    with client.open("/w", "wb") as f:
        for _ in range(200):
            f.write(data[:32768])
    assert server.files[b"/w"] == data[:32768] * 200
    assert 1 < most[0] <= SFTPFile.WRITE_MAX_REQUESTS + 1


def test_fake_stall_in_the_middle_of_a_reply_closes_the_session(fake):
    client, server = fake

    def hook(cmd, rid, msg):
        if cmd == CMD_STAT:
            server.sock.sendall(struct.pack(">IB", 50, CMD_ATTRS))  # then nothing more
            return []
        return None

    server.hook = hook
    client.get_channel().settimeout(0.3)
    with pytest.raises(socket.timeout):
        client.stat("/x")
    with pytest.raises(SFTPConnectionError) as ei:
        client.stat("/x")  # the stream is out of step: no guessing where the next reply is
    assert "stalled" in str(ei.value)
