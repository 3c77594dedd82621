"""AuthStrategy and its sources: unit behaviour, then through SSHClient.connect(auth_strategy=)
against the real sshd of the test bed and the auth bed."""

from __future__ import annotations

import time
from typing import Iterator, List

import pytest

import paramiko
from paramiko.auth_strategy import (
    AuthFailure,
    AuthResult,
    AuthSource,
    AuthStrategy,
    InMemoryPrivateKey,
    NoneAuth,
    OnDiskPrivateKey,
    Password,
    PrivateKey,
    SourceResult,
)
from paramiko.client import AutoAddPolicy, SSHClient
from paramiko.ed25519key import Ed25519Key
from paramiko.pkey import PKey
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    SSHException,
)
from tests.test_client import T, transport_threads, two_factor_sshd  # noqa: F401
from tests.testbed.keys import keygen, public_line


@pytest.fixture(autouse=True)
def no_transport_leak():
    before = set(transport_threads())
    yield
    deadline = time.monotonic() + 5
    extra = [t for t in transport_threads() if t not in before]
    while extra and time.monotonic() < deadline:
        time.sleep(0.05)
        extra = [t for t in transport_threads() if t not in before]
    assert not extra, f"transport threads left running: {extra}"


class Listed(AuthStrategy):
    """Yields the given sources lazily and notes how far it got."""

    def __init__(self, sources: List[AuthSource]) -> None:
        super().__init__(ssh_config=None)
        self.sources = sources
        self.yielded = 0

    def get_sources(self) -> Iterator[AuthSource]:
        for s in self.sources:
            self.yielded += 1
            yield s


# ---------------------------------------------------------------------------------------------
# unit behaviour
# ---------------------------------------------------------------------------------------------


class FakeTransport:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []
        self.active = True
        self.authenticated = False

    def is_active(self):
        return self.active

    def is_authenticated(self):
        return self.authenticated

    def _next(self, what):
        self.calls.append(what)
        a = self.answers.pop(0)
        if callable(a):
            a = a(self)
        if isinstance(a, BaseException):
            raise a
        if a == []:
            self.authenticated = True
        return a

    def auth_none(self, username):
        return self._next(("none", username))

    def auth_password(self, username, password):
        return self._next(("password", username, password))

    def auth_publickey(self, username, key):
        return self._next(("publickey", username, key.get_name()))


def test_abstract_parts():
    with pytest.raises(NotImplementedError):
        AuthSource("u").authenticate(FakeTransport([]))
    with pytest.raises(NotImplementedError):
        list(AuthStrategy(ssh_config={}).get_sources())
    assert AuthStrategy(ssh_config={"a": 1}).ssh_config == {"a": 1}
    with pytest.raises(AuthenticationException):
        PrivateKey("u").authenticate(FakeTransport([]))


def test_on_disk_source_validated(testbed):
    key = Ed25519Key.from_private_key_file(str(testbed.identity))
    for source in OnDiskPrivateKey.SOURCES:
        assert OnDiskPrivateKey("u", source, testbed.identity, key).source == source
    with pytest.raises(ValueError, match="source"):
        OnDiskPrivateKey("u", "somewhere", testbed.identity, key)


def test_password_is_lazy_and_never_shown():
    calls = []

    def getter():
        calls.append(1)
        return "hunter2"

    pw = Password("alice", password_getter=getter)
    assert "hunter2" not in repr(pw) and "alice" in repr(pw)
    assert calls == []
    t = FakeTransport([[]])
    assert pw.authenticate(t) == []
    assert calls == [1] and t.calls == [("password", "alice", "hunter2")]
    with pytest.raises(TypeError):
        Password("alice", "not-callable")  # type: ignore[arg-type]


def test_stops_at_first_success_without_consuming_more_sources():
    getter_called = []
    strategy = Listed([NoneAuth("u"), NoneAuth("u"),
                       Password("u", lambda: getter_called.append(1) or "x")])
    t = FakeTransport([BadAuthenticationType("Bad authentication type", ["password"]), []])
    result = strategy.authenticate(t)
    assert isinstance(result, AuthResult) and result.strategy is strategy
    assert [type(r) for r in result] == [SourceResult, SourceResult]
    assert isinstance(result[0].result, BadAuthenticationType)
    assert result[1].result == []
    assert strategy.yielded == 2 and getter_called == []


def test_partial_success_continues():
    strategy = Listed([NoneAuth("u"), Password("u", lambda: "pw")])
    t = FakeTransport([["password"], []])
    result = strategy.authenticate(t)
    assert [r.result for r in result] == [["password"], []]
    assert "partial success" in str(result)


def test_total_failure_raises_auth_failure_with_result():
    err1 = BadAuthenticationType("Bad authentication type", ["publickey"])
    err2 = AuthenticationException("Authentication failed.")
    strategy = Listed([NoneAuth("u"), Password("u", lambda: "pw")])
    with pytest.raises(AuthFailure) as ei:
        strategy.authenticate(FakeTransport([err1, err2]))
    e = ei.value
    assert isinstance(e, AuthenticationException)
    assert [r.result for r in e.result] == [err1, err2]
    assert "NoneAuth(user='u')" in str(e) and "BadAuthenticationType" in str(e)
    # Only partial successes: still a failure.
    with pytest.raises(AuthFailure):
        Listed([NoneAuth("u")]).authenticate(FakeTransport([["password"]]))
    # No source at all.
    with pytest.raises(AuthFailure, match="no authentication source"):
        Listed([]).authenticate(FakeTransport([]))


