"""SSH agent support: talk to a running agent, and forward agent connections over SSH.

* :class:`Agent` speaks the agent protocol (draft-ietf-sshm-ssh-agent) over the unix socket
  named by ``$SSH_AUTH_SOCK``; its :class:`AgentKey` objects behave like public-only ``PKey``
  objects whose ``sign_ssh_data`` asks the agent, so ``Transport.auth_publickey`` takes them.
* :class:`AgentRequestHandler` (client side) asks the server to forward the agent and bridges
  each ``auth-agent@openssh.com`` channel the server opens to the local agent.
* :class:`AgentServerProxy` (server side) publishes a private unix socket; every connection to
  it becomes an ``auth-agent@openssh.com`` channel to the client's agent.

No cryptography happens here: the agent signs, this module only frames messages. Every socket
operation is bounded by a timeout, and every thread this module starts ends when either end of
its connection closes or when its owner's ``close()`` asks it to (joined with a bound).
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import struct
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from paramiko.message import Message
from paramiko.pkey import CERT_SUFFIX, PKey, PublicBlob
from paramiko.ssh_exception import SSHException

__all__ = [
    "ALGORITHM_FLAG_MAP",
    "DEFAULT_TIMEOUT",
    "MAX_AGENT_MESSAGE",
    "SSH2_AGENTC_REQUEST_IDENTITIES",
    "SSH2_AGENTC_SIGN_REQUEST",
    "SSH2_AGENT_IDENTITIES_ANSWER",
    "SSH2_AGENT_SIGN_RESPONSE",
    "SSH_AGENT_EXTENSION_FAILURE",
    "SSH_AGENT_FAILURE",
    "SSH_AGENT_RSA_SHA2_256",
    "SSH_AGENT_RSA_SHA2_512",
    "SSH_AGENT_SUCCESS",
    "Agent",
    "AgentClientProxy",
    "AgentKey",
    "AgentLocalProxy",
    "AgentProxyThread",
    "AgentRequestHandler",
    "AgentSSH",
    "AgentServerProxy",
]

# Message numbers (agent protocol draft, section "Protocol numbers").
SSH_AGENT_FAILURE = 5
SSH_AGENT_SUCCESS = 6
SSH2_AGENTC_REQUEST_IDENTITIES = 11
SSH2_AGENT_IDENTITIES_ANSWER = 12
SSH2_AGENTC_SIGN_REQUEST = 13
SSH2_AGENT_SIGN_RESPONSE = 14
SSH_AGENT_EXTENSION_FAILURE = 28

# One-byte forms, handy when building requests.
cSSH2_AGENTC_REQUEST_IDENTITIES = bytes((SSH2_AGENTC_REQUEST_IDENTITIES,))
cSSH2_AGENTC_SIGN_REQUEST = bytes((SSH2_AGENTC_SIGN_REQUEST,))

# Sign request flags selecting the RSA signature hash (RFC 8332 section 3.3).
SSH_AGENT_RSA_SHA2_256 = 2
SSH_AGENT_RSA_SHA2_512 = 4

ALGORITHM_FLAG_MAP: Dict[str, int] = {
    "rsa-sha2-256": SSH_AGENT_RSA_SHA2_256,
    "rsa-sha2-512": SSH_AGENT_RSA_SHA2_512,
    "rsa-sha2-256" + CERT_SUFFIX: SSH_AGENT_RSA_SHA2_256,
    "rsa-sha2-512" + CERT_SUFFIX: SSH_AGENT_RSA_SHA2_512,
}

# OpenSSH's agent refuses messages above 256 KiB; a bigger length header means garbage.
MAX_AGENT_MESSAGE = 256 * 1024
# Seconds any single agent socket/channel operation may take before it is an error.
DEFAULT_TIMEOUT = 30.0
# How long close() waits, in total, for the threads it stops.
JOIN_TIMEOUT = 5.0
# How often waiting threads look at their stop flag.
_POLL_INTERVAL = 0.2
_CHUNK = 65536
_U32 = struct.Struct(">I")
_RSA_SIG_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")

_log = logging.getLogger("paramiko.agent")

_MESSAGE_NAMES = {
    SSH_AGENT_FAILURE: "SSH_AGENT_FAILURE",
    SSH_AGENT_SUCCESS: "SSH_AGENT_SUCCESS",
    SSH2_AGENT_IDENTITIES_ANSWER: "SSH2_AGENT_IDENTITIES_ANSWER",
    SSH2_AGENT_SIGN_RESPONSE: "SSH2_AGENT_SIGN_RESPONSE",
    SSH_AGENT_EXTENSION_FAILURE: "SSH_AGENT_EXTENSION_FAILURE",
}


def _describe(msg_type: int) -> str:
    return _MESSAGE_NAMES.get(msg_type, f"unexpected message type {msg_type}")


def _default_sock_path() -> Optional[str]:
    return os.environ.get("SSH_AUTH_SOCK") or None


def _connect_unix(path: str, timeout: float) -> socket.socket:
    """A connected unix stream socket (with ``timeout`` set); ``OSError`` if unreachable."""
    if not hasattr(socket, "AF_UNIX"):
        raise OSError("unix domain sockets are not available on this platform")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def _close_quietly(obj: Any) -> None:
    if obj is None:
        return
    try:
        obj.close()
    except Exception as e:  # noqa: BLE001 - closing is best effort
        _log.debug("agent: ignoring error while closing %r: %s", obj, e)


# ---------------------------------------------------------------------------------------------
# talking to an agent
# ---------------------------------------------------------------------------------------------


class AgentSSH:
    """The agent protocol over one connection (a unix socket, or an agent channel).

    Requests are serialized under a lock, so one connection may be shared by threads. Any
    transport failure (timeout, EOF, oversized or empty reply) closes the connection, since
    the request/reply stream can no longer be trusted, and raises ``SSHException``.
    """

    def __init__(self, timeout: Optional[float] = None) -> None:
        self._conn: Any = None
        self._keys: Tuple[AgentKey, ...] = ()
        self._lock = threading.RLock()
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        self._where = "ssh-agent"

    def get_keys(self) -> Tuple[AgentKey, ...]:
        """The agent's identities, as fetched when the connection was made."""
        return self._keys

    def _connect(self, conn: Any) -> None:
        """Adopt ``conn`` (socket-like: settimeout/sendall/recv/close) and fetch the keys."""
        with self._lock:
            self._conn = conn
            self._keys = self._request_identities()

    def _close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            self._keys = ()
        _close_quietly(conn)

    def _drop_connection(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        _close_quietly(conn)

    def _read_exact(self, conn: Any, n: int) -> bytes:
        parts: List[bytes] = []
        got = 0
        while got < n:
            data = conn.recv(min(n - got, _CHUNK))
            if not data:
                raise SSHException(f"{self._where} closed the connection in the middle of a "
                                   f"reply ({got} of {n} bytes read)")
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def _send_message(self, msg: Union[Message, bytes]) -> Tuple[int, Message]:
        """Send one request; returns ``(reply type, Message over the reply body)``."""
        payload = msg.asbytes() if isinstance(msg, Message) else bytes(msg)
        with self._lock:
            conn = self._conn
            if conn is None:
                raise SSHException(f"not connected to {self._where}")
            try:
                conn.settimeout(self.timeout)
                conn.sendall(_U32.pack(len(payload)) + payload)
                (length,) = _U32.unpack(self._read_exact(conn, 4))
                if length == 0:
                    raise SSHException(f"{self._where} sent an empty reply")
                if length > MAX_AGENT_MESSAGE:
                    raise SSHException(f"{self._where} sent a reply of {length} bytes (more "
                                       f"than the {MAX_AGENT_MESSAGE} allowed): not an agent?")
                body = self._read_exact(conn, length)
            except socket.timeout:
                self._drop_connection()
                raise SSHException(f"{self._where} did not answer within "
                                   f"{self.timeout:g}s") from None
            except OSError as e:
                self._drop_connection()
                raise SSHException(f"lost the connection to {self._where}: {e}") from None
            except SSHException:
                self._drop_connection()
                raise
        return body[0], Message(body[1:])

    def _request_identities(self) -> Tuple[AgentKey, ...]:
        kind, reply = self._send_message(cSSH2_AGENTC_REQUEST_IDENTITIES)
        if kind != SSH2_AGENT_IDENTITIES_ANSWER:
            raise SSHException(f"could not get keys from {self._where}: it answered "
                               f"{_describe(kind)}")
        try:
            count = reply.get_int()
            # Each identity takes at least two length fields: bound the count before looping.
            if count > len(reply.get_remainder()) // 8:
                raise SSHException(f"claims {count} keys in a "
                                   f"{len(reply.get_remainder())}-byte answer")
            keys = []
            for _ in range(count):
                blob = reply.get_binary()
                comment = reply.get_string()
                keys.append(AgentKey(self, blob, comment))
            if reply.get_remainder():
                raise SSHException("trailing bytes after the last key")
        except SSHException as e:
            raise SSHException(f"malformed identities answer from {self._where}: {e}") from None
        return tuple(keys)


class Agent(AgentSSH):
    """A client of the running ssh-agent at ``$SSH_AUTH_SOCK`` (or ``sock_path``).

    The keys are fetched once, at construction. If no agent is configured or it cannot be
    reached, there is simply no key (``get_keys() == ()``) and no error. A reachable agent that
    answers nonsense, or stops answering for ``timeout`` seconds, raises ``SSHException``.
    Pageant and the Windows OpenSSH named pipe are not supported.
    """

    def __init__(self, sock_path: Optional[str] = None,
                 timeout: Optional[float] = None) -> None:
        super().__init__(timeout)
        path = sock_path if sock_path is not None else _default_sock_path()
        self.sock_path = path
        if not path:
            return
        try:
            conn = _connect_unix(path, self.timeout)
        except OSError as e:
            _log.debug("agent: no usable ssh-agent at %s: %s", path, e)
            return
        self._where = f"ssh-agent at {path}"
        try:
            self._connect(conn)
        except BaseException:
            self._close()
            raise

    def close(self) -> None:
        """Close the agent connection; the keys become unusable for signing."""
        self._close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AgentKey(PKey):
    """A public key whose private half lives in an agent; signing asks the agent.

    ``blob`` is the identity exactly as the agent listed it: a plain key or an OpenSSH
    certificate (``*-cert-v01@openssh.com``); ``get_name()`` is its type name and
    ``asbytes()`` the blob itself. For a certificate, ``public_blob`` holds it too (as for a
    ``PKey`` loaded with its certificate) and the fingerprints are those of the certified key,
    as ``ssh-add -l`` shows them. ``inner_key`` is the parsed key when the type is one this
    library knows (else None: the key still signs, but ``get_bits()`` is 0).
    """

    def __init__(self, agent: Optional[AgentSSH], blob: bytes,
                 comment: Union[str, bytes] = "") -> None:
        self.agent = agent
        self.blob = bytes(blob)
        if isinstance(comment, (bytes, bytearray)):
            comment = bytes(comment).decode("utf-8", "replace")
        self.comment = comment
        self.name = Message(self.blob).get_text()
        if not self.name:
            raise SSHException("agent key blob has an empty type name")
        self.inner_key: Optional[PKey] = None
        try:
            self.inner_key = PKey.from_type_string(self.name, self.blob)
        except SSHException as e:
            _log.debug("agent: %s key kept opaque: %s", self.name, e)
        self.public_blob = (PublicBlob(self.name, self.blob, comment)
                            if self.name.endswith(CERT_SUFFIX) else None)
        if self.inner_key is not None:
            self._public = self.inner_key._public

    @property
    def _base_type(self) -> str:
        if self.name.endswith(CERT_SUFFIX):
            return self.name[: -len(CERT_SUFFIX)]
        return self.name

    def get_name(self) -> str:
        return self.name

    def asbytes(self) -> bytes:
        return self.blob

    @property
    def algorithm_name(self) -> str:
        if self.inner_key is not None:
            return self.inner_key.algorithm_name
        return self._base_type.upper()

    def get_bits(self) -> int:
        return self.inner_key.get_bits() if self.inner_key is not None else 0

    def can_sign(self) -> bool:
        return True

    def get_fingerprint(self) -> bytes:
        if self.inner_key is not None:
            return self.inner_key.get_fingerprint()
        return super().get_fingerprint()

    @property
    def fingerprint(self) -> str:
        if self.inner_key is not None:
            return self.inner_key.fingerprint
        return super().fingerprint

    def verify_ssh_sig(self, data: bytes, msg: Union[Message, bytes]) -> bool:
        if self.inner_key is None:
            return False
        return self.inner_key.verify_ssh_sig(data, msg)

    def __repr__(self) -> str:
        return (f"AgentKey({self.name}, bits={self.get_bits()}, fp={self.fingerprint}, "
                f"comment={self.comment!r})")

    def _signature_request(self, algorithm: Optional[str]) -> Tuple[str, int]:
        """``(signature algorithm the agent must use, sign request flags)``."""
        base = self._base_type
        if algorithm is not None and algorithm.endswith(CERT_SUFFIX):
            algorithm = algorithm[: -len(CERT_SUFFIX)]
        if base == "ssh-rsa":
            algorithm = algorithm or "rsa-sha2-512"
            if algorithm not in _RSA_SIG_ALGORITHMS:
                raise SSHException(f"an RSA agent key cannot sign with {algorithm!r}")
            return algorithm, ALGORITHM_FLAG_MAP.get(algorithm, 0)
        if algorithm is not None and algorithm != base:
            raise SSHException(f"a {base} agent key cannot sign with {algorithm!r}")
        return base, 0

    def sign_ssh_data(self, data: bytes, algorithm: Optional[str] = None) -> bytes:  # type: ignore[override]
        """Have the agent sign ``data``; returns the signature blob (``string alg, string sig``).

        ``algorithm`` picks the RSA hash (``rsa-sha2-512``, the default, ``rsa-sha2-256`` or
        the legacy ``ssh-rsa``); a ``-cert-v01@openssh.com`` suffix is ignored. The agent's
        answer must be a signature made with exactly that algorithm.
        """
        agent = self.agent
        if agent is None:
            raise SSHException("this agent key has no agent to sign with")
        want, flags = self._signature_request(algorithm)
        m = Message()
        m.add_byte(cSSH2_AGENTC_SIGN_REQUEST)
        m.add_string(self.blob)
        m.add_string(bytes(data))
        m.add_int(flags)
        kind, reply = agent._send_message(m)
        if kind != SSH2_AGENT_SIGN_RESPONSE:
            raise SSHException(f"{agent._where} refused to sign with the {self.name} key "
                               f"{self.fingerprint} ({_describe(kind)})")
        try:
            sig = reply.get_binary()
            if reply.get_remainder():
                raise SSHException("trailing bytes after the signature")
            inner = Message(sig)
            got = inner.get_text()
            inner.get_binary()
            if inner.get_remainder():
                raise SSHException("trailing bytes inside the signature blob")
        except SSHException as e:
            raise SSHException(f"malformed sign response from {agent._where}: {e}") from None
        if got != want:
            raise SSHException(f"{agent._where} signed with {got!r} instead of the requested "
                               f"{want!r} (an agent without RFC 8332 support?)")
        return sig


# ---------------------------------------------------------------------------------------------
# forwarding: byte pumps between a channel and a unix socket
# ---------------------------------------------------------------------------------------------


class AgentProxyThread(threading.Thread):
    """Copies bytes both ways between an agent channel and a unix socket connection.

    ``open_channel`` (instead of ``chan``) makes the thread open its channel first. When one
    side reaches EOF, the other gets EOF too; once both are done (or one side is closed, an
    error happens, ``timeout`` passes after the first EOF, or :meth:`stop` is called) the thread
    closes both and ends. Only this thread ever closes the channel and the socket.
    """

    def __init__(self, chan: Any, sock: socket.socket, timeout: float = DEFAULT_TIMEOUT,
                 open_channel: Optional[Callable[[], Any]] = None,
                 name: str = "paramiko-agent-proxy") -> None:
        super().__init__(name=name, daemon=True)
        if chan is None and open_channel is None:
            raise ValueError("AgentProxyThread needs a channel or a way to open one")
        self.chan = chan
        self.sock = sock
        self.timeout = timeout
        self._open_channel = open_channel
        self._halt = threading.Event()
        self.error: Optional[BaseException] = None

    def stop(self) -> None:
        """Ask the thread to finish (it notices within a fraction of a second)."""
        self._halt.set()

    def run(self) -> None:
        try:
            if self.chan is None:
                assert self._open_channel is not None
                self.chan = self._open_channel()
            if not self._halt.is_set():
                self._pump()
        except Exception as e:  # noqa: BLE001 - ends this one forwarded connection
            self.error = e
            _log.debug("agent: forwarded connection ended: %s: %s", type(e).__name__, e)
        finally:
            _close_quietly(self.chan)
            _close_quietly(self.sock)

    def _pump(self) -> None:
        chan, sock = self.chan, self.sock
        chan.settimeout(self.timeout)
        sock.settimeout(self.timeout)
        sel = selectors.DefaultSelector()
        try:
            sel.register(sock, selectors.EVENT_READ)
            sel.register(chan.fileno(), selectors.EVENT_READ, "chan")
            sock_open = chan_open = True
            linger_until: Optional[float] = None
            while (sock_open or chan_open) and not self._halt.is_set():
                if linger_until is not None and time.monotonic() > linger_until:
                    _log.debug("agent: forwarded connection half-closed for too long")
                    return
                if chan.closed:
                    return
                for key, _ in sel.select(_POLL_INTERVAL):
                    if key.data == "chan":
                        if chan.recv_stderr_ready():
                            chan.recv_stderr(_CHUNK)  # agent channels carry no stderr
                        if chan.recv_ready():
                            sock.sendall(chan.recv(_CHUNK))
                        elif chan.eof_received or chan.closed:
                            chan_open = False
                            sel.unregister(key.fileobj)
                            sock.shutdown(socket.SHUT_WR)
                    else:
                        data = sock.recv(_CHUNK)
                        if data:
                            chan.sendall(data)
                        else:
                            sock_open = False
                            sel.unregister(sock)
                            chan.shutdown_write()
                if (sock_open != chan_open) and linger_until is None:
                    linger_until = time.monotonic() + self.timeout
        finally:
            sel.close()


def _join_all(threads: List[threading.Thread], budget: float) -> List[threading.Thread]:
    """Join each thread within one shared time budget; returns those still alive."""
    deadline = time.monotonic() + budget
    for t in threads:
        if t is threading.current_thread():
            continue
        t.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threads if t.is_alive() and t is not threading.current_thread()]


