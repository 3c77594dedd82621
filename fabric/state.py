"""Fabric's global state: ``env``, ``output``, the ``fab`` option table and the connection
cache.

``env`` and ``output`` are proxies: what they read and write is looked up through a
``contextvars.ContextVar``. The main thread (and serial execution) sees the one global
dictionary, exactly like Fabric 1.x. Parallel execution runs each host's task in its own
context (see :func:`isolated_context`) holding a copy, so a change made by one host's task
leaks neither into another host's nor back into the caller's, while every host still shares
the connection cache (and with it the gateway connections).
"""

from __future__ import annotations

import contextvars
import getpass
import threading
from optparse import make_option
from typing import Any, Dict, Iterator

from fabric.utils import _AliasDict, _AttributeDict

__all__ = [
    "commands",
    "connections",  # noqa: F822 - created on first use by __getattr__
    "default_channel",
    "env",
    "env_options",
    "isolated_context",
    "output",
]

try:
    _local_user = getpass.getuser()
except Exception:  # no passwd entry and no $USER: a container corner case
    _local_user = ""


def _rc_path() -> str:
    return "~/.fabricrc"


# ---------------------------------------------------------------------------------------------
# the option table shared by ``fab --help``, the CLI parser and the env defaults
# ---------------------------------------------------------------------------------------------

#: Options of ``fab`` that set ``env`` keys (``dest`` is the key, ``default`` its default).
#: Options that only steer the CLI itself (``--list``, ``--set``...) live in ``fabric.main``.
env_options = [
    make_option("-a", "--no_agent", action="store_true", default=False,
                help="don't use the running SSH agent"),
    make_option("-A", "--forward-agent", action="store_true", default=False,
                help="forward local agent to remote end"),
    make_option("--abort-on-prompts", action="store_true", default=False,
                help="abort instead of prompting (for password, host, etc)"),
    make_option("-c", "--config", dest="rcfile", default=_rc_path(), metavar="PATH",
                help="specify location of config file to use"),
    make_option("--colorize-errors", action="store_true", default=False,
                help="Color error output"),
    make_option("-D", "--disable-known-hosts", action="store_true", default=False,
                help="do not load user known_hosts file"),
    make_option("-e", "--eagerly-disconnect", action="store_true", default=False,
                help="disconnect from hosts as soon as possible"),
    make_option("-f", "--fabfile", default="fabfile", metavar="PATH",
                help="python module file to import, e.g. '../other.py'"),
    make_option("-g", "--gateway", default=None, metavar="HOST",
                help="gateway host to connect through; a comma-separated list is a chain "
                     "dialled in order"),
    make_option("--gss-auth", dest="gss_auth", action="store_true", default=None,
                help="Use GSS-API authentication"),
    make_option("--gss-deleg", dest="gss_deleg", action="store_true", default=None,
                help="Delegate GSS-API client credentials or not"),
    make_option("--gss-kex", dest="gss_kex", action="store_true", default=None,
                help="Perform GSS-API Key Exchange and user authentication"),
    make_option("--hide", metavar="LEVELS",
                help="comma-separated list of output levels to hide"),
    make_option("-H", "--hosts", default=[],
                help="comma-separated list of hosts to operate on"),
    make_option("-i", action="append", dest="key_filename", metavar="PATH", default=None,
                help="path to SSH private key file. May be repeated."),
    make_option("-k", "--no-keys", action="store_true", default=False,
                help="don't load private key files from ~/.ssh/"),
    make_option("--keepalive", dest="keepalive", type="int", default=0, metavar="N",
                help="enables a keepalive every N seconds"),
    make_option("--linewise", action="store_true", default=False,
                help="print line-by-line instead of byte-by-byte"),
    make_option("-n", "--connection-attempts", type="int", metavar="M",
                dest="connection_attempts", default=1,
                help="make M attempts to connect before giving up"),
    make_option("--no-pty", dest="always_use_pty", action="store_false", default=True,
                help="do not use pseudo-terminal in run/sudo"),
    make_option("-p", "--password", default=None,
                help="password for use with authentication and/or sudo"),
    make_option("-P", "--parallel", dest="parallel", action="store_true", default=False,
                help="default to parallel execution method"),
    make_option("--port", default="22",
                help="SSH connection port"),
    make_option("-r", "--reject-unknown-hosts", action="store_true", default=False,
                help="reject unknown hosts"),
    make_option("--sudo-password", default=None,
                help="password for use with sudo only"),
    make_option("--system-known-hosts", default=None,
                help="load system known_hosts file before reading user known_hosts"),
    make_option("-R", "--roles", default=[],
                help="comma-separated list of roles to operate on"),
    make_option("-s", "--shell", default="/bin/bash -l -c",
                help="specify a new shell, defaults to '/bin/bash -l -c'"),
    make_option("--show", metavar="LEVELS",
                help="comma-separated list of output levels to show"),
    make_option("--skip-bad-hosts", action="store_true", default=False,
                help="skip over hosts that can't be reached"),
    make_option("--skip-unknown-tasks", action="store_true", default=False,
                help="skip over unknown tasks"),
    make_option("--ssh-config", dest="use_ssh_config", action="store_true", default=False,
                help="read the SSH config file (see --ssh-config-path) for every host and "
                     "gateway (not in Fabric 1.x)"),
    make_option("--ssh-config-path", default="~/.ssh/config", metavar="PATH",
                help="Path to SSH config file"),
    make_option("-t", "--timeout", type="float", default=10, metavar="N",
                help="set connection timeout to N seconds"),
    make_option("--banner-timeout", type="float", default=15, metavar="N",
                help="set ssh banner timeout to N seconds"),
    make_option("--auth-timeout", type="float", default=30, metavar="N",
                help="set ssh auth timeout to N seconds"),
    make_option("-T", "--command-timeout", dest="command_timeout", type="float",
                default=None, metavar="N",
                help="set remote command timeout to N seconds"),
    make_option("-u", "--user", default=_local_user,
                help="username to use when connecting to remote hosts"),
    make_option("-w", "--warn-only", action="store_true", default=False,
                help="warn, instead of abort, when commands fail"),
    make_option("-x", "--exclude-hosts", default=[], metavar="HOSTS",
                help="comma-separated list of hosts to exclude"),
    make_option("-z", "--pool-size", dest="pool_size", type="int", metavar="INT", default=0,
                help="number of concurrent processes to use in parallel mode"),
]


