"""fabric.network against real OpenSSH servers: the gateway test bed and the auth bed.

Topology (``testbed``): the client reaches only ``gw``; the targets sit behind ``gw`` (one
sshd); ``gw2`` is behind ``gw`` and ``deep`` behind ``gw2``. Logins are counted from the sshd
logs.
"""

from __future__ import annotations

import getpass
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List

import pytest

from fabric import state
from fabric.exceptions import NetworkError
from fabric.network import describe_route
from fabric.state import env

pytestmark = [pytest.mark.openssh, pytest.mark.usefixtures("fabric_state")]


@pytest.fixture
def bed(testbed, clean_net):
    """Fabric set up for the bed: its key, host keys checked strictly against its file."""
    env.user = testbed.user
    env.key_filename = [str(testbed.identity)]
    env.no_agent = True
    env.no_keys = True
    env.disable_known_hosts = True
    env.system_known_hosts = str(testbed.known_hosts)
    env.reject_unknown_hosts = True
    env.timeout = 10
    return testbed


def _hs(ep, user: str) -> str:
    return f"{user}@{ep.hostport}" if ep.port != 22 else f"{user}@{ep.address}"


def _run(client, command: str) -> str:
    _, out, _ = client.exec_command(command, timeout=15)
    return out.read().decode().strip()


def _wait_logins(ep, mark: int, n: int) -> int:
    """Logins logged since ``mark`` once at least ``n`` appeared (bounded wait), plus a short
    settle so a surplus login would be counted too."""
    ep.sshd.wait_counts(lambda c: c.login_count >= n, mark, timeout=10)
    time.sleep(0.3)
    return ep.sshd.counts(mark).login_count


def _in_threads(host_strings: List[str], func) -> List[object]:
    def run(hs: str) -> object:
        return state.isolated_context(host_string=hs, parallel=True,
                                      linewise=True).run(func, hs)

    with ThreadPoolExecutor(max_workers=len(host_strings)) as pool:
        return list(pool.map(run, host_strings))


def test_ten_targets_through_the_gateway_cost_one_gateway_login(bed):
    gw = bed.gateway
    env.gateway = _hs(gw, bed.user)
    targets = bed.targets[:10]
    gw_mark, t_mark = gw.sshd.log_mark(), targets[0].sshd.log_mark()
    for ep in targets:
        dst = _run(state.connections[_hs(ep, bed.user)], 'echo "$SSH_CONNECTION"').split()
        assert (dst[2], int(dst[3])) == (ep.address, ep.port)
    assert _wait_logins(targets[0], t_mark, 10) == 10
    assert _wait_logins(gw, gw_mark, 1) == 1
    assert len(state.connections) == 11


def test_parallel_targets_share_one_gateway_login(bed):
    gw = bed.gateway
    env.gateway = _hs(gw, bed.user)
    hosts = [_hs(ep, bed.user) for ep in bed.targets[10:20]]
    gw_mark, t_mark = gw.sshd.log_mark(), bed.targets[10].sshd.log_mark()
    results = _in_threads(hosts, lambda hs: _run(state.connections[hs], "echo ok"))
    assert results == ["ok"] * 10
    assert _wait_logins(bed.targets[10], t_mark, 10) == 10
    assert _wait_logins(gw, gw_mark, 1) == 1


def test_two_hop_gateway_chain(bed):
    gw, gw2, deep = bed.gateway, bed.gateway2, bed.deep
    env.gateway = f"{_hs(gw, bed.user)},{_hs(gw2, bed.user)}"
    marks = [ep.sshd.log_mark() for ep in (gw, gw2, deep)]
    assert _run(state.connections[_hs(deep, bed.user)], "echo deep") == "deep"
    assert [_wait_logins(ep, m, 1) for ep, m in zip((gw, gw2, deep), marks)] == [1, 1, 1]
    lines = describe_route(_hs(deep, bed.user)).splitlines()
    assert [line.split()[2] for line in lines[1:4]] == [
        f"{bed.user}@{ep.address}:{ep.port}" for ep in (gw, gw2, deep)]


