"""Host strings, the connection cache and everything needed to log in to a host.

Host strings look like ``user@host:port``; IPv6 addresses need brackets to carry a port
(``user@[::1]:2222``) and may carry a zone id (``fe80::1%eth0``).

Every connection follows a *route*, worked out by :func:`resolve_host_route` with
:mod:`paramiko.route`: the gateways to pass through (first dialled first) and the target.
Where a route comes from, in order:

1. the host's own ssh_config stanza (only with ``env.use_ssh_config``), when it says
   ``ProxyJump`` or ``ProxyCommand`` (whichever comes first, as in OpenSSH; ``none`` means
   direct). If ``env.gateway`` is set too, it is ignored for that host, with a warning;
2. ``env.gateway`` (``--gateway``): one host string, or a comma-separated chain dialled in
   the order written. A chain entry that is the target itself is dropped (a host that is
   its own gateway is connected directly);
3. otherwise the host is connected directly.

With ssh_config in use, every hop is looked up in its own stanza (HostName, Port, User,
IdentityFile, HostKeyAlias, known hosts files, StrictHostKeyChecking, ConnectTimeout,
ServerAlive*). Fabric's own settings still apply to every hop: ``env.key_filename``,
``env.key``, ``--no-agent``/``--no-keys`` and, where the hop's stanza says nothing about
StrictHostKeyChecking, the known hosts handling of ``-r``/``-D``/``--system-known-hosts``
(unknown keys accepted for the session and never saved, unless ``-r``).

Gateway connections live in :class:`HostConnectionCache` next to the targets (keyed and
shown as ``user@host:port``), so N targets behind one gateway cost one gateway login, in
serial and in parallel (threaded) execution alike. Each gateway has a lock, so no two
threads ever log in to it at the same time, and a handshake limit
(``env.gateway_handshakes``, default 8) so targets behind it (often sharing one sshd) never
see more simultaneous logins than sshd's ``MaxStartups`` tolerates.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
import threading
import time
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence, Tuple

import paramiko as ssh
from fabric.exceptions import NetworkError
from fabric.state import env, output
from fabric.utils import abort, handle_prompt_abort, output_lock, warn
from paramiko import route as _routing
from paramiko.route import Hop, Route, RouteChannelError, RouteError

__all__ = [
    "HostConnectionCache",
    "connect",
    "denormalize",
    "describe_route",
    "disconnect_all",
    "from_dict",
    "join_host_strings",
    "key_filenames",
    "key_from_env",
    "needs_host",
    "normalize",
    "normalize_to_string",
    "parse_host_string",
    "prompt_for_password",
    "resolve_host_route",
    "ssh",
    "ssh_config",
    "to_dict",
]

#: Password prompts per hop and connection before giving up with a NetworkError.
MAX_PASSWORD_PROMPTS = 3
#: Concurrent handshakes through one gateway when ``env.gateway_handshakes`` is unset.
DEFAULT_GATEWAY_HANDSHAKES = 8
HOST_PROMPT = "No hosts found. Please specify (single) host string for connection: "
_PROMPT_ABORT_WHAT = "a connection or sudo password"
# Phases worth another attempt (env.connection_attempts): the server may just be busy
# (MaxStartups drops show up as banner/kex failures) or not up yet (reboot()).
_RETRY_PHASES = ("tcp", "banner", "kex", "channel-open", "proxycommand")

# Fabric 1.x's IPv6 host-string form: brackets are needed to add a port; a zone id may follow.
_IPV6 = re.compile(r"^\[?(?P<host>[0-9A-Fa-f:.]+(?:%[\w.\-]+)?)\]?(?::(?P<port>\d+))?$")


# ---------------------------------------------------------------------------------------------
# host strings
# ---------------------------------------------------------------------------------------------


def parse_host_string(host_string: str) -> Dict[str, Optional[str]]:
    """Split ``user@host:port`` into ``{'user', 'host', 'port'}`` (missing parts are None).

    The user ends at the *last* ``@``. With more than one ``:`` the host is IPv6 and needs
    brackets to carry a port (``[::1]:2222``); a zone id (``fe80::1%eth0``) is kept.
    """
    text = "" if host_string is None else str(host_string)
    user_part, at, hostport = text.rpartition("@")
    user = user_part if at and user_part else None
    port: Optional[str]
    if hostport.startswith("[") and "]" in hostport:
        end = hostport.index("]")
        host, rest = hostport[1:end], hostport[end + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"Cannot parse host string {text!r}: unexpected {rest!r} "
                             "after ']'")
        port = rest[1:] if rest else None
    elif hostport.count(":") > 1:
        match = _IPV6.match(hostport)
        if match is None:
            raise ValueError(f"Cannot parse host string {text!r}: not an IPv6 address "
                             "(write [address]:port to give a port)")
        host, port = match.group("host"), match.group("port")
    else:
        host, _, port = hostport.partition(":")
    return {"user": user, "host": host or None, "port": port or None}


def join_host_strings(user: str, host: str, port: Optional[Any] = None) -> str:
    """``user@host:port`` (``user@[v6]:port``), or ``user@host`` without a port."""
    if port:
        shown = f"[{host}]" if ":" in (host or "") else host
        return f"{user}@{shown}:{port}"
    return f"{user}@{host}"


def normalize(host_string: str, omit_port: bool = False) -> Tuple[str, ...]:
    """``(user, host, port)`` for a host string, all strings (``(user, host)`` with
    ``omit_port``).

    * user: the host string's, else ssh_config ``User`` (only while ``env.user`` is the
      local user, as in Fabric 1.x), else ``env.user``;
    * host: ssh_config ``HostName`` when set;
    * port: the host string's, else ssh_config ``Port``, else ``env.port``, else
      ``env.default_port``.

    ssh_config is consulted only when ``env.use_ssh_config`` is true.
    """
    if not host_string:
        return ("", "") if omit_port else ("", "", "")
    parsed = parse_host_string(host_string)
    host = parsed["host"] or ""
    local_user = env.get("local_user")
    user = env.get("user") or local_user or ""
    conf = ssh_config(host_string)
    if user == local_user and conf.get("user"):
        user = conf["user"]
    if conf.get("hostname"):
        host = conf["hostname"]
    user = parsed["user"] or user
    if omit_port:
        return user, host
    port = (parsed["port"] or conf.get("port") or env.get("port")
            or env.get("default_port") or "22")
    return user, host, str(port)


def normalize_to_string(host_string: str) -> str:
    """:func:`normalize`, joined back into ``user@host:port``."""
    return join_host_strings(*normalize(host_string))


def denormalize(host_string: str) -> str:
    """The short form of a host string: without the user when it is ``env.user`` and
    without port 22."""
    parsed = parse_host_string(host_string)
    user = parsed["user"]
    prefix = f"{user}@" if user is not None and user != env.get("user") else ""
    port = parsed["port"]
    suffix = f":{port}" if port is not None and port != "22" else ""
    host = parsed["host"] or ""
    if suffix and ":" in host:
        host = f"[{host}]"
    return prefix + host + suffix


def to_dict(host_string: str) -> Dict[str, str]:
    """``{'user', 'host', 'port', 'host_string'}`` (normalized parts, the string as given)."""
    user, host, port = normalize(host_string)
    return {"user": user, "host": host, "port": port, "host_string": host_string}


def from_dict(arg: Dict[str, Any]) -> str:
    """The normalized host string of a :func:`to_dict`-style mapping."""
    return join_host_strings(arg["user"], arg["host"], arg["port"])


# ---------------------------------------------------------------------------------------------
# ssh_config and keys
# ---------------------------------------------------------------------------------------------

_config_lock = threading.Lock()
# expanded path -> (file signature, parsed SSHConfig or None): re-read when the file changes
_config_cache: Dict[str, Tuple[Tuple[int, int, int], Any]] = {}
_once_lock = threading.Lock()
_ONCE_KEY = "_network_once"


def _once(token: Hashable) -> bool:
    """True the first time ``token`` is seen in this run.

    The record lives in the global env (not a module global), so resetting Fabric's state
    (a new ``fab`` run, a test) starts afresh, and parallel hosts share it.
    """
    base = env._base
    with _once_lock:
        seen = base.get(_ONCE_KEY)
        if not isinstance(seen, set):
            seen = set()
            dict.__setitem__(base, _ONCE_KEY, seen)
        if token in seen:
            return False
        seen.add(token)
        return True


def _config_object() -> Any:
    """The parsed ``env.ssh_config_path`` (None when unused or unreadable)."""
    if not env.get("use_ssh_config"):
        return None
    path = os.path.expanduser(str(env.get("ssh_config_path") or "~/.ssh/config"))
    try:
        st = os.stat(path)
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        if _once(("ssh_config", path)):
            warn(f"Unable to load SSH config file '{path}'")
        return None
    with _config_lock:
        cached = _config_cache.get(path)
    if cached is not None and cached[0] == signature:
        return cached[1]
    config = None
    try:
        config = ssh.SSHConfig.from_path(path)
    except OSError:
        if _once(("ssh_config", path, signature)):
            warn(f"Unable to load SSH config file '{path}'")
    except Exception as e:  # a syntax error: say which line, then go on without the file
        if _once(("ssh_config", path, signature)):
            warn(f"Unable to load SSH config file '{path}': {e}")
    with _config_lock:
        _config_cache[path] = (signature, config)
    return config


def ssh_config(host_string: Optional[str] = None) -> Dict[str, Any]:
    """The ssh_config options for ``host_string`` (default ``env.host_string``).

    ``{}`` unless ``env.use_ssh_config``. The file (``env.ssh_config_path``) is parsed
    again whenever that path or the file changes.
    """
    config = _config_object()
    if config is None:
        return {}
    text = host_string if host_string is not None else env.get("host_string")
    if not text:
        return {}
    host = parse_host_string(text)["host"]
    if not host:
        return {}
    try:
        return config.lookup(host)
    except Exception as e:  # e.g. a failing "Match exec"
        if _once(("ssh_config-lookup", host, str(e))):
            warn(f"ssh_config lookup for {host!r} failed: {e}")
        return {}


def _env_key_files() -> List[str]:
    keys = env.get("key_filename")
    if keys is None or isinstance(keys, (str, os.PathLike)):
        keys = [keys]
    return [os.path.expanduser(os.fspath(k)) for k in keys if k]


def key_filenames(host_string: Optional[str] = None) -> List[str]:
    """``env.key_filename`` as a list, plus the ssh_config IdentityFile entries of
    ``host_string`` (default ``env.host_string``), ``~`` expanded.

    Connections use ``env.key_filename`` for every hop and each hop's own IdentityFile.
    """
    keys = _env_key_files()
    conf = ssh_config(host_string)
    extra = conf.get("identityfile") or []
    if isinstance(extra, str):
        extra = [extra]
    return keys + [os.path.expanduser(k) for k in extra if str(k).lower() != "none"]


def key_from_env(passphrase: Optional[str] = None) -> Any:
    """The private key held as text in ``env.key`` (Ed25519, ECDSA or RSA), or None."""
    from io import StringIO

    text = env.get("key")
    if not text:
        return None
    for cls in (ssh.Ed25519Key, ssh.ECDSAKey, ssh.RSAKey, getattr(ssh, "DSSKey", None)):
        if cls is None:
            continue
        try:
            return cls.from_private_key(StringIO(text), password=passphrase)
        except Exception:  # wrong type (or passphrase): try the next kind
            continue
    return None


# ---------------------------------------------------------------------------------------------
# prompts
# ---------------------------------------------------------------------------------------------


def _password_prompt(prompt: str, stream: Any) -> str:
    import getpass

    return getpass.getpass(prompt, stream)


def _ask_nonempty(prompt: str, stream: Any) -> str:
    """Ask until the answer is not empty (the caller holds ``output_lock``)."""
    try:
        answer = _password_prompt(prompt, stream)
        while not answer:
            stream.write("An empty password cannot be used; please enter it again.\n")
            stream.flush()
            answer = _password_prompt(prompt, stream)
    except EOFError:
        try:
            stream.write("\n")
            stream.flush()
        except Exception:
            pass
        abort(f"No password given (end of input at the prompt {prompt.strip()!r})")
    return answer


def prompt_for_password(prompt: Optional[str] = None, no_colon: bool = False,
                        stream: Any = None) -> str:
    """Ask for a password with getpass; empty answers are asked again.

    The default prompt is ``[host_string] Login password for 'user': ``; ``no_colon``
    leaves off the trailing ``": "``. ``stream`` defaults to stderr. Aborts instead when
    ``env.abort_on_prompts`` is set, and on end of input.
    """
    handle_prompt_abort(_PROMPT_ABORT_WHAT)
    stream = stream or sys.stderr
    text = prompt if prompt is not None else \
        f"[{env.get('host_string')}] Login password for '{env.get('user')}'"
    if not no_colon:
        text += ": "
    with output_lock:
        return _ask_nonempty(text, stream)


def needs_host(func: Callable[..., Any]) -> Callable[..., Any]:
    """Make ``func`` ask for a host string (and apply it to env) when none is set."""

    @functools.wraps(func)
    def host_prompting_wrapper(*args: Any, **kwargs: Any) -> Any:
        while not env.get("host_string"):
            handle_prompt_abort("the target host connection string")
            with output_lock:
                try:
                    answer = input(HOST_PROMPT)
                except EOFError:
                    sys.stderr.write("\n")
                    abort("No host string given (end of input)")
            try:
                env.update(to_dict(answer.strip()))
            except ValueError as e:
                warn(str(e))
        return func(*args, **kwargs)

    host_prompting_wrapper.undecorated = func  # type: ignore[attr-defined]
    return host_prompting_wrapper


# ---------------------------------------------------------------------------------------------
# routes
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _RoutePlan:
    """A resolved route plus what Fabric adds: where it came from and per-hop policies."""

    host_string: str
    route: Route
    gateway_setting: Optional[str] = None
    ignored: List[str] = dataclasses.field(default_factory=list)  # warned once per host
    notes: List[str] = dataclasses.field(default_factory=list)
    # per hop: Fabric's unknown-host-key policy, or None for the hop's StrictHostKeyChecking
    policies: List[Any] = dataclasses.field(default_factory=list)
    target_label: str = ""

    def index_of(self, hop: Hop) -> int:
        for i, candidate in enumerate(self.route.hops):
            if candidate.route_key == hop.route_key:
                return i
        raise ValueError(f"{hop.display} is not a hop of {self.route}")

    def label(self, index: int) -> str:
        """How prompts name hop ``index``."""
        if index == len(self.route) - 1:
            return self.target_label
        return self.route.hops[index].display


def _float_setting(name: str, default: float) -> float:
    value = env.get(name)
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _int_setting(name: str, default: int, minimum: int = 1) -> int:
    value = env.get(name)
    try:
        number = int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        number = default
    return max(minimum, number)


def _hostport_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _own_route(config: Any, alias: str) -> Optional[Tuple[str, str, str]]:
    """``(kind, value, origin)`` when the alias's stanza says ProxyJump/ProxyCommand
    (``none`` included), else None."""
    if config is None:
        return None
    try:
        opts = config.lookup(alias)
    except Exception:
        return None  # resolve_route reports the lookup failure itself
    if "proxyjump" not in opts and "proxycommand" not in opts:
        return None
    effective = opts.effective_proxy() if hasattr(opts, "effective_proxy") else None
    if effective is None:
        kind = "ProxyJump" if "proxyjump" in opts else "ProxyCommand"
        key, value = kind.lower(), "none"
    else:
        key, value = effective
        kind = "ProxyJump" if key == "proxyjump" else "ProxyCommand"
    found = opts.origin(key) if hasattr(opts, "origin") else None
    origin = f" ({found[0]} line {found[1]})" if found else ""
    return kind, str(value), origin


def _gateway_entries(setting: str, config: Any) -> List[Tuple[str, Tuple[str, str, int]]]:
    """``env.gateway`` as ``(jump spec, (user, hostname, port))`` per entry, in dial order.

    User and port follow Fabric's rules for host strings (the entry's own, else ssh_config,
    else ``env.user``), except that the port falls back to ``env.default_port`` rather than
    ``env.port``: during a task ``env.port`` is the *target's* port.
    """
    out = []
    for raw in setting.split(","):
        text = raw.strip()
        if not text:
            continue
        try:
            parsed = parse_host_string(text)
        except ValueError as e:
            raise NetworkError(f"Bad env.gateway entry {text!r}: {e}", phase="config") from e
        alias = parsed["host"]
        if not alias:
            raise NetworkError(f"Bad env.gateway entry {text!r}: no host", phase="config")
        conf: Dict[str, Any] = {}
        if config is not None:
            try:
                conf = config.lookup(alias)
            except Exception:
                conf = {}
        local_user = env.get("local_user")
        user = env.get("user") or local_user or ""
        if user == local_user and conf.get("user"):
            user = conf["user"]
        user = parsed["user"] or user
        port_text = parsed["port"] or conf.get("port") or env.get("default_port") or "22"
        try:
            port = int(port_text)
        except ValueError:
            raise NetworkError(f"Bad port {port_text!r} in env.gateway entry {text!r}",
                               phase="config") from None
        hostname = str(conf.get("hostname") or alias)
        spec = f"{user}@{_hostport_text(alias, port)}" if user else _hostport_text(alias, port)
        out.append((spec, (user, hostname, port)))
    return out


def _plan_route(host_string: str, seek_gateway: bool = True) -> _RoutePlan:
    text = "" if host_string is None else str(host_string)
    try:
        parsed = parse_host_string(text)
    except ValueError as e:
        raise NetworkError(str(e), e, host=text, phase="config") from e
    alias = parsed["host"]
    if not alias:
        raise NetworkError(f"No host to connect to in host string {text!r}", host=text,
                           phase="config")
    user, host, port_text = normalize(text)
    try:
        port = int(port_text)
    except ValueError:
        raise NetworkError(f"Bad port {port_text!r} for host {text!r}", host=text,
                           phase="config") from None
    config = _config_object()
    own = _own_route(config, alias)
    setting = str(env.get("gateway") or "").strip() if seek_gateway else ""
    plan_ignored: List[str] = []
    plan_notes: List[str] = []
    entries: List[Tuple[str, Tuple[str, str, int]]] = []
    proxy_jump: Optional[str] = None
    if not seek_gateway:
        proxy_jump = "none"
    elif setting:
        if own is None:
            entries = _gateway_entries(setting, config)
            for i, (_spec, key) in enumerate(entries):
                if key == (user, host, port):
                    # fabric#1165: a host that is (in) its own gateway chain goes direct
                    plan_notes.append(f"env.gateway entry {i + 1} is the target itself; "
                                      "the hops from it on are skipped")
                    entries = entries[:i]
                    break
            proxy_jump = ",".join(spec for spec, _ in entries) or "none"
    try:
        route = _routing.resolve_route(alias, config, user=user or None, port=port,
                                       proxy_jump=proxy_jump,
                                       local_user=env.get("user") or env.get("local_user"))
    except RouteError as e:
        raise NetworkError(f"Cannot work out a route to {text}: {e.reason}", e, host=text,
                           phase="config") from e
    if setting and seek_gateway and own is not None:
        kind, value, origin = own
        if kind == "ProxyCommand" and route.proxy_command is not None:
            value = route.proxy_command  # as run: tokens expanded with the runtime values
        plan_ignored.append(
            f"{text}: using the ssh_config {kind} {value!r}{origin} of this host; "
            f"env.gateway {setting!r} was ignored for it")
    hops = list(route.hops)
    # Say where each hop came from in Fabric's terms.
    if entries:
        first = len(hops) - 1 - len(entries)
        for n in range(len(entries)):
            where = f"env.gateway {setting!r}"
            if len(entries) > 1:
                where += f" (entry {n + 1} of {len(entries)})"
            hop = hops[first + n]
            extra = hop.source.partition("; ")[2]
            hops[first + n] = dataclasses.replace(
                hop, source=where + (f"; {extra}" if extra else ""))
    target = hops[-1]
    extra = target.source.partition("; ")[2]
    source = f"host string {text!r}"
    if target.hostname != alias:
        source += f" (HostName {target.hostname} from ssh_config)"
    hops[-1] = dataclasses.replace(target, source=source + (f"; {extra}" if extra else ""))
    policies: List[Any] = []
    for i, hop in enumerate(hops):
        hop, policy = _fabric_host_keys(hop, config)
        hops[i] = hop
        policies.append(policy)
    route = Route(tuple(hops))
    target_display = route.target.display
    label = text if text and normalize_to_string(text) == target_display else target_display
    return _RoutePlan(host_string=text, route=route, gateway_setting=setting or None,
                      ignored=plan_ignored, notes=plan_notes, policies=policies,
                      target_label=label)


def _fabric_host_keys(hop: Hop, config: Any) -> Tuple[Hop, Any]:
    """Apply Fabric's known-hosts options to a hop whose stanza does not set
    StrictHostKeyChecking; returns the hop and the policy for unknown keys (None: the
    hop's own StrictHostKeyChecking decides)."""
    opts: Any = {}
    if config is not None:
        try:
            opts = config.lookup(hop.alias)
        except Exception:
            opts = {}
    if "stricthostkeychecking" in opts:
        return hop, None
    if env.get("disable_known_hosts"):
        user_files: Tuple[str, ...] = ()
    elif "userknownhostsfile" in opts:
        user_files = hop.known_hosts_files
    else:
        user_files = ("~/.ssh/known_hosts",)
    global_files: Tuple[str, ...] = ()
    if "globalknownhostsfile" in opts:
        global_files = hop.global_known_hosts_files
    system = env.get("system_known_hosts")
    if system:
        global_files = (os.path.expanduser(str(system)),) + global_files
    hop = dataclasses.replace(hop, known_hosts_files=user_files,
                              global_known_hosts_files=global_files,
                              strict_host_key_checking="yes")
    policy = ssh.RejectPolicy() if env.get("reject_unknown_hosts") else ssh.AutoAddPolicy()
    return hop, policy


def resolve_host_route(host_string: Optional[str] = None) -> Tuple[Route, List[str]]:
    """The :class:`paramiko.route.Route` used to reach ``host_string`` (default
    ``env.host_string``) and the warnings a connection prints about settings it ignored
    (``env.gateway`` overridden by the host's own ssh_config route). Raises NetworkError
    (phase ``config``) for a route that cannot be built (a loop, a bad ProxyJump entry...).
    """
    plan = _plan_route(host_string if host_string is not None else env.get("host_string"))
    return plan.route, list(plan.ignored)


def describe_route(host_string: str) -> str:
    """Human-readable lines for ``fab --show-route``: each hop in dial order as
    ``user@host:port`` and the setting it came from, plus any setting that was ignored."""
    plan = _plan_route(host_string)
    route = plan.route
    last = len(route) - 1
    lines = [f"Route to {plan.host_string} ({route.target.display}):"]
    for i, hop in enumerate(route.hops):
        role = "target " if i == last else "gateway"
        line = f"  {i + 1}. {role} {hop.display}"
        if hop.alias != hop.hostname:
            line += f" (alias {hop.alias})"
        if hop.proxy_command is not None:
            line += f" via ProxyCommand {hop.proxy_command!r}"
        line += f"  [{hop.source}]"
        lines.append(line)
    if last == 0 and route.proxy_command is None:
        own = _own_route(_config_object(), route.target.alias)
        if own is not None and own[1].lower() == "none":
            why = f"ssh_config {own[0]} none{own[2]}"
        elif own is None and plan.gateway_setting:
            why = f"env.gateway {plan.gateway_setting!r} starts with the target itself"
        else:
            why = "no env.gateway and no ssh_config ProxyJump/ProxyCommand applies"
        lines.append(f"  direct connection ({why})")
    for text in plan.ignored:
        lines.append(f"  ignored: {text}")
    for text in plan.notes:
        lines.append(f"  note: {text}")
    return "\n".join(lines)


def _announce(plan: _RoutePlan) -> None:
    for text in plan.ignored:
        if _once(("route-warning", plan.route.target.display, text)):
            warn(text)


# ---------------------------------------------------------------------------------------------
# dialling
# ---------------------------------------------------------------------------------------------


class _Attempt:
    """State of one connect_route call: the handshake slot held, passwords offered, and
    an exception of ours that connect_route wrapped (to re-raise it unchanged)."""

    def __init__(self) -> None:
        self.raised: Optional[BaseException] = None
        self.slot: Optional[threading.BoundedSemaphore] = None
        self.offered: Dict[int, Optional[str]] = {}

    def release(self) -> None:
        slot, self.slot = self.slot, None
        if slot is not None:
            slot.release()


def _new_client() -> Any:
    return ssh.SSHClient()


def _hop_password(plan: _RoutePlan, index: int) -> Optional[str]:
    from fabric.auth import get_password

    hop = plan.route.hops[index]
    # Gateways never get env.password: it is the targets' fallback.
    return get_password(hop.user, hop.hostname, str(hop.port), login_only=True,
                        fallback=index == len(plan.route) - 1)


def _credentials(plan: _RoutePlan, attempt: _Attempt) -> Callable[[Hop, int], Dict[str, Any]]:
    key_files = _env_key_files()

    def for_hop(hop: Hop, index: int) -> Dict[str, Any]:
        password = _hop_password(plan, index)
        attempt.offered[index] = password
        given: Dict[str, Any] = {"password": password, "key_filename": list(key_files),
                                 "pkey": key_from_env(password)}
        if index < len(plan.policies) and plan.policies[index] is not None:
            given["missing_host_key_policy"] = plan.policies[index]
        return given

    return for_hop


def _keepalive(client: Any) -> None:
    interval = _int_setting("keepalive", 0, minimum=0)
    if not interval:
        return
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(interval)


def _alive(client: Any) -> bool:
    try:
        transport = client.get_transport()
        return transport is not None and transport.is_active()
    except Exception:
        return False


def _close_quietly(client: Any) -> None:
    try:
        client.close()
    except Exception:
        pass


def _times(n: int) -> str:
    return f"(tried {n} time{'s' if n != 1 else ''})"


def _short_socket_reason(reason: str) -> str:
    # "TCP connect to h:22 failed: 1.2.3.4: Connection refused" -> "Connection refused"
    return reason.rsplit(": ", 1)[-1] if ": " in reason else reason


def _network_error(err: RouteError, plan: _RoutePlan, tries: int) -> NetworkError:
    """The NetworkError users see for a failed hop, in Fabric 1.x's words where it had
    them, naming the gateway involved."""
    route = plan.route
    host = plan.host_string
    index = err.hop_index
    phase = _routing._PHASE_ALIASES.get(err.phase, err.phase)
    reason = err.reason or str(err)
    if index is None or index >= len(route):
        return NetworkError(f"Cannot work out a route to {host}: {reason}", err, host=host,
                            phase=phase or "config")
    last = len(route) - 1
    hop = route.hops[index]
    target = route.target
    is_gateway = index < last
    via = route.hops[index - 1] if index > 0 else None
    through = f" through gateway {via.describe()}" if via is not None else ""
    role = f" (gateway on the way to {target.display})" if is_gateway else ""
    name = f"gateway {hop.describe()}" if is_gateway else hop.hostname
    if phase == "dns":
        message = f"Name lookup failed for {hop.hostname}{role}"
    elif phase == "tcp":
        if "timed out" in reason.lower():
            message = f"Timed out trying to connect to {hop.hostname}{role} {_times(tries)}"
        else:
            message = (f"Low level socket error connecting to host {hop.hostname} on port "
                       f"{hop.port}{role}: {_short_socket_reason(reason)} {_times(tries)}")
    elif phase == "channel-open":
        gateway = via.describe() if via is not None else "?"
        if isinstance(err, RouteChannelError):
            code = getattr(err, "code", 0)
            words = _routing._CHANNEL_CODES.get(code, f"code {code}")
            detail = str(getattr(err, "text", "") or "")
            said = f"{words}: {detail}" if detail and detail.lower() != words else words
            message = (f"Could not open a channel to {hop.peer} ({said}) "
                       f"through gateway {gateway} {_times(tries)}")
        elif reason.startswith("no answer within"):
            message = (f"Timed out opening a channel to {hop.peer} through gateway "
                       f"{gateway} {_times(tries)}")
        else:
            message = (f"Could not open a channel to {hop.peer} through gateway {gateway}: "
                       f"{reason} {_times(tries)}")
    elif phase == "auth":
        if is_gateway:
            message = (f"Gateway {hop.display} refused authentication (on the way to "
                       f"{target.display}): {reason}")
        else:
            message = f"Authentication failed for {hop.display}{through}: {reason}"
    elif phase == "hostkey":
        if getattr(err, "expected_key", None) is not None:
            message = (f"Host key for {name} did not match pre-existing key! Server's key "
                       "was changed recently, or possible man-in-the-middle attack.")
        else:
            message = f"Host key of {name} refused{through}: {reason}"
    elif phase == "transport" and is_gateway:
        message = (f"Gateway {hop.describe()} lost its connection while opening a channel "
                   f"to {route.hops[index + 1].display}: {reason}")
    elif phase == "proxycommand":
        message = f"ProxyCommand for {hop.describe()} failed: {reason} {_times(tries)}"
    else:
        message = f"SSH {phase} with {name}{through} failed: {reason} {_times(tries)}"
    return NetworkError(message, err, host=host, hop=hop.display, hop_index=index,
                        phase=phase)


def _abort_if_prompts_forbidden(plan: _RoutePlan, index: int) -> None:
    if not env.get("abort_on_prompts"):
        return
    from fabric.state import isolated_context

    # The message names the hop asked about, which for a gateway is not env.host_string.
    isolated_context(host_string=plan.label(index)).run(handle_prompt_abort,
                                                        _PROMPT_ABORT_WHAT)


def _ask_for_password(plan: _RoutePlan, index: int, err: RouteError,
                      offered: Optional[str]) -> None:
    """Prompt for hop ``index``'s password (or key passphrase) and store it under that
    hop's ``user@host:port`` only."""
    hop = plan.route.hops[index]
    with output_lock:
        stored = (env.get("passwords") or {}).get(hop.display)
        if stored is not None and stored != offered:
            return  # typed in another thread while this one waited: try it first
        passphrase = "PasswordRequiredException" in (err.reason or "")
        refused = "the password was refused" if offered else "no password was known"
        if not passphrase and index < len(plan.route) - 1:
            # Before a possible abort (--abort-on-prompts), whose message gives the hop's
            # user@host:port but not that it is a gateway.
            sys.stderr.write(f"Connect error: Gateway {hop.display} refused authentication "
                             f"(on the way to {plan.route.target.display}): {refused}\n")
            sys.stderr.flush()
        _abort_if_prompts_forbidden(plan, index)
        label = plan.label(index)
        if passphrase:
            text = f"[{label}] Passphrase for private key: "
        else:
            text = f"[{label}] Login password for '{hop.user}': "
            if index == len(plan.route) - 1:
                sys.stderr.write(f"Connect error: {hop.display} did not accept the "
                                 f"credentials tried ({refused})\n")
                sys.stderr.flush()
        answer = _ask_nonempty(text, sys.stderr)
        from fabric.auth import set_password

        # Stored before the lock is let go, so a thread waiting to ask finds it.
        set_password(hop.user, hop.hostname, str(hop.port), answer)


def _pause_before_retry(err: RouteError, tries: int) -> None:
    """Fabric 1.x waited ``env.timeout`` after a refused TCP connection (so that
    ``connection_attempts`` spans about attempts x timeout, which reboot() relies on);
    timeouts already took their time. Busy servers get a short, growing pause."""
    timeout = _float_setting("timeout", 10.0)
    reason = (err.reason or "").lower()
    if err.phase == "tcp" and "timed out" not in reason:
        time.sleep(max(0.0, timeout))
    elif err.phase in ("banner", "kex", "channel-open"):
        time.sleep(min(timeout, 0.1 * tries))


def _caused_by(err: BaseException, cause: BaseException) -> bool:
    seen = 0
    current: Optional[BaseException] = err
    while current is not None and seen < 10:
        if current is cause:
            return True
        current = current.__cause__
        seen += 1
    return False


def _dial(plan: _RoutePlan, cache: HostConnectionCache) -> Any:
    """Connect ``plan``'s target through ``cache``'s gateways (dialling missing ones)."""
    route = plan.route
    last = len(route) - 1
    attempts = _int_setting("connection_attempts", 1)
    timeout = _float_setting("timeout", 10.0)
    tries = 0
    prompts = 0
    redialled = False
    while True:
        tries += 1
        attempt = _Attempt()
        try:
            client = _routing.connect_route(
                route,
                hop_connector=cache._connector(plan, attempt),
                hop_credentials=_credentials(plan, attempt),
                timeout=timeout,
                channel_timeout=timeout,
                banner_timeout=_float_setting("banner_timeout", 15.0),
                auth_timeout=_float_setting("auth_timeout", 30.0),
                allow_agent=not env.get("no_agent"),
                look_for_keys=not env.get("no_keys"),
                client_factory=_new_client,
            )
        except RouteError as e:
            attempt.release()
            if attempt.raised is not None and _caused_by(e, attempt.raised):
                raise attempt.raised from None
            index = e.hop_index
            if index == last and e.phase == "auth":
                if prompts >= MAX_PASSWORD_PROMPTS:
                    raise _network_error(e, plan, tries) from e
                _ask_for_password(plan, index, e, attempt.offered.get(index))
                prompts += 1
                tries -= 1
                continue
            if (e.phase == "transport" and index is not None and index < last
                    and not redialled):
                # A cached gateway died under us: evict it and dial it again, once.
                cache._evict_route(route.hops[index].route_key)
                redialled = True
                tries -= 1
                continue
            if index == last and e.phase in _RETRY_PHASES and tries < attempts:
                _pause_before_retry(e, tries)
                continue
            raise _network_error(e, plan, getattr(e, "_fabric_tries", tries)) from e
        except BaseException:
            attempt.release()
            raise
        attempt.release()
        _keepalive(client)
        return client


def _dial_gateway(plan: _RoutePlan, index: int, dial: Callable[[], Any],
                  attempt: _Attempt) -> Any:
    """Dial gateway ``index`` (its lock held), with retries and password prompts."""
    attempts = _int_setting("connection_attempts", 1)
    tries = 0
    prompts = 0
    while True:
        tries += 1
        try:
            client = dial()
        except RouteError as e:
            if e.hop_index != index:
                raise  # an earlier hop failed: the caller deals with it
            if e.phase == "auth":
                if prompts >= MAX_PASSWORD_PROMPTS:
                    raise _network_error(e, plan, tries) from e
                _ask_for_password(plan, index, e, attempt.offered.get(index))
                prompts += 1
                tries -= 1
                continue
            if e.phase in _RETRY_PHASES and tries < attempts:
                _pause_before_retry(e, tries)
                continue
            e._fabric_tries = tries  # type: ignore[attr-defined]
            raise
        _keepalive(client)
        return client


# ---------------------------------------------------------------------------------------------
# the cache
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Entry:
    display: str  # user@host:port
    route_key: Optional[Tuple[Hashable, ...]]  # None: stored by hand (cache[k] = client)
    depth: int = 0  # hops before it
    target: bool = False  # asked for as a host
    gateway: bool = False  # used to reach other hosts


class HostConnectionCache(dict):
    """Connected ``SSHClient`` objects keyed by normalized host string ``user@host:port``.

    Reading a missing key connects to it (``cache['web1'].exec_command(...)``); keys are
    normalized on every access. Gateways are cached beside the targets under their own
    ``user@host:port`` and reused by every target behind them. Safe to use from many
    threads: each target and gateway has a lock, so one host is never logged in to twice
    at the same time.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self._mutex = threading.RLock()
        self._meta: Dict[str, _Entry] = {}
        self._by_route: Dict[Tuple[Hashable, ...], str] = {}
        self._locks: Dict[Hashable, threading.Lock] = {}
        self._slots: Dict[Tuple[Hashable, ...], threading.BoundedSemaphore] = {}
        self._closing = threading.Lock()
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    # -- keys -------------------------------------------------------------------------------
    def _key(self, key: Any) -> str:
        if isinstance(key, str) and dict.__contains__(self, key):
            return key
        return normalize_to_string(key)

    def __getitem__(self, key: Any) -> Any:
        real = self._key(key)
        with self._mutex:
            entry = self._meta.get(real)
            client = dict.get(self, real)
        if client is not None and (entry is None or entry.target):
            # A connection of ours that died (its gateway went away, the host rebooted)
            # is dialled again; one stored by hand is returned as it is.
            if entry is None or entry.route_key is None or _alive(client):
                return client
        return self._open(key, real, force=False)

    def __setitem__(self, key: Any, value: Any) -> None:
        real = self._key(key)
        with self._mutex:
            self._forget(real)
            dict.__setitem__(self, real, value)
            self._meta[real] = _Entry(display=real, route_key=None, target=True)

    def __delitem__(self, key: Any) -> None:
        real = self._key(key)
        with self._mutex:
            dict.__delitem__(self, real)
            self._forget(real)

    def __contains__(self, key: Any) -> bool:
        try:
            return dict.__contains__(self, self._key(key))
        except ValueError:
            return False

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return dict.get(self, self._key(key), default)
        except ValueError:
            return default

    def pop(self, key: Any, *default: Any) -> Any:
        real = self._key(key)
        with self._mutex:
            value = dict.pop(self, real, *default)
            self._forget(real)
            return value

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        """Close every connection (quietly) and forget it."""
        self._close_all(announce=False)

    # -- connecting -------------------------------------------------------------------------
    def connect(self, key: str) -> Any:
        """Connect (again) to ``key`` and cache the client, replacing any cached one."""
        return self._open(key, self._key(key), force=True)

    def drop(self, key: str) -> None:
        """Close ``key``'s connection quietly and forget it, with everything connected
        through it. Unknown keys are ignored."""
        try:
            real = self._key(key)
        except ValueError:
            return
        with self._mutex:
            if not dict.__contains__(self, real):
                return
            doomed = self._take(self._dependants(real) + [real])
        for _key, client, _entry in doomed:
            _close_quietly(client)

    def _open(self, host_string: str, real: str, force: bool) -> Any:
        plan = _plan_route(host_string)
        _announce(plan)
        route_key = plan.route.key
        with self._lock_for(route_key):
            with self._mutex:
                entry = self._meta.get(real)
                client = dict.get(self, real)
                if client is not None and entry is not None and entry.route_key is not None \
                        and not _alive(client):
                    force = True  # dead: replace it (and whatever went through it)
                if client is not None and entry is not None and not entry.target:
                    if entry.route_key != route_key:
                        # A gateway that only shares the name (reached another way) keeps
                        # serving its dependants under another key.
                        self._move_aside(real)
                        client = None
                    elif not force:
                        entry.target = True  # the gateway of others is this host, too
                        return client
                if client is not None and not force:
                    return client
            if client is not None:
                self.drop(real)
            client = _dial(plan, self)
            self._store(real, client, plan.route, len(plan.route) - 1, target=True)
            return client

    # -- internals --------------------------------------------------------------------------
    def _lock_for(self, token: Hashable) -> threading.Lock:
        with self._mutex:
            lock = self._locks.get(token)
            if lock is None:
                lock = self._locks[token] = threading.Lock()
            return lock

    def _slot_for(self, route_key: Tuple[Hashable, ...]) -> threading.BoundedSemaphore:
        size = _int_setting("gateway_handshakes", DEFAULT_GATEWAY_HANDSHAKES)
        with self._mutex:
            # Keyed by size too: a changed setting takes effect (waiters keep their slot).
            slot = self._slots.get((route_key, size))
            if slot is None:
                slot = self._slots[(route_key, size)] = threading.BoundedSemaphore(size)
            return slot

    def _forget(self, real: str) -> None:
        entry = self._meta.pop(real, None)
        if entry is not None and entry.route_key is not None \
                and self._by_route.get(entry.route_key) == real:
            del self._by_route[entry.route_key]

    def _store(self, key: str, client: Any, route: Route, index: int, target: bool) -> None:
        hop = route.hops[index]
        with self._mutex:
            self._forget(key)
            dict.__setitem__(self, key, client)
            self._meta[key] = _Entry(display=hop.display, route_key=hop.route_key,
                                     depth=index, target=target, gateway=not target)
            self._by_route[hop.route_key] = key

    def _move_aside(self, real: str) -> None:
        """Re-file the gateway entry under ``real`` so a target can have that key."""
        entry = self._meta[real]
        client = dict.pop(self, real)
        self._forget(real)
        new = self._free_key(f"{entry.display} (gateway)")
        dict.__setitem__(self, new, client)
        self._meta[new] = entry
        if entry.route_key is not None:
            self._by_route[entry.route_key] = new

    def _free_key(self, base: str) -> str:
        key, n = base, 1
        while dict.__contains__(self, key):
            n += 1
            key = f"{base} #{n}"
        return key

    def _dependants(self, real: str) -> List[str]:
        entry = self._meta.get(real)
        if entry is None or entry.route_key is None:
            return []
        rk = entry.route_key
        found = []
        for key, other in self._meta.items():
            ork = other.route_key
            if key != real and ork is not None and len(ork) > len(rk) and ork[:len(rk)] == rk:
                found.append(key)
        return found

    def _take(self, keys: Sequence[str]) -> List[Tuple[str, Any, _Entry]]:
        """Remove ``keys`` (mutex held); returned in closing order (deepest first)."""
        taken = []
        for key in keys:
            if not dict.__contains__(self, key):
                continue
            entry = self._meta.get(key) or _Entry(display=key, route_key=None, target=True)
            taken.append((key, dict.pop(self, key), entry))
            self._forget(key)
        taken.sort(key=lambda item: -item[2].depth)
        return taken

    def _live_route(self, route_key: Tuple[Hashable, ...], evict_dead: bool = False) -> Any:
        with self._mutex:
            key = self._by_route.get(route_key)
            client = dict.get(self, key) if key is not None else None
            if client is None:
                return None
            if _alive(client):
                entry = self._meta.get(key)
                if entry is not None:
                    entry.gateway = True
                return client
            if not evict_dead:
                return None
            doomed = self._take(self._dependants(key) + [key])
        for _key, dead, _entry in doomed:
            _close_quietly(dead)
        return None

    def _evict_route(self, route_key: Tuple[Hashable, ...]) -> None:
        with self._mutex:
            key = self._by_route.get(route_key)
        if key is not None:
            self.drop(key)

    def _gateway_key(self, route: Route, index: int) -> str:
        hop = route.hops[index]
        with self._mutex:
            if not dict.__contains__(self, hop.display):
                return hop.display
            how = " -> ".join(h.display for h in route.hops[:index]) or "ProxyCommand"
            return self._free_key(f"{hop.display} (via {how})")

    def _connector(self, plan: _RoutePlan,
                   attempt: _Attempt) -> Callable[[Hop, Callable[[], Any]], Any]:
        last_gateway = len(plan.route) - 2

        def connector(hop: Hop, dial: Callable[[], Any]) -> Any:
            try:
                index = plan.index_of(hop)
                client = self._live_route(hop.route_key)
                if client is None:
                    with self._lock_for(hop.route_key):
                        client = self._live_route(hop.route_key, evict_dead=True)
                        if client is None:
                            client = _dial_gateway(plan, index, dial, attempt)
                            key = self._gateway_key(plan.route, index)
                            self._store(key, client, plan.route, index, target=False)
                if index == last_gateway:
                    slot = self._slot_for(hop.route_key)
                    if not slot.acquire(timeout=_slot_wait()):
                        raise NetworkError(
                            f"Timed out waiting for a free handshake slot on gateway "
                            f"{hop.describe()} (for {plan.route.target.display})",
                            host=plan.host_string, hop=hop.display, hop_index=index,
                            phase="channel-open")
                    attempt.slot = slot
                return client
            except RouteError:
                raise
            except BaseException as e:
                attempt.raised = e
                raise

        return connector

    def _close_all(self, announce: bool) -> None:
        with self._closing:
            with self._mutex:
                order = {k: i for i, k in enumerate(dict.keys(self))}
                leaves = {k for k in order
                          if not (self._meta.get(k) and self._meta[k].gateway)}
                first = self._take([k for k in order if k in leaves])
                first.sort(key=lambda item: order[item[0]])  # targets in connection order
                then = self._take([k for k in order if k not in leaves])
            for _key, client, entry in first + then:
                _close_announced(client, entry.display, announce)


def _slot_wait() -> float:
    per_login = (_float_setting("timeout", 10.0) + _float_setting("banner_timeout", 15.0)
                 + _float_setting("auth_timeout", 30.0))
    return max(60.0, 4 * per_login)


def _close_announced(client: Any, display: str, announce: bool) -> None:
    if not (announce and output.get("status", True)):
        _close_quietly(client)
        return
    try:
        label = denormalize(display)
    except ValueError:
        label = display
    head = f"Disconnecting from {label}... "
    if env.get("linewise") or env.get("parallel"):
        _close_quietly(client)
        with output_lock:
            _write_stdout(head + "done.\n")
        return
    with output_lock:
        _write_stdout(head)
        _close_quietly(client)
        _write_stdout("done.\n")


def _write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (ValueError, OSError):
        pass


# ---------------------------------------------------------------------------------------------
# module-level entry points
# ---------------------------------------------------------------------------------------------


def connect(user: str, host: str, port: Any, cache: Optional[HostConnectionCache],
            seek_gateway: bool = True) -> Any:
    """A new ``SSHClient`` logged in to ``user@host:port`` along its route.

    Gateways are taken from (and added to) ``cache``; the client itself is not cached
    (``cache.connect(key)`` does that). ``seek_gateway=False`` connects directly. Raises
    :class:`~fabric.exceptions.NetworkError`.
    """
    host_string = join_host_strings(user, host, port)
    current = env.get("host_string")
    if current:
        try:
            if normalize_to_string(current) == host_string:
                host_string = current  # its ssh_config stanza is the one that applies
        except ValueError:
            pass
    plan = _plan_route(host_string, seek_gateway=seek_gateway)
    _announce(plan)
    if cache is not None:
        return _dial(plan, cache)
    own = HostConnectionCache()
    try:
        client = _dial(plan, own)
    except BaseException:
        own.clear()
        raise
    chain = _routing.jump_chain(client)
    if chain is not None:
        # Nobody else holds these gateways: closing the client closes them too.
        chain._gateways = [(hop, gw, True) for hop, gw, _owned in chain._gateways]
    return client


def disconnect_all() -> None:
    """Close every cached connection: targets first, then gateways (longest route first),
    printing ``Disconnecting from HOST... done.`` for each when ``output.status`` is on."""
    from fabric import state

    cache = state.__dict__.get("connections")
    if cache is not None:
        cache._close_all(announce=True)
