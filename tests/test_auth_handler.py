"""AuthHandler, client against server, through two in-process fake transports.

Each fake transport has a reader thread that feeds payloads from its peer into its own
AuthHandler, so the client's waits and the server's replies run on separate threads as they
would over a socket. Signatures are real (the key classes from paramiko.*key).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramiko.auth_handler import AuthHandler
from paramiko.common import (
    AUTH_FAILED,
    AUTH_PARTIALLY_SUCCESSFUL,
    AUTH_SUCCESSFUL,
    DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE,
    DISCONNECT_PROTOCOL_ERROR,
    DISCONNECT_SERVICE_NOT_AVAILABLE,
    MSG_DISCONNECT,
    MSG_SERVICE_ACCEPT,
    MSG_SERVICE_REQUEST,
    MSG_USERAUTH_BANNER,
    MSG_USERAUTH_FAILURE,
    MSG_USERAUTH_INFO_REQUEST,
    MSG_USERAUTH_PK_OK,
    MSG_USERAUTH_REQUEST,
    MSG_USERAUTH_SUCCESS,
)
from paramiko.ed25519key import Ed25519Key
from paramiko.message import Message
from paramiko.rsakey import RSAKey
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    SSHException,
)

try:  # prefer the real class once paramiko.server exists
    from paramiko.server import InteractiveQuery
except ImportError:  # pragma: no cover - depends on what has landed
    class InteractiveQuery:  # type: ignore[no-redef]
        def __init__(self, name: str = "", instructions: str = "", *prompts: Any) -> None:
            self.name = name
            self.instructions = instructions
            self.prompts: List[tuple] = []
            for p in prompts:
                self.add_prompt(*p) if isinstance(p, tuple) else self.add_prompt(p)

        def add_prompt(self, prompt: str, echo: bool = True) -> None:
            self.prompts.append((prompt, echo))


SESSION_ID = b"\x11" * 32
WAIT = 5.0  # generous upper bound; every passing test finishes far sooner

DEFAULT_PUBKEYS = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                   "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256")


def msg(ptype: int, *fields: Any) -> bytes:
    m = Message()
    m.add_byte(bytes((ptype,)))
    m.add(*fields)
    return m.asbytes()


def body(payload: bytes) -> Message:
    """A Message positioned after the message number, as the transport hands it over."""
    m = Message(payload)
    m.get_byte()
    return m


class FakeTransport:
    """What AuthHandler needs from a transport, wired to a peer through a reader thread."""

    def __init__(self, server_mode: bool, server_object: Any = None,
                 session_id: bytes = SESSION_ID) -> None:
        self.server_mode = server_mode
        self.server_object = server_object
        self.session_id = session_id
        self.server_extensions: dict = {}
        self.disabled_algorithms: dict = {}
        self.auth_timeout = WAIT
        self.active = True
        self.saved_exception: Optional[BaseException] = None
        self.peer: Optional[FakeTransport] = None
        self.drop_outgoing = False
        self.sent: List[bytes] = []
        self.succeeded: List[str] = []
        self.logs: List[tuple] = []
        self.errors: List[BaseException] = []
        self.auth_handler = AuthHandler(self)
        self._inbox: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()

    # -- the transport contract --
    def _send_user_message(self, payload: bytes) -> None:
        if not self.active:
            raise SSHException("transport not active")
        self.sent.append(bytes(payload))
        if self.peer is not None and not self.drop_outgoing:
            self.peer._inbox.put(bytes(payload))

    def _auth_succeeded(self, username: str) -> None:
        self.succeeded.append(username)

    def is_active(self) -> bool:
        return self.active

    def get_exception(self) -> Optional[BaseException]:
        return self.saved_exception

    def _log(self, level: int, text: str) -> None:
        self.logs.append((level, text))

    # -- scaffolding --
    def _die(self, exc: BaseException) -> None:
        if not self.active:
            return
        self.saved_exception = exc
        self.active = False
        self.auth_handler._transport_closed(exc)
        if self.peer is not None:
            self.peer._inbox.put(b"")  # the peer sees the socket close

    def _reader(self) -> None:
        while True:
            payload = self._inbox.get()
            if payload is None:
                return
            if not self.active:
                continue
            if payload == b"":
                self._die(SSHException("connection closed by the peer"))
                continue
            if payload[0] == MSG_DISCONNECT:
                m = body(payload)
                self._die(SSHException(f"disconnected ({m.get_int()}): {m.get_text()}"))
                continue
            try:
                self.auth_handler._handle_message(payload[0], body(payload))
            except Exception as e:
                self.errors.append(e)
                self._die(e)

    def stop(self) -> None:
        self._inbox.put(None)
        self._thread.join(2)

    def sent_types(self) -> List[int]:
        return [p[0] for p in self.sent]


class StubServer:
    """ServerInterface stand-in: alice/secret, an authorized key list, scripted 2FA."""

    def __init__(self, allowed: str = "publickey,password,keyboard-interactive",
                 keys: tuple = (), banner: Optional[str] = None,
                 partial_key: bool = False, none_ok: bool = False) -> None:
        self.allowed = allowed
        self.keys = [k.asbytes() for k in keys]
        self.banner = banner
        self.partial_key = partial_key
        self.none_ok = none_ok
        self.key_done = False
        self.calls: List[tuple] = []
        self.round = 0

    def get_allowed_auths(self, username: str) -> str:
        return "password" if self.key_done else self.allowed

    def check_auth_none(self, username: str) -> int:
        self.calls.append(("none", username))
        return AUTH_SUCCESSFUL if self.none_ok else AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        self.calls.append(("password", username, password))
        if "password" not in self.get_allowed_auths(username):
            return AUTH_FAILED
        if (username, password) != ("alice", "secret"):
            return AUTH_FAILED
        if self.partial_key and not self.key_done:
            return AUTH_FAILED
        return AUTH_SUCCESSFUL

    def check_auth_publickey(self, username: str, key: Any) -> int:
        self.calls.append(("publickey", username, key.get_name()))
        if username != "alice" or key.asbytes() not in self.keys:
            return AUTH_FAILED
        if self.partial_key:
            self.key_done = True
            return AUTH_PARTIALLY_SUCCESSFUL
        return AUTH_SUCCESSFUL

    def check_auth_interactive(self, username: str, submethods: str) -> Any:
        self.calls.append(("kbd", username, submethods))
        self.round = 1
        return InteractiveQuery("Login", "Round one", ("Password: ", False))

    def check_auth_interactive_response(self, responses: List[str]) -> Any:
        self.calls.append(("kbd-response", list(responses)))
        if self.round == 1 and responses == ["secret"]:
            self.round = 2
            return InteractiveQuery("OTP", "Round two", ("Code: ", True))
        if self.round == 2 and responses == ["123456"]:
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def get_banner(self) -> tuple:
        return (self.banner, "en-US")


@pytest.fixture(scope="module")
def ed_key() -> Ed25519Key:
    return Ed25519Key.generate()


@pytest.fixture(scope="module")
def other_ed_key() -> Ed25519Key:
    return Ed25519Key.generate()


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate(2048)


@pytest.fixture
def make_pair():
    made: List[FakeTransport] = []

    def make(server_object: Any = None, **client_attrs: Any):
        client = FakeTransport(False)
        server = FakeTransport(True, server_object or StubServer())
        client.peer, server.peer = server, client
        for k, v in client_attrs.items():
            setattr(client, k, v)
        made.extend((client, server))
        return client, server

    yield make
    for t in made:
        t.stop()


@pytest.fixture
def lone_server():
    """A server-side handler with no peer: the test reads what it sent."""
    made: List[FakeTransport] = []

    def make(server_object: Any = None, grant: bool = True) -> FakeTransport:
        t = FakeTransport(True, server_object or StubServer())
        made.append(t)
        if grant:
            t.auth_handler._handle_message(MSG_SERVICE_REQUEST,
                                           body(msg(MSG_SERVICE_REQUEST, "ssh-userauth")))
            assert t.sent[-1] == msg(MSG_SERVICE_ACCEPT, "ssh-userauth")
        return t

    yield make
    for t in made:
        t.stop()


def auth(client: FakeTransport, method: str, *args: Any, timeout: float = WAIT) -> List[str]:
    event = threading.Event()
    h = client.auth_handler
    if method == "interactive":
        h.auth_interactive(args[0], args[1], event, *args[2:])
    else:
        getattr(h, "auth_" + method)(*args, event)
    return h.wait_for_response(event, timeout)


def request_fields(payload: bytes) -> dict:
    m = body(payload)
    out = {"user": m.get_text(), "service": m.get_text(), "method": m.get_text()}
    if out["method"] == "publickey":
        out["has_sig"] = m.get_boolean()
        out["alg"] = m.get_text()
        out["blob"] = m.get_binary()
        if out["has_sig"]:
            out["sig_alg"] = Message(m.get_binary()).get_text()
    return out


def last_request(client: FakeTransport) -> dict:
    reqs = [p for p in client.sent if p[0] == MSG_USERAUTH_REQUEST]
    return request_fields(reqs[-1])


# -- none / password -----------------------------------------------------------------------
def test_none_refused_gives_allowed_types(make_pair):
    client, server = make_pair()
    with pytest.raises(BadAuthenticationType) as ei:
        auth(client, "none", "alice")
    assert ei.value.allowed_types == ["publickey", "password", "keyboard-interactive"]
    assert ei.value.explanation == "Bad authentication type"
    assert client.sent_types()[:2] == [MSG_SERVICE_REQUEST, MSG_USERAUTH_REQUEST]
    assert server.sent_types()[0] == MSG_SERVICE_ACCEPT
    assert not client.auth_handler.is_authenticated()


def test_none_accepted(make_pair):
    client, server = make_pair(StubServer(none_ok=True))
    assert auth(client, "none", "alice") == []
    assert client.auth_handler.is_authenticated() and server.auth_handler.is_authenticated()
    assert client.succeeded == ["alice"] and server.succeeded == ["alice"]
    assert client.auth_handler.get_username() == "alice"
    assert server.auth_handler.get_username() == "alice"


def test_password_good(make_pair):
    client, server = make_pair()
    assert auth(client, "password", "alice", "secret") == []
    assert client.succeeded == ["alice"] and server.succeeded == ["alice"]
    assert ("password", "alice", "secret") in server.server_object.calls
    # The service is requested once, however many attempts follow.
    assert client.sent_types().count(MSG_SERVICE_REQUEST) == 1


def test_password_bad_then_good(make_pair):
    client, server = make_pair()
    with pytest.raises(AuthenticationException) as ei:
        auth(client, "password", "alice", "wrong")
    assert type(ei.value) is AuthenticationException
    assert str(ei.value) == "Authentication failed."
    assert ei.value.phase == "auth"
    assert auth(client, "password", "alice", "secret") == []
    assert client.sent_types().count(MSG_SERVICE_REQUEST) == 1


def test_method_not_allowed_is_bad_authentication_type(make_pair):
    client, _ = make_pair(StubServer(allowed="publickey"))
    with pytest.raises(BadAuthenticationType) as ei:
        auth(client, "password", "alice", "secret")
    assert ei.value.allowed_types == ["publickey"]


def test_already_authenticated_refuses_new_attempt(make_pair):
    client, server = make_pair()
    auth(client, "password", "alice", "secret")
    with pytest.raises(SSHException, match="already authenticated"):
        auth(client, "password", "alice", "secret")
    # A stray request after success is ignored by the server (RFC 4252 5.1).
    before = len(server.sent)
    server.auth_handler._handle_message(
        MSG_USERAUTH_REQUEST, body(msg(MSG_USERAUTH_REQUEST, "alice", "ssh-connection", "none")))
    assert len(server.sent) == before


# -- publickey ---------------------------------------------------------------------------
def test_publickey_ed25519_good(make_pair, ed_key):
    client, server = make_pair(StubServer(keys=(ed_key,)))
    assert auth(client, "publickey", "alice", ed_key) == []
    req = last_request(client)
    assert req["alg"] == req["sig_alg"] == "ssh-ed25519"
    assert req["blob"] == ed_key.asbytes()
    assert server.succeeded == ["alice"]


def test_publickey_unknown_key(make_pair, ed_key, other_ed_key):
    client, server = make_pair(StubServer(keys=(ed_key,)))
    with pytest.raises(AuthenticationException, match="Authentication failed"):
        auth(client, "publickey", "alice", other_ed_key)
    assert ("publickey", "alice", "ssh-ed25519") in server.server_object.calls


class ForgedKey:
    """Presents one key's public blob but signs with another private key."""

    def __init__(self, shown: Any, signer: Any, sig_alg: Optional[str] = None) -> None:
        self.shown, self.signer, self.sig_alg = shown, signer, sig_alg

    def get_name(self) -> str:
        return self.shown.get_name()

    def asbytes(self) -> bytes:
        return self.shown.asbytes()

    def sign_ssh_data(self, data: bytes, algorithm: Optional[str] = None) -> Message:
        return self.signer.sign_ssh_data(data, self.sig_alg or algorithm)


