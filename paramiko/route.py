"""Jump chains: reach a host the way OpenSSH's ``ssh HOST`` would, given an ssh_config.

Two steps, usable separately:

* :func:`resolve_route` turns a host name plus an :class:`~paramiko.config.SSHConfig` into a
  :class:`Route`: the ordered :class:`Hop` list (gateways first, the target last). It follows
  OpenSSH's rules: ProxyJump lists are dialled first entry first; every hop is looked up in its
  own ``Host`` stanza; the first entry of a list follows its own ProxyJump/ProxyCommand (as the
  nested ``ssh -W`` child would); whichever of ProxyJump/ProxyCommand the config gave first
  wins; ``none`` means direct; a loop on (user, host, port) is an error.
* :func:`connect_route` dials the hops in order: the first over TCP or its ProxyCommand, every
  later one through a ``direct-tcpip`` channel of the previous hop's transport. Each hop gets its
  own timeouts, host key check (under its own name or HostKeyAlias, with its own known_hosts
  files and StrictHostKeyChecking) and credentials (IdentityFile, IdentitiesOnly,
  CertificateFile, agent). Failures raise :class:`RouteError`, which names the hop, the phase
  and the reason.

``hop_connector`` lets a caller (Fabric's connection cache) hand in already-connected gateway
clients, keyed by :attr:`Hop.route_key`.
"""

from __future__ import annotations

import copy
import dataclasses
import getpass
import os
import re
import socket
import threading
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Hashable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import unquote

from paramiko.auth_strategy import (
    AuthSource,
    AuthStrategy,
    InMemoryPrivateKey,
    OnDiskPrivateKey,
    Password,
)
from paramiko.ssh_exception import (
    AuthenticationException,
    BadHostKeyException,
    ChannelException,
    ProxyCommandFailure,
    SSHException,
)
from paramiko.util import get_logger

if TYPE_CHECKING:
    from paramiko.client import SSHClient

__all__ = [
    "DEFAULT_TIMEOUT",
    "Hop",
    "HopConnector",
    "HopCredentials",
    "JumpChain",
    "JumpSpec",
    "Route",
    "RouteAuthenticationError",
    "RouteChannelError",
    "RouteError",
    "RouteHostKeyError",
    "connect_route",
    "expand_proxy_command",
    "jump_chain",
    "load_config",
    "parse_jump_spec",
    "parse_proxy_jump",
    "resolve_route",
]

SSH_PORT = 22
#: Per-hop connect / channel-open timeout when neither the hop's ConnectTimeout nor the caller
#: gives one: a hop never waits on the kernel alone.
DEFAULT_TIMEOUT = 30.0
#: Longer chains than this are taken as a runaway ProxyJump recursion.
MAX_HOPS = 32
_DEFAULT_USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
_DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
_DEFAULT_IDENTITIES = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ed25519")
# Where a direct-tcpip forward says it comes from (what OpenSSH's -W sends).
_FORWARD_ORIGIN = ("127.0.0.1", 0)
_CHANNEL_CODES = {1: "administratively prohibited", 2: "connect failed",
                  3: "unknown channel type", 4: "resource shortage"}
# The phases other modules put on exceptions, in this module's vocabulary.
_PHASE_ALIASES = {"resolve": "dns", "tcp-connect": "tcp", "channel_open": "channel-open"}

_log = get_logger("paramiko.route")


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


class RouteError(SSHException):
    """Reaching a hop of a route failed.

    Attributes: ``hop_index`` (0 = first gateway, ``len(route) - 1`` = target), ``hop``
    (``user@host:port``), ``alias`` (the name the hop was given as), ``phase`` (``config``,
    ``dns``, ``tcp``, ``proxycommand``, ``banner``, ``kex``, ``hostkey``, ``auth``,
    ``channel-open`` or ``transport``), ``reason`` (the cause in words), ``via`` (the gateway
    the hop was reached through, as ``alias (user@host:port)``, or None), ``route`` (the
    :class:`Route`, when known) and ``peer`` (``host:port`` of the failing hop). The original
    exception is ``__cause__``.
    """

    def __init__(self, message: str, *, hop_index: Optional[int], hop: Optional[str],
                 phase: str, reason: str, alias: Optional[str] = None,
                 via: Optional[str] = None, route: Optional[Route] = None,
                 peer: Optional[str] = None) -> None:
        Exception.__init__(self, message)
        self.message = message
        self.hop_index = hop_index
        self.hop = hop
        self.alias = alias
        self.phase = phase
        self.reason = reason
        self.via = via
        self.route = route
        self.peer = peer

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:
        return (_rebuild_route_error, (type(self), self.message, self.__dict__))


def _rebuild_route_error(cls: type, message: str, state: Dict[str, Any]) -> RouteError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class RouteAuthenticationError(RouteError, AuthenticationException):
    """Authentication to a hop failed (still an ``AuthenticationException``)."""


class RouteHostKeyError(RouteError, BadHostKeyException):
    """A hop's host key was refused; ``hostname``/``key``/``expected_key`` as in
    ``BadHostKeyException`` when the key changed (``expected_key`` is None for an unknown
    host)."""

    hostname: Optional[str] = None
    key: Any = None
    expected_key: Any = None


class RouteChannelError(RouteError, ChannelException):
    """The gateway refused the ``direct-tcpip`` channel; ``code``/``text`` as sent by it."""

    code: int = 0
    text: str = ""


# ---------------------------------------------------------------------------------------------
# the data model
# ---------------------------------------------------------------------------------------------


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Hop:
    """One SSH server of a route, with the settings OpenSSH would use for it."""

    alias: str  # the name as given (command line or ProxyJump entry); the stanza looked up
    hostname: str  # after HostName
    port: int = SSH_PORT
    user: str = ""
    identity_files: Tuple[str, ...] = ()
    identities_only: bool = False
    certificate_files: Tuple[str, ...] = ()
    known_hosts_files: Tuple[str, ...] = _DEFAULT_USER_KNOWN_HOSTS
    global_known_hosts_files: Tuple[str, ...] = _DEFAULT_GLOBAL_KNOWN_HOSTS
    strict_host_key_checking: str = "yes"  # yes | accept-new | no ("ask" becomes "yes")
    host_key_alias: Optional[str] = None
    connect_timeout: Optional[float] = None
    server_alive_interval: int = 0
    server_alive_count_max: int = 3
    identity_agent: Optional[str] = None  # None: $SSH_AUTH_SOCK; "none": no agent; else a path
    proxy_command: Optional[str] = None  # expanded; only ever set on the first hop of a route
    source: str = ""
    #: identities of the hops before this one (see :attr:`route_key`)
    upstream: Tuple[Hashable, ...] = ()

    @property
    def key(self) -> Tuple[str, str, int]:
        """``(user, hostname, port)``: who this hop logs in as, where."""
        return (self.user, self.hostname, self.port)

    @property
    def route_key(self) -> Tuple[Hashable, ...]:
        """Hashable identity of this hop *including how it is reached*: equal for two hops
        only when the same ProxyCommand (if any) and the same (user, host, port) hops lead to
        the same (user, host, port). Use it to cache connected gateways."""
        own: Tuple[Hashable, ...] = (self.key,)
        if self.proxy_command is not None:
            own = (("proxycommand", self.proxy_command),) + own
        return self.upstream + own

    @property
    def peer(self) -> str:
        """``host:port`` (``[v6]:port``)."""
        return _hostport(self.hostname, self.port)

    @property
    def display(self) -> str:
        """``user@host:port``."""
        return f"{self.user}@{self.peer}"

    @property
    def host_key_name(self) -> str:
        """The known_hosts name checked: HostKeyAlias, else ``host`` on 22, else
        ``[host]:port``."""
        if self.host_key_alias:
            return self.host_key_alias
        return self.hostname if self.port == SSH_PORT else f"[{self.hostname}]:{self.port}"

    def describe(self) -> str:
        return f"{self.alias} ({self.display})"


