"""fabric.network: host strings, ssh_config, prompts, the connection cache and gateway routes.

Network tests use the in-process servers of ``fabric.demo.server`` on 127.0.0.1 (the
``local_ssh``/``local_gateway_pair`` fixtures, plus password-only servers made here).
"""

from __future__ import annotations

import getpass
import io
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import paramiko
from fabric import network, state
from fabric.exceptions import NetworkError
from fabric.network import (
    HostConnectionCache,
    denormalize,
    describe_route,
    disconnect_all,
    from_dict,
    join_host_strings,
    key_filenames,
    key_from_env,
    needs_host,
    normalize,
    normalize_to_string,
    parse_host_string,
    prompt_for_password,
    resolve_host_route,
    ssh_config,
    to_dict,
)
from fabric.state import env, output
from paramiko.route import RouteChannelError, RouteError, resolve_route

pytestmark = pytest.mark.usefixtures("fabric_state")

ME = getpass.getuser()


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _use_key(endpoint) -> None:
    env.key_filename = [endpoint.key_filename]
    env.no_agent = True
    env.no_keys = True
    env.disable_known_hosts = True  # the servers' keys are new each session


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _in_threads(host_strings: List[str], func) -> List[object]:
    """Run ``func(host_string)`` per host in threads, each in its own Fabric context (as
    parallel execute does)."""
    def run(hs: str) -> object:
        ctx = state.isolated_context(host_string=hs, parallel=True, linewise=True)
        return ctx.run(func, hs)

    with ThreadPoolExecutor(max_workers=len(host_strings)) as pool:
        return list(pool.map(run, host_strings))


def _echo(client, text: str = "hi") -> str:
    _, out, _ = client.exec_command(f"echo {text}", timeout=10)
    return out.read().decode().strip()


@pytest.fixture
def config_file(tmp_path):
    """Write an ssh_config and switch Fabric to it."""
    def write(text: str, name: str = "ssh_config") -> Path:
        path = tmp_path / name
        path.write_text(text)
        env.use_ssh_config = True
        env.ssh_config_path = str(path)
        return path

    return write


# ---------------------------------------------------------------------------------------------
# host strings
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, user, host, port", [
    ("host", None, "host", None),
    ("user@host", "user", "host", None),
    ("user@host:2222", "user", "host", "2222"),
    ("host:", None, "host", None),
    ("u@h@host:22", "u@h", "host", "22"),
    ("[::1]:2222", None, "::1", "2222"),
    ("::1", None, "::1", None),
    ("2001:db8::1", None, "2001:db8::1", None),
    ("u@[fe80::1%eth0]:22", "u", "fe80::1%eth0", "22"),
    ("fe80::1%eth0", None, "fe80::1%eth0", None),
    ("[fe80::1%enp0s3]", None, "fe80::1%enp0s3", None),
    ("[::ffff:10.0.0.1]:99", None, "::ffff:10.0.0.1", "99"),
    ("@host", None, "host", None),
])
def test_parse_host_string(text, user, host, port):
    assert parse_host_string(text) == {"user": user, "host": host, "port": port}


@pytest.mark.parametrize("text", ["zz::1:bad!", "[::1]x"])
def test_unparsable_host_strings_are_value_errors(text):
    with pytest.raises(ValueError, match="host string"):
        parse_host_string(text)


@pytest.mark.parametrize("text, normalized, short", [
    ("host", "me@host:22", "host"),
    ("[::1]:2222", "me@[::1]:2222", "[::1]:2222"),
    ("u@[fe80::1%eth0]:22", "u@[fe80::1%eth0]:22", "u@fe80::1%eth0"),
    ("host:", "me@host:22", "host"),
    ("me@web:2200", "me@web:2200", "web:2200"),
    ("2001:db8::7", "me@[2001:db8::7]:22", "2001:db8::7"),
])
def test_normalize_and_denormalize_table(text, normalized, short):
    env.user = "me"
    assert normalize_to_string(text) == normalized
    assert denormalize(normalized) == short


def test_join_to_dict_from_dict_round_trip():
    env.user = "me"
    assert join_host_strings("u", "h") == "u@h"
    assert join_host_strings("u", "::1", "22") == "u@[::1]:22"
    d = to_dict("deploy@[::1]:2200")
    assert d == {"user": "deploy", "host": "::1", "port": "2200",
                 "host_string": "deploy@[::1]:2200"}
    assert from_dict(d) == "deploy@[::1]:2200"
    assert normalize("") == ("", "", "") and normalize("", omit_port=True) == ("", "")
    assert normalize("x@h:1", omit_port=True) == ("x", "h")


def test_normalize_precedence_without_ssh_config(config_file):
    config_file("Host web\n  HostName 10.1.1.1\n  Port 2202\n  User cfguser\n")
    env.use_ssh_config = False  # the file exists but is not to be read
    env.user = "envuser"
    env.port = "2100"
    assert normalize("web") == ("envuser", "web", "2100")
    assert normalize("u@web:9") == ("u", "web", "9")
    env.port = ""
    assert normalize("web")[2] == "22"  # env.default_port


