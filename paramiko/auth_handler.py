"""User authentication (RFC 4252, RFC 4256 keyboard-interactive, RFC 8332 RSA SHA-2).

``AuthHandler`` holds the userauth state machine for one transport, on either side. It owns
no socket and no thread: it sends with ``transport._send_user_message(payload)`` and is fed
by the transport's reader thread through ``_handle_message(ptype, m)`` (``m`` positioned
after the message number). The transport routes message 5 (server) / 6 (client) and 50-79.

Client side: the ``auth_*`` methods start one attempt and return at once; the caller then
blocks in ``wait_for_response(event, timeout)``. Server side: everything happens in the
reader thread, with the policy asked of ``transport.server_object`` (a ``ServerInterface``).

Fatal protocol errors (bad service, too many failures, malformed or out-of-place messages)
raise ``SSHException`` with ``phase == "auth"`` from ``_handle_message``; where the RFC calls
for a specific disconnect reason, MSG_DISCONNECT is sent first and the exception carries
``disconnect_sent = True`` so the transport need not send a second one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union

from paramiko.common import (
    AUTH_FAILED,
    AUTH_PARTIALLY_SUCCESSFUL,
    AUTH_SUCCESSFUL,
    DEBUG,
    DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE,
    DISCONNECT_PROTOCOL_ERROR,
    DISCONNECT_SERVICE_NOT_AVAILABLE,
    ERROR,
    INFO,
    MSG_DISCONNECT,
    MSG_NAMES,
    MSG_SERVICE_ACCEPT,
    MSG_SERVICE_REQUEST,
    MSG_USERAUTH_BANNER,
    MSG_USERAUTH_FAILURE,
    MSG_USERAUTH_INFO_REQUEST,
    MSG_USERAUTH_INFO_RESPONSE,
    MSG_USERAUTH_PK_OK,
    MSG_USERAUTH_REQUEST,
    MSG_USERAUTH_SUCCESS,
)
from paramiko.message import Message, MessageDecodeError
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    SSHException,
)

__all__ = ["AuthHandler", "InteractiveHandler"]

#: ``handler(title, instructions, [(prompt, echo), ...]) -> [response, ...]``
InteractiveHandler = Callable[[str, str, List[Tuple[str, bool]]], Sequence[Union[str, bytes]]]

USERAUTH_SERVICE = "ssh-userauth"
CONNECTION_SERVICE = "ssh-connection"

DEFAULT_AUTH_TIMEOUT = 30.0
# How often a waiting caller re-checks that the transport is still alive.
_POLL_INTERVAL = 0.1
# Several banners may arrive; keep at most this much text so a chatty peer can't grow memory.
_MAX_BANNER = 64 * 1024

_RSA_KEY_TYPES = ("ssh-rsa", "ssh-rsa-cert-v01@openssh.com")
_CERT_SUFFIX = "-cert-v01@openssh.com"
# Strongest first; SHA-1 "ssh-rsa" only when the server says it takes nothing else.
_RSA_SIG_ALGS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


def _key_from_blob(blob: bytes) -> Any:
    # Imported lazily: the key modules are optional until a server really needs them.
    from paramiko._core.hostkey import key_from_blob

    return key_from_blob(blob)


def _auth_error(cls: type, *args: Any) -> SSHException:
    exc = cls(*args)
    exc.phase = "auth"
    return exc


def _msg_name(ptype: int) -> str:
    return MSG_NAMES.get(ptype, f"message {ptype}")


def _name_list(value: Any) -> Optional[List[str]]:
    """A name-list from ext-info (bytes, str or already a list); None when absent."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("ascii", "replace")
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _allowed_list(value: Any) -> List[str]:
    """ServerInterface.get_allowed_auths returns a comma string; accept a list too."""
    if not value:
        return []
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("ascii", "replace")
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def _base_algorithm(alg: str) -> str:
    """The signature algorithm behind a (possibly certificate) public key algorithm name."""
    if alg.endswith(_CERT_SUFFIX):
        return alg[: -len(_CERT_SUFFIX)]
    return alg


