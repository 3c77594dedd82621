"""``SSHClient``: connect, check the host key, authenticate, run commands (Paramiko's API).

Beyond upstream's behaviour this client:

* bounds every step: the TCP connect (``timeout``, else ``DEFAULT_CONNECT_TIMEOUT``), the
  negotiation (``start_client`` raises on timeout instead of returning) and authentication;
* closes the transport, and so its thread and socket, whenever ``connect`` fails;
* names the host, the phase and, for authentication failures, every method tried;
* prefers *all* host key types already on record for the host (not just one), checks
  ``@revoked`` keys and validates host certificates against ``@cert-authority`` keys;
* tells a key-plus-password server (partial success) the password instead of stopping.
"""

from __future__ import annotations

import copy
import errno
import getpass
import inspect
import os
import socket
import sys
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from paramiko.channel import Channel, ChannelFile, ChannelStderrFile, ChannelStdinFile
from paramiko.common import DEBUG, INFO
from paramiko.pkey import CERT_SUFFIX, PKey
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    BadHostKeyException,
    NoValidConnectionsError,
    PasswordRequiredException,
    SSHException,
)
from paramiko.transport import Transport
from paramiko.util import ClosingContextManager, get_logger

if TYPE_CHECKING:
    from paramiko.route import Route

__all__ = [
    "AutoAddPolicy",
    "MissingHostKeyPolicy",
    "RejectPolicy",
    "RevokedHostKeyException",
    "SSHClient",
    "WarningPolicy",
]

SSH_PORT = 22
#: Used for the TCP connect when ``connect(timeout=None)``: never wait on the kernel alone.
DEFAULT_CONNECT_TIMEOUT = 60.0
# connect() failures that mean "nothing listens there / no route": try the next address.
_UNREACHABLE = frozenset(
    e for e in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH,
                getattr(errno, "EADDRNOTAVAIL", None), getattr(errno, "EAFNOSUPPORT", None))
    if e is not None)
_SECOND_FACTORS = ("password", "keyboard-interactive")
_DEFAULT_KEY_NAMES = ("rsa", "ecdsa", "ed25519")


def _host_key_name(hostname: str, port: int) -> str:
    """The known_hosts name OpenSSH uses: ``host`` on port 22, else ``[host]:port``."""
    return hostname if port == SSH_PORT else f"[{hostname}]:{port}"


def _peer_text(hostname: str, port: int) -> str:
    """``host:port`` for messages (``[v6addr]:port`` for IPv6 literals)."""
    return f"[{hostname}]:{port}" if ":" in hostname else f"{hostname}:{port}"


def _algorithms_for_key_type(key_type: str) -> List[str]:
    """Host key algorithms that serve a key of ``key_type`` (RSA keys sign with SHA-2)."""
    if key_type == "ssh-rsa":
        return ["rsa-sha2-512", "rsa-sha2-256"]
    return [key_type]


def _plain_key(key: PKey) -> PKey:
    """``key`` without an attached certificate (what a known_hosts line records)."""
    if getattr(key, "public_blob", None) is None:
        return key
    try:
        return type(key)(data=key.asbytes())
    except Exception:
        return key


def _mark(exc: BaseException, peer: str, phase: str) -> BaseException:
    """Fill in ``peer``/``phase`` where the raiser did not; returns ``exc``."""
    try:
        if getattr(exc, "peer", None) is None:
            exc.peer = peer  # type: ignore[attr-defined]
        if getattr(exc, "phase", None) is None:
            exc.phase = phase  # type: ignore[attr-defined]
    except Exception:
        pass
    return exc


class RevokedHostKeyException(BadHostKeyException):
    """The server's host key is listed as ``@revoked`` in a known_hosts file."""

    def __init__(self, hostname: str, key: PKey) -> None:
        BadHostKeyException.__init__(self, hostname, key, key)

    def __str__(self) -> str:
        return (f"Host key for server '{self.hostname}' is marked as revoked: "
                f"{self.key.get_name()} {self.key.fingerprint}")


# ---------------------------------------------------------------------------------------------
# missing host key policies
# ---------------------------------------------------------------------------------------------