def test_two_hop_proxy_jump_from_ssh_config_beats_env_gateway(bed, tmp_path, capsys):
    config = tmp_path / "ssh_config"
    config.write_text("Host deep\n  ProxyJump gw2\nHost gw2\n  ProxyJump gw\n" +
                      bed.ssh_config.read_text())
    env.use_ssh_config = True
    env.ssh_config_path = str(config)
    env.gateway = "nobody@gateway.invalid"  # never dialled: deep's own route wins
    marks = [ep.sshd.log_mark() for ep in (bed.gateway, bed.gateway2)]
    client = state.connections["deep"]
    assert _run(client, "echo via-config") == "via-config"
    assert [_wait_logins(ep, m, 1) for ep, m in zip((bed.gateway, bed.gateway2), marks)] \
        == [1, 1]
    err = capsys.readouterr().err
    assert "Warning: deep: using the ssh_config ProxyJump 'gw2'" in err
    assert "env.gateway 'nobody@gateway.invalid' was ignored" in err
    text = describe_route("deep")
    assert f"1. gateway {bed.user}@" in text and "(alias gw)" in text
    assert "(alias gw2)" in text and f"{config} line 4" in text
    # Another target behind gw reuses the cached gw connection (same route).
    mark = bed.gateway.sshd.log_mark()
    env.gateway = "gw"
    assert _run(state.connections["t0"], "echo t0") == "t0"
    assert _wait_logins(bed.gateway, mark, 0) == 0


def test_closed_port_behind_the_gateway(bed):
    gw, t0 = bed.gateway, bed.targets[0]
    env.gateway = _hs(gw, bed.user)
    env.timeout = 5
    port = 1 if t0.port != 1 else 2
    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        state.connections[f"{bed.user}@{t0.address}:{port}"]
    assert time.monotonic() - started < 5
    err = info.value
    assert (err.phase, err.hop_index) == ("channel-open", 1)
    assert "(connect failed: Connection refused) through gateway" in str(err)
    assert f"{bed.user}@{gw.address}:{gw.port}" in str(err)


@pytest.fixture
def auth(auth_bed, tmp_path, clean_net):
    env.no_agent = True
    env.no_keys = True
    env.disable_known_hosts = True
    env.system_known_hosts = str(auth_bed.write_known_hosts(tmp_path / "known_hosts"))
    env.reject_unknown_hosts = True
    return auth_bed


def test_password_login_from_env_passwords(auth, monkeypatch):
    monkeypatch.setattr(getpass, "getpass", lambda *a: pytest.fail("prompted"))
    key = f"{auth.user}@127.0.0.1:{auth.port}"
    env.passwords = {key: auth.password}
    env.password = "not-this-one"
    assert _run(state.connections[key], "id -un") == auth.user


def test_wrong_password_with_abort_on_prompts_aborts(auth, monkeypatch, capsys):
    monkeypatch.setattr(getpass, "getpass", lambda *a: pytest.fail("prompted"))
    key = f"{auth.user}@127.0.0.1:{auth.port}"
    env.passwords = {key: "wrong-" + auth.password}
    env.abort_on_prompts = True
    env.host_string = key
    with pytest.raises(SystemExit):
        state.connections[key]
    assert f"Needed to prompt for a connection or sudo password (host: {key}), but " \
           "abort-on-prompts was set to True" in capsys.readouterr().err
    assert key not in state.connections


def test_prompted_password_is_stored_for_that_host(auth, monkeypatch):
    prompts: List[str] = []
    monkeypatch.setattr(getpass, "getpass",
                        lambda p, s=None: prompts.append(p) or auth.password)
    key = f"{auth.user}@127.0.0.1:{auth.port}"
    assert _run(state.connections[key], "echo in") == "in"
    assert prompts == [f"[{key}] Login password for '{auth.user}': "]
    assert env.passwords == {key: auth.password} and env.password is None
