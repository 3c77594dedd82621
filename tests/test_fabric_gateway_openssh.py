"""The gateway feature end to end: the real ``fab`` program, run as a subprocess against the
OpenSSH test bed (client -> gw -> 100 targets; gw -> gw2 -> deep), logins counted in the sshd
logs.

What this file proves (the acceptance items of the gateway issue):

1. ``-g GW -H <20 targets>``: every host runs, one gateway login per run, serial and ``-P``,
   and ``-P`` is faster;
2. routes: a ``-g a,b`` chain, ssh_config ProxyJump chains and ProxyCommand, a host's own
   ssh_config route beating ``-g`` (with the warning), ``ProxyJump none``, a gateway that is
   also the target, a ProxyJump loop;
3. a closed port / a dead address behind the gateway fails fast with both hops named, and
   ``--skip-bad-hosts`` keeps going;
4. a gateway refusing authentication is named as the gateway; different passwords for gateway
   and target from ``env.passwords`` work without a prompt;
5. nothing is left behind: every connection is closed and no ProxyCommand process survives;
6. ``--show-route`` explains each hop without connecting anywhere;
7. put/get/open_shell/reboot/remote_tunnel through a gateway, one gateway login for all.

The in-process behaviour of :mod:`fabric.network` is covered by
``tests/test_fabric_network_openssh.py``; this file only drives the command line.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest

from tests.support.fabric_server import stop_and_check
from tests.testbed.prereq import require

pytestmark = [pytest.mark.openssh]

FAB = Path(sys.executable).parent / "fab"
FAB_TIMEOUT = 60  # seconds per fab run: a hang fails the test instead of blocking the suite
SETTLE = 0.3  # sshd children log a little after the client has moved on

FABFILE = r'''
import json
import os

from fabric.api import env, get, open_shell, put, puts, reboot, run
from fabric.context_managers import remote_tunnel

if os.environ.get("FG_PASSWORDS"):
    env.passwords = json.loads(os.environ["FG_PASSWORDS"])


def where():
    run("echo conn=$SSH_CONNECTION")


def slow_where():
    run("sleep 0.1; echo conn=$SSH_CONNECTION")


def _children():
    me = str(os.getpid())
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if ppid == me:
            found.append(cmd)
    return found


def where_and_children():
    run("echo conn=$SSH_CONNECTION")
    puts("children=%s" % json.dumps(_children()))


def _serve_once(listener):
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(10)
        conn.sendall(b"tunnel-ok:" + conn.recv(100))


def everything():
    import socket
    import threading

    local_dir, remote_dir = os.environ["FG_LOCAL_DIR"], os.environ["FG_REMOTE_DIR"]
    put(os.path.join(local_dir, "payload.bin"), remote_dir + "/uploaded.bin")
    run("sha256sum %s/uploaded.bin" % remote_dir)
    run("head -c 200000 /dev/urandom > %s/made.bin && sha256sum %s/made.bin"
        % (remote_dir, remote_dir))
    get(remote_dir + "/made.bin", os.path.join(local_dir, "fetched.bin"))
    open_shell("unset HISTFILE; echo shell-$((6*7)); exit")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(20)
    server = threading.Thread(target=_serve_once, args=(listener,), daemon=True)
    server.start()
    rport = int(os.environ["FG_TUNNEL_PORT"])
    try:
        with remote_tunnel(rport, local_port=listener.getsockname()[1]):
            run("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d && echo ping >&3 && "
                "timeout 10 head -n 1 <&3'" % rport)
    finally:
        listener.close()
    reboot(wait=1, command="true", use_sudo=False)
    run("echo after-reboot conn=$SSH_CONNECTION")
'''


@dataclass(repr=False)
class FabRun:
    argv: List[str]
    code: int
    out: str
    err: str
    elapsed: float

    def __repr__(self) -> str:
        return (f"fab {' '.join(self.argv)}\nexit {self.code} after {self.elapsed:.2f}s\n"
                f"--- stdout:\n{self.out}\n--- stderr:\n{self.err}")

    def out_lines(self, host: str) -> List[str]:
        prefix = f"[{host}] out: "
        return [line[len(prefix):] for line in self.out.splitlines() if line.startswith(prefix)]

    def conn(self, host: str) -> str:
        """The one ``conn=$SSH_CONNECTION`` line ``host`` printed (other output is noise
        from the remote user's shell startup files)."""
        found = [line for line in self.out_lines(host) if line.startswith("conn=")]
        assert len(found) == 1, f"{host}: {found}\n{self!r}"
        return found[0]


class Fab:
    """Runs ``fab`` in a project directory with an empty HOME and no agent."""

    def __init__(self, workdir: Path, base: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.home = workdir / "home"
        self.home.mkdir(exist_ok=True)
        (workdir / "fabfile.py").write_text(FABFILE)
        self.base = list(base)

    def __call__(self, *argv: str, extra_env: Optional[Dict[str, str]] = None,
                 timeout: float = FAB_TIMEOUT) -> FabRun:
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        env.update({"HOME": str(self.home), **(extra_env or {})})
        full = [*self.base, *argv]
        started = time.monotonic()
        # A session of its own: no controlling terminal, so no prompt can reach /dev/tty.
        proc = subprocess.run([str(FAB), *full], cwd=self.workdir, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, start_new_session=True)
        return FabRun(full, proc.returncode, proc.stdout, proc.stderr,
                      time.monotonic() - started)


def _settled(ep, mark: int, logins: int = 0):
    """The sshd log counts since ``mark`` once ``logins`` logins showed up (bounded), after a
    short settle so that surplus logins or connections would be counted too."""
    ep.sshd.wait_counts(lambda c: c.login_count >= logins, mark, timeout=10)
    time.sleep(SETTLE)
    return ep.sshd.counts(mark)


def _marks(*eps) -> List[int]:
    return [ep.sshd.log_mark() for ep in eps]


def _hs(ep) -> str:
    return f"root@{ep.address}" if ep.port == 22 else f"root@{ep.address}:{ep.port}"


def _display(ep, user: str = "root") -> str:
    return f"{user}@{ep.address}:{ep.port}"


def _line_of(text: str, needle: str, exact: bool = False) -> int:
    """1-based number of the (only) line of ``text`` containing (or equal to) ``needle``."""
    found = [i + 1 for i, line in enumerate(text.splitlines())
             if (line == needle if exact else needle in line)]
    assert len(found) == 1, (needle, found)
    return found[0]


@pytest.fixture
def bed(isolated_testbed):
    require(os.access(FAB, os.X_OK), f"the fab console script is not installed at {FAB}")
    return isolated_testbed


@pytest.fixture
def fab(bed, tmp_path) -> Fab:
    """``fab`` with the bed's key only, host keys checked strictly against the bed's file."""
    return Fab(tmp_path, ["-i", str(bed.identity), "-a", "-k", "-D", "-r",
                          "--system-known-hosts", str(bed.known_hosts), "-s", "/bin/sh -c"])


@pytest.fixture
def routes_config(bed, tmp_path):
    """An ssh_config with the bed's stanzas plus aliases that carry their own routes.

    ProxyCommand uses a private copy of the bed's config, so its processes can be found by
    that path."""
    t = bed.targets
    own_cfg = tmp_path / "bed_ssh_config"
    own_cfg.write_text(bed.ssh_config.read_text())
    text = (
        f"Host deep-pj\n  HostName {bed.deep.address}\n  ProxyJump gw,gw2\n"
        f"Host t0-pc\n  HostName {t[0].address}\n"
        f"  ProxyCommand ssh -F {own_cfg} -W %h:%p gw\n"
        f"Host t1-own\n  HostName {t[1].address}\n  ProxyJump gw\n"
        f"Host t2-none\n  HostName {t[2].address}\n  ProxyJump none\n"
        f"Host loopa\n  HostName {t[3].address}\n  ProxyJump loopb\n"
        f"Host loopb\n  HostName {t[4].address}\n  ProxyJump loopa\n"
    ) + bed.ssh_config.read_text()
    path = tmp_path / "ssh_config"
    path.write_text(text)
    return path, text, own_cfg


# ---------------------------------------------------------------------------------------------
# 1. fan-out through one gateway
# ---------------------------------------------------------------------------------------------


def test_twenty_targets_one_gateway_login_serial_and_parallel(bed, fab):
    gw, targets = bed.gateway, bed.targets[20:40]
    hosts = ",".join(ep.address for ep in targets)
    elapsed = {}
    for mode in ("serial", "parallel"):
        gw_mark, t_mark = _marks(gw, targets[0])
        extra = ["-P"] if mode == "parallel" else []
        res = fab("-g", _hs(gw), "-H", hosts, *extra, "slow_where")
        assert res.code == 0, res
        for ep in targets:
            # Each target saw its connection coming from the gateway, at its own address.
            line = res.conn(ep.address)
            assert re.fullmatch(rf"conn={re.escape(bed.gw_address_towards_targets)} \d+ "
                                rf"{re.escape(ep.address)} 22", line), (mode, res)
        assert _settled(gw, gw_mark, 1).login_count == 1, (mode, res)
        assert _settled(targets[0], t_mark, 20).login_count == 20, (mode, res)
        # Targets are closed first, then the gateway.
        closing = [line for line in res.out.splitlines() if line.startswith("Disconnecting")]
        assert sorted(closing[:-1]) == sorted(f"Disconnecting from {ep.address}... done."
                                              for ep in targets), (mode, res)
        assert closing[-1] == f"Disconnecting from {gw.address}... done.", (mode, res)
        elapsed[mode] = res.elapsed
    assert elapsed["parallel"] < elapsed["serial"], elapsed


# ---------------------------------------------------------------------------------------------
# 2. routes
# ---------------------------------------------------------------------------------------------


def test_two_hop_chain_from_the_command_line(bed, fab):
    gw, gw2, deep = bed.gateway, bed.gateway2, bed.deep
    marks = _marks(gw, gw2, deep)
    res = fab("-g", f"{_hs(gw)},{_hs(gw2)}", "-H", deep.address, "where")
    assert res.code == 0, res
    line = res.conn(deep.address)
    assert line.startswith(f"conn={bed.gw2_address_towards_deep} ")
    assert [_settled(ep, m, 1).login_count for ep, m in zip((gw, gw2, deep), marks)] \
        == [1, 1, 1]
    closing = [line for line in res.out.splitlines() if line.startswith("Disconnecting")]
    assert closing == [f"Disconnecting from {ep.address}... done." for ep in (deep, gw2, gw)]


def test_two_hop_proxyjump_from_ssh_config(bed, fab, routes_config):
    cfg, _, _ = routes_config
    gw, gw2, deep = bed.gateway, bed.gateway2, bed.deep
    marks = _marks(gw, gw2, deep)
    res = fab("--ssh-config", "--ssh-config-path", str(cfg), "-H", "deep-pj", "where")
    assert res.code == 0, res
    assert "Warning" not in res.err, res
    line = res.conn("deep-pj")
    assert line.startswith(f"conn={bed.gw2_address_towards_deep} ")
    assert [_settled(ep, m, 1).login_count for ep, m in zip((gw, gw2, deep), marks)] \
        == [1, 1, 1]


def test_own_proxyjump_beats_gateway_option_with_a_warning(bed, fab, routes_config):
    cfg, text, _ = routes_config
    gw, gw2 = bed.gateway, bed.gateway2
    marks = _marks(gw, gw2)
    # gw2 cannot reach t1: had -g been used, the run would fail.
    res = fab("--ssh-config", "--ssh-config-path", str(cfg), "-g", "gw2", "-H", "t1-own",
              "where")
    assert res.code == 0, res
    line = _line_of(text, "  ProxyJump gw", exact=True)
    assert (f"Warning: t1-own: using the ssh_config ProxyJump 'gw' ({cfg} line {line}) of "
            "this host; env.gateway 'gw2' was ignored for it") in res.err.splitlines(), res
    assert res.conn("t1-own").startswith(f"conn={bed.gw_address_towards_targets} ")
    assert _settled(gw, marks[0], 1).login_count == 1
    assert _settled(gw2, marks[1]).connection_count == 0


def test_proxyjump_none_beats_gateway_option_and_goes_direct(bed, fab, routes_config):
    cfg, text, _ = routes_config
    gw, t2 = bed.gateway, bed.targets[2]
    marks = _marks(gw, t2)
    res = fab("--ssh-config", "--ssh-config-path", str(cfg), "-g", "gw", "-t", "5",
              "-H", "t2-none", "where")
    # t2 is reachable only through gw: the direct attempt must fail, naming the host.
    assert res.code == 1, res
    assert res.elapsed < 15, res
    fatal = [line for line in res.err.splitlines() if line.startswith("Fatal error:")]
    assert len(fatal) == 1 and t2.address in fatal[0], res
    assert "gateway" not in fatal[0].lower(), res
    line = _line_of(text, "ProxyJump none")
    assert (f"Warning: t2-none: using the ssh_config ProxyJump 'none' ({cfg} line {line}) of "
            "this host; env.gateway 'gw' was ignored for it") in res.err.splitlines(), res
    assert _settled(gw, marks[0]).connection_count == 0
    assert _settled(t2, marks[1]).connection_count == 0


def test_gateway_that_is_also_the_target(bed, fab):
    gw, gw2 = bed.gateway, bed.gateway2
    marks = _marks(gw)
    res = fab("-g", _hs(gw), "-H", _hs(gw), "where")
    assert res.code == 0, res
    line = res.conn(_hs(gw))
    assert line.startswith(f"conn={bed.client_address} ")  # direct, not through itself
    assert _settled(gw, marks[0], 1).login_count == 1
    closing = [line for line in res.out.splitlines() if line.startswith("Disconnecting")]
    assert closing == [f"Disconnecting from {gw.address}... done."]
    # The last hop of a chain as target: the chain stops before it.
    marks = _marks(gw, gw2)
    res = fab("-g", f"{_hs(gw)},{_hs(gw2)}", "-H", _hs(gw2), "where")
    assert res.code == 0, res
    assert res.conn(_hs(gw2)).startswith(f"conn={bed.gw_address_towards_gw2} ")
    assert [_settled(ep, m, 1).login_count for ep, m in zip((gw, gw2), marks)] == [1, 1]


def test_proxyjump_loop_is_reported(bed, fab, routes_config):
    cfg, _, _ = routes_config
    t = bed.targets
    marks = _marks(bed.gateway, t[3])
    res = fab("--ssh-config", "--ssh-config-path", str(cfg), "-H", "loopa", "where")
    assert res.code == 1, res
    assert res.elapsed < 15, res
    assert (f"Fatal error: Cannot work out a route to loopa: ProxyJump loop: "
            f"root@{t[3].address}:22 -> root@{t[4].address}:22 -> root@{t[3].address}:22"
            ) in res.err, res
    assert _settled(bed.gateway, marks[0]).connection_count == 0
    assert _settled(t[3], marks[1]).connection_count == 0


# ---------------------------------------------------------------------------------------------
# 3. unreachable targets behind the gateway
# ---------------------------------------------------------------------------------------------


def test_closed_port_behind_the_gateway(bed, fab):
    gw, t0, t5 = bed.gateway, bed.targets[0], bed.targets[5]
    bad = f"root@{t0.address}:2"
    res = fab("-g", _hs(gw), "-t", "5", "-H", bad, "where")
    assert res.code == 1, res
    assert res.elapsed < 10, res
    fatal = [line for line in res.err.splitlines() if line.startswith("Fatal error:")]
    assert fatal == [f"Fatal error: Could not open a channel to {t0.address}:2 (connect "
                     f"failed: Connection refused) through gateway {gw.address} "
                     f"({_display(gw)}) (tried 1 time)"], res

    # --skip-bad-hosts: a warning for the bad one, the good one still runs, success.
    marks = _marks(gw, t5)
    res = fab("-g", _hs(gw), "-t", "5", "--skip-bad-hosts", "-H", f"{bad},{t5.address}",
              "where")
    assert res.code == 0, res
    assert (f"Warning: Could not open a channel to {t0.address}:2 (connect failed: "
            f"Connection refused) through gateway {gw.address} ({_display(gw)}) "
            "(tried 1 time)") in res.err.splitlines(), res
    assert res.conn(t5.address).startswith(f"conn={bed.gw_address_towards_targets} ")
    assert res.out_lines(bad) == []
    assert _settled(gw, marks[0], 1).login_count == 1  # the failed host did not cost a login
    assert _settled(t5, marks[1], 1).login_count == 1


def test_dead_address_behind_the_gateway_is_bounded_by_the_timeout(bed, fab):
    """Nobody answers at this address on the gateway's target network. The gateway's kernel
    gives up after ~3 s of ARP (sooner once it remembers the failure); -t 2 ends the wait
    first, unless the gateway already knows. Either way both hops are named."""
    gw = bed.gateway
    dead = re.sub(r"\.\d+$", ".250", bed.targets[0].address)
    res = fab("-g", _hs(gw), "-t", "2", "-H", f"root@{dead}", "where")
    assert res.code == 1, res
    assert res.elapsed < 10, res
    fatal = [line for line in res.err.splitlines() if line.startswith("Fatal error:")]
    via = f"through gateway {gw.address} ({_display(gw)}) (tried 1 time)"
    assert fatal in (
        [f"Fatal error: Timed out opening a channel to {dead}:22 {via}"],
        [f"Fatal error: Could not open a channel to {dead}:22 (connect failed: No route to "
         f"host) {via}"]), res


# ---------------------------------------------------------------------------------------------
# 4. credentials per hop
# ---------------------------------------------------------------------------------------------


def test_gateway_refusing_authentication_is_named(bed, fab):
    gw = bed.gateway
    marks = _marks(gw, bed.targets[0])
    res = fab("-g", f"nosuchuser@{gw.address}", "--abort-on-prompts", "-H",
              bed.targets[0].address, "where")
    assert res.code == 1, res
    gw_key = f"nosuchuser@{gw.address}:22"
    target = f"root@{bed.targets[0].address}:22"
    assert (f"Connect error: Gateway {gw_key} refused authentication (on the way to {target}): "
            "no password was known") in res.err.splitlines(), res
    assert (f"Fatal error: Needed to prompt for a connection or sudo password (host: {gw_key}), "
            "but abort-on-prompts was set to True") in res.err.splitlines(), res
    assert _settled(gw, marks[0]).login_count == 0
    assert _settled(bed.targets[0], marks[1]).connection_count == 0  # never got that far


def test_different_passwords_for_gateway_and_target(tmp_path):
    from fabric.demo.server import LocalSSHServer, generate_host_key

    user = getpass.getuser()
    home = tmp_path / "server-home"
    home.mkdir()
    servers = []
    try:
        gw = LocalSSHServer(host_key=generate_host_key(), passwords={user: "gw-secret"},
                            name="pw-gateway", allow_forwarding=True, cwd=str(tmp_path),
                            env={"HOME": str(home)})
        gw.start()
        servers.append(gw)
        target = LocalSSHServer(host_key=generate_host_key(), passwords={user: "t-secret"},
                                name="pw-target", cwd=str(tmp_path), env={"HOME": str(home)})
        target.start()
        servers.append(target)
        known = tmp_path / "known_hosts"
        known.write_text(gw.known_hosts_line() + "\n" + target.known_hosts_line() + "\n")
        gw_key = f"{user}@127.0.0.1:{gw.port}"
        t_key = f"{user}@127.0.0.1:{target.port}"
        run = Fab(tmp_path, ["-a", "-k", "-D", "-r", "--system-known-hosts", str(known),
                             "-s", "/bin/sh -c", "--abort-on-prompts"])
        res = run("-g", gw_key, "-H", t_key, "where", extra_env={
            "FG_PASSWORDS": json.dumps({gw_key: "gw-secret", t_key: "t-secret"})})
        assert res.code == 0, res
        line = res.conn(t_key)
        assert line.startswith("conn=127.0.0.1 ") and line.endswith(f" {target.port}")
        # Each server accepts only its own password and no key: one login each means each
        # got the right one, and the target was reached through the gateway.
        assert (gw.logins, gw.connections) == (1, 1)
        assert (target.logins, target.connections) == (1, 1)
        assert "password" not in res.err.lower(), res
        # Control: the same passwords the other way round get nowhere, and nothing prompts.
        res = run("-g", gw_key, "-H", t_key, "where", extra_env={
            "FG_PASSWORDS": json.dumps({gw_key: "t-secret", t_key: "gw-secret"})})
        assert res.code == 1, res
        assert (f"Fatal error: Needed to prompt for a connection or sudo password (host: "
                f"{gw_key}), but abort-on-prompts was set to True") in res.err.splitlines(), res
        assert (gw.logins, target.logins, target.connections) == (1, 1, 1)
    finally:
        for server in reversed(servers):
            stop_and_check(server)


# ---------------------------------------------------------------------------------------------
# 5. nothing left behind
# ---------------------------------------------------------------------------------------------


def _processes_mentioning(text: str) -> List[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(f"{pid}: {cmd.strip()}")
    return found


def _established_from(ports: Sequence[int], peer: str, peer_port: int) -> List[str]:
    out = subprocess.run(["ss", "-Htn", "state", "established", "dst", f"{peer}:{peer_port}"],
                         capture_output=True, text=True, timeout=10).stdout
    left = []
    for line in out.splitlines():
        fields = line.split()
        local = next((f for f in fields if f.count(":") == 1 and "." in f), "")
        if local and int(local.rsplit(":", 1)[1]) in ports:
            left.append(line.strip())
    return left


# How sshd logs the end of a connection: an SSH disconnect message, the client closing TCP,
# or (a gateway's sshd leaving with unread data) a reset.
_ENDED = re.compile(r"(?:Received disconnect from|Connection closed by|Connection reset by|"
                    r"Read error from remote host) (\S+) port (\d+)")


def _log_since(ep, mark: int) -> str:
    return ep.sshd.log_path.read_bytes()[mark:].decode("utf-8", "replace")


def _still_open(ep, mark: int) -> List[tuple]:
    """Connections the sshd logged since ``mark`` without logging their end."""
    ended = {(a, int(p)) for a, p in _ENDED.findall(_log_since(ep, mark))}
    return [c for c in ep.sshd.counts(mark).connections if c not in ended]


def test_nothing_left_behind_after_proxycommand_and_gateway_routes(bed, fab, routes_config):
    require(subprocess.run(["ss", "-V"], capture_output=True).returncode == 0,
            "the ss tool (iproute2) is needed to list TCP connections")
    cfg, _, own_cfg = routes_config
    gw, gw2, deep, t0, t5 = (bed.gateway, bed.gateway2, bed.deep, bed.targets[0],
                             bed.targets[5])
    eps = (gw, gw2, deep, t0)  # t0 and t5 share one sshd
    marks = _marks(*eps)
    res = fab("--ssh-config", "--ssh-config-path", str(cfg), "-g", "gw",
              "-H", f"t0-pc,{t5.address},deep-pj", "where_and_children")
    assert res.code == 0, res
    assert res.conn("t0-pc").startswith(f"conn={bed.gw_address_towards_targets} ")
    # While it ran, fab's ProxyCommand child existed (so the check below means something).
    children = [line for line in res.out.splitlines() if line.startswith("[t0-pc] children=")]
    assert children and f"-F {own_cfg} -W {t0.address}:22 gw" in children[0], res
    # Two logins on gw: fab's own (shared by t5 and deep-pj) and the ProxyCommand's ssh.
    counts = _settled(gw, marks[0], 2)
    assert counts.login_count == 2, res
    assert [_settled(ep, m, 1).login_count for ep, m in zip(eps[1:], marks[1:])] == [1, 1, 2]
    ports = [port for _addr, port in counts.connections]

    def left() -> List[object]:
        found: List[object] = _processes_mentioning(str(own_cfg))
        found += _established_from(ports, gw.address, gw.port)
        for ep, mark in zip(eps, marks):
            found += [(ep.name, c) for c in _still_open(ep, mark)]
        return found

    deadline = time.monotonic() + 5
    while left() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left() == []
    mark = gw.sshd.log_mark()
    with socket.create_connection((gw.address, gw.port), timeout=5) as probe:
        # ...and the connection check does see a live connection.
        assert _established_from([probe.getsockname()[1]], gw.address, gw.port)
    # Leave the log quiet for the next test: the probe's own lines come a little later.
    gw.sshd.wait_counts(lambda c: c.connection_count >= 1, mark, timeout=5)
    deadline = time.monotonic() + 5
    while _still_open(gw, mark) and time.monotonic() < deadline:
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# 6. --show-route
# ---------------------------------------------------------------------------------------------


def test_show_route_explains_each_hop_without_connecting(bed, fab, routes_config):
    cfg, text, own_cfg = routes_config
    gw, gw2, deep, t0, t2 = bed.gateway, bed.gateway2, bed.deep, bed.targets[0], bed.targets[2]
    eps = (gw, gw2, deep, t0)
    marks = _marks(*eps)
    conf = ["--ssh-config", "--ssh-config-path", str(cfg)]

    def show(*argv: str) -> List[str]:
        res = fab(*argv)
        assert res.code == 0, res
        assert res.err == "", res
        return res.out.splitlines()

    assert show("--show-route", t0.address) == [
        f"Route to {t0.address} ({_display(t0)}):",
        f"  1. target  {_display(t0)}  [host string '{t0.address}']",
        "  direct connection (no env.gateway and no ssh_config ProxyJump/ProxyCommand applies)"]

    assert show("-g", _hs(gw), "--show-route", t0.address) == [
        f"Route to {t0.address} ({_display(t0)}):",
        f"  1. gateway {_display(gw)}  [env.gateway '{_hs(gw)}']",
        f"  2. target  {_display(t0)}  [host string '{t0.address}']"]

    chain = f"{_hs(gw)},{_hs(gw2)}"
    assert show("-g", chain, "--show-route", deep.address) == [
        f"Route to {deep.address} ({_display(deep)}):",
        f"  1. gateway {_display(gw)}  [env.gateway '{chain}' (entry 1 of 2)]",
        f"  2. gateway {_display(gw2)}  [env.gateway '{chain}' (entry 2 of 2)]",
        f"  3. target  {_display(deep)}  [host string '{deep.address}']"]

    where = f"({cfg} line {_line_of(text, 'ProxyJump gw,gw2')})"
    assert show(*conf, "--show-route", "deep-pj") == [
        f"Route to deep-pj ({_display(deep)}):",
        f"  1. gateway {_display(gw)} (alias gw)  [ProxyJump 'gw,gw2' of 'deep-pj' {where} "
        "(entry 1 of 2)]",
        f"  2. gateway {_display(gw2)} (alias gw2)  [ProxyJump 'gw,gw2' of 'deep-pj' {where} "
        "(entry 2 of 2)]",
        f"  3. target  {_display(deep)} (alias deep-pj)  [host string 'deep-pj' "
        f"(HostName {deep.address} from ssh_config)]"]

    where = f"({cfg} line {_line_of(text, 'ProxyCommand')})"
    command = f"ssh -F {own_cfg} -W {t0.address}:22 gw"
    assert show(*conf, "--show-route", "t0-pc") == [
        f"Route to t0-pc ({_display(t0)}):",
        f"  1. target  {_display(t0)} (alias t0-pc) via ProxyCommand '{command}'  "
        f"[host string 't0-pc' (HostName {t0.address} from ssh_config); ProxyCommand {where}]"]

    where = f"({cfg} line {_line_of(text, 'ProxyJump none')})"
    assert show(*conf, "-g", "gw", "--show-route", "t2-none") == [
        f"Route to t2-none ({_display(t2)}):",
        f"  1. target  {_display(t2)} (alias t2-none)  [host string 't2-none' "
        f"(HostName {t2.address} from ssh_config)]",
        f"  direct connection (ssh_config ProxyJump none {where})",
        f"  ignored: t2-none: using the ssh_config ProxyJump 'none' {where} of this host; "
        "env.gateway 'gw' was ignored for it"]

    assert show("-g", _hs(gw), "--show-route", _hs(gw)) == [
        f"Route to {_hs(gw)} ({_display(gw)}):",
        f"  1. target  {_display(gw)}  [host string '{_hs(gw)}']",
        f"  direct connection (env.gateway '{_hs(gw)}' starts with the target itself)",
        "  note: env.gateway entry 1 is the target itself; the hops from it on are skipped"]

    for ep, mark in zip(eps, marks):
        assert _settled(ep, mark).connection_count == 0, ep.name


# ---------------------------------------------------------------------------------------------
# 7. operations through a gateway
# ---------------------------------------------------------------------------------------------


def test_put_get_shell_tunnel_reboot_through_one_gateway_login(bed, fab, tmp_path):
    gw, t7 = bed.gateway, bed.targets[7]
    local_dir = tmp_path / "local"
    remote_dir = tmp_path / "remote"  # the bed shares this machine's file system
    local_dir.mkdir()
    remote_dir.mkdir()
    payload = os.urandom(300_000)
    (local_dir / "payload.bin").write_bytes(payload)
    marks = _marks(gw, t7)
    res = fab("-g", _hs(gw), "-H", t7.address, "everything", extra_env={
        "FG_LOCAL_DIR": str(local_dir), "FG_REMOTE_DIR": str(remote_dir),
        "FG_TUNNEL_PORT": str(30000 + os.getpid() % 20000)}, timeout=90)
    assert res.code == 0, res
    out = res.out_lines(t7.address)
    # put: the remote checksum is the local one
    assert f"{hashlib.sha256(payload).hexdigest()}  {remote_dir}/uploaded.bin" in out, res
    # get: the local copy's checksum is the remote one
    fetched = (local_dir / "fetched.bin").read_bytes()
    assert f"{hashlib.sha256(fetched).hexdigest()}  {remote_dir}/made.bin" in out, res
    assert len(fetched) == 200_000
    assert "shell-42" in res.out.splitlines(), res  # open_shell output is raw, unprefixed
    assert "tunnel-ok:ping" in out, res
    after = [line for line in out if line.startswith("after-reboot conn=")]
    assert after and after[0].split()[1] == f"conn={bed.gw_address_towards_targets}", res
    assert _settled(gw, marks[0], 1).login_count == 1
    # The target: the first login, and the one after reboot().
    assert _settled(t7, marks[1], 2).login_count == 2


# ---------------------------------------------------------------------------------------------
# found along the way
# ---------------------------------------------------------------------------------------------


def test_target_behind_gateway_gets_a_disconnect_even_while_a_writer_is_busy(
        bed, fabric_state):
    """Transport.close() while another thread holds the writer role (for a transport riding a
    gateway channel, often its push thread) must still deliver the DISCONNECT: close waits
    (bounded) for that writer instead of shutting the socket under it."""
    import threading

    from fabric import state
    from fabric.network import disconnect_all
    from fabric.state import env

    t = bed.targets[12]
    env.update(user="root", key_filename=[str(bed.identity)], no_agent=True, no_keys=True,
               disable_known_hosts=True, system_known_hosts=str(bed.known_hosts),
               reject_unknown_hosts=True, gateway=_hs(bed.gateway))
    try:
        client = state.connections[_hs(t)]
        _, out, _ = client.exec_command("echo $SSH_CONNECTION", timeout=15)
        port = int(out.read().decode().split()[1])
        mark = t.sshd.log_mark()
        transport = client.get_transport()
        deadline = time.monotonic() + 5
        while True:  # let the replies to the command's channel go out first
            time.sleep(0.2)
            with transport._lock:
                if not (transport._writing or transport._core.has_output()) \
                        or time.monotonic() > deadline:
                    transport._writing = True  # another thread is in the middle of a write...
                    break
        writer = threading.Timer(0.1, transport._drain_safely)  # ...and goes on shortly
        writer.start()
        disconnect_all()
        writer.join(5)
    finally:
        disconnect_all()
    gw_side = re.escape(bed.gw_address_towards_targets)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not re.search(
            rf"(?:Received disconnect from|Connection closed by) {gw_side} port {port}\b",
            _log_since(t, mark)):
        time.sleep(0.05)
    assert re.search(rf"Received disconnect from {gw_side} port {port}:11:",
                     _log_since(t, mark)), _log_since(t, mark)
