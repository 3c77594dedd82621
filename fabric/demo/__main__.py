"""``python -m fabric.demo``: a gateway and two targets on this machine, driven by ``fab``.

What it does, with no external server and no network beyond loopback:

1. makes a throwaway client key and three SSH servers built on this project's server API
   (``fabric.demo.server.LocalSSHServer``): ``bastion`` on 127.0.0.1, and ``web1``/``web2``
   which accept connections only from 127.0.0.2, the address the bastion's forwarded
   connections leave from, so the targets are reachable only through the bastion;
2. writes a fabfile that sets ``env.gateway`` to the bastion and ``env.hosts`` to the two
   targets (commands run as the current user, each target in its own temporary directory);
3. proves a direct connection to a target is refused, prints the route ``fab --show-route``
   resolves, then runs ``fab deploy`` (serially, then ``fab -P``) and shows its output;
4. prints how many logins each server saw (one bastion login per run, for both targets)
   and shuts everything down, leaving nothing behind.

Exit status: 0 when every step behaved as described, 1 otherwise.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import paramiko
from fabric.demo.server import LocalSSHServer, generate_host_key

FORWARD_SOURCE = "127.0.0.2"
RUN_TIMEOUT = 120.0

FABFILE = '''\
"""The demo's fabfile: a tiny deploy to two targets behind a bastion."""

from fabric.api import cd, env, put, run, task

env.gateway = {gateway!r}
env.hosts = {hosts!r}
env.key_filename = [{key!r}]
env.system_known_hosts = {known_hosts!r}
env.reject_unknown_hosts = True  # every host key is checked against the file above
env.no_agent = True
env.no_keys = True
env.shell = "/bin/sh -c"


@task
def deploy():
    """Upload a release, unpack it and report where it landed."""
    run("mkdir -p releases")
    put({release!r}, "releases/release.txt")
    with cd("releases"):
        run("cat release.txt")
        run("echo \\"deployed on $(basename $(dirname $PWD)) as $(id -un)\\"")
'''


def _say(text: str = "") -> None:
    print(text, flush=True)


def _write_client_key(directory: Path) -> tuple:
    key = paramiko.Ed25519Key.generate()
    path = directory / "id_ed25519"
    key.write_private_key_file(str(path))
    os.chmod(path, 0o600)
    return key, str(path)


def _can_use_forward_source() -> bool:
    """Linux routes all of 127.0.0.0/8 to loopback; elsewhere 127.0.0.2 may not exist."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((FORWARD_SOURCE, 0))
        return True
    except OSError:
        return False


def _direct_attempt_refused(port: int) -> bool:
    """True if a direct SSH connection from us to a target gets no SSH banner."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(5)
            return s.recv(64) == b""
    except OSError:
        return True


def _fab(args: List[str], cwd: Path, home: Path) -> int:
    """Run ``fab`` (this interpreter's ``fabric``) and stream its output, indented."""
    env = dict(os.environ, HOME=str(home))
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, "-m", "fabric"] + args
    _say("$ fab " + " ".join(args))
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        _say(f"  fab did not finish within {RUN_TIMEOUT:.0f} s")
        return 1
    for line in proc.stdout.splitlines():
        _say("  " + line)
    return proc.returncode


def main(argv: Optional[List[str]] = None) -> int:
    user = getpass.getuser()
    base = Path(tempfile.mkdtemp(prefix="fabric-gateway-demo-"))
    servers: Dict[str, LocalSSHServer] = {}
    ok = True
    try:
        client_key, key_path = _write_client_key(base)
        isolated = _can_use_forward_source()
        for name in ("bastion", "web1", "web2"):
            (base / name).mkdir()
            (base / f"{name}-home").mkdir()
            target = name != "bastion"
            server = LocalSSHServer(
                host_key=generate_host_key(), authorized_keys=[client_key],
                cwd=str(base / name), name=name, allow_forwarding=not target,
                env={"HOME": str(base / f"{name}-home")},
                forward_source=FORWARD_SOURCE if isolated and not target else None,
                only_from=[FORWARD_SOURCE] if isolated and target else None)
            server.start()
            servers[name] = server
        known_hosts = base / "known_hosts"
        known_hosts.write_text("".join(s.known_hosts_line() + "\n" for s in servers.values()))
        release = base / "release.txt"
        release.write_text("release 1.0: built by the fabric-gateway demo\n")
        gateway = f"{user}@127.0.0.1:{servers['bastion'].port}"
        hosts = [f"{user}@127.0.0.1:{servers[n].port}" for n in ("web1", "web2")]
        fabfile = base / "fabfile.py"
        fabfile.write_text(FABFILE.format(gateway=gateway, hosts=hosts, key=key_path,
                                          known_hosts=str(known_hosts), release=str(release)))

        _say("fabric-gateway demo: one bastion, two targets, all on this machine")
        _say(f"  bastion  {gateway}")
        for name, host in zip(("web1", "web2"), hosts):
            _say(f"  {name:7s}  {host}  (commands run in {base / name})")
        _say(f"  fabfile  {fabfile}")
        _say()
        if isolated:
            refused = all(_direct_attempt_refused(servers[n].port) for n in ("web1", "web2"))
            _say("Direct connections to web1/web2 are refused: they accept only "
                 f"{FORWARD_SOURCE}, the bastion's side of the forward -> "
                 + ("confirmed" if refused else "NOT confirmed"))
            ok &= refused
        else:
            _say(f"(cannot bind {FORWARD_SOURCE} here: the targets also accept direct "
                 "connections, the login counts below still show the route taken)")
        _say()
        ok &= _fab(["--show-route", hosts[0]], base, base) == 0
        _say()
        rounds = [("serial", ["deploy"]), ("parallel", ["-P", "deploy"])]
        for label, args in rounds:
            before = {n: s.logins for n, s in servers.items()}
            code = _fab(args, base, base)
            logins = {n: s.logins - before[n] for n, s in servers.items()}
            _say(f"  -> {label} run: exit {code}; logins: bastion {logins['bastion']}, "
                 f"web1 {logins['web1']}, web2 {logins['web2']}")
            _say()
            ok &= code == 0 and logins == {"bastion": 1, "web1": 1, "web2": 1}
        for name in ("web1", "web2"):
            landed = base / name / "releases" / "release.txt"
            good = landed.exists() and landed.read_text() == release.read_text()
            ok &= good
            _say(f"{landed}: {'uploaded intact' if good else 'MISSING or different'}")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    _say()
    _say("Demo " + ("finished: every step behaved as expected." if ok
                    else "FAILED: see the lines above."))
    _say("Servers stopped, temporary files removed.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