class MissingHostKeyPolicy:
    """What to do with a server whose host key is not on record.

    ``missing_host_key`` returns to accept the key, or raises to refuse the connection.
    """

    def missing_host_key(self, client: SSHClient, hostname: str, key: PKey) -> None:
        pass


class AutoAddPolicy(MissingHostKeyPolicy):
    """Accept and remember the key; saved at once if ``load_host_keys`` named a file."""

    def missing_host_key(self, client: SSHClient, hostname: str, key: PKey) -> None:
        client._host_keys.add(hostname, key.get_name(), key)
        if client._host_keys_filename is not None:
            client.save_host_keys(client._host_keys_filename)
        client._log(DEBUG, f"Adding {key.get_name()} host key for {hostname}: "
                           f"{key.fingerprint}")


class RejectPolicy(MissingHostKeyPolicy):
    """Refuse unknown hosts (the default)."""

    def missing_host_key(self, client: SSHClient, hostname: str, key: PKey) -> None:
        client._log(DEBUG, f"Rejecting {key.get_name()} host key for {hostname}: "
                           f"{key.fingerprint}")
        err = SSHException(f"Server {hostname!r} not found in known_hosts "
                           f"({key.get_name()} key {key.fingerprint})")
        err.phase, err.peer = "hostkey", hostname
        raise err


class WarningPolicy(MissingHostKeyPolicy):
    """Accept the key for this connection only, with a Python warning."""

    def missing_host_key(self, client: SSHClient, hostname: str, key: PKey) -> None:
        warnings.warn(f"Unknown {key.get_name()} host key for {hostname}: {key.fingerprint}",
                      stacklevel=2)


# ---------------------------------------------------------------------------------------------
# the client
# ---------------------------------------------------------------------------------------------


class _AuthLog:
    """What the legacy authentication tried, for the failure message."""

    def __init__(self) -> None:
        self.methods: Dict[str, int] = {}
        self.unloadable: List[str] = []

    def note(self, method: str) -> None:
        self.methods[method] = self.methods.get(method, 0) + 1

    def summary(self) -> str:
        parts = []
        for method, n in self.methods.items():
            if method == "publickey":
                parts.append(f"publickey ({n} key{'s' if n != 1 else ''})")
            elif n > 1:
                parts.append(f"{method} (x{n})")
            else:
                parts.append(method)
        text = ", ".join(parts) if parts else "nothing"
        if self.unloadable:
            text += "; unusable key files: " + "; ".join(self.unloadable)
        return text


