"""Context managers that change Fabric's settings for a block of code.

Everything here works on ``fabric.state.env`` / ``fabric.state.output``, which are context
local: inside a parallel host's thread they change only that host's copy.

Unlike Fabric 1.x (whose managers were one-shot generators), the managers are reusable and
may even be entered by several threads at once: what one entry must undo is kept on a
per-thread stack, so ``@with_settings(hide('running'))`` on a parallel task just works.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
import time
import weakref
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from fabric.state import env, output
from fabric.utils import isatty, output_lock

__all__ = [
    "cd",
    "char_buffered",
    "hide",
    "lcd",
    "nested",
    "path",
    "prefix",
    "quiet",
    "remote_tunnel",
    "settings",
    "shell_env",
    "show",
    "warn_only",
]


class _ReusableManager:
    """Base for managers that may be entered again (or concurrently) while already entered.

    ``_enter`` returns a token describing what to undo; ``_exit`` gets it back. Tokens live
    on a per-thread stack because ``with`` blocks always exit on the thread that entered them.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def _tokens(self) -> List[Any]:
        tokens = getattr(self._local, "tokens", None)
        if tokens is None:
            tokens = self._local.tokens = []
        return tokens

    def __enter__(self) -> Any:
        token, value = self._enter()
        self._tokens().append(token)
        return value

    def __exit__(self, *exc_info: Any) -> Optional[bool]:
        return self._exit(self._tokens().pop(), exc_info)

    def _enter(self) -> Tuple[Any, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _exit(self, token: Any, exc_info: Any) -> Optional[bool]:  # pragma: no cover
        raise NotImplementedError


class nested(ExitStack):
    """Enter several context managers as one; ``as`` gets the list of their values.

    Managers are entered left to right and exited right to left, also when one of them
    fails to enter. An :class:`~contextlib.ExitStack` so callbacks can be added as usual.
    """

    def __init__(self, *managers: Any) -> None:
        super().__init__()
        self._managers = managers
        self._local = threading.local()

    def _stacks(self) -> List[ExitStack]:
        stacks = getattr(self._local, "stacks", None)
        if stacks is None:
            stacks = self._local.stacks = []
        return stacks

    def __enter__(self) -> List[Any]:  # type: ignore[override]
        super().__enter__()
        with ExitStack() as stack:
            values = [stack.enter_context(m) for m in self._managers]
            # Every manager entered: keep them for __exit__ instead of unwinding now.
            self._stacks().append(stack.pop_all())
        return values

    def __exit__(self, *exc_info: Any) -> bool:
        suppressed = bool(self._stacks().pop().__exit__(*exc_info))
        if suppressed:
            exc_info = (None, None, None)
        # Callbacks registered on this object itself (the ExitStack API) run last.
        return bool(super().__exit__(*exc_info)) or suppressed


# ---------------------------------------------------------------------------------------------
# env
# ---------------------------------------------------------------------------------------------

_MISSING = object()


class _setenv(_ReusableManager):
    """Set ``env`` keys for the block; on exit put back old values and delete new keys.

    ``variables`` is a mapping, or a callable returning one that is called at each entry
    (``cd``/``prefix`` use that so nesting builds on the value current at entry). The key
    ``clean_revert`` (default False) makes the exit revert only keys that still hold the value
    set here, so changes made inside the block survive.
    """

    def __init__(self, variables: Union[Mapping[str, Any], Callable[[], Mapping[str, Any]]]
                 ) -> None:
        super().__init__()
        self._variables = variables

    def _enter(self) -> Tuple[Any, Any]:
        source = self._variables() if callable(self._variables) else self._variables
        values = dict(source)
        clean_revert = bool(values.pop("clean_revert", False))
        previous: Dict[str, Any] = {}
        for key, value in values.items():
            previous[key] = env[key] if key in env else _MISSING
            env[key] = value
        return (values, previous, clean_revert), None

    def _exit(self, token: Any, exc_info: Any) -> None:
        values, previous, clean_revert = token
        for key, value in values.items():
            if clean_revert:
                if key not in env:
                    continue
                current = env[key]
                if current is not value and _differs(current, value):
                    continue  # changed inside the block: keep the change
            old = previous[key]
            if old is _MISSING:
                env.pop(key, None)
            else:
                env[key] = old
        return None


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except Exception:  # odd __eq__ implementations: treat as changed, keep the value
        return True


def settings(*managers: Any, **env_kwargs: Any) -> nested:
    """Nest ``managers`` and then set ``env`` keys from ``env_kwargs`` for the block.

    Old values come back on exit and keys that did not exist are removed again.
    ``clean_revert=True`` reverts only keys still equal to what was set here.
    """
    parts = list(managers)
    if env_kwargs:
        parts.append(_setenv(env_kwargs))
    return nested(*parts)


def _changed_dir(which: str, path: str) -> Callable[[], Dict[str, str]]:
    path = str(path).replace(" ", r"\ ")

    def compute() -> Dict[str, str]:
        current = env.get(which)
        if current and not path.startswith("/") and not path.startswith("~"):
            return {which: f"{current}/{path}"}
        return {which: path}

    return compute


def cd(path: str) -> _setenv:
    """Run remote commands in ``path`` (``env.cwd``); relative paths nest, ``/``/``~`` reset."""
    return _setenv(_changed_dir("cwd", path))


def lcd(path: str) -> _setenv:
    """Like :func:`cd` for ``local()``, ``put`` and ``get`` (``env.lcwd``)."""
    return _setenv(_changed_dir("lcwd", path))


_PATH_BEHAVIORS = ("append", "prepend", "replace")


def path(path: str, behavior: str = "append") -> _setenv:
    """Add ``path`` to ``$PATH`` for commands in the block (``append``, ``prepend`` or
    ``replace``)."""
    if behavior not in _PATH_BEHAVIORS:
        raise ValueError(f"path(): behavior must be one of {', '.join(_PATH_BEHAVIORS)}, "
                         f"not {behavior!r}")
    return _setenv({"path": path, "path_behavior": behavior})


def prefix(command: str) -> _setenv:
    """Run ``command && `` before every remote command in the block (nests)."""
    return _setenv(lambda: {"command_prefixes": list(env.command_prefixes) + [command]})


def shell_env(**env_vars: str) -> _setenv:
    """Export these environment variables for commands in the block (merged into the outer
    ``shell_env``)."""

    def compute() -> Dict[str, Any]:
        merged = dict(env.get("shell_env") or {})
        merged.update(env_vars)
        return {"shell_env": merged}

    return _setenv(compute)


def warn_only() -> nested:
    """Failures warn instead of aborting inside the block."""
    return settings(warn_only=True)


def quiet() -> nested:
    """Hide all output and only warn on failures: ``settings(hide('everything'),
    warn_only=True)``."""
    return settings(hide("everything"), warn_only=True)


# ---------------------------------------------------------------------------------------------
# output levels
# ---------------------------------------------------------------------------------------------


class _set_output(_ReusableManager):
    def __init__(self, groups: Tuple[str, ...], value: bool) -> None:
        super().__init__()
        self._groups = groups
        self._value = value

    def _enter(self) -> Tuple[Any, Any]:
        levels = output.expand_aliases(self._groups)
        unknown = [name for name in levels if name not in output]
        if unknown:
            known = sorted(set(output.keys()) | set(output.aliases))
            raise ValueError(f"unknown output level(s): {', '.join(unknown)} "
                             f"(known: {', '.join(known)})")
        previous = {name: output[name] for name in levels}
        for name in levels:
            output[name] = self._value
        return previous, None

    def _exit(self, token: Any, exc_info: Any) -> None:
        for name, value in token.items():
            output[name] = value
        return None


def hide(*groups: str) -> _set_output:
    """Turn the given output levels (or aliases like ``everything``) off for the block."""
    return _set_output(groups, False)


def show(*groups: str) -> _set_output:
    """Turn the given output levels (or aliases like ``debug``) on for the block."""
    return _set_output(groups, True)


# ---------------------------------------------------------------------------------------------
# terminal
# ---------------------------------------------------------------------------------------------


@contextmanager
def char_buffered(pipe: Any) -> Iterator[None]:
    """Put the terminal behind ``pipe`` in cbreak mode (one character at a time) for the
    block; does nothing when it is not a terminal. ``pipe`` is a file object or an fd."""
    if not (os.isatty(pipe) if isinstance(pipe, int) else isatty(pipe)):
        yield
        return
    import termios
    import tty

    try:
        old = termios.tcgetattr(pipe)
        tty.setcbreak(pipe)
    except (termios.error, OSError, ValueError):
        yield  # a pseudo-tty that refuses: behave as without a terminal
        return
    try:
        yield
    finally:
        try:
            termios.tcsetattr(pipe, termios.TCSADRAIN, old)
        except (termios.error, OSError, ValueError):
            pass


# ---------------------------------------------------------------------------------------------
# remote_tunnel
# ---------------------------------------------------------------------------------------------

_CHUNK = 32768
# How often blocked pumps look at the stop flag; data and EOF wake them at once via select.
_TICK = 0.5
# Bounded waits on exit: long enough for in-flight data, short enough never to hang a task.
_JOIN_TIMEOUT = 5.0


class _TunnelPump:
    """Connects one forwarded channel to ``(local_host, local_port)`` and copies data both
    ways until both sides have sent EOF, one side fails, or the tunnel is closed."""

    def __init__(self, chan: Any, local: Tuple[str, int], host_string: str,
                 connect_timeout: float, stop: threading.Event, announce: bool) -> None:
        self.announce = announce
        self.chan = chan
        self.local = local
        self.host_string = host_string
        self.connect_timeout = connect_timeout
        self.stop = stop
        self.sock: Optional[socket.socket] = None
        self._sock_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"rtunnel {host_string} -> {local[0]}:{local[1]}")

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        """Close both ends (safe from any thread, any number of times)."""
        try:
            self.chan.close()
        except Exception:
            pass
        with self._sock_lock:
            sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _run(self) -> None:
        try:
            sock = socket.create_connection(self.local, timeout=self.connect_timeout)
        except OSError as exc:
            _tunnel_print(f"[{self.host_string}] rtunnel: cannot connect to "
                          f"{self.local[0]}:{self.local[1]} (from local): {exc}", sys.stderr)
            self.close()
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(_TICK)
        with self._sock_lock:
            if self.stop.is_set():
                sock.close()
                return
            self.sock = sock
        if self.announce:
            try:
                peer = self.chan.getpeername()
            except Exception:
                peer = None
            _tunnel_print(f"[{self.host_string}] rtunnel: opened reverse tunnel: "
                          f"{getattr(self.chan, 'origin_addr', None)!r} -> {peer!r} -> "
                          f"{self.local!r}", sys.stdout)
        try:
            self._pump(sock)
        except Exception:
            pass  # either side vanished: the tunnelled connection simply ends
        finally:
            self.close()

    def _pump(self, sock: socket.socket) -> None:
        chan = self.chan
        chan.settimeout(_TICK)
        sock_open = chan_open = True  # directions still delivering data to us
        while (sock_open or chan_open) and not self.stop.is_set():
            watch = [x for x, alive in ((sock, sock_open), (chan, chan_open)) if alive]
            readable, _, _ = select.select(watch, [], [], _TICK)
            if sock in readable:
                data = sock.recv(_CHUNK)
                if data:
                    self._send_all(chan.send, data)
                else:
                    sock_open = False
                    chan.shutdown_write()  # pass the EOF on; the reply may still come
            if chan in readable:
                data = chan.recv(_CHUNK)
                if data:
                    self._send_all(sock.send, data)
                else:
                    chan_open = False
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
            if chan.closed:
                break

    def _send_all(self, send: Callable[[bytes], int], data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.stop.is_set():
                return
            try:
                sent = send(view)
            except socket.timeout:
                continue  # peer not reading yet: look at the stop flag, then retry
            if not sent:
                raise OSError("tunnel peer closed")
            view = view[sent:]


def _tunnel_print(text: str, stream: Any) -> None:
    with output_lock:
        try:
            stream.write(text + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass


class _ForwardRouter:
    """Sends each forwarded channel of one transport to the tunnel that owns its port.

    A transport has a single handler for forwarded channels, so two tunnels on one
    connection (``with remote_tunnel(80), remote_tunnel(5432):``) share this router.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards routes
        self.setup = threading.Lock()  # serializes requests/cancels on the transport
        self.routes: Dict[Tuple[str, int], Callable[[Any, Any, Any], None]] = {}

    def dispatch(self, chan: Any, origin: Any, dest: Any) -> None:
        accept = None
        with self.lock:
            try:
                accept = self.routes.get((str(dest[0]), int(dest[1])))
                if accept is None:
                    # Servers may report the bind address differently ('localhost' vs
                    # '127.0.0.1'): fall back to the one tunnel on that port.
                    same_port = [a for (_, p), a in self.routes.items() if p == int(dest[1])]
                    accept = same_port[0] if len(same_port) == 1 else None
            except (TypeError, ValueError, IndexError):
                accept = None
        if accept is None:
            chan.close()
            return
        accept(chan, origin, dest)


_routers: weakref.WeakKeyDictionary[Any, _ForwardRouter] = weakref.WeakKeyDictionary()
_routers_lock = threading.Lock()


def _router_for(transport: Any) -> _ForwardRouter:
    with _routers_lock:
        router = _routers.get(transport)
        if router is None:
            router = _routers[transport] = _ForwardRouter()
        return router


@contextmanager
def remote_tunnel(remote_port: int, local_port: Optional[int] = None,
                  local_host: str = "localhost",
                  remote_bind_address: str = "127.0.0.1") -> Iterator[None]:
    """Make ``remote_bind_address:remote_port`` on the current host reach
    ``local_host:local_port`` here (SSH remote forwarding, like ``ssh -R``) for the block.

    On exit the forward is cancelled and every tunnelled connection is closed.
    """
    from fabric import state
    from fabric.exceptions import NetworkError

    if local_port is None:
        local_port = remote_port
    host_string = env.host_string
    if not host_string:
        raise ValueError("remote_tunnel() needs a host: env.host_string is not set")
    connect_timeout = float(env.get("timeout") or 10)
    announce = bool(output.get("status", True))
    local = (local_host, int(local_port))
    stop = threading.Event()
    lock = threading.Lock()
    pumps: List[_TunnelPump] = []

    def accept(chan: Any, origin: Any, dest: Any) -> None:
        # Runs on a paramiko handler thread: no Fabric context there, so everything it needs
        # was captured above.
        pump = _TunnelPump(chan, local, host_string, connect_timeout, stop, announce)
        with lock:
            if stop.is_set():
                pump.close()
                return
            pumps.append(pump)
            pump.start()

    transport = state.connections[host_string].get_transport()
    router = _router_for(transport)
    route = (remote_bind_address, int(remote_port))
    with router.setup:
        with router.lock:
            if route in router.routes:
                raise ValueError(f"remote_tunnel: {remote_bind_address}:{remote_port} on "
                                 f"{host_string} is already tunnelled")
            router.routes[route] = accept  # before the request: the first channel may be fast
        try:
            bound = transport.request_port_forward(remote_bind_address, int(remote_port),
                                                   handler=router.dispatch)
        except Exception as exc:
            with router.lock:
                router.routes.pop(route, None)
            raise NetworkError(
                f"remote_tunnel: {host_string} did not open remote port forwarding on "
                f"{remote_bind_address}:{remote_port}: {exc}", exc, host=host_string,
                phase="channel-open") from exc
        if not int(remote_port) and bound:  # port 0: the server picked one
            with router.lock:
                router.routes.pop(route, None)
                route = (remote_bind_address, int(bound))
                router.routes[route] = accept
    try:
        yield
    finally:
        with router.setup:
            with router.lock:
                router.routes.pop(route, None)
                last = not router.routes
            try:
                if last:
                    transport.cancel_port_forward(*route)
                else:
                    # Keep the shared handler for the other tunnels: cancel just this port.
                    transport.global_request("cancel-tcpip-forward", route, wait=False)
            except Exception:
                pass  # the connection died already; the forward died with it
        with lock:
            stop.set()
            to_close = list(pumps)
        for pump in to_close:
            pump.close()
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for pump in to_close:
            pump.thread.join(max(0.0, deadline - time.monotonic()))
