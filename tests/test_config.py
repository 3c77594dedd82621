"""Unit tests for ``paramiko.config`` (the ssh -G comparison is in test_config_openssh.py)."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

import paramiko.config
from paramiko.config import (
    SSH_PORT,
    JumpHost,
    SSHConfig,
    SSHConfigDict,
    parse_proxy_jump,
)
from paramiko.ssh_exception import ConfigParseError, CouldNotCanonicalize


@pytest.fixture(autouse=True)
def _pinned_local_identity(monkeypatch, tmp_path):
    """A predictable local side: user, home and host name."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(paramiko.config.getpass, "getuser", lambda: "localguy")
    monkeypatch.setattr(paramiko.config.socket, "gethostname", lambda: "box.lan.example")
    return home


def cfg(text: str, **kw) -> SSHConfig:
    return SSHConfig.from_text(text, **kw)


# --------------------------------------------------------------------------------------
# Construction and the result type


def test_constructors_agree(tmp_path):
    text = "Host a\n  User u\n  Port 2200\n"
    path = tmp_path / "config"
    path.write_text(text)
    results = [
        SSHConfig.from_text(text).lookup("a"),
        SSHConfig.from_file(io.StringIO(text)).lookup("a"),
        SSHConfig.from_file(io.BytesIO(text.encode())).lookup("a"),
        SSHConfig.from_path(str(path)).lookup("a"),
        SSHConfig.from_path(path).lookup("a"),
    ]
    for r in results:
        assert r == {"hostname": "a", "user": "u", "port": "2200"}
        assert isinstance(r, SSHConfigDict)


def test_parse_twice_first_file_wins():
    c = SSHConfig()
    c.parse(io.StringIO("Host *\n  User from-user-file\n"))
    c.parse(io.StringIO("Host *\n  User from-system-file\n  Port 2222\n"))
    assert c.lookup("x") == {"hostname": "x", "user": "from-user-file", "port": "2222"}


def test_module_constants_and_class_attributes():
    assert SSH_PORT == 22
    m = SSHConfig.SETTINGS_REGEX.match("  Port = 2222")
    assert m and m.group(1) == "Port" and m.group(2) == "2222"
    tokens = SSHConfig.TOKENS_BY_CONFIG_KEY
    assert tokens["hostname"] == ["%%", "%h"]
    assert "~" in tokens["identityfile"] and "%C" in tokens["identityfile"]
    assert "~" not in tokens["proxycommand"] and "%k" in tokens["proxycommand"]
    assert set(tokens["proxyjump"]) == {"%%", "%h", "%n", "%p", "%r"}
    assert "match-exec" in tokens and "%T" in tokens["localcommand"]


def test_no_invented_defaults():
    r = cfg("Host other\n  User x\n").lookup("target")
    assert r == {"hostname": "target"}


def test_as_bool_as_int_as_time():
    d = SSHConfigDict(a="yes", b="YES", c="no", d="true", e=True, f=False, n="22", t="1h30m")
    assert d.as_bool("a") and d.as_bool("b") and d.as_bool("e")
    assert not d.as_bool("c") and not d.as_bool("d") and not d.as_bool("f")
    assert d.as_int("n") == 22
    assert d.as_time("t") == 5400 and d.as_time("n") == 22
    with pytest.raises(KeyError):
        d.as_bool("missing")
    with pytest.raises(ValueError):
        SSHConfigDict(t="soon").as_time("t")


def test_flags_are_normalised_so_as_bool_works():
    r = cfg("Host *\n ForwardAgent true\n Compression FALSE\n IdentitiesOnly Yes\n").lookup("h")
    assert (r["forwardagent"], r["compression"], r["identitiesonly"]) == ("yes", "no", "yes")
    assert r.as_bool("forwardagent") and not r.as_bool("compression")
    assert cfg("Host *\n ForwardAgent /tmp/sock\n").lookup("h")["forwardagent"] == "/tmp/sock"


def test_keys_lowercased_and_values_verbatim():
    r = cfg("HOST *\n  HostKeyAlias MixedCase\n  SomeUnknownOption Keep This\n").lookup("h")
    assert r["hostkeyalias"] == "MixedCase"
    assert r["someunknownoption"] == "Keep This"


def test_origin_records_file_and_line(tmp_path):
    p = tmp_path / "cfg"
    p.write_text("# c\nHost *\n  User u\n  IdentityFile /a\n")
    r = SSHConfig.from_path(p).lookup("h")
    assert r.origin("user") == (str(p), 3)
    assert r.origin("identityfile") == (str(p), 4)
    assert r.origin("hostname") is None


# --------------------------------------------------------------------------------------
# Syntax


def test_argument_splitting():
    r = cfg(
        'Host q\n'
        '  User "a\\"b"\n'
        "  IdentityFile '/with space/key'\n"
        '  IdentityFile /x\\ y # comment\n'
        '  SendEnv "A B" C#notcomment # comment\n'
        '  ProxyCommand nc "%h" %p   # kept: rest of line\n'
        '  HostKeyAlias=alias\n'
        '  Port =  2200\n'
    ).lookup("q")
    assert r["user"] == 'a"b'
    assert r["identityfile"] == ["/with space/key", "/x y"]
    assert r["sendenv"] == ["A B", "C#notcomment"]
    assert r["proxycommand"] == 'nc "q" 2200   # kept: rest of line'
    assert r["hostkeyalias"] == "alias" and r["port"] == "2200"


