"""An in-process SSH server built on this library's server API, for fast tests.

``make_pair`` connects a client ``Transport`` and a server ``Transport`` over the in-memory
socket pair. The server understands a tiny command language for exec requests so tests can
ask for output sizes, stderr and exit codes without any subprocess:

* ``echo TEXT`` – TEXT and a newline on stdout
* ``cat`` – copy stdin to stdout until EOF
* ``emit OUT ERR`` – OUT bytes of b"o" on stdout and ERR bytes of b"e" on stderr
* ``exit N`` – nothing, exit status N
"""

from __future__ import annotations

import threading
from typing import Optional, Tuple

import paramiko
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_SUCCEEDED
from tests.support.memsock import socket_pair

USER, PASSWORD = "alice", "correct horse"


class LoopServer(paramiko.ServerInterface):
    def __init__(self) -> None:
        self.threads = []
        self.port_forwards = []
        self.direct_tcpip = []

    def get_allowed_auths(self, username):
        return "password,publickey"

    def check_auth_password(self, username, password):
        return AUTH_SUCCESSFUL if (username, password) == (USER, PASSWORD) else AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return OPEN_SUCCEEDED if kind == "session" else 3

    def check_channel_exec_request(self, channel, command):
        t = threading.Thread(target=self._run, args=(channel, command.decode()
                                                      if isinstance(command, bytes)
                                                      else command), daemon=True)
        self.threads.append(t)
        t.start()
        return True

    def check_channel_direct_tcpip_request(self, chanid, origin, destination):
        self.direct_tcpip.append(destination)
        return OPEN_SUCCEEDED if destination[1] == 22 else 2

    def check_port_forward_request(self, address, port):
        self.port_forwards.append((address, port))
        return port or 40000

    def check_global_request(self, kind, msg):
        return kind == "test@example.com"

    @staticmethod
    def _run(channel, command: str) -> None:
        word, _, rest = command.partition(" ")
        status = 0
        try:
            if word == "echo":
                channel.sendall(rest.encode() + b"\n")
            elif word == "cat":
                while True:
                    data = channel.recv(65536)
                    if not data:
                        break
                    channel.sendall(data)
            elif word == "emit":
                out, err = (int(x) for x in rest.split())
                chunk = 65536
                sent_o = sent_e = 0
                # Interleave so both streams are in flight together.
                while sent_o < out or sent_e < err:
                    if sent_o < out:
                        n = min(chunk, out - sent_o)
                        channel.sendall(b"o" * n)
                        sent_o += n
                    if sent_e < err:
                        n = min(chunk, err - sent_e)
                        channel.sendall_stderr(b"e" * n)
                        sent_e += n
            elif word == "exit":
                status = int(rest)
            else:
                channel.sendall_stderr(f"unknown command {word}\n".encode())
                status = 127
            channel.send_exit_status(status)
        finally:
            channel.close()


def make_pair(host_key, server: Optional[LoopServer] = None, client_setup=None,
              server_setup=None, timeout: float = 10.0
              ) -> Tuple[paramiko.Transport, paramiko.Transport, LoopServer]:
    """A negotiated (not yet authenticated) client/server Transport pair."""
    server = server or LoopServer()
    csock, ssock = socket_pair()
    client = paramiko.Transport(csock)
    srv = paramiko.Transport(ssock)
    srv.add_server_key(host_key)
    if client_setup:
        client_setup(client)
    if server_setup:
        server_setup(srv)
    errors = []

    def serve():
        try:
            srv.start_server(server=server)
        except Exception as e:  # reported by the test through `errors`
            errors.append(e)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        client.start_client(timeout=timeout)
    finally:
        t.join(timeout)
    if errors:
        client.close()
        srv.close()
        raise errors[0]
    return client, srv, server
