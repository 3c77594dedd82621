"""Jump chains against real OpenSSH servers (the test bed): paramiko.route + connect_via_config.

Topology: the client reaches only ``gw``; ``t0``..``t99`` sit behind ``gw`` (one sshd, so a
target can forward to another target); ``gw2`` is behind ``gw`` and ``deep`` behind ``gw2``.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from paramiko import AuthenticationException, BadHostKeyException, SSHClient, SSHException
from paramiko.route import (
    RouteChannelError,
    RouteError,
    RouteHostKeyError,
    connect_route,
    jump_chain,
    resolve_route,
)
from tests.testbed.keys import public_line

pytestmark = pytest.mark.openssh
config_mod = pytest.importorskip("paramiko.config")
SSHConfig = config_mod.SSHConfig


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _config_file(bed, tmp_path: Path, head: str = "", name: str = "ssh_config") -> Path:
    """The bed's ssh_config with ``head`` in front (ssh_config takes the first value)."""
    path = tmp_path / name
    path.write_text(head.strip("\n") + "\n" + bed.ssh_config.read_text())
    return path


def _config(bed, tmp_path: Path, head: str = "") -> object:
    return SSHConfig.from_path(str(_config_file(bed, tmp_path, head)))


def _known_hosts(bed, path: Path, swap: Optional[Dict[str, object]] = None,
                 rename: Optional[Dict[str, str]] = None, drop: tuple = ()) -> Path:
    """A known_hosts file for the bed; ``swap`` gives an endpoint another's keys, ``rename``
    files an endpoint's keys under another name, ``drop`` leaves endpoints out."""
    lines = []
    for ep in bed.endpoints():
        if ep.name in drop:
            continue
        source = (swap or {}).get(ep.name, ep)
        name = (rename or {}).get(ep.name, ep.known_hosts_name())
        lines += [f"{name} {public_line(k)}" for k in source.sshd.host_keys.values()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _ssh_connection(client: SSHClient) -> List[str]:
    _, out, _ = client.exec_command('echo "$SSH_CONNECTION"', timeout=15)
    return out.read().decode().split()


def _transport_threads() -> set:
    return {t for t in threading.enumerate() if t.name == "paramiko.Transport" and t.is_alive()}


@pytest.fixture
def no_leaks():
    """Every transport a test starts is gone (bounded wait) once the test closed its clients."""
    before = _transport_threads()
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _transport_threads() - before:
        time.sleep(0.05)
    assert not (_transport_threads() - before), "transport threads left running"


def _logins(ep, mark: int, at_least: int = 1):
    return ep.sshd.wait_counts(lambda c: c.login_count >= at_least, mark)


# ---------------------------------------------------------------------------------------------
# reaching targets
# ---------------------------------------------------------------------------------------------


def test_one_hop_with_exactly_one_gateway_login(testbed, tmp_path, no_leaks):
    bed = testbed
    gw, t0 = bed.gateway, bed.targets[0]
    cfg = _config(bed, tmp_path, "Host gw\n  ServerAliveInterval 7\n")
    marks = (gw.sshd.log_mark(), t0.sshd.log_mark())
    client = SSHClient()
    route = client.connect_via_config("t0", cfg, proxy_jump="gw")
    try:
        assert [h.alias for h in route.hops] == ["gw", "t0"]
        src, _sport, dst, dport = _ssh_connection(client)
        assert (dst, int(dport)) == (t0.address, t0.port)
        if bed.isolated:
            assert src == bed.gw_address_towards_targets
        chain = jump_chain(client)
        assert chain is not None and len(chain.gateways) == 1
        gw_transport = chain.gateways[0].get_transport()
        assert (gw_transport.server_alive_interval, gw_transport.server_alive_count_max) == (7, 3)
        # Transport errors later on name the real host, not the host-key name.
        assert client.get_transport().peer_name == f"{t0.address}:{t0.port}" or \
            client.get_transport().peer_name == f"[{t0.address}]:{t0.port}"
    finally:
        client.close()
    assert not gw_transport.is_active() and jump_chain(client) is None
    gw_counts = _logins(gw, marks[0])
    assert (gw_counts.login_count, gw_counts.connection_count) == (1, 1), gw_counts
    assert _logins(t0, marks[1]).login_count == 1


@pytest.mark.parametrize("head", [
    "Host deep\n  ProxyJump gw,gw2\n",
    # gw2's own stanza says how to reach it: followed as OpenSSH's nested -J does.
    "Host deep\n  ProxyJump gw2\nHost gw2\n  ProxyJump gw\n",
], ids=["list", "nested"])
def test_two_hops_from_a_config_file(testbed, tmp_path, head, no_leaks):
    bed = testbed
    path = _config_file(bed, tmp_path, head)
    eps = (bed.gateway, bed.gateway2, bed.deep)
    marks = [ep.sshd.log_mark() for ep in eps]
    with SSHClient() as client:
        route = client.connect_via_config("deep", str(path))  # a path works too
        assert [h.alias for h in route.hops] == ["gw", "gw2", "deep"]
        src, _sport, dst, _dport = _ssh_connection(client)
        assert dst == bed.deep.address
        if bed.isolated:
            assert src == bed.gw2_address_towards_deep
    for ep, mark in zip(eps, marks):
        assert _logins(ep, mark).login_count == 1, ep.name


def test_three_hops_through_forwarding_targets(testbed, tmp_path, no_leaks):
    bed = testbed
    cfg = _config(bed, tmp_path)
    t0, t2 = bed.targets[0], bed.targets[2]
    gw_mark, t_mark = bed.gateway.sshd.log_mark(), t0.sshd.log_mark()
    route = resolve_route("t2", cfg, proxy_jump="gw,t0,t1")
    assert [h.alias for h in route.hops] == ["gw", "t0", "t1", "t2"]
    client = connect_route(route, timeout=20)
    try:
        assert _ssh_connection(client)[2] == t2.address
        assert [g.get_transport().is_active() for g in jump_chain(client).gateways] == [True] * 3
    finally:
        client.close()
    assert _logins(bed.gateway, gw_mark).login_count == 1
    # t0, t1 and t2 share one sshd: three logins there.
    assert _logins(t0, t_mark, 3).login_count == 3


def test_proxy_command_from_a_config_file(testbed, tmp_path, no_leaks):
    bed = testbed
    t3 = bed.targets[3]
    head = f"Host t3\n  ProxyCommand ssh -F {bed.ssh_config} -W %h:%p gw\n"
    gw_mark = bed.gateway.sshd.log_mark()
    client = SSHClient()
    route = client.connect_via_config("t3", _config(bed, tmp_path, head))
    proxy = client.get_transport().sock
    try:
        assert len(route) == 1 and route.proxy_command == (
            f"ssh -F {bed.ssh_config} -W {t3.address}:{t3.port} gw")
        assert _ssh_connection(client)[2] == t3.address
    finally:
        client.close()
    assert proxy.process.poll() is not None, "ProxyCommand not reaped"
    assert _logins(bed.gateway, gw_mark).login_count == 1


def test_failing_proxy_command_names_exit_status_and_stderr(testbed, tmp_path, no_leaks):
    head = ("Host pfail\n  HostName 192.0.2.1\n"
            "  ProxyCommand sh -c 'echo no way to %h >&2; exit 3'\n")
    start = time.monotonic()
    with pytest.raises(RouteError) as info:
        SSHClient().connect_via_config("pfail", _config(testbed, tmp_path, head), timeout=10)
    err = info.value
    assert time.monotonic() - start < 8
    assert (err.hop_index, err.phase) == (0, "proxycommand"), str(err)
    assert "no way to 192.0.2.1" in str(err) and "3" in err.reason


def test_first_of_proxyjump_and_proxycommand_wins_and_none(testbed, tmp_path, no_leaks):
    bed = testbed
    t4, t5, t6 = bed.targets[4:7]
    head = f"""
Host fw-jump
  HostName {t4.address}
  Port {t4.port}
  ProxyJump gw
  ProxyCommand sh -c 'echo the ProxyCommand must not run >&2; exit 9'
Host fw-cmd
  HostName {t5.address}
  Port {t5.port}
  ProxyCommand ssh -F {bed.ssh_config} -W %h:%p gw
  ProxyJump no-such-gateway.invalid
Host gw
  ProxyJump none
Host *
  ProxyJump gw
"""
    cfg = _config(bed, tmp_path, head)
    for host, want in (("fw-jump", t4), ("fw-cmd", t5), ("t6", t6)):
        with SSHClient() as client:
            route = client.connect_via_config(host, cfg, timeout=20)
            assert _ssh_connection(client)[2] == want.address, host
            if host == "fw-cmd":
                assert len(route) == 1 and route.proxy_command is not None
            else:
                # ProxyJump none on gw: the gateway itself is dialled directly.
                assert [h.alias for h in route.hops] == ["gw", host]
    # And "none" given by the caller: direct (gw is reachable directly, t6 is not).
    with SSHClient() as client:
        assert len(client.connect_via_config("gw", cfg, proxy_jump="none")) == 1


# ---------------------------------------------------------------------------------------------
# host keys and authentication per hop
# ---------------------------------------------------------------------------------------------


def test_wrong_key_for_the_middle_hop_names_hop_1(testbed, tmp_path, no_leaks):
    bed = testbed
    bad = _known_hosts(bed, tmp_path / "bad_known_hosts", swap={"gw2": bed.deep})
    head = f"Host gw2\n  UserKnownHostsFile {bad}\nHost deep\n  ProxyJump gw,gw2\n"
    marks = [ep.sshd.log_mark() for ep in (bed.gateway, bed.gateway2)]
    with pytest.raises(RouteHostKeyError) as info:
        SSHClient().connect_via_config("deep", _config(bed, tmp_path, head))
    err = info.value
    assert isinstance(err, BadHostKeyException) and isinstance(err, RouteError)
    assert (err.hop_index, err.phase, err.alias) == (1, "hostkey", "gw2")
    assert err.hop == f"{bed.user}@{bed.gateway2.address}:{bed.gateway2.port}"
    assert "hop 1 gw2" in str(err) and "does not match" in str(err)
    assert err.expected_key is not None and err.key != err.expected_key
    assert _logins(bed.gateway, marks[0]).login_count == 1
    assert bed.gateway2.sshd.counts(marks[1]).login_count == 0


def test_host_key_alias_and_per_hop_known_hosts(testbed, tmp_path, no_leaks):
    bed = testbed
    kh = _known_hosts(bed, tmp_path / "aliased", rename={"gw2": "gw2-alias"})
    cfg_alias = _config(bed, tmp_path, f"Host gw2\n  HostKeyAlias gw2-alias\n"
                                       f"  UserKnownHostsFile {kh}\n")
    with SSHClient() as client:
        client.connect_via_config("deep", cfg_alias, proxy_jump="gw,gw2")
        assert _ssh_connection(client)[2] == bed.deep.address
    # Without the alias the same file has no key for gw2's own name: refused at hop 1.
    cfg_plain = _config(bed, tmp_path, f"Host gw2\n  UserKnownHostsFile {kh}\n")
    with pytest.raises(RouteError) as info:
        SSHClient().connect_via_config("deep", cfg_plain, proxy_jump="gw,gw2")
    assert (info.value.hop_index, info.value.phase) == (1, "hostkey")
    assert "no " in info.value.reason and bed.gateway2.address in info.value.reason


def test_strict_host_key_checking_per_hop(testbed, tmp_path, no_leaks):
    bed = testbed
    t7 = bed.targets[7]
    kh = tmp_path / "sub" / "t7_known_hosts"  # does not exist yet
    base = f"Host t7\n  UserKnownHostsFile {kh}\n  ProxyJump gw\n"
    # yes: the target is unknown (its gateway is known): refused, naming the target hop.
    with pytest.raises(RouteError) as info:
        SSHClient().connect_via_config("t7", _config(bed, tmp_path, base))
    assert (info.value.hop_index, info.value.phase, info.value.alias) == (1, "hostkey", "t7")
    # accept-new: accepted and written under the target's own name.
    cfg_new = _config(bed, tmp_path, base.replace("ProxyJump gw\n", "ProxyJump gw\n"
                                                  "  StrictHostKeyChecking accept-new\n"))
    with SSHClient() as client:
        client.connect_via_config("t7", cfg_new)
    names = {line.split()[0] for line in kh.read_text().splitlines()}
    assert names == {t7.known_hosts_name()}
    # Now known: strict checking passes.
    with SSHClient() as client:
        client.connect_via_config("t7", _config(bed, tmp_path, base))
        assert _ssh_connection(client)[2] == t7.address
    # no: a changed key is let through (with a warning), as OpenSSH does.
    _known_hosts(bed, kh, swap={f"t{i}": bed.deep for i in range(len(bed.targets))})
    cfg_no = _config(bed, tmp_path, base + "  StrictHostKeyChecking no\n")
    with SSHClient() as client:
        client.connect_via_config("t7", cfg_no)
    with pytest.raises(RouteHostKeyError):
        SSHClient().connect_via_config("t7", _config(bed, tmp_path, base))


def test_authentication_failure_names_the_hop(testbed, tmp_path, no_leaks):
    bed = testbed
    head = "Host gw2\n  User nobody-here\n"
    with pytest.raises(RouteError) as info:
        SSHClient().connect_via_config("deep", _config(bed, tmp_path, head),
                                       proxy_jump="gw,gw2")
    err = info.value
    assert isinstance(err, AuthenticationException)
    assert (err.hop_index, err.phase) == (1, "auth")
    assert f"nobody-here@{bed.gateway2.address}" in str(err)


# ---------------------------------------------------------------------------------------------
# failures behind the gateway
# ---------------------------------------------------------------------------------------------


def test_closed_port_behind_the_gateway(testbed, tmp_path, no_leaks):
    bed = testbed
    cfg = _config(bed, tmp_path)
    route = resolve_route("t0", cfg, port=2, proxy_jump="gw")
    start = time.monotonic()
    with pytest.raises(RouteChannelError) as info:
        connect_route(route, channel_timeout=5)
    assert time.monotonic() - start < 5.5
    err = info.value
    assert (err.hop_index, err.phase, err.code) == (1, "channel-open", 2)
    text = str(err)
    assert f"t0 ({bed.targets[0].address}:2)" in text and "refused by gw (" in text
    assert f"@{bed.gateway.address}" in text and "Connection refused" in text


# ---------------------------------------------------------------------------------------------
# a shared gateway
# ---------------------------------------------------------------------------------------------


def test_cached_gateway_is_reused_serially_with_one_login(testbed, tmp_path, no_leaks):
    bed = testbed
    cfg = _config(bed, tmp_path)
    cache: Dict[object, SSHClient] = {}
    calls = []

    def connector(hop, dial):
        calls.append(hop.route_key)
        if hop.route_key not in cache:
            cache[hop.route_key] = dial()
        return cache[hop.route_key]

    mark = bed.gateway.sshd.log_mark()
    try:
        for i in range(8, 13):
            client = connect_route(resolve_route(f"t{i}", cfg, proxy_jump="gw"),
                                   hop_connector=connector)
            assert _ssh_connection(client)[2] == bed.targets[i].address
            client.close()
            # Lent gateways stay open when the target closes.
            assert next(iter(cache.values())).get_transport().is_active()
        assert len(cache) == 1 and len(calls) == 5
    finally:
        for c in cache.values():
            c.close()
    counts = _logins(bed.gateway, mark)
    assert (counts.login_count, counts.connection_count) == (1, 1), counts


def test_twenty_threads_share_one_gateway_transport(testbed, tmp_path, no_leaks):
    bed = testbed
    cfg = _config(bed, tmp_path)
    mark = bed.gateway.sshd.log_mark()
    gw = connect_route(resolve_route("gw", cfg))
    failures: List[str] = []
    done = []

    def worker(n: int) -> None:
        for rnd in range(10):
            target = f"t{(10 + n) % len(bed.targets)}"
            try:
                client = connect_route(resolve_route(target, cfg, proxy_jump="gw"),
                                       hop_connector=lambda hop, dial: gw, timeout=30)
                try:
                    _, out, _ = client.exec_command(f"echo {n}-{rnd}", timeout=30)
                    if out.read().decode().strip() != f"{n}-{rnd}":
                        failures.append(f"{target} round {rnd}: wrong output")
                finally:
                    client.close()  # while the other threads' channels are busy
                done.append(1)
            except Exception as e:
                failures.append(f"{target} round {rnd}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(20)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "workers hung"
        assert failures == [] and len(done) == 200
        assert gw.get_transport().is_active()
        _, out, _ = gw.exec_command("echo still-here", timeout=10)
        assert out.read().strip() == b"still-here"
    finally:
        gw.close()
    assert _logins(bed.gateway, mark).login_count == 1


# ---------------------------------------------------------------------------------------------
# closing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", list(itertools.permutations(("gw", "t0", "t1"))),
                         ids=lambda o: ",".join(o))
def test_nested_connections_close_in_any_order(testbed, tmp_path, order, no_leaks):
    bed = testbed
    cfg = _config(bed, tmp_path)
    # Gateways from a hop_connector are the caller's: each client is closed on its own here.
    target = connect_route(resolve_route("t1", cfg, proxy_jump="gw,t0"),
                           hop_connector=lambda hop, dial: dial())
    gw, t0 = jump_chain(target).gateways
    clients = {"gw": gw, "t0": t0, "t1": target}
    upstream = {"gw": (), "t0": ("gw",), "t1": ("gw", "t0")}
    closed: set = set()
    for name in order:
        start = time.monotonic()
        clients[name].close()
        assert time.monotonic() - start < 5, f"closing {name} took too long"
        closed.add(name)
        for other, t in ((o, clients[o].get_transport()) for o in clients if o not in closed):
            if not closed.intersection(upstream[other]):
                assert t.is_active(), f"{other} went down when {name} closed"
                continue
            # Its carrier is gone: it notices (bounded) and says so when used.
            deadline = time.monotonic() + 5
            while t.is_active() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not t.is_active(), f"{other} still active after {name} closed"
            with pytest.raises(SSHException) as info:
                clients[other].exec_command("true", timeout=5)
            assert "not active" in str(info.value)
    for c in clients.values():
        c.close()


# ---------------------------------------------------------------------------------------------
# first-hop failures and per-hop credential order (no server needed)
# ---------------------------------------------------------------------------------------------


def test_first_hop_tcp_and_dns_failures_are_typed(no_leaks):
    with pytest.raises(RouteError) as info:
        connect_route(resolve_route("127.0.0.1", None, port=1), timeout=3)
    assert (info.value.hop_index, info.value.phase) == (0, "tcp")
    assert "Connection refused" in str(info.value) and "127.0.0.1:1" in str(info.value)
    start = time.monotonic()
    with pytest.raises(RouteError) as info:
        connect_route(resolve_route("no-such-host.invalid", None), timeout=3)
    assert (info.value.hop_index, info.value.phase) == (0, "dns")
    assert time.monotonic() - start < 4


def test_auth_sources_follow_openssh_order(tmp_path, keystore, monkeypatch):
    from paramiko import agent as agent_mod
    from paramiko.pkey import PKey
    from paramiko.route import Hop, _HopAuth

    configured = keystore.user_key("route_cfg")
    other = keystore.user_key("route_other")
    explicit = keystore.user_key("route_explicit")
    cfg_key, other_key = PKey.from_path(configured), PKey.from_path(other)

    class FakeAgent:
        def __init__(self, *args, **kwargs):
            self.closed = False

        def get_keys(self):
            return (other_key, cfg_key)

        def close(self):
            self.closed = True

    monkeypatch.setattr(agent_mod, "Agent", FakeAgent)
    hop = Hop(alias="h", hostname="h", user="u", identity_files=(str(configured),))

    def describe(auth):
        out = []
        for src in auth.get_sources():
            key = getattr(src, "pkey", None)
            out.append((type(src).__name__, key.get_fingerprint() if key is not None else None))
        return out

    fp = {p: PKey.from_path(p).get_fingerprint() for p in (configured, other, explicit)}
    # Target: explicit key file first, then IdentityFile, then agent keys not yet offered,
    # then password and keyboard-interactive.
    auth = _HopAuth(hop, key_filenames=[str(explicit)], password="pw")
    assert describe(auth) == [
        ("OnDiskPrivateKey", fp[explicit]), ("OnDiskPrivateKey", fp[configured]),
        ("InMemoryPrivateKey", fp[other]), ("Password", None), ("_PasswordPrompts", None)]
    auth.close()
    # IdentitiesOnly: the agent may only offer keys named by an identity file.
    only = Hop(alias="h", hostname="h", user="u", identity_files=(str(other) + ".pub",),
               identities_only=True)
    assert describe(_HopAuth(only)) == [("InMemoryPrivateKey", fp[other])]
    # IdentityAgent none: no agent at all; no IdentityFile: the default files (none here).
    monkeypatch.setenv("HOME", str(tmp_path))
    bare = Hop(alias="h", hostname="h", user="u", identity_agent="none")
    assert describe(_HopAuth(bare)) == []


def test_transport_behind_a_gateway_nudges_after_the_peer_goes_quiet(testbed):
    """A transport riding a gateway channel sends one 1-byte IGNORE once the target has
    sent something and we stay silent (so the gateway's delayed ACK cannot hold the
    target's next packet), and never keeps sending them while idle."""
    import time as _time

    import paramiko as _paramiko

    key = _paramiko.Ed25519Key.from_private_key_file(str(testbed.identity))

    def connect(sock, ep):
        client = _paramiko.SSHClient()
        client.load_host_keys(str(testbed.known_hosts))
        client.connect(ep.address, ep.port, username=testbed.user, pkey=key, sock=sock,
                       look_for_keys=False, allow_agent=False, timeout=10)
        return client

    gw = connect(None, testbed.gateway)
    try:
        target = testbed.targets[0]
        chan = gw.get_transport().open_channel("direct-tcpip", (target.address, target.port),
                                               ("127.0.0.1", 0), timeout=10)
        inner = connect(chan, target)
        t = inner.get_transport()
        assert t._push, "the inner transport should be fed by the gateway's reader"
        sent = []
        real = t.send_ignore
        t.send_ignore = lambda n=None: (sent.append(n), real(n))[1]
        # Let the post-login exchange (answered with its own IGNORE) pass, so what follows
        # can only be the quiet-period nudge.
        _time.sleep(0.3)
        sent.clear()
        _, stdout, _ = inner.exec_command("echo nudged", timeout=10)
        assert stdout.read() == b"nudged\n"
        assert stdout.channel.recv_exit_status() == 0
        deadline = _time.monotonic() + 2
        while not sent and _time.monotonic() < deadline:
            _time.sleep(0.01)
        assert sent and set(sent) == {1}
        settled = len(sent)
        _time.sleep(0.5)  # idle: no new packets from the target, so no new nudges
        assert len(sent) == settled
        inner.close()
    finally:
        gw.close()