class SSHClient(ClosingContextManager):
    """A high-level SSH client session (one transport), usable as a context manager."""

    def __init__(self) -> None:
        from paramiko.hostkeys import HostKeys

        self._system_host_keys = HostKeys()
        self._host_keys = HostKeys()
        self._host_keys_filename: Optional[str] = None
        self._log_channel: Optional[str] = None
        self._logger = get_logger("paramiko.client")
        self._policy: MissingHostKeyPolicy = RejectPolicy()
        self._transport: Any = None
        self._agent: Any = None
        # Gateways opened by connect_via_config / paramiko.route.connect_route (closed after
        # the target in close()).
        self._jump_chain: Any = None

    # -- host keys --------------------------------------------------------------------------
    def load_system_host_keys(self, filename: Optional[str] = None) -> None:
        """Load read-only known hosts (default ``~/.ssh/known_hosts``, silently if missing)."""
        if filename is None:
            filename = os.path.expanduser("~/.ssh/known_hosts")
            try:
                self._system_host_keys.load(filename)
            except OSError:
                pass
            return
        self._system_host_keys.load(filename)

    def load_host_keys(self, filename: str) -> None:
        """Load known hosts that new keys (``AutoAddPolicy``) are saved back to."""
        self._host_keys_filename = filename
        self._host_keys.load(filename)

    def save_host_keys(self, filename: str) -> None:
        """Write the client's own host keys (not the system ones) to ``filename``.

        The file given to :meth:`load_host_keys` is re-read first, so entries another
        process added meanwhile are kept.
        """
        if self._host_keys_filename is not None:
            self.load_host_keys(self._host_keys_filename)
        self._host_keys.save(filename)

    def get_host_keys(self) -> Any:
        """The client's own ``HostKeys`` (mutable)."""
        return self._host_keys

    def set_log_channel(self, name: str) -> None:
        self._log_channel = name
        self._logger = get_logger(name)
        if self._transport is not None:
            self._transport.set_log_channel(name)

    def set_missing_host_key_policy(self, policy: Union[MissingHostKeyPolicy, type]) -> None:
        """Set the unknown-host policy; a class is instantiated."""
        if inspect.isclass(policy):
            policy = policy()
        if not callable(getattr(policy, "missing_host_key", None)):
            raise TypeError("policy must provide missing_host_key(client, hostname, key)")
        self._policy = policy  # type: ignore[assignment]

    def _log(self, level: int, msg: str) -> None:
        self._logger.log(level, msg)

    # -- connecting -------------------------------------------------------------------------
    def connect(
        self,
        hostname: str,
        port: int = SSH_PORT,
        username: Optional[str] = None,
        password: Optional[str] = None,
        pkey: Optional[PKey] = None,
        key_filename: Union[None, str, os.PathLike, Sequence[Union[str, os.PathLike]]] = None,
        timeout: Optional[float] = None,
        allow_agent: bool = True,
        look_for_keys: bool = True,
        compress: bool = False,
        sock: Any = None,
        banner_timeout: Optional[float] = None,
        auth_timeout: Optional[float] = None,
        channel_timeout: Optional[float] = None,
        passphrase: Optional[str] = None,
        disabled_algorithms: Optional[Dict[str, Sequence[str]]] = None,
        transport_factory: Optional[Callable[..., Any]] = None,
        auth_strategy: Any = None,
    ) -> Any:
        """Connect, verify the host key and authenticate.

        Returns ``None``, or the ``AuthResult`` when ``auth_strategy`` is given. Raises
        ``NoValidConnectionsError`` when every address refused or was unreachable, the
        socket error (with ``peer``/``phase`` set) for other TCP failures, ``SSHException``
        for negotiation failures and timeouts, ``BadHostKeyException`` for a changed or
        revoked host key, the policy's exception for an unknown host and an
        ``AuthenticationException`` naming the methods tried when authentication fails.
        On any failure the transport is closed.
        """
        port = int(port)
        peer = _peer_text(hostname, port)
        if self._transport is not None:
            self.close()
        opened_here = not sock
        if opened_here:
            sock = self._open_socket(hostname, port, timeout)
        if transport_factory is None:
            transport_factory = Transport
        try:
            t = transport_factory(sock, disabled_algorithms=disabled_algorithms)
        except BaseException:
            if opened_here:
                sock.close()
            raise
        self._transport = t
        try:
            return self._connect_on(t, hostname, port, peer, username, password, pkey,
                                    key_filename, timeout, allow_agent, look_for_keys,
                                    compress, banner_timeout, auth_timeout, channel_timeout,
                                    passphrase, auth_strategy)
        except BaseException:
            self._transport = None
            try:
                t.close()
            except Exception:
                pass
            if opened_here:
                try:
                    sock.close()
                except Exception:
                    pass
            raise

    def connect_via_config(
        self,
        hostname: str,
        config: Any = None,
        *,
        username: Optional[str] = None,
        port: Optional[int] = None,
        proxy_jump: Optional[str] = None,
        proxy_command: Optional[str] = None,
        **options: Any,
    ) -> Route:
        """Connect the way OpenSSH's ``ssh hostname`` would with ``config``.

        ``config`` is an ``SSHConfig``, a path to an ssh_config file, or None for
        ``~/.ssh/config`` when it is readable (otherwise no config at all). The host's stanza
        supplies HostName, Port, User, IdentityFile, IdentitiesOnly, CertificateFile,
        UserKnownHostsFile, StrictHostKeyChecking, HostKeyAlias, ConnectTimeout,
        ServerAliveInterval and its ProxyJump or ProxyCommand; every jump host is connected
        with its own stanza's settings (see :mod:`paramiko.route`).

        ``username``/``port`` apply to the target only (like ``ssh -l``/``-p``);
        ``proxy_jump`` (like ``-J``, ``"none"`` for direct) or ``proxy_command`` replace what
        the config says for the target. Other keyword options go to
        :func:`paramiko.route.connect_route`: ``timeout``, ``channel_timeout``,
        ``banner_timeout``, ``auth_timeout``, ``password``/``pkey``/``key_filename`` (target
        only), ``passphrase``, ``allow_agent``, ``look_for_keys``, ``disabled_algorithms``,
        ``missing_host_key_policy`` (else StrictHostKeyChecking decides, for this call only)
        and ``hop_connector`` (reuse gateway clients you hold).

        Existing known_hosts files named by the config are loaded as system host keys. Returns
        the resolved :class:`paramiko.route.Route`. Raises
        :class:`paramiko.route.RouteError` naming the failing hop and phase. :meth:`close`
        closes the target, then the gateways this call opened, last first.
        """
        from paramiko import route as _route

        cfg = _route.load_config(config)
        resolved = _route.resolve_route(hostname, cfg, user=username, port=port,
                                        proxy_jump=proxy_jump, proxy_command=proxy_command)
        _route.connect_route(resolved, client=self, **options)
        return resolved

    def _open_socket(self, hostname: str, port: int, timeout: Optional[float]) -> Any:
        """TCP-connect to the first address of ``hostname`` that accepts, TCP_NODELAY set."""
        limit = DEFAULT_CONNECT_TIMEOUT if timeout is None else timeout
        peer = _peer_text(hostname, port)
        try:
            infos = socket.getaddrinfo(hostname, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except socket.gaierror as e:
            err = socket.gaierror(e.errno, f"cannot resolve {hostname!r}: {e.strerror}")
            raise _mark(err, peer, "resolve") from e
        errors: Dict[Tuple, Exception] = {}
        for family, socktype, proto, _canon, addr in infos:
            try:
                s = socket.socket(family, socktype, proto)
            except OSError as e:
                errors[addr] = e
                continue
            try:
                s.settimeout(limit)
                s.connect(addr)
            except OSError as e:
                s.close()
                if e.errno in _UNREACHABLE:
                    self._log(DEBUG, f"connect to {addr[0]} port {addr[1]} failed: {e}")
                    errors[addr] = e
                    continue
                if isinstance(e, socket.timeout):
                    err: OSError = socket.timeout(
                        f"TCP connect to {hostname} ({addr[0]}) port {port} timed out "
                        f"after {limit:g}s")
                elif e.errno is not None:
                    err = type(e)(e.errno, f"TCP connect to {hostname} ({addr[0]}) port "
                                           f"{port} failed: {e.strerror}")
                else:
                    err = type(e)(f"TCP connect to {hostname} ({addr[0]}) port {port} "
                                  f"failed: {e}")
                raise _mark(err, peer, "tcp-connect") from e
            except BaseException:
                s.close()
                raise
            try:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            return s
        err2 = NoValidConnectionsError(errors)
        raise _mark(err2, peer, "tcp-connect")

    def _connect_on(self, t: Any, hostname: str, port: int, peer: str,
                    username: Optional[str], password: Optional[str], pkey: Optional[PKey],
                    key_filename: Any, timeout: Optional[float], allow_agent: bool,
                    look_for_keys: bool, compress: bool, banner_timeout: Optional[float],
                    auth_timeout: Optional[float], channel_timeout: Optional[float],
                    passphrase: Optional[str], auth_strategy: Any) -> Any:
        if hasattr(t, "peer_name"):
            t.peer_name = peer
        if self._log_channel is not None and hasattr(t, "set_log_channel"):
            t.set_log_channel(self._log_channel)
        t.use_compression(compress)
        if banner_timeout is not None:
            t.banner_timeout = banner_timeout
        if auth_timeout is not None:
            t.auth_timeout = auth_timeout
        if channel_timeout is not None:
            t.channel_timeout = channel_timeout

        name = _host_key_name(hostname, port)
        known = self._known_keys(name)
        cas = self._cert_authorities(name)
        self._prefer_host_key_types(t, known, bool(cas))

        try:
            t.start_client(timeout=timeout)
        except BaseException as e:
            _mark(e, peer, "kex")
            raise
        is_active = getattr(t, "is_active", None)
        if is_active is not None and not is_active():
            exc = t.get_exception() if hasattr(t, "get_exception") else None
            if exc is None:
                exc = SSHException(f"Negotiation with {peer} failed: connection closed")
            raise _mark(exc, peer, "kex")

        self._check_host_key(t, hostname, name, peer, known, cas)

        if username is None:
            username = getpass.getuser()
        if auth_strategy is not None:
            try:
                return auth_strategy.authenticate(transport=t)
            except BaseException as e:
                _mark(e, peer, "auth")
                raise
        if key_filename is None:
            key_filenames: List[str] = []
        elif isinstance(key_filename, (str, os.PathLike)):
            key_filenames = [os.fspath(key_filename)]
        else:
            key_filenames = [os.fspath(k) for k in key_filename]
        self._auth(t, username, password, pkey, key_filenames, allow_agent, look_for_keys,
                   passphrase, peer)
        return None

    # -- host key checking ------------------------------------------------------------------
    def _known_keys(self, name: str) -> Dict[str, List[PKey]]:
        """Key type -> keys on record for ``name`` (system file first, then the client's)."""
        out: Dict[str, List[PKey]] = {}
        for store in (self._system_host_keys, self._host_keys):
            found = store.lookup(name)
            if not found:
                continue
            for key_type, key in found.items():
                bucket = out.setdefault(key_type, [])
                if key not in bucket:
                    bucket.append(key)
        return out

    def _cert_authorities(self, name: str) -> List[PKey]:
        cas: List[PKey] = []
        for store in (self._system_host_keys, self._host_keys):
            finder = getattr(store, "cert_authorities", None)
            if finder is None:
                continue
            for ca in finder(name) or ():
                if ca not in cas:
                    cas.append(ca)
        return cas

    def _is_revoked(self, key: Any) -> bool:
        for store in (self._system_host_keys, self._host_keys):
            check = getattr(store, "is_revoked", None)
            if check is not None and check(key):
                return True
        return False

    def _prefer_host_key_types(self, t: Any, known: Dict[str, List[PKey]],
                               want_certs: bool) -> None:
        """Offer certificate algorithms (if CAs apply) and then the known key types first."""
        get_opts = getattr(t, "get_security_options", None)
        if get_opts is None or not (known or want_certs):
            return
        opts = get_opts()
        current = list(opts.key_types)
        rank = {alg: i for i, alg in enumerate(current)}
        front: List[str] = []
        if want_certs:
            from paramiko._core import hostkey as registry

            front += [a for a in getattr(registry, "CERT_HOSTKEY_ORDER", ()) if a not in front]
        known_algs: List[str] = []
        for key_type in known:
            known_algs += [a for a in _algorithms_for_key_type(key_type) if a not in known_algs]
        known_algs.sort(key=lambda a: rank.get(a, len(rank)))
        front += [a for a in known_algs if a not in front]
        wanted = front + [a for a in current if a not in front]
        try:
            opts.key_types = wanted
        except ValueError:
            # Algorithms this transport does not implement are left out, not forced.
            from paramiko._core import hostkey as registry

            usable = getattr(registry, "HOSTKEY_ALGORITHMS", {})
            try:
                opts.key_types = [a for a in wanted if a in usable or a in current]
            except ValueError as e:
                self._log(DEBUG, f"could not reorder host key algorithms: {e}")

    def _check_host_key(self, t: Any, hostname: str, name: str, peer: str,
                        known: Dict[str, List[PKey]], cas: List[PKey]) -> None:
        try:
            key = t.get_remote_server_key()
        except SSHException as e:
            # A transport that let a negotiation timeout pass silently (upstream's does).
            err = SSHException(f"Negotiation with {peer} did not complete: {e}")
            raise _mark(err, peer, "kex") from e
        blob = getattr(key, "public_blob", None)
        is_cert = blob is not None and str(getattr(blob, "key_type", "")).endswith(CERT_SUFFIX)
        plain = _plain_key(key)
        if self._is_revoked(plain):
            raise _mark(RevokedHostKeyException(name, plain), peer, "hostkey")
        if is_cert and cas:
            from paramiko._core.certificate import verify_host_certificate

            try:
                signer = verify_host_certificate(bytes(blob.key_blob), hostname, cas)
            except SSHException as e:
                _mark(e, peer, "hostkey")
                raise
            if isinstance(signer, PKey) and self._is_revoked(signer):
                raise _mark(RevokedHostKeyException(name, signer), peer, "hostkey")
            self._log(DEBUG, f"host certificate of {name} accepted ({plain.get_name()} "
                             f"{plain.fingerprint})")
            return
        on_record = known.get(plain.get_name())
        if not on_record:
            self._policy.missing_host_key(self, name, plain)
            return
        stores = (self._system_host_keys, self._host_keys)
        if plain not in on_record and not any(s.check(name, plain) for s in stores):
            self._log(DEBUG, f"host key mismatch for {name}")
            raise _mark(BadHostKeyException(name, plain, on_record[0]), peer, "hostkey")

    # -- legacy authentication --------------------------------------------------------------
    def _auth(self, t: Any, username: str, password: Optional[str], pkey: Optional[PKey],
              key_filenames: List[str], allow_agent: bool, look_for_keys: bool,
              passphrase: Optional[str], peer: str) -> None:
        """pkey, key files, agent keys, default key files, then password/keyboard-interactive."""
        who = f"{username}@{peer}"
        log = _AuthLog()
        state: Dict[str, Any] = {"saved": None, "allowed": None, "done": False}
        if passphrase is None and password is not None:
            passphrase = password

        def record_failure(e: BaseException) -> None:
            state["saved"] = e
            if isinstance(e, BadAuthenticationType):
                state["allowed"] = list(e.allowed_types)
            if not _transport_alive(t):
                # Nothing more can be tried; report the method list with the real cause.
                raise self._auth_error(e, who, log, t)

        def attempt(method: str, call: Callable[[], Any]) -> Optional[List[str]]:
            """Run one auth call: ``[]`` on success, the methods still wanted after a partial
            success, None on failure (the exception is kept in ``state["saved"]``)."""
            log.note(method)
            try:
                remaining = list(call() or [])
            except (SSHException, OSError) as e:
                record_failure(e)
                return None
            if not remaining or _transport_authenticated(t):
                state["done"] = True
                return []
            self._log(INFO, f"{method} accepted for {who}; server also wants {remaining}")
            state["allowed"] = remaining
            return remaining

        def want(method: str) -> bool:
            allowed = state["allowed"]
            return allowed is None or method in allowed

        tried_keys: List[bytes] = []

        def try_key(key: Any) -> bool:
            """Offer one key unless it was offered already; True when auth is complete."""
            ident = _key_identity(key)
            if ident in tried_keys or not want("publickey"):
                return False
            tried_keys.append(ident)
            self._log(DEBUG, f"trying {key.get_name()} key {_fingerprint(key)} for {who}")
            attempt("publickey", lambda: t.auth_publickey(username, key))
            return bool(state["done"])

        def second_factor_pending() -> bool:
            allowed = state["allowed"]
            return bool(allowed) and any(m in allowed for m in _SECOND_FACTORS) and \
                "publickey" not in allowed and bool(tried_keys)

        # 1. an explicit key object
        if pkey is not None and try_key(pkey):
            return
        # 2. key files
        for filename in key_filenames:
            if second_factor_pending() or not want("publickey"):
                break
            key = self._load_key_file(filename, passphrase, log, record_failure)
            if key is not None and try_key(key):
                return
        # 3. agent keys
        if allow_agent and not second_factor_pending() and want("publickey"):
            for key in self._agent_keys():
                if second_factor_pending() or not want("publickey"):
                    break
                if try_key(key):
                    return
        # 4. default key files in the home directory
        if look_for_keys and not second_factor_pending() and want("publickey"):
            for filename in _default_key_files():
                if second_factor_pending() or not want("publickey"):
                    break
                key = self._load_key_file(filename, passphrase, log, record_failure,
                                          implicit=True)
                if key is not None and try_key(key):
                    return
        # 5. password, or keyboard-interactive answered with the password
        if password is not None:
            if self._password_auth(t, username, password, attempt, state):
                return
        elif second_factor_pending() and "keyboard-interactive" in (state["allowed"] or ()):
            if _stdin_is_terminal():
                attempt("keyboard-interactive", lambda: t.auth_interactive_dumb(username))
                if state["done"]:
                    return
            else:
                state["saved"] = AuthenticationException(
                    "the server wants a second factor (keyboard-interactive) and no password "
                    "was given")
        elif second_factor_pending():
            state["saved"] = AuthenticationException(
                "the server wants a password as second factor and none was given")

        if state["saved"] is None:
            if log.methods:
                # Only partial successes: the server still wants something we don't have.
                state["saved"] = AuthenticationException(
                    f"server still wants {', '.join(state['allowed'] or [])}")
            else:
                err = SSHException(f"No authentication methods available for {who} (no key, "
                                   f"agent key or password to try)")
                raise _mark(err, peer, "auth")
        raise self._auth_error(state["saved"], who, log, t)

    def _password_auth(self, t: Any, username: str, password: str,
                       attempt: Callable[[str, Callable[[], Any]], Optional[List[str]]],
                       state: Dict[str, Any]) -> bool:
        allowed = state["allowed"]
        if allowed is None or "password" in allowed or "keyboard-interactive" not in allowed:
            outcome = attempt("password",
                              lambda: t.auth_password(username, password, fallback=False))
            if state["done"]:
                return True
            refused = outcome is None and isinstance(state["saved"], BadAuthenticationType)
            if not refused or "keyboard-interactive" not in (state["allowed"] or ()):
                return False

        def answer(title: str, instructions: str, prompts: List[Tuple[str, bool]]) -> List[str]:
            return [password for _ in prompts]

        attempt("keyboard-interactive", lambda: t.auth_interactive(username, answer))
        return bool(state["done"])

    def _load_key_file(self, filename: str, passphrase: Optional[str], log: _AuthLog,
                       record_failure: Callable[[BaseException], None],
                       implicit: bool = False) -> Optional[PKey]:
        try:
            key = PKey.from_path(filename, passphrase=passphrase)
        except FileNotFoundError as e:
            if implicit:
                return None
            log.unloadable.append(f"{filename} (not found)")
            state_err = SSHException(f"key file {filename} not found")
            state_err.__cause__ = e
            record_failure(state_err)
            return None
        except PasswordRequiredException as e:
            log.unloadable.append(f"{filename} (encrypted, no passphrase given)")
            record_failure(e)
            return None
        except (SSHException, OSError, ValueError) as e:
            log.unloadable.append(f"{filename} ({e})")
            record_failure(e if isinstance(e, SSHException) else SSHException(str(e)))
            return None
        self._log(DEBUG, f"loaded {key.get_name()} key from {filename}")
        return key

    def _agent_keys(self) -> List[Any]:
        try:
            if self._agent is None:
                from paramiko.agent import Agent

                self._agent = Agent()
            return list(self._agent.get_keys())
        except Exception as e:
            self._log(DEBUG, f"no agent keys: {type(e).__name__}: {e}")
            return []

    @staticmethod
    def _auth_error(exc: BaseException, who: str, log: _AuthLog, t: Any) -> BaseException:
        """``exc`` as the same type, with a message naming the user, host and methods tried."""
        context = f"Authentication failed for {who} (tried: {log.summary()})"
        detail = str(exc)
        if isinstance(exc, AuthenticationException) and not _transport_alive(t):
            detail = f"{detail} (connection lost)"
        try:
            new = copy.copy(exc)
            if isinstance(new, BadAuthenticationType):
                new.explanation = f"{context}: {exc.explanation}"  # type: ignore[attr-defined]
                new.args = (new.explanation, new.allowed_types)
            elif type(new).__str__ is BaseException.__str__ or isinstance(exc, OSError):
                generic = detail in ("", "Authentication failed.")
                new.args = (context if generic else f"{context}: {detail}",)
            else:
                return _mark(exc, who.split("@", 1)[1], "auth")
        except Exception:
            return _mark(exc, who.split("@", 1)[1], "auth")
        new.__cause__ = exc
        new.tried = dict(log.methods)  # type: ignore[attr-defined]
        new.peer = who.split("@", 1)[1]  # type: ignore[attr-defined]
        new.phase = "auth"  # type: ignore[attr-defined]
        return new

    # -- using the connection ---------------------------------------------------------------
    def _require_transport(self) -> Any:
        t = self._transport
        if t is None:
            raise SSHException("SSHClient is not connected (call connect() first)")
        return t

    def exec_command(
        self,
        command: Union[str, bytes],
        bufsize: int = -1,
        timeout: Optional[float] = None,
        get_pty: bool = False,
        environment: Optional[Dict[str, str]] = None,
    ) -> Tuple[ChannelStdinFile, ChannelFile, ChannelStderrFile]:
        """Run ``command`` in a new session; returns its (stdin, stdout, stderr) files.

        ``timeout`` bounds opening the session and every later read/write on it.
        """
        t = self._require_transport()
        chan = t.open_session(timeout=timeout)
        try:
            if get_pty:
                chan.get_pty()
            chan.settimeout(timeout)
            if environment:
                chan.update_environment(environment)
            chan.exec_command(command)
        except BaseException:
            chan.close()
            raise
        stdin = chan.makefile_stdin("wb", bufsize)
        stdout = chan.makefile("r", bufsize)
        stderr = chan.makefile_stderr("r", bufsize)
        return stdin, stdout, stderr

    def invoke_shell(
        self,
        term: str = "vt100",
        width: int = 80,
        height: int = 24,
        width_pixels: int = 0,
        height_pixels: int = 0,
        environment: Optional[Dict[str, str]] = None,
    ) -> Channel:
        """Start an interactive shell on a pty; ``environment`` is sent before the shell."""
        t = self._require_transport()
        chan = t.open_session()
        try:
            chan.get_pty(term, width, height, width_pixels, height_pixels)
            if environment:
                chan.update_environment(environment)
            chan.invoke_shell()
        except BaseException:
            chan.close()
            raise
        return chan

    def open_sftp(self) -> Any:
        """An SFTP session on this connection."""
        t = self._require_transport()
        try:
            from paramiko.sftp_client import SFTPClient
        except ImportError:
            raise SSHException("SFTP is not available yet in this build "
                               "(paramiko.sftp_client is missing)") from None
        opener = getattr(t, "open_sftp_client", None)
        if opener is not None:
            return opener()
        return SFTPClient.from_transport(t)

    def get_transport(self) -> Any:
        return self._transport

    def close(self) -> None:
        """Close the transport (and every channel), then any gateways that
        :meth:`connect_via_config` opened (last first), and the agent connection."""
        t, self._transport = self._transport, None
        if t is not None:
            t.close()
        chain, self._jump_chain = getattr(self, "_jump_chain", None), None
        if chain is not None:
            chain.close_gateways()
        agent, self._agent = self._agent, None
        if agent is not None:
            try:
                agent.close()
            except Exception:
                pass


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _transport_alive(t: Any) -> bool:
    check = getattr(t, "is_active", None)
    try:
        return bool(check()) if check is not None else True
    except Exception:
        return True


def _transport_authenticated(t: Any) -> bool:
    check = getattr(t, "is_authenticated", None)
    try:
        return bool(check()) if check is not None else False
    except Exception:
        return False


def _key_identity(key: Any) -> bytes:
    blob = getattr(key, "public_blob", None)
    if blob is not None:
        return bytes(blob.key_blob)
    try:
        return bytes(key.asbytes())
    except Exception:
        return repr(id(key)).encode()


def _fingerprint(key: Any) -> str:
    try:
        return str(key.fingerprint)
    except Exception:
        return "?"


def _default_key_files() -> List[str]:
    """``~/.ssh/id_{rsa,ecdsa,ed25519}`` then ``~/ssh/id_*``, those that exist."""
    out = []
    for directory in ("~/.ssh", "~/ssh"):
        for kind in _DEFAULT_KEY_NAMES:
            path = os.path.expanduser(os.path.join(directory, f"id_{kind}"))
            if os.path.isfile(path):
                out.append(path)
    return out


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except Exception:
        return False