def test_publickey_bad_signature_rejected(make_pair, ed_key, other_ed_key):
    server_obj = StubServer(keys=(ed_key,))
    client, server = make_pair(server_obj)
    with pytest.raises(AuthenticationException, match="Authentication failed"):
        auth(client, "publickey", "alice", ForgedKey(ed_key, other_ed_key))
    # The policy callback is never consulted for a signature that doesn't verify.
    assert not [c for c in server_obj.calls if c[0] == "publickey"]
    assert any("bad ssh-ed25519 signature" in text for _, text in server.logs)


def test_publickey_wrong_session_id_rejected(make_pair, ed_key):
    client, server = make_pair(StubServer(keys=(ed_key,)), session_id=b"\x22" * 32)
    with pytest.raises(AuthenticationException):
        auth(client, "publickey", "alice", ed_key)
    assert server.succeeded == []


def test_publickey_needs_session_id(make_pair, ed_key):
    client, _ = make_pair(session_id=None)
    with pytest.raises(SSHException, match="no session id"):
        client.auth_handler.auth_publickey("alice", ed_key, threading.Event())


def test_publickey_signing_failure_is_typed(make_pair, ed_key):
    client, _ = make_pair()

    class Broken(ForgedKey):
        def sign_ssh_data(self, data, algorithm=None):
            raise RuntimeError("agent went away")

    with pytest.raises(SSHException, match="signing with the ssh-ed25519 key failed"):
        client.auth_handler.auth_publickey("alice", Broken(ed_key, ed_key), threading.Event())