def test_crlf_and_blank_lines():
    r = cfg("\r\n# comment\r\nHost a\r\n\tUser u\r\n\r\n").lookup("a")
    assert r["user"] == "u"


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("Host a\n  User\n", 2, 'no argument after keyword "user"'),
        ("Host a\n  User \"x\n", 2, "invalid quotes"),
        ("Host a\n\n  Port 0\n", 3, "Bad port"),
        ("Host a\n  Port 99999\n", 2, "Bad port"),
        ("Host a\n  Port 22 23\n", 2, "extra arguments"),
        ("Host a\n  ConnectTimeout soon\n", 2, "invalid time value"),
        ("Host a\n  Compression maybe\n", 2, "unsupported option"),
        ("Host a\n  ServerAliveCountMax many\n", 2, "integer expected"),
        ("Host \"\"\n", 1, "empty argument"),
        ("Match\n", 1, "no argument"),
        ("Match host\n", 1, "Missing Match criteria for host"),
        ("Match exec\n", 1, "Missing Match criteria for exec"),
        ("Match frobnicate x\n", 1, "Unsupported Match attribute frobnicate"),
        ("Match all host x\n", 1, "cannot be combined"),
        ("Match host x all\n", 1, "cannot be combined"),
        ("Match canonical final all\n", 1, "cannot be combined"),
        ("Match all canonical\n", 1, "cannot be combined"),
        ("Match canonical=x\n", 1, "takes no argument"),
        ("Match localnetwork 10.0.0.1/8\n", 1, "invalid network"),
        ("Match localnetwork nonsense\n", 1, "invalid network"),
        ("Host a\n  ProxyJump user@fe80::1\n", 2, "Invalid ProxyJump"),
        ("Host a\n  ProxyJump h,\n", 2, "Invalid ProxyJump"),
        ("Host a\n  ProxyJump h:0\n", 2, "Invalid ProxyJump"),
        ("Host a\n  SetEnv NOVALUE\n", 2, "Invalid SetEnv"),
        ("Host a\n  LocalForward 8080\n", 2, "needs 2 arguments"),
        ("Host a\n  CanonicalizeHostname sometimes\n", 2, "unsupported option"),
        ("= value\n", 1, "cannot parse"),
    ],
)
def test_parse_errors_name_file_and_line(tmp_path, text, line, fragment):
    p = tmp_path / "bad.conf"
    p.write_text(text)
    with pytest.raises(ConfigParseError) as info:
        SSHConfig.from_path(p)
    msg = str(info.value)
    assert msg.startswith(f"{p} line {line}: "), msg
    assert fragment in msg
    assert info.value.filename == str(p) and info.value.lineno == line


def test_valid_match_spellings():
    for text in ("Match all", "Match canonical all", "Match final all", "Match !all",
                 "Match host=a,b user=x", "Match ALL # comment", "Match tagged \"\""):
        cfg(text + "\n  User x\n")


def test_errors_in_never_matching_blocks_still_raise():
    with pytest.raises(ConfigParseError):
        cfg("Host never\n  Port none\n")


# --------------------------------------------------------------------------------------
# Host and Match


def test_host_patterns():
    c = cfg(
        "Host *.example.com !bad.example.com\n  User wild\n"
        "Host web? db-*\n  Port 2200\n"
        "Host a,b\n  HostKeyAlias comma-is-not-a-separator\n"
        "Host !x\n  ForwardX11 yes\n"
        "Host Upper\n  IdentityFile /case-sensitive\n"
    )
    assert c.lookup("ok.example.com")["user"] == "wild"
    assert "user" not in c.lookup("bad.example.com")
    assert c.lookup("web1")["port"] == "2200" and "port" not in c.lookup("web12")
    assert c.lookup("db-x")["port"] == "2200"
    assert "hostkeyalias" not in c.lookup("a")
    assert "forwardx11" not in c.lookup("y")  # a negated pattern alone never matches
    assert "identityfile" not in c.lookup("upper")
    assert c.lookup("Upper")["hostname"] == "upper"  # hostname is lowercased like ssh


def test_hostname_token_and_address_case():
    c = cfg("Host web\n  HostName %h.Example.COM\nHost six\n  HostName FE80::1\n"
            "Host pct\n  HostName %h%%\n")
    assert c.lookup("web")["hostname"] == "web.example.com"
    assert c.lookup("six")["hostname"] == "FE80::1"
    assert c.lookup("pct")["hostname"] == "pct%"
    final = cfg("Host *\n  HostName %h%%x\nMatch final host *%x\n  User literal\n")
    assert final.lookup("pct") == {"hostname": "pct%x", "user": "literal"}
    with pytest.raises(ConfigParseError, match="line 1: HostName: unknown token %p"):
        cfg("HostName %p\n").lookup("x")