def _algorithms_for_key_type(key_type: str) -> Tuple[str, ...]:
    """Public key algorithm names a key of ``key_type`` may authenticate with."""
    if key_type == "ssh-rsa":
        return _RSA_SIG_ALGS
    if key_type == "ssh-rsa-cert-v01@openssh.com":
        return tuple(a + _CERT_SUFFIX for a in _RSA_SIG_ALGS)
    return (key_type,)


def _signed_data(session_id: bytes, username: Union[str, bytes], service: Union[str, bytes],
                 algorithm: Union[str, bytes], key_blob: bytes) -> bytes:
    """What a publickey signature covers (RFC 4252 section 7)."""
    m = Message()
    m.add_string(session_id)
    m.add_byte(bytes((MSG_USERAUTH_REQUEST,)))
    m.add_string(username)
    m.add_string(service)
    m.add_string("publickey")
    m.add_boolean(True)
    m.add_string(algorithm)
    m.add_string(key_blob)
    return m.asbytes()


def _is_query(obj: Any) -> bool:
    """Duck-typed ``InteractiveQuery`` (so this module needn't import paramiko.server)."""
    return not isinstance(obj, int) and hasattr(obj, "prompts")


class _Attempt:
    """One client authentication request and its outcome."""

    __slots__ = ("method", "username", "event", "payload", "sent", "handler", "result",
                 "error", "done")

    def __init__(self, method: str, username: str, event: threading.Event, payload: bytes,
                 handler: Optional[InteractiveHandler] = None) -> None:
        self.method = method
        self.username = username
        self.event = event
        self.payload = payload
        self.sent = False
        self.handler = handler
        self.result: Optional[List[str]] = None  # [] on success, allowed list on partial
        self.error: Optional[BaseException] = None
        self.done = False