@pytest.mark.parametrize("ext, expected", [
    ({}, "rsa-sha2-512"),
    ({"server-sig-algs": b"ssh-ed25519,rsa-sha2-512,rsa-sha2-256"}, "rsa-sha2-512"),
    ({"server-sig-algs": b"ssh-ed25519,rsa-sha2-256"}, "rsa-sha2-256"),
    ({"server-sig-algs": "ssh-rsa,ssh-ed25519"}, "ssh-rsa"),
])
def test_rsa_signature_algorithm_from_server_sig_algs(make_pair, rsa_key, ext, expected):
    client, server = make_pair(StubServer(keys=(rsa_key,)), server_extensions=ext)
    assert auth(client, "publickey", "alice", rsa_key) == []
    req = last_request(client)
    assert req["alg"] == req["sig_alg"] == expected
    assert server.succeeded == ["alice"]


def test_rsa_no_common_algorithm_still_tries_sha512(make_pair, rsa_key):
    client, _ = make_pair(server_extensions={"server-sig-algs": b"ssh-ed25519"})
    assert client.auth_handler._pubkey_algorithm("ssh-rsa") == "rsa-sha2-512"


def test_rsa_disabled_sha2_falls_back_to_ssh_rsa(make_pair):
    client, _ = make_pair(disabled_algorithms={"pubkeys": ["rsa-sha2-512", "rsa-sha2-256"]})
    h = client.auth_handler
    assert h._pubkey_algorithm("ssh-rsa") == "ssh-rsa"
    client.disabled_algorithms = {"pubkeys": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]}
    with pytest.raises(AuthenticationException, match="every RSA signature algorithm"):
        h._pubkey_algorithm("ssh-rsa")