def test_normalize_precedence_with_ssh_config(config_file):
    config_file("Host web\n  HostName 10.1.1.1\n  Port 2202\n  User cfguser\n"
                "Host *\n  User star\n")
    env.port = "2100"
    env.user = env.local_user
    # ssh_config Port beats env.port (Fabric 1.x); the host string's port beats both.
    assert normalize("web") == ("cfguser", "10.1.1.1", "2202")
    assert normalize("u@web:9") == ("u", "10.1.1.1", "9")
    assert normalize("other") == ("star", "other", "2100")
    # An env.user other than the local user beats ssh_config User.
    env.user = "explicit"
    assert normalize("web")[0] == "explicit"


def test_ssh_config_is_reread_when_the_path_or_file_changes(config_file, tmp_path):
    first = config_file("Host web\n  HostName one.example\n", "a")
    assert ssh_config("web")["hostname"] == "one.example"
    config_file("Host web\n  HostName two.example\n", "b")
    assert ssh_config("web")["hostname"] == "two.example"
    env.ssh_config_path = str(first)
    first.write_text("Host web\n  HostName three.example\n  Port 2\n")
    assert ssh_config("web")["hostname"] == "three.example"
    env.use_ssh_config = False
    assert ssh_config("web") == {}


def test_missing_ssh_config_warns_once(tmp_path, capsys):
    env.use_ssh_config = True
    env.ssh_config_path = str(tmp_path / "nope")
    assert ssh_config("web") == {} and ssh_config("web") == {}
    assert normalize("web") == (env.user, "web", "22")
    err = capsys.readouterr().err
    assert err.count(f"Warning: Unable to load SSH config file '{tmp_path / 'nope'}'") == 1


def test_broken_ssh_config_warns_with_the_reason(config_file, capsys):
    config_file("Host web\n  Port notanumber\n")
    assert ssh_config("web") == {}
    assert "Unable to load SSH config file" in capsys.readouterr().err


def test_key_filenames_adds_the_hosts_identity_files(config_file, tmp_path):
    config_file("Host web\n  IdentityFile ~/.ssh/web_key\n")
    env.key_filename = "/k/one"
    env.host_string = "web"
    home = str(Path("~").expanduser())
    assert key_filenames() == ["/k/one", f"{home}/.ssh/web_key"]
    env.key_filename = ["/k/a", "", "/k/b"]
    assert key_filenames("other") == ["/k/a", "/k/b"]


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_key_from_env(kind):
    key = {"ed25519": paramiko.Ed25519Key.generate, "ecdsa": paramiko.ECDSAKey.generate,
           "rsa": lambda: paramiko.RSAKey.generate(2048)}[kind]()
    text = io.StringIO()
    key.write_private_key(text, password="sesame")
    assert key_from_env() is None  # no env.key
    env.key = text.getvalue()
    assert key_from_env("wrong") is None
    loaded = key_from_env("sesame")
    assert type(loaded) is type(key) and loaded.asbytes() == key.asbytes()
    env.key = "not a key"
    assert key_from_env("sesame") is None


# ---------------------------------------------------------------------------------------------
# prompts
# ---------------------------------------------------------------------------------------------


def test_needs_host_prompts_once_and_applies_the_host(monkeypatch):
    asked: List[str] = []
    answers = iter(["", "deploy@web:2222"])
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or next(answers))

    @needs_host
    def task(x):
        return env.host_string, env.user, env.port, x

    assert task.undecorated.__name__ == "task"
    assert task(5) == ("deploy@web:2222", "deploy", "2222", 5)
    assert asked == [network.HOST_PROMPT] * 2
    assert asked[0] == "No hosts found. Please specify (single) host string for connection: "
    assert task(6)[3] == 6 and len(asked) == 2  # a host is set now: no more prompts


