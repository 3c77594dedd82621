"""Route resolution (paramiko.route.resolve_route) from ssh_config text, no network.

Where OpenSSH's ``ssh`` is installed, the hop lists are compared with what OpenSSH itself
would dial: ``ssh -G`` is asked about the target, and then about each jump host exactly the
way ssh re-invokes itself for ProxyJump (``ssh -J <earlier entries> -W ... <last entry>``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Dict, List, Optional, Tuple

import pytest

from paramiko.route import (
    Hop,
    Route,
    RouteError,
    expand_proxy_command,
    parse_jump_spec,
    parse_proxy_jump,
    resolve_route,
)

config_mod = pytest.importorskip("paramiko.config")
SSHConfig = config_mod.SSHConfig

SSH = shutil.which("ssh")


def _cfg(text: str):
    return SSHConfig.from_text(text)


def _keys(route: Route) -> List[Tuple[str, str, int]]:
    return [h.key for h in route.hops]


# ---------------------------------------------------------------------------------------------
# an OpenSSH oracle: follow ProxyJump the way ssh.c does, asking `ssh -G` at each step
# ---------------------------------------------------------------------------------------------


def _ssh_g(config_path: str, host: str, user: Optional[str] = None,
           port: Optional[int] = None, jump: Optional[str] = None) -> Dict[str, str]:
    cmd = [SSH, "-G", "-F", config_path]
    if user:
        cmd += ["-l", user]
    if port:
        cmd += ["-p", str(port)]
    if jump:
        cmd += ["-J", jump]
    out = subprocess.run(cmd + [host], capture_output=True, text=True, timeout=10,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    values: Dict[str, str] = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key, value)
    return values


def _openssh_chain(config_path: str, host: str, user: Optional[str] = None,
                   port: Optional[int] = None, jump: Optional[str] = None,
                   depth: int = 0) -> List[object]:
    assert depth < 10, "oracle recursion"
    g = _ssh_g(config_path, host, user, port, jump)
    me = (g["user"], g["hostname"], int(g["port"]))
    pj = g.get("proxyjump")
    if pj and pj != "none":
        entries = pj.split(",")
        spec = parse_jump_spec(entries[-1])  # the test configs use plain names only
        return _openssh_chain(config_path, spec.host, spec.user, spec.port,
                              ",".join(entries[:-1]) or None, depth + 1) + [me]
    pc = g.get("proxycommand")
    if pc and pc != "none":
        return [("proxycommand", pc), me]
    return [me]


def _ours(route: Route) -> List[object]:
    out: List[object] = []
    if route.proxy_command is not None:
        out.append("proxycommand")
    return out + _keys(route)


def _compare_with_openssh(tmp_path, text: str, host: str, **kw) -> Route:
    route = resolve_route(host, _cfg(text), **kw)
    if SSH is None:
        return route
    path = tmp_path / "ssh_config"
    path.write_text(text)
    theirs = _openssh_chain(str(path), host, kw.get("user"), kw.get("port"),
                            kw.get("proxy_jump"))
    theirs = ["proxycommand" if isinstance(x, tuple) and x[0] == "proxycommand" else x
              for x in theirs]
    assert _ours(route) == theirs, route.describe()
    return route


# ---------------------------------------------------------------------------------------------
# ProxyJump entry syntax
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, user, host, port", [
    ("gw", None, "gw", None),
    ("alice@gw", "alice", "gw", None),
    ("alice@gw:2222", "alice", "gw", 2222),
    ("[2001:db8::1]:2200", None, "2001:db8::1", 2200),
    ("bob@[::1]", "bob", "::1", None),
    ("2001:db8::5", None, "2001:db8::5", None),
    ("ssh://carol@h.example:2022", "carol", "h.example", 2022),
    ("ssh://h.example/", None, "h.example", None),
    ("ssh://d%40x;fingerprint=SHA256:abc@[fe80::2]:22", "d@x", "fe80::2", 22),
    ("we@ird@host", "we@ird", "host", None),
])
def test_jump_spec_syntax(text, user, host, port):
    spec = parse_jump_spec(text)
    assert (spec.user, spec.host, spec.port) == (user, host, port)


@pytest.mark.parametrize("text, why", [
    ("gw:abc", "bad port"), ("gw:0", "bad port"), ("gw:70000", "bad port"),
    ("[::1", "unterminated"), ("[::1]x", "after ']'"), ("@gw", "empty user"),
    ("ssh://h/path", "path"), ("", "empty"), ("user@", "empty host"),
])
def test_bad_jump_specs_are_config_errors(text, why):
    with pytest.raises(RouteError) as info:
        parse_jump_spec(text)
    assert info.value.phase == "config" and why in str(info.value)


def test_proxy_jump_list_and_none():
    assert [s.host for s in parse_proxy_jump("a, b@c:2 ,[::1]:3")] == ["a", "c", "::1"]
    assert parse_proxy_jump("none") == [] and parse_proxy_jump("NONE") == []


# ---------------------------------------------------------------------------------------------
# resolution
# ---------------------------------------------------------------------------------------------

PER_HOP = """
Host target
  HostName 10.0.0.9
  ProxyJump alice@bastion1:2222,bastion2
  ConnectTimeout 7