def test_match_host_uses_hostname_originalhost_does_not():
    c = cfg(
        "Host alias\n  HostName Real.Example\n"
        "Match host real.example\n  User by-host\n"
        "Match originalhost alias\n  Port 2200\n"
        "Match host alias\n  IdentityFile /never\n"
    )
    r = c.lookup("alias")
    assert r["user"] == "by-host" and r["port"] == "2200" and "identityfile" not in r


def test_match_user_and_localuser(monkeypatch):
    c = cfg(
        "Host svc\n  User app\n"
        "Match user app\n  Port 1\n"
        "Match user localguy\n  Port 2\n"
        "Match localuser localguy\n  IdentityFile /mine\n"
        "Match !localuser localguy\n  IdentityFile /theirs\n"
    )
    assert c.lookup("svc")["port"] == "1"
    assert c.lookup("other")["port"] == "2"  # no User: the local user is the remote user
    assert c.lookup("other")["identityfile"] == ["/mine"]
    monkeypatch.setattr(paramiko.config.getpass, "getuser", lambda: "someone")
    assert c.lookup("other")["identityfile"] == ["/theirs"]


def test_match_exec_true_false_tokens_and_short_circuit(tmp_path):
    marker = tmp_path / "ran"
    c = cfg(
        "Host t\n  Port 2222\n  User bob\n"
        'Match exec "true"\n  SendEnv T\n'
        'Match exec "false"\n  SendEnv F\n'
        'Match exec "test %h = t && test %p = 2222 && test %r = bob && test %u = localguy"\n'
        "  SendEnv TOKENS\n"
        'Match !exec "false"\n  SendEnv NEG\n'
        f'Match host nomatch exec "touch {marker}"\n  SendEnv NEVER\n'
    )
    assert c.lookup("t")["sendenv"] == ["T", "TOKENS", "NEG"]
    assert not marker.exists()  # exec is skipped once an earlier criterion failed


def test_match_exec_uses_shell_and_hides_stdout(capfd, monkeypatch):
    monkeypatch.setenv("SHELL", "/bin/sh")
    c = cfg('Match exec "echo should-not-be-seen; [ -n \\"$HOME\\" ]"\n  User ok\n')
    assert c.lookup("h")["user"] == "ok"
    assert "should-not-be-seen" not in capfd.readouterr().out


def test_match_exec_timeout(monkeypatch):
    c = cfg('Host *\nMatch exec "sleep 5"\n  User never\n')
    monkeypatch.setattr(c, "MATCH_EXEC_TIMEOUT", 0.2)
    start = time.monotonic()
    with pytest.raises(ConfigParseError, match=r"<string> line 2: Match exec .*did not finish"):
        c.lookup("h")
    assert time.monotonic() - start < 3


def test_match_exec_percent_escape_and_bad_token():
    assert cfg('Match exec "test 50%% = 50%%"\n  User pct\n').lookup("h")["user"] == "pct"
    with pytest.raises(ConfigParseError, match="line 1: Match exec: unknown token %z"):
        cfg('Match exec "true %z"\n  User x\n').lookup("h")


def test_match_final_second_pass():
    c = cfg(
        "Host app\n  HostName app.internal\n"
        "Host app.internal\n  User second-pass\n"
        "Match final\n  Port 2201\n"
        "Match !final\n  SendEnv FIRST\n"
        "Match canonical\n  IdentityFile /canonical-matches-in-final-pass\n"
    )
    r = c.lookup("app")
    assert r["user"] == "second-pass" and r["port"] == "2201"
    assert r["sendenv"] == ["FIRST"]
    assert r["identityfile"] == ["/canonical-matches-in-final-pass"]
    assert "user" not in cfg("Host app.internal\n  User x\nHost app\n  HostName app.internal\n"
                             ).lookup("app")


def test_match_all_variants():
    c = cfg("Match all\n  User everyone\nMatch !all\n  Port 1\nMatch canonical all\n  Port 2\n")
    r = c.lookup("h")
    assert r["user"] == "everyone" and "port" not in r


def test_match_localnetwork(monkeypatch):
    addrs = [ipaddress.ip_address("192.168.7.20"), ipaddress.ip_address("fd00::5")]
    monkeypatch.setattr(paramiko.config, "_local_interface_addresses", lambda: addrs)
    c = cfg(
        "Match localnetwork 10.0.0.0/8,192.168.7.0/24\n  User office\n"
        "Match localnetwork fd00::/64\n  Port 2200\n"
        "Match !localnetwork 172.16.0.0/12\n  IdentityFile /not-vpn\n"
        "Match localnetwork 192.168.8.0/24\n  ForwardAgent yes\n"
    )
    r = c.lookup("h")
    assert r["user"] == "office" and r["port"] == "2200" and r["identityfile"] == ["/not-vpn"]
    assert "forwardagent" not in r


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="loopback check is Linux only")
def test_local_interface_addresses_include_loopback():
    addrs = paramiko.config._local_interface_addresses()
    assert ipaddress.ip_address("127.0.0.1") in addrs
    assert cfg("Match localnetwork 127.0.0.0/8\n  User lo\n").lookup("h")["user"] == "lo"


