"""OpenSSH client configuration (``ssh_config(5)``): parsing and per-host lookup.

:class:`SSHConfig` reads one or more configuration files and answers
:meth:`SSHConfig.lookup` with an :class:`SSHConfigDict`, the options that apply to one
destination. The semantics follow OpenSSH's ``ssh`` (verified against ``ssh -G`` of
OpenSSH 9.2, and against the current ``ssh_config(5)`` text where 9.2 lacks a feature).

Language
    * Lines are ``Keyword value`` or ``Keyword=value``; keywords are case-insensitive and
      appear lowercased in results. Arguments are split like OpenSSH does: double or single
      quotes group, ``\\`` escapes a quote, a backslash or (outside quotes) a space, and a
      ``#`` that starts an argument ends the line. ``ProxyCommand``, ``LocalCommand``,
      ``RemoteCommand`` and ``KnownHostsCommand`` take the rest of the line verbatim.
    * ``Host`` takes whitespace-separated patterns (``*``, ``?``, ``!`` negation; compared
      case-sensitively, as OpenSSH does; a comma is *not* a separator there).
    * ``Match`` supports ``all``, ``canonical``, ``final``, ``exec``, ``host``,
      ``originalhost``, ``user``, ``localuser``, ``localnetwork``, ``tagged``, ``command``,
      ``sessiontype`` and ``version``, each negatable with ``!`` and accepting the
      ``criterion=argument`` spelling. ``host`` tests the current HostName.
      ``Match exec`` runs through ``$SHELL -c`` (``/bin/sh`` if unset) with stdout
      discarded and a timeout (:attr:`SSHConfig.MATCH_EXEC_TIMEOUT`).
    * ``Include`` takes globs (processed in lexical order); relative paths are resolved
      against ``~/.ssh`` for user configuration (the default) or ``/etc/ssh`` for the
      system file (``from_path("/etc/ssh/ssh_config")``); see ``include_base``. It may
      appear inside ``Host``/``Match`` and then applies only when that block matches.
      Nesting is limited to 16 levels, like OpenSSH.
    * The first value obtained for an option wins. These accumulate instead, as lists:
      ``identityfile``, ``certificatefile``, ``localforward``, ``remoteforward``,
      ``dynamicforward`` (duplicates dropped), ``sendenv`` (``-pattern`` removes earlier
      names) and ``setenv`` (the first ``SetEnv`` line wins as a whole, as in OpenSSH 9.2).
    * A ``final`` criterion anywhere (even ``!final``, as in OpenSSH 9.2) or an enabled
      ``CanonicalizeHostname`` makes a second pass over the files, exactly as ssh does:
      ``Host`` then matches the (canonical) host name, ``canonical``/``final`` match, and
      options from the first pass are kept (CanonicalizeHostname, CanonicalizeMaxDots and
      CanonicalizeFallbackLocal are settled after the first pass and cannot change).

Canonicalization
    ``CanonicalizeHostname yes`` (not for hosts using ProxyJump/ProxyCommand) or
    ``always``: a name with at most ``CanonicalizeMaxDots`` dots (default 1) is tried as
    ``name.domain.`` for each ``CanonicalDomains`` entry, and a name ending in a dot as is;
    addresses are left alone. Lookups go through ``socket.getaddrinfo`` (the module global,
    looked up at call time) honouring ``AddressFamily``, each bounded by
    :attr:`SSHConfig.RESOLVE_TIMEOUT`; CNAMEs are followed per
    ``CanonicalizePermittedCNAMEs``. If nothing resolves, the name is kept, or
    :class:`~paramiko.ssh_exception.CouldNotCanonicalize` is raised with
    ``CanonicalizeFallbackLocal no``. ``none`` canonicalizes nothing and, per the current
    manual, disables ProxyJump (``result["proxyjump"] == "none"``).

Results
    Values are strings (yes/no flags are normalised to ``"yes"``/``"no"``) or lists of
    strings for the accumulating keys above. ``hostname`` is always present (the given name
    when not configured; lowercased unless it is an address, like ssh). No other defaults
    are invented: ``port`` and ``user`` appear only when configured.

    ``ProxyJump`` and ``ProxyCommand`` compete: whichever is set first wins and the other
    is absent from the result, as in ``ssh -G``.

    * ``ProxyCommand none`` gives ``result["proxycommand"] is None`` (upstream Paramiko
      compatibility) and blocks a later ProxyJump.
    * ``ProxyJump none`` gives ``result["proxyjump"] == "none"`` and blocks a later
      ProxyJump, but (as in OpenSSH) not a later ProxyCommand.
    * Use :meth:`SSHConfigDict.is_disabled` (``"proxycommand"``, ``"proxyjump"`` or any
      other key) to ask "explicitly set to none" and :meth:`SSHConfigDict.effective_proxy`
      for the proxy that applies, if any. :func:`parse_proxy_jump` splits a ProxyJump value
      into hops.

Tokens (expanded in the result, using the final host, port and user)
    * ``hostname``: ``%% %h``.
    * ``certificatefile``, ``controlpath``, ``identityagent``, ``identityfile``,
      ``revokedhostkeys``, ``userknownhostsfile`` (each file): a leading ``~``, then
      ``%% %C %d %h %i %j %k %L %l %n %p %r %u`` and ``${ENV}``.
    * ``localforward``/``remoteforward`` Unix-socket paths: the same tokens and ``${ENV}``.
    * ``remotecommand``: the same tokens. ``localcommand``: the same plus ``%T`` (always
      ``NONE``: tunnel forwarding is not supported).
    * ``knownhostscommand``: the same tokens and ``${ENV}``; ``%f %H %I %K %t`` and ``%%``
      are only known when a host key is checked and are left in place for the caller.
    * ``proxycommand``: ``%% %h %k %n %p %r``; ``proxyjump``: ``%% %h %n %p %r``. No ``~``
      expansion: the command is meant for the shell, which expands it.
    * ``Match exec`` and ``Include``: the default set, with the values known at that line.
    * ``%C`` is the SHA-1 hex of ``%l%h%p%r`` as in OpenSSH 9.2 (newer OpenSSH appends
      ``%j``; set :attr:`SSHConfig.CONNECTION_HASH_INCLUDES_JUMP`). ``%l`` is
      ``socket.gethostname()`` and ``%L`` its part before the first dot: no DNS lookup.
      ``%u``, the default ``%r`` and ``localuser`` come from ``getpass.getuser()``; ``~``
      and ``%d`` from ``os.path.expanduser("~")``.
    * An unknown token is a :class:`~paramiko.ssh_exception.ConfigParseError`; an undefined
      ``${ENV}`` drops that value (with a warning), as the manual describes.

Errors
    Malformed input raises :class:`~paramiko.ssh_exception.ConfigParseError` whose message
    starts with ``FILE line N:`` (attributes ``filename`` and ``lineno``). Unknown keywords
    are accepted and stored verbatim (upstream Paramiko compatibility).

Deviations from OpenSSH 9.2 (each on purpose): ``Match all`` after another criterion
other than canonical/final is an error (current manual); ``ProxyJump none`` counts as a
direct connection for ``CanonicalizeHostname yes``; ``ssh://`` ProxyJump hops may use
``[IPv6]``; ``Match`` arguments use the same quoting rules as other lines (9.2 did not
honour ``\\"`` there); file permissions of included files are not checked; ``~`` and ``%d``
follow ``$HOME`` rather than the password database; ``Match localnetwork``, ``tagged``,
``command``, ``sessiontype``, ``version``, ``Tag``, ``%j`` and tokens/``${ENV}`` in
``Include`` come from the current manual (9.2 lacks them). ``User`` and ``SetEnv`` values
are not token-expanded (as in 9.2).

Differences from upstream Paramiko: ``Include`` works; ``Host`` does not split on commas;
``hostname`` is lowercased; ``%%`` is expanded and ``~`` only at the start of paths (never in
ProxyCommand); true/false flags read as yes/no; ``sendenv``, ``setenv``,
``certificatefile`` and ``dynamicforward`` are lists; malformed values (ports, times,
flags, ProxyJump, Match) are errors instead of being stored.
"""