Host bastion1
  HostName b1.example
  User root
  IdentityFile /keys/b1
  ServerAliveInterval 15
  ServerAliveCountMax 5
Host bastion2
  HostName b2.example
  User bob
  IdentityFile /keys/b2
  IdentitiesOnly yes
  CertificateFile /keys/b2-cert.pub
  HostKeyAlias b2-alias
  StrictHostKeyChecking accept-new
  UserKnownHostsFile /kh/one /kh/two
Host *
  User default
  IdentityFile /keys/common
"""


def test_proxy_jump_list_dialled_first_entry_first_with_per_hop_settings(tmp_path):
    route = _compare_with_openssh(tmp_path, PER_HOP, "target")
    b1, b2, target = route.hops
    # The entry's user@ and :port beat the hop's stanza; everything else is the stanza's.
    assert b1.key == ("alice", "b1.example", 2222)
    assert b1.identity_files == ("/keys/b1", "/keys/common")
    assert (b1.server_alive_interval, b1.server_alive_count_max) == (15, 5)
    assert b1.strict_host_key_checking == "yes"  # unset means "ask": no one can answer
    assert b2.key == ("bob", "b2.example", 22)
    assert b2.identities_only and b2.certificate_files == ("/keys/b2-cert.pub",)
    assert b2.host_key_name == "b2-alias" and b2.strict_host_key_checking == "accept-new"
    assert b2.known_hosts_files == ("/kh/one", "/kh/two")
    assert b1.host_key_name == "[b1.example]:2222"
    assert target.key == ("default", "10.0.0.9", 22) and target.connect_timeout == 7.0
    # Settings of the target do not leak into the jump hosts.
    assert b1.connect_timeout is None and b2.connect_timeout is None
    assert route.gateways == (b1, b2) and route.target is target
    assert "entry 1 of 2" in b1.source and "entry 2 of 2" in b2.source
    assert "target" in target.source


def test_route_keys_include_the_path():
    route = resolve_route("target", _cfg(PER_HOP))
    b1, b2, target = route.hops
    assert b1.route_key == (b1.key,)
    assert b2.route_key == (b1.key, b2.key)
    assert target.route_key == (b1.key, b2.key, target.key) == route.key
    direct = resolve_route("bastion2", _cfg(PER_HOP))
    assert direct.target.key == b2.key and direct.target.route_key != b2.route_key


def test_target_overrides_do_not_apply_to_jump_hosts(tmp_path):
    route = _compare_with_openssh(tmp_path, PER_HOP, "target", user="zed", port=2200)
    assert route.target.key == ("zed", "10.0.0.9", 2200)
    assert route.hops[1].key == ("bob", "b2.example", 22)


def test_ipv6_jump_hosts():
    route = resolve_route("t", _cfg("Host t\n  ProxyJump [2001:db8::1]:2200,bob@[fe80::1]\n"),
                          local_user="me")
    a, b, t = route.hops
    assert a.key == ("me", "2001:db8::1", 2200) and a.display == "me@[2001:db8::1]:2200"
    assert a.host_key_name == "[2001:db8::1]:2200"
    assert b.key == ("bob", "fe80::1", 22) and b.host_key_name == "fe80::1"
    assert t.key == ("me", "t", 22)


def test_ssh_uri_jump_host():
    route = resolve_route("t", _cfg("Host t\n  ProxyJump ssh://amy@j.example:2022\n"),
                          local_user="me")
    assert _keys(route) == [("amy", "j.example", 2022), ("me", "t", 22)]


NESTED = """
Host deep
  HostName 10.3.0.2
  ProxyJump gw2