def test_match_tagged():
    c = cfg(
        "Host prod-*\n  Tag production\n"
        "Match tagged production\n  User prod-user\n"
        'Match tagged ""\n  Port 2200\n'
        "Match tagged dev*\n  IdentityFile /dev-key\n"
    )
    assert c.lookup("prod-1")["user"] == "prod-user" and "port" not in c.lookup("prod-1")
    assert c.lookup("other")["port"] == "2200"
    r = c.lookup("other", tag="devbox")
    assert r["identityfile"] == ["/dev-key"] and r["tag"] == "devbox"
    assert c.lookup("prod-1", tag="devbox")["identityfile"] == ["/dev-key"]  # -P wins


def test_match_command_sessiontype_version():
    c = cfg(
        "Match command sftp\n  User sftp-user\n"
        "Match sessiontype exec\n  Port 2200\n"
        "Match sessiontype shell\n  Port 2201\n"
        f"Match version {SSHConfig.MATCH_VERSION}\n  IdentityFile /v\n"
        "Match version OpenSSH_*\n  IdentityFile /never\n"
    )
    r = c.lookup("h", command="sftp")
    assert r["user"] == "sftp-user" and r["port"] == "2200" and r["identityfile"] == ["/v"]
    assert c.lookup("h")["port"] == "2201"


# --------------------------------------------------------------------------------------
# First value wins, and the accumulating keys


def test_first_value_wins_and_lists_accumulate():
    c = cfg(
        "Host a\n  User first\n  IdentityFile /a\n  LocalForward 1 h:1\n"
        "Host *\n  User second\n  IdentityFile /b\n  IdentityFile /a\n"
        "  LocalForward 1 h:1\n  LocalForward 2 h:2\n  RemoteForward 9000\n"
        "  DynamicForward 1080\n  CertificateFile /c1\n  CertificateFile /c1\n"
    )
    r = c.lookup("a")
    assert r["user"] == "first"
    assert r["identityfile"] == ["/a", "/b"]
    assert r["localforward"] == ["1 h:1", "2 h:2"]
    assert r["remoteforward"] == ["9000"] and r["dynamicforward"] == ["1080"]
    assert r["certificatefile"] == ["/c1"]


def test_sendenv_and_setenv():
    r = cfg(
        "Host *\n  SendEnv LANG LC_*\n  SendEnv -LC_*\n  SendEnv GIT_*\n"
        "  SetEnv A=1 \"B=two words\"\n  SetEnv A=ignored C=ignored\n"
    ).lookup("h")
    assert r["sendenv"] == ["LANG", "GIT_*"]
    assert r["setenv"] == ["A=1", "B=two words"]


def test_keyword_aliases():
    r = cfg("Host *\n  ChallengeResponseAuthentication no\n"
            "  PubkeyAcceptedKeyTypes ssh-ed25519\n").lookup("h")
    assert r["kbdinteractiveauthentication"] == "no"
    assert r["pubkeyacceptedalgorithms"] == "ssh-ed25519"


# --------------------------------------------------------------------------------------
# ProxyJump / ProxyCommand


def test_proxy_first_one_wins_both_orders():
    c = cfg("Host j\n  ProxyJump gw\nHost c\n  ProxyCommand nc %h %p\n"
            "Host *\n  ProxyCommand ssh -W %h:%p other\n  ProxyJump other\n")
    rj, rc = c.lookup("j"), c.lookup("c")
    assert rj["proxyjump"] == "gw" and "proxycommand" not in rj
    assert rc["proxycommand"] == "nc c 22" and "proxyjump" not in rc
    assert rj.effective_proxy() == ("proxyjump", "gw")
    assert rc.effective_proxy() == ("proxycommand", "nc c 22")


def test_proxycommand_none():
    r = cfg("Host d\n  ProxyCommand none\nHost *\n  ProxyJump gw\n").lookup("d")
    assert "proxycommand" in r and r["proxycommand"] is None
    assert "proxyjump" not in r
    assert r.is_disabled("proxycommand") and r.is_disabled("ProxyCommand")
    assert not r.is_disabled("proxyjump")
    assert r.effective_proxy() is None and r.jump_hosts() == []


def test_proxyjump_none():
    c = cfg("Host d\n  ProxyJump None\nHost *\n  ProxyJump gw\nHost x\n  ProxyCommand nc\n")
    r = c.lookup("d")
    assert r["proxyjump"] == "none" and "proxycommand" not in r
    assert r.is_disabled("proxyjump") and not r.is_disabled("proxycommand")
    assert r.effective_proxy() is None
    # As in OpenSSH, "ProxyJump none" does not block a later ProxyCommand.
    r = cfg("Host *\n  ProxyJump none\n  ProxyCommand nc %h %p\n").lookup("t")
    assert r["proxyjump"] == "none" and r["proxycommand"] == "nc t 22"
    assert r.effective_proxy() == ("proxycommand", "nc t 22")