class AgentClientProxy:
    """Client side: one forwarded agent channel, bridged to the local agent socket."""

    def __init__(self, chanRemote: Any, sock_path: Optional[str] = None,
                 timeout: Optional[float] = None) -> None:
        self.chan = chanRemote
        self.sock_path = sock_path if sock_path is not None else _default_sock_path()
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        self.thread: Optional[AgentProxyThread] = None

    def connect(self) -> None:
        """Connect to the local agent and start pumping; ``SSHException`` if unreachable."""
        if not self.sock_path:
            raise SSHException("cannot forward the agent: SSH_AUTH_SOCK is not set")
        try:
            sock = _connect_unix(self.sock_path, self.timeout)
        except OSError as e:
            raise SSHException(f"cannot reach the local ssh-agent at {self.sock_path}: "
                               f"{e}") from None
        self.thread = AgentProxyThread(self.chan, sock, self.timeout,
                                       name="paramiko-agent-client-proxy")
        self.thread.start()

    def is_alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def close(self) -> None:
        """Stop forwarding (the channel and the agent connection are closed)."""
        if self.thread is None:
            _close_quietly(self.chan)
            return
        self.thread.stop()
        _join_all([self.thread], JOIN_TIMEOUT)


class AgentRequestHandler:
    """Client side of agent forwarding on one session channel.

    Sends ``auth-agent-req@openssh.com`` on ``chanClient``; from then on every
    ``auth-agent@openssh.com`` channel the server opens is bridged, in its own thread, to the
    local agent (``sock_path``, by default ``$SSH_AUTH_SOCK`` as it is now). If the local agent
    is unreachable the forwarded channel is simply closed. :meth:`close` ends all bridges.
    """

    def __init__(self, chanClient: Any, sock_path: Optional[str] = None,
                 timeout: Optional[float] = None) -> None:
        self._chan = chanClient
        self.sock_path = sock_path if sock_path is not None else _default_sock_path()
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        self._lock = threading.Lock()
        self._proxies: List[AgentClientProxy] = []
        self._closed = False
        self._transport = chanClient.get_transport()
        chanClient.request_forward_agent(self._forward_agent_handler)

    def _forward_agent_handler(self, chanRemote: Any) -> None:
        """Called (in a thread of its own) for each forwarded agent channel."""
        with self._lock:
            if self._closed:
                _close_quietly(chanRemote)
                return
            proxy = AgentClientProxy(chanRemote, self.sock_path, self.timeout)
            try:
                proxy.connect()
            except SSHException as e:
                _log.warning("agent forwarding: %s; refusing the forwarded connection", e)
                _close_quietly(chanRemote)
                return
            self._proxies = [p for p in self._proxies if p.is_alive()] + [proxy]

    def close(self) -> None:
        """Stop accepting forwarded channels and end every bridge (joined with a bound)."""
        with self._lock:
            self._closed = True
            proxies, self._proxies = self._proxies, []
        setter = getattr(self._transport, "_set_forward_agent_handler", None)
        current = getattr(self._transport, "_agent_handler", None)
        if setter is not None and current == self._forward_agent_handler:
            setter(None)
        threads = []
        for p in proxies:
            if p.thread is not None:
                p.thread.stop()
                threads.append(p.thread)
        left = _join_all(threads, JOIN_TIMEOUT)
        if left:
            _log.warning("agent forwarding: %d proxy thread(s) still running after close()",
                         len(left))