def test_algorithm_choice_other_key_types(make_pair):
    client, _ = make_pair(server_extensions={"server-sig-algs": b"rsa-sha2-256"})
    h = client.auth_handler
    assert h._pubkey_algorithm("ssh-ed25519") == "ssh-ed25519"
    assert h._pubkey_algorithm("ecdsa-sha2-nistp384") == "ecdsa-sha2-nistp384"
    assert (h._pubkey_algorithm("ssh-rsa-cert-v01@openssh.com")
            == "rsa-sha2-256-cert-v01@openssh.com")


def test_server_refuses_sha1_when_not_preferred(make_pair, rsa_key):
    client, server = make_pair(StubServer(keys=(rsa_key,)),
                               server_extensions={"server-sig-algs": b"ssh-rsa"})
    server.preferred_pubkeys = DEFAULT_PUBKEYS
    with pytest.raises(AuthenticationException):
        auth(client, "publickey", "alice", rsa_key)
    assert last_request(client)["alg"] == "ssh-rsa"
    assert server.succeeded == []


def test_server_rejects_signature_made_with_other_algorithm(make_pair, rsa_key):
    # Request says rsa-sha2-512, signature inside is rsa-sha2-256 (valid, but not as named).
    client, server = make_pair(StubServer(keys=(rsa_key,)))
    with pytest.raises(AuthenticationException):
        auth(client, "publickey", "alice", ForgedKey(rsa_key, rsa_key, "rsa-sha2-256"))
    req = last_request(client)
    assert (req["alg"], req["sig_alg"]) == ("rsa-sha2-512", "rsa-sha2-256")
    assert server.succeeded == []