@dataclass(frozen=True)
class Route:
    """The hops to dial in order: gateways first, the target last."""

    hops: Tuple[Hop, ...]

    def __post_init__(self) -> None:
        if not self.hops:
            raise ValueError("a route needs at least one hop (the target)")

    def __iter__(self) -> Iterator[Hop]:
        return iter(self.hops)

    def __len__(self) -> int:
        return len(self.hops)

    def __getitem__(self, index: int) -> Hop:
        return self.hops[index]

    @property
    def target(self) -> Hop:
        return self.hops[-1]

    @property
    def gateways(self) -> Tuple[Hop, ...]:
        return self.hops[:-1]

    @property
    def proxy_command(self) -> Optional[str]:
        """The ProxyCommand that carries the first hop, if any."""
        return self.hops[0].proxy_command

    @property
    def key(self) -> Tuple[Hashable, ...]:
        """The target's :attr:`Hop.route_key`."""
        return self.target.route_key

    def describe(self) -> str:
        """One line per hop (``ssh -G``-like), saying where each came from."""
        lines = []
        for i, hop in enumerate(self.hops):
            how = "target" if i == len(self.hops) - 1 else "gateway"
            line = f"{i}: {how} {hop.describe()}"
            if hop.proxy_command is not None:
                line += f" via ProxyCommand {hop.proxy_command!r}"
            if hop.host_key_alias:
                line += f" hostkeyalias={hop.host_key_alias}"
            lines.append(f"{line}  [{hop.source}]")
        return "\n".join(lines)

    def __str__(self) -> str:
        return " -> ".join(h.display for h in self.hops)


# ---------------------------------------------------------------------------------------------
# parsing ProxyJump values
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JumpSpec:
    """One ProxyJump entry: ``[user@]host[:port]`` or ``ssh://[user@]host[:port]``."""

    host: str
    user: Optional[str] = None
    port: Optional[int] = None
    text: str = ""


def _config_error(message: str, alias: Optional[str] = None) -> RouteError:
    return RouteError(f"route to {alias}: {message}" if alias else message, hop_index=None,
                      hop=None, phase="config", reason=message, alias=alias)


def _parse_port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _config_error(f"bad port {text!r} in jump host {spec!r}")
    return int(text)


def _split_host_port(text: str, spec: str) -> Tuple[str, Optional[int]]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise _config_error(f"unterminated '[' in jump host {spec!r}")
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise _config_error(f"unexpected {rest!r} after ']' in jump host {spec!r}")
        port = _parse_port(rest[1:], spec) if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _parse_port(port_text, spec)
    else:
        # No colon, or several: a bare IPv6 literal (OpenSSH would reject it; we take it whole).
        host, port = text, None
    if not host:
        raise _config_error(f"empty host name in jump host {spec!r}")
    return host, port


def parse_jump_spec(spec: str) -> JumpSpec:
    """Parse one ProxyJump entry; raises :class:`RouteError` (phase ``config``) if malformed."""
    text = spec.strip()
    if not text:
        raise _config_error("empty jump host entry")
    if text.lower().startswith("ssh://"):
        rest = text[6:]
        if rest.endswith("/"):
            rest = rest[:-1]
        if any(ch in rest for ch in "/?#"):
            raise _config_error(f"jump host URI {spec!r} must not have a path or query")
        userinfo, at, hostport = rest.rpartition("@")
        # ssh URIs may carry ";fingerprint=..." parameters after the user; they are ignored.
        user: Optional[str] = unquote(userinfo.split(";", 1)[0]) if at else None
    else:
        user_text, at, hostport = text.rpartition("@")
        user = user_text if at else None
    if at and not user:
        raise _config_error(f"empty user name in jump host {spec!r}")
    host, port = _split_host_port(hostport, spec)
    return JumpSpec(host=host, user=user, port=port, text=text)


def parse_proxy_jump(value: str) -> List[JumpSpec]:
    """Parse a ProxyJump value (comma-separated entries, first to dial first).

    ``none`` (or an empty value) gives ``[]``.
    """
    text = (value or "").strip()
    if not text or text.lower() == "none":
        return []
    return [parse_jump_spec(part) for part in text.split(",")]


# ---------------------------------------------------------------------------------------------
# resolution
# ---------------------------------------------------------------------------------------------

_NOT_GIVEN: Any = object()


def load_config(config: Any = None) -> Any:
    """An ``SSHConfig`` from ``config``: an ``SSHConfig`` (returned as is), a path, or None
    for ``~/.ssh/config`` when readable (else None: no config)."""
    if config is not None and hasattr(config, "lookup"):
        return config
    from paramiko.config import SSHConfig

    if config is None:
        path = os.path.expanduser("~/.ssh/config")
        if not os.access(path, os.R_OK):
            return None
        return SSHConfig.from_path(path)
    return SSHConfig.from_path(os.fspath(config))