Host gw2
  HostName 10.2.0.2
  ProxyJump gw
Host gw
  HostName 10.0.0.2
Host list
  ProxyJump a,b
Host a
  ProxyJump y
Host b
  ProxyJump x
Host *
  User u
"""


def test_nested_proxy_jump_of_a_hop_is_followed(tmp_path):
    route = _compare_with_openssh(tmp_path, NESTED, "deep")
    assert [h.alias for h in route.hops] == ["gw", "gw2", "deep"]
    assert _keys(route) == [("u", "10.0.0.2", 22), ("u", "10.2.0.2", 22), ("u", "10.3.0.2", 22)]
    assert "'gw2'" in route.hops[0].source


def test_in_a_list_only_the_first_entry_follows_its_own_proxy_jump(tmp_path):
    # ssh -J a,b list == ssh -J a -W list b: b's own ProxyJump is replaced by "-J a", while
    # a (dialled by a plain ssh) follows its stanza's ProxyJump y.
    route = _compare_with_openssh(tmp_path, NESTED, "list")
    assert [h.alias for h in route.hops] == ["y", "a", "b", "list"]


def test_explicit_proxy_jump_beats_the_config(tmp_path):
    route = _compare_with_openssh(tmp_path, NESTED, "deep", proxy_jump="gw")
    assert [h.alias for h in route.hops] == ["gw", "deep"]
    direct = _compare_with_openssh(tmp_path, NESTED, "deep", proxy_jump="none")
    assert [h.alias for h in direct.hops] == ["deep"]
    cmd = resolve_route("deep", _cfg(NESTED), proxy_command="nc %h %p")
    assert len(cmd) == 1 and cmd.proxy_command == "nc 10.3.0.2 22"
    with pytest.raises(ValueError):
        resolve_route("deep", _cfg(NESTED), proxy_jump="gw", proxy_command="x")


LOOPS = """
Host a
  ProxyJump b
Host b
  ProxyJump c
Host c
  ProxyJump a
Host self
  ProxyJump self
Host runaway*
  ProxyJump %h-j
Host *
  User u
"""


def test_loops_are_reported_with_the_chain():
    with pytest.raises(RouteError) as info:
        resolve_route("a", _cfg(LOOPS))
    err = info.value
    assert err.phase == "config" and "loop" in str(err)
    for name in ("u@a:22", "u@b:22", "u@c:22"):
        assert name in str(err)
    with pytest.raises(RouteError, match="loop"):
        resolve_route("self", _cfg(LOOPS))
    # A runaway chain (a new name every level) stops at the hop limit.
    with pytest.raises(RouteError, match="hops"):
        resolve_route("runaway", _cfg(LOOPS))


def test_loop_detection_uses_user_host_and_port():
    with pytest.raises(RouteError, match="loop"):
        resolve_route("t", None, proxy_jump="t", local_user="u")
    with pytest.raises(RouteError, match="loop"):
        resolve_route("t", None, proxy_jump="a,u@t,b", local_user="u")
    assert len(resolve_route("t", None, proxy_jump="other@t", local_user="u")) == 2
    assert len(resolve_route("t", None, proxy_jump="t:2222", local_user="u")) == 2


FIRST_WINS = """
Host jump-first
  ProxyJump gw