def test_proxy_tokens():
    r = cfg(
        "Host t\n  HostName real.example\n  Port 2200\n  User bob\n  HostKeyAlias kal\n"
        "  ProxyCommand ssh -W %h:%p %r@gw -- %n %k %% ~/not-expanded\n"
        "Host u\n  ProxyJump %r@jump-for-%h:%p\n"
    )
    assert r.lookup("t")["proxycommand"] == (
        "ssh -W real.example:2200 bob@gw -- t kal % ~/not-expanded")
    assert r.lookup("u")["proxyjump"] == "localguy@jump-for-u:22"
    with pytest.raises(ConfigParseError, match="line 7: proxycommand: unknown token %u"):
        cfg("Host *\n\n\n\n\n\n  ProxyCommand nc %u\n").lookup("x")


def test_token_table_controls_expansion():
    c = cfg("Host *\n  ProxyJump gw-%h\n  ControlPath /%h\n")
    c.TOKENS_BY_CONFIG_KEY = {k: v for k, v in SSHConfig.TOKENS_BY_CONFIG_KEY.items()
                              if k not in ("proxyjump", "controlpath")}
    r = c.lookup("t")
    assert r["proxyjump"] == "gw-%h" and r["controlpath"] == "/%h"
    r = cfg("Host *\n  ProxyCommand nc %h %p\n").lookup("t")
    assert r["proxycommand"] == "nc t 22"


def test_parse_proxy_jump():
    assert parse_proxy_jump("a") == [JumpHost(None, "a", None)]
    assert parse_proxy_jump("u@a:2200,b,[::1]:22,v@[fe80::2]") == [
        JumpHost("u", "a", 2200), JumpHost(None, "b", None), JumpHost(None, "::1", 22),
        JumpHost("v", "fe80::2", None)]
    assert parse_proxy_jump("ssh://u@h:2/,ssh://[2001:db8::1]:3") == [
        JumpHost("u", "h", 2), JumpHost(None, "2001:db8::1", 3)]
    assert parse_proxy_jump("NONE") == []
    for bad in ("", "a,", "u@fe80::1", "h:0", "h:x", "[::1", "@h", "ssh://h/path"):
        with pytest.raises(ValueError):
            parse_proxy_jump(bad)
    r = cfg("Host *\n  ProxyJump u@a:2200,b\n").lookup("t")
    assert r.jump_hosts() == [JumpHost("u", "a", 2200), JumpHost(None, "b", None)]


def test_is_disabled_other_keys():
    r = cfg("Host *\n  IdentityFile none\n  ControlPath none\n  UserKnownHostsFile none\n"
            "  IdentityAgent none\n").lookup("h")
    for key in ("identityfile", "controlpath", "userknownhostsfile", "identityagent"):
        assert r.is_disabled(key), key
    assert not r.is_disabled("port")


# --------------------------------------------------------------------------------------
# Tokens


def test_tokens_in_paths(_pinned_local_identity, monkeypatch):
    home = str(_pinned_local_identity)
    r = cfg(
        "Host t\n  HostName t.example\n  User bob\n  Port 2200\n"
        "  IdentityFile ~/.ssh/%h-%r-%p-%u-%n-%L-%l\n"
        "  IdentityFile %d/k-%i-%%\n"
        "  ControlPath ~/cm/%C\n"
        "  UserKnownHostsFile ~/kh/%h ~/kh2\n"
        "  CertificateFile /c/~notexpanded\n"
        "  RevokedHostKeys ~/rev-%k\n"
        "  RemoteCommand echo %h\n"
        "  LocalCommand echo %h %T\n"
        "  KnownHostsCommand /bin/kh %h %H %f %% %K\n"
    ).lookup("t")
    uid = str(os.getuid())
    assert r["identityfile"] == [
        f"{home}/.ssh/t.example-bob-2200-localguy-t-box-box.lan.example",
        f"{home}/k-{uid}-%",
    ]
    chash = hashlib.sha1(b"box.lan.examplet.example2200bob").hexdigest()
    assert r["controlpath"] == f"{home}/cm/{chash}"
    assert r["userknownhostsfile"] == f"{home}/kh/t.example {home}/kh2"
    assert r["certificatefile"] == ["/c/~notexpanded"]
    assert r["revokedhostkeys"] == f"{home}/rev-t"
    assert r["remotecommand"] == "echo t.example"
    assert r["localcommand"] == "echo t.example NONE"
    assert r["knownhostscommand"] == "/bin/kh t.example %H %f %% %K"


def test_connection_hash_with_jump(monkeypatch):
    text = "Host t\n  ProxyJump gw\n  ControlPath %C\n  IdentityFile /%j\n"
    r = cfg(text).lookup("t")
    assert r["controlpath"] == hashlib.sha1(b"box.lan.examplet22localguy").hexdigest()
    assert r["identityfile"] == ["/gw"]
    c = cfg(text)
    monkeypatch.setattr(c, "CONNECTION_HASH_INCLUDES_JUMP", True)
    assert c.lookup("t")["controlpath"] == hashlib.sha1(
        b"box.lan.examplet22localguygw").hexdigest()
    assert cfg("Host *\n  IdentityFile /x%j\n").lookup("t")["identityfile"] == ["/x"]


