"""Self-tests of the real-OpenSSH test bed, using OpenSSH's own client as the oracle."""

from __future__ import annotations

import secrets
import subprocess

import pytest

from tests.testbed import topology as topo_mod
from tests.testbed.prereq import require, strict
from tests.testbed.sshd import count_log, pid_alive
from tests.testbed.topology import NetnsTopology, leftovers, tcp_connect_error

pytestmark = pytest.mark.openssh


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"ssh failed ({result.returncode}): {result.stderr}"
    return result.stdout


def test_ci_runs_the_isolated_topology(testbed):
    if strict():
        assert testbed.kind == "netns", "CI must exercise the namespace topology, not the fallback"
    require(testbed.isolated, "namespaces unavailable: running on the loopback fallback")
    assert testbed.kind == "netns" and len(testbed.namespaces) == 4


@pytest.mark.netns
def test_client_reaches_gateway_but_no_target(isolated_testbed):
    bed = isolated_testbed
    mark = bed.gateway.sshd.log_mark()
    assert tcp_connect_error(bed.gateway.address, bed.gateway.port) is None
    # Let sshd log this probe now, so later tests' marks do not see it.
    assert bed.gateway.sshd.wait_counts(lambda c: c.connection_count >= 1, mark).connection_count
    for ep in bed.targets[:20] + [bed.gateway2, bed.deep]:
        err = tcp_connect_error(ep.address, ep.port, timeout=2.0)
        assert err is not None, f"client reached {ep.name} ({ep.address}) without the gateway"


def test_ssh_jump_reaches_target_with_one_gateway_login(testbed):
    gw, t0 = testbed.gateway, testbed.targets[0]
    gw_mark, t_mark = gw.sshd.log_mark(), t0.sshd.log_mark()
    out = _ok(testbed.run_ssh("t0", 'echo "$SSH_CONNECTION"', jump="gw"))
    src, _sport, dst, dport = out.split()
    assert (dst, int(dport)) == (t0.address, t0.port)
    if testbed.isolated:
        assert src == testbed.gw_address_towards_targets
    gw_counts = gw.sshd.counts(gw_mark)
    assert gw_counts.login_count == 1, gw_counts
    assert gw_counts.connection_count == 1, gw_counts
    assert t0.sshd.counts(t_mark).login_count == 1


@pytest.mark.netns
def test_two_hop_jump_and_deep_target_only_behind_gw2(isolated_testbed):
    bed = isolated_testbed
    marks = {ep.name: ep.sshd.log_mark() for ep in (bed.gateway, bed.gateway2, bed.deep)}
    out = _ok(bed.run_ssh("deep", 'echo "$SSH_CONNECTION"', jump="gw,gw2"))
    src, _sport, dst, _dport = out.split()
    assert dst == bed.deep.address and src == bed.gw2_address_towards_deep
    for ep in (bed.gateway, bed.gateway2, bed.deep):
        assert ep.sshd.counts(marks[ep.name]).login_count == 1, ep.name
    # The first gateway alone cannot reach the deep target.
    assert bed.run_ssh("deep", "true", jump="gw", options=["ConnectTimeout=5"]).returncode != 0


def test_fanout_has_twenty_reachable_targets(testbed):
    assert len(testbed.targets) >= 20
    addresses = {t.address for t in testbed.targets[:20]}
    assert len(addresses) == 20
    for idx in (1, 19):
        out = _ok(testbed.run_ssh(f"t{idx}", 'echo "$SSH_CONNECTION"', jump="gw"))
        assert out.split()[2] == testbed.targets[idx].address


@pytest.mark.parametrize("alg", ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                                 "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256"])
def test_gateway_serves_every_host_key_type(testbed, alg):
    # StrictHostKeyChecking is on, so success means the server proved this key type.
    _ok(testbed.run_ssh("gw", "true", options=[f"HostKeyAlgorithms={alg}"]))


def test_sftp_subsystem_through_gateway(testbed, openssh_tools):
    require(bool(openssh_tools["sftp"]), "OpenSSH sftp client not installed")
    r = subprocess.run([openssh_tools["sftp"], "-F", str(testbed.ssh_config), "-J", "gw",
                        "-b", "-", "t0"], input="pwd\n", capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Remote working directory" in r.stdout


def test_login_counter_reads_verbose_lines():
    log = "\n".join([
        "Connection from 10.1.0.1 port 40000 on 10.1.0.2 port 22 rdomain \"\"",
        "Accepted key ED25519 SHA256:abc found at /x/authorized_keys:1",
        "Accepted publickey for alice from 10.1.0.1 port 40000 ssh2: ED25519 SHA256:abc",
        "Connection from 10.1.0.1 port 40002 on 10.1.0.2 port 22 rdomain \"\"",
        "Failed publickey for alice from 10.1.0.1 port 40002 ssh2: ED25519 SHA256:zzz",
        "Accepted password for bob from 10.1.0.9 port 5 ssh2",
    ])
    counts = count_log(log)
    assert counts.logins == [("publickey", "alice", "10.1.0.1"), ("password", "bob", "10.1.0.9")]
    assert counts.connections == [("10.1.0.1", 40000), ("10.1.0.1", 40002)]


@pytest.mark.netns
def test_names_and_range_are_checked_free(isolated_testbed, keystore, openssh_tools, tmp_path,
                                          monkeypatch):
    bed = isolated_testbed
    suffixes = iter([bed.suffix, bed.suffix, "0f0f0f"])
    other = NetnsTopology(tmp_path, keystore, openssh_tools, suffix_factory=lambda: next(suffixes))
    other._pick_names()
    assert other.suffix == "0f0f0f"
    taken_octet = int(str(bed.net.network_address).split(".")[1])
    draws = iter([taken_octet - 64, taken_octet - 64, (taken_octet - 64 + 7) % 190])
    monkeypatch.setattr(topo_mod.secrets, "randbelow", lambda n: next(draws))
    other._pick_network()
    assert not other.net.overlaps(bed.net)


@pytest.mark.netns
def test_teardown_removes_exactly_what_it_made(keystore, openssh_tools, tmp_path):
    require(topo_mod.os.geteuid() == 0, "needs root for namespaces")
    decoy = f"fgw-decoy-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", decoy], check=True)
    try:
        bed = NetnsTopology(tmp_path, keystore, openssh_tools, n_targets=3).start()
        names, links, routes = list(bed.namespaces), list(bed.root_links), list(bed.root_routes)
        pids = [s.pid for s in bed.sshds]
        assert len(names) == 4 and all(pid_alive(p) for p in pids)
        # A live session through the bed leaves per-connection sshd children to clean up too.
        assert bed.run_ssh("t0", "true", jump="gw").returncode == 0
        bed.teardown()
        assert not any(pid_alive(p) for p in pids)
        assert leftovers(names, links, routes) == []
        assert decoy in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                       text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", decoy], check=False)