def _version() -> str:
    from paramiko._version import __version__

    return __version__


def _default_env() -> _AttributeDict:
    values: Dict[str, Any] = {
        "abort_exception": None,
        "again_prompt": "Sorry, try again.",
        "all_hosts": [],
        "combine_stderr": True,
        "command": None,
        "command_prefixes": [],
        "cwd": "",
        "dedupe_hosts": True,
        "default_port": "22",
        "echo_stdin": True,
        "effective_roles": [],
        "eagerly_disconnect": False,
        "host": None,
        "host_string": None,
        "lcwd": "",
        "local_user": _local_user,
        "ok_ret_codes": [0],
        "output_prefix": True,
        "passwords": {},
        "path": "",
        "path_behavior": "append",
        "port": "22",
        "prompts": {},
        "real_fabfile": None,
        "remote_interrupt": None,
        "roledefs": {},
        "shell_env": {},
        "sudo_passwords": {},
        "sudo_prefix": "sudo -S -p '%(sudo_prompt)s' ",
        "sudo_prompt": "sudo password:",
        "sudo_user": None,
        "tasks": [],
        "use_exceptions_for": _AliasDict({"network": False},
                                         aliases={"everything": ["network"]}),
        "use_shell": True,
        "use_ssh_config": False,
        "user": None,
        "version": _version(),
    }
    for option in env_options:
        values[option.dest] = _fresh(option.default)
    values["hide"] = None
    values["show"] = None
    return _AttributeDict(values)


def _fresh(value: Any) -> Any:
    """A copy of a mutable default so no two env dictionaries share a list or dict."""
    if isinstance(value, _AliasDict):
        return value.copy()
    if isinstance(value, dict):
        return type(value)(value) if type(value) is not dict else dict(value)
    if isinstance(value, list):
        return list(value)
    if isinstance(value, set):
        return set(value)
    return value


def _default_output() -> _AliasDict:
    return _AliasDict(
        {
            "status": True,
            "aborts": True,
            "warnings": True,
            "running": True,
            "stdout": True,
            "stderr": True,
            "exceptions": False,
            "debug": False,
            "user": True,
        },
        aliases={
            "everything": ["warnings", "running", "user", "output", "exceptions"],
            "output": ["stdout", "stderr"],
            "commands": ["stdout", "running"],
        },
    )


# ---------------------------------------------------------------------------------------------
# context-local proxies
# ---------------------------------------------------------------------------------------------