def test_dead_transport_stops_the_run():
    def die(t):
        t.active = False
        return SSHException("connection lost")

    strategy = Listed([NoneAuth("u"), NoneAuth("u"), NoneAuth("u")])
    with pytest.raises(AuthFailure) as ei:
        strategy.authenticate(FakeTransport([die, [], []]))
    assert len(ei.value.result) == 1 and strategy.yielded == 1


def test_source_reprs(testbed):
    key = Ed25519Key.from_private_key_file(str(testbed.identity))
    assert key.fingerprint in repr(InMemoryPrivateKey("u", key))
    r = repr(OnDiskPrivateKey("u", "implicit-home", testbed.identity, key))
    assert "implicit-home" in r and str(testbed.identity) in r


# ---------------------------------------------------------------------------------------------
# through SSHClient against real servers
# ---------------------------------------------------------------------------------------------


def gw_client(testbed) -> SSHClient:
    c = SSHClient()
    c.load_system_host_keys(str(testbed.known_hosts))
    return c


def test_in_memory_key_after_none(testbed):
    key = PKey.from_path(testbed.identity)
    strategy = Listed([NoneAuth(testbed.user), InMemoryPrivateKey(testbed.user, key)])
    c = gw_client(testbed)
    result = c.connect(testbed.gateway.address, testbed.gateway.port, auth_strategy=strategy,
                       timeout=T)
    with c:
        assert isinstance(result, AuthResult)
        assert isinstance(result[0].result, BadAuthenticationType)
        assert result[0].result.allowed_types == ["publickey"]
        assert result[1].result == []
        _, out, _ = c.exec_command("echo strategy", timeout=T)
        assert out.read() == b"strategy\n"


def test_on_disk_key(testbed):
    key = PKey.from_path(testbed.identity)
    strategy = Listed([OnDiskPrivateKey(testbed.user, "python-config", testbed.identity, key)])
    c = gw_client(testbed)
    with c:
        result = c.connect(testbed.gateway.address, testbed.gateway.port,
                           auth_strategy=strategy, timeout=T)
        assert c.get_transport().is_authenticated() and len(result) == 1


def test_password_source(auth_bed, tmp_path):
    c = SSHClient()
    c.load_system_host_keys(str(auth_bed.write_known_hosts(tmp_path / "kh")))
    strategy = Listed([Password(auth_bed.user, lambda: "wrong"),
                       Password(auth_bed.user, lambda: auth_bed.password)])
    with c:
        result = c.connect(auth_bed.host, auth_bed.port, auth_strategy=strategy, timeout=T)
        assert isinstance(result[0].result, AuthenticationException)
        assert result[1].result == []


def test_all_sources_fail(testbed, tmp_path, openssh_tools):
    stranger = keygen(tmp_path / "stranger", "ed25519", ssh_keygen=openssh_tools["ssh-keygen"])
    strategy = Listed([NoneAuth(testbed.user),
                       InMemoryPrivateKey(testbed.user, PKey.from_path(stranger)),
                       Password(testbed.user, lambda: "pw")])
    c = gw_client(testbed)
    with pytest.raises(AuthFailure) as ei:
        c.connect(testbed.gateway.address, testbed.gateway.port, auth_strategy=strategy,
                  timeout=T)
    e = ei.value
    assert len(e.result) == 3
    assert all(isinstance(r.result, AuthenticationException) for r in e.result)
    assert e.phase == "auth"
    assert f"{testbed.gateway.address}:{testbed.gateway.port}" in str(e)
    assert c.get_transport() is None


def test_partial_then_password(auth_bed, two_factor_sshd, tmp_path, openssh_tools):  # noqa: F811
    sshd, port = two_factor_sshd
    key_path = keygen(tmp_path / "id_2fa_strategy", "ecdsa", 256,
                      ssh_keygen=openssh_tools["ssh-keygen"])
    auth_bed.authorize(public_line(key_path))
    strategy = Listed([InMemoryPrivateKey(auth_bed.user, PKey.from_path(key_path)),
                       Password(auth_bed.user, lambda: auth_bed.password)])
    c = SSHClient()
    c.set_missing_host_key_policy(AutoAddPolicy())
    with c:
        result = c.connect("127.0.0.1", port, auth_strategy=strategy, timeout=T)
        assert result[0].result == ["password"]
        assert result[1].result == []
        assert c.get_transport().is_authenticated()


def test_auth_failure_is_exported_shape():
    # AuthFailure(result) keeps .result; SourceResult is a 2-field named tuple.
    r = AuthResult(strategy=None)
    r.append(SourceResult(NoneAuth("x"), []))
    f = AuthFailure(result=r)
    assert f.result is r and SourceResult._fields == ("source", "result")
    assert issubclass(AuthFailure, paramiko.AuthenticationException)
