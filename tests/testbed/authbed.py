"""An sshd for authentication tests: password and keyboard-interactive (through PAM) for a
dedicated user created for the session, user certificates (TrustedUserCAKeys) and a host
certificate. It listens on 127.0.0.1 only.

The user is created with ``useradd`` (root only) under a name checked free first, and
deleted again, with its home, at teardown.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

from tests.testbed import registry
from tests.testbed.keys import KeyStore, public_line
from tests.testbed.sshd import Sshd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class AuthBed:
    host = "127.0.0.1"

    def __init__(self, workdir: Path, keystore: KeyStore, tools: Dict[str, str]) -> None:
        self.workdir = workdir
        self.keystore = keystore
        self.tools = tools
        self.user = ""
        self.password = "Pw-" + secrets.token_urlsafe(12)
        self.home: Optional[Path] = None
        self.port = 0
        self.sshd: Optional[Sshd] = None
        self.user_ca = keystore.user_key("user_ca")
        self.host_ca = keystore.user_key("host_ca")
        self.host_key_paths = keystore.host_keys("authbed")
        self._created_user = False

    # -- set-up -------------------------------------------------------------------------
    def start(self) -> AuthBed:
        try:
            self._create_user()
            self._certify_host_key()
            self.port = _free_port()
            self.sshd = Sshd(
                "authbed", self.workdir / "sshd", self.tools["sshd"], self.tools["sftp-server"],
                self.host_key_paths, Path("%h/.ssh/authorized_keys"), [(self.host, self.port)],
                overrides={
                    "UsePAM": "yes",
                    "PasswordAuthentication": "yes",
                    "KbdInteractiveAuthentication": "yes",
                    "AuthorizedKeysFile": ".ssh/authorized_keys",
                },
                extra_config=[
                    f"TrustedUserCAKeys {self.user_ca}.pub",
                    f"HostCertificate {self.host_cert}",
                    f"AllowUsers {self.user} {pwd.getpwuid(os.geteuid()).pw_name}",
                ])
            self.sshd.start()
        except BaseException:
            self.teardown()
            raise
        return self

    def _create_user(self) -> None:
        for _ in range(20):
            name = f"fgw{secrets.token_hex(3)}"
            if not _user_exists(name):
                break
        else:
            raise RuntimeError("no free test user name")
        # /tmp, not pytest's 0700 tree: sshd reads authorized_keys as this user.
        self.home = Path(tempfile.mkdtemp(prefix=f"{name}-home-"))
        subprocess.run(["useradd", "-M", "-d", str(self.home), "-s", "/bin/sh", name],
                       check=True, capture_output=True, timeout=30)
        self.user = name
        self._created_user = True
        registry.record_user(name)
        subprocess.run(["chpasswd"], input=f"{name}:{self.password}\n", text=True, check=True,
                       capture_output=True, timeout=30)
        entry = pwd.getpwnam(name)
        ssh_dir = self.home / ".ssh"
        ssh_dir.mkdir(mode=0o700)
        (ssh_dir / "authorized_keys").write_text("")
        for p in (self.home, ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(p, entry.pw_uid, entry.pw_gid)
        self.home.chmod(0o755)

    def _certify_host_key(self) -> None:
        key = self.host_key_paths["ed25519"]
        cert = Path(str(key) + "-cert.pub")
        if not cert.exists():
            subprocess.run([self.tools["ssh-keygen"], "-q", "-s", str(self.host_ca), "-I",
                            "authbed-host", "-h", "-n", f"{self.host},localhost",
                            f"{key}.pub"], check=True, capture_output=True, timeout=30)
        self.host_cert = cert

    def teardown(self) -> None:
        if self.sshd is not None:
            self.sshd.stop()
        if self._created_user:
            subprocess.run(["userdel", self.user], capture_output=True, timeout=30)
            self._created_user = False
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)

    # -- helpers for tests ---------------------------------------------------------------
    @property
    def authorized_keys(self) -> Path:
        assert self.home is not None
        return self.home / ".ssh" / "authorized_keys"

    def authorize(self, pubkey_line: str) -> None:
        """Append a public key line to the test user's authorized_keys."""
        with open(self.authorized_keys, "a") as f:
            f.write(pubkey_line.strip() + "\n")

    def known_hosts_lines(self, with_ca: bool = False) -> List[str]:
        name = f"[{self.host}]:{self.port}"
        lines = [f"{name} {public_line(p)}" for p in self.host_key_paths.values()]
        if with_ca:
            lines.append(f"@cert-authority {name} {public_line(self.host_ca)}")
        return lines

    def write_known_hosts(self, path: Path, with_ca: bool = False, keys: bool = True) -> Path:
        lines = self.known_hosts_lines(with_ca) if keys else [
            line for line in self.known_hosts_lines(True) if line.startswith("@")]
        path.write_text("\n".join(lines) + "\n")
        return path

    def sign_user_key(self, private_key_path: Path, principals: Optional[List[str]] = None,
                      validity: Optional[str] = None) -> Path:
        """Make ``<key>-cert.pub`` for a user key, signed by the bed's user CA."""
        cmd = [self.tools["ssh-keygen"], "-q", "-s", str(self.user_ca), "-I", "test-user",
               "-n", ",".join(principals or [self.user])]
        if validity:
            cmd += ["-V", validity]
        subprocess.run(cmd + [f"{private_key_path}.pub"], check=True, capture_output=True,
                       timeout=30)
        return Path(f"{private_key_path}-cert.pub")