def test_server_publickey_query_gets_pk_ok(lone_server, ed_key, other_ed_key):
    server = lone_server(StubServer(keys=(ed_key,)))
    h = server.auth_handler
    query = msg(MSG_USERAUTH_REQUEST, "alice", "ssh-connection", "publickey", False,
                "ssh-ed25519", ed_key.asbytes())
    h._handle_message(MSG_USERAUTH_REQUEST, body(query))
    assert server.sent[-1] == msg(MSG_USERAUTH_PK_OK, "ssh-ed25519", ed_key.asbytes())
    unknown = msg(MSG_USERAUTH_REQUEST, "alice", "ssh-connection", "publickey", False,
                  "ssh-ed25519", other_ed_key.asbytes())
    h._handle_message(MSG_USERAUTH_REQUEST, body(unknown))
    assert server.sent[-1][0] == MSG_USERAUTH_FAILURE
    assert not h.is_authenticated()


@pytest.mark.parametrize("alg, blob", [
    ("ssh-ed25519", b"\x00\x00\x00\x07ssh-rsa\x00\x00\x00\x01\x03"),  # truncated RSA blob
    ("ssh-ed25519", b"garbage"),
    ("rsa-sha2-512", None),  # alg does not fit an ed25519 key
    ("ssh-dss", None),
])
def test_server_publickey_bad_key_or_alg_fails_cleanly(lone_server, ed_key, alg, blob):
    server = lone_server(StubServer(keys=(ed_key,)))
    req = msg(MSG_USERAUTH_REQUEST, "alice", "ssh-connection", "publickey", False, alg,
              blob if blob is not None else ed_key.asbytes())
    server.auth_handler._handle_message(MSG_USERAUTH_REQUEST, body(req))
    assert server.sent[-1][0] == MSG_USERAUTH_FAILURE
    assert server.active


# -- keyboard-interactive ----------------------------------------------------------------
def test_keyboard_interactive_two_rounds(make_pair):
    client, server = make_pair()
    seen = []

    def handler(title, instructions, prompts):
        seen.append((title, instructions, prompts))
        return ["secret"] if title == "Login" else ["123456"]

    assert auth(client, "interactive", "alice", handler, "pam") == []
    assert seen == [("Login", "Round one", [("Password: ", False)]),
                    ("OTP", "Round two", [("Code: ", True)])]
    assert ("kbd", "alice", "pam") in server.server_object.calls
    assert server.succeeded == ["alice"] and client.succeeded == ["alice"]
    assert server.auth_handler.auth_method == "keyboard-interactive"


def test_keyboard_interactive_wrong_second_round(make_pair):
    client, _ = make_pair()
    with pytest.raises(AuthenticationException, match="Authentication failed"):
        auth(client, "interactive", "alice",
             lambda t, i, p: ["secret"] if t == "Login" else ["000000"])


