"""OpenSSH's ``ssh`` authenticating to this library's server with every method."""

from __future__ import annotations

import os
import subprocess

import pytest

import paramiko
from tests.support.exec_server import ExecServer, _Policy
from tests.testbed.keys import keygen, public_line

pytestmark = pytest.mark.openssh

PASSWORD, CODE = "s3cret-Pass", "424242"


class AuthPolicy(_Policy):
    """Users: open (none), pw (password), kbd (two prompts), key (publickey),
    mfa (publickey, then password)."""

    def __init__(self, server, conn):
        super().__init__(server, conn)
        self.partial = set()

    def get_allowed_auths(self, username):
        return {
            "pw": "password", "kbd": "keyboard-interactive", "key": "publickey",
            "mfa": "password" if username in self.partial else "publickey",
        }.get(username, "publickey")

    def check_auth_none(self, username):
        return paramiko.AUTH_SUCCESSFUL if username == "open" else paramiko.AUTH_FAILED

    def check_auth_password(self, username, password):
        if username == "pw" and password == PASSWORD:
            return paramiko.AUTH_SUCCESSFUL
        if username == "mfa" and username in self.partial and password == PASSWORD:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        if key.asbytes() != self.server.authorized_blob:
            return paramiko.AUTH_FAILED
        if username == "key":
            return paramiko.AUTH_SUCCESSFUL
        if username == "mfa":
            self.partial.add(username)
            return paramiko.AUTH_PARTIALLY_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_interactive(self, username, submethods):
        if username != "kbd":
            return paramiko.AUTH_FAILED
        return paramiko.InteractiveQuery("login", "two questions", ("Password: ", False),
                                         ("Code: ", True))

    def check_auth_interactive_response(self, responses):
        return (paramiko.AUTH_SUCCESSFUL if list(responses) == [PASSWORD, CODE]
                else paramiko.AUTH_FAILED)


@pytest.fixture(scope="module")
def server(tmp_path_factory, keystore):
    d = tmp_path_factory.mktemp("srvauth")
    client_key = keygen(d / "id_ed25519", "ed25519")
    host_key = keystore.host_keys("srvauth")["ed25519"]
    srv = ExecServer([str(host_key)], str(client_key) + ".pub", policy_factory=AuthPolicy)
    port = srv.start()
    kh = d / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{port} {public_line(host_key)}\n")
    askpass = d / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\ncase \"$1\" in *Code*) echo {CODE};; *) echo {PASSWORD};; "
                       "esac\n")
    askpass.chmod(0o755)
    yield {"port": port, "kh": kh, "key": client_key, "askpass": askpass, "srv": srv}
    srv.stop()


def _ssh(server, user: str, *opts: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SSH_ASKPASS=str(server["askpass"]), SSH_ASKPASS_REQUIRE="force",
               DISPLAY=":0")
    cmd = ["ssh", "-F", "/dev/null", "-p", str(server["port"]), "-o",
           f"UserKnownHostsFile={server['kh']}", "-o", "StrictHostKeyChecking=yes",
           "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentityAgent=none",
           "-o", "ConnectTimeout=10", "-o", "NumberOfPasswordPrompts=1", *opts,
           f"{user}@127.0.0.1", "echo authed-as-$0"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL, start_new_session=True)


def _key_opts(server):
    return ("-i", str(server["key"]), "-o", "IdentitiesOnly=yes")


@pytest.mark.parametrize("user,opts", [
    ("open", ("-o", "BatchMode=yes")),
    ("pw", ("-o", "PreferredAuthentications=password")),
    ("kbd", ("-o", "PreferredAuthentications=keyboard-interactive")),
    ("key", ("-o", "BatchMode=yes")),
    ("mfa", ("-o", "PreferredAuthentications=publickey,password")),
], ids=["none", "password", "keyboard-interactive", "publickey", "publickey+password"])
def test_openssh_client_authenticates(server, user, opts):
    extra = _key_opts(server) if user in ("key", "mfa") else ()
    r = _ssh(server, user, *opts, *extra)
    assert r.returncode == 0, r.stderr
    assert "authed-as-" in r.stdout


@pytest.mark.parametrize("user,opts", [
    ("pw", ("-o", "PreferredAuthentications=publickey")),
    ("key", ("-o", "BatchMode=yes", "-i", "/dev/null")),
    ("mfa", ("-o", "PreferredAuthentications=publickey")),  # second factor refused
], ids=["wrong-method", "no-key", "mfa-missing-second-factor"])
def test_openssh_client_is_refused(server, user, opts):
    extra = _key_opts(server) if user == "mfa" else ()
    r = _ssh(server, user, *opts, *extra)
    assert r.returncode == 255 and "Permission denied" in r.stderr


@pytest.mark.parametrize("user,method", [("pw", "password"), ("kbd", "keyboard-interactive")])
def test_wrong_password_is_refused(server, tmp_path, user, method):
    wrong = tmp_path / "wrong.sh"
    wrong.write_text("#!/bin/sh\necho not-the-password\n")
    wrong.chmod(0o755)
    r = _ssh(dict(server, askpass=wrong), user, "-o", f"PreferredAuthentications={method}")
    assert r.returncode == 255 and "Permission denied" in r.stderr
