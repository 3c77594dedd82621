"""fabric.contrib against real OpenSSH servers (the test bed): rsync_project through one and
two gateways (env.gateway and ssh_config ProxyJump), and files helpers on a target that is
reachable only through the gateway.

In the isolated bed the targets cannot be reached from here except through ``gw``, so a
transfer that arrives proves the hop was taken; the sshd logs confirm it either way. The
servers share this machine's filesystem, so what arrived is also checked locally.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import time
from pathlib import Path
from typing import Dict, List

import pytest

from fabric.contrib.files import append, contains, exists, sed
from fabric.contrib.project import rsync_project
from fabric.state import env
from tests.testbed.prereq import require
from tests.testbed.sshd import descendants

pytestmark = [pytest.mark.openssh, pytest.mark.usefixtures("fabric_state")]


def _hs(bed, ep) -> str:
    return f"{bed.user}@{ep.address}:{ep.port}"


@pytest.fixture
def bed(testbed):
    require(shutil.which("rsync") is not None, "rsync is not installed (apt-get install rsync)")
    env.key_filename = [str(testbed.identity)]
    env.system_known_hosts = str(testbed.known_hosts)
    env.disable_known_hosts = True
    env.reject_unknown_hosts = True
    env.no_agent = True
    env.no_keys = True
    env.abort_exception = RuntimeError
    return testbed


def _tree(root: Path) -> Dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _make_source(root: Path) -> Path:
    src = root / "src tree"
    (src / "sub dir").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub dir" / "it's $x.bin").write_bytes(os.urandom(100_000))
    (src / "cache.pyc").write_text("skip me")
    return src


def _remote_sha(bed, ep, path: Path, jump: str) -> str:
    result = bed.run_ssh(ep.name, f"sha256sum {shlex.quote(str(path))}", jump=jump)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[0]


def _no_ssh_children() -> List[int]:
    """Our ssh/rsync descendants still alive after a bounded wait (should be none)."""
    deadline = time.monotonic() + 5
    while True:
        left = [p for p in descendants(os.getpid()) if _comm(p) in ("ssh", "rsync")]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def test_rsync_through_the_gateway_both_ways(bed, tmp_path):
    gw, t0 = bed.gateway, bed.targets[0]
    env.host_string = _hs(bed, t0)
    env.gateway = _hs(bed, gw)
    src = _make_source(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    marks = gw.sshd.log_mark(), t0.sshd.log_mark()
    rsync_project(str(dest), str(src) + "/", exclude=["*.pyc"], capture=True)
    expected = {k: v for k, v in _tree(src).items() if not k.endswith(".pyc")}
    assert _tree(dest) == expected
    # Seen from the target itself (through OpenSSH's own -J).
    assert _remote_sha(bed, t0, dest / "sub dir" / "it's $x.bin", gw.name) == \
        expected["sub dir/it's $x.bin"]
    assert gw.sshd.wait_counts(lambda c: c.login_count >= 1, marks[0]).login_count >= 1
    assert t0.sshd.wait_counts(lambda c: c.login_count >= 1, marks[1]).login_count >= 1

    # Download with --delete: a local extra file goes, the tree comes back.
    back = tmp_path / "back"
    back.mkdir()
    (back / "stale").write_text("x")
    rsync_project(str(dest) + "/", str(back), upload=False, delete=True, capture=True)
    assert _tree(back) == expected
    assert _no_ssh_children() == []


def test_rsync_two_gateways_from_env(bed, tmp_path):
    gw, gw2, deep = bed.gateway, bed.gateway2, bed.deep
    env.host_string = _hs(bed, deep)
    env.gateway = f"{_hs(bed, gw)},{_hs(bed, gw2)}"
    src = _make_source(tmp_path)
    dest = tmp_path / "deep dest"
    dest.mkdir()
    marks = [ep.sshd.log_mark() for ep in (gw, gw2, deep)]
    rsync_project(str(dest), str(src), capture=True)  # no slash: creates dest/"src tree"
    assert _tree(dest / "src tree") == _tree(src)
    for ep, mark in zip((gw, gw2, deep), marks):
        assert ep.sshd.wait_counts(lambda c: c.login_count >= 1, mark).login_count >= 1, \
            ep.name


def test_rsync_route_from_ssh_config_proxyjump(bed, tmp_path):
    """The two-hop route comes from the ssh_config (ProxyJump list); no env.gateway."""
    gw, gw2, deep = bed.gateway, bed.gateway2, bed.deep
    config = tmp_path / "ssh_config"
    config.write_text("Host deep\n  ProxyJump gw,gw2\n" + bed.ssh_config.read_text())
    env.use_ssh_config = True
    env.ssh_config_path = str(config)
    env.host_string = "deep"
    src = _make_source(tmp_path)
    dest = tmp_path / "cfg dest"
    dest.mkdir()
    marks = [ep.sshd.log_mark() for ep in (gw, gw2, deep)]
    rsync_project(str(dest), str(src) + "/", capture=True)
    assert _tree(dest) == _tree(src)
    for ep, mark in zip((gw, gw2, deep), marks):
        assert ep.sshd.wait_counts(lambda c: c.login_count >= 1, mark).login_count >= 1, \
            ep.name


@pytest.mark.parametrize("alias,head,via", [
    # The target's own ProxyCommand (tokens expanded by the config lookup).
    ("t3", "Host t3\n  ProxyCommand ssh -F {cfg} -W %h:%p gw\n", ("gw",)),
    # A gateway reached by ProxyCommand, then ProxyJump from it to the target.
    ("deep", "Host deep\n  ProxyJump gw2\nHost gw2\n  ProxyCommand ssh -F {cfg} -W %h:%p gw\n",
     ("gw", "gw2")),
], ids=["target-proxycommand", "gateway-proxycommand"])
def test_rsync_route_with_proxycommand_from_ssh_config(bed, tmp_path, alias, head, via):
    config = tmp_path / "ssh_config"
    config.write_text(head.format(cfg=bed.ssh_config) + bed.ssh_config.read_text())
    env.use_ssh_config = True
    env.ssh_config_path = str(config)
    env.host_string = alias
    eps = {ep.name: ep for ep in bed.endpoints()}
    marks = {name: eps[name].sshd.log_mark() for name in via}
    src = _make_source(tmp_path)
    dest = tmp_path / "pc dest"
    dest.mkdir()
    rsync_project(str(dest), str(src) + "/", exclude="*.pyc", capture=True)
    assert _tree(dest) == {k: v for k, v in _tree(src).items() if not k.endswith(".pyc")}
    for name, mark in marks.items():
        assert eps[name].sshd.wait_counts(lambda c: c.login_count >= 1, mark).login_count >= 1
    assert _no_ssh_children() == []


def test_files_helpers_on_a_target_behind_the_gateway(bed, tmp_path):
    gw, t1 = bed.gateway, bed.targets[1]
    env.host_string = _hs(bed, t1)
    env.gateway = _hs(bed, gw)
    f = tmp_path / "remote conf"
    path = str(f)
    assert not exists(path)
    append(path, ["listen = 80", "name = \"it's $HOME\""])
    append(path, "listen = 80")
    assert exists(path)
    assert contains(path, "name = \"it's $HOME\"", exact=True)
    sed(path, "listen = 80", "listen = 8080")
    assert f.read_text() == "listen = 8080\nname = \"it's $HOME\"\n"
    assert Path(path + ".bak").read_text().startswith("listen = 80\n")


def test_rsync_checks_every_hop_host_key_with_ssh_opts(bed, tmp_path, capfd):
    """ssh_opts reach the gateway hop too, and a gateway whose key is unknown stops the
    transfer with a clear failure instead of a prompt."""
    gw, t2 = bed.gateway, bed.targets[2]
    env.host_string = _hs(bed, t2)
    env.gateway = _hs(bed, gw)
    env.system_known_hosts = None
    env.reject_unknown_hosts = False
    good = str(bed.known_hosts)
    without_gw = tmp_path / "known_hosts_without_gw"
    names = (gw.known_hosts_name() + " ",)
    without_gw.write_text("".join(line + "\n" for line in good_lines(bed)
                                  if not line.startswith(names)))
    src = _make_source(tmp_path)
    dest = tmp_path / "kh dest"
    dest.mkdir()
    opts = "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes"
    rsync_project(str(dest), str(src) + "/", ssh_opts=opts.format(shlex.quote(good)),
                  capture=True)
    assert _tree(dest) == _tree(src)
    shutil.rmtree(dest)
    dest.mkdir()
    capfd.readouterr()
    with pytest.raises(RuntimeError, match="local"):
        rsync_project(str(dest), str(src) + "/",
                      ssh_opts=opts.format(shlex.quote(str(without_gw))))
    assert "Host key verification failed" in "".join(capfd.readouterr())
    assert list(dest.iterdir()) == []
    assert _no_ssh_children() == []


def good_lines(bed) -> List[str]:
    return [line for line in bed.known_hosts.read_text().splitlines() if line.strip()]
