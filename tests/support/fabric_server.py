"""Pytest fixtures around :class:`fabric.demo.server.LocalSSHServer` (in-process, 127.0.0.1).

* ``local_ssh``: one server accepting the session's client key, and a password for the
  current OS user.
* ``local_gateway_pair``: a gateway (forwarding allowed) and a target, same client key.

Each endpoint exposes ``server``, ``host``, ``port``, ``user``, ``password``,
``key_filename``, ``known_hosts``, ``host_string``, ``workdir`` (where commands start) and
``home`` (the ``HOME`` commands see).

Commands get an empty temporary ``HOME``: the user's real dotfiles (slow, and possibly
leaving lock files behind when a test kills a shell mid-startup) stay out of the tests, and
shells' history files stay out of the real home.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple

import pytest

import paramiko
from fabric.demo.server import LocalSSHServer, generate_host_key

LOCAL_SSH_PASSWORD = "local-ssh-password"


@dataclass
class LocalSSHEndpoint:
    """How to reach one test server (attributes named after Fabric's settings)."""

    server: LocalSSHServer
    host: str
    port: int
    user: str
    password: str
    key_filename: str
    known_hosts: str
    workdir: str
    home: str

    @property
    def host_string(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass
class LocalGatewayPair:
    gateway: LocalSSHEndpoint
    target: LocalSSHEndpoint
    known_hosts: str


def write_client_key(directory: Path) -> Tuple[paramiko.PKey, str]:
    """A fresh Ed25519 client key as OpenSSH private key ``id_ed25519`` (+ ``.pub``)."""
    key = paramiko.Ed25519Key.generate()
    path = directory / "id_ed25519"
    key.write_private_key_file(str(path))
    os.chmod(path, 0o600)
    (directory / "id_ed25519.pub").write_text(f"{key.get_name()} {key.get_base64()} test\n")
    return key, str(path)


def start_server(base: Path, name: str, client_key: paramiko.PKey,
                 allow_forwarding: bool = True) -> Tuple[LocalSSHServer, str]:
    """Start a server whose commands run in ``base/<name>-work`` with HOME ``base/<name>-home``."""
    workdir = base / f"{name}-work"
    workdir.mkdir()
    home = base / f"{name}-home"
    home.mkdir()
    server = LocalSSHServer(host_key=generate_host_key(), authorized_keys=[client_key],
                            passwords={getpass.getuser(): LOCAL_SSH_PASSWORD},
                            cwd=str(workdir), name=name, allow_forwarding=allow_forwarding,
                            env={"HOME": str(home)})
    server.start()
    return server, str(workdir)


def stop_and_check(server: LocalSSHServer) -> None:
    """Stop ``server`` and fail if it left a thread or a process behind."""
    server.stop()
    threads = [t.name for t in server.running_threads()]
    procs = server.leftover_processes()
    assert not threads, f"{server.name}: threads still running after stop: {threads}"
    assert not procs, f"{server.name}: processes left after stop: {procs}"


def _endpoint(server: LocalSSHServer, key_filename: str, known_hosts: str,
              workdir: str) -> LocalSSHEndpoint:
    return LocalSSHEndpoint(server=server, host=server.host, port=server.port,
                            user=getpass.getuser(), password=LOCAL_SSH_PASSWORD,
                            key_filename=key_filename, known_hosts=known_hosts,
                            workdir=workdir, home=server.env["HOME"])


@pytest.fixture(scope="session")
def local_ssh_client_key(tmp_path_factory) -> Tuple[paramiko.PKey, str]:
    """The session's client key pair and its private key file (accepted by every server)."""
    return write_client_key(tmp_path_factory.mktemp("local_ssh_key"))


@pytest.fixture(scope="session")
def local_ssh(tmp_path_factory, local_ssh_client_key) -> Iterator[LocalSSHEndpoint]:
    base = tmp_path_factory.mktemp("local_ssh")
    key, key_filename = local_ssh_client_key
    server, workdir = start_server(base, "local-ssh", key)
    known_hosts = base / "known_hosts"
    known_hosts.write_text(server.known_hosts_line() + "\n")
    try:
        yield _endpoint(server, key_filename, str(known_hosts), workdir)
    finally:
        stop_and_check(server)


@pytest.fixture(scope="session")
def local_gateway_pair(tmp_path_factory, local_ssh_client_key) -> Iterator[LocalGatewayPair]:
    base = tmp_path_factory.mktemp("local_gateway_pair")
    key, key_filename = local_ssh_client_key
    gateway: Optional[LocalSSHServer] = None
    target: Optional[LocalSSHServer] = None
    try:
        gateway, gw_dir = start_server(base, "gateway", key, allow_forwarding=True)
        target, tg_dir = start_server(base, "target", key)
        known_hosts = base / "known_hosts"
        known_hosts.write_text(gateway.known_hosts_line() + "\n" +
                               target.known_hosts_line() + "\n")
        yield LocalGatewayPair(
            gateway=_endpoint(gateway, key_filename, str(known_hosts), gw_dir),
            target=_endpoint(target, key_filename, str(known_hosts), tg_dir),
            known_hosts=str(known_hosts))
    finally:
        servers = [s for s in (target, gateway) if s is not None]
        for server in servers:
            server.stop()
        for server in servers:
            stop_and_check(server)  # already stopped: this only checks