def test_local_hostname_needs_no_dns(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("getfqdn must not be called")

    monkeypatch.setattr(paramiko.config.socket, "getfqdn", boom)
    monkeypatch.setattr(paramiko.config.socket, "gethostbyname", boom)
    monkeypatch.setattr(paramiko.config.socket, "getaddrinfo", boom)
    start = time.monotonic()
    r = cfg("Host *\n  ControlPath /%l/%L/%C\n").lookup("h")
    assert r["controlpath"].startswith("/box.lan.example/box/")
    assert time.monotonic() - start < 0.5


def test_local_facts_are_looked_up_lazily(monkeypatch):
    calls = []
    monkeypatch.setattr(paramiko.config.socket, "gethostname",
                        lambda: calls.append(1) or "hn")
    cfg("Host *\n  User u\n  IdentityFile /plain\n").lookup("h")
    assert calls == []
    cfg("Host *\n  IdentityFile /%l-%L-%l\n  ControlPath %C\n").lookup("h")
    assert calls == [1]


def test_getpass_is_looked_up_at_call_time(monkeypatch):
    c = cfg("Host *\n  IdentityFile /%u/%r\nMatch localuser alice\n  Port 2200\n")
    monkeypatch.setattr(paramiko.config.getpass, "getuser", lambda: "alice")
    r = c.lookup("h")
    assert r["identityfile"] == ["/alice/alice"] and r["port"] == "2200"


def test_environment_variables(monkeypatch, caplog):
    monkeypatch.setenv("CFG_DIR", "/srv/ssh")
    monkeypatch.delenv("CFG_UNSET", raising=False)
    r = cfg(
        "Host *\n  IdentityFile ${CFG_DIR}/id\n  IdentityFile ${CFG_UNSET}/dropped\n"
        "  ControlPath ${CFG_UNSET}/cp\n  UserKnownHostsFile ${CFG_DIR}/kh\n"
        "  RemoteCommand echo ${CFG_DIR}\n  IdentityAgent $CFG_DIR\n"
    ).lookup("h")
    assert r["identityfile"] == ["/srv/ssh/id"]
    assert "controlpath" not in r
    assert r["userknownhostsfile"] == "/srv/ssh/kh"
    assert r["remotecommand"] == "echo ${CFG_DIR}"  # no ${} expansion for this key
    assert r["identityagent"] == "$CFG_DIR"  # left for the agent code (OpenSSH semantics)
    assert "CFG_UNSET" in caplog.text


def test_unknown_token_errors():
    with pytest.raises(ConfigParseError, match="<string> line 2: controlpath: unknown token %Z"):
        cfg("Host *\n  ControlPath /x/%Z\n").lookup("h")
    with pytest.raises(ConfigParseError, match="incomplete token"):
        cfg("Host *\n  IdentityFile /x%\n").lookup("h")


# --------------------------------------------------------------------------------------
# Include


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_include_relative_to_user_ssh_dir(_pinned_local_identity):
    ssh_dir = _pinned_local_identity / ".ssh"
    write(ssh_dir / "conf.d" / "20-b.conf", "Host *\n  User b\n  Port 2\n")
    write(ssh_dir / "conf.d" / "10-a.conf", "Host *\n  User a\n")
    write(ssh_dir / "conf.d" / "notes.txt", "Host *\n  Port 99\n")
    r = cfg("Include conf.d/*.conf\n").lookup("h")
    assert r["user"] == "a" and r["port"] == "2"


def test_include_base_override_and_tilde(tmp_path, _pinned_local_identity):
    base = tmp_path / "elsewhere"
    write(base / "inc.conf", "User from-base\n")
    write(_pinned_local_identity / "tilde.conf", "Port 2222\n")
    r = cfg("Include inc.conf ~/tilde.conf\n", include_base=str(base)).lookup("h")
    assert r["user"] == "from-base" and r["port"] == "2222"


def test_include_system_config_rules(tmp_path, monkeypatch):
    etc = tmp_path / "etc_ssh"
    write(etc / "ssh_config.d" / "x.conf", "User sys\n")
    main = write(etc / "ssh_config", "Include ssh_config.d/*.conf\n")
    monkeypatch.setattr(SSHConfig, "SYSTEM_CONFIG_PATH", str(main))
    monkeypatch.setattr(SSHConfig, "SYSTEM_INCLUDE_BASE", str(etc))
    assert SSHConfig.from_path(main).lookup("h")["user"] == "sys"
    write(main, "Include ~/x.conf\n")
    with pytest.raises(ConfigParseError, match="no ~ in system configuration"):
        SSHConfig.from_path(main)


def test_include_inside_blocks(tmp_path):
    write(tmp_path / "body.conf", "User inc-user\nHost leak\n  Port 1\nHost *\n  Port 2\n")
    c = cfg("Host a\n  Include body.conf\n  HostName after.include\n"
            "Host b\n  IdentityFile /b\n", include_base=str(tmp_path))
    a = c.lookup("a")
    assert a["user"] == "inc-user" and a["port"] == "2" and a["hostname"] == "after.include"
    b = c.lookup("b")
    assert "user" not in b and "port" not in b and b["identityfile"] == ["/b"]
    # A Host block inside a file included from a non-matching block never matches.
    assert "port" not in c.lookup("leak")


def test_include_missing_and_directories_are_ignored(tmp_path):
    (tmp_path / "dir.conf").mkdir()
    r = cfg("Include nothing.conf nope/*.conf dir.conf\nHost *\n  User u\n",
            include_base=str(tmp_path)).lookup("h")
    assert r["user"] == "u"


def test_include_unreadable_file_errors(tmp_path, monkeypatch):
    p = write(tmp_path / "secret.conf", "User x\n")
    p.chmod(0)
    if os.geteuid() == 0:
        # Root reads mode-0 files anyway; make open() refuse as it would for anyone else.
        import builtins

        real_open = builtins.open

        def refusing_open(file, *args, **kwargs):
            if str(file) == str(p):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refusing_open)
    with pytest.raises(ConfigParseError, match="line 1: Can't open included file"):
        cfg("Include secret.conf\n", include_base=str(tmp_path))