def test_needs_host_aborts_on_eof_and_with_abort_on_prompts(monkeypatch, capsys):
    @needs_host
    def task():
        return "ran"

    def eof(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    with pytest.raises(SystemExit):
        task()
    env.abort_on_prompts = True
    monkeypatch.setattr("builtins.input", lambda p: pytest.fail("prompted"))
    with pytest.raises(SystemExit):
        task()
    assert "abort-on-prompts was set to True" in capsys.readouterr().err


def test_prompt_for_password_reasks_empty_answers(monkeypatch):
    calls: List[Tuple[str, object]] = []
    answers = iter(["", "", "s3cret"])

    def fake(prompt, stream=None):
        calls.append((prompt, stream))
        return next(answers)

    monkeypatch.setattr(getpass, "getpass", fake)
    env.host_string = "deploy@web:22"
    env.user = "deploy"
    stream = io.StringIO()
    assert prompt_for_password(stream=stream) == "s3cret"
    assert [c[0] for c in calls] == ["[deploy@web:22] Login password for 'deploy': "] * 3
    assert all(c[1] is stream for c in calls)
    calls.clear()
    answers = iter(["x"])
    assert prompt_for_password("Code", no_colon=True) == "x"
    assert calls == [("Code", sys.stderr)]


def test_prompt_for_password_aborts_when_prompts_are_forbidden(monkeypatch, capsys):
    monkeypatch.setattr(getpass, "getpass", lambda *a: pytest.fail("prompted"))
    env.abort_on_prompts = True
    env.host_string = "web"
    with pytest.raises(SystemExit):
        prompt_for_password()
    assert "Needed to prompt for a connection or sudo password (host: web)" in \
        capsys.readouterr().err


def test_prompt_for_password_eof_is_a_clean_abort(monkeypatch, capsys):
    def eof(*a):
        raise EOFError

    monkeypatch.setattr(getpass, "getpass", eof)
    with pytest.raises(SystemExit):
        prompt_for_password("Password: ", no_colon=True)
    assert "Fatal error: No password given" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# cache keys and bookkeeping (no network)
# ---------------------------------------------------------------------------------------------


class _FakeClient:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1

    def get_transport(self):
        return None


def test_cache_keys_are_normalized():
    env.user = "me"
    cache = HostConnectionCache()
    a, b = _FakeClient(), _FakeClient()
    cache["web"] = a
    cache["other@web:2222"] = b
    assert list(cache.keys()) == ["me@web:22", "other@web:2222"]
    assert cache["me@web"] is a and cache["web:22"] is a and cache["other@web:2222"] is b
    assert "web" in cache and "me@web:22" in cache and "web:2222" not in cache
    assert cache.get("web") is a and cache.get("nope") is None
    del cache["web"]
    assert "web" not in cache and a.closed == 0  # del forgets, it does not close
    cache.drop("other@web:2222")
    assert b.closed == 1 and len(cache) == 0
    cache.drop("never-there")  # unknown keys are fine


def test_cache_keys_follow_ssh_config(config_file):
    config_file("Host web\n  HostName 10.9.9.9\n  User alice\n  Port 2022\n")
    cache = HostConnectionCache()
    cache["web"] = client = _FakeClient()
    assert list(cache.keys()) == ["alice@10.9.9.9:2022"] and cache["web"] is client


def test_disconnect_all_order_and_text_with_fakes(capsys):
    env.user = "me"
    cache = state.connections
    gw_route = resolve_route("gw", None, user="me", port=22)
    t_route = resolve_route("t", None, user="me", port=2200, proxy_jump="me@gw:22")
    gw2 = resolve_route("gw2", None, user="bob", port=22, proxy_jump="me@gw:22")
    closed: List[str] = []

    class Recording(_FakeClient):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def close(self):
            closed.append(self.name)

    cache._store("me@gw:22", Recording("gw"), gw_route, 0, target=False)
    cache._store("bob@gw2:22", Recording("gw2"), gw2, 1, target=False)
    cache["x@plain:22"] = Recording("plain")
    cache._store("me@t:2200", Recording("t"), t_route, 1, target=True)
    cache._meta["me@gw:22"].gateway = True
    cache._meta["bob@gw2:22"].gateway = True
    disconnect_all()
    # Targets first (in connection order), then gateways, the longest route first.
    assert closed == ["plain", "t", "gw2", "gw"]
    assert capsys.readouterr().out.splitlines() == [
        "Disconnecting from x@plain... done.",
        "Disconnecting from t:2200... done.",
        "Disconnecting from bob@gw2... done.",
        "Disconnecting from gw... done.",
    ]
    disconnect_all()  # idempotent: nothing left, nothing printed
    assert capsys.readouterr().out == "" and len(cache) == 0
    cache["quiet"] = Recording("quiet")
    output.status = False
    disconnect_all()
    assert closed[-1] == "quiet" and capsys.readouterr().out == ""


# ---------------------------------------------------------------------------------------------
# routes (no network)
# ---------------------------------------------------------------------------------------------


def test_gateway_chain_is_dialled_in_order_and_described():
    env.user = "me"
    env.gateway = "alice@gw1:2222, [::1]:2200"
    route, notes = resolve_host_route("db1")
    assert [h.key for h in route.hops] == [("alice", "gw1", 2222), ("me", "::1", 2200),
                                           ("me", "db1", 22)]
    assert notes == []
    text = describe_route("db1")
    lines = text.splitlines()
    assert lines[0] == "Route to db1 (me@db1:22):"
    assert lines[1].startswith("  1. gateway alice@gw1:2222  [env.gateway "
                               "'alice@gw1:2222, [::1]:2200' (entry 1 of 2)]")
    assert lines[2].startswith("  2. gateway me@[::1]:2200  [env.gateway")
    assert lines[3] == "  3. target  me@db1:22  [host string 'db1']"


def test_gateway_port_does_not_follow_the_targets_port():
    env.user = "me"
    env.port = "2201"  # what execute() sets for a host on 2201
    env.gateway = "gw"
    route, _ = resolve_host_route("web:2201")
    assert [h.key for h in route.hops] == [("me", "gw", 22), ("me", "web", 2201)]


def test_direct_route_is_described_as_such():
    env.user = "me"
    assert describe_route("web").splitlines() == [
        "Route to web (me@web:22):",
        "  1. target  me@web:22  [host string 'web']",
        "  direct connection (no env.gateway and no ssh_config ProxyJump/ProxyCommand "
        "applies)",
    ]


def test_a_host_that_is_its_own_gateway_goes_direct():
    env.user = "me"
    env.gateway = "me@fridge:22"
    route, notes = resolve_host_route("fridge")
    assert len(route) == 1 and route.target.key == ("me", "fridge", 22)
    assert notes == []  # not worth a warning (Fabric 1.x was silent too)...
    assert "note: env.gateway entry 1 is the target itself" in describe_route("fridge")
    env.gateway = "a,fridge,b"
    route, _ = resolve_host_route("fridge")
    assert [h.hostname for h in route.hops] == ["a", "fridge"]


def test_loops_are_network_errors(config_file):
    config_file("Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n")
    with pytest.raises(NetworkError) as info:
        resolve_host_route("a")
    assert info.value.phase == "config" and "loop" in str(info.value)
    env.gateway = "x,y,x"
    env.use_ssh_config = False
    with pytest.raises(NetworkError, match="loop"):
        resolve_host_route("t")


def test_ssh_config_route_beats_env_gateway_with_one_warning(config_file, capsys):
    path = config_file("Host web\n  HostName 10.0.0.5\n  ProxyJump bastion\n"
                       "Host bastion\n  HostName b.example\n  User ops\n"
                       "Host direct\n  ProxyJump none\n")
    env.user = "me"
    env.gateway = "gw.example"
    route, notes = resolve_host_route("web")
    assert [h.key for h in route.hops] == [("ops", "b.example", 22), ("me", "10.0.0.5", 22)]
    assert len(notes) == 1 and "env.gateway 'gw.example' was ignored" in notes[0]
    assert f"{path} line 3" in notes[0] and "ProxyJump 'bastion'" in notes[0]
    text = describe_route("web")
    assert "1. gateway ops@b.example:22 (alias bastion)" in text
    assert f"ProxyJump 'bastion' of 'web' ({path} line 3)" in text
    assert "ignored: web: using the ssh_config ProxyJump 'bastion'" in text
    # "ProxyJump none" is the host's own choice too: direct, env.gateway ignored.
    route, notes = resolve_host_route("direct")
    assert len(route) == 1 and "ProxyJump 'none'" in notes[0]
    # Connecting warns once per host, not once per connection attempt.
    plan = network._plan_route("web")
    network._announce(plan)
    network._announce(plan)
    assert capsys.readouterr().err.count("Warning: web: using the ssh_config ProxyJump") == 1


def test_every_hop_uses_its_own_stanza_and_proxy_command_tokens(config_file):
    config_file("Host gw\n  HostName 127.0.0.2\n  Port 2022\n  User gwuser\n"
                "  IdentityFile /keys/gw\n  StrictHostKeyChecking accept-new\n"
                "Host t\n  ProxyCommand nc %h %p\n  User tuser\n")
    env.gateway = "gw"
    route, notes = resolve_host_route("t:2200")
    assert len(route) == 1 and route.proxy_command == "nc t 2200"  # runtime port, not 22
    assert notes and "ProxyCommand" in notes[0]
    route, _ = resolve_host_route("elsewhere")
    gw, target = route.hops
    assert gw.key == ("gwuser", "127.0.0.2", 2022) and gw.identity_files == ("/keys/gw",)
    plan = network._plan_route("elsewhere")
    # The gateway's stanza decides its host keys; the target gets Fabric's defaults.
    assert plan.policies[0] is None and plan.route.hops[0].strict_host_key_checking == \
        "accept-new"
    assert isinstance(plan.policies[1], paramiko.AutoAddPolicy)
    env.reject_unknown_hosts = True
    assert isinstance(network._plan_route("elsewhere").policies[1], paramiko.RejectPolicy)


def test_fabric_known_hosts_options_per_hop(tmp_path):
    env.system_known_hosts = str(tmp_path / "system")
    hop = network._plan_route("h").route.target
    assert hop.global_known_hosts_files == (str(tmp_path / "system"),)
    assert hop.known_hosts_files == ("~/.ssh/known_hosts",)
    env.disable_known_hosts = True
    assert network._plan_route("h").route.target.known_hosts_files == ()


def _route_error(route, index, phase, reason, cls=RouteError, **extra):
    err = cls(f"hop {index}: {phase}: {reason}", hop_index=index,
              hop=route.hops[index].display, phase=phase, reason=reason, route=route)
    for k, v in extra.items():
        setattr(err, k, v)
    return err


def test_network_error_messages_name_the_route():
    env.user = "user"
    env.gateway = "bastion"
    plan = network._plan_route("db1")
    route = plan.route

    def msg(index, phase, reason, tries=1, cls=RouteError, **extra):
        e = network._network_error(_route_error(route, index, phase, reason, cls, **extra),
                                   plan, tries)
        assert e.hop_index == index and e.host == "db1" and e.phase == phase
        assert e.hop == route.hops[index].display
        return str(e)

    assert msg(1, "channel-open", "no answer within 10s") == \
        "Timed out opening a channel to db1:22 through gateway bastion " \
        "(user@bastion:22) (tried 1 time)"
    assert msg(1, "channel-open", "x", 2, RouteChannelError, code=2,
               text="Connection refused") == \
        "Could not open a channel to db1:22 (connect failed: Connection refused) through " \
        "gateway bastion (user@bastion:22) (tried 2 times)"
    assert msg(0, "auth", "no way in").startswith(
        "Gateway user@bastion:22 refused authentication (on the way to user@db1:22)")
    assert msg(0, "tcp", "TCP connect to bastion:22 failed: 1.2.3.4: timed out after 10s",
               3) == "Timed out trying to connect to bastion (gateway on the way to " \
                     "user@db1:22) (tried 3 times)"
    assert msg(0, "dns", "cannot resolve") == \
        "Name lookup failed for bastion (gateway on the way to user@db1:22)"
    env.gateway = None
    plan = network._plan_route("db1")
    route = plan.route
    assert msg(0, "tcp", "TCP connect to db1:22 failed: 127.0.0.1: Connection refused", 2) \
        == "Low level socket error connecting to host db1 on port 22: Connection refused " \
           "(tried 2 times)"
    assert msg(0, "hostkey", "changed", expected_key=object()) == \
        "Host key for db1 did not match pre-existing key! Server's key was changed " \
        "recently, or possible man-in-the-middle attack."


# ---------------------------------------------------------------------------------------------
# connecting to the local test servers
# ---------------------------------------------------------------------------------------------


def test_direct_connection_through_the_cache(local_ssh, clean_net):
    _use_key(local_ssh)
    logins = local_ssh.server.logins
    client = state.connections[local_ssh.host_string]
    assert _echo(client) == "hi"
    assert state.connections[local_ssh.host_string] is client  # cached
    assert local_ssh.server.logins == logins + 1
    # connect() reconnects and replaces the cached client.
    again = state.connections.connect(local_ssh.host_string)
    assert again is not client and state.connections[local_ssh.host_string] is again
    assert client.get_transport() is None
    assert local_ssh.server.logins == logins + 2
    # A cached connection of ours that died is dialled again on the next access.
    again.get_transport().close()
    third = state.connections[local_ssh.host_string]
    assert third is not again and _echo(third) == "hi"
    # One stored by hand is handed back as it is.
    state.connections[local_ssh.host_string] = fake = _FakeClient()
    assert state.connections[local_ssh.host_string] is fake
    third.close()


def test_default_channel_uses_the_cache(local_ssh, clean_net):
    _use_key(local_ssh)
    env.host_string = local_ssh.host_string
    chan = state.default_channel()
    chan.exec_command("echo via-channel")
    chan.settimeout(10)
    assert chan.makefile("rb").read().strip() == b"via-channel"
    chan.close()


def test_gateway_is_logged_in_to_once_for_many_targets_serially(local_gateway_pair,
                                                                 clean_net, capsys):
    gw, tg = local_gateway_pair.gateway, local_gateway_pair.target
    _use_key(gw)
    env.gateway = gw.host_string
    gw_logins, tg_logins = gw.server.logins, tg.server.logins
    hosts = [f"u{i}@127.0.0.1:{tg.port}" for i in range(5)]
    for hs in hosts:
        assert _echo(state.connections[hs], hs) == hs
    assert gw.server.logins - gw_logins == 1
    assert tg.server.logins - tg_logins == 5
    assert f"{ME}@127.0.0.1:{gw.port}" in state.connections.keys()
    capsys.readouterr()
    disconnect_all()
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Disconnecting from u{i}@127.0.0.1:{tg.port}... done." for i in range(5)] \
        + [f"Disconnecting from {denormalize(gw.host_string)}... done."]


def test_gateway_is_logged_in_to_once_from_parallel_threads(local_gateway_pair, clean_net):
    gw, tg = local_gateway_pair.gateway, local_gateway_pair.target
    _use_key(gw)
    env.gateway = gw.host_string
    env.gateway_handshakes = 2  # fewer slots than threads: they must queue, not fail
    gw_logins, tg_logins = gw.server.logins, tg.server.logins
    hosts = [f"p{i}@127.0.0.1:{tg.port}" for i in range(6)]

    def work(hs: str) -> str:
        assert env.host_string == hs and env.parallel
        return _echo(state.connections[hs], hs)

    assert _in_threads(hosts, work) == hosts
    assert gw.server.logins - gw_logins == 1
    assert tg.server.logins - tg_logins == 6
    assert len(state.connections) == 7
    slot = state.connections._slots[(((ME, "127.0.0.1", gw.port),), 2)]
    assert slot._value == 2  # every handshake gave its slot back


def test_dead_gateway_is_evicted_and_dialled_again(local_gateway_pair, clean_net):
    gw, tg = local_gateway_pair.gateway, local_gateway_pair.target
    _use_key(gw)
    env.gateway = gw.host_string
    gw_logins = gw.server.logins
    first = state.connections[f"a@127.0.0.1:{tg.port}"]
    gw_key = f"{ME}@127.0.0.1:{gw.port}"
    dict.__getitem__(state.connections, gw_key).get_transport().close()  # the gateway dies
    second = state.connections[f"b@127.0.0.1:{tg.port}"]
    assert _echo(second) == "hi"
    assert gw.server.logins - gw_logins == 2
    # The target that depended on the dead gateway was evicted with it.
    assert f"a@127.0.0.1:{tg.port}" not in state.connections
    assert first.get_transport() is None or not first.get_transport().is_active()
    # Asking for it again goes through the new gateway: no third gateway login.
    assert _echo(state.connections[f"a@127.0.0.1:{tg.port}"]) == "hi"
    assert gw.server.logins - gw_logins == 2


def test_closed_port_behind_the_gateway_names_gateway_and_target(local_gateway_pair,
                                                                   clean_net):
    gw = local_gateway_pair.gateway
    _use_key(gw)
    env.gateway = gw.host_string
    env.timeout = 5
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        state.connections[f"127.0.0.1:{port}"]
    assert time.monotonic() - started < 5
    err = info.value
    assert (err.phase, err.hop_index, err.hop) == ("channel-open", 1, f"{ME}@127.0.0.1:{port}")
    # (The demo server says just "Connect failed"; OpenSSH adds "Connection refused".)
    assert str(err) == (f"Could not open a channel to 127.0.0.1:{port} (connect failed) "
                        f"through gateway 127.0.0.1 ({ME}@127.0.0.1:{gw.port}) "
                        "(tried 1 time)")
    # The healthy gateway stays cached for the next target.
    assert f"{ME}@127.0.0.1:{gw.port}" in state.connections


def test_gateway_channel_failures_are_retried(local_gateway_pair, clean_net):
    gw = local_gateway_pair.gateway
    _use_key(gw)
    env.gateway = gw.host_string
    env.connection_attempts = 3
    logins = gw.server.logins
    with pytest.raises(NetworkError, match=r"\(tried 3 times\)"):
        state.connections[f"127.0.0.1:{_closed_port()}"]
    assert gw.server.logins - logins == 1  # retries of the target reuse the gateway


def test_direct_refused_port_message_and_attempts(clean_net):
    port = _closed_port()
    env.timeout = 0.2
    env.connection_attempts = 2
    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        state.connections[f"127.0.0.1:{port}"]
    assert time.monotonic() - started >= 0.2  # waited env.timeout between the attempts
    assert str(info.value) == (f"Low level socket error connecting to host 127.0.0.1 on port "
                               f"{port}: Connection refused (tried 2 times)")
    assert info.value.phase == "tcp" and info.value.hop_index == 0


def test_timeouts_and_name_lookups_keep_fabric_messages(monkeypatch, clean_net):
    from paramiko import route as routing

    def timed_out(hop, timeout):
        err = OSError(f"TCP connect to {hop.peer} failed: 10.0.0.1: timed out after 1s")
        err.phase = "tcp"
        raise err

    monkeypatch.setattr(routing, "_tcp_connect", timed_out)
    with pytest.raises(NetworkError, match=r"^Timed out trying to connect to web "
                                           r"\(tried 1 time\)$"):
        state.connections["web"]

    def no_name(hop, timeout):
        err = socket.gaierror(f"cannot resolve {hop.hostname!r}")
        err.phase = "dns"
        raise err

    monkeypatch.undo()  # TCP as usual again, but names do not resolve
    monkeypatch.setattr(routing, "_resolve_address", no_name)
    with pytest.raises(NetworkError, match=r"^Name lookup failed for web$"):
        state.connections["web"]


def test_host_key_options(local_ssh, tmp_path, monkeypatch, clean_net):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/known_hosts
    _use_key(local_ssh)
    env.disable_known_hosts = False
    env.reject_unknown_hosts = True
    with pytest.raises(NetworkError) as info:
        state.connections[local_ssh.host_string]
    assert info.value.phase == "hostkey" and "not found in known_hosts" in str(info.value)
    env.system_known_hosts = local_ssh.known_hosts
    assert _echo(state.connections[local_ssh.host_string]) == "hi"
    state.connections.drop(local_ssh.host_string)
    wrong = tmp_path / "wrong"
    other = paramiko.Ed25519Key.generate()
    wrong.write_text(f"[127.0.0.1]:{local_ssh.port} {other.get_name()} {other.get_base64()}\n")
    env.system_known_hosts = str(wrong)
    with pytest.raises(NetworkError, match=r"^Host key for 127.0.0.1 did not match "
                                           r"pre-existing key!"):
        state.connections[local_ssh.host_string]
    # Accepted unknown keys are never written anywhere.
    env.reject_unknown_hosts = False
    env.system_known_hosts = None
    assert _echo(state.connections[local_ssh.host_string]) == "hi"
    assert not (tmp_path / ".ssh").exists()


def test_ssh_config_proxy_jump_reaches_the_target_through_one_gateway(local_gateway_pair,
                                                                      config_file, clean_net):
    gw, tg = local_gateway_pair.gateway, local_gateway_pair.target
    config_file(f"Host tgt\n  HostName 127.0.0.1\n  Port {tg.port}\n  ProxyJump jump\n"
                f"Host jump\n  HostName 127.0.0.1\n  Port {gw.port}\n"
                f"  IdentityFile {gw.key_filename}\n"
                f"Host *\n  User {ME}\n  UserKnownHostsFile {local_gateway_pair.known_hosts}\n"
                "  StrictHostKeyChecking yes\n")
    env.no_agent = True
    env.no_keys = True
    env.key_filename = None
    env.abort_on_prompts = True
    gw_logins = gw.server.logins
    # Only the gateway's stanza names a key: the target has none and would need a prompt.
    with pytest.raises(SystemExit):
        state.connections["tgt"]
    env.key_filename = [tg.key_filename]
    client = state.connections["tgt"]
    assert _echo(client) == "hi"
    assert set(state.connections.keys()) == {f"{ME}@127.0.0.1:{tg.port}",
                                             f"{ME}@127.0.0.1:{gw.port}"}
    assert gw.server.logins - gw_logins == 1  # the failed attempt's gateway was kept


# ---------------------------------------------------------------------------------------------
# passwords per hop
# ---------------------------------------------------------------------------------------------


class _PasswordServers:
    def __init__(self, tmp: Path) -> None:
        from fabric.demo.server import LocalSSHServer

        self.tried: Dict[str, List[Tuple[str, str]]] = {"gw": [], "t": []}
        self.gw = LocalSSHServer(passwords={"gwuser": "gw-pass"}, users=["gwuser"],
                                 name="pw-gw", cwd=str(tmp), env={"HOME": str(tmp)})
        self.t = LocalSSHServer(passwords={"tuser": "t-pass"}, users=["tuser"],
                                name="pw-t", cwd=str(tmp), env={"HOME": str(tmp)})
        for name, server in (("gw", self.gw), ("t", self.t)):
            check = server._password_ok

            def recording(username, password, _check=check, _name=name):
                text = password if isinstance(password, str) else bytes(password).decode()
                self.tried[_name].append((username, text))
                return _check(username, password)

            server._password_ok = recording
            server.start()
        self.gw_key = f"gwuser@127.0.0.1:{self.gw.port}"
        self.t_string = f"tuser@127.0.0.1:{self.t.port}"

    def stop(self) -> None:
        self.t.stop()
        self.gw.stop()


@pytest.fixture(scope="module")
def password_servers(tmp_path_factory):
    servers = _PasswordServers(tmp_path_factory.mktemp("pwservers"))
    yield servers
    servers.stop()


@pytest.fixture
def pw(password_servers, clean_net):
    password_servers.tried["gw"].clear()
    password_servers.tried["t"].clear()
    env.no_agent = True
    env.no_keys = True
    env.disable_known_hosts = True
    env.gateway = password_servers.gw_key
    return password_servers


def test_each_hop_gets_only_its_own_password(pw):
    env.passwords = {pw.gw_key: "gw-pass", pw.t_string: "t-pass"}
    env.password = "global-fallback"
    assert _echo(state.connections[pw.t_string]) == "hi"
    assert pw.tried["gw"] == [("gwuser", "gw-pass")]
    assert pw.tried["t"] == [("tuser", "t-pass")]


def test_env_password_is_a_fallback_for_targets_only(pw, monkeypatch):
    env.passwords = {pw.gw_key: "gw-pass"}
    env.password = "t-pass"
    monkeypatch.setattr(getpass, "getpass", lambda *a: pytest.fail("prompted"))
    assert _echo(state.connections[pw.t_string]) == "hi"
    env.passwords = {}
    state.connections.drop(pw.gw_key)
    env.abort_on_prompts = True
    with pytest.raises(SystemExit):
        state.connections[pw.t_string]
    assert ("gwuser", "t-pass") not in pw.tried["gw"]


def test_gateway_password_prompt_names_the_gateway_and_is_stored_for_it_only(pw, monkeypatch,
                                                                              capsys):
    prompts: List[str] = []
    answers = iter(["wrong", "gw-pass"])
    monkeypatch.setattr(getpass, "getpass", lambda p, s=None: prompts.append(p) or next(answers))
    env.passwords = {pw.t_string: "t-pass"}
    env.host_string = pw.t_string
    assert _echo(state.connections[pw.t_string]) == "hi"
    assert prompts == [f"[{pw.gw_key}] Login password for 'gwuser': "] * 2
    assert env.passwords == {pw.t_string: "t-pass", pw.gw_key: "gw-pass"}
    assert env.password is None
    assert "Connect error:" in capsys.readouterr().err


def test_target_password_prompt_after_a_wrong_password(pw, monkeypatch):
    prompts: List[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda p, s=None: prompts.append(p) or "t-pass")
    env.passwords = {pw.gw_key: "gw-pass"}
    env.password = "bad"
    env.host_string = pw.t_string
    assert _echo(state.connections[pw.t_string]) == "hi"
    assert prompts == [f"[{pw.t_string}] Login password for 'tuser': "]
    assert env.passwords[pw.t_string] == "t-pass" and env.password == "bad"


def test_auth_retries_are_capped(pw, monkeypatch):
    prompts: List[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda p, s=None: prompts.append(p) or "nope")
    with pytest.raises(NetworkError) as info:
        state.connections[pw.t_string]
    assert len(prompts) == network.MAX_PASSWORD_PROMPTS
    assert info.value.phase == "auth" and info.value.hop_index == 0
    assert str(info.value).startswith(f"Gateway {pw.gw_key} refused authentication")


def test_abort_on_prompts_names_the_gateway(pw, monkeypatch, capsys):
    monkeypatch.setattr(getpass, "getpass", lambda *a: pytest.fail("prompted"))
    env.abort_on_prompts = True
    env.host_string = pw.t_string
    with pytest.raises(SystemExit):
        state.connections[pw.t_string]
    err = capsys.readouterr().err
    assert f"Needed to prompt for a connection or sudo password (host: {pw.gw_key}), but " \
           "abort-on-prompts was set to True" in err


def test_eof_at_a_connection_prompt_is_a_clean_abort(pw, monkeypatch, capsys):
    def eof(*a):
        raise EOFError

    monkeypatch.setattr(getpass, "getpass", eof)
    with pytest.raises(SystemExit):
        state.connections[pw.t_string]
    assert "Traceback" not in capsys.readouterr().err


def test_parallel_threads_share_one_gateway_prompt(pw, monkeypatch):
    prompts: List[str] = []

    def slow_answer(prompt, stream=None):
        prompts.append(prompt)
        time.sleep(0.2)  # the other threads pile up behind the gateway's lock meanwhile
        return "gw-pass"

    monkeypatch.setattr(getpass, "getpass", slow_answer)
    env.password = "t-pass"
    logins = pw.gw.logins
    hosts = [f"tuser@127.0.0.1:{pw.t.port}", f"tuser@localhost:{pw.t.port}"]
    results = _in_threads(hosts, lambda hs: _echo(state.connections[hs]))
    assert results == ["hi", "hi"]
    assert prompts == [f"[{pw.gw_key}] Login password for 'gwuser': "]
    assert pw.gw.logins - logins == 1


def test_connect_function_without_a_cache_owns_its_gateways(local_gateway_pair, clean_net):
    gw, tg = local_gateway_pair.gateway, local_gateway_pair.target
    _use_key(gw)
    env.gateway = gw.host_string
    client = network.connect(ME, "127.0.0.1", str(tg.port), None)
    try:
        assert _echo(client) == "hi"
        assert len(state.connections) == 0
        gateways = paramiko.route.jump_chain(client).gateways
        assert len(gateways) == 1 and gateways[0].get_transport().is_active()
    finally:
        client.close()
    assert gateways[0].get_transport() is None  # closing the client closed its gateway


def test_keepalive_is_set_on_targets_and_gateways(local_gateway_pair, clean_net):
    gw, tg = local_gateway_pair.gateway, local_gateway_pair.target
    _use_key(gw)
    env.gateway = gw.host_string
    env.keepalive = 7
    client = state.connections[f"k@127.0.0.1:{tg.port}"]
    gateway = dict.__getitem__(state.connections, f"{ME}@127.0.0.1:{gw.port}")
    assert client.get_transport().keepalive_interval == 7
    assert gateway.get_transport().keepalive_interval == 7


def test_encrypted_key_file_asks_for_its_passphrase(local_ssh, local_ssh_client_key,
                                                    tmp_path, monkeypatch, clean_net):
    key, _ = local_ssh_client_key
    locked = tmp_path / "locked_key"
    key.write_private_key_file(str(locked), password="open sesame")
    _use_key(local_ssh)
    env.key_filename = [str(locked)]
    env.host_string = local_ssh.host_string
    prompts: List[str] = []
    monkeypatch.setattr(getpass, "getpass",
                        lambda p, s=None: prompts.append(p) or "open sesame")
    assert _echo(state.connections[local_ssh.host_string]) == "hi"
    assert prompts == [f"[{local_ssh.host_string}] Passphrase for private key: "]
    assert env.passwords == {local_ssh.host_string: "open sesame"}