def test_keyboard_interactive_handler_errors(make_pair):
    client, server = make_pair()

    def boom(title, instructions, prompts):
        raise KeyError("no tty")

    with pytest.raises(AuthenticationException, match="handler raised KeyError") as ei:
        auth(client, "interactive", "alice", boom)
    assert isinstance(ei.value.__cause__, KeyError)
    with pytest.raises(AuthenticationException, match="must return 1"):
        auth(client, "interactive", "alice", lambda t, i, p: ["a", "b"])
    # The connection survives both, and a new request abandons the half-done exchange.
    assert client.active and server.active
    assert auth(client, "password", "alice", "secret") == []


def test_server_info_response_checks(lone_server):
    server = lone_server()
    h = server.auth_handler
    h._handle_message(MSG_USERAUTH_REQUEST, body(msg(
        MSG_USERAUTH_REQUEST, "alice", "ssh-connection", "keyboard-interactive", "", "")))
    m = body(server.sent[-1])
    assert server.sent[-1][0] == MSG_USERAUTH_INFO_REQUEST
    assert (m.get_text(), m.get_text(), m.get_text(), m.get_int()) == ("Login", "Round one",
                                                                        "", 1)
    with pytest.raises(SSHException, match="2 answers for 1 prompts"):
        h._handle_message(61, body(msg(61, 2, "a", "b")))
    assert server.sent[-1][0] == MSG_DISCONNECT


def test_server_info_response_without_request(lone_server):
    server = lone_server()
    with pytest.raises(SSHException, match="without a pending keyboard-interactive"):
        server.auth_handler._handle_message(61, body(msg(61, 0)))
    assert body(server.sent[-1]).get_int() == DISCONNECT_PROTOCOL_ERROR


# -- partial success, banner, limits -----------------------------------------------------
def test_partial_success_publickey_then_password(make_pair, ed_key):
    client, server = make_pair(StubServer(keys=(ed_key,), partial_key=True))
    assert auth(client, "publickey", "alice", ed_key) == ["password"]
    assert not client.auth_handler.is_authenticated()
    assert auth(client, "password", "alice", "secret") == []
    assert client.auth_handler.is_authenticated() and server.succeeded == ["alice"]
    failures = [body(p) for p in server.sent if p[0] == MSG_USERAUTH_FAILURE]
    assert [(m.get_list(), m.get_boolean()) for m in failures] == [(["password"], True)]


def test_username_change_after_partial_success_disconnects(make_pair, ed_key):
    client, server = make_pair(StubServer(keys=(ed_key,), partial_key=True))
    assert auth(client, "publickey", "alice", ed_key) == ["password"]
    with pytest.raises(SSHException, match="disconnected"):
        auth(client, "password", "bob", "secret")
    assert server.sent[-1][0] == MSG_DISCONNECT
    assert "change of username" in str(server.errors[0])


def test_username_change_before_success_is_allowed(make_pair):
    client, server = make_pair()
    with pytest.raises(AuthenticationException):
        auth(client, "password", "bob", "secret")
    assert auth(client, "password", "alice", "secret") == []
    assert server.auth_handler.get_username() == "alice"


def test_banner_sent_once_before_first_reply(make_pair):
    client, server = make_pair(StubServer(banner="Authorized use only\n"))
    with pytest.raises(BadAuthenticationType):
        auth(client, "none", "alice")
    assert client.auth_handler.get_banner() == b"Authorized use only\n"
    assert auth(client, "password", "alice", "secret") == []
    types = server.sent_types()
    assert types.count(MSG_USERAUTH_BANNER) == 1
    assert types.index(MSG_USERAUTH_BANNER) < types.index(MSG_USERAUTH_FAILURE)


def test_no_banner_when_server_has_none(make_pair):
    client, server = make_pair()
    auth(client, "password", "alice", "secret")
    assert MSG_USERAUTH_BANNER not in server.sent_types()
    assert client.auth_handler.get_banner() is None