def test_include_self_recursion(tmp_path):
    p = write(tmp_path / "self.conf", "Host *\n  User x\nInclude self.conf\n")
    with pytest.raises(ConfigParseError, match=rf"{p} line 3: recursive Include"):
        SSHConfig.from_path(p, include_base=str(tmp_path))
    write(tmp_path / "a.conf", "Include b.conf\n")
    write(tmp_path / "b.conf", "Include a.conf\n")
    with pytest.raises(ConfigParseError, match="recursive Include"):
        cfg("Include a.conf\n", include_base=str(tmp_path))


def test_include_depth_limit(tmp_path):
    def chain(levels: int) -> None:
        for i in range(levels):
            nxt = f"Include l{i + 1}.conf\n" if i + 1 < levels else "User deepest\n"
            write(tmp_path / f"l{i}.conf", nxt)

    chain(16)  # main file + 16 nested levels: OpenSSH's limit, accepted
    assert cfg("Include l0.conf\n", include_base=str(tmp_path)).lookup("h")["user"] == "deepest"
    chain(17)
    with pytest.raises(ConfigParseError, match="Too many recursive configuration includes"):
        cfg("Include l0.conf\n", include_base=str(tmp_path))


def test_include_fan_out_is_bounded(tmp_path):
    for i in range(12):
        write(tmp_path / f"f{i}.conf", f"Include f{i + 1}.conf f{i + 1}.conf f{i + 1}.conf\n")
    write(tmp_path / "f12.conf", "User x\n")
    start = time.monotonic()
    with pytest.raises(ConfigParseError, match="Include expands to more than"):
        cfg("Include f0.conf\n", include_base=str(tmp_path))
    assert time.monotonic() - start < 5


def test_include_with_tokens_is_resolved_per_host(tmp_path, monkeypatch):
    write(tmp_path / "hosts" / "web.conf", "User web-user\n")
    write(tmp_path / "env" / "x.conf", "Port 2200\n")
    monkeypatch.setenv("CFG_INC", str(tmp_path / "env"))
    c = cfg("Include hosts/%h.conf ${CFG_INC}/*.conf\n", include_base=str(tmp_path))
    assert c.lookup("web") == {"hostname": "web", "user": "web-user", "port": "2200"}
    assert c.lookup("db") == {"hostname": "db", "port": "2200"}
    monkeypatch.delenv("CFG_INC")
    write(tmp_path / "${CFG_INC}" / "x.conf", "User literal-path-must-not-be-read\n")
    assert c.lookup("db") == {"hostname": "db"}


def test_include_error_reports_included_file(tmp_path):
    bad = write(tmp_path / "bad.conf", "Host x\n\n  Port nope\n")
    with pytest.raises(ConfigParseError) as info:
        cfg("Host *\n  Include bad.conf\n", include_base=str(tmp_path))
    assert info.value.filename == str(bad) and info.value.lineno == 3


def test_get_hostnames_with_match_and_include(tmp_path):
    write(tmp_path / "more.conf", "Host included-host\n  User x\n")
    c = cfg("Host a b\n  User u\nMatch host c exec true\n  User v\nHost !neg *\n"
            "Include more.conf\n", include_base=str(tmp_path))
    assert c.get_hostnames() == {"a", "b", "!neg", "*", "included-host"}
    assert SSHConfig().get_hostnames() == set()


# --------------------------------------------------------------------------------------
# Canonicalization


class FakeResolver:
    def __init__(self, names, delay=0.0):
        self.names = {k.lower(): v for k, v in names.items()}
        self.calls = []
        self.delay = delay

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        self.calls.append((host, family))
        if self.delay:
            time.sleep(self.delay)
        if host.lower() in self.names:
            canon = self.names[host.lower()]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, canon, ("127.0.0.1", 22))]
        raise socket.gaierror(socket.EAI_NONAME, "not found")


@pytest.fixture
def resolver(monkeypatch):
    fake = FakeResolver({"web.corp.example.": "", "alias.corp.example.": "real.other.example.",
                         "anchored.": ""})
    monkeypatch.setattr(paramiko.config.socket, "getaddrinfo", fake)
    return fake


