"""Self-tests of the authentication sshd, with OpenSSH's own client as the oracle."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from tests.testbed.authbed import AuthBed
from tests.testbed.keys import keygen, public_line
from tests.testbed.prereq import require
from tests.testbed.sshd import pid_alive

pytestmark = pytest.mark.openssh


def _ssh(bed: AuthBed, tmp_path: Path, *opts: str, env=None, known_hosts=None, cmd="id -un"):
    kh = known_hosts or bed.write_known_hosts(tmp_path / "known_hosts")
    base = [bed.tools["ssh"], "-F", "/dev/null", "-p", str(bed.port), "-o",
            f"UserKnownHostsFile={kh}", "-o", "GlobalKnownHostsFile=/dev/null", "-o",
            "StrictHostKeyChecking=yes", "-o", "IdentityAgent=none", "-o", "ConnectTimeout=10",
            "-o", "NumberOfPasswordPrompts=1"]
    full = base + list(opts) + [f"{bed.user}@{bed.host}", cmd]
    return subprocess.run(full, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=env, start_new_session=True)


def _askpass_env(tmp_path: Path, answer: str):
    script = tmp_path / "askpass.sh"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{answer}'\n")
    script.chmod(0o755)
    env = dict(os.environ, SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force",
               DISPLAY=":0")
    return env


@pytest.mark.parametrize("method", ["password", "keyboard-interactive"])
def test_password_methods_for_session_user(auth_bed, tmp_path, method):
    ok = _ssh(auth_bed, tmp_path, "-o", f"PreferredAuthentications={method}",
              "-o", "BatchMode=no", env=_askpass_env(tmp_path, auth_bed.password))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == auth_bed.user
    bad = _ssh(auth_bed, tmp_path, "-o", f"PreferredAuthentications={method}",
               "-o", "BatchMode=no", env=_askpass_env(tmp_path, "wrong"))
    assert bad.returncode != 0


def test_user_certificate_without_authorized_key(auth_bed, tmp_path):
    key = keygen(tmp_path / "id_cert", "ed25519", ssh_keygen=auth_bed.tools["ssh-keygen"])
    plain = _ssh(auth_bed, tmp_path, "-i", str(key), "-o", "BatchMode=yes",
                 "-o", "PreferredAuthentications=publickey", "-o", "CertificateFile=none")
    assert plain.returncode != 0  # the key alone is not authorized
    cert = auth_bed.sign_user_key(key)
    ok = _ssh(auth_bed, tmp_path, "-i", str(key), "-o", f"CertificateFile={cert}",
              "-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey")
    assert ok.returncode == 0, ok.stderr


def test_host_certificate_accepted_through_cert_authority(auth_bed, tmp_path):
    key = keygen(tmp_path / "id_plain", "ed25519", ssh_keygen=auth_bed.tools["ssh-keygen"])
    auth_bed.authorize(public_line(key))
    kh = auth_bed.write_known_hosts(tmp_path / "kh_ca", with_ca=True, keys=False)
    ok = _ssh(auth_bed, tmp_path, "-i", str(key), "-o", "BatchMode=yes", known_hosts=kh,
              cmd="true")
    assert ok.returncode == 0, ok.stderr


def test_auth_bed_removes_its_user(keystore, openssh_tools, tmp_path):
    require(os.geteuid() == 0, "needs root")
    bed = AuthBed(tmp_path, keystore, openssh_tools).start()
    name, home, pid = bed.user, bed.home, bed.sshd.pid
    assert pwd.getpwnam(name).pw_dir == str(home)
    bed.teardown()
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    assert not home.exists()
    assert not pid_alive(pid)