def test_too_many_failures_disconnects(make_pair):
    client, server = make_pair()
    server.auth_handler.max_auth_failures = 3
    for _ in range(3):
        with pytest.raises(AuthenticationException, match="Authentication failed"):
            auth(client, "password", "alice", "nope")
    last = body(server.sent[-1])
    assert server.sent[-1][0] == MSG_DISCONNECT
    assert last.get_int() == DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE
    assert "too many authentication failures" in last.get_text()
    assert any("too many authentication failures" in text for _, text in server.logs)
    assert getattr(server.errors[0], "disconnect_sent", False)
    with pytest.raises(SSHException):
        auth(client, "password", "alice", "secret")


def test_server_callback_exception_is_a_refusal(make_pair):
    class Grumpy(StubServer):
        def check_auth_password(self, username, password):
            raise RuntimeError("database down")

    client, server = make_pair(Grumpy())
    with pytest.raises(AuthenticationException, match="Authentication failed"):
        auth(client, "password", "alice", "secret")
    assert server.active
    assert any("database down" in text for _, text in server.logs)


def test_password_change_request_is_typed_failure():
    client = FakeTransport(False)
    try:
        client.drop_outgoing = True
        event = threading.Event()
        h = client.auth_handler
        h.auth_password("alice", "old", event)
        h._handle_message(MSG_SERVICE_ACCEPT, body(msg(MSG_SERVICE_ACCEPT, "ssh-userauth")))
        h._handle_message(60, body(msg(60, "Password expired", "")))
        with pytest.raises(AuthenticationException, match="password change"):
            h.wait_for_response(event, WAIT)
    finally:
        client.stop()


# -- services ----------------------------------------------------------------------------
def test_server_refuses_other_service(lone_server):
    server = lone_server(grant=False)
    with pytest.raises(SSHException, match="'ssh-foo' not available"):
        server.auth_handler._handle_message(
            MSG_SERVICE_REQUEST, body(msg(MSG_SERVICE_REQUEST, "ssh-foo")))
    assert body(server.sent[-1]).get_int() == DISCONNECT_SERVICE_NOT_AVAILABLE


def test_server_requires_service_first_and_ssh_connection(lone_server):
    server = lone_server(grant=False)
    req = msg(MSG_USERAUTH_REQUEST, "alice", "ssh-connection", "none")
    with pytest.raises(SSHException, match="before the ssh-userauth service"):
        server.auth_handler._handle_message(MSG_USERAUTH_REQUEST, body(req))
    server = lone_server()
    req = msg(MSG_USERAUTH_REQUEST, "alice", "ssh-other", "none")
    with pytest.raises(SSHException, match="'ssh-other' not available"):
        server.auth_handler._handle_message(MSG_USERAUTH_REQUEST, body(req))
    assert body(server.sent[-1]).get_int() == DISCONNECT_SERVICE_NOT_AVAILABLE


def test_server_without_server_object_refuses_service(make_pair):
    client, server = make_pair()
    server.server_object = None
    t0 = time.monotonic()
    with pytest.raises(SSHException, match="no server object"):
        auth(client, "password", "alice", "secret")
    assert time.monotonic() - t0 < 2


# -- timeouts, death, malformed input ----------------------------------------------------
def test_timeout_when_server_never_answers(make_pair):
    client, server = make_pair()
    server.drop_outgoing = True
    t0 = time.monotonic()
    with pytest.raises(AuthenticationException) as ei:
        auth(client, "password", "alice", "secret", timeout=0.3)
    assert str(ei.value) == "Authentication timeout."
    assert 0.25 <= time.monotonic() - t0 < 2


def test_transport_death_raises_transport_exception(make_pair):
    client, server = make_pair()
    server.drop_outgoing = True
    event = threading.Event()
    client.auth_handler.auth_password("alice", "secret", event)
    boom = SSHException("socket exploded")
    threading.Timer(0.1, client._die, (boom,)).start()
    t0 = time.monotonic()
    with pytest.raises(SSHException) as ei:
        client.auth_handler.wait_for_response(event, WAIT)
    assert ei.value is boom
    assert time.monotonic() - t0 < 2


def test_inactive_transport_without_notification(make_pair):
    # A transport that just goes inactive (no _transport_closed) is noticed by polling.
    client, server = make_pair()
    server.drop_outgoing = True
    event = threading.Event()
    client.auth_handler.auth_password("alice", "secret", event)
    client.saved_exception = EOFError()
    client.active = False
    with pytest.raises(SSHException, match="connection lost") as ei:
        client.auth_handler.wait_for_response(event, WAIT)
    assert not isinstance(ei.value, AuthenticationException)