# ---------------------------------------------------------------------------------------------
# forwarding, server side
# ---------------------------------------------------------------------------------------------


class AgentLocalProxy(threading.Thread):
    """Server side: accepts connections on the proxy's unix socket, one bridge thread each."""

    def __init__(self, server_proxy: AgentServerProxy, listener: socket.socket) -> None:
        super().__init__(name="paramiko-agent-local-proxy", daemon=True)
        self._server_proxy = server_proxy
        self._listener = listener
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        lsock = self._listener
        try:
            lsock.settimeout(_POLL_INTERVAL)
            while not self._halt.is_set():
                try:
                    conn, _ = lsock.accept()
                except socket.timeout:
                    continue
                except OSError as e:
                    _log.debug("agent: local agent socket failed: %s", e)
                    return
                if self._halt.is_set():
                    conn.close()
                    return
                self._server_proxy._bridge(conn)
        finally:
            _close_quietly(lsock)


class AgentServerProxy(AgentSSH):
    """Server side of agent forwarding for transport ``t`` (after the client asked for it).

    :meth:`connect` creates a private directory (mode 0700) holding a unix socket; each
    connection made to it is carried to the client's agent over a new
    ``auth-agent@openssh.com`` channel. Give :meth:`get_env` to the processes that should use
    the forwarded agent. :meth:`get_keys` lists the client's keys from here (over a channel
    opened on first use). :meth:`close` removes the socket and directory and ends all threads.
    """

    def __init__(self, t: Any, timeout: Optional[float] = None) -> None:
        super().__init__(timeout)
        self._transport = t
        self._where = "the forwarded ssh-agent"
        self._dir: Optional[str] = None
        self._path: Optional[str] = None
        self._listener_thread: Optional[AgentLocalProxy] = None
        self._bridges: List[AgentProxyThread] = []
        self._bridge_lock = threading.Lock()
        self._closed = False

    def _open_agent_channel(self) -> Any:
        t = self._transport
        if hasattr(t, "open_channel"):  # same channel, but with our bounded wait
            chan = t.open_channel("auth-agent@openssh.com", timeout=self.timeout)
        else:
            chan = t.open_forward_agent_channel()
        if chan is None:
            raise SSHException("the client did not open an agent channel")
        return chan

    def connect(self) -> None:
        """Create the private socket and start serving it (idempotent)."""
        if self._closed:
            raise SSHException("this AgentServerProxy is closed")
        if self._path is not None:
            return
        is_active = getattr(self._transport, "is_active", None)
        if is_active is not None and not is_active():
            raise SSHException("cannot forward the agent: the transport is not active")
        if not hasattr(socket, "AF_UNIX"):
            raise SSHException("agent forwarding needs unix domain sockets")
        directory = tempfile.mkdtemp(prefix="paramiko-agent-")
        path = os.path.join(directory, f"agent.{os.getpid()}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(16)
        except OSError as e:
            listener.close()
            _remove_socket_dir(path, directory)
            raise SSHException(f"cannot create the agent socket {path}: {e}") from None
        self._dir, self._path = directory, path
        self._listener_thread = AgentLocalProxy(self, listener)
        self._listener_thread.start()

    def _bridge(self, conn: socket.socket) -> None:
        with self._bridge_lock:
            if self._closed:
                conn.close()
                return
            bridge = AgentProxyThread(None, conn, self.timeout,
                                      open_channel=self._open_agent_channel,
                                      name="paramiko-agent-server-proxy")
            self._bridges = [b for b in self._bridges if b.is_alive()] + [bridge]
            bridge.start()

    def _get_filename(self) -> Optional[str]:
        return self._path

    def get_env(self) -> Dict[str, str]:
        """``{"SSH_AUTH_SOCK": path}`` for the forwarded agent; requires :meth:`connect`."""
        if self._path is None:
            raise SSHException("AgentServerProxy.connect() has not been called")
        return {"SSH_AUTH_SOCK": self._path}

    def get_keys(self) -> Tuple[AgentKey, ...]:
        """The client's agent keys (fetched once, over an agent channel)."""
        with self._lock:
            if self._closed:
                raise SSHException("this AgentServerProxy is closed")
            if self._conn is None:
                self._connect(self._open_agent_channel())
            return self._keys

    def close(self) -> None:
        """Remove the socket and its directory; stop and join every thread (bounded)."""
        with self._bridge_lock:
            self._closed = True
            bridges, self._bridges = self._bridges, []
        threads: List[threading.Thread] = []
        if self._listener_thread is not None:
            self._listener_thread.stop()
            threads.append(self._listener_thread)
        for b in bridges:
            b.stop()
            threads.append(b)
        left = _join_all(threads, JOIN_TIMEOUT)
        if left:
            _log.warning("agent forwarding: %d thread(s) still running after close()",
                         len(left))
        self._close()
        if self._path is not None and self._dir is not None:
            _remove_socket_dir(self._path, self._dir)
        self._listener_thread = None

    def __enter__(self) -> AgentServerProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _remove_socket_dir(path: str, directory: str) -> None:
    for remove, target in ((os.unlink, path), (os.rmdir, directory)):
        try:
            remove(target)
        except FileNotFoundError:
            pass
        except OSError as e:
            _log.warning("agent: could not remove %s: %s", target, e)