Host cmd-first
  ProxyCommand nc %h %p
Host jumpnone
  ProxyJump none
Host cmdnone
  ProxyCommand none
Host gw
  ProxyCommand none
Host *
  ProxyCommand ssh -W %h:%p other
  ProxyJump gw
  User u
"""


def test_first_of_proxy_jump_and_proxy_command_wins(tmp_path):
    a = _compare_with_openssh(tmp_path, FIRST_WINS, "jump-first")
    assert [h.alias for h in a.hops] == ["gw", "jump-first"] and a.proxy_command is None
    b = _compare_with_openssh(tmp_path, FIRST_WINS, "cmd-first")
    assert len(b) == 1 and b.proxy_command == "nc cmd-first 22"
    # Host * gives ProxyCommand before ProxyJump, so an unmatched host uses the command.
    c = _compare_with_openssh(tmp_path, FIRST_WINS, "elsewhere")
    assert len(c) == 1 and c.proxy_command == "ssh -W elsewhere:22 other"


def test_none_disables(tmp_path):
    # "ProxyCommand none" blocks the later ProxyJump too; "ProxyJump none" does not block a
    # later ProxyCommand (both as OpenSSH decides).
    cmdnone = _compare_with_openssh(tmp_path, FIRST_WINS, "cmdnone")
    assert len(cmdnone) == 1 and cmdnone.proxy_command is None
    jumpnone = _compare_with_openssh(tmp_path, FIRST_WINS, "jumpnone")
    assert len(jumpnone) == 1 and jumpnone.proxy_command == "ssh -W jumpnone:22 other"
    gw = resolve_route("gw", _cfg("Host gw\n  ProxyJump none\nHost *\n  ProxyJump gw\n"))
    assert [h.alias for h in gw.hops] == ["gw"] and gw.proxy_command is None
    t = resolve_route("t", _cfg("Host gw\n  ProxyJump none\nHost *\n  ProxyJump gw\n"))
    assert [h.alias for h in t.hops] == ["gw", "t"]


TOKENS = """
Host tok
  HostName real.example
  Port 2201
  User ann
  HostKeyAlias tok-key
  ProxyCommand connect %h %p %r %n %k 100%%
Host noalias
  ProxyCommand x %k
Host bad
  ProxyCommand x %d
Host viajump
  ProxyJump gw
Host gw
  ProxyCommand ssh -W %h:%p bastion
"""


def test_proxy_command_tokens_use_the_runtime_values():
    route = resolve_route("tok", _cfg(TOKENS))
    assert route.proxy_command == "connect real.example 2201 ann tok tok-key 100%"
    assert route.target.proxy_command == route.proxy_command
    # An overridden port/user is what %p/%r say (not the config's nor 22 and the local user).
    over = resolve_route("tok", _cfg(TOKENS), user="bo", port=2)
    assert over.proxy_command == "connect real.example 2 bo tok tok-key 100%"
    assert resolve_route("noalias", _cfg(TOKENS)).proxy_command == "x noalias"
    with pytest.raises(RouteError, match="%d"):
        resolve_route("bad", _cfg(TOKENS))
    # The first hop of a jump chain carries its own ProxyCommand, expanded for that hop.
    chain = resolve_route("viajump", _cfg(TOKENS))
    assert chain.proxy_command == "ssh -W gw:22 bastion"
    assert chain.hops[0].proxy_command == chain.proxy_command
    assert chain.hops[1].proxy_command is None
    assert chain.hops[0].route_key[0] == ("proxycommand", "ssh -W gw:22 bastion")


def test_expand_proxy_command_directly():
    assert expand_proxy_command("%%h=%h", hostname="H", port=1, user="u", alias="a") == "%h=H"
    with pytest.raises(RouteError, match="lone"):
        expand_proxy_command("x %", hostname="H", port=1, user="u", alias="a")


def test_identity_files_and_known_hosts_defaults(tmp_path):
    text = """