def test_new_attempt_wakes_the_unanswered_one(make_pair):
    client, server = make_pair()
    server.drop_outgoing = True
    first, second = threading.Event(), threading.Event()
    client.auth_handler.auth_password("alice", "one", first)
    client.auth_handler.auth_password("alice", "two", second)
    t0 = time.monotonic()
    with pytest.raises(AuthenticationException, match="superseded"):
        client.auth_handler.wait_for_response(first, WAIT)
    assert time.monotonic() - t0 < 1
    assert not second.is_set()


def _pending_client(method: str = "password") -> FakeTransport:
    client = FakeTransport(False)
    client.drop_outgoing = True
    h = client.auth_handler
    event = threading.Event()
    client.test_event = event
    if method == "password":
        h.auth_password("alice", "x", event)
    else:
        h.auth_interactive("alice", lambda *a: [], event)
    h._handle_message(MSG_SERVICE_ACCEPT, body(msg(MSG_SERVICE_ACCEPT, "ssh-userauth")))
    return client


def test_malformed_failure_wakes_waiter_with_ssh_exception():
    client = _pending_client()
    try:
        with pytest.raises(SSHException, match="malformed userauth-failure") as ei:
            client.auth_handler._handle_message(MSG_USERAUTH_FAILURE,
                                                body(b"\x33\x00\x00\x00\x10ab"))
        assert ei.value.phase == "auth"
        with pytest.raises(SSHException, match="malformed userauth-failure"):
            client.auth_handler.wait_for_response(client.test_event, 1)
    finally:
        client.stop()


def test_info_request_with_absurd_prompt_count():
    client = _pending_client("interactive")
    try:
        bogus = msg(60, "t", "i", "", 1_000_000_000) + b"\x00\x00\x00\x01a\x01"
        t0 = time.monotonic()
        with pytest.raises(SSHException, match="1000000000 prompts"):
            client.auth_handler._handle_message(60, body(bogus))
        assert time.monotonic() - t0 < 1
    finally:
        client.stop()


def test_unexpected_messages_are_protocol_errors(lone_server):
    client = FakeTransport(False)
    try:
        with pytest.raises(SSHException, match="unexpected userauth-request"):
            client.auth_handler._handle_message(MSG_USERAUTH_REQUEST, body(msg(50, "a")))
        with pytest.raises(SSHException, match="unsolicited service-accept"):
            client.auth_handler._handle_message(
                MSG_SERVICE_ACCEPT, body(msg(MSG_SERVICE_ACCEPT, "ssh-userauth")))
        with pytest.raises(SSHException, match="userauth-success with no request"):
            client.auth_handler._handle_message(MSG_USERAUTH_SUCCESS, body(msg(52)))
    finally:
        client.stop()
    server = lone_server()
    with pytest.raises(SSHException, match="unexpected userauth-success"):
        server.auth_handler._handle_message(MSG_USERAUTH_SUCCESS, body(msg(52)))


def test_server_truncated_request(lone_server):
    server = lone_server()
    with pytest.raises(SSHException, match="malformed userauth-request") as ei:
        server.auth_handler._handle_message(
            MSG_USERAUTH_REQUEST,
            body(msg(MSG_USERAUTH_REQUEST, "alice", "ssh-connection", "password")))
    assert type(ei.value) is SSHException and ei.value.phase == "auth"


@settings(max_examples=150, deadline=None)
@given(ptype=st.sampled_from([5, 6, 50, 51, 52, 53, 60, 61, 62, 79]),
       data=st.binary(max_size=64), server_side=st.booleans())
def test_fuzz_only_ssh_exceptions(ptype, data, server_side):
    t = FakeTransport(server_side, StubServer())
    t.stop()  # only the handler is exercised; no reader thread needed
    h = t.auth_handler
    if server_side:
        h._service_granted = True
    else:
        h.auth_interactive("alice", lambda *a: ["x"] * len(a[2]), threading.Event())
        h._service_requested = h._service_accepted = True
    try:
        h._handle_message(ptype, Message(data))
    except SSHException:
        pass