class _ContextDict(_AttributeDict):
    """A dict-like view of whichever dictionary the current context holds for it.

    It subclasses dict so ``isinstance(env, dict)`` holds, but keeps no items of its own:
    every operation goes to :meth:`_target`.
    """

    def __init__(self, name: str, base: dict) -> None:
        super().__init__()
        object.__setattr__(self, "_var", contextvars.ContextVar(name))
        object.__setattr__(self, "_base", base)

    def _target(self) -> dict:
        return self._var.get(self._base)

    def _reset_global(self, fresh: dict) -> None:
        """Replace the global dictionary (tests; ``fab`` runs start from defaults)."""
        base = self._base
        base.clear()
        dict.update(base, fresh)
        if isinstance(base, _AliasDict) and isinstance(fresh, _AliasDict):
            base.aliases = dict(fresh.aliases)

    # attribute access -------------------------------------------------------------------
    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        target = self._target()
        try:
            return target[key]
        except KeyError:
            pass
        try:
            return getattr(target, key)
        except AttributeError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        target = self._target()
        if key == "aliases" and isinstance(target, _AliasDict):
            target.aliases = value
        else:
            target[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self._target()[key]
        except KeyError:
            raise AttributeError(key) from None

    # the mapping protocol -------------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        return self._target()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._target()[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._target()[key]

    def __contains__(self, key: Any) -> bool:
        return key in self._target()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._target())

    def __len__(self) -> int:
        return len(self._target())

    def __repr__(self) -> str:
        return repr(self._target())

    def __eq__(self, other: Any) -> bool:
        return self._target() == other

    def __ne__(self, other: Any) -> bool:
        return self._target() != other

    __hash__ = None  # type: ignore[assignment]

    def __or__(self, other: Any) -> Any:
        return dict(self._target()) | other

    def __ior__(self, other: Any) -> _ContextDict:
        self._target().update(other)
        return self

    def __reduce__(self) -> Any:
        return (dict, (dict(self._target()),))

    def get(self, key: Any, default: Any = None) -> Any:
        return self._target().get(key, default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        return self._target().setdefault(key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        return self._target().pop(key, *default)

    def popitem(self) -> Any:
        return self._target().popitem()

    def update(self, *args: Any, **kwargs: Any) -> None:
        target = self._target()
        for key, value in dict(*args, **kwargs).items():
            target[key] = value  # item by item, so _AliasDict expands aliases

    def keys(self) -> Any:
        return self._target().keys()

    def values(self) -> Any:
        return self._target().values()

    def items(self) -> Any:
        return self._target().items()

    def copy(self) -> Any:
        target = self._target()
        if isinstance(target, _AliasDict):
            return target.copy()
        return _AttributeDict(target)

    def clear(self) -> None:
        self._target().clear()

    def first(self, *names: str) -> Any:
        for name in names:
            value = self.get(name)
            if value:
                return value
        return None


_global_env = _default_env()
_global_output = _default_output()

#: Fabric's environment: settings, the current host and per-run state.
env: Any = _ContextDict("fabric.env", _global_env)
#: Output levels (``status``, ``aborts``, ``warnings``, ``running``, ``stdout``, ``stderr``,
#: ``exceptions``, ``debug``, ``user``) and their aliases (``everything``, ``output``,
#: ``commands``).
output: Any = _ContextDict("fabric.output", _global_output)

#: Keys whose dictionaries every host shares even in parallel mode: credential caches keyed
#: per host, so sharing them cannot mix hosts up, and a gateway password typed once serves
#: every target behind it.
_SHARED_KEYS = ("passwords", "sudo_passwords")


def _copy_env(source: dict) -> _AttributeDict:
    copied = _AttributeDict()
    for key, value in source.items():
        dict.__setitem__(copied, key, value if key in _SHARED_KEYS else _fresh(value))
    return copied


def isolated_context(**env_updates: Any) -> contextvars.Context:
    """A ``contextvars.Context`` holding private copies of the current ``env`` and ``output``.

    Run a host's task with ``ctx.run(func)``: whatever it changes in ``env`` or ``output``
    stays in that context. Lists, dicts and sets are copied one level deep; ``passwords`` and
    ``sudo_passwords`` stay shared. ``env_updates`` are applied to the copy.
    """
    env_copy = _copy_env(env._target())
    env_copy.update(env_updates)
    out_copy = output._target().copy()
    ctx = contextvars.Context()

    def install() -> None:
        env._var.set(env_copy)
        output._var.set(out_copy)

    ctx.run(install)
    return ctx


def reset_to_defaults() -> None:
    """Put the global ``env`` and ``output`` back to their defaults (``fab`` startup, tests)."""
    env._reset_global(_default_env())
    output._reset_global(_default_output())


# ---------------------------------------------------------------------------------------------
# connections and channels
# ---------------------------------------------------------------------------------------------

#: Task name -> task, filled in by ``fab`` after loading the fabfile.
commands: Dict[str, Any] = {}

_connections_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    # The cache lives in fabric.network, which imports this module; create it on first use
    # so either module can be imported first.
    if name == "connections":
        with _connections_lock:
            cache = globals().get("connections")
            if cache is None:
                from fabric.network import HostConnectionCache

                cache = HostConnectionCache()
                globals()["connections"] = cache
            return cache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_channel() -> Any:
    """A new ``session`` channel on the current host's cached connection.

    A cached connection that died is dropped and dialled again once.
    """
    cache = __getattr__("connections")
    host = env.host_string
    chan = None
    for attempt in range(2):
        client = cache[host]
        transport = client.get_transport()
        if transport is not None and transport.is_active():
            try:
                chan = transport.open_session(timeout=env.timeout)
                break
            except Exception:
                if attempt or transport.is_active():
                    raise
        if attempt:
            from fabric.exceptions import NetworkError

            raise NetworkError(f"SSH session with {host} is not active", host=host,
                               phase="transport")
        cache.drop(host)
    chan.settimeout(0.1)
    chan.input_enabled = True
    return chan

