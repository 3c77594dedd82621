"""Property tests: hostile bytes into the transport core produce only SSHException."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paramiko
from paramiko._core.transport_core import Preferences, TransportCore

SETTINGS = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _prefs():
    return Preferences(kex=("curve25519-sha256", "diffie-hellman-group14-sha256"),
                       key_types=("ssh-ed25519",), ciphers=("aes128-ctr",),
                       macs=("hmac-sha2-256",), compression=("none", "zlib@openssh.com"))


@pytest.fixture(scope="module")
def host_key(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzzkey") / "k"
    path.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    return paramiko.Ed25519Key.from_private_key_file(str(path))


def _feed(core: TransportCore, data: bytes) -> None:
    try:
        core.receive_data(data)
    except paramiko.SSHException:
        pass


@SETTINGS
@given(junk=st.binary(max_size=600), server=st.booleans())
def test_random_bytes_after_banner(host_key, junk, server):
    keys = {"ssh-ed25519": host_key} if server else None
    core = TransportCore(server, "SSH-2.0-fuzz", _prefs, server_keys=keys)
    _feed(core, b"SSH-2.0-peer\r\n" + junk)


@SETTINGS
@given(junk=st.binary(max_size=300))
def test_random_banner_lines(junk):
    core = TransportCore(False, "SSH-2.0-fuzz", _prefs)
    _feed(core, junk + b"\r\n")


def _valid_peer_stream(host_key) -> bytes:
    peer = TransportCore(True, "SSH-2.0-peer", _prefs, server_keys={"ssh-ed25519": host_key})
    return peer.data_to_send()  # version line + plaintext KEXINIT packet


@SETTINGS
@given(data=st.data())
def test_mutated_and_truncated_kexinit(host_key, data):
    stream = bytearray(_valid_peer_stream(host_key))
    start = stream.index(b"\n") + 1
    flips = data.draw(st.lists(st.tuples(st.integers(start, len(stream) - 1),
                                         st.integers(0, 255)), max_size=6))
    for pos, value in flips:
        stream[pos] = value
    cut = data.draw(st.integers(start, len(stream)))
    core = TransportCore(False, "SSH-2.0-fuzz", _prefs)
    _feed(core, bytes(stream[:cut]))