def expand_proxy_command(command: str, *, hostname: str, port: int, user: str,
                         alias: str, host_key_alias: Optional[str] = None) -> str:
    """Expand ``%h %p %r %n %k %%`` in a ProxyCommand as OpenSSH does.

    ``%k`` is the HostKeyAlias, else the original name (``%n``). Any other token raises
    :class:`RouteError` (phase ``config``), as OpenSSH refuses it.
    """
    values = {"h": hostname, "p": str(port), "r": user, "n": alias,
              "k": host_key_alias or alias, "%": "%"}
    out: List[str] = []
    i = 0
    while i < len(command):
        ch = command[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(command):
            raise _config_error(f"ProxyCommand {command!r} ends with a lone '%'", alias)
        token = command[i + 1]
        if token not in values:
            raise _config_error(f"ProxyCommand {command!r}: unknown token %{token} "
                                f"(allowed: %h %p %r %n %k %%)", alias)
        out.append(values[token])
        i += 2
    return "".join(out)


def _opt(opts: Mapping[str, Any], key: str) -> Any:
    try:
        return opts.get(key)
    except Exception:
        return None


def _origin(opts: Mapping[str, Any], key: str) -> str:
    """`` (FILE line N)`` for a value paramiko.config can trace, else ``""``."""
    finder = getattr(opts, "origin", None)
    try:
        found = finder(key) if callable(finder) else None
    except Exception:
        found = None
    return f" ({found[0]} line {found[1]})" if found else ""


def _as_list(value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _yes(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "true", "on")


def _strict_mode(value: Any) -> str:
    text = str(value).strip().lower() if value is not None else "ask"
    if text in ("no", "off", "false"):
        return "no"
    if text == "accept-new":
        return "accept-new"
    # "yes", and "ask": nobody can answer a prompt here, so unknown hosts are refused.
    return "yes"


def _known_hosts_list(value: Any, default: Tuple[str, ...]) -> Tuple[str, ...]:
    if value is None:
        files: List[str] = list(default)
    else:
        files = []
        for item in _as_list(value):
            files += item.split()
    if [f.lower() for f in files] == ["none"]:
        return ()
    return tuple(os.path.expanduser(f) for f in files if f.lower() != "none")


_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIME_RE = re.compile(r"(\d+)([smhdw]?)")


def _seconds(value: Any, what: str, alias: str) -> Optional[float]:
    """A time value as ssh_config writes them (``30``, ``1m30s``); None for unset/none/0."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("", "none"):
        return None
    try:
        number = float(text)
    except ValueError:
        parts = _TIME_RE.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise _config_error(f"bad {what} {value!r}", alias) from None
        number = float(sum(int(n) * _TIME_UNITS[u] for n, u in parts))
    return number if number > 0 else None


def _int_or(value: Any, default: int, what: str, alias: str) -> int:
    if value is None:
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise _config_error(f"bad {what} {value!r}", alias) from None


def _raw_proxy_command_view(config: Any) -> Any:
    """``config``, but answering ProxyCommand unexpanded.

    paramiko.config expands ProxyCommand tokens with the configured port and user; a
    ``-p``/``-l`` style override (the caller's, or a ProxyJump entry's ``user@``/``:port``)
    must be in ``%p``/``%r`` instead, so this module expands them itself. A shallow copy whose
    token table lacks ``proxycommand`` makes the config leave that value as written.
    """
    table = getattr(config, "TOKENS_BY_CONFIG_KEY", None)
    if not isinstance(table, dict) or "proxycommand" not in table:
        return config
    view = copy.copy(config)
    view.TOKENS_BY_CONFIG_KEY = {k: v for k, v in table.items() if k != "proxycommand"}
    return view


class _Resolver:
    def __init__(self, config: Any, local_user: str) -> None:
        self.config = _raw_proxy_command_view(config) if config is not None else None
        self.local_user = local_user

    def lookup(self, alias: str) -> Mapping[str, Any]:
        if self.config is None:
            return {}
        try:
            return self.config.lookup(alias)
        except Exception as e:  # e.g. a failing Match exec or an unset ${ENV}
            err = _config_error(f"ssh_config lookup failed: {_one_line(str(e))}", alias)
            raise err from e

    def make_hop(self, alias: str, opts: Mapping[str, Any], user: Optional[str],
                 port: Optional[int], source: str) -> Hop:
        hostname = str(_opt(opts, "hostname") or alias)
        if port is None:
            port_value = _opt(opts, "port")
            port = SSH_PORT if port_value in (None, "") else _int_or(port_value, SSH_PORT,
                                                                      "Port", alias)
        if not 0 < port < 65536:
            raise _config_error(f"bad port {port}", alias)
        if user is None:
            user = str(_opt(opts, "user") or self.local_user)
        identity_files = tuple(os.path.expanduser(p) for p in _as_list(_opt(opts, "identityfile"))
                               if p.lower() != "none")
        certificate_files = tuple(os.path.expanduser(p)
                                  for p in _as_list(_opt(opts, "certificatefile"))
                                  if p.lower() != "none")
        agent = _opt(opts, "identityagent")
        return Hop(
            alias=alias,
            hostname=hostname,
            port=port,
            user=user,
            identity_files=identity_files,
            identities_only=_yes(_opt(opts, "identitiesonly") or "no"),
            certificate_files=certificate_files,
            known_hosts_files=_known_hosts_list(_opt(opts, "userknownhostsfile"),
                                                _DEFAULT_USER_KNOWN_HOSTS),
            global_known_hosts_files=_known_hosts_list(_opt(opts, "globalknownhostsfile"),
                                                       _DEFAULT_GLOBAL_KNOWN_HOSTS),
            strict_host_key_checking=_strict_mode(_opt(opts, "stricthostkeychecking")),
            host_key_alias=_opt(opts, "hostkeyalias") or None,
            connect_timeout=_seconds(_opt(opts, "connecttimeout"), "ConnectTimeout", alias),
            server_alive_interval=int(_seconds(_opt(opts, "serveraliveinterval"),
                                               "ServerAliveInterval", alias) or 0),
            server_alive_count_max=_int_or(_opt(opts, "serveralivecountmax"), 3,
                                           "ServerAliveCountMax", alias),
            identity_agent=str(agent) if agent is not None else None,
            source=source,
        )

    def chain(self, alias: str, user: Optional[str], port: Optional[int], source: str,
              jump_override: Any, command_override: Optional[str],
              stack: List[Tuple[Tuple[str, str, int], str]]) -> List[Hop]:
        """The hops that reach ``alias``, ending with it.

        ``jump_override`` is a list of :class:`JumpSpec` standing for a ``-J`` given to the
        ssh that dials ``alias`` (it replaces the stanza's ProxyJump *and* ProxyCommand), or
        ``_NOT_GIVEN`` to use the stanza.
        """
        opts = self.lookup(alias)
        hop = self.make_hop(alias, opts, user, port, source)
        if hop.key in [k for k, _ in stack]:
            names = [d for _, d in stack] + [hop.display]
            first = [k for k, _ in stack].index(hop.key)
            raise _config_error("ProxyJump loop: " + " -> ".join(names[first:]) +
                                " (each hop is reached through the next one listed)", alias)
        if len(stack) >= MAX_HOPS:
            raise _config_error(f"route longer than {MAX_HOPS} hops (runaway ProxyJump?): " +
                                " -> ".join(d for _, d in stack), alias)
        specs: List[JumpSpec] = []
        command: Optional[str] = None
        where = ""  # which config line supplied the ProxyJump/ProxyCommand, when known
        if jump_override is not _NOT_GIVEN:
            specs = list(jump_override)
        elif command_override is not None:
            command = command_override
        else:
            jump = _opt(opts, "proxyjump")
            proxy = _opt(opts, "proxycommand")
            jump_on = jump is not None and str(jump).strip().lower() not in ("", "none")
            proxy_on = proxy is not None and str(proxy).strip().lower() not in ("", "none")
            if jump_on and proxy_on:
                # The config layer keeps only the first of the two; both here is a bug there.
                raise _config_error("both ProxyJump and ProxyCommand are set "
                                    "(inconsistent options)", alias)
            if jump_on:
                # ProxyJump tokens are the config layer's to expand (paramiko.config does).
                specs = parse_proxy_jump(str(jump))
                where = _origin(opts, "proxyjump")
            elif proxy_on:
                command = str(proxy)
                where = _origin(opts, "proxycommand")
        if command is not None:
            expanded = expand_proxy_command(command, hostname=hop.hostname, port=hop.port,
                                            user=hop.user, alias=alias,
                                            host_key_alias=hop.host_key_alias)
            source = f"{hop.source}; ProxyCommand{where}" if where else hop.source
            return [dataclasses.replace(hop, proxy_command=expanded, source=source)]
        if not specs:
            return [hop]
        # Like OpenSSH: the last entry forwards to us and is itself reached with the other
        # entries as its -J; an entry dialled alone uses its own stanza's ProxyJump/Command.
        last = specs[-1]
        jump_text = ",".join(s.text for s in specs)
        upstream = self.chain(
            last.host, last.user, last.port,
            f"ProxyJump {jump_text!r} of {alias!r}{where} (entry {len(specs)} of "
            f"{len(specs)})",
            specs[:-1] if len(specs) > 1 else _NOT_GIVEN, None,
            stack + [(hop.key, hop.display)])
        if len(specs) > 1:
            # Label the hops that came from the list itself by their entry.
            for n, spec in enumerate(specs[:-1]):
                pos = len(upstream) - len(specs) + n
                if 0 <= pos < len(upstream) and upstream[pos].alias == spec.host:
                    _, semi, extra = upstream[pos].source.partition("; ")
                    upstream[pos] = dataclasses.replace(
                        upstream[pos],
                        source=f"ProxyJump {jump_text!r} of {alias!r}{where} "
                               f"(entry {n + 1} of {len(specs)}){semi}{extra}")
        return upstream + [hop]


def resolve_route(
    host: str,
    config: Any = None,
    user: Optional[str] = None,
    port: Optional[int] = None,
    *,
    proxy_jump: Optional[str] = None,
    proxy_command: Optional[str] = None,
    local_user: Optional[str] = None,
) -> Route:
    """The :class:`Route` OpenSSH would take to ``host`` with ``config`` (an ``SSHConfig``
    or None for no config).

    ``user`` and ``port`` apply to the target only, like ``ssh -l``/``-p``. ``proxy_jump``
    (like ``-J``; ``"none"`` or ``""`` for direct) or ``proxy_command`` (``"none"`` for
    direct) replace whatever the target's stanza says; giving both is a ``ValueError``.
    ``local_user`` is the default login name (default: the current user).

    Raises :class:`RouteError` with phase ``config`` for malformed ProxyJump entries, unknown
    ProxyCommand tokens, loops on (user, host, port) and runaway chains.
    """
    if proxy_jump is not None and proxy_command is not None:
        raise ValueError("give proxy_jump or proxy_command, not both")
    if port is not None:
        port = int(port)
    resolver = _Resolver(config, local_user or getpass.getuser())
    jump_override: Any = _NOT_GIVEN
    command_override: Optional[str] = None
    if proxy_jump is not None:
        jump_override = parse_proxy_jump(proxy_jump)
    elif proxy_command is not None:
        if proxy_command.strip().lower() == "none":
            jump_override = []
        else:
            command_override = proxy_command
    hops = resolver.chain(host, user, port, f"target {host!r}", jump_override,
                          command_override, [])
    seen: Dict[Tuple[str, str, int], int] = {}
    for i, hop in enumerate(hops):
        if hop.key in seen:
            loop = " -> ".join(h.display for h in hops[seen[hop.key]:i + 1])
            raise _config_error(f"ProxyJump loop: {loop} (dialled in this order)", host)
        seen[hop.key] = i
    final: List[Hop] = []
    upstream: Tuple[Hashable, ...] = ()
    for hop in hops:
        hop = dataclasses.replace(hop, upstream=upstream)
        final.append(hop)
        upstream = hop.route_key
    return Route(tuple(final))


# ---------------------------------------------------------------------------------------------
# host keys per hop
# ---------------------------------------------------------------------------------------------


def _existing(paths: Sequence[str]) -> List[str]:
    expanded = (os.path.expanduser(p) for p in paths)
    return [p for p in expanded if os.path.isfile(p)]


def _append_known_host(path: str, name: str, key: Any) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{name} {key.get_name()} {key.get_base64()}\n")


class _HopPolicy:
    """Unknown host keys, decided by the hop's StrictHostKeyChecking."""

    def __init__(self, hop: Hop) -> None:
        self.hop = hop

    def _where(self) -> str:
        files = list(self.hop.known_hosts_files) + _existing(self.hop.global_known_hosts_files)
        return ", ".join(files) if files else "no known_hosts file"

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        mode = self.hop.strict_host_key_checking
        if mode == "yes":
            err = SSHException(f"no {key.get_name()} host key known for {hostname} in "
                               f"{self._where()} (StrictHostKeyChecking yes); the server "
                               f"offered {key.fingerprint}")
            err.phase, err.peer = "hostkey", self.hop.peer
            raise err
        if mode == "no":
            # Check the files ourselves: the client was given none, so a changed key lands
            # here too; OpenSSH lets it through with a warning under "no".
            from paramiko.hostkeys import HostKeys

            store = HostKeys()
            for path in _existing(list(self.hop.known_hosts_files) +
                                  list(self.hop.global_known_hosts_files)):
                try:
                    store.load(path)
                except Exception as e:
                    _log.debug(f"cannot read {path}: {e}")
            on_record = store.lookup(hostname) or {}
            if store.check(hostname, key):
                return
            if key.get_name() in on_record:
                _log.warning(f"host key for {hostname} CHANGED (now {key.get_name()} "
                             f"{key.fingerprint}); accepted because StrictHostKeyChecking "
                             f"is off")
                return
        self._remember(hostname, key)

    def _remember(self, hostname: str, key: Any) -> None:
        files = self.hop.known_hosts_files
        if not files:
            return
        try:
            _append_known_host(os.path.expanduser(files[0]), hostname, key)
            _log.info(f"added {key.get_name()} host key of {hostname} to {files[0]}")
        except OSError as e:
            _log.warning(f"could not add the host key of {hostname} to {files[0]}: {e}")


# ---------------------------------------------------------------------------------------------
# authentication per hop
# ---------------------------------------------------------------------------------------------


def _public_blob_of(path: str) -> Optional[bytes]:
    """The public key blob of an identity file (from ``path.pub`` or ``path`` itself)."""
    from paramiko.pkey import PublicBlob

    for candidate in (path + ".pub", path):
        try:
            return bytes(PublicBlob.from_file(candidate).key_blob)
        except Exception:
            continue
    return None


def _plain_blob(key: Any) -> bytes:
    """The plain public key blob of a key object or agent key (a certificate's key)."""
    inner = getattr(key, "inner_key", None)
    return bytes((inner if inner is not None else key).asbytes())


class _HopAuth(AuthStrategy):
    """OpenSSH's order for one hop: explicit key, identity files (certificates first), agent
    keys (unless IdentitiesOnly, which keeps only those matching an identity file), default
    key files (only when no IdentityFile is configured), then the password."""

    def __init__(self, hop: Hop, *, pkey: Any = None, key_filenames: Sequence[str] = (),
                 password: Optional[str] = None, passphrase: Optional[str] = None,
                 allow_agent: bool = True, look_for_keys: bool = True) -> None:
        super().__init__(ssh_config=None)
        self.hop = hop
        self.pkey = pkey
        self.key_filenames = [os.path.expanduser(os.fspath(k)) for k in key_filenames]
        self.password = password
        self.passphrase = passphrase if passphrase is not None else password
        self.allow_agent = allow_agent
        self.look_for_keys = look_for_keys
        self.agent: Any = None
        self.problems: List[str] = []

    def __repr__(self) -> str:
        return f"_HopAuth({self.hop.display})"

    def close(self) -> None:
        agent, self.agent = self.agent, None
        if agent is not None:
            try:
                agent.close()
            except Exception:
                pass

    def _load(self, path: str, implicit: bool) -> Optional[Any]:
        from paramiko.pkey import PKey

        if path.endswith(".pub"):
            return None  # names an agent-held key (matched among the agent's keys)
        try:
            return PKey.from_path(path, passphrase=self.passphrase)
        except FileNotFoundError:
            if not implicit:
                self.problems.append(f"{path}: not found")
            return None
        except Exception as e:
            self.problems.append(f"{path}: {type(e).__name__}: {e}")
            return None

    def _with_certificates(self, path: str, key: Any) -> List[Any]:
        from paramiko.pkey import PKey

        variants = []
        for cert in self.hop.certificate_files:
            try:
                variant = PKey.from_path(path, passphrase=self.passphrase)
                variant.load_certificate(cert)
            except Exception:
                continue  # a certificate for another key
            variants.append(variant)
        return variants + [key]

    def _agent_keys(self) -> List[Any]:
        where = self.hop.identity_agent
        if not self.allow_agent or (where or "").lower() == "none":
            return []
        if where in (None, "", "SSH_AUTH_SOCK"):
            path = None
        elif where.startswith("$"):
            path = os.environ.get(where[1:]) or ""
        else:
            path = os.path.expanduser(where)
        try:
            from paramiko.agent import Agent

            self.agent = Agent(path) if path is not None else Agent()
            return list(self.agent.get_keys())
        except Exception as e:
            self.problems.append(f"agent: {e}")
            return []

    def get_sources(self) -> Iterator[Any]:
        user = self.hop.user
        offered: set = set()

        def fresh(key: Any) -> bool:
            blob = getattr(key, "public_blob", None)
            ident = (bytes(key.asbytes()), bytes(blob.key_blob) if blob is not None else b"")
            if ident in offered:
                return False
            offered.add(ident)
            return True

        if self.pkey is not None and fresh(self.pkey):
            yield InMemoryPrivateKey(user, self.pkey)
        config_files = list(self.hop.identity_files)
        for path in self.key_filenames + config_files:
            key = self._load(path, implicit=False)
            if key is None:
                continue
            origin = "ssh-config" if path in config_files else "python-config"
            for variant in self._with_certificates(path, key):
                if fresh(variant):
                    yield OnDiskPrivateKey(user, origin, path, variant)
        agent_keys = self._agent_keys()
        if self.hop.identities_only:
            # Agent keys stay usable when they are one of the configured identities (an
            # IdentityFile may name just the public half of an agent-held key).
            named = self.key_filenames + config_files
            if not named:
                named = [os.path.expanduser(p) for p in _DEFAULT_IDENTITIES]
            wanted = {b for b in (_public_blob_of(p) for p in named) if b is not None}
            agent_keys = [k for k in agent_keys if _plain_blob(k) in wanted]
        for key in agent_keys:
            if fresh(key):
                yield InMemoryPrivateKey(user, key)
        if self.look_for_keys and not config_files and not self.key_filenames:
            for path in (os.path.expanduser(p) for p in _DEFAULT_IDENTITIES):
                if not os.path.isfile(path):
                    continue
                key = self._load(path, implicit=True)
                if key is not None and fresh(key):
                    yield OnDiskPrivateKey(user, "implicit-home", path, key)
        if self.password is not None:
            secret = self.password
            yield Password(user, lambda: secret)
            yield _PasswordPrompts(user, secret)


class _PasswordPrompts(AuthSource):
    """keyboard-interactive, answering every prompt with the password (servers that offer
    only that method for passwords, e.g. PAM)."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(username=username)
        self._password = password

    def authenticate(self, transport: Any) -> List[str]:
        def answer(title: str, instructions: str, prompts: List[Any]) -> List[str]:
            return [self._password for _ in prompts]

        return transport.auth_interactive(self.username, answer)


# ---------------------------------------------------------------------------------------------
# dialling
# ---------------------------------------------------------------------------------------------

#: ``hop_connector(hop, dial) -> SSHClient``: return a connected client for gateway ``hop``,
#: either one you already hold for ``hop.route_key`` or ``dial()`` (which connects it through
#: the previous hop). The caller owns every client it returns: closing the route leaves them
#: open.
HopConnector = Callable[[Hop, Callable[[], Any]], Any]

#: ``hop_credentials(hop, index) -> mapping or None``: per-hop overrides, asked each time a
#: hop is dialled (so a password stored after a failed attempt is used by the retry). Keys:
#: ``password``, ``pkey``, ``key_filename``, ``passphrase``, ``allow_agent``,
#: ``look_for_keys`` and ``missing_host_key_policy``; a key that is present replaces what
#: :func:`connect_route` was given for that hop (gateways otherwise get no password, key or
#: key file of the caller's).
HopCredentials = Callable[[Hop, int], Optional[Mapping[str, Any]]]
_CREDENTIAL_KEYS = frozenset(("password", "pkey", "key_filename", "passphrase", "allow_agent",
                              "look_for_keys", "missing_host_key_policy"))


class JumpChain:
    """The connected clients of one route: gateways (owned or lent) and the target."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self._gateways: List[Tuple[Hop, Any, bool]] = []  # (hop, client, owned by us)
        self.target: Any = None
        self._lock = threading.Lock()

    @property
    def gateways(self) -> List[Any]:
        """The gateway clients, first hop first."""
        return [c for _, c, _ in self._gateways]

    def _add_gateway(self, hop: Hop, client: Any, owned: bool) -> None:
        with self._lock:
            self._gateways.append((hop, client, owned))

    def close_gateways(self) -> None:
        """Close the gateways this route opened, last first (lent ones stay open)."""
        with self._lock:
            links, self._gateways = self._gateways, []
        for _hop, client, owned in reversed(links):
            if owned:
                try:
                    client.close()
                except Exception as e:  # closing must go on down the chain
                    _log.debug(f"closing gateway {_hop.display}: {e}")

    def close(self) -> None:
        """Close the target, then the gateways in reverse order."""
        target, self.target = self.target, None
        if target is not None:
            try:
                target.close()
            except Exception as e:
                _log.debug(f"closing target {self.route.target.display}: {e}")
        self.close_gateways()


def jump_chain(client: SSHClient) -> Optional[JumpChain]:
    """The :class:`JumpChain` of a client connected by :func:`connect_route`, else None."""
    return getattr(client, "_jump_chain", None)


def _normalize_phase(exc: BaseException) -> Optional[str]:
    phase = getattr(exc, "phase", None)
    if phase is None:
        return None
    return _PHASE_ALIASES.get(str(phase), str(phase))


def _phase_of(exc: BaseException, default: str) -> str:
    if isinstance(exc, ProxyCommandFailure):
        return "proxycommand"
    phase = _normalize_phase(exc)
    if phase:
        return phase
    if isinstance(exc, BadHostKeyException):
        return "hostkey"
    if isinstance(exc, AuthenticationException):
        return "auth"
    if isinstance(exc, ChannelException):
        return "channel-open"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, OSError):
        return "tcp"
    return default


def _one_line(text: str) -> str:
    joined = "; ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return joined.replace(":; ", ": ")


def _reason_of(exc: BaseException, hop: Hop) -> str:
    if isinstance(exc, BadHostKeyException) and getattr(exc, "expected_key", None) is not None:
        got, want = exc.key, exc.expected_key
        return (f"host key for {exc.hostname} does not match the one on record "
                f"(server offered {got.get_name()} {got.fingerprint}, known_hosts has "
                f"{want.get_name()} {want.fingerprint}); files: "
                f"{', '.join(hop.known_hosts_files) or 'none'}")
    text = _one_line(str(exc)) or type(exc).__name__
    return text


def _route_error(exc: BaseException, route: Route, index: int, phase: str,
                 reason: Optional[str] = None) -> RouteError:
    hop = route.hops[index]
    reason = reason or _reason_of(exc, hop)
    via = route.hops[index - 1].describe() if index > 0 else None
    cls: type = RouteError
    if phase == "auth" and isinstance(exc, AuthenticationException):
        cls = RouteAuthenticationError
    elif phase == "hostkey":
        cls = RouteHostKeyError
    where = f"hop {index} {hop.describe()}"
    if via:
        where += f" via {' -> '.join(h.alias for h in route.hops[:index])}"
    err = cls(f"{where}: {phase}: {reason}", hop_index=index, hop=hop.display, phase=phase,
              reason=reason, alias=hop.alias, via=via, route=route, peer=hop.peer)
    if isinstance(err, RouteHostKeyError):
        err.hostname = getattr(exc, "hostname", hop.host_key_name)
        err.key = getattr(exc, "key", None)
        err.expected_key = getattr(exc, "expected_key", None)
    err.__cause__ = exc
    return err


def _channel_error(exc: BaseException, route: Route, index: int, timeout: float) -> RouteError:
    hop, gw = route.hops[index], route.hops[index - 1]
    target = f"{hop.alias} ({hop.peer})" if hop.alias != hop.hostname else hop.peer
    if isinstance(exc, ChannelException):
        text = str(getattr(exc, "text", "") or "")
        # The transport prefixes "<what> refused by <peer>: "; keep the server's own words.
        if " refused by " in text:
            text = text.split(" refused by ", 1)[1].partition(": ")[2] or text
        code = getattr(exc, "code", 0)
        reason = f"{text or 'refused'} (code {code}: {_CHANNEL_CODES.get(code, 'unknown')})"
        message = (f"hop {index}: channel open to {target} refused by {gw.describe()}: "
                   f"{reason}")
        err: RouteError = RouteChannelError(
            message, hop_index=index, hop=hop.display, phase="channel-open", reason=reason,
            alias=hop.alias, via=gw.describe(), route=route, peer=hop.peer)
        err.code, err.text = code, text  # type: ignore[attr-defined]
    else:
        reason = (f"no answer within {timeout:g}s" if "Timeout" in str(exc)
                  else _one_line(str(exc)))
        message = f"hop {index}: channel open to {target} through {gw.describe()} failed: " \
                  f"{reason}"
        err = RouteError(message, hop_index=index, hop=hop.display, phase="channel-open",
                         reason=reason, alias=hop.alias, via=gw.describe(), route=route,
                         peer=hop.peer)
    err.__cause__ = exc
    return err


def _gateway_lost(exc: BaseException, route: Route, index: int) -> RouteError:
    gw = route.hops[index]
    detail = _one_line(str(exc))
    reason = f"connection lost: {detail}" if detail else "connection lost"
    err = RouteError(f"hop {index} {gw.describe()}: transport: {reason} (while opening a "
                     f"channel to {route.hops[index + 1].describe()})",
                     hop_index=index, hop=gw.display, phase="transport", reason=reason,
                     alias=gw.alias, route=route, peer=gw.peer,
                     via=route.hops[index - 1].describe() if index else None)
    err.__cause__ = exc
    return err


def _resolve_address(hop: Hop, timeout: float) -> List[Any]:
    """getaddrinfo bounded by ``timeout``: the resolver has no timeout of its own, so a
    name (not a literal address) is looked up on a helper thread we stop waiting for."""
    args = (hop.hostname, hop.port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    try:
        return socket.getaddrinfo(*args, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    box: Dict[str, Any] = {}

    def work() -> None:
        try:
            box["infos"] = socket.getaddrinfo(*args)
        except BaseException as e:  # handed back to the waiting caller
            box["error"] = e

    helper = threading.Thread(target=work, name="paramiko.route-dns", daemon=True)
    helper.start()
    helper.join(timeout)
    if "infos" in box:
        return box["infos"]
    e = box.get("error")
    if isinstance(e, socket.gaierror):
        err = socket.gaierror(e.errno, f"cannot resolve {hop.hostname!r}: {e.strerror}")
    elif e is not None:
        err = socket.gaierror(f"cannot resolve {hop.hostname!r}: {e}")
    else:
        err = socket.gaierror(f"cannot resolve {hop.hostname!r}: no answer within "
                              f"{timeout:g}s")
    err.phase = "dns"  # type: ignore[attr-defined]
    raise err from e


def _tcp_connect(hop: Hop, timeout: float) -> socket.socket:
    infos = _resolve_address(hop, timeout)
    failures = []
    for family, socktype, proto, _canon, addr in infos:
        s = socket.socket(family, socktype, proto)
        try:
            s.settimeout(timeout)
            s.connect(addr)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except socket.timeout:
            s.close()
            failures.append(f"{addr[0]}: timed out after {timeout:g}s")
        except OSError as e:
            s.close()
            failures.append(f"{addr[0]}: {e.strerror or e}")
        except BaseException:
            s.close()
            raise
    err2 = OSError(f"TCP connect to {hop.peer} failed: {'; '.join(failures) or 'no address'}")
    err2.phase = "tcp"  # type: ignore[attr-defined]
    raise err2


def _proxy_outcome(sock: Any) -> Tuple[Optional[str], str]:
    """``(failure, stderr tail)`` of a ProxyCommand: failure is its exit status and stderr
    when it ended on its own with an error, else None."""
    failure = None
    probe = getattr(sock, "failure", None)
    if callable(probe):
        try:
            found = probe()
        except Exception:
            found = None
        if found is not None:
            failure = f"ProxyCommand {getattr(found, 'command', '')!r} failed: " \
                      f"{getattr(found, 'error', found)}"
    tail = ""
    reader = getattr(sock, "stderr_text", None)
    if callable(reader):
        try:
            tail = _one_line(reader())[-500:]
        except Exception:
            tail = ""
    return failure, tail


def _key_file_list(key_filename: Any) -> List[str]:
    if key_filename is None:
        return []
    if isinstance(key_filename, (str, os.PathLike)):
        return [os.fspath(key_filename)]
    return [os.fspath(k) for k in key_filename]


def _close_quietly(obj: Any) -> None:
    if obj is None:
        return
    try:
        obj.close()
    except Exception:
        pass


class _Dialer:
    def __init__(self, route: Route, *, timeout: Optional[float],
                 channel_timeout: Optional[float], banner_timeout: Optional[float],
                 auth_timeout: Optional[float], password: Optional[str], pkey: Any,
                 key_filename: Any, passphrase: Optional[str], allow_agent: bool,
                 look_for_keys: bool, disabled_algorithms: Any,
                 missing_host_key_policy: Any,
                 hop_credentials: Optional[HopCredentials] = None) -> None:
        self.route = route
        self.hop_credentials = hop_credentials
        self.timeout = timeout
        self.channel_timeout = channel_timeout
        self.banner_timeout = banner_timeout
        self.auth_timeout = auth_timeout
        self.password = password
        self.pkey = pkey
        self.key_filenames = _key_file_list(key_filename)
        self.passphrase = passphrase
        self.allow_agent = allow_agent
        self.look_for_keys = look_for_keys
        self.disabled_algorithms = disabled_algorithms
        self.policy = missing_host_key_policy

    def overrides(self, index: int, hop: Hop) -> Mapping[str, Any]:
        """What ``hop_credentials`` says for this hop (validated), or ``{}``."""
        if self.hop_credentials is None:
            return {}
        given = self.hop_credentials(hop, index)
        if not given:
            return {}
        unknown = set(given) - _CREDENTIAL_KEYS
        if unknown:
            raise ValueError(f"hop_credentials for {hop.display} returned unknown keys: "
                             f"{', '.join(sorted(unknown))}")
        return given

    def hop_timeout(self, hop: Hop) -> float:
        for value in (hop.connect_timeout, self.timeout):
            if value is not None:
                return float(value)
        return DEFAULT_TIMEOUT

    def open_timeout(self, hop: Hop) -> float:
        if self.channel_timeout is not None:
            return float(self.channel_timeout)
        return self.hop_timeout(hop)

    def first_socket(self, hop: Hop) -> Any:
        if hop.proxy_command is not None:
            from paramiko.proxy import ProxyCommand

            return ProxyCommand(hop.proxy_command, peer=(hop.hostname, hop.port))
        return _tcp_connect(hop, self.hop_timeout(hop))

    def forward(self, index: int, previous: Any) -> Any:
        route = self.route
        hop = route.hops[index]
        t = previous.get_transport() if previous is not None else None
        limit = self.open_timeout(hop)
        if t is None or not t.is_active():
            exc = (t.get_exception() if t is not None else None) or SSHException("not connected")
            raise _gateway_lost(exc, route, index - 1)
        try:
            return t.open_channel("direct-tcpip", (hop.hostname, hop.port), _FORWARD_ORIGIN,
                                  timeout=limit)
        except ChannelException as e:
            raise _channel_error(e, route, index, limit) from e
        except SSHException as e:
            if not t.is_active():
                raise _gateway_lost(t.get_exception() or e, route, index - 1) from e
            raise _channel_error(e, route, index, limit) from e

    def connect(self, index: int, client: Any, previous: Any) -> Any:
        """Connect ``client`` to hop ``index`` (through ``previous`` unless the first)."""
        route = self.route
        hop = route.hops[index]
        is_target = index == len(route.hops) - 1
        # Asked before anything is opened, so a failing callback leaks nothing.
        extra = self.overrides(index, hop)
        sock: Any = None
        try:
            sock = self.first_socket(hop) if index == 0 else self.forward(index, previous)
        except RouteError:
            raise
        except BaseException as e:
            if not isinstance(e, Exception):
                raise
            raise _route_error(e, route, index, _phase_of(e, "tcp")) from e
        key_files = (_key_file_list(extra["key_filename"]) if "key_filename" in extra
                     else self.key_filenames if is_target else [])
        auth = _HopAuth(hop, pkey=extra.get("pkey", self.pkey if is_target else None),
                        key_filenames=key_files,
                        password=extra.get("password", self.password if is_target else None),
                        passphrase=extra.get("passphrase", self.passphrase),
                        allow_agent=bool(extra.get("allow_agent", self.allow_agent)),
                        look_for_keys=bool(extra.get("look_for_keys", self.look_for_keys)))
        saved_policy = client._policy
        try:
            self.prepare_host_keys(client, hop,
                                   extra.get("missing_host_key_policy", self.policy))
        except Exception as e:  # e.g. an unreadable or malformed known_hosts file
            _close_quietly(sock)
            client._policy = saved_policy
            auth.close()
            raise _route_error(e, route, index, "hostkey") from e
        try:
            # With a socket given, connect() uses hostname/port only to name the host key:
            # HostKeyAlias is looked up as is, else [host]:port for ports other than 22.
            if hop.host_key_alias:
                name_host, name_port = hop.host_key_alias, SSH_PORT
            else:
                name_host, name_port = hop.hostname, hop.port
            client.connect(name_host, name_port, username=hop.user, sock=sock,
                           timeout=self.hop_timeout(hop), banner_timeout=self.banner_timeout,
                           auth_timeout=self.auth_timeout,
                           channel_timeout=self.open_timeout(hop),
                           disabled_algorithms=self.disabled_algorithms, auth_strategy=auth)
        except BaseException as e:
            _close_quietly(sock)
            if not isinstance(e, Exception):
                raise
            phase = _phase_of(e, "kex")
            reason = None
            if hop.proxy_command is not None and phase in ("banner", "kex", "transport",
                                                           "proxycommand"):
                failure, tail = _proxy_outcome(sock)
                if failure:
                    phase, reason = "proxycommand", failure
                elif tail and tail not in str(e):
                    reason = f"{_reason_of(e, hop)} (ProxyCommand stderr: {tail})"
            if phase == "auth" and auth.problems:
                reason = f"{_reason_of(e, hop)}; unusable identities: {'; '.join(auth.problems)}"
            raise _route_error(e, route, index, phase, reason) from e
        finally:
            client._policy = saved_policy
            auth.close()
        t = client.get_transport()
        if t is not None:
            # Later transport errors should name the real host, not the host-key name.
            t.peer_name = hop.peer
            if hop.server_alive_interval > 0:
                t.set_server_alive(hop.server_alive_interval, hop.server_alive_count_max or 3)
        return client

    def prepare_host_keys(self, client: Any, hop: Hop, policy: Any = _NOT_GIVEN) -> None:
        if policy is _NOT_GIVEN:
            policy = self.policy
        if hop.strict_host_key_checking != "no":
            for path in _existing(list(hop.global_known_hosts_files) +
                                  list(hop.known_hosts_files)):
                client.load_system_host_keys(path)
        client._policy = policy if policy is not None else _HopPolicy(hop)


def connect_route(
    route: Route,
    *,
    client: Any = None,
    hop_connector: Optional[HopConnector] = None,
    timeout: Optional[float] = None,
    channel_timeout: Optional[float] = None,
    banner_timeout: Optional[float] = None,
    auth_timeout: Optional[float] = None,
    password: Optional[str] = None,
    pkey: Any = None,
    key_filename: Union[None, str, os.PathLike, Sequence[Union[str, os.PathLike]]] = None,
    passphrase: Optional[str] = None,
    allow_agent: bool = True,
    look_for_keys: bool = True,
    disabled_algorithms: Optional[Dict[str, Sequence[str]]] = None,
    missing_host_key_policy: Any = None,
    client_factory: Optional[Callable[[], Any]] = None,
    hop_credentials: Optional[HopCredentials] = None,
) -> SSHClient:
    """Dial ``route`` hop by hop and return the ``SSHClient`` connected to its target.

    * ``client``: the ``SSHClient`` to connect to the target (default: a new one from
      ``client_factory``, itself defaulting to ``SSHClient``). Gateways get new clients.
    * ``hop_connector``: see :data:`HopConnector`; supplies gateway clients (e.g. from a
      cache keyed by :attr:`Hop.route_key`). Clients it returns are never closed here.
    * ``timeout``: per-hop TCP connect + negotiation limit where the hop has no
      ConnectTimeout (default :data:`DEFAULT_TIMEOUT`); ``channel_timeout``: the limit for
      opening each ``direct-tcpip`` channel and later channels (default: the hop's timeout).
    * ``password``, ``pkey`` and ``key_filename`` are for the target only (like command line
      options, they do not apply to jump hosts); ``passphrase`` decrypts identity files of
      every hop; ``allow_agent=False``/``look_for_keys=False`` restrict every hop.
    * ``missing_host_key_policy`` replaces every hop's StrictHostKeyChecking decision.
    * ``hop_credentials``: see :data:`HopCredentials`; per-hop passwords, keys, key files
      and host key policies (e.g. each gateway's own password), asked at every dial.

    Closing the returned client closes the target, then the gateways it opened, last first
    (see :func:`jump_chain`). On failure every connection opened here is closed and a
    :class:`RouteError` is raised.
    """
    from paramiko.client import SSHClient

    factory = client_factory or SSHClient
    dialer = _Dialer(route, timeout=timeout, channel_timeout=channel_timeout,
                     banner_timeout=banner_timeout, auth_timeout=auth_timeout,
                     password=password, pkey=pkey, key_filename=key_filename,
                     passphrase=passphrase, allow_agent=allow_agent,
                     look_for_keys=look_for_keys, disabled_algorithms=disabled_algorithms,
                     missing_host_key_policy=missing_host_key_policy,
                     hop_credentials=hop_credentials)
    if client is not None and client.get_transport() is not None:
        client.close()
    chain = JumpChain(route)
    previous: Any = None
    try:
        for index, hop in enumerate(route.gateways):
            previous = _gateway_client(dialer, chain, index, hop, previous, factory,
                                       hop_connector)
        target = client if client is not None else factory()
        dialer.connect(len(route.hops) - 1, target, previous)
    except BaseException:
        chain.close_gateways()
        raise
    chain.target = target
    target._jump_chain = chain
    return target


def _gateway_client(dialer: _Dialer, chain: JumpChain, index: int, hop: Hop, previous: Any,
                    factory: Callable[[], Any], hop_connector: Optional[HopConnector]) -> Any:
    def dial() -> Any:
        return dialer.connect(index, factory(), previous)

    if hop_connector is None:
        gw = dial()
        chain._add_gateway(hop, gw, owned=True)
        return gw
    try:
        gw = hop_connector(hop, dial)
    except RouteError:
        raise
    except Exception as e:
        raise _route_error(e, dialer.route, index, _phase_of(e, "transport")) from e
    t = gw.get_transport() if gw is not None else None
    if t is None or not t.is_active():
        exc = (t.get_exception() if t is not None else None) or SSHException(
            "hop_connector returned a client that is not connected")
        raise _route_error(exc, dialer.route, index, "transport")
    chain._add_gateway(hop, gw, owned=False)
    return gw
