"""Pluggable client authentication (the API Paramiko added in 3.2).

An :class:`AuthStrategy` yields :class:`AuthSource` objects from :meth:`AuthStrategy.get_sources`;
:meth:`AuthStrategy.authenticate` runs them one after another against a transport until the
server reports full success. Every attempt is recorded as a :class:`SourceResult` (the source and
either the methods the server listed or the exception raised) in an :class:`AuthResult`; when no
source got the session authenticated, :class:`AuthFailure` carries that record.

Differences from upstream, both deliberate:

* a *partial* success (the server accepted the method but wants another one, e.g. key plus
  password) is recorded and the next source is tried, instead of being taken as the end;
* once the transport is dead, no further source is tried (each would only fail the same way).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, NamedTuple, Optional, Union

from paramiko.pkey import PKey
from paramiko.ssh_exception import AuthenticationException
from paramiko.util import get_logger

__all__ = [
    "AuthFailure",
    "AuthResult",
    "AuthSource",
    "AuthStrategy",
    "InMemoryPrivateKey",
    "NoneAuth",
    "OnDiskPrivateKey",
    "Password",
    "PrivateKey",
    "SourceResult",
]


class AuthSource:
    """One way of authenticating as ``username``; subclasses implement :meth:`authenticate`."""

    def __init__(self, username: str) -> None:
        self.username = username

    def _repr(self, **fields: Any) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        return f"{type(self).__name__}({shown})"

    def __repr__(self) -> str:
        return self._repr(user=self.username)

    def authenticate(self, transport: Any) -> List[str]:
        """Try this source on ``transport``; return what the transport's ``auth_*`` returned."""
        raise NotImplementedError(f"{type(self).__name__} does not implement authenticate()")


class NoneAuth(AuthSource):
    """The ``none`` method: succeeds only on servers that ask for nothing."""

    def authenticate(self, transport: Any) -> List[str]:
        return transport.auth_none(self.username)


class Password(AuthSource):
    """Password authentication; the password comes from ``password_getter()`` when needed.

    The getter is called at most once per attempt and only when this source is reached, so a
    strategy can list a prompting getter last without prompting when a key already worked.
    The password never appears in ``repr()``.
    """

    def __init__(self, username: str, password_getter: Callable[[], str]) -> None:
        super().__init__(username=username)
        if not callable(password_getter):
            raise TypeError("password_getter must be a callable returning the password")
        self.password_getter = password_getter

    def __repr__(self) -> str:
        return self._repr(user=self.username)

    def authenticate(self, transport: Any) -> List[str]:
        secret = self.password_getter()
        return transport.auth_password(self.username, secret)


class PrivateKey(AuthSource):
    """Base of the key sources: subclasses set ``self.pkey`` (a PKey or an agent key)."""

    pkey: Any = None

    def authenticate(self, transport: Any) -> List[str]:
        if self.pkey is None:
            raise AuthenticationException(f"{self!r} holds no key")
        return transport.auth_publickey(self.username, self.pkey)


def _describe_key(pkey: Any) -> str:
    if pkey is None:
        return "None"
    try:
        text = f"{pkey.get_name()} {pkey.fingerprint}"
    except Exception:
        return repr(pkey)
    blob = getattr(pkey, "public_blob", None)
    if blob is not None and str(getattr(blob, "key_type", "")).endswith("-cert-v01@openssh.com"):
        text += " [cert]"
    return text


class InMemoryPrivateKey(PrivateKey):
    """A key object the caller already holds (loaded, generated, or from an agent)."""

    def __init__(self, username: str, pkey: Union[PKey, Any]) -> None:
        super().__init__(username=username)
        self.pkey = pkey

    def __repr__(self) -> str:
        return self._repr(user=self.username, pkey=_describe_key(self.pkey))