class AuthHandler:
    """Userauth state for one transport (client or server role, per ``transport.server_mode``).

    Needs from the transport: ``_send_user_message``, ``session_id``, ``server_mode``,
    ``server_object``, ``server_extensions``, ``_auth_succeeded(username)``, ``_log``,
    ``is_active()``; optional ``get_exception()``, ``auth_timeout``,
    ``disabled_algorithms`` (client), ``preferred_pubkeys`` (server).
    """

    #: Server side: failed attempts allowed before the connection is dropped.
    max_auth_failures = 20

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self._lock = threading.RLock()
        self.authenticated = False
        self.username: Optional[str] = None
        self.auth_method = ""
        self.banner: Optional[bytes] = None
        # client
        self._attempt: Optional[_Attempt] = None
        # A few past attempts, so a waiter on a superseded one still learns its outcome.
        self._recent: Deque[_Attempt] = deque(maxlen=8)
        self._service_requested = False
        self._service_accepted = False
        # server
        self._service_granted = False
        self._banner_sent = False
        self._failures = 0
        self._auth_user: Optional[bytes] = None
        self._partial_done = False
        self._query: Any = None
        self._query_user: Optional[str] = None

    # -- common ------------------------------------------------------------------------
    def is_authenticated(self) -> bool:
        return self.authenticated

    def get_username(self) -> Optional[str]:
        """The authenticated username, or None before success."""
        return self.username if self.authenticated else None

    def get_banner(self) -> Optional[bytes]:
        """Banner text the server sent (client side), or None."""
        return self.banner

    def _log(self, level: int, msg: str) -> None:
        log = getattr(self.transport, "_log", None)
        if log is not None:
            log(level, msg)

    @property
    def _server_mode(self) -> bool:
        return bool(getattr(self.transport, "server_mode", False))

    @property
    def _handler_table(self) -> Dict[int, Callable[[Message], None]]:
        if self._server_mode:
            return {
                MSG_SERVICE_REQUEST: self._parse_service_request,
                MSG_USERAUTH_REQUEST: self._parse_userauth_request,
                MSG_USERAUTH_INFO_RESPONSE: self._parse_info_response,
            }
        return {
            MSG_SERVICE_ACCEPT: self._parse_service_accept,
            MSG_USERAUTH_FAILURE: self._parse_failure,
            MSG_USERAUTH_SUCCESS: self._parse_success,
            MSG_USERAUTH_BANNER: self._parse_banner,
            60: self._parse_60,  # PK_OK / INFO_REQUEST / PASSWD_CHANGEREQ, by method
        }

    def _handle_message(self, ptype: int, m: Message) -> None:
        """Entry point for the transport's reader thread."""
        role = "server" if self._server_mode else "client"
        handler = self._handler_table.get(ptype)
        if handler is None:
            exc = _auth_error(SSHException,
                              f"auth: unexpected {_msg_name(ptype)} message ({role} side)")
            self._fail_attempt(exc)
            raise exc
        try:
            handler(m)
        except SSHException as e:
            if not isinstance(e, MessageDecodeError):
                self._fail_attempt(e)
                raise
            # Truncated or malformed fields: say which message was bad.
            wrapped = _auth_error(SSHException,
                                  f"auth: malformed {_msg_name(ptype)} message: {e}")
            self._fail_attempt(wrapped)
            raise wrapped from e
        except Exception as e:
            wrapped = _auth_error(SSHException,
                                  f"auth: bad {_msg_name(ptype)} message: "
                                  f"{type(e).__name__}: {e}")
            self._fail_attempt(wrapped)
            raise wrapped from e

    def _send(self, m: Message) -> None:
        self.transport._send_user_message(m.asbytes())

    def _fatal(self, code: int, text: str) -> SSHException:
        """Send MSG_DISCONNECT (best effort) and return the exception to raise."""
        self._log(ERROR, f"auth: {text}; disconnecting")
        m = Message()
        m.add_byte(bytes((MSG_DISCONNECT,)))
        m.add_int(code)
        m.add_string(text)
        m.add_string("")
        sent = True
        try:
            self._send(m)
        except Exception:
            sent = False  # the link is already gone; the raise below still ends the session
        exc = _auth_error(SSHException, f"auth: {text}")
        exc.disconnect_sent = sent
        return exc

    # -- client: starting attempts -----------------------------------------------------
    def _request_header(self, username: str, method: str) -> Message:
        m = Message()
        m.add_byte(bytes((MSG_USERAUTH_REQUEST,)))
        m.add_string(username)
        m.add_string(CONNECTION_SERVICE)
        m.add_string(method)
        return m

    def _start(self, method: str, username: str, event: Optional[threading.Event],
               payload: bytes, handler: Optional[InteractiveHandler] = None) -> None:
        if self._server_mode:
            raise _auth_error(SSHException, "auth: client authentication on a server transport")
        if event is None:
            event = threading.Event()
        attempt = _Attempt(method, username, event, payload, handler)
        send_service_request = False
        with self._lock:
            if self.authenticated:
                raise _auth_error(SSHException,
                                  f"auth: already authenticated as {self.username!r}")
            self.auth_method = method
            previous, self._attempt = self._attempt, attempt
            self._recent.append(attempt)
            if self._service_accepted:
                attempt.sent = True
            elif not self._service_requested:
                self._service_requested = True
                send_service_request = True
        # Someone may still wait on an unanswered attempt: wake them rather than let them
        # sit out the timeout (any late reply now belongs to the new attempt).
        if previous is not None and previous.event is not event:
            self._finish(previous, error=_auth_error(
                AuthenticationException, "auth: superseded by a newer authentication attempt"))
        # Sent outside the lock: the reader thread must be able to take it meanwhile.
        if send_service_request:
            self._log(DEBUG, "auth: requesting the ssh-userauth service")
            m = Message()
            m.add_byte(bytes((MSG_SERVICE_REQUEST,)))
            m.add_string(USERAUTH_SERVICE)
            self._send(m)
        elif attempt.sent:
            self._send(Message(payload))

    def auth_none(self, username: str, event: Optional[threading.Event] = None) -> None:
        """Try the "none" method; mostly a way to learn the allowed methods."""
        m = self._request_header(username, "none")
        self._start("none", username, event, m.asbytes())

    def auth_password(self, username: str, password: Union[str, bytes],
                      event: Optional[threading.Event] = None) -> None:
        m = self._request_header(username, "password")
        m.add_boolean(False)
        m.add_string(password)
        self._start("password", username, event, m.asbytes())

    def auth_publickey(self, username: str, key: Any,
                       event: Optional[threading.Event] = None) -> None:
        """Sign a publickey request with ``key`` (a PKey or agent key) and send it."""
        session_id = getattr(self.transport, "session_id", None)
        if not session_id:
            raise _auth_error(SSHException,
                              "auth: no session id yet (key exchange has not completed)")
        blob_obj = getattr(key, "public_blob", None)
        if blob_obj is not None:  # a key loaded together with its certificate
            key_type, blob = blob_obj.key_type, bytes(blob_obj.key_blob)
        else:
            key_type, blob = key.get_name(), key.asbytes()
        algorithm = self._pubkey_algorithm(key_type)
        data = _signed_data(session_id, username, CONNECTION_SERVICE, algorithm, blob)
        try:
            sig = key.sign_ssh_data(data, _base_algorithm(algorithm))
        except SSHException:
            raise
        except Exception as e:
            raise _auth_error(SSHException,
                              f"auth: signing with the {key_type} key failed: "
                              f"{type(e).__name__}: {e}") from e
        sig_bytes = sig.asbytes() if hasattr(sig, "asbytes") else bytes(sig)
        m = self._request_header(username, "publickey")
        m.add_boolean(True)
        m.add_string(algorithm)
        m.add_string(blob)
        m.add_string(sig_bytes)
        self._log(DEBUG, f"auth: trying publickey {algorithm} for {username!r}")
        self._start("publickey", username, event, m.asbytes())

    def auth_interactive(self, username: str, handler: InteractiveHandler,
                         event: Optional[threading.Event] = None, submethods: str = "") -> None:
        """keyboard-interactive: ``handler`` answers each INFO_REQUEST (in the reader thread)."""
        m = self._request_header(username, "keyboard-interactive")
        m.add_string("")  # language tag, deprecated by RFC 4256
        m.add_string(submethods)
        self._start("keyboard-interactive", username, event, m.asbytes(), handler)

    def _pubkey_algorithm(self, key_type: str) -> str:
        """Pick the signature algorithm for a key (RFC 8332 for RSA)."""
        if key_type not in _RSA_KEY_TYPES:
            return key_type
        disabled = ()
        dis = getattr(self.transport, "disabled_algorithms", None)
        if isinstance(dis, dict):
            disabled = tuple(dis.get("pubkeys", ()) or ())
        candidates = [a for a in _RSA_SIG_ALGS if a not in disabled]
        if not candidates:
            raise _auth_error(AuthenticationException,
                              "auth: every RSA signature algorithm is disabled")
        exts = getattr(self.transport, "server_extensions", None) or {}
        server_algs = _name_list(exts.get("server-sig-algs"))
        if server_algs is None:
            # No ext-info: assume a modern server (SHA-1 is refused by OpenSSH >= 8.8); the
            # user can still force ssh-rsa by disabling both SHA-2 names.
            choice = candidates[0]
        else:
            agreed = [a for a in candidates if a in server_algs]
            # Nothing in common: try our best anyway and let the server refuse it.
            choice = agreed[0] if agreed else candidates[0]
        if key_type.endswith(_CERT_SUFFIX):
            choice += _CERT_SUFFIX
        return choice

    # -- client: waiting ---------------------------------------------------------------
    def _transport_active(self) -> bool:
        is_active = getattr(self.transport, "is_active", None)
        return bool(is_active()) if is_active is not None else True

    def _death_error(self) -> SSHException:
        get_exc = getattr(self.transport, "get_exception", None)
        return self._closed_error(get_exc() if get_exc is not None else None)

    @staticmethod
    def _closed_error(exc: Optional[BaseException]) -> SSHException:
        if isinstance(exc, SSHException):
            return exc
        if exc is not None:
            err = _auth_error(SSHException,
                              f"auth: connection lost during authentication: {exc!r}")
            err.__cause__ = exc
            return err
        return _auth_error(SSHException, "auth: connection closed during authentication")

    def wait_for_response(self, event: threading.Event,
                          timeout: Optional[float] = None) -> List[str]:
        """Block until the attempt behind ``event`` finishes (bounded by ``timeout``).

        Returns ``[]`` on success, or the methods still needed after a partial success;
        raises ``BadAuthenticationType`` if the server doesn't take the method,
        ``AuthenticationException`` on failure or timeout, or the transport's exception if
        the connection dies.
        """
        if timeout is None:
            timeout = getattr(self.transport, "auth_timeout", None) or DEFAULT_AUTH_TIMEOUT
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if event.wait(max(0.0, min(_POLL_INTERVAL, left))):
                break
            if not self._transport_active():
                if event.is_set():
                    break
                raise self._death_error()
            if time.monotonic() >= deadline:
                raise _auth_error(AuthenticationException, "Authentication timeout.")
        with self._lock:
            attempt = next((a for a in reversed(self._recent) if a.event is event), None)
        if attempt is None or not attempt.done:
            if self.authenticated:
                return []
            if not self._transport_active():
                raise self._death_error()
            raise _auth_error(AuthenticationException, "Authentication failed.")
        if attempt.error is not None:
            raise attempt.error
        return list(attempt.result or [])

    def _transport_closed(self, exc: Optional[BaseException]) -> None:
        """Called by the transport when it ends: a waiting caller wakes with the reason."""
        self._fail_attempt(self._closed_error(exc))

    def abort(self) -> None:
        """Wake a waiting caller; its attempt fails."""
        self._fail_attempt(_auth_error(AuthenticationException, "auth: aborted"))

    def _finish(self, attempt: Optional[_Attempt], result: Optional[List[str]] = None,
                error: Optional[BaseException] = None) -> None:
        if attempt is None:
            return
        with self._lock:
            if attempt.done:
                return
            attempt.result = result
            attempt.error = error
            attempt.done = True
        attempt.event.set()

    def _fail_attempt(self, error: BaseException) -> None:
        if self._server_mode:
            return
        with self._lock:
            attempt = self._attempt
        self._finish(attempt, error=error)

    # -- client: replies ---------------------------------------------------------------
    def _parse_service_accept(self, m: Message) -> None:
        service = m.get_text()
        if service != USERAUTH_SERVICE:
            raise _auth_error(SSHException,
                              f"auth: server accepted service {service!r}, "
                              f"expected {USERAUTH_SERVICE!r}")
        with self._lock:
            if not self._service_requested:
                raise _auth_error(SSHException, "auth: unsolicited service-accept")
            self._service_accepted = True
            attempt = self._attempt
            if attempt is None or attempt.sent or attempt.done:
                return
            attempt.sent = True
        self._log(DEBUG, "auth: ssh-userauth accepted")
        self._send(Message(attempt.payload))

    def _parse_banner(self, m: Message) -> None:
        text = m.get_string()
        m.get_string()  # language tag
        with self._lock:
            joined = (self.banner or b"") + text
            self.banner = joined[:_MAX_BANNER]
        self._log(DEBUG, "auth: banner received")

    def _parse_failure(self, m: Message) -> None:
        allowed = m.get_list()
        partial = m.get_boolean()
        with self._lock:
            attempt = self._attempt
        if attempt is None or attempt.done:
            self._log(DEBUG, "auth: ignoring a userauth-failure for no pending attempt")
            return
        if partial:
            self._log(INFO, f"auth: {attempt.method} partially successful; "
                            f"server now wants {allowed}")
            self._finish(attempt, result=allowed)
        elif attempt.method not in allowed:
            self._log(INFO, f"auth: method {attempt.method!r} not allowed; "
                            f"server takes {allowed}")
            self._finish(attempt, error=_auth_error(BadAuthenticationType,
                                                    "Bad authentication type", allowed))
        else:
            self._log(INFO, f"auth: {attempt.method} failed for {attempt.username!r}")
            self._finish(attempt, error=_auth_error(AuthenticationException,
                                                    "Authentication failed."))

    def _parse_success(self, m: Message) -> None:
        with self._lock:
            attempt = self._attempt
            if attempt is None or not self._service_accepted:
                raise _auth_error(SSHException, "auth: userauth-success with no request sent")
            self.authenticated = True
            self.username = attempt.username
        self._log(INFO, f"auth: {attempt.method} succeeded for {attempt.username!r}")
        # Before waking the caller, so the transport is fully "authenticated" when it returns.
        self.transport._auth_succeeded(attempt.username)
        self._finish(attempt, result=[])

    def _parse_60(self, m: Message) -> None:
        with self._lock:
            attempt = self._attempt
        method = attempt.method if attempt is not None and not attempt.done else None
        if method == "keyboard-interactive":
            self._parse_info_request(m, attempt)
        elif method == "password":
            prompt = m.get_text()
            self._finish(attempt, error=_auth_error(
                AuthenticationException,
                f"auth: the server requires a password change, which is not supported "
                f"(server said: {prompt!r})"))
        else:
            raise _auth_error(SSHException,
                              f"auth: unexpected userauth message 60 (pending method: {method})")

    def _parse_info_request(self, m: Message, attempt: _Attempt) -> None:
        title = m.get_text()
        instructions = m.get_text()
        m.get_string()  # language tag
        count = m.get_int()
        # Each prompt needs at least a length and an echo flag: don't loop on a huge count.
        if count * 5 > len(m.get_remainder()):
            raise _auth_error(SSHException,
                              f"auth: info-request claims {count} prompts but is too short")
        prompts = [(m.get_text(), m.get_boolean()) for _ in range(count)]
        try:
            responses = attempt.handler(title, instructions, prompts)
        except Exception as e:
            err = _auth_error(AuthenticationException,
                              f"auth: keyboard-interactive handler raised "
                              f"{type(e).__name__}: {e}")
            err.__cause__ = e
            self._finish(attempt, error=err)
            return
        if (not isinstance(responses, (list, tuple)) or len(responses) != count
                or not all(isinstance(r, (str, bytes)) for r in responses)):
            self._finish(attempt, error=_auth_error(
                AuthenticationException,
                f"auth: keyboard-interactive handler must return {count} str/bytes "
                f"responses, got {responses!r:.80}"))
            return
        out = Message()
        out.add_byte(bytes((MSG_USERAUTH_INFO_RESPONSE,)))
        out.add_int(count)
        for r in responses:
            out.add_string(r)
        self._send(out)

    # -- server ------------------------------------------------------------------------
    def _server_call(self, name: str, default: Any, *args: Any) -> Any:
        """Ask the ServerInterface; a callback that raises counts as a refusal."""
        func = getattr(self.transport.server_object, name, None)
        if func is None:
            return default
        try:
            return func(*args)
        except Exception as e:
            self._log(ERROR, f"auth: server callback {name} raised {type(e).__name__}: {e}; "
                             "treating it as a refusal")
            return default

    def _parse_service_request(self, m: Message) -> None:
        service = m.get_text()
        if service != USERAUTH_SERVICE:
            raise self._fatal(DISCONNECT_SERVICE_NOT_AVAILABLE,
                              f"service {service!r} not available")
        if self.transport.server_object is None:
            raise self._fatal(DISCONNECT_SERVICE_NOT_AVAILABLE,
                              "no server object to authenticate users")
        self._service_granted = True
        out = Message()
        out.add_byte(bytes((MSG_SERVICE_ACCEPT,)))
        out.add_string(USERAUTH_SERVICE)
        self._send(out)

    def _maybe_send_banner(self) -> None:
        if self._banner_sent:
            return
        self._banner_sent = True
        banner = self._server_call("get_banner", (None, None))
        lang = ""
        if isinstance(banner, tuple):
            banner, lang = (list(banner) + [None, None])[:2]
        if not banner:
            return
        out = Message()
        out.add_byte(bytes((MSG_USERAUTH_BANNER,)))
        out.add_string(banner)
        out.add_string(lang or "")
        self._send(out)

    def _allowed_for(self, username: str) -> List[str]:
        return _allowed_list(self._server_call("get_allowed_auths", "", username))

    def _send_failure(self, username: str, partial: bool) -> None:
        out = Message()
        out.add_byte(bytes((MSG_USERAUTH_FAILURE,)))
        out.add_string(",".join(self._allowed_for(username)))
        out.add_boolean(partial)
        self._send(out)

    def _apply_result(self, username: str, method: str, result: Any) -> None:
        """Answer a finished request with SUCCESS or FAILURE (or ask the next question)."""
        if _is_query(result):
            self._send_info_request(username, result)
            return
        self._query = None
        if result == AUTH_SUCCESSFUL:
            with self._lock:
                self.authenticated = True
                self.username = username
                self.auth_method = method
            self._log(INFO, f"auth: {method} succeeded for {username!r}")
            out = Message()
            out.add_byte(bytes((MSG_USERAUTH_SUCCESS,)))
            self._send(out)
            # After SUCCESS is queued: delayed compression starts with the next packet.
            self.transport._auth_succeeded(username)
            return
        if result == AUTH_PARTIALLY_SUCCESSFUL:
            self._partial_done = True
            self._log(INFO, f"auth: {method} partially successful for {username!r}")
            self._send_failure(username, True)
            return
        self._failures += 1
        self._log(INFO, f"auth: {method} failed for {username!r} "
                        f"({self._failures}/{self.max_auth_failures})")
        self._send_failure(username, False)
        if self._failures >= self.max_auth_failures:
            raise self._fatal(DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE,
                              f"too many authentication failures for {username!r} "
                              f"({self._failures})")

    def _send_info_request(self, username: str, query: Any) -> None:
        prompts = list(getattr(query, "prompts", []) or [])
        out = Message()
        out.add_byte(bytes((MSG_USERAUTH_INFO_REQUEST,)))
        out.add_string(getattr(query, "name", "") or "")
        out.add_string(getattr(query, "instructions", "") or "")
        out.add_string("")  # language tag
        out.add_int(len(prompts))
        for prompt, echo in prompts:
            out.add_string(prompt)
            out.add_boolean(bool(echo))
        self._query = query
        self._query_user = username
        self._send(out)

    def _parse_userauth_request(self, m: Message) -> None:
        raw_user = m.get_string()
        service = m.get_text()
        method = m.get_text()
        if self.authenticated:
            return  # RFC 4252 section 5.1: requests after success are silently ignored
        if not self._service_granted:
            raise self._fatal(DISCONNECT_PROTOCOL_ERROR,
                              "userauth request before the ssh-userauth service was accepted")
        if service != CONNECTION_SERVICE:
            raise self._fatal(DISCONNECT_SERVICE_NOT_AVAILABLE,
                              f"service {service!r} not available")
        username = raw_user.decode("utf-8", "replace")
        if self._auth_user is not None and raw_user != self._auth_user:
            # RFC 4252 section 5: flush accumulated state on a change of user. A partial
            # success lives in the server object, which we can't flush: disconnect then.
            if self._partial_done:
                raise self._fatal(DISCONNECT_PROTOCOL_ERROR,
                                  "change of username after a partial success is not allowed")
            self._log(DEBUG, f"auth: username changed to {username!r}; state reset")
        self._auth_user = raw_user
        if self._query is not None:
            # A new request abandons a keyboard-interactive exchange (RFC 4256 section 3.4);
            # count it, or a client could restart it forever for free.
            self._query = None
            self._failures += 1
        self._maybe_send_banner()
        self.auth_method = method
        if method == "none":
            result = self._server_call("check_auth_none", AUTH_FAILED, username)
        elif method == "password":
            result = self._password(m, username)
        elif method == "publickey":
            result = self._publickey(m, raw_user, username)
            if result is None:
                return  # PK_OK sent
        elif method == "keyboard-interactive":
            m.get_string()  # language tag
            submethods = m.get_text()
            result = self._server_call("check_auth_interactive", AUTH_FAILED,
                                       username, submethods)
        else:
            self._log(DEBUG, f"auth: unsupported method {method!r} from {username!r}")
            result = AUTH_FAILED
        self._apply_result(username, method, result)

    def _password(self, m: Message, username: str) -> int:
        change = m.get_boolean()
        raw = m.get_binary()
        if change:
            m.get_binary()  # the new password
            self._log(INFO, "auth: password change requests are not supported")
            return AUTH_FAILED
        try:
            password: Union[str, bytes] = raw.decode("utf-8")
        except UnicodeDecodeError:
            password = raw
        return self._server_call("check_auth_password", AUTH_FAILED, username, password)

    def _publickey(self, m: Message, raw_user: bytes, username: str) -> Optional[int]:
        """Check a publickey request; None means a PK_OK was sent for a query."""
        has_sig = m.get_boolean()
        algorithm = m.get_text()
        blob = m.get_binary()
        sig = m.get_binary() if has_sig else None
        try:
            key = _key_from_blob(blob)
        except Exception as e:
            self._log(INFO, f"auth: unusable public key from {username!r} "
                            f"({type(e).__name__}: {e})")
            return AUTH_FAILED
        # A certificate blob gives the certified key with the certificate as its public_blob.
        key_type = key.public_blob.key_type if key.public_blob is not None else key.get_name()
        if algorithm not in _algorithms_for_key_type(key_type):
            self._log(INFO, f"auth: algorithm {algorithm!r} does not fit a "
                            f"{key_type} key")
            return AUTH_FAILED
        preferred = getattr(self.transport, "preferred_pubkeys", None)
        if isinstance(preferred, (list, tuple)) and _base_algorithm(algorithm) not in preferred:
            self._log(INFO, f"auth: public key algorithm {algorithm!r} is not accepted")
            return AUTH_FAILED
        if sig is None:
            result = self._server_call("check_auth_publickey", AUTH_FAILED, username, key)
            if result in (AUTH_SUCCESSFUL, AUTH_PARTIALLY_SUCCESSFUL):
                out = Message()
                out.add_byte(bytes((MSG_USERAUTH_PK_OK,)))
                out.add_string(algorithm)
                out.add_string(blob)
                self._send(out)
                return None
            return AUTH_FAILED
        if not self._signature_ok(key, algorithm, blob, raw_user, sig):
            self._log(INFO, f"auth: bad {algorithm} signature from {username!r}")
            return AUTH_FAILED
        return self._server_call("check_auth_publickey", AUTH_FAILED, username, key)

    def _signature_ok(self, key: Any, algorithm: str, blob: bytes, raw_user: bytes,
                      sig: bytes) -> bool:
        session_id = getattr(self.transport, "session_id", None)
        if not session_id:
            return False
        try:
            # RFC 8332: the signature must use the algorithm the request named.
            if Message(sig).get_text() != _base_algorithm(algorithm):
                return False
            data = _signed_data(session_id, raw_user, CONNECTION_SERVICE, algorithm, blob)
            return bool(key.verify_ssh_sig(data, Message(sig)))
        except Exception as e:
            self._log(DEBUG, f"auth: signature check error {type(e).__name__}: {e}")
            return False

    def _parse_info_response(self, m: Message) -> None:
        if self.authenticated:
            return
        query = self._query
        if query is None:
            raise self._fatal(DISCONNECT_PROTOCOL_ERROR,
                              "info-response without a pending keyboard-interactive request")
        count = m.get_int()
        expected = len(getattr(query, "prompts", []) or [])
        if count != expected:
            raise self._fatal(DISCONNECT_PROTOCOL_ERROR,
                              f"info-response has {count} answers for {expected} prompts")
        responses = [m.get_text() for _ in range(count)]
        self._query = None
        username = self._query_user or ""
        result = self._server_call("check_auth_interactive_response", AUTH_FAILED, responses)
        self._apply_result(username, "keyboard-interactive", result)

