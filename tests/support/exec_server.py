"""A small SSH exec server built only on the public server API of ``paramiko``.

It lets OpenSSH's ``ssh`` (and our own client) talk to this library's server side: public-key
authentication against one authorized key, ``session`` channels, and ``exec`` requests that run
the command with ``/bin/sh -c`` while streaming stdout/stderr back and stdin in, then sending the
exit status.

Run it as a program (it prints the bound port as the first line of stdout, then serves until it
gets SIGTERM or SIGINT)::

    python -m tests.support.exec_server --port 0 --host-key KEY [--host-key KEY2 ...] \
        --authorized-key ID.pub

or import :class:`ExecServer` and ``start()`` it in a thread.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import paramiko

CHUNK = 65536


def load_private_key(path: str) -> paramiko.PKey:
    """Load an OpenSSH private key file, choosing the class from its ``.pub`` companion."""
    pub = Path(path + ".pub")
    kind = pub.read_text().split()[0] if pub.exists() else ""
    if kind == "ssh-ed25519":
        classes: Sequence[type] = (paramiko.Ed25519Key,)
    elif kind.startswith("ecdsa-sha2-"):
        classes = (paramiko.ECDSAKey,)
    elif kind == "ssh-rsa":
        classes = (paramiko.RSAKey,)
    else:
        classes = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)
    last: Optional[Exception] = None
    for cls in classes:
        try:
            return cls.from_private_key_file(path)
        except Exception as e:  # noqa: BLE001 - try the next key class
            last = e
    raise ValueError(f"cannot load host key {path}: {last}")


def read_authorized_blob(path: str) -> bytes:
    """The public key blob (decoded base64) of the first key line of an OpenSSH .pub file."""
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith("#"):
            return base64.b64decode(parts[1])
    raise ValueError(f"no key in {path}")


class _Policy(paramiko.ServerInterface):
    """Server policy: only publickey with the one authorized key; session channels; exec."""

    def __init__(self, server: ExecServer, conn: Tuple[str, int, str, int]) -> None:
        self.server = server
        self.conn = conn

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_none(self, username):
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username, password):
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        if key.asbytes() == self.server.authorized_blob:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        if isinstance(command, bytes):
            command = command.decode("utf-8", "surrogateescape")
        worker = threading.Thread(target=self.server._run_exec, args=(channel, command, self.conn),
                                  name="exec-server-command", daemon=True)
        worker.start()
        return True


class ExecServer:
    """Accepts SSH connections on ``host:port`` and serves exec requests until :meth:`stop`."""

    def __init__(self, host_keys: Sequence[str], authorized_key: str, host: str = "127.0.0.1",
                 port: int = 0, policy_factory=None) -> None:
        self.host_keys: List[paramiko.PKey] = [load_private_key(p) for p in host_keys]
        self.authorized_blob = read_authorized_blob(authorized_key)
        self.host = host
        self.port = port
        # policy_factory(server, conn) -> ServerInterface; defaults to publickey-only.
        self.policy_factory = policy_factory or _Policy
        self._listener: Optional[socket.socket] = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._transports: List[paramiko.Transport] = []
        self._procs: Dict[int, subprocess.Popen] = {}
        self._threads: List[threading.Thread] = []
        self.errors: List[str] = []
        # Group exchange needs a moduli file on the server side; OpenSSH's is the usual one.
        try:
            paramiko.Transport.load_server_moduli()
        except Exception as e:  # noqa: BLE001 - only GEX is affected
            self.errors.append(f"moduli: {e!r}")

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> int:
        """Bind, start the accept thread and return the bound port."""
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((self.host, self.port))
        lsock.listen(32)
        lsock.settimeout(0.2)
        self._listener = lsock
        self.port = lsock.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name="exec-server-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self.port

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection and kill every command still running."""
        self._stopping.set()
        with self._lock:
            transports = list(self._transports)
            procs = list(self._procs.values())
        for proc in procs:
            _kill_group(proc)
        for tr in transports:
            try:
                tr.close()
            except Exception:  # noqa: BLE001 - best effort during shutdown
                pass
        for t in list(self._threads):
            t.join(timeout)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for proc in procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass

    # -- connections -----------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(sock,), name="exec-server-conn",
                                 daemon=True)
            t.start()
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = sock.getpeername()
            local = sock.getsockname()
        except OSError:  # the client is gone already
            sock.close()
            return
        conn = (peer[0], peer[1], local[0], local[1])
        tr = paramiko.Transport(sock)
        with self._lock:
            self._transports.append(tr)
        try:
            for key in self.host_keys:
                tr.add_server_key(key)
            # Offer zlib too (the client decides: OpenSSH asks for it only with Compression=yes).
            tr.use_compression(True)
            try:
                tr.start_server(server=self.policy_factory(self, conn))
            except Exception as e:  # noqa: BLE001 - a failed handshake ends this connection
                self.errors.append(f"handshake from {peer}: {e!r}")
                return
            # Channels are served from the exec callback. Accepted channels are kept referenced
            # here: a dropped Channel object may be closed when it is garbage-collected.
            accepted = []
            while tr.is_active() and not self._stopping.is_set():
                chan = tr.accept(0.5)
                if chan is not None:
                    accepted = [c for c in accepted if not c.closed] + [chan]
        finally:
            tr.close()
            with self._lock:
                if tr in self._transports:
                    self._transports.remove(tr)

    def _run_exec(self, chan: paramiko.Channel, command: str,
                  conn: Tuple[str, int, str, int]) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "USER": os.environ.get("USER", ""),
            "LOGNAME": os.environ.get("LOGNAME", os.environ.get("USER", "")),
            "SHELL": "/bin/sh",
            "LANG": "C",
            "SSH_CONNECTION": " ".join(str(x) for x in conn),
        }
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    start_new_session=True)
        except OSError as e:
            self._finish(chan, 127, f"exec failed: {e}\n".encode())
            return
        with self._lock:
            self._procs[proc.pid] = proc
        try:
            out = threading.Thread(target=_pump_out, args=(proc.stdout, chan.sendall, proc),
                                   daemon=True)
            err = threading.Thread(target=_pump_out,
                                   args=(proc.stderr, chan.sendall_stderr, proc), daemon=True)
            inp = threading.Thread(target=_pump_in, args=(chan, proc.stdin), daemon=True)
            for t in (out, err, inp):
                t.start()
            out.join()
            err.join()
            rc = proc.wait()
        finally:
            with self._lock:
                self._procs.pop(proc.pid, None)
        self._finish(chan, rc if rc >= 0 else 128 - rc, b"")

    @staticmethod
    def _finish(chan: paramiko.Channel, status: int, stderr: bytes) -> None:
        try:
            if stderr:
                chan.sendall_stderr(stderr)
            chan.send_exit_status(status)
            chan.shutdown_write()
        except Exception:  # noqa: BLE001 - the client may be gone already
            pass
        finally:
            chan.close()


def _pump_out(stream, send, proc: subprocess.Popen) -> None:
    fd = stream.fileno()
    try:
        while True:
            data = os.read(fd, CHUNK)
            if not data:
                return
            send(data)
    except Exception:  # noqa: BLE001 - channel closed under us: stop the command
        _kill_group(proc)
    finally:
        stream.close()


def _pump_in(chan: paramiko.Channel, stdin) -> None:
    try:
        while True:
            data = chan.recv(CHUNK)
            if not data:
                break
            stdin.write(data)
            stdin.flush()
    except Exception:  # noqa: BLE001 - the command may have exited (broken pipe)
        pass
    finally:
        try:
            stdin.close()
        except OSError:
            pass


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host-key", action="append", required=True,
                    help="private host key file (repeat for several types)")
    ap.add_argument("--authorized-key", required=True, help="the client's public key file")
    args = ap.parse_args(argv)
    server = ExecServer(args.host_key, args.authorized_key, args.host, args.port)
    done = threading.Event()

    def _on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    port = server.start()
    print(port, flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
        for e in server.errors:
            print(e, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
