"""``Transport``: the threaded driver around the sans-IO transport core.

One reader thread per connection feeds received bytes to :class:`TransportCore` and hands the
resulting packets to channels, the auth handler and global-request waiters. Writers encode
and write from their own thread: whoever finds the output idle becomes the writer and drains
everything queued, so no packet is handed to another thread and readers never wait on a
blocked write.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from paramiko import common as c
from paramiko._core import hostkey as hostkey_registry
from paramiko._core import kex as kex_registry
from paramiko._core import transport_core as tc
from paramiko._core.ciphers import CIPHERS, DEFAULT_CIPHERS, DEFAULT_MACS, MACS
from paramiko._version import __version__
from paramiko.channel import Channel
from paramiko.message import Message
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    ChannelException,
    SSHException,
)
from paramiko.util import ClosingContextManager, clamp_value, get_logger

_U32 = struct.Struct(">I")
RECV_SIZE = 256 * 1024
# How often an idle reader wakes to check deadlines, keepalives and close requests.
_TICK = 0.2
# Silence after the peer's last packet before a transport riding a channel sends a one-byte
# IGNORE so the gateway's delayed ACK does not stall the peer (see Transport._nudge_due).
_NUDGE_DELAY = 0.003
COMPRESSIONS = ("none", "zlib@openssh.com", "zlib")

_active_transports: weakref.WeakSet[Transport] = weakref.WeakSet()
# Set while a reader thread pushes bytes into a nested transport (see Transport._on_sock_data):
# code running there must never block on a write, because the write may need a window
# adjust that only that very reader thread can deliver.
_sink_context = threading.local()


def _peer_text(sock) -> str:
    try:
        host, port = sock.getpeername()[:2]
        return f"{host}:{port}"
    except Exception:
        return "unknown peer"


def _option(attr: str, registry: Callable[[], Any], doc: str) -> property:
    """A SecurityOptions property over ``Transport.<attr>``, validated against a registry."""

    def get(self: SecurityOptions) -> Tuple[str, ...]:
        return getattr(self._transport, attr)

    def put(self: SecurityOptions, value) -> None:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise TypeError("expected a tuple or list of algorithm names")
        known = registry()
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ValueError(f"unknown algorithm(s): {', '.join(unknown)}")
        setattr(self._transport, attr, tuple(value))

    return property(get, put, doc=doc)


class SecurityOptions:
    """Read and change the algorithms a transport offers (Paramiko's API).

    Each property takes a list or tuple of wire names; unknown names raise ValueError.
    """

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def __repr__(self) -> str:
        return f"<paramiko.SecurityOptions for {self._transport!r}>"

    ciphers = _option("_preferred_ciphers", lambda: CIPHERS, "Ciphers, in preference order.")
    digests = _option("_preferred_macs", lambda: MACS, "MACs, in preference order.")
    key_types = _option("_preferred_keys", lambda: hostkey_registry.HOSTKEY_ALGORITHMS,
                        "Host key algorithms, in preference order.")
    kex = _option("_preferred_kex", lambda: kex_registry.KEX_ALGORITHMS,
                  "Key exchange algorithms, in preference order.")
    compression = _option("_preferred_compression", lambda: COMPRESSIONS,
                          "Compression methods, in preference order.")


class Transport(threading.Thread, ClosingContextManager):
    """An SSH session over a socket-like object (client or server side)."""

    _PROTO_ID = "2.0"
    _CLIENT_ID = f"paramiko_{__version__}"

    _preferred_ciphers: Tuple[str, ...] = tuple(DEFAULT_CIPHERS)
    _preferred_macs: Tuple[str, ...] = tuple(DEFAULT_MACS)
    _preferred_keys: Tuple[str, ...] = tuple(hostkey_registry.DEFAULT_HOSTKEY_ORDER)
    _preferred_pubkeys: Tuple[str, ...] = tuple(hostkey_registry.DEFAULT_HOSTKEY_ORDER)
    _preferred_kex: Tuple[str, ...] = tuple(kex_registry.default_kex_order())
    _preferred_compression: Tuple[str, ...] = ("none",)

    _modulus_pack = None

    def __init__(self, sock, default_window_size: int = c.DEFAULT_WINDOW_SIZE,
                 default_max_packet_size: int = c.DEFAULT_MAX_PACKET_SIZE,
                 gss_kex: bool = False, gss_deleg_creds: bool = True,
                 disabled_algorithms: Optional[Dict[str, Sequence[str]]] = None,
                 server_sig_algs: bool = True, strict_kex: bool = True,
                 packetizer_class=None) -> None:
        threading.Thread.__init__(self, name="paramiko.Transport", daemon=True)
        self.active = False
        self._closing = False
        if isinstance(sock, str):
            host, _, port = sock.rpartition(":") if ":" in sock else (sock, "", "22")
            sock = (host, int(port))
        if isinstance(sock, tuple):
            sock = self._connect_tcp(sock[0], int(sock[1]))
        if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET,
                                                               socket.AF_INET6):
            # Small request/response packets must not wait for Nagle + delayed ACK (~40 ms).
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.sock = sock
        self.peer_name = _peer_text(sock)
        self.default_window_size = clamp_value(c.MIN_WINDOW_SIZE, default_window_size,
                                               c.MAX_WINDOW_SIZE)
        self.default_max_packet_size = clamp_value(c.MIN_PACKET_SIZE, default_max_packet_size,
                                                   c.MAX_WINDOW_SIZE)
        self.disabled_algorithms = disabled_algorithms or {}
        self.server_sig_algs = server_sig_algs
        self.strict_kex = strict_kex
        self.gss_kex = gss_kex
        self.gss_deleg_creds = gss_deleg_creds

        self.local_version = f"SSH-{self._PROTO_ID}-{self._CLIENT_ID}"
        self.remote_version = ""
        self.server_mode = False
        self.server_object = None
        self.server_key_dict: Dict[str, Any] = {}
        self.server_accepts: deque = deque()
        self.server_accept_cv = threading.Condition()
        self.subsystem_table: Dict[str, Tuple[Any, tuple, dict]] = {}

        self.banner_timeout = 15.0
        self.handshake_timeout = 15.0
        self.auth_timeout = 30.0
        self.channel_timeout = 3600.0
        self.clear_to_send_timeout = 30.0

        self.session_id: Optional[bytes] = None
        self.host_key_type: Optional[str] = None
        self.host_key = None
        self.local_cipher = self.remote_cipher = ""
        self.local_mac = self.remote_mac = None
        self.local_compression = self.remote_compression = "none"
        self.server_extensions: Dict[str, bytes] = {}
        self.kex_engine = None
        self.authenticated = False
        self.auth_handler = None
        self.saved_exception: Optional[BaseException] = None
        self.completion_event: Optional[threading.Event] = None
        self.use_compression_flag = False

        self._core: Optional[tc.TransportCore] = None
        self._push = False  # True when riding on one of our Channels (push mode)
        self._push_cv = threading.Condition()
        self._push_wake = False
        self._push_eof = False
        self._push_error: Optional[BaseException] = None
        self._lock = threading.RLock()
        self._writing = False
        # Notified (under _lock) whenever the writer role is released.
        self._writer_done = threading.Condition(self._lock)
        self._last_write = time.monotonic()
        self._nudged = False
        self._first_kex_done = threading.Event()
        self._kex_cv = threading.Condition()
        self._channels: Dict[int, Channel] = {}
        self._channel_opening: Dict[int, list] = {}  # chanid -> [event, error]
        self._next_chanid = 0
        self._global_waiters: deque = deque()
        self._tcp_handler: Optional[Callable] = None
        self._x11_handler: Optional[Callable] = None
        self._agent_handler: Optional[Callable] = None
        self.keepalive_interval = 0
        # OpenSSH's ServerAliveInterval/CountMax: probe a silent peer, give up after N misses.
        self.server_alive_interval = 0.0
        self.server_alive_count_max = 3
        self._alive_outstanding = 0
        self._last_alive_probe = 0.0
        self._last_read = time.monotonic()
        self.rekey_bytes = 1 << 30
        self.rekey_packets = 1 << 28
        self.rekey_interval: Optional[float] = None
        self.logger = get_logger("paramiko.transport")
        self.log_name = "paramiko.transport"
        self._hexdump = False

    # -- construction helpers ---------------------------------------------------------------
    @staticmethod
    def _connect_tcp(host: str, port: int, timeout: Optional[float] = 60.0) -> socket.socket:
        errors = []
        for family, socktype, proto, _cn, addr in socket.getaddrinfo(
                host, port, socket.AF_UNSPEC, socket.SOCK_STREAM):
            s = socket.socket(family, socktype, proto)
            try:
                s.settimeout(timeout)
                s.connect(addr)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return s
            except OSError as e:
                errors.append(f"{addr[0]}: {e}")
                s.close()
        err = SSHException(f"Unable to connect to {host}:{port}: {'; '.join(errors)}")
        err.phase, err.peer = "tcp", f"{host}:{port}"
        raise err

    def __repr__(self) -> str:
        state = "active" if self.active else "unconnected"
        if self.active and self.local_cipher:
            state += f" (cipher {self.local_cipher}, {len(self._channels)} channels)"
        return f"<paramiko.Transport at {hex(id(self))} ({state})>"

    # -- algorithm preferences -------------------------------------------------------------
    def _offered(kind: str, attr: str, usable: Callable[[str], bool] = lambda name: True):
        """``preferred_<kind>``: the configured order minus disabled_algorithms[kind]."""

        def get(self: Transport) -> Tuple[str, ...]:
            disabled = set(self.disabled_algorithms.get(kind, ()))
            return tuple(n for n in getattr(self, attr) if n not in disabled and usable(n))

        return property(get)

    preferred_ciphers = _offered("ciphers", "_preferred_ciphers")
    preferred_macs = _offered("macs", "_preferred_macs")
    preferred_keys = _offered("keys", "_preferred_keys")
    preferred_pubkeys = _offered("pubkeys", "_preferred_pubkeys")
    preferred_kex = _offered("kex", "_preferred_kex", kex_registry.kex_available)
    preferred_compression = _offered("compression", "_preferred_compression")
    del _offered

    def _preferences(self) -> tc.Preferences:
        return tc.Preferences(kex=self.preferred_kex, key_types=self.preferred_keys,
                              ciphers=self.preferred_ciphers, macs=self.preferred_macs,
                              compression=self.preferred_compression)

    def get_security_options(self) -> SecurityOptions:
        return SecurityOptions(self)

    def use_compression(self, compress: bool = True) -> None:
        self.use_compression_flag = compress
        self._preferred_compression = (("zlib@openssh.com", "zlib", "none") if compress
                                       else ("none",))

    # -- server set-up ----------------------------------------------------------------------
    def add_server_key(self, key) -> None:
        self.server_key_dict[key.get_name()] = key

    def get_server_key(self):
        neg = self._core.negotiated if self._core else None
        if neg is not None and self._core is not None:
            return self._core._server_key_for(neg.host_key)
        return next(iter(self.server_key_dict.values()), None)

    @staticmethod
    def load_server_moduli(filename: Optional[str] = None) -> bool:
        from paramiko.primes import ModulusPack

        pack = ModulusPack()
        candidates = [filename] if filename else ["/etc/ssh/moduli", "/usr/local/etc/moduli"]
        for fn in candidates:
            try:
                pack.read_file(fn)
                Transport._modulus_pack = pack
                return True
            except OSError:
                continue
        Transport._modulus_pack = None
        return False

    def set_subsystem_handler(self, name: str, handler, *args, **kwargs) -> None:
        with self._lock:
            self.subsystem_table[name] = (handler, args, kwargs)

    def _get_subsystem_handler(self, name: str):
        with self._lock:
            return self.subsystem_table.get(name, (None, (), {}))

    # -- starting ---------------------------------------------------------------------------
    def _make_core(self) -> None:
        server_sig_algs = None
        if self.server_mode and self.server_sig_algs:
            server_sig_algs = list(self.preferred_pubkeys)
        self._core = tc.TransportCore(
            is_server=self.server_mode, local_version=self.local_version,
            preferences=self._preferences, server_keys=self.server_key_dict,
            strict_kex=self.strict_kex, server_sig_algs=server_sig_algs,
            moduli=self._modulus_pack if self.server_mode else None,
            peer_name=self.peer_name)
        self._apply_rekey_limits()

    def _begin(self) -> None:
        if self.active:
            raise SSHException("transport already started")
        self._make_core()
        self.active = True
        _active_transports.add(self)
        try:
            # The reader wakes now and then for deadlines; writers retry on this timeout.
            self.sock.settimeout(_TICK)
        except Exception:
            pass
        self._start_time = time.monotonic()
        # Banner and KEXINIT go out before the reader starts, so a reader that fails at once
        # can never close the socket ahead of them.
        with self._lock:
            claim = self._claim_writer()
        if claim:
            self._drain_safely()
        # Riding on one of our own channels: let the outer reader push bytes straight in,
        # saving a thread hand-off per chunk (this thread then only writes and keeps time).
        self._push = callable(getattr(self.sock, "_set_data_sink", None))
        self.start()
        if self._push:
            self.sock._set_data_sink(self._on_sock_data)

    def start_client(self, event: Optional[threading.Event] = None,
                     timeout: Optional[float] = None) -> None:
        """Negotiate as a client. Raises on failure or timeout (never returns silently)."""
        self.server_mode = False
        self.completion_event = event
        self._begin()
        if event is not None:
            return
        self._wait_first_kex(timeout)

    def start_server(self, event: Optional[threading.Event] = None, server=None) -> None:
        """Negotiate as a server with the keys given to :meth:`add_server_key`."""
        from paramiko.auth_handler import AuthHandler

        if not self.server_key_dict:
            raise SSHException("start_server needs at least one host key (add_server_key)")
        if server is None:
            from paramiko.server import ServerInterface

            server = ServerInterface()
        self.server_mode = True
        self.server_object = server
        self.auth_handler = AuthHandler(self)
        self.completion_event = event
        self._begin()
        if event is not None:
            return
        self._wait_first_kex(None)

    def _wait_first_kex(self, timeout: Optional[float]) -> None:
        limit = timeout if timeout is not None else (self.banner_timeout +
                                                     self.handshake_timeout)
        if not self._first_kex_done.wait(limit):
            err = SSHException(f"Negotiation with {self.peer_name} timed out after "
                               f"{limit:g}s ({self._phase()})")
            err.phase, err.peer = self._phase(), self.peer_name
            self.saved_exception = self.saved_exception or err
            self.close()
            raise err
        if not self.active or self.saved_exception is not None and not self._core.kex_count:
            raise self._dead_error("key exchange")

    def _phase(self) -> str:
        if self._core is None or self._core.remote_version is None:
            return "banner"
        if not self._core.kex_count:
            return "kex"
        if not self.authenticated:
            return "auth"
        return "transport"

    def _dead_error(self, what: str) -> BaseException:
        exc = self.saved_exception
        if exc is not None:
            return exc
        err = SSHException(f"{what} with {self.peer_name} failed: connection closed")
        err.phase, err.peer = self._phase(), self.peer_name
        return err

    # -- writing ----------------------------------------------------------------------------
    def _claim_writer(self) -> bool:
        """Under ``_lock``: become the writer if output is pending and nobody writes."""
        if self._writing or self._core is None or not self._core.has_output():
            return False
        self._writing = True
        return True

    def _drain(self, deadline: Optional[float] = None) -> None:
        """Write queued output until none is left; only the claiming thread calls this.

        ``deadline`` (monotonic) bounds best-effort writes such as a closing DISCONNECT.
        """
        sock = self.sock
        try:
            while True:
                with self._lock:
                    out = self._core.data_to_send()
                    if not out:
                        self._writing = False
                        self._writer_done.notify_all()
                        return
                self._last_write = time.monotonic()
                while out:
                    try:
                        n = sock.send(out)
                    except socket.timeout:
                        # The peer is not reading yet; that is back-pressure, not an error.
                        if (not self.active and self._closing) or (
                                deadline is not None and time.monotonic() > deadline):
                            raise SSHException("transport closed while writing") from None
                        continue
                    if not n:
                        raise EOFError("socket closed while writing")
                    if n < len(out):
                        out = out[n:]
                    else:
                        break
        except BaseException:
            with self._lock:
                self._writing = False
                self._writer_done.notify_all()
            raise

    def _drain_safely(self) -> None:
        try:
            self._drain()
        except Exception as e:
            self._fail(e, "write")

    def _send_user_message(self, payload: bytes) -> None:
        """Send one payload (msg byte first) from any thread."""
        defer = self._push and getattr(_sink_context, "depth", 0)
        with self._lock:
            if not self.active or self._core is None or self._core.closed:
                raise self._not_active_error()
            self._core.send_payload(payload)
            claim = not defer and self._claim_writer()
        if claim:
            self._drain()
        elif defer:
            self._wake_push_thread()

    def _wake_push_thread(self) -> None:
        with self._push_cv:
            self._push_wake = True
            self._push_cv.notify()

    _send_message = _send_user_message

    def _not_active_error(self) -> SSHException:
        if isinstance(self.saved_exception, SSHException):
            err = SSHException(f"SSH session with {self.peer_name} is not active: "
                               f"{self.saved_exception}")
        else:
            err = SSHException(f"SSH session with {self.peer_name} is not active")
        err.phase, err.peer = "transport", self.peer_name
        return err

    # -- reader thread ---------------------------------------------------------------------
    def run(self) -> None:
        exc: Optional[BaseException] = None
        try:
            self._reader_loop()
        except BaseException as e:  # report every failure, then close everything down
            exc = e
            if isinstance(e, SSHException) and e.phase is None:
                e.phase, e.peer = self._phase(), self.peer_name
        finally:
            self._shutdown(exc)

    def _on_sock_data(self, data: Optional[bytes]) -> None:
        """Push mode: bytes (None at EOF) from the channel we ride on, on its reader thread.

        Never raises and never writes: failures and pending output go to our own thread.
        """
        if data is None:
            with self._push_cv:
                self._push_eof = True
                self._push_cv.notify()
            return
        if not self.active or self._push_error is not None:
            return
        # First packet since our last write: let the push thread time a nudge.
        quiet_started = self._last_read <= self._last_write
        self._last_read = time.monotonic()
        self._nudged = False
        self._alive_outstanding = 0
        _sink_context.depth = getattr(_sink_context, "depth", 0) + 1
        try:
            with self._lock:
                events = self._core.receive_data(data)
                if self.rekey_interval:
                    self._core.tick(time.monotonic())
                pending = self._core.has_output()
            if events:
                self._dispatch(events)
        except BaseException as e:  # handed to our own thread, which shuts down
            self._push_error = e
            pending = True
        finally:
            _sink_context.depth -= 1
        if pending or quiet_started:
            self._wake_push_thread()

    def _push_loop(self) -> None:
        while self.active:
            nudge = self._nudge_due()
            with self._push_cv:
                if not (self._push_wake or self._push_eof or self._push_error):
                    self._push_cv.wait(_NUDGE_DELAY if nudge else _TICK)
                woken = self._push_wake
                self._push_wake = False
                eof = self._push_eof
            if nudge and not woken and not eof and self._push_error is None \
                    and self._nudge_due() \
                    and time.monotonic() - self._last_read >= _NUDGE_DELAY:
                self._nudge()
            if self._push_error is not None:
                raise self._push_error
            with self._lock:
                claim = self._claim_writer()
            if claim:
                self._drain()
            if eof:
                if not self.active:
                    return
                raise self._eof_error("connection closed by the peer")
            self._idle()

    def _nudge_due(self) -> bool:
        """True when the peer sent something since our last write and we stay silent.

        Riding a gateway channel, the gateway's kernel ACKs the target's packets late (~40 ms)
        when we have nothing to say, and the target's sshd (Nagle on) holds its next small
        packet until then: every exec reply, exit status and channel answer waits 40 ms.
        """
        core = self._core
        return (core is not None and core.initial_kex_done and not core.in_kex
                and self._last_read > self._last_write and not self._nudged)

    def _nudge(self) -> None:
        # An SSH_MSG_IGNORE of one byte: the gateway forwards it and its ACK goes along.
        self._nudged = True
        try:
            self.send_ignore(1)
        except SSHException:
            pass

    def _reader_loop(self) -> None:
        if self._push:
            return self._push_loop()
        sock = self.sock
        core = self._core
        # For real sockets read into one reused buffer: a fresh 256 KiB bytes object per
        # recv is served by mmap and page-faults on every call (measured ~20% of our CPU).
        # The core copies what it is given, so reusing the buffer is safe.
        buf = bytearray(RECV_SIZE) if isinstance(sock, socket.socket) else None
        view = memoryview(buf) if buf is not None else None
        while self.active:
            try:
                if view is not None:
                    data = view[:sock.recv_into(buf)]
                else:
                    data = sock.recv(RECV_SIZE)
            except socket.timeout:
                self._idle()
                continue
            except OSError as e:
                if not self.active:
                    return
                raise self._eof_error(f"socket error: {e}") from e
            except EOFError:
                data = b""
            if not data:
                if not self.active:
                    return
                raise self._eof_error("connection closed by the peer")
            self._last_read = time.monotonic()
            self._alive_outstanding = 0
            with self._lock:
                events = core.receive_data(data)
                if self.rekey_interval:
                    core.tick(time.monotonic())  # time-based rekey while data flows
                claim = self._claim_writer()
            if claim:
                self._drain()
            if events:
                self._dispatch(events)

    def _eof_error(self, reason: str) -> SSHException:
        phase = self._phase()
        err = SSHException(f"{reason} ({self.peer_name}, during {phase})")
        if phase == "banner":
            err = SSHException(f"Error reading SSH protocol banner from {self.peer_name}: "
                               f"{reason}")
        err.phase, err.peer = phase, self.peer_name
        return err

    def _idle(self) -> None:
        now = time.monotonic()
        core = self._core
        if not core.kex_count:
            elapsed = now - self._start_time
            if core.remote_version is None and elapsed > self.banner_timeout:
                err = SSHException(f"Error reading SSH protocol banner from {self.peer_name}: "
                                   f"no banner within {self.banner_timeout:g}s")
                err.phase, err.peer = "banner", self.peer_name
                raise err
            if elapsed > self.banner_timeout + self.handshake_timeout:
                err = SSHException(f"key exchange with {self.peer_name} timed out")
                err.phase, err.peer = "kex", self.peer_name
                raise err
        with self._lock:
            core.tick(now)
            claim = self._claim_writer()
        if claim:
            self._drain()
        if (self.keepalive_interval and self.authenticated
                and now - self._last_write >= self.keepalive_interval):
            self._last_write = now
            self.global_request("keepalive@lag.net", wait=False)
        interval = self.server_alive_interval
        if (interval and core.kex_count and now - self._last_read >= interval
                and now - self._last_alive_probe >= interval):
            if self._alive_outstanding >= self.server_alive_count_max:
                err = SSHException(
                    f"{self.peer_name} did not answer {self._alive_outstanding} keepalive "
                    f"probes {interval:g}s apart (ServerAliveCountMax); connection dead")
                err.phase, err.peer = "transport", self.peer_name
                raise err
            self._last_alive_probe = now
            self._alive_outstanding += 1
            probe = Message().add_byte(c.cMSG_GLOBAL_REQUEST)
            probe.add_string("keepalive@openssh.com").add_boolean(True)
            with self._lock:
                # Its reply (success or failure) is consumed in order like any other.
                self._global_waiters.append([threading.Event(), None])
            self._send_user_message(probe.asbytes())

    def _fail(self, exc: BaseException, where: str) -> None:
        if self.saved_exception is None:
            self.saved_exception = exc
        self._log(logging.DEBUG, f"{where} failed: {exc}")
        self.active = False
        try:
            if hasattr(self.sock, "shutdown"):
                self.sock.shutdown(socket.SHUT_RDWR)
        except Exception:
            pass

    def _shutdown(self, exc: Optional[BaseException]) -> None:
        if exc is not None and not (self._closing and isinstance(exc, (OSError, EOFError))):
            if self.saved_exception is None:
                self.saved_exception = exc
            # A peer that says goodbye or just hangs up is routine, not an error worth
            # printing (unconfigured logging shows ERROR on stderr).
            routine = (self._closing or getattr(exc, "orderly", False)
                       or isinstance(exc, (EOFError, ConnectionResetError)))
            self._log(logging.DEBUG if routine else logging.ERROR,
                      f"transport to {self.peer_name} ended: {exc}")
            self._tell_peer(exc)
        self.active = False
        with self._lock:
            channels = list(self._channels.values())
            opening = list(self._channel_opening.values())
            waiters = list(self._global_waiters)
            self._global_waiters.clear()
        for chan in channels:
            try:
                chan._transport_closed(self.saved_exception)
            except Exception:
                pass
        for slot in opening:
            slot[0].set()
        for w in waiters:
            w[0].set()
        self._first_kex_done.set()
        with self._kex_cv:
            self._kex_cv.notify_all()
        if self.completion_event is not None:
            self.completion_event.set()
        if self.auth_handler is not None and hasattr(self.auth_handler, "_transport_closed"):
            try:
                self.auth_handler._transport_closed(self.saved_exception)
            except Exception:
                pass
        with self.server_accept_cv:
            self.server_accept_cv.notify_all()
        try:
            self.sock.close()
        except Exception:
            pass
        _active_transports.discard(self)

    def _tell_peer(self, exc: BaseException) -> None:
        """Best effort: send DISCONNECT with our reason, so the peer's error says why."""
        from paramiko._core.packet import PacketError
        from paramiko.ssh_exception import IncompatiblePeer, MessageOrderError

        if not isinstance(exc, SSHException) or self._core is None or self._core.closed:
            return
        if isinstance(exc, IncompatiblePeer):
            code = c.DISCONNECT_KEY_EXCHANGE_FAILED
        elif isinstance(exc, PacketError):
            code = c.DISCONNECT_MAC_ERROR
        elif isinstance(exc, MessageOrderError) or exc.phase in ("kex", "banner"):
            code = c.DISCONNECT_PROTOCOL_ERROR
        else:
            return  # e.g. the peer went away or disconnected us: nothing to tell it
        with self._lock:
            try:
                self._core.disconnect(code, str(exc)[:512])
            except Exception:
                return
            claim = self._claim_writer()
        if claim:
            try:
                self._drain(deadline=time.monotonic() + 1.0)
            except Exception:
                pass

    # -- dispatch ---------------------------------------------------------------------------
    def _dispatch(self, events: list) -> None:
        for ev in events:
            if type(ev) is tc.PacketReceived:
                self._on_packet(ev.ptype, ev.payload)
            elif isinstance(ev, tc.KexFinished):
                self._on_kex_finished(ev)
            elif isinstance(ev, tc.VersionReceived):
                self.remote_version = ev.version
                for line in ev.pre_banner:
                    self._log(logging.DEBUG, f"pre-banner line: {line}")
            elif isinstance(ev, tc.ExtInfoReceived):
                self.server_extensions = dict(self._core.server_extensions)
            elif isinstance(ev, tc.PeerDisconnected):
                err = SSHException(f"{self.peer_name} disconnected: {ev.description or ''} "
                                   f"(code {ev.code})")
                err.phase, err.peer = self._phase(), self.peer_name
                # code 11 (BY_APPLICATION) is how every client says goodbye.
                err.orderly = ev.code == 11
                raise err
            elif isinstance(ev, tc.DebugReceived):
                self._log(logging.DEBUG, f"debug message from peer: {ev.text}")
            elif isinstance(ev, tc.KexStarted):
                self._log(logging.DEBUG, "key exchange started" + (" (rekey)" if not ev.first
                                                                    else ""))

    def _on_kex_finished(self, ev: tc.KexFinished) -> None:
        core = self._core
        neg = core.negotiated
        self.session_id = core.session_id
        self.host_key_type = neg.host_key
        self.local_cipher, self.remote_cipher = neg.cipher_out, neg.cipher_in
        self.local_mac, self.remote_mac = neg.mac_out, neg.mac_in
        self.local_compression, self.remote_compression = (neg.compression_out,
                                                           neg.compression_in)
        self.kex_engine = neg.kex
        if not self.server_mode and ev.host_key_blob:
            self.host_key = hostkey_registry.key_from_blob(ev.host_key_blob)
        self._log(logging.DEBUG, f"kex done: {neg.kex}, host key {neg.host_key}, cipher "
                                 f"{neg.cipher_out}/{neg.cipher_in}")
        with self._kex_cv:
            self._kex_cv.notify_all()
        if ev.first:
            self._first_kex_done.set()
            if self.completion_event is not None:
                self.completion_event.set()

    def _on_packet(self, ptype: int, payload: bytes) -> None:
        try:
            self._route_packet(ptype, payload)
        except struct.error as e:
            err = SSHException(f"malformed {c.MSG_NAMES.get(ptype, ptype)} message from "
                               f"{self.peer_name}: {e}")
            err.phase, err.peer = self._phase(), self.peer_name
            raise err from None

    def _route_packet(self, ptype: int, payload: bytes) -> None:
        if ptype == c.MSG_CHANNEL_DATA:
            chanid, n = struct.unpack_from(">II", payload, 1)
            if len(payload) < 9 + n:
                raise SSHException(f"truncated channel data from {self.peer_name}")
            chan = self._channels.get(chanid)
            if chan is not None:
                chan._handle_data(payload[9:9 + n])
            return
        if ptype == c.MSG_CHANNEL_WINDOW_ADJUST:
            chanid, n = struct.unpack_from(">II", payload, 1)
            chan = self._channels.get(chanid)
            if chan is not None:
                chan._handle_window_adjust(n)
            return
        if ptype == c.MSG_CHANNEL_EXTENDED_DATA:
            chanid, code, n = struct.unpack_from(">III", payload, 1)
            if len(payload) < 13 + n:
                raise SSHException(f"truncated extended data from {self.peer_name}")
            chan = self._channels.get(chanid)
            if chan is not None:
                chan._handle_extended_data(code, payload[13:13 + n])
            return
        if ptype == c.MSG_SERVICE_REQUEST or ptype == c.MSG_SERVICE_ACCEPT or \
                50 <= ptype <= 79:
            if self.auth_handler is None:
                raise SSHException(f"unexpected auth message {ptype} from {self.peer_name}")
            m = Message(payload)
            m.get_byte()
            self.auth_handler._handle_message(ptype, m)
            return
        m = Message(payload)
        m.get_byte()
        if ptype in (c.MSG_CHANNEL_EOF, c.MSG_CHANNEL_CLOSE, c.MSG_CHANNEL_REQUEST,
                     c.MSG_CHANNEL_SUCCESS, c.MSG_CHANNEL_FAILURE):
            chan = self._channels.get(m.get_int())
            if chan is None:
                return
            if ptype == c.MSG_CHANNEL_EOF:
                chan._handle_eof()
            elif ptype == c.MSG_CHANNEL_CLOSE:
                chan._handle_close()
            elif ptype == c.MSG_CHANNEL_REQUEST:
                chan._handle_request(m)
            else:
                chan._handle_request_reply(ptype == c.MSG_CHANNEL_SUCCESS)
            return
        if ptype == c.MSG_CHANNEL_OPEN_SUCCESS:
            self._on_open_success(m)
        elif ptype == c.MSG_CHANNEL_OPEN_FAILURE:
            self._on_open_failure(m)
        elif ptype == c.MSG_CHANNEL_OPEN:
            self._on_channel_open(m)
        elif ptype == c.MSG_GLOBAL_REQUEST:
            self._on_global_request(m)
        elif ptype in (c.MSG_REQUEST_SUCCESS, c.MSG_REQUEST_FAILURE):
            with self._lock:
                waiter = self._global_waiters.popleft() if self._global_waiters else None
            if waiter is not None:
                waiter[1] = m if ptype == c.MSG_REQUEST_SUCCESS else None
                waiter[0].set()
        else:
            self._log(logging.DEBUG, f"unhandled message type {ptype}; sending UNIMPLEMENTED")
            reply = Message().add_byte(c.cMSG_UNIMPLEMENTED).add_int(0)
            self._send_user_message(reply.asbytes())

    # -- channels ---------------------------------------------------------------------------
    def _new_channel(self, window_size: Optional[int],
                     max_packet_size: Optional[int]) -> Channel:
        with self._lock:
            chanid = self._next_chanid
            while chanid in self._channels or chanid in self._channel_opening:
                chanid = (chanid + 1) & 0xFFFFFFFF
            self._next_chanid = (chanid + 1) & 0xFFFFFFFF
            chan = Channel(chanid)
            self._channels[chanid] = chan
        chan._set_transport(self)
        chan._set_window(
            clamp_value(c.MIN_WINDOW_SIZE, window_size or self.default_window_size,
                        c.MAX_WINDOW_SIZE),
            clamp_value(c.MIN_PACKET_SIZE, max_packet_size or self.default_max_packet_size,
                        c.MAX_WINDOW_SIZE))
        return chan

    def _unlink_channel(self, chanid: int) -> None:
        with self._lock:
            self._channels.pop(chanid, None)

    def open_session(self, window_size: Optional[int] = None,
                     max_packet_size: Optional[int] = None,
                     timeout: Optional[float] = None) -> Channel:
        return self.open_channel("session", window_size=window_size,
                                 max_packet_size=max_packet_size, timeout=timeout)

    def open_x11_channel(self, src_addr=None) -> Channel:
        return self.open_channel("x11", src_addr=src_addr)

    def open_forward_agent_channel(self) -> Channel:
        return self.open_channel("auth-agent@openssh.com")

    def open_forwarded_tcpip_channel(self, src_addr, dest_addr) -> Channel:
        return self.open_channel("forwarded-tcpip", dest_addr, src_addr)

    def open_channel(self, kind: str, dest_addr: Optional[Tuple[str, int]] = None,
                     src_addr: Optional[Tuple[str, int]] = None,
                     window_size: Optional[int] = None, max_packet_size: Optional[int] = None,
                     timeout: Optional[float] = None) -> Channel:
        """Open a channel and wait (bounded) for the peer's answer."""
        if not self.active:
            raise self._not_active_error()
        if kind in ("forwarded-tcpip", "direct-tcpip"):
            if dest_addr is None or src_addr is None:
                raise TypeError(f"{kind} channels need dest_addr and src_addr (host, port)")
        timeout = self.channel_timeout if timeout is None else timeout
        chan = self._new_channel(window_size, max_packet_size)
        slot: list = [threading.Event(), None]
        with self._lock:
            self._channel_opening[chan.chanid] = slot
        m = Message()
        m.add_byte(c.cMSG_CHANNEL_OPEN).add_string(kind).add_int(chan.chanid)
        m.add_int(chan.in_window_size).add_int(chan.in_max_packet_size)
        if kind in ("forwarded-tcpip", "direct-tcpip"):
            m.add_string(dest_addr[0]).add_int(dest_addr[1])
            m.add_string(src_addr[0]).add_int(src_addr[1])
        elif kind == "x11":
            m.add_string(src_addr[0] if src_addr else "").add_int(src_addr[1] if src_addr else 0)
        what = f"{kind} channel" + (f" to {dest_addr[0]}:{dest_addr[1]}" if dest_addr and
                                    kind == "direct-tcpip" else "")
        try:
            self._send_user_message(m.asbytes())
            if not slot[0].wait(timeout):
                err = SSHException(f"Timeout opening {what} through {self.peer_name} "
                                   f"(no answer within {timeout:g}s)")
                err.phase, err.peer = "channel-open", self.peer_name
                raise err
        except BaseException:
            with self._lock:
                self._channel_opening.pop(chan.chanid, None)
            self._unlink_channel(chan.chanid)
            raise
        with self._lock:
            self._channel_opening.pop(chan.chanid, None)
        if slot[1] is not None:
            self._unlink_channel(chan.chanid)
            code, text = slot[1]
            err = ChannelException(code, f"{what} refused by {self.peer_name}: {text}")
            err.phase, err.peer = "channel-open", self.peer_name
            raise err
        if not self.active:
            self._unlink_channel(chan.chanid)
            raise self._not_active_error()
        return chan

    def _on_open_success(self, m: Message) -> None:
        chanid = m.get_int()
        remote_id, window, max_packet = m.get_int(), m.get_int(), m.get_int()
        chan = self._channels.get(chanid)
        with self._lock:
            slot = self._channel_opening.get(chanid)
        if chan is None or slot is None:
            return
        chan._set_remote_channel(remote_id, window, max_packet)
        slot[0].set()

    def _on_open_failure(self, m: Message) -> None:
        chanid = m.get_int()
        code = m.get_int()
        text = m.get_text()
        with self._lock:
            slot = self._channel_opening.get(chanid)
        if slot is None:
            return
        slot[1] = (code, text or c.CONNECTION_FAILED_CODE.get(code, "refused"))
        slot[0].set()

    def _refuse_open(self, sender: int, code: int, text: str = "") -> None:
        reply = Message().add_byte(c.cMSG_CHANNEL_OPEN_FAILURE).add_int(sender).add_int(code)
        reply.add_string(text or c.CONNECTION_FAILED_CODE.get(code, "")).add_string("")
        self._send_user_message(reply.asbytes())

    def _on_channel_open(self, m: Message) -> None:
        kind = m.get_text()
        sender, window, max_packet = m.get_int(), m.get_int(), m.get_int()
        prohibited = c.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        if self.server_mode and not self.authenticated:
            return self._refuse_open(sender, prohibited, "not authenticated")
        handler = None
        origin = dest = None
        if kind == "forwarded-tcpip" and not self.server_mode:
            dest = (m.get_text(), m.get_int())
            origin = (m.get_text(), m.get_int())
            if self._tcp_handler is None and not self._accepting_forwarded:
                return self._refuse_open(sender, prohibited)
            handler = self._tcp_handler
        elif kind == "x11" and not self.server_mode:
            origin = (m.get_text(), m.get_int())
            if self._x11_handler is None:
                return self._refuse_open(sender, prohibited)
            handler = self._x11_handler
        elif kind == "auth-agent@openssh.com" and not self.server_mode:
            if self._agent_handler is None:
                return self._refuse_open(sender, prohibited)
            handler = self._agent_handler
        elif self.server_mode:
            pass
        else:
            return self._refuse_open(sender, prohibited)

        chan = self._new_channel(None, None)
        result = c.OPEN_SUCCEEDED
        if self.server_mode:
            try:
                if kind == "direct-tcpip":
                    dest = (m.get_text(), m.get_int())
                    origin = (m.get_text(), m.get_int())
                    result = self.server_object.check_channel_direct_tcpip_request(
                        chan.chanid, origin, dest)
                else:
                    result = self.server_object.check_channel_request(kind, chan.chanid)
            except Exception as e:
                self._log(logging.ERROR, f"server callback failed for {kind} open: {e}")
                result = c.OPEN_FAILED_CONNECT_FAILED
        if result != c.OPEN_SUCCEEDED:
            self._unlink_channel(chan.chanid)
            return self._refuse_open(sender, result)
        chan._set_remote_channel(sender, window, max_packet)
        if origin is not None:
            chan.origin_addr = origin
        reply = Message().add_byte(c.cMSG_CHANNEL_OPEN_SUCCESS).add_int(sender)
        reply.add_int(chan.chanid).add_int(chan.in_window_size)
        reply.add_int(chan.in_max_packet_size)
        self._send_user_message(reply.asbytes())
        if handler is not None:
            # Handlers may block; never run them on the reader thread.
            args = (chan,) if kind == "auth-agent@openssh.com" else (
                (chan, origin, dest) if kind == "forwarded-tcpip" else (chan, origin))
            threading.Thread(target=handler, args=args, daemon=True,
                             name=f"paramiko {kind} handler").start()
            return
        with self.server_accept_cv:
            self.server_accepts.append(chan)
            self.server_accept_cv.notify_all()

    _accepting_forwarded = False

    def _set_forward_agent_handler(self, handler: Optional[Callable]) -> None:
        """Client side: ``handler(channel)`` runs (in its own thread) for each
        ``auth-agent@openssh.com`` channel the server opens after agent forwarding."""
        self._agent_handler = handler

    def _set_x11_handler(self, handler: Optional[Callable]) -> None:
        self._x11_handler = handler

    def accept(self, timeout: Optional[float] = None) -> Optional[Channel]:
        """Wait for the peer to open a channel to us; None on timeout or close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.server_accept_cv:
            while not self.server_accepts:
                if not self.active:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self.server_accept_cv.wait(min(left, 1.0) if left is not None else 1.0)
            return self.server_accepts.popleft()

    # -- global requests --------------------------------------------------------------------
    def global_request(self, kind: str, data=None, wait: bool = True) -> Optional[Message]:
        """Send a global request; with ``wait`` return the reply Message (None = refused)."""
        m = Message().add_byte(c.cMSG_GLOBAL_REQUEST).add_string(kind).add_boolean(wait)
        if data is not None:
            m.add(*data)
        waiter: list = [threading.Event(), None]
        with self._lock:
            if wait:
                self._global_waiters.append(waiter)
        self._send_user_message(m.asbytes())
        if not wait:
            return None
        if not waiter[0].wait(self.channel_timeout):
            with self._lock:
                try:
                    self._global_waiters.remove(waiter)
                except ValueError:
                    pass
            raise SSHException(f"global request {kind!r} to {self.peer_name} timed out")
        if not self.active and waiter[1] is None:
            raise self._not_active_error()
        return waiter[1]

    def _on_global_request(self, m: Message) -> None:
        kind = m.get_text()
        want_reply = m.get_boolean()
        ok: Any = False
        extra: tuple = ()
        if self.server_mode and self.authenticated:
            try:
                if kind == "tcpip-forward":
                    addr, port = m.get_text(), m.get_int()
                    got = self.server_object.check_port_forward_request(addr, port)
                    if got is not False and got is not None:
                        ok = True
                        if port == 0:
                            extra = (int(got),)
                elif kind == "cancel-tcpip-forward":
                    addr, port = m.get_text(), m.get_int()
                    self.server_object.cancel_port_forward_request(addr, port)
                    ok = True
                else:
                    ok = self.server_object.check_global_request(kind, m)
                    if isinstance(ok, (tuple, list)):
                        extra, ok = tuple(ok), True
            except Exception as e:
                self._log(logging.ERROR, f"server callback failed for {kind}: {e}")
                ok = False
        if want_reply:
            reply = Message().add_byte(c.cMSG_REQUEST_SUCCESS if ok else c.cMSG_REQUEST_FAILURE)
            if ok and extra:
                reply.add(*extra)
            self._send_user_message(reply.asbytes())
        elif not self.server_mode:
            # sshd sends hostkeys-00@openssh.com right after USERAUTH_SUCCESS, with Nagle on.
            # Left unanswered, our side delays its ACK ~40 ms and sshd's next packet (the
            # first channel-open reply) waits behind it; behind a gateway this hits every
            # target. A tiny IGNORE carries the ACK at once.
            self.send_ignore(1)

    def request_port_forward(self, address: str, port: int, handler=None) -> int:
        """Ask the server to listen on (address, port); return the bound port."""
        if not self.active:
            raise self._not_active_error()
        response = self.global_request("tcpip-forward", (address, int(port)), wait=True)
        if response is None:
            raise SSHException(f"{self.peer_name} refused port forwarding on "
                               f"{address}:{port}")
        if port == 0:
            port = response.get_int()
        self._tcp_handler = handler
        self._accepting_forwarded = handler is None
        return port

    def cancel_port_forward(self, address: str, port: int) -> None:
        if not self.active:
            return
        self._tcp_handler = None
        self._accepting_forwarded = False
        self.global_request("cancel-tcpip-forward", (address, int(port)), wait=False)

    def open_sftp_client(self, window_size: Optional[int] = None,
                         max_packet_size: Optional[int] = None):
        """An ``SFTPClient`` on a new session channel of this transport."""
        from paramiko.sftp_client import SFTPClient

        return SFTPClient.from_transport(self, window_size=window_size,
                                         max_packet_size=max_packet_size)

    # -- keys, rekey, misc ------------------------------------------------------------------
    def renegotiate_keys(self) -> None:
        """Start a key re-exchange now and wait (bounded) until it completes."""
        with self._lock:
            if not self.active:
                raise self._not_active_error()
            target = self._core.kex_count + 1
            self._core.start_rekey()
            claim = self._claim_writer()
        if claim:
            self._drain()
        deadline = time.monotonic() + self.handshake_timeout + self.banner_timeout
        with self._kex_cv:
            while self._core.kex_count < target:
                if not self.active:
                    raise self._dead_error("rekey")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SSHException(f"rekey with {self.peer_name} timed out")
                self._kex_cv.wait(left)

    def send_ignore(self, byte_count: Optional[int] = None) -> None:
        import os

        n = byte_count if byte_count is not None else 10 + os.urandom(1)[0] % 32
        m = Message().add_byte(c.cMSG_IGNORE).add_string(os.urandom(n))
        self._send_user_message(m.asbytes())

    def set_keepalive(self, interval: int) -> None:
        self.keepalive_interval = interval

    def set_server_alive(self, interval: float, count_max: int = 3) -> None:
        """fabric-gateway addition, OpenSSH's ServerAliveInterval/ServerAliveCountMax: after
        ``interval`` seconds without a packet from the peer, ask it for a reply; after
        ``count_max`` unanswered probes the transport fails with an SSHException."""
        self.server_alive_interval = float(interval or 0)
        self.server_alive_count_max = max(1, int(count_max))

    def set_rekey_limits(self, bytes_: Optional[int] = None, packets: Optional[int] = None,
                         interval: Optional[float] = None) -> None:
        """fabric-gateway addition: rekey after this many bytes or packets in either
        direction, or after ``interval`` seconds (OpenSSH's RekeyLimit). None keeps a value."""
        if bytes_ is not None:
            self.rekey_bytes = int(bytes_)
        if packets is not None:
            self.rekey_packets = int(packets)
        if interval is not None:
            self.rekey_interval = float(interval) or None
        if self._core is not None:
            with self._lock:
                self._apply_rekey_limits()

    def _apply_rekey_limits(self) -> None:
        self._core.rekey_bytes = self.rekey_bytes
        self._core.rekey_packets = self.rekey_packets
        self._core.rekey_interval = self.rekey_interval

    def get_remote_server_key(self):
        if not self.active or self.host_key is None:
            raise SSHException("No existing session")
        return self.host_key

    def is_active(self) -> bool:
        return self.active

    def is_authenticated(self) -> bool:
        return self.active and self.authenticated

    def get_exception(self) -> Optional[BaseException]:
        return self.saved_exception

    def getpeername(self):
        try:
            return self.sock.getpeername()
        except Exception:
            return ("unknown", 0)

    def get_username(self) -> Optional[str]:
        if self.auth_handler is None:
            return None
        return self.auth_handler.get_username()

    def get_banner(self) -> Optional[bytes]:
        if self.auth_handler is None:
            return None
        return getattr(self.auth_handler, "banner", None)

    # -- authentication --------------------------------------------------------------------
    def _auth_handler_for_client(self):
        from paramiko.auth_handler import AuthHandler

        if not self.active or self._core is None or not self._core.kex_count:
            raise SSHException("No existing session")
        if self.auth_handler is None:
            self.auth_handler = AuthHandler(self)
        return self.auth_handler

    def _auth_succeeded(self, username: str) -> None:
        self.authenticated = True
        with self._lock:
            self._core.enable_delayed_compression()

    def _run_auth(self, start: Callable[[Any, threading.Event], None],
                  event: Optional[threading.Event]) -> List[str]:
        handler = self._auth_handler_for_client()
        my_event = event if event is not None else threading.Event()
        start(handler, my_event)
        if event is not None:
            return []
        return handler.wait_for_response(my_event, self.auth_timeout)

    def auth_none(self, username: str) -> List[str]:
        return self._run_auth(lambda h, e: h.auth_none(username, e), None)

    def auth_password(self, username: str, password: str, event=None,
                      fallback: bool = True) -> List[str]:
        try:
            return self._run_auth(lambda h, e: h.auth_password(username, password, e), event)
        except BadAuthenticationType as e:
            if not fallback or "keyboard-interactive" not in e.allowed_types:
                raise

            def answer(title, instructions, prompts):
                return [password for _ in prompts]

            try:
                return self.auth_interactive(username, answer)
            except SSHException:
                raise e from None

    def auth_publickey(self, username: str, key, event=None) -> List[str]:
        return self._run_auth(lambda h, e: h.auth_publickey(username, key, e), event)

    def auth_interactive(self, username: str, handler, submethods: str = "") -> List[str]:
        return self._run_auth(
            lambda h, e: h.auth_interactive(username, handler, e, submethods), None)

    def auth_interactive_dumb(self, username: str, handler=None,
                              submethods: str = "") -> List[str]:
        if handler is None:
            import getpass

            def handler(title, instructions, prompt_list):
                if title:
                    print(title.strip())
                if instructions:
                    print(instructions.strip())
                return [getpass.getpass(p) if not echo else input(p)
                        for p, echo in prompt_list]
        return self.auth_interactive(username, handler, submethods)

    def connect(self, hostkey=None, username: str = "", password: Optional[str] = None,
                pkey=None, gss_host=None, gss_auth: bool = False, gss_kex: bool = False,
                gss_deleg_creds: bool = True, gss_trust_dns: bool = True) -> None:
        """Negotiate, check the host key if given, then authenticate (all bounded)."""
        if hostkey is not None:
            name = hostkey.get_name()
            if name == "ssh-rsa":
                self._preferred_keys = tuple(
                    ["rsa-sha2-512", "rsa-sha2-256"] +
                    [k for k in self._preferred_keys if k not in ("rsa-sha2-512",
                                                                  "rsa-sha2-256")])
            else:
                self._preferred_keys = tuple([name] + [k for k in self._preferred_keys
                                                       if k != name])
        self.start_client(timeout=self.banner_timeout + self.handshake_timeout)
        if hostkey is not None:
            key = self.get_remote_server_key()
            if key.get_name() != hostkey.get_name() or key.asbytes() != hostkey.asbytes():
                err = SSHException(f"Bad host key from {self.peer_name}")
                err.phase, err.peer = "hostkey", self.peer_name
                self.close()
                raise err
        if pkey is not None or password is not None:
            if password is not None and pkey is None:
                self.auth_password(username, password)
            else:
                self.auth_publickey(username, pkey)
            if not self.is_authenticated():
                raise AuthenticationException(f"authentication with {self.peer_name} failed")

    # -- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the session and every channel; returns after the reader thread ended."""
        if self._closing and not self.is_alive():
            return
        self._closing = True
        if self.active and self._core is not None:
            with self._lock:
                try:
                    self._core.disconnect(c.DISCONNECT_BY_APPLICATION, "")
                except Exception:
                    pass
                claim = self._claim_writer()
                # Another thread is writing (maybe the DISCONNECT itself, already taken from
                # the queue): keep the socket open until it is done (bounded).
                deadline = time.monotonic() + 1.0
                while not claim and self._writing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._writer_done.wait(left)
                    claim = self._claim_writer()
            if claim:
                try:
                    self._drain(deadline=time.monotonic() + 1.0)
                except Exception:
                    pass
        self.active = False
        try:
            if hasattr(self.sock, "shutdown"):
                self.sock.shutdown(socket.SHUT_RDWR)
        except Exception:
            pass
        try:
            self.sock.close()
        except Exception:
            pass
        self._wake_push_thread()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(10)
        if not self.is_alive() and self.ident is None:
            # Never started: nothing else will tell the channels.
            self._shutdown(None)

    def stop_thread(self) -> None:
        self.close()

    def atfork(self) -> None:
        try:
            self.sock.close()
        except Exception:
            pass
        self.active = False

    # -- logging ----------------------------------------------------------------------------
    def set_log_channel(self, name: str) -> None:
        self.log_name = name
        self.logger = get_logger(name)

    def get_log_channel(self) -> str:
        return self.log_name

    def set_hexdump(self, hexdump: bool) -> None:
        self._hexdump = hexdump

    def get_hexdump(self) -> bool:
        return self._hexdump

    def _log(self, level: int, msg) -> None:
        if isinstance(msg, list):
            for m in msg:
                self.logger.log(level, m)
        else:
            self.logger.log(level, msg)


class ServiceRequestingTransport(Transport):
    """Transport variant used by auth strategies; same behaviour here."""