Host k1
  IdentityFile ~/.ssh/k1
Host k2
  IdentityFile /abs/k2
  UserKnownHostsFile none
  StrictHostKeyChecking no
Host *
  IdentityFile ~/.ssh/shared
"""
    home = os.path.expanduser("~")
    k1 = resolve_route("k1", _cfg(text)).target
    assert k1.identity_files == (f"{home}/.ssh/k1", f"{home}/.ssh/shared")
    assert k1.known_hosts_files == (f"{home}/.ssh/known_hosts", f"{home}/.ssh/known_hosts2")
    k2 = resolve_route("k2", _cfg(text)).target
    assert k2.identity_files == ("/abs/k2", f"{home}/.ssh/shared")
    assert k2.known_hosts_files == () and k2.strict_host_key_checking == "no"
    plain = resolve_route("plain", None, local_user="me").target
    assert plain == Hop(alias="plain", hostname="plain", port=22, user="me",
                        known_hosts_files=k1.known_hosts_files, source=plain.source)


class _MappingConfig:
    """Any object with lookup(host) -> mapping will do (values as written, unchecked)."""

    def __init__(self, **values: object) -> None:
        self.values = values

    def lookup(self, host: str) -> dict:
        if "fail" in self.values:
            raise ValueError("Match exec timed out")
        return dict(self.values)


def test_bad_values_and_failing_lookups_name_the_host():
    with pytest.raises(RouteError, match="Port") as info:
        resolve_route("p", _MappingConfig(port="notanumber"))
    assert info.value.phase == "config" and info.value.alias == "p"
    with pytest.raises(RouteError, match="ConnectTimeout"):
        resolve_route("p", _MappingConfig(connecttimeout="soon"))
    with pytest.raises(RouteError, match="Match exec timed out") as info:
        resolve_route("p", _MappingConfig(fail=True))
    assert info.value.phase == "config" and isinstance(info.value.__cause__, ValueError)
    hop = resolve_route("p", _MappingConfig(connecttimeout="1m30s",
                                            serveraliveinterval="2m")).target
    assert (hop.connect_timeout, hop.server_alive_interval) == (90.0, 120)


def test_describe_lists_every_hop():
    text = resolve_route("target", _cfg(PER_HOP)).describe()
    lines = text.splitlines()
    assert len(lines) == 3 and lines[0].startswith("0: gateway bastion1 (alice@b1.example:2222)")
    assert "hostkeyalias=b2-alias" in lines[1] and lines[2].startswith("2: target target")


def test_load_config_default_path_and_pass_through(tmp_path, monkeypatch):
    from paramiko.route import load_config

    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_config(None) is None  # no ~/.ssh/config: no config at all
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host h\n  HostName real.example\n")
    assert load_config(None).lookup("h")["hostname"] == "real.example"
    other = tmp_path / "other"
    other.write_text("Host h\n  HostName other.example\n")
    assert load_config(other).lookup("h")["hostname"] == "other.example"
    cfg = _cfg("Host h\n  Port 2\n")
    assert load_config(cfg) is cfg


# ---------------------------------------------------------------------------------------------
# connect_route(hop_credentials=...): per-hop credentials, with fake clients (no SSH spoken)
# ---------------------------------------------------------------------------------------------


class _FakeTransport:
    def __init__(self) -> None:
        self.opened: List[Tuple[str, int]] = []
        self.peer_name = ""

    def is_active(self) -> bool:
        return True

    def get_exception(self):
        return None

    def open_channel(self, kind, dest, origin, timeout=None):
        self.opened.append(dest)
        return object()  # stands for the direct-tcpip channel

    def set_server_alive(self, interval, count) -> None:
        pass


class _FakeClient:
    """Records what connect_route hands over: the auth strategy and the host key policy."""

    made: List[_FakeClient] = []

    def __init__(self) -> None:
        self._policy = "client-default"
        self._transport = None
        self.seen = None
        _FakeClient.made.append(self)

    def load_system_host_keys(self, path) -> None:
        pass

    def connect(self, hostname, port, username=None, sock=None, auth_strategy=None, **kw):
        self.seen = {"hostname": hostname, "auth": auth_strategy, "policy": self._policy}
        self._transport = _FakeTransport()

    def get_transport(self):
        return self._transport

    def close(self) -> None:
        self._transport = None


@pytest.fixture
def listening_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)  # the kernel completes the TCP handshake; nobody needs to accept
    yield s.getsockname()[1]
    s.close()


def test_hop_credentials_give_each_hop_its_own_credentials(listening_port):
    from paramiko.route import connect_route

    route = resolve_route("t", _cfg(f"Host gw\n  HostName 127.0.0.1\n  Port {listening_port}\n"
                                    "  User gwuser\nHost t\n  ProxyJump gw\n  User tuser\n"))
    asked: List[Tuple[str, int]] = []
    gw_policy, t_policy = object(), object()

    def per_hop(hop, index):
        asked.append((hop.display, index))
        if index == 0:
            return {"password": "gw-secret", "key_filename": "/keys/gw",
                    "missing_host_key_policy": gw_policy}
        return {"password": "t-secret", "missing_host_key_policy": t_policy}

    _FakeClient.made = []
    target = connect_route(route, hop_credentials=per_hop, password="caller-password",
                           key_filename=["/keys/target"], client_factory=_FakeClient)
    gw_client, t_client = _FakeClient.made
    assert target is t_client
    assert asked == [(f"gwuser@127.0.0.1:{listening_port}", 0), ("tuser@t:22", 1)]
    gw_auth, t_auth = gw_client.seen["auth"], t_client.seen["auth"]
    assert (gw_auth.password, gw_auth.key_filenames) == ("gw-secret", ["/keys/gw"])
    # A key present in the mapping replaces the caller's value; an absent one keeps it.
    assert (t_auth.password, t_auth.key_filenames) == ("t-secret", ["/keys/target"])
    assert gw_client.seen["policy"] is gw_policy and t_client.seen["policy"] is t_policy
    # The policy is only lent for the connect: the client's own is put back.
    assert gw_client._policy == "client-default"
    assert gw_client.get_transport().opened == [("t", 22)]
    target.close()


def test_without_hop_credentials_gateways_get_none_of_the_callers(listening_port):
    from paramiko.route import connect_route

    route = resolve_route("t", _cfg(f"Host gw\n  HostName 127.0.0.1\n  Port {listening_port}\n"
                                    "Host t\n  ProxyJump gw\n"))
    _FakeClient.made = []
    connect_route(route, password="caller-password", key_filename="/keys/target",
                  client_factory=_FakeClient).close()
    gw_client, t_client = _FakeClient.made
    assert (gw_client.seen["auth"].password, gw_client.seen["auth"].key_filenames) == (None, [])
    assert (t_client.seen["auth"].password, t_client.seen["auth"].key_filenames) == \
        ("caller-password", ["/keys/target"])


def test_hop_credentials_with_unknown_keys_are_refused_before_dialling(listening_port):
    from paramiko.route import connect_route

    route = resolve_route("t", _cfg(f"Host t\n  HostName 127.0.0.1\n  Port {listening_port}\n"))
    _FakeClient.made = []
    with pytest.raises(ValueError, match="passwrod"):
        connect_route(route, hop_credentials=lambda hop, i: {"passwrod": "typo"},
                      client_factory=_FakeClient)
    assert all(c.seen is None for c in _FakeClient.made)
