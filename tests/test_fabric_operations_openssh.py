"""Fabric operations against real OpenSSH servers: sudo with PAM passwords (``auth_bed``),
pty handling, agent forwarding, and put/get through the gateway of the test bed."""

from __future__ import annotations

import getpass
import hashlib
import os
import secrets
import shutil
import subprocess
import time

import pytest

import paramiko
from fabric.operations import get, put, run, sudo
from fabric.state import env

pytestmark = [pytest.mark.openssh, pytest.mark.usefixtures("fabric_state")]


def _require(ok: bool, reason: str) -> None:
    from tests.testbed.prereq import require

    require(ok, reason)


@pytest.fixture(scope="module")
def sudo_bed(auth_bed):
    """``auth_bed`` plus a sudoers drop-in letting its user run anything with a password."""
    _require(shutil.which("sudo") is not None and shutil.which("visudo") is not None,
             "sudo/visudo not installed (Debian: apt-get install sudo)")
    _require(os.path.isdir("/etc/sudoers.d"), "no /etc/sudoers.d directory")
    path = f"/etc/sudoers.d/fabgw-test-{secrets.token_hex(4)}"
    # Ask every time (no timestamp) and never lecture, so each call behaves the same.
    text = (f"Defaults:{auth_bed.user} timestamp_timeout=0, lecture=never\n"
            f"{auth_bed.user} ALL=(ALL:ALL) ALL\n")
    draft = path + ".draft"
    with open(draft, "w") as fh:
        fh.write(text)
    try:
        os.chmod(draft, 0o440)
        check = subprocess.run(["visudo", "-cf", draft], capture_output=True, text=True,
                               timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        os.rename(draft, path)  # only a validated file ever sits under its real name
        yield auth_bed
    finally:
        for p in (draft, path):
            if os.path.exists(p):
                os.unlink(p)


@pytest.fixture
def as_bed_user(sudo_bed):
    env.host_string = f"{sudo_bed.user}@{sudo_bed.host}:{sudo_bed.port}"
    env.password = sudo_bed.password
    env.disable_known_hosts = True
    env.no_agent = True
    env.no_keys = True
    return sudo_bed


@pytest.fixture
def no_getpass(monkeypatch):
    def refuse(prompt="", stream=None):
        raise AssertionError(f"unexpected password prompt: {prompt!r}")

    monkeypatch.setattr(getpass, "getpass", refuse)


def test_sudo_whoami_with_login_password(as_bed_user, no_getpass, capsys):
    hs = env.host_string
    assert sudo("whoami") == "root"
    assert sudo("whoami", pty=False) == "root"
    out = capsys.readouterr().out
    assert f"[{hs}] sudo: whoami\n" in out
    assert f"[{hs}] out: sudo password:" in out
    assert as_bed_user.password not in out


def test_sudo_user_and_group_variants(as_bed_user, no_getpass):
    assert sudo("whoami", user=as_bed_user.user) == as_bed_user.user
    assert sudo("id -u", user="0") == "0"  # numeric id sent as "#0"
    assert sudo("id -gn", group="root") == "root"
    env.sudo_user = "root"
    result = sudo("id -un")
    assert result == "root" and '-u "root"' in result.real_command


def test_run_with_and_without_pty(as_bed_user):
    assert run("tty").startswith("/dev/pts/")
    assert run("tty", pty=False, warn_only=True) == "not a tty"
    both = run("echo o; echo e >&2", pty=False, combine_stderr=False)
    assert both == "o" and both.stderr == "e"


def test_timeout_stops_remote_command_with_and_without_pty(as_bed_user):
    from fabric.exceptions import CommandTimeout

    for pty in (True, False):
        start = time.monotonic()
        with pytest.raises(CommandTimeout):
            run(f"sleep 9.{int(pty)}7; echo never", pty=pty, timeout=0.5)
        assert time.monotonic() - start < 3
    deadline = time.monotonic() + 5
    while True:
        left = subprocess.run(["pgrep", "-f", "sleep 9.[01]7"], capture_output=True,
                              text=True).stdout.strip()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"remote commands outlived their timeout: {left}"
    assert run("echo fine") == "fine"


def test_wrong_sudo_password_reprompts_then_works(as_bed_user, monkeypatch):
    asked = []

    def typed(prompt="", stream=None):
        asked.append(prompt)
        return as_bed_user.password

    monkeypatch.setattr(getpass, "getpass", typed)
    env.sudo_password = "definitely-wrong"
    assert sudo("whoami") == "root"
    assert len(asked) == 1 and env.host_string in asked[0]
    key = f"{as_bed_user.user}@{as_bed_user.host}:{as_bed_user.port}"
    assert env.sudo_passwords[key] == as_bed_user.password


def test_all_wrong_sudo_passwords_fail_without_looping(as_bed_user, monkeypatch, capsys):
    asked = []

    def typed(prompt="", stream=None):
        asked.append(prompt)
        return "still-wrong"

    monkeypatch.setattr(getpass, "getpass", typed)
    env.sudo_password = "wrong"
    start = time.monotonic()
    result = sudo("whoami", warn_only=True)
    assert result.failed and result.return_code != 0
    assert len(asked) == 2  # sudo itself gives up after three attempts
    assert time.monotonic() - start < 30
    assert "sudo() received nonzero return code" in capsys.readouterr().err


def test_sudo_password_from_sudo_passwords_per_host(sudo_bed, tmp_path, no_getpass):
    key = paramiko.Ed25519Key.generate()
    key_path = tmp_path / "id_ed25519"
    key.write_private_key_file(str(key_path))
    sudo_bed.authorize(f"{key.get_name()} {key.get_base64()}")
    env.host_string = f"{sudo_bed.user}@{sudo_bed.host}:{sudo_bed.port}"
    env.key_filename = [str(key_path)]
    env.disable_known_hosts = True
    env.no_agent = env.no_keys = True
    env.password = None
    env.sudo_passwords = {
        f"{sudo_bed.user}@{sudo_bed.host}:{sudo_bed.port}": sudo_bed.password,
        f"{sudo_bed.user}@elsewhere:22": "not-this-one",
    }
    assert sudo("whoami") == "root"


def test_agent_forwarding(as_bed_user, tmp_path, monkeypatch):
    _require(shutil.which("ssh-agent") is not None and shutil.which("ssh-add") is not None,
             "ssh-agent/ssh-add not installed")
    sock = str(tmp_path / "agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        key = paramiko.Ed25519Key.generate()
        key_path = tmp_path / "agent_key"
        key.write_private_key_file(str(key_path))
        subprocess.run(["ssh-add", str(key_path)], env={**os.environ, "SSH_AUTH_SOCK": sock},
                       check=True, capture_output=True, timeout=10)
        monkeypatch.setenv("SSH_AUTH_SOCK", sock)
        fingerprint = key.fingerprint.split(":", 1)[1] if ":" in key.fingerprint else ""
        without = run("ssh-add -l", warn_only=True, pty=False)
        assert without.failed
        env.forward_agent = True
        listed = run("ssh-add -l", pty=False)
        assert "ED25519" in listed
        if fingerprint:
            assert fingerprint in listed
    finally:
        agent.terminate()
        agent.wait(10)


def test_put_get_through_gateway_checksums(testbed, tmp_path):
    _require(testbed.isolated, "network namespaces unavailable: targets not isolated")
    target = testbed.targets[0]
    env.gateway = f"{testbed.user}@{testbed.gateway.address}:{testbed.gateway.port}"
    env.key_filename = [str(testbed.identity)]
    env.host_string = f"{testbed.user}@{target.address}:{target.port}"
    env.disable_known_hosts = True
    env.no_agent = env.no_keys = True
    data = os.urandom(4 * 1024 * 1024)
    src = tmp_path / "payload.bin"
    src.write_bytes(data)
    remote = f"/tmp/fabgw-ops-{secrets.token_hex(4)}.bin"
    try:
        assert list(put(str(src), remote)) == [remote]
        digest = hashlib.sha256(data).hexdigest()
        assert run(f"sha256sum {remote} | cut -c1-64", pty=False) == digest
        back = tmp_path / "back.bin"
        assert list(get(remote, str(back))) == [str(back)]
        assert hashlib.sha256(back.read_bytes()).hexdigest() == digest
    finally:
        run(f"rm -f {remote}", quiet=True)