def test_canonicalize_with_domains(resolver):
    c = cfg("Host *\n  CanonicalizeHostname yes\n  CanonicalDomains nowhere.example corp.example\n"
            "Host *.corp.example\n  User canonical\nMatch canonical\n  Port 2200\n"
            "Match originalhost web\n  IdentityFile /orig\n")
    r = c.lookup("web")
    assert r["hostname"] == "web.corp.example" and r["user"] == "canonical"
    assert r["port"] == "2200" and r["identityfile"] == ["/orig"]
    assert [h for h, _ in resolver.calls] == ["web.nowhere.example.", "web.corp.example."]
    r = c.lookup("unknown")
    assert r["hostname"] == "unknown" and r["port"] == "2200"  # fallback, still final pass


def test_canonicalize_fallback_local_no(resolver):
    c = cfg("Host *\n  CanonicalizeHostname yes\n  CanonicalDomains corp.example\n"
            "  CanonicalizeFallbackLocal no\n")
    assert c.lookup("web")["hostname"] == "web.corp.example"
    with pytest.raises(CouldNotCanonicalize):
        c.lookup("nosuch")


def test_canonicalize_skips_proxied_unless_always(resolver):
    base = "Host *\n  CanonicalDomains corp.example\n"
    yes_jump = cfg(base + "  CanonicalizeHostname yes\n  ProxyJump gw\n")
    assert yes_jump.lookup("web")["hostname"] == "web"
    yes_cmd = cfg(base + "  CanonicalizeHostname yes\n  ProxyCommand nc %h %p\n")
    assert yes_cmd.lookup("web")["hostname"] == "web"
    always = cfg(base + "  CanonicalizeHostname always\n  ProxyJump gw\n")
    assert always.lookup("web")["hostname"] == "web.corp.example"
    for off in ("ProxyCommand none", "ProxyJump none"):
        direct = cfg(base + f"  CanonicalizeHostname yes\n  {off}\n")
        assert direct.lookup("web")["hostname"] == "web.corp.example", off


def test_canonicalize_max_dots_anchored_addresses_and_cnames(resolver):
    c = cfg("Host *\n  CanonicalizeHostname yes\n  CanonicalDomains corp.example\n"
            "  CanonicalizePermittedCNAMEs *.corp.example:*.other.example\n")
    assert c.lookup("a.b")["hostname"] == "a.b"  # 1 dot is allowed, lookup fails: fallback
    assert c.lookup("a.b.c")["hostname"] == "a.b.c"  # too many dots: not even tried
    assert c.lookup("anchored.")["hostname"] == "anchored"
    assert c.lookup("alias")["hostname"] == "real.other.example"
    n = len(resolver.calls)
    assert c.lookup("10.1.2.3")["hostname"] == "10.1.2.3"
    assert len(resolver.calls) == n  # addresses are never looked up
    assert "a.b.c.corp.example." not in [h for h, _ in resolver.calls]


def test_canonicalize_address_family(resolver):
    cfg("Host *\n  CanonicalizeHostname yes\n  CanonicalDomains corp.example\n"
        "  AddressFamily inet6\n").lookup("web")
    assert resolver.calls[-1] == ("web.corp.example.", socket.AF_INET6)


def test_canonicalize_hostname_none_disables_proxyjump(resolver):
    r = cfg("Host *\n  CanonicalizeHostname none\n  ProxyJump gw\n").lookup("web")
    assert r["hostname"] == "web" and r["proxyjump"] == "none"


def test_canonicalize_resolution_is_bounded(monkeypatch):
    fake = FakeResolver({}, delay=2.0)
    monkeypatch.setattr(paramiko.config.socket, "getaddrinfo", fake)
    c = cfg("Host *\n  CanonicalizeHostname yes\n  CanonicalDomains a.example b.example\n")
    monkeypatch.setattr(c, "RESOLVE_TIMEOUT", 0.1)
    start = time.monotonic()
    assert c.lookup("web")["hostname"] == "web"
    assert time.monotonic() - start < 1.0


def test_canonicalize_method(resolver):
    c = SSHConfig()
    opts = SSHConfigDict()
    assert c.canonicalize("web", opts, ["x.example", "corp.example"]) == "web.corp.example"
    assert c.canonicalize("web", opts, ["none", "corp.example"]) == "web"
    with pytest.raises(CouldNotCanonicalize):
        c.canonicalize("web", SSHConfigDict(canonicalizefallbacklocal="no"), ["x.example"])


# --------------------------------------------------------------------------------------
# Robustness


def test_concurrent_lookups_are_independent():
    c = cfg("Host *\n  HostName %h.example\n  IdentityFile ~/.ssh/%h\n"
            'Match exec "test %n = h3"\n  User three\n')
    errors = []

    def worker(i):
        try:
            for _ in range(5):
                r = c.lookup(f"h{i}")
                assert r["hostname"] == f"h{i}.example"
                assert r.get("user") == ("three" if i == 3 else None)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_large_config_lookup_is_fast():
    text = "".join(f"Host node{i} node{i}.example\n  HostName 10.0.{i // 250}.{i % 250}\n"
                   f"  User u{i}\n  IdentityFile ~/.ssh/k{i}\n" for i in range(3000))
    c = cfg(text + "Host *\n  ControlPath ~/.ssh/%C\n")
    start = time.monotonic()
    for i in range(0, 3000, 300):
        assert c.lookup(f"node{i}")["user"] == f"u{i}"
    assert time.monotonic() - start < 2.0