class OnDiskPrivateKey(PrivateKey):
    """A key loaded from ``path``; ``source`` says where that path came from.

    ``source`` is one of ``"ssh-config"`` (an IdentityFile), ``"python-config"`` (given in
    code) or ``"implicit-home"`` (one of the default ``~/.ssh/id_*`` files).
    """

    SOURCES = ("ssh-config", "python-config", "implicit-home")

    def __init__(self, username: str, source: str, path: Any, pkey: Union[PKey, Any]) -> None:
        super().__init__(username=username)
        if source not in self.SOURCES:
            raise ValueError(f"source must be one of {', '.join(self.SOURCES)}; got {source!r}")
        self.source = source
        self.path = path
        self.pkey = pkey

    def __repr__(self) -> str:
        return self._repr(user=self.username, source=self.source, path=str(self.path),
                          pkey=_describe_key(self.pkey))


class SourceResult(NamedTuple):
    """One attempt: the source and what came of it (allowed-method list or exception)."""

    source: AuthSource
    result: Union[List[str], BaseException]


class AuthResult(list):
    """The list of :class:`SourceResult` of one :meth:`AuthStrategy.authenticate` run."""

    def __init__(self, strategy: Optional[AuthStrategy] = None, *args: Any, **kwargs: Any) -> None:
        self.strategy = strategy
        super().__init__(*args, **kwargs)

    def __str__(self) -> str:
        if not self:
            return "(no authentication source was tried)"
        return "\n".join(f"{sr.source!r} -> {_describe_result(sr.result)}" for sr in self)

    def __repr__(self) -> str:
        return f"AuthResult(strategy={self.strategy!r}, {list.__repr__(self)})"


def _describe_result(result: Any) -> str:
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    if not result:
        return "success"
    return f"partial success; server now wants {', '.join(map(str, result))}"


class AuthFailure(AuthenticationException):
    """No source authenticated the session; ``result`` (an :class:`AuthResult`) says why."""

    def __init__(self, result: AuthResult) -> None:
        AuthenticationException.__init__(self, result)
        self.result = result

    def __str__(self) -> str:
        head = "Authentication failed"
        peer = getattr(self, "peer", None)
        if peer:
            head += f" for {peer}"
        return f"{head}; sources tried:\n{self.result}"


class AuthStrategy:
    """Decides which sources to try, in order; subclass and implement :meth:`get_sources`.

    ``ssh_config`` is whatever configuration the subclass wants to consult (e.g. an
    ``SSHConfigDict``); the base class only stores it.
    """

    def __init__(self, ssh_config: Any = None) -> None:
        self.ssh_config = ssh_config
        self.log = get_logger(__name__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def get_sources(self) -> Iterator[AuthSource]:
        """Yield the :class:`AuthSource` objects to try, best first (lazily is fine)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_sources()")

    def authenticate(self, transport: Any) -> AuthResult:
        """Try each source until the session is authenticated.

        Returns the :class:`AuthResult` on success; raises :class:`AuthFailure` otherwise.
        """
        overall = AuthResult(strategy=self)
        succeeded = False
        for source in self.get_sources():
            self.log.debug(f"auth strategy: trying {source!r}")
            try:
                outcome: Union[List[str], BaseException] = list(source.authenticate(transport)
                                                                 or [])
            except Exception as e:
                outcome = e
                self.log.info(f"auth strategy: {source!r} failed: {type(e).__name__}: {e}")
            overall.append(SourceResult(source, outcome))
            if not isinstance(outcome, BaseException):
                if not outcome or _authenticated(transport):
                    succeeded = True
                    break
                self.log.info(f"auth strategy: {source!r} partially succeeded; "
                              f"server now wants {outcome}")
            if not _alive(transport):
                break
        if not succeeded:
            raise AuthFailure(result=overall)
        return overall


def _authenticated(transport: Any) -> bool:
    check = getattr(transport, "is_authenticated", None)
    try:
        return bool(check()) if check is not None else False
    except Exception:
        return False


def _alive(transport: Any) -> bool:
    check = getattr(transport, "is_active", None)
    try:
        return bool(check()) if check is not None else True
    except Exception:
        return True