from __future__ import annotations

import getpass
import glob
import hashlib
import io
import ipaddress
import os
import re
import socket
import subprocess
import sys
import threading
from typing import (
    IO,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Set,
    Tuple,
    Union,
)

from paramiko._version import __version__
from paramiko.ssh_exception import ConfigParseError, CouldNotCanonicalize
from paramiko.util import get_logger

__all__ = [
    "SSH_PORT",
    "SSHConfig",
    "SSHConfigDict",
    "JumpHost",
    "parse_proxy_jump",
]

log = get_logger("paramiko.config")

SSH_PORT = 22

#: Deepest Include nesting accepted (OpenSSH's READCONF_MAX_DEPTH).
MAX_INCLUDE_DEPTH = 16
#: Upper bound on file inclusions a single configuration may expand to.
MAX_INCLUDE_EXPANSION = 10000

_WS = " \t\r\n\f"
_TOO_DEEP = f"Too many recursive configuration includes (Include nesting limit {MAX_INCLUDE_DEPTH})"

# --------------------------------------------------------------------------------------
# Keyword table
# --------------------------------------------------------------------------------------

_FLAG_KEYS = frozenset(
    """batchmode canonicalizefallbacklocal checkhostip clearallforwardings compression
    enableescapecommandline enablesshkeysign exitonforwardfailure forkafterauthentication
    forwardx11 forwardx11trusted gatewayports gssapiauthentication gssapidelegatecredentials
    gssapikeyexchange gssapirenewalforcesrekey gssapitrustdns hashknownhosts
    hostbasedauthentication identitiesonly kbdinteractiveauthentication
    nohostauthenticationforlocalhost passwordauthentication permitlocalcommand proxyusefdpass
    stdinnull streamlocalbindunlink tcpkeepalive visualhostkey""".split()
)
_INT_KEYS = frozenset(
    """canonicalizemaxdots connectionattempts numberofpasswordprompts serveralivecountmax
    requiredrsasize""".split()
)
_TIME_KEYS = frozenset("connecttimeout serveraliveinterval forwardx11timeout".split())
# Keywords taking exactly one argument (OpenSSH: "extra arguments at end of line").
_SINGLE_KEYS = frozenset(
    """addkeystoagent addressfamily bindaddress bindinterface canonicalizehostname
    casignaturealgorithms certificatefile ciphers controlmaster controlpath controlpersist
    dynamicforward escapechar fingerprinthash forwardagent hostbasedacceptedalgorithms
    hostkeyalgorithms hostkeyalias hostname identityagent identityfile kbdinteractivedevices
    kexalgorithms loglevel macs pkcs11provider port preferredauthentications proxyjump
    pubkeyacceptedalgorithms pubkeyauthentication requesttty revokedhostkeys
    securitykeyprovider sessiontype streamlocalbindmask stricthostkeychecking syslogfacility
    tag tunnel tunneldevice updatehostkeys user verifyhostkeydns xauthlocation""".split()
) | _FLAG_KEYS | _INT_KEYS | _TIME_KEYS
# Keywords whose value is the rest of the line, verbatim.
# Multi-state keywords where OpenSSH takes true/false as yes/no (normalised to yes/no).
_YESNO_KEYS = frozenset(
    """addkeystoagent canonicalizehostname controlmaster controlpersist forwardagent
    pubkeyauthentication requesttty stricthostkeychecking tunnel updatehostkeys
    verifyhostkeydns""".split()
) | _FLAG_KEYS
_REST_KEYS = frozenset("proxycommand localcommand remotecommand knownhostscommand".split())
# Keywords that accumulate into lists.
_LIST_KEYS = frozenset(
    """identityfile certificatefile localforward remoteforward dynamicforward sendenv
    setenv""".split()
)
_CANON_SETTLED_KEYS = frozenset(
    "canonicalizehostname canonicalizemaxdots canonicalizefallbacklocal".split()
)
_DEDUP_KEYS = frozenset(
    "identityfile certificatefile localforward remoteforward dynamicforward".split()
)
_FORWARD_ARITY = {"localforward": (2, 2), "remoteforward": (1, 2), "dynamicforward": (1, 1)}

# Deprecated spellings that OpenSSH maps onto the current keyword.
_ALIASES = {
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "hostbasedkeytypes": "hostbasedacceptedalgorithms",
    "hostbasedacceptedkeytypes": "hostbasedacceptedalgorithms",
}

_MATCH_CRITERIA = frozenset(
    """all canonical final exec host originalhost user localuser localnetwork tagged command
    sessiontype version""".split()
)

# --------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------

_DEFAULT_TOKENS = ["%%", "%C", "%d", "%h", "%i", "%j", "%k", "%L", "%l", "%n", "%p", "%r", "%u"]
# Tokens of KnownHostsCommand that only exist while a host key is being checked.
_RUNTIME_TOKENS = {"knownhostscommand": "fHIKt"}
# Keys where ${ENV} references are expanded.
_ENV_KEYS = frozenset(
    """certificatefile controlpath identityagent identityfile include knownhostscommand
    userknownhostsfile localforward remoteforward""".split()
)


def _tokens(*extra: str, tilde: bool = False) -> List[str]:
    return (["~"] if tilde else []) + list(_DEFAULT_TOKENS) + list(extra)


class _ExpandError(Exception):
    pass


