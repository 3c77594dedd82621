"""Transfer whole project directories: :func:`rsync_project` (local ``rsync`` over OpenSSH)
and :func:`upload_project` (a tarball over SFTP).

Unlike Fabric 1.x, :func:`rsync_project` reaches a host behind gateways the same way Fabric
itself does: every hop of the host's route (``env.gateway``, a comma-separated chain, or
``ProxyJump``/``ProxyCommand`` from the ssh_config when ``env.use_ssh_config``) becomes a
nested ``ssh -W`` ProxyCommand with that hop's own user, port and key files. Nothing is
needed on the gateways but sshd (Fabric 1.x ran ``nc`` there, and handled one hop only).
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import shlex
import shutil
import tarfile
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

from fabric.state import env, output
from fabric.utils import abort, apply_lcwd, output_lock, warn

__all__ = ["rsync_project", "upload_project"]

_GLOB_CHARS = re.compile(r"([*?]|\[[^\]/]*\])")
# ssh_opts ``-o`` settings that describe the destination or the session rather than how to
# talk SSH: they are not repeated for the gateway hops.
_TARGET_ONLY_OPTIONS = frozenset(
    o.lower() for o in (
        "ProxyCommand", "ProxyJump", "Port", "User", "HostName", "HostKeyAlias",
        "RemoteCommand", "RequestTTY", "SessionType", "StdinNull", "ForkAfterAuthentication",
        "LocalForward", "RemoteForward", "DynamicForward", "ForwardAgent", "ForwardX11",
        "ForwardX11Trusted", "ClearAllForwardings", "PermitLocalCommand", "LocalCommand",
        "ExitOnForwardFailure", "Tunnel", "TunnelDevice",
    )
)
# ssh_opts flags without an argument that are repeated for the gateway hops too.
_SHARED_FLAGS = frozenset(("-4", "-6", "-q", "-v", "-vv", "-vvv", "-C"))


# ---------------------------------------------------------------------------------------------
# the route, as ssh command lines
# ---------------------------------------------------------------------------------------------


@dataclass
class _Hop:
    """What an ``ssh`` command line needs to reach one server of the route."""

    user: str
    host: str  # the real address (HostName): what a gateway is asked to forward to
    port: int
    identity_files: List[str] = field(default_factory=list)
    proxy_command: Optional[str] = None  # already expanded; first hop only
    host_key_alias: Optional[str] = None
    name: str = ""  # what ssh is told to connect to (an ssh_config alias, or the address)

    def __post_init__(self) -> None:
        self.name = self.name or self.host

    @property
    def hostport(self) -> str:
        """``host:port`` as ``ssh -W`` takes it (IPv6 literals bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _env_key_files() -> List[str]:
    value = env.get("key_filename") or []
    names = [value] if isinstance(value, str) else list(value)
    return _unique(os.path.expanduser(str(n)) for n in names if n)


def _unique(items: Iterable[str]) -> List[str]:
    seen: List[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _route_for(host_string: str) -> Any:
    """The :class:`paramiko.route.Route` Fabric dials for ``host_string`` (gateways from
    env.gateway or the ssh_config, in dialling order). Settings the route ignores are
    reported the way a connection reports them; a route that cannot be built raises
    :class:`~fabric.exceptions.NetworkError` (phase ``config``)."""
    from fabric import network

    route, notes = network.resolve_host_route(host_string)
    # Same wording and the same once-per-run record as a connection's own warning, so a
    # task that both connects and rsyncs says it once.
    once = getattr(network, "_once", None)
    for note in notes:
        if once is None or once(("route-warning", route.target.display, note)):
            warn(note)
    return route


def _hops_from_route(route: Any) -> Tuple[List[_Hop], _Hop]:
    shared = _env_key_files()
    # With the ssh_config in use, ssh gets the same aliases Fabric looked up, so OpenSSH
    # applies the same stanzas; what Fabric decided (user, port, keys, proxy) is still
    # given explicitly, and the command line beats the file.
    by_alias = bool(env.get("use_ssh_config"))
    hops = []
    for index, hop in enumerate(route.hops):
        own = [os.path.expanduser(p) for p in getattr(hop, "identity_files", ()) or ()]
        # Only files that exist: ssh warns about every missing -i.
        keys = _unique(shared + [p for p in own if os.path.isfile(p)])
        hops.append(_Hop(user=hop.user, host=hop.hostname, port=int(hop.port),
                         identity_files=keys,
                         proxy_command=hop.proxy_command if index == 0 else None,
                         host_key_alias=getattr(hop, "host_key_alias", None),
                         name=hop.alias if by_alias else hop.hostname))
    return hops[:-1], hops[-1]


def _direct_target(host_string: str) -> _Hop:
    """The target alone, for ssh_opts that bring their own ProxyCommand/ProxyJump."""
    from fabric.network import key_filenames, normalize

    user, host, port = normalize(host_string)
    return _Hop(user=user, host=host, port=int(port), identity_files=_unique(key_filenames()))


def _pct(text: str) -> str:
    """Escape ``%`` for an ssh option value that undergoes token expansion."""
    return text.replace("%", "%%")


def _common_ssh_options() -> List[str]:
    """``-o`` options that make OpenSSH treat every hop the way Fabric's own connections
    would (host key policy, agent, timeouts, ssh_config file)."""
    opts: List[str] = []
    if env.get("use_ssh_config"):
        path = os.path.expanduser(str(env.get("ssh_config_path") or "~/.ssh/config"))
        if os.path.abspath(path) != os.path.abspath(os.path.expanduser("~/.ssh/config")):
            opts += ["-F", path]
    system = env.get("system_known_hosts")
    if system:
        opts += ["-o", f"GlobalKnownHostsFile={_pct(os.path.expanduser(str(system)))}"]
    if env.get("disable_known_hosts"):
        opts += ["-o", "UserKnownHostsFile=/dev/null"]
    if env.get("reject_unknown_hosts"):
        opts += ["-o", "StrictHostKeyChecking=yes"]
    elif env.get("disable_known_hosts"):
        # Fabric accepts unknown hosts but still refuses a changed key; the "new" key is
        # only written to /dev/null here.
        opts += ["-o", "StrictHostKeyChecking=accept-new"]
    if env.get("no_agent"):
        opts += ["-o", "IdentityAgent=none"]
    timeout = env.get("timeout")
    if timeout:
        opts += ["-o", f"ConnectTimeout={max(1, math.ceil(float(timeout)))}"]
    keepalive = env.get("keepalive")
    if keepalive:
        opts += ["-o", f"ServerAliveInterval={int(keepalive)}"]
    return opts


def _split_ssh_opts(ssh_opts: str) -> Tuple[List[str], bool]:
    """The parts of the user's ``ssh_opts`` that also apply to gateway hops, and whether
    ``ssh_opts`` sets its own ProxyCommand/ProxyJump (then the route is left to it)."""
    try:
        words = shlex.split(ssh_opts or "")
    except ValueError:
        return [], False
    shared: List[str] = []
    own_proxy = False
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("-o", "-F", "-i", "-J") and i + 1 < len(words):
            value = words[i + 1]
            i += 2
        elif len(word) > 2 and word[:2] in ("-o", "-F", "-i", "-J"):
            word, value = word[:2], word[2:]
            i += 1
        else:
            if word in _SHARED_FLAGS:
                shared.append(word)
            i += 1
            continue
        if word == "-J":
            own_proxy = True
        elif word == "-o":
            name = re.split(r"[\s=]", value.strip(), maxsplit=1)[0].lower()
            if name in ("proxycommand", "proxyjump"):
                own_proxy = True
            elif name not in _TARGET_ONLY_OPTIONS:
                shared += ["-o", value]
        else:
            shared += [word, value]
    return shared, own_proxy


def _hop_args(hop: _Hop, options: Sequence[str]) -> List[str]:
    args = ["-p", str(hop.port)]
    if hop.user:
        args += ["-l", hop.user]
    for key in hop.identity_files:
        args += ["-i", _pct(key)]
    if hop.host_key_alias:
        args += ["-o", f"HostKeyAlias={hop.host_key_alias}"]
    return args + list(options)


def _proxy_command(gateways: Sequence[_Hop], next_hop: _Hop, options: Sequence[str]) -> str:
    """A sh command that connects stdin/stdout to ``next_hop`` through ``gateways`` (the
    last one is ssh'ed to with ``-W``; the ones before it carry that ssh the same way).

    Every level is a complete command line of its own, quoted for the shell OpenSSH runs a
    ProxyCommand with, and %-escaped once more for each ssh that expands it on the way.
    """
    last = gateways[-1]
    args = ["ssh"] + _hop_args(last, options)
    if len(gateways) > 1:
        inner = _proxy_command(gateways[:-1], last, options)
        args += ["-o", f"ProxyCommand={_pct(inner)}"]
    elif last.proxy_command:
        args += ["-o", f"ProxyCommand={_pct(last.proxy_command)}"]
    args += ["-W", next_hop.hostport, last.name]
    return " ".join(shlex.quote(a) for a in args)


def _rsync_quote(word: str) -> str:
    """Quote one ``--rsh`` word the way rsync splits that option: it knows single and double
    quotes (a doubled quote inside is a literal one), and no backslashes."""
    if word and not re.search(r"[\s'\"]", word):
        return word
    return "'" + word.replace("'", "''") + "'"


def _rsh_words(host_string: str, ssh_opts: str) -> Tuple[List[str], _Hop]:
    """The ``ssh ...`` words of rsync's remote shell, and the target hop."""
    shared, own_proxy = _split_ssh_opts(ssh_opts)
    if own_proxy:
        gateways, target = [], _direct_target(host_string)
    else:
        gateways, target = _hops_from_route(_route_for(host_string))
    try:
        user_words = shlex.split(ssh_opts or "")
    except ValueError:
        abort(f"rsync_project() for {host_string}: cannot parse ssh_opts {ssh_opts!r} "
              "(unbalanced quotes?)")
    common = _common_ssh_options()
    # Order matters: for -o settings OpenSSH keeps the first value it sees, for -p the
    # last. The user's ssh_opts follow our -i/-p (as in Fabric 1.x) and precede the
    # settings derived from env, so anything given explicitly wins.
    words = ["ssh"]
    for key in target.identity_files:
        words += ["-i", _pct(key)]
    words += ["-p", str(target.port)]
    words += user_words
    if target.host_key_alias:
        words += ["-o", f"HostKeyAlias={target.host_key_alias}"]
    words += common
    if gateways:
        chain = _proxy_command(gateways, target, shared + common)
        words += ["-o", f"ProxyCommand={_pct(chain)}"]
    elif target.proxy_command:
        words += ["-o", f"ProxyCommand={_pct(target.proxy_command)}"]
    return words, target


# ---------------------------------------------------------------------------------------------
# rsync_project
# ---------------------------------------------------------------------------------------------


def _local_word(path: str) -> str:
    """A local path as sh words: ``~`` expanded, glob characters left active (as they were
    in Fabric 1.x, where the path went into the command unquoted), the rest quoted."""
    path = os.path.expanduser(path)
    pieces = _GLOB_CHARS.split(path)
    out = []
    for i, piece in enumerate(pieces):
        if not piece:
            continue
        out.append(piece if i % 2 else shlex.quote(piece))
    return "".join(out) or "''"


def rsync_project(remote_dir: str, local_dir: Optional[str] = None,
                  exclude: Union[str, Sequence[str]] = (), delete: bool = False,
                  extra_opts: str = "", ssh_opts: str = "", capture: bool = False,
                  upload: bool = True, default_opts: str = "-pthrvz") -> Any:
    """Synchronise ``local_dir`` with ``remote_dir`` on the current host using the local
    ``rsync`` over OpenSSH ``ssh``; returns what :func:`~fabric.operations.local` returns.

    ``local_dir`` defaults to the current directory, given as ``../<name>`` so that rsync
    creates ``<remote_dir>/<name>`` (add a trailing slash to sync a directory's contents
    instead, as with rsync itself). ``exclude`` is a pattern or a list of them; ``delete``
    adds ``--delete``; ``extra_opts`` go to rsync after ``default_opts``; ``ssh_opts`` to
    ``ssh``; ``upload=False`` copies from the remote host instead; ``capture`` is passed to
    ``local()``.

    The ssh command carries the host's port, the key files Fabric uses (``-i``), Fabric's
    host key policy (``disable_known_hosts``, ``system_known_hosts``,
    ``reject_unknown_hosts``) and the host's gateway route, hop by hop.
    """
    from fabric.operations import local

    if not env.get("host_string"):
        abort("rsync_project() needs a host: set env.host_string (or run it as a task with "
              "hosts)")
    if shutil.which("rsync") is None:
        abort(f"rsync_project() for {env.host_string}: no 'rsync' program found on this "
              "machine's PATH")
    excludes = [exclude] if isinstance(exclude, str) else list(exclude or ())
    words, target = _rsh_words(env.host_string, ssh_opts)
    rsh = " ".join(_rsync_quote(w) for w in words)

    options = []
    if delete:
        options.append("--delete")
    options += [f"--exclude={shlex.quote(str(p))}" for p in excludes]
    options += [o for o in (default_opts, extra_opts) if o]
    options.append(f"--rsh={shlex.quote(rsh)}")

    if local_dir is None:
        local_dir = "../" + os.path.basename(os.getcwd().rstrip(os.sep))
    host = f"[{target.name}]" if ":" in target.name else target.name
    user = f"{target.user}@" if target.user else ""
    remote = shlex.quote(f"{user}{host}:{remote_dir}")
    local_side = _local_word(local_dir)
    ends = [local_side, remote] if upload else [remote, local_side]
    command = " ".join(["rsync"] + options + ends)
    if output.get("running", True):
        with output_lock:
            print(f"[{env.host_string}] rsync_project: {command}", flush=True)
    return local(command, capture=capture)


# ---------------------------------------------------------------------------------------------
# upload_project
# ---------------------------------------------------------------------------------------------


def upload_project(local_dir: Optional[str] = None, remote_dir: str = "",
                   use_sudo: bool = False) -> None:
    """Copy the local directory ``local_dir`` (default: the current one) into
    ``remote_dir`` (default: the remote home) on the current host, as a gzipped tarball
    sent over SFTP and unpacked remotely with ``tar``; ``use_sudo`` unpacks with sudo.

    The result is ``<remote_dir>/<basename of local_dir>``. Both temporary tarballs are
    removed afterwards, also on failure.
    """
    from fabric.contrib.files import _expand_path, _remote
    from fabric.operations import put

    if not env.get("host_string"):
        abort("upload_project() needs a host: set env.host_string (or run it as a task with "
              "hosts)")
    source = apply_lcwd(os.path.expanduser(local_dir or os.getcwd()), env)
    source = source.rstrip(os.sep) or os.sep
    name = os.path.basename(source)
    if not os.path.isdir(source):
        abort(f"upload_project() for {env.host_string}: local directory {source!r} does not "
              "exist")
    # A unique name, so an existing <name>.tar.gz in remote_dir is never overwritten.
    tar_name = f".{name}.{uuid.uuid4().hex[:12]}.tar.gz"
    remote_tar = posixpath.join(remote_dir, tar_name) if remote_dir else tar_name
    workdir = tempfile.mkdtemp(prefix="fab-upload-")
    try:
        local_tar = os.path.join(workdir, "project.tar.gz")
        with tarfile.open(local_tar, "w:gz") as archive:
            archive.add(source, arcname=name)
        put(local_tar, remote_tar, use_sudo=use_sudo, use_glob=False)
        destination = _expand_path(remote_dir) if remote_dir else "."
        try:
            _remote(f"tar -xzf {_expand_path(remote_tar)} -C {destination}",
                    use_sudo=use_sudo)
        finally:
            _remote(f"rm -f {_expand_path(remote_tar)}", use_sudo=use_sudo)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