class _MissingEnv(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _expand(
    value: str,
    allowed: str,
    lookup: Callable[[str], str],
    env: bool = False,
    keep: str = "",
    keep_percent: bool = False,
) -> str:
    """Expand ``%x`` tokens (``allowed`` letters) and optionally ``${NAME}`` in one scan."""
    if "%" not in value and not (env and "${" in value):
        return value
    out: List[str] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c == "%":
            if i + 1 >= n:
                raise _ExpandError(f"incomplete token at end of {value!r}")
            t = value[i + 1]
            if t == "%":
                out.append("%%" if keep_percent else "%")
            elif t in keep:
                out.append("%" + t)
            elif t in allowed:
                out.append(lookup(t))
            else:
                raise _ExpandError(f"unknown token %{t} in {value!r}")
            i += 2
        elif env and c == "$" and value.startswith("${", i):
            end = value.find("}", i + 2)
            if end < 0:
                raise _ExpandError(f"unterminated ${{ in {value!r}")
            name = value[i + 2 : end]
            if not name:
                raise _ExpandError(f"empty ${{}} in {value!r}")
            if name not in os.environ:
                raise _MissingEnv(name)
            out.append(os.environ[name])
            i = end + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _expand_tilde(path: str) -> str:
    if path.startswith("~"):
        return os.path.expanduser(path)
    return path


# --------------------------------------------------------------------------------------
# Lexing
# --------------------------------------------------------------------------------------


class _LineError(Exception):
    """A problem in one line; turned into ConfigParseError with file and line."""


def _split_args(text: str) -> List[str]:
    """Split arguments the way OpenSSH's config reader does (see module docstring)."""
    args: List[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c == "#":
            break
        buf: List[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if c == "\\" and i + 1 < n and (
                text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " ")
            ):
                buf.append(text[i + 1])
                i += 2
                continue
            if not quote and c in " \t\r\n":
                break
            if not quote and c in "'\"":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                buf.append(c)
            i += 1
        if quote:
            raise _LineError("invalid quotes")
        args.append("".join(buf))
    return args


def _pattern_regex(pattern: str, lower: bool) -> re.Pattern[str]:
    key = (pattern, lower)
    rx = _PATTERN_CACHE.get(key)
    if rx is None:
        parts = []
        for ch in pattern.lower() if lower else pattern:
            if ch == "*":
                parts.append(".*")
            elif ch == "?":
                parts.append(".")
            else:
                parts.append(re.escape(ch))
        rx = re.compile("".join(parts) + r"\Z", re.DOTALL)
        if len(_PATTERN_CACHE) < 4096:
            _PATTERN_CACHE[key] = rx
    return rx


_PATTERN_CACHE: Dict[Tuple[str, bool], re.Pattern[str]] = {}


def _match_pattern(string: str, pattern: str, lower: bool = False) -> bool:
    """OpenSSH pattern: ``*`` any run, ``?`` one character, nothing else special."""
    if lower:
        string = string.lower()
    return _pattern_regex(pattern, lower).match(string) is not None


def _match_pattern_list(string: str, patterns: str, lower: bool = False) -> bool:
    """Comma-separated pattern-list: true iff some pattern matches and no ``!`` one does."""
    positive = False
    for pat in patterns.split(","):
        negated = pat.startswith("!")
        if negated:
            pat = pat[1:]
        if _match_pattern(string, pat, lower):
            if negated:
                return False
            positive = True
    return positive


_TIME_RX = re.compile(r"(\d+)([sSmMhHdDwW]?)")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _parse_time(value: str) -> Optional[int]:
    """OpenSSH time format (``90``, ``1h30m``, ``2w``...) in seconds, or None if invalid."""
    if not value:
        return None
    pos, total = 0, 0
    while pos < len(value):
        m = _TIME_RX.match(value, pos)
        if not m:
            return None
        total += int(m.group(1)) * _TIME_UNITS[m.group(2).lower()]
        pos = m.end()
        if m.group(2) == "" and pos < len(value):
            return None
    if total > 2**31 - 1:
        return None
    return total


def _is_address(host: str) -> bool:
    """Numeric IPv4/IPv6 address (no resolver involved)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        pass
    part = r"(?:0[xX][0-9a-fA-F]+|[0-9]+)"
    return re.fullmatch(part + r"(?:\." + part + r"){0,3}", host) is not None


# --------------------------------------------------------------------------------------
# ProxyJump syntax
# --------------------------------------------------------------------------------------


class JumpHost(NamedTuple):
    """One ProxyJump hop: ``user`` and ``port`` are None when not given."""

    user: Optional[str]
    host: str
    port: Optional[int]


def _parse_port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise ValueError(f"bad port {text!r}")
    return int(text)


def _parse_hop(spec: str) -> JumpHost:
    user: Optional[str] = None
    port: Optional[int] = None
    if spec.lower().startswith("ssh://"):
        rest = spec[6:]
        if rest.endswith("/"):
            rest = rest[:-1]
        if "/" in rest or not rest:
            raise ValueError(f"bad ssh URI {spec!r}")
        if "@" in rest:
            user, rest = rest.rsplit("@", 1)
            user = user.split(";", 1)[0]
            if not user:
                raise ValueError(f"empty user in {spec!r}")
    else:
        rest = spec
        if "@" in rest:
            user, rest = rest.rsplit("@", 1)
            if not user:
                raise ValueError(f"empty user in {spec!r}")
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ValueError(f"unbalanced brackets in {spec!r}")
        host, tail = rest[1:end], rest[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise ValueError(f"garbage after address in {spec!r}")
            port = _parse_port(tail[1:])
    else:
        host, sep, tail = rest.partition(":")
        if sep:
            port = _parse_port(tail)
    if not host or any(c in host for c in " \t[]/@"):
        raise ValueError(f"bad host in {spec!r}")
    return JumpHost(user, host, port)


def parse_proxy_jump(value: str) -> List[JumpHost]:
    """Split a ProxyJump value into hops, first hop first (``[]`` for ``none``).

    Each hop is ``[user@]host[:port]`` (IPv6 as ``[addr]`` or ``[addr]:port``) or
    ``ssh://[user@]host[:port]``. Raises ValueError on malformed input.
    """
    value = value.strip()
    if value.lower() == "none":
        return []
    if not value:
        raise ValueError("empty ProxyJump")
    return [_parse_hop(part) for part in value.split(",")]


# --------------------------------------------------------------------------------------
# Parsed configuration
# --------------------------------------------------------------------------------------


class _Directive:
    __slots__ = ("key", "args", "rest", "file", "line")

    def __init__(self, key: str, args: List[str], rest: str, file: str, line: int) -> None:
        self.key = key
        self.args = args
        self.rest = rest
        self.file = file
        self.line = line


class _Criterion(NamedTuple):
    negate: bool
    name: str
    arg: Optional[str]


class _Condition:
    __slots__ = ("kind", "patterns", "criteria", "wants_final", "file", "line")

    def __init__(
        self,
        kind: str,
        file: str,
        line: int,
        patterns: Optional[List[str]] = None,
        criteria: Optional[List[_Criterion]] = None,
    ) -> None:
        self.kind = kind
        self.patterns = patterns or []
        self.criteria = criteria or []
        # OpenSSH 9.2 re-parses whenever "final" appears, even as "!final".
        self.wants_final = any(c.name == "final" for c in self.criteria)
        self.file = file
        self.line = line


class _Include:
    __slots__ = ("patterns", "file", "line", "base", "system", "files", "deferred")

    def __init__(
        self, patterns: List[str], file: str, line: int, base: Optional[str], system: bool
    ) -> None:
        self.patterns = patterns
        self.file = file
        self.line = line
        self.base = base
        self.system = system
        self.deferred = any("%" in p or "${" in p for p in patterns)
        self.files: List[_File] = []


class _File:
    __slots__ = ("name", "items", "height", "weight")

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: List[Union[_Directive, _Condition, _Include]] = []
        self.height = 1
        self.weight = 1


def _error(file: str, line: int, reason: str) -> ConfigParseError:
    err = ConfigParseError(f"{file} line {line}: {reason}")
    err.filename = file  # type: ignore[attr-defined]
    err.lineno = line  # type: ignore[attr-defined]
    err.reason = reason  # type: ignore[attr-defined]
    return err


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


class SSHConfigDict(dict):
    """The options for one host (a ``dict`` of lowercased keyword to value)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._origins: Dict[str, Tuple[str, int]] = {}

    def as_bool(self, key: str) -> bool:
        """True only for ``"yes"`` (any case); real booleans pass through."""
        val = self[key]
        if isinstance(val, bool):
            return val
        return isinstance(val, str) and val.lower() == "yes"

    def as_int(self, key: str) -> int:
        return int(self[key])

    def as_time(self, key: str) -> int:
        """A time value (``ConnectTimeout 1m``) in seconds; ValueError if malformed."""
        val = self[key]
        if isinstance(val, int):
            return val
        seconds = _parse_time(str(val))
        if seconds is None:
            raise ValueError(f"{key}: invalid time value {val!r}")
        return seconds

    def is_disabled(self, key: str) -> bool:
        """True when ``key`` was explicitly set to ``none``.

        ``ProxyCommand none`` (stored as None), ``ProxyJump none``, ``IdentityFile none``
        (every entry none), ``ControlPath none``, ``UserKnownHostsFile none``...
        """
        key = key.lower()
        if key not in self:
            return False
        val = self[key]
        if val is None:
            return key == "proxycommand"
        if isinstance(val, list):
            return bool(val) and all(str(v).lower() == "none" for v in val)
        return isinstance(val, str) and val.lower() == "none"

    def effective_proxy(self) -> Optional[Tuple[str, str]]:
        """``("proxyjump", value)``, ``("proxycommand", value)`` or None (direct)."""
        jump = self.get("proxyjump")
        if isinstance(jump, str) and jump.lower() != "none":
            return ("proxyjump", jump)
        cmd = self.get("proxycommand")
        if isinstance(cmd, str) and cmd.lower() != "none":
            return ("proxycommand", cmd)
        return None

    def jump_hosts(self) -> List[JumpHost]:
        """The ProxyJump hops in dialing order (``[]`` when none applies)."""
        jump = self.get("proxyjump")
        if not isinstance(jump, str):
            return []
        return parse_proxy_jump(jump)

    def origin(self, key: str) -> Optional[Tuple[str, int]]:
        """``(file, line)`` of the directive that supplied ``key`` (first one for lists)."""
        return self._origins.get(key.lower())


# --------------------------------------------------------------------------------------
# Lookup state
# --------------------------------------------------------------------------------------


class _Val:
    __slots__ = ("value", "file", "line")

    def __init__(self, value: Any, file: str, line: int) -> None:
        self.value = value
        self.file = file
        self.line = line


class _Local:
    """Facts about the local side, each computed at most once per lookup."""

    def __init__(self) -> None:
        self._cache: Dict[str, str] = {}

    def _get(self, name: str, fn: Callable[[], str]) -> str:
        if name not in self._cache:
            self._cache[name] = fn()
        return self._cache[name]

    @property
    def user(self) -> str:
        return self._get("user", lambda: getpass.getuser())

    @property
    def home(self) -> str:
        return self._get("home", lambda: os.path.expanduser("~"))

    @property
    def uid(self) -> str:
        return self._get("uid", lambda: str(os.getuid()) if hasattr(os, "getuid") else "0")

    @property
    def hostname(self) -> str:
        return self._get("hostname", lambda: socket.gethostname())

    @property
    def short_hostname(self) -> str:
        return self.hostname.split(".", 1)[0]


class _Context:
    def __init__(
        self,
        original: str,
        tag: Optional[str],
        command: Optional[str],
        session_type: Optional[str],
    ) -> None:
        self.original = original
        self.host = original
        self.final = False
        self.want_final = False
        self.local = _Local()
        self.tag = tag
        self.command = command
        self.session_type = session_type
        self.deferred_cache: Dict[str, _File] = {}


class _Options:
    def __init__(self) -> None:
        self.values: Dict[str, _Val] = {}
        self.lists: Dict[str, List[_Val]] = {}
        # Keys that can no longer be set (ssh fixes them between the two passes).
        self.locked: Set[str] = set()

    def raw(self, key: str) -> Any:
        v = self.values.get(key)
        return None if v is None else v.value


# --------------------------------------------------------------------------------------
# SSHConfig
# --------------------------------------------------------------------------------------


class SSHConfig:
    """An OpenSSH client configuration: ``parse`` files, then ``lookup`` hosts.

    ``include_base`` is the directory against which relative ``Include`` paths resolve;
    None means ``~/.ssh`` (user configuration, OpenSSH's rule for ``-F`` and
    ``~/.ssh/config``), expanded when the Include is read.
    """

    #: ``Keyword[ =]value`` (the keyword, then everything after one optional ``=``).
    SETTINGS_REGEX = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)(?:[ \t]*=[ \t]*|[ \t]+)(.*)$")

    #: Tokens expanded in each key's value ("~" = leading tilde). A key missing from this
    #: table (on a subclass or instance) is returned as written, without expansion.
    TOKENS_BY_CONFIG_KEY: Dict[str, List[str]] = {
        "certificatefile": _tokens(tilde=True),
        "controlpath": _tokens(tilde=True),
        "hostname": ["%%", "%h"],
        "identityagent": _tokens(tilde=True),
        "identityfile": _tokens(tilde=True),
        "include": _tokens(tilde=True),
        "knownhostscommand": _tokens(),
        "localcommand": _tokens("%T"),
        "localforward": _tokens(),
        "match-exec": _tokens(),
        "proxycommand": ["%%", "%h", "%k", "%n", "%p", "%r"],
        "proxyjump": ["%%", "%h", "%n", "%p", "%r"],
        "remotecommand": _tokens(),
        "remoteforward": _tokens(),
        "revokedhostkeys": _tokens(tilde=True),
        "userknownhostsfile": _tokens(tilde=True),
    }

    USER_INCLUDE_BASE = "~/.ssh"
    SYSTEM_INCLUDE_BASE = "/etc/ssh"
    SYSTEM_CONFIG_PATH = "/etc/ssh/ssh_config"
    #: Seconds a ``Match exec`` command may run before the lookup fails.
    MATCH_EXEC_TIMEOUT = 15.0
    #: Seconds one canonicalization name lookup may take before it counts as not found.
    RESOLVE_TIMEOUT = 5.0
    #: False: ``%C`` = SHA1(%l%h%p%r) as OpenSSH 9.2; True: SHA1(%l%h%p%r%j) as 9.6+.
    CONNECTION_HASH_INCLUDES_JUMP = False
    #: What ``Match version`` compares against.
    MATCH_VERSION = f"paramiko_{__version__}"

    def __init__(self, include_base: Optional[str] = None) -> None:
        self.include_base = include_base
        self._roots: List[_File] = []

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_text(cls, text: str, include_base: Optional[str] = None) -> SSHConfig:
        """Parse configuration text (error messages name it ``<string>``)."""
        cfg = cls(include_base=include_base)
        cfg._parse_lines(io.StringIO(text), "<string>")
        return cfg

    @classmethod
    def from_file(cls, flo: IO[Any], include_base: Optional[str] = None) -> SSHConfig:
        """Parse an open file (text or binary)."""
        cfg = cls(include_base=include_base)
        cfg.parse(flo)
        return cfg

    @classmethod
    def from_path(
        cls, path: Union[str, os.PathLike[str]], include_base: Optional[str] = None
    ) -> SSHConfig:
        """Parse the file at ``path``; ``/etc/ssh/ssh_config`` gets system Include rules."""
        path = os.fspath(path)
        system = False
        if include_base is None:
            try:
                system = os.path.realpath(path) == os.path.realpath(cls.SYSTEM_CONFIG_PATH)
            except OSError:
                system = False
        cfg = cls(include_base=cls.SYSTEM_INCLUDE_BASE if system else include_base)
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            cfg._parse_lines(fh, path, system=system)
        return cfg

    def parse(self, file_obj: IO[Any]) -> None:
        """Add the configuration read from ``file_obj`` (after anything parsed before)."""
        name = getattr(file_obj, "name", None)
        if not isinstance(name, str):
            name = "<file>"
        self._parse_lines(file_obj, name)

    def _parse_lines(self, lines: Iterable[Any], name: str, system: bool = False) -> None:
        memo: Dict[str, _File] = {}
        stack = [] if name.startswith("<") else [os.path.realpath(name)]
        root = self._parse_file(lines, name, 0, system, stack, memo)
        if root.weight > MAX_INCLUDE_EXPANSION:
            raise _error(name, 1, f"Include expands to more than {MAX_INCLUDE_EXPANSION} files")
        self._roots.append(root)

    def _parse_file(
        self,
        lines: Iterable[Any],
        name: str,
        depth: int,
        system: bool,
        stack: List[str],
        memo: Dict[str, _File],
    ) -> _File:
        f = _File(name)
        for lineno, line in enumerate(lines, 1):
            if isinstance(line, bytes):
                line = line.decode("utf-8", "surrogateescape")
            try:
                item = self._parse_line(line, name, lineno, system)
            except _LineError as exc:
                raise _error(name, lineno, str(exc)) from None
            if item is None:
                continue
            if isinstance(item, _Include) and not item.deferred:
                item.files = self._load_include(item, depth, stack, memo)
                for sub in item.files:
                    f.height = max(f.height, sub.height + 1)
                    f.weight += sub.weight
                if f.weight > MAX_INCLUDE_EXPANSION:
                    raise _error(
                        name, lineno, f"Include expands to more than {MAX_INCLUDE_EXPANSION} files"
                    )
            f.items.append(item)
        return f

    def _parse_line(
        self, line: str, name: str, lineno: int, system: bool
    ) -> Union[None, _Directive, _Condition, _Include]:
        line = line.rstrip(_WS).lstrip(_WS)
        if not line or line.startswith("#"):
            return None
        m = self.SETTINGS_REGEX.match(line)
        if m is None:
            word = re.match(r"[^\s=]*", line).group(0)  # type: ignore[union-attr]
            if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*\s*=?", line):
                raise _LineError(f'no argument after keyword "{word.lower()}"')
            raise _LineError(f"cannot parse line {line!r}")
        key, rest = m.group(1).lower(), m.group(2)
        key = _ALIASES.get(key, key)
        if not rest:
            raise _LineError(f'no argument after keyword "{key}"')
        args = _split_args(rest)  # also validates quoting for rest-of-line keywords
        if key == "host":
            if not args:
                raise _LineError("Host needs at least one pattern")
            if any(a == "" for a in args):
                raise _LineError("keyword host empty argument")
            return _Condition("host", name, lineno, patterns=args)
        if key == "match":
            return _Condition("match", name, lineno, criteria=self._parse_match(args))
        if key == "include":
            if not args:
                raise _LineError("Include needs a path")
            for a in args:
                if not a:
                    raise _LineError("Include with an empty path")
                if system and a.startswith("~"):
                    raise _LineError(f"bad include path {a} (no ~ in system configuration)")
            return _Include(args, name, lineno, self.include_base, system)
        if key in _REST_KEYS:
            if not args:
                raise _LineError(f"missing argument for {key}")
            return _Directive(key, args, rest, name, lineno)
        self._validate(key, args)
        return _Directive(key, args, rest, name, lineno)

    @staticmethod
    def _parse_match(args: List[str]) -> List[_Criterion]:
        if not args:
            raise _LineError("Match needs one or more criteria")
        crits: List[_Criterion] = []
        i = 0
        while i < len(args):
            word = args[i]
            i += 1
            negate = word.startswith("!")
            if negate:
                word = word[1:]
            arg: Optional[str] = None
            if "=" in word:
                word, arg = word.split("=", 1)
            name = word.lower()
            if name not in _MATCH_CRITERIA:
                raise _LineError(f"Unsupported Match attribute {word}")
            if name == "all":
                if arg is not None or i < len(args):
                    raise _LineError("'all' cannot be combined with other Match attributes")
                if len(crits) > 1 or (crits and crits[0].name not in ("canonical", "final")):
                    raise _LineError("'all' cannot be combined with other Match attributes")
                crits.append(_Criterion(negate, name, None))
                continue
            if name in ("canonical", "final"):
                if arg is not None:
                    raise _LineError(f"Match {name} takes no argument")
                crits.append(_Criterion(negate, name, None))
                continue
            if arg is None:
                if i >= len(args):
                    raise _LineError(f"Missing Match criteria for {name}")
                arg = args[i]
                i += 1
            if arg == "" and name not in ("tagged", "command"):
                raise _LineError(f"Missing Match criteria for {name}")
            if name == "localnetwork":
                for net in arg.split(","):
                    try:
                        ipaddress.ip_network(net, strict=True)
                    except ValueError:
                        raise _LineError(
                            f"invalid network {net!r} for Match localnetwork"
                        ) from None
            crits.append(_Criterion(negate, name, arg))
        return crits

    @staticmethod
    def _validate(key: str, args: List[str]) -> None:
        if not args or (args[0] == "" and key != "setenv"):
            raise _LineError(f"missing argument for {key}")
        if key in _SINGLE_KEYS and len(args) > 1:
            raise _LineError(f"keyword {key} extra arguments at end of line")
        if key in _FORWARD_ARITY:
            lo, hi = _FORWARD_ARITY[key]
            if not lo <= len(args) <= hi:
                raise _LineError(f"{key} needs {lo if lo == hi else f'{lo} or {hi}'} arguments")
        val = args[0]
        if key == "port":
            if not val.isdigit() or not 0 < int(val) <= 65535:
                raise _LineError(f"Bad port '{val}'")
        elif key in _INT_KEYS:
            if not val.isdigit():
                raise _LineError(f"{key}: integer expected, got {val!r}")
        elif key in _TIME_KEYS:
            if _parse_time(val) is None:
                raise _LineError(f"{key}: invalid time value {val!r}")
        elif key in _FLAG_KEYS:
            if val.lower() not in ("yes", "no", "true", "false"):
                raise _LineError(f'{key}: unsupported option "{val}" (yes or no)')
        elif key == "proxyjump" and "%" not in val:  # with tokens: checked once expanded
            try:
                parse_proxy_jump(val)
            except ValueError as exc:
                raise _LineError(f'Invalid ProxyJump "{val}": {exc}') from None
        elif key == "setenv":
            for a in args:
                if "=" not in a or a.startswith("="):
                    raise _LineError(f"Invalid SetEnv {a!r} (NAME=VALUE expected)")
        elif key == "canonicalizehostname":
            if val.lower() not in ("yes", "no", "always", "none", "true", "false"):
                raise _LineError(f'unsupported option "{val}" for canonicalizehostname')

    def _load_include(
        self, inc: _Include, depth: int, stack: List[str], memo: Dict[str, _File],
        patterns: Optional[List[str]] = None,
    ) -> List[_File]:
        files: List[_File] = []
        for path in self._include_paths(inc, inc.patterns if patterns is None else patterns):
            real = os.path.realpath(path)
            if real in stack:
                raise _error(
                    inc.file, inc.line,
                    f"recursive Include: {path} is already being read (include loop)",
                )
            if depth + 1 > MAX_INCLUDE_DEPTH:
                raise _error(inc.file, inc.line, _TOO_DEEP)
            sub = memo.get(real)
            if sub is None:
                try:
                    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                        sub = self._parse_file(
                            fh, path, depth + 1, inc.system, stack + [real], memo
                        )
                except FileNotFoundError:
                    continue
                except IsADirectoryError:
                    continue
                except OSError as exc:
                    raise _error(
                        inc.file, inc.line, f"Can't open included file {path}: {exc.strerror}"
                    ) from None
                memo[real] = sub
            if depth + sub.height > MAX_INCLUDE_DEPTH:
                raise _error(inc.file, inc.line, _TOO_DEEP)
            files.append(sub)
        return files

    def _include_paths(self, inc: _Include, patterns: List[str]) -> List[str]:
        out: List[str] = []
        for pat in patterns:
            if pat.startswith("~"):
                full = os.path.expanduser(pat)
            elif os.path.isabs(pat):
                full = pat
            else:
                base = inc.base
                if base is None:
                    base = self.SYSTEM_INCLUDE_BASE if inc.system else self.USER_INCLUDE_BASE
                full = os.path.join(os.path.expanduser(base), pat)
            matches = sorted(glob.glob(full)) if glob.has_magic(full) else [full]
            out.extend(m for m in matches if not os.path.isdir(m))
        return out

    # ---------------------------------------------------------------- introspection

    def get_hostnames(self) -> Set[str]:
        """Every ``Host`` pattern in the configuration (incl. included files, ``*``, ``!x``)."""
        names: Set[str] = set()
        seen: Set[int] = set()

        def walk(f: _File) -> None:
            if id(f) in seen:
                return
            seen.add(id(f))
            for item in f.items:
                if isinstance(item, _Condition) and item.kind == "host":
                    names.update(item.patterns)
                elif isinstance(item, _Include):
                    for sub in item.files:
                        walk(sub)

        for root in self._roots:
            walk(root)
        return names

    # ---------------------------------------------------------------- lookup

    def lookup(
        self,
        hostname: str,
        *,
        tag: Optional[str] = None,
        command: Optional[str] = None,
        session_type: Optional[str] = None,
    ) -> SSHConfigDict:
        """The options that apply to ``hostname`` (see the module docstring).

        ``tag`` acts like ``ssh -P tag``; ``command`` and ``session_type`` (``shell``,
        ``exec``, ``subsystem``, ``none``) feed ``Match command``/``Match sessiontype``.
        Raises ConfigParseError or CouldNotCanonicalize.
        """
        ctx = _Context(hostname, tag, command, session_type)
        opts = _Options()
        if tag is not None:
            opts.values["tag"] = _Val(tag, "<lookup>", 0)
        self._pass(ctx, opts)

        host = hostname
        hv = opts.values.get("hostname")
        if hv is not None:
            host = self._expand_hostname(hv, hostname)
        was_addr = _is_address(host)
        if not was_addr:
            host = host.lower()
        # Like ssh, settle the canonicalization options before the second pass: values that
        # only a second-pass block would set are ignored.
        opts.locked.update(_CANON_SETTLED_KEYS)
        mode = str(opts.raw("canonicalizehostname") or "no").lower()
        mode = {"true": "yes", "false": "no"}.get(mode, mode)
        if mode in ("yes", "always"):
            if not was_addr:
                host = self._canonicalize_host(host, opts, mode)
            ctx.want_final = True
        if ctx.want_final:
            origin = hv if hv is not None else _Val(None, "<lookup>", 0)
            # Stored as a HostName value: escape "%" so it reads back literally.
            opts.values["hostname"] = _Val(host.replace("%", "%%"), origin.file, origin.line)
            ctx.host = host
            ctx.final = True
            self._pass(ctx, opts)
        return self._build(ctx, opts, host, mode)

    @staticmethod
    def _expand_hostname(hv: _Val, host_arg: str) -> str:
        try:
            return _expand(str(hv.value), "h", lambda t: host_arg)
        except _ExpandError as exc:
            raise _error(hv.file, hv.line, f"HostName: {exc}") from None

    def _pass(self, ctx: _Context, opts: _Options) -> None:
        for root in self._roots:
            self._walk(root, ctx, opts, True, False, 0, [root.name])

    def _walk(
        self,
        f: _File,
        ctx: _Context,
        opts: _Options,
        active: bool,
        nevermatch: bool,
        depth: int,
        stack: List[str],
    ) -> None:
        for item in f.items:
            if isinstance(item, _Condition):
                if item.wants_final:
                    ctx.want_final = True
                if nevermatch:
                    active = False
                elif item.kind == "host":
                    active = self._match_host(item.patterns, ctx.host)
                else:
                    active = self._match(item, ctx, opts)
            elif isinstance(item, _Include):
                files = item.files
                if item.deferred:
                    files = self._deferred_include(item, ctx, opts, depth, stack)
                for sub in files:
                    self._walk(sub, ctx, opts, active, nevermatch or not active, depth + 1,
                               stack + [sub.name])
            elif active:
                self._apply(item, opts)

    def _deferred_include(
        self, inc: _Include, ctx: _Context, opts: _Options, depth: int, stack: List[str]
    ) -> List[_File]:
        tokens = self._token_source(ctx, opts, final=False)
        patterns = []
        for pat in inc.patterns:
            pat = _expand_tilde(pat) if not inc.system else pat
            try:
                patterns.append(_expand(pat, _DEFAULT_LETTERS, tokens, env=True))
            except _ExpandError as exc:
                raise _error(inc.file, inc.line, f"Include: {exc}") from None
            except _MissingEnv as exc:
                log.warning("%s line %d: Include: environment variable %s is not set",
                            inc.file, inc.line, exc.name)
        memo = ctx.deferred_cache
        real_stack = [os.path.realpath(s) for s in stack if not s.startswith("<")]
        return self._load_include(inc, depth, real_stack, memo, patterns=patterns)

    @staticmethod
    def _match_host(patterns: List[str], host: str) -> bool:
        active = False
        for pat in patterns:
            negated = pat.startswith("!")
            if negated:
                pat = pat[1:]
            if _match_pattern(host, pat):
                if negated:
                    return False
                active = True
        return active

    def _current_host(self, ctx: _Context, opts: _Options) -> str:
        hv = opts.values.get("hostname")
        if hv is None:
            return ctx.host
        return self._expand_hostname(hv, ctx.host)

    def _match(self, cond: _Condition, ctx: _Context, opts: _Options) -> bool:
        result = True
        for crit in cond.criteria:
            name, arg = crit.name, crit.arg
            if name == "all":
                hit = True
            elif name in ("canonical", "final"):
                hit = ctx.final
            elif not result:
                continue  # later criteria cannot change a failed match; skip side effects
            elif name == "host":
                hit = _match_pattern_list(self._current_host(ctx, opts), arg or "", True)
            elif name == "originalhost":
                hit = _match_pattern_list(ctx.original, arg or "", True)
            elif name == "user":
                ruser = opts.raw("user") or ctx.local.user
                hit = _match_pattern_list(ruser, arg or "")
            elif name == "localuser":
                hit = _match_pattern_list(ctx.local.user, arg or "")
            elif name == "localnetwork":
                hit = self._match_localnetwork(arg or "")
            elif name == "tagged":
                hit = _match_pattern_list(opts.raw("tag") or "", arg or "")
            elif name == "command":
                hit = _match_pattern_list(ctx.command or "", arg or "")
            elif name == "sessiontype":
                hit = _match_pattern_list(self._session_type(ctx, opts), arg or "")
            elif name == "version":
                hit = _match_pattern_list(self.MATCH_VERSION, arg or "")
            else:  # exec
                hit = self._match_exec(cond, arg or "", ctx, opts)
            if hit == crit.negate:
                result = False
        return result

    @staticmethod
    def _session_type(ctx: _Context, opts: _Options) -> str:
        if ctx.session_type:
            return ctx.session_type
        configured = str(opts.raw("sessiontype") or "").lower()
        if configured in ("subsystem", "none"):
            return configured
        return "exec" if ctx.command else "shell"

    @staticmethod
    def _match_localnetwork(networks: str) -> bool:
        nets = [ipaddress.ip_network(n) for n in networks.split(",")]
        for addr in _local_interface_addresses():
            for net in nets:
                if addr.version == net.version and addr in net:
                    return True
        return False

    def _match_exec(self, cond: _Condition, arg: str, ctx: _Context, opts: _Options) -> bool:
        tokens = self._token_source(ctx, opts, final=False)
        try:
            cmd = _expand(arg, _DEFAULT_LETTERS, tokens)
        except _ExpandError as exc:
            raise _error(cond.file, cond.line, f"Match exec: {exc}") from None
        if os.name == "nt":
            argv: Union[str, List[str]] = cmd
        else:
            argv = [os.environ.get("SHELL") or "/bin/sh", "-c", cmd]
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                timeout=self.MATCH_EXEC_TIMEOUT,
                shell=os.name == "nt",
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise _error(
                cond.file, cond.line,
                f"Match exec {cmd!r} did not finish within {self.MATCH_EXEC_TIMEOUT} s",
            ) from None
        except OSError as exc:
            raise _error(cond.file, cond.line, f"Match exec {cmd!r} failed: {exc}") from None
        if proc.returncode < 0:
            raise _error(
                cond.file, cond.line, f"Match exec {cmd!r} killed by signal {-proc.returncode}"
            )
        return proc.returncode == 0

    # ---------------------------------------------------------------- applying options

    @staticmethod
    def _apply(d: _Directive, opts: _Options) -> None:
        key = d.key
        values = opts.values
        if key in _REST_KEYS:
            if key == "proxycommand":
                jump = values.get("proxyjump")
                if "proxycommand" in values or (
                    jump is not None and str(jump.value).lower() != "none"
                ):
                    return
                cmd = d.rest
                values[key] = _Val(None if cmd.lower() == "none" else cmd, d.file, d.line)
            elif key not in values:
                values[key] = _Val(d.rest, d.file, d.line)
            return
        if key == "proxyjump":
            if "proxyjump" in values or "proxycommand" in values:
                return
            jump = d.args[0]
            values[key] = _Val("none" if jump.lower() == "none" else jump, d.file, d.line)
            return
        if key in _LIST_KEYS:
            lst = opts.lists.setdefault(key, [])
            if key == "sendenv":
                for name in d.args:
                    if name.startswith("-"):
                        lst[:] = [v for v in lst if not _match_pattern(v.value, name[1:])]
                    elif name:
                        lst.append(_Val(name, d.file, d.line))
            elif key == "setenv":
                if not lst:
                    lst.extend(_Val(a, d.file, d.line) for a in d.args)
            else:
                value = " ".join(d.args)
                if key in _DEDUP_KEYS and any(v.value == value for v in lst):
                    return
                lst.append(_Val(value, d.file, d.line))
            return
        if key in values or key in opts.locked:
            return
        if key in _YESNO_KEYS and d.args[0].lower() in ("yes", "true", "no", "false"):
            value = "yes" if d.args[0].lower() in ("yes", "true") else "no"
        elif key in _SINGLE_KEYS:
            value = d.args[0]
        else:
            value = " ".join(d.args)
        values[key] = _Val(value, d.file, d.line)

    # ---------------------------------------------------------------- tokens

    def _token_source(
        self, ctx: _Context, opts: _Options, final: bool, host: Optional[str] = None
    ) -> Callable[[str], str]:
        cache: Dict[str, str] = {}
        local = ctx.local

        def current_host() -> str:
            if host is not None:
                return host
            return self._current_host(ctx, opts)

        def port() -> str:
            return str(opts.raw("port") or SSH_PORT)

        def ruser() -> str:
            return str(opts.raw("user") or local.user)

        def jump() -> str:
            j = opts.raw("proxyjump")
            if not j or str(j).lower() == "none":
                return ""
            jv = opts.values["proxyjump"]
            return self._expand_value("proxyjump", jv, lookup)

        def keyalias() -> str:
            alias = opts.raw("hostkeyalias")
            if alias:
                return str(alias)
            # ssh 9.2: the original name for connection-time expansions, the current host
            # name for Match exec.
            return ctx.original if final else current_host()

        def conn_hash() -> str:
            data = local.hostname + current_host() + port() + ruser()
            if self.CONNECTION_HASH_INCLUDES_JUMP:
                data += jump()
            return hashlib.sha1(data.encode("utf-8")).hexdigest()

        producers: Dict[str, Callable[[], str]] = {
            "C": conn_hash,
            "d": lambda: local.home,
            "h": current_host,
            "i": lambda: local.uid,
            "j": jump,
            "k": keyalias,
            "L": lambda: local.short_hostname,
            "l": lambda: local.hostname,
            "n": lambda: ctx.original,
            "p": port,
            "r": ruser,
            "u": lambda: local.user,
            "T": lambda: "NONE",
        }

        def lookup(token: str) -> str:
            if token not in cache:
                cache[token] = producers[token]()
            return cache[token]

        return lookup

    def _expand_value(self, key: str, v: _Val, tokens: Callable[[str], str]) -> str:
        """Expand one stored value of ``key``; raises ConfigParseError or _MissingEnv."""
        spec = self.TOKENS_BY_CONFIG_KEY.get(key)
        if spec is None:  # a subclass or instance opted this key out of expansion
            return str(v.value)
        letters = "".join(t[1] for t in spec if t.startswith("%") and t != "%%")
        keep = _RUNTIME_TOKENS.get(key, "")
        env = key in _ENV_KEYS
        value = str(v.value)
        try:
            if key == "userknownhostsfile":
                return " ".join(
                    _expand(_expand_tilde(p), letters, tokens, env=env) for p in value.split()
                )
            if key in ("localforward", "remoteforward"):
                return " ".join(
                    _expand(a, letters, tokens, env=env) if "/" in a else a
                    for a in value.split(" ")
                )
            if "~" in spec:
                value = _expand_tilde(value)
            return _expand(value, letters, tokens, env=env, keep=keep, keep_percent=bool(keep))
        except _ExpandError as exc:
            raise _error(v.file, v.line, f"{key}: {exc}") from None

    # ---------------------------------------------------------------- result

    def _build(self, ctx: _Context, opts: _Options, host: str, mode: str) -> SSHConfigDict:
        result = SSHConfigDict()
        tokens = self._token_source(ctx, opts, final=True, host=host)

        def expand(key: str, v: _Val) -> Optional[str]:
            if key not in self.TOKENS_BY_CONFIG_KEY or key == "hostname":
                return str(v.value)
            try:
                return self._expand_value(key, v, tokens)
            except _MissingEnv as exc:
                log.warning(
                    "%s line %d: %s ignored: environment variable %s is not set",
                    v.file, v.line, key, exc.name,
                )
                return None

        for key, v in opts.values.items():
            if key == "hostname":
                continue
            if v.value is None:  # ProxyCommand none
                result[key] = None
            elif key == "proxyjump" and v.value == "none":
                result[key] = "none"
            elif key in ("identityagent", "controlpath") and str(v.value).lower() == "none":
                result[key] = v.value
            else:
                value = expand(key, v)
                if value is None:
                    continue
                if key == "proxyjump" and value != v.value:
                    try:
                        parse_proxy_jump(value)
                    except ValueError as exc:
                        reason = f'Invalid ProxyJump "{value}": {exc}'
                        raise _error(v.file, v.line, reason) from None
                result[key] = value
            result._origins[key] = (v.file, v.line)
        for key, lst in opts.lists.items():
            if not lst:
                continue
            items = []
            for v in lst:
                if key in ("identityfile", "certificatefile") and str(v.value).lower() == "none":
                    items.append(str(v.value))
                    continue
                value = expand(key, v)
                if value is not None:
                    items.append(value)
            if items:
                result[key] = items
                result._origins[key] = (lst[0].file, lst[0].line)
        if mode == "none" and isinstance(result.get("proxyjump"), str):
            result["proxyjump"] = "none"  # "CanonicalizeHostname none" disables ProxyJump
        result["hostname"] = host
        hv = opts.values.get("hostname")
        if hv is not None and hv.file != "<lookup>":
            result._origins["hostname"] = (hv.file, hv.line)
        return result

    # ---------------------------------------------------------------- canonicalization

    def _canonicalize_host(self, host: str, opts: _Options, mode: str) -> str:
        pc = opts.raw("proxycommand")
        pj = opts.raw("proxyjump")
        direct = (pc is None or str(pc).lower() == "none") and (
            pj is None or str(pj).lower() == "none"
        )
        if not direct and mode != "always":
            return host
        options = SSHConfigDict(
            {k: v.value for k, v in opts.values.items() if isinstance(v.value, str)}
        )
        if host.endswith("."):
            found = self._resolve(host, opts)
            if found is not None:
                return self._follow_cname(host[:-1], found, options)
            return self._fallback(host, options)
        try:
            max_dots = int(opts.raw("canonicalizemaxdots") or 1)
        except ValueError:
            max_dots = 1
        if host.count(".") > max_dots:
            return host
        domains = str(opts.raw("canonicaldomains") or "").split()
        return self.canonicalize(host, options, domains)

    def canonicalize(
        self, hostname: str, options: Dict[str, Any], domains: Iterable[str]
    ) -> str:
        """Try ``hostname.domain`` for each domain; return the first that resolves.

        Names are looked up as absolute (``name.domain.``) through ``socket.getaddrinfo``
        honouring ``AddressFamily``, each bounded by :attr:`RESOLVE_TIMEOUT`. CNAMEs are
        followed per ``CanonicalizePermittedCNAMEs``. When nothing resolves, the name is
        returned unchanged, or CouldNotCanonicalize is raised if
        ``CanonicalizeFallbackLocal no``.
        """
        for domain in domains:
            if domain.lower() == "none":
                break
            candidate = f"{hostname}.{domain}"
            found = self._resolve(candidate + ".", options)
            if found is not None:
                return self._follow_cname(candidate, found, options)
        return self._fallback(hostname, options)

    @staticmethod
    def _fallback(hostname: str, options: Any) -> str:
        get = options.raw if isinstance(options, _Options) else options.get
        fallback = str(get("canonicalizefallbacklocal") or "yes").lower()
        if fallback in ("no", "false"):
            raise CouldNotCanonicalize(hostname)
        return hostname

    def _resolve(self, name: str, options: Any) -> Optional[list]:
        get = options.raw if isinstance(options, _Options) else options.get
        family_name = str(get("addressfamily") or "any").lower()
        family = {"inet": socket.AF_INET, "inet6": socket.AF_INET6}.get(
            family_name, socket.AF_UNSPEC
        )
        want_cname = bool(get("canonicalizepermittedcnames"))
        box: Dict[str, Any] = {}

        def work() -> None:
            try:
                if want_cname:
                    box["ai"] = socket.getaddrinfo(
                        name, None, family, socket.SOCK_STREAM, 0, socket.AI_CANONNAME
                    )
                else:
                    box["ai"] = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
            except Exception as exc:  # noqa: BLE001 - any failure means "not found"
                box["error"] = exc

        worker = threading.Thread(target=work, name="ssh-config-resolve", daemon=True)
        worker.start()
        worker.join(self.RESOLVE_TIMEOUT)
        if worker.is_alive():
            log.debug("canonicalize: lookup of %s timed out", name)
            return None
        ai = box.get("ai")
        return list(ai) if ai else None

    @staticmethod
    def _follow_cname(name: str, addrinfo: list, options: Any) -> str:
        get = options.raw if isinstance(options, _Options) else options.get
        rules = str(get("canonicalizepermittedcnames") or "").split()
        if not rules or rules[0].lower() == "none":
            return name
        cname = ""
        for entry in addrinfo:
            if len(entry) > 3 and isinstance(entry[3], str) and entry[3]:
                cname = entry[3]
                break
        cname = cname.rstrip(".").lower()
        if not cname or cname == name.lower():
            return name
        for rule in rules:
            src, sep, dst = rule.partition(":")
            if not sep:
                continue
            if _match_pattern_list(name, src, True) and _match_pattern_list(cname, dst, True):
                return cname
        return name


_DEFAULT_LETTERS = "".join(t[1] for t in _DEFAULT_TOKENS if t != "%%")


# --------------------------------------------------------------------------------------
# Local interface addresses (Match localnetwork)
# --------------------------------------------------------------------------------------


def _local_interface_addresses() -> List[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    """Addresses of the local interfaces that are up (empty if unknown on this platform)."""
    try:
        return _getifaddrs()
    except Exception as exc:  # noqa: BLE001 - no interface list means nothing matches
        log.debug("Match localnetwork: cannot list interfaces: %s", exc)
        return []


def _getifaddrs() -> List[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    import ctypes
    import ctypes.util
    import socket as real_socket

    if os.name != "posix":
        return []
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)

    class IfAddrs(ctypes.Structure):
        pass

    IfAddrs._fields_ = [
        ("ifa_next", ctypes.POINTER(IfAddrs)),
        ("ifa_name", ctypes.c_char_p),
        ("ifa_flags", ctypes.c_uint),
        ("ifa_addr", ctypes.c_void_p),
        ("ifa_netmask", ctypes.c_void_p),
        ("ifa_ifu", ctypes.c_void_p),
        ("ifa_data", ctypes.c_void_p),
    ]
    head = ctypes.POINTER(IfAddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        return []
    bsd_layout = sys.platform.startswith(("darwin", "freebsd", "openbsd", "netbsd", "dragonfly"))
    out: List[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]] = []
    try:
        node = head
        while node:
            ifa = node.contents
            if ifa.ifa_addr and ifa.ifa_flags & 0x1:  # IFF_UP
                raw = ctypes.string_at(ifa.ifa_addr, 24)
                family = raw[1] if bsd_layout else int.from_bytes(raw[0:2], sys.byteorder)
                if family == real_socket.AF_INET:
                    out.append(ipaddress.IPv4Address(raw[4:8]))
                elif family == real_socket.AF_INET6:
                    out.append(ipaddress.IPv6Address(ctypes.string_at(ifa.ifa_addr + 8, 16)))
            node = ifa.ifa_next
    finally:
        libc.freeifaddrs(head)
    return out
