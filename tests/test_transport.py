"""In-process Transport tests: our client against our server over the in-memory socket pair."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import paramiko
from paramiko import common as c
from paramiko._core import kex as kex_registry
from paramiko._core.transport_core import Preferences, TransportCore
from paramiko.message import Message
from tests.support.loopserver import PASSWORD, USER, LoopServer, make_pair
from tests.support.memsock import socket_pair


def _openssh_private(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def host_keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostkeys")
    made = {
        "ed25519": (ed25519.Ed25519PrivateKey.generate(), paramiko.Ed25519Key),
        "ecdsa256": (ec.generate_private_key(ec.SECP256R1()), paramiko.ECDSAKey),
        "ecdsa384": (ec.generate_private_key(ec.SECP384R1()), paramiko.ECDSAKey),
        "ecdsa521": (ec.generate_private_key(ec.SECP521R1()), paramiko.ECDSAKey),
        "rsa": (rsa.generate_private_key(65537, 2048), paramiko.RSAKey),
    }
    keys = {}
    for name, (priv, cls) in made.items():
        path = d / name
        path.write_bytes(_openssh_private(priv))
        keys[name] = cls.from_private_key_file(str(path))
    return keys


def _exec(client: paramiko.Transport, command: str, timeout: float = 10):
    chan = client.open_session(timeout=timeout)
    chan.settimeout(timeout)
    chan.exec_command(command)
    out = b""
    while True:
        data = chan.recv(65536)
        if not data:
            break
        out += data
    status = chan.recv_exit_status()
    chan.close()
    return out, status


def _authed_pair(host_key, **kw):
    client, server_t, server = make_pair(host_key, **kw)
    client.auth_password(USER, PASSWORD)
    return client, server_t, server


def test_handshake_auth_exec_and_defaults(host_keys):
    client, server_t, _ = _authed_pair(host_keys["ed25519"])
    try:
        assert client.is_authenticated() and server_t.is_authenticated()
        assert client.session_id == server_t.session_id and len(client.session_id) >= 32
        assert client.local_cipher == "aes128-gcm@openssh.com"  # fast AEAD first
        assert client.get_remote_server_key().asbytes() == host_keys["ed25519"].asbytes()
        assert client.remote_version.startswith("SSH-2.0-paramiko_")
        assert _exec(client, "echo hi there") == (b"hi there\n", 0)
        assert _exec(client, "exit 7") == (b"", 7)
    finally:
        client.close()
        server_t.close()
    assert not client.is_alive() and not server_t.is_alive()


@pytest.mark.parametrize("kex", [k for k in kex_registry.default_kex_order()
                                 if kex_registry.kex_available(k)])
def test_every_kex(host_keys, kex):
    def only(t):
        t.get_security_options().kex = (kex,)

    client, server_t, _ = _authed_pair(host_keys["ed25519"], client_setup=only,
                                       server_setup=Transport_load_moduli)
    try:
        assert client.kex_engine == kex == server_t.kex_engine
        assert _exec(client, "echo ok") == (b"ok\n", 0)
    finally:
        client.close()
        server_t.close()


def Transport_load_moduli(t):  # noqa: N802 - reads as what it does in the parametrize above
    assert paramiko.Transport.load_server_moduli()


@pytest.mark.parametrize("cipher", list(paramiko.Transport._preferred_ciphers))
def test_every_cipher(host_keys, cipher):
    def only(t):
        t.get_security_options().ciphers = (cipher,)

    client, server_t, _ = _authed_pair(host_keys["ed25519"], client_setup=only)
    try:
        assert (client.local_cipher, server_t.remote_cipher) == (cipher, cipher)
        assert _exec(client, "emit 300000 1000")[0] == b"o" * 300000
    finally:
        client.close()
        server_t.close()


@pytest.mark.parametrize("mac", list(paramiko.Transport._preferred_macs))
def test_every_mac(host_keys, mac):
    def only(t):
        t.get_security_options().ciphers = ("aes128-ctr",)
        t.get_security_options().digests = (mac,)

    client, server_t, _ = _authed_pair(host_keys["ed25519"], client_setup=only)
    try:
        assert client.local_mac == mac == server_t.remote_mac
        assert _exec(client, "echo mac") == (b"mac\n", 0)
    finally:
        client.close()
        server_t.close()


@pytest.mark.parametrize("alg,keyname", [
    ("ssh-ed25519", "ed25519"), ("ecdsa-sha2-nistp256", "ecdsa256"),
    ("ecdsa-sha2-nistp384", "ecdsa384"), ("ecdsa-sha2-nistp521", "ecdsa521"),
    ("rsa-sha2-512", "rsa"), ("rsa-sha2-256", "rsa")])
def test_every_host_key_algorithm(host_keys, alg, keyname):
    def only(t):
        t.get_security_options().key_types = (alg,)

    client, server_t, _ = _authed_pair(host_keys[keyname], client_setup=only)
    try:
        assert client.host_key_type == alg
        assert client.get_remote_server_key().asbytes() == host_keys[keyname].asbytes()
    finally:
        client.close()
        server_t.close()


def test_compression_zlib_openssh(host_keys):
    def comp(t):
        t.use_compression(True)

    client, server_t, _ = _authed_pair(host_keys["ed25519"], client_setup=comp,
                                       server_setup=comp)
    try:
        assert client.local_compression == "zlib@openssh.com"
        assert _exec(client, "emit 200000 0")[0] == b"o" * 200000
    finally:
        client.close()
        server_t.close()


def test_stdout_then_stderr_far_beyond_window_does_not_deadlock(host_keys):
    client, server_t, _ = _authed_pair(host_keys["ed25519"])
    try:
        chan = client.open_session()
        chan.settimeout(20)
        chan.exec_command("emit 6000000 6000000")
        out = b""
        while True:
            d = chan.recv(1 << 20)
            if not d:
                break
            out += d
        err = b""
        while True:
            d = chan.recv_stderr(1 << 20)
            if not d:
                break
            err += d
        assert len(out) == 6000000 and len(err) == 6000000
        assert chan.recv_exit_status() == 0
    finally:
        client.close()
        server_t.close()


def test_rekey_while_data_flows_keeps_data_intact(host_keys):
    client, server_t, _ = _authed_pair(host_keys["ed25519"])
    try:
        chan = client.open_session()
        chan.settimeout(30)
        chan.exec_command("cat")
        payload = os.urandom(8 << 20)
        got = bytearray()

        def reader():
            while True:
                d = chan.recv(1 << 20)
                if not d:
                    return
                got.extend(d)

        t = threading.Thread(target=reader)
        t.start()
        step = 1 << 20
        kex_before = client._core.kex_count
        for i in range(0, len(payload), step):
            chan.sendall(payload[i:i + step])
            if i == 3 * step:
                client.renegotiate_keys()
        chan.shutdown_write()
        t.join(30)
        assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
        assert client._core.kex_count == kex_before + 1
        assert server_t._core.kex_count == kex_before + 1
    finally:
        client.close()
        server_t.close()


def test_channel_and_global_requests_refused_before_auth(host_keys):
    client, server_t, _ = make_pair(host_keys["ed25519"])
    try:
        with pytest.raises(paramiko.ChannelException) as info:
            client.open_session(timeout=5)
        assert info.value.code == c.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        assert client.global_request("test@example.com") is None
        client.auth_password(USER, PASSWORD)
        assert client.global_request("test@example.com") is not None
    finally:
        client.close()
        server_t.close()


def test_wrong_password_is_an_authentication_error(host_keys):
    client, server_t, _ = make_pair(host_keys["ed25519"])
    try:
        with pytest.raises(paramiko.AuthenticationException):
            client.auth_password(USER, "wrong", fallback=False)
        assert not client.is_authenticated()
    finally:
        client.close()
        server_t.close()


def test_port_forward_request_returns_bound_port(host_keys):
    client, server_t, server = _authed_pair(host_keys["ed25519"])
    try:
        assert client.request_port_forward("127.0.0.1", 0) == 40000
        assert client.request_port_forward("127.0.0.1", 2222) == 2222
        assert server.port_forwards == [("127.0.0.1", 0), ("127.0.0.1", 2222)]
    finally:
        client.close()
        server_t.close()


def test_kex_timeout_raises_and_leaves_no_thread():
    csock, _silent_peer = socket_pair()
    client = paramiko.Transport(csock)
    client.banner_timeout = 0.5
    t0 = time.monotonic()
    with pytest.raises(paramiko.SSHException) as info:
        client.start_client(timeout=1.0)
    assert time.monotonic() - t0 < 5
    assert info.value.phase == "banner"
    client.close()
    assert not client.is_alive()


def test_unsupported_protocol_version_is_incompatible_peer():
    csock, peer = socket_pair()
    client = paramiko.Transport(csock)
    peer.send(b"SSH-1.5-ancient\r\n")
    with pytest.raises(paramiko.IncompatiblePeer):
        client.start_client(timeout=5)
    client.close()


def test_lines_before_version_are_tolerated(host_keys):
    core_srv = TransportCore(True, "SSH-2.0-test", _prefs, server_keys={
        "ssh-ed25519": host_keys["ed25519"]})
    client = TransportCore(False, "SSH-2.0-client", _prefs)
    events = client.receive_data(b"hello there\r\nsecond line\r\n" + core_srv.data_to_send())
    assert events[0].version == "SSH-2.0-test"
    assert events[0].pre_banner == ["hello there", "second line"]


def _prefs():
    return Preferences(kex=("curve25519-sha256",), key_types=("ssh-ed25519",),
                       ciphers=("aes128-ctr",), macs=("hmac-sha2-256",), compression=("none",))


def _pump(a: TransportCore, b: TransportCore, rounds: int = 20):
    """Shuttle bytes both ways until quiet; return the events each side produced."""
    ea, eb = [], []
    for _ in range(rounds):
        x, y = a.data_to_send(), b.data_to_send()
        if not x and not y:
            break
        if x:
            eb += b.receive_data(x)
        if y:
            ea += a.receive_data(y)
    return ea, eb


def test_core_handshake_and_strict_kex_markers(host_keys):
    srv = TransportCore(True, "SSH-2.0-s", _prefs, server_keys={
        "ssh-ed25519": host_keys["ed25519"]})
    cli = TransportCore(False, "SSH-2.0-c", _prefs)
    _pump(cli, srv)
    assert cli.kex_count == srv.kex_count == 1
    assert cli.strict and srv.strict
    # Strict kex resets sequence numbers at NEWKEYS, and nothing was sent after it.
    assert (cli.codec.out_seq, cli.codec.in_seq) == (0, 0)
    assert (srv.codec.out_seq, srv.codec.in_seq) == (0, 0)
    plain_srv = TransportCore(True, "SSH-2.0-s", _prefs, server_keys={
        "ssh-ed25519": host_keys["ed25519"]}, strict_kex=False)
    plain_cli = TransportCore(False, "SSH-2.0-c", _prefs, strict_kex=False)
    _pump(plain_cli, plain_srv)
    assert not plain_cli.strict and plain_cli.codec.out_seq == 3  # KEXINIT, INIT, NEWKEYS


def test_strict_kex_rejects_message_injected_during_initial_kex(host_keys):
    srv = TransportCore(True, "SSH-2.0-s", _prefs, server_keys={
        "ssh-ed25519": host_keys["ed25519"]})
    cli = TransportCore(False, "SSH-2.0-c", _prefs)
    srv.receive_data(cli.data_to_send())  # client version + KEXINIT
    cli.receive_data(srv.data_to_send())  # server version + KEXINIT (+ nothing else yet)
    # A man in the middle slips an IGNORE in before the client's kex init message.
    ignore = Message().add_byte(c.cMSG_IGNORE).add_string(b"x").asbytes()
    rogue = cli.codec.encode(ignore)
    with pytest.raises(paramiko.MessageOrderError):
        srv.receive_data(rogue + cli.data_to_send())


def test_non_strict_peer_tolerates_ignore_during_kex(host_keys):
    srv = TransportCore(True, "SSH-2.0-s", _prefs, server_keys={
        "ssh-ed25519": host_keys["ed25519"]}, strict_kex=False)
    cli = TransportCore(False, "SSH-2.0-c", _prefs, strict_kex=False)
    srv.receive_data(cli.data_to_send())
    cli.receive_data(srv.data_to_send())
    ignore = Message().add_byte(c.cMSG_IGNORE).add_string(b"x").asbytes()
    srv.receive_data(cli.codec.encode(ignore) + cli.data_to_send())
    _pump(cli, srv)
    assert cli.kex_count == srv.kex_count == 1 and not cli.strict


def test_strict_transport_reports_message_order_error(host_keys):
    """Through the threaded server: the injected message kills the session cleanly."""
    csock, ssock = socket_pair()
    srv = paramiko.Transport(ssock)
    srv.add_server_key(host_keys["ed25519"])
    threading.Thread(target=lambda: _swallow(srv.start_server, server=LoopServer()),
                     daemon=True).start()
    cli = TransportCore(False, "SSH-2.0-c", _prefs)
    csock.send(cli.data_to_send())
    buf = b""
    deadline = time.monotonic() + 5
    csock.settimeout(0.2)
    while b"\n" not in buf and time.monotonic() < deadline:
        try:
            buf += csock.recv(65536)
        except OSError:
            pass
    ignore = Message().add_byte(c.cMSG_IGNORE).add_string(b"x").asbytes()
    csock.send(cli.codec.encode(ignore))
    deadline = time.monotonic() + 5
    while srv.ident is None and time.monotonic() < deadline:  # the reader may not be up yet
        time.sleep(0.01)
    srv.join(5)
    assert not srv.is_alive()
    assert isinstance(srv.get_exception(), paramiko.MessageOrderError)


def _swallow(fn, **kw):
    try:
        fn(**kw)
    except Exception:
        pass


def test_unknown_algorithm_names_are_rejected():
    t = paramiko.Transport(socket_pair()[0])
    with pytest.raises(ValueError):
        t.get_security_options().ciphers = ("rot13",)
    with pytest.raises(ValueError):
        t.get_security_options().kex = ("diffie-hellman-group1-sha1",)
    t.close()


def test_disabled_algorithms_filter_the_offer():
    t = paramiko.Transport(socket_pair()[0], disabled_algorithms={
        "ciphers": ["chacha20-poly1305@openssh.com"], "kex": ["curve25519-sha256"]})
    assert "chacha20-poly1305@openssh.com" not in t.preferred_ciphers
    assert "curve25519-sha256" not in t.preferred_kex
    assert "aes128-ctr" in t.preferred_ciphers
    t.close()


def test_no_common_cipher_names_both_lists(host_keys):
    def a(t):
        t.get_security_options().ciphers = ("aes128-ctr",)

    def b(t):
        t.get_security_options().ciphers = ("aes256-gcm@openssh.com",)

    with pytest.raises(paramiko.IncompatiblePeer) as info:
        make_pair(host_keys["ed25519"], client_setup=a, server_setup=b, timeout=5)
    assert "aes128-ctr" in str(info.value) and "aes256-gcm@openssh.com" in str(info.value)


def test_rekey_after_byte_limit_in_both_directions(host_keys):
    client, server_t, _ = _authed_pair(host_keys["ed25519"])
    try:
        client.set_rekey_limits(bytes_=1 << 20)
        # Inbound bytes drive the rekeys. Up to a window (2 MiB) may arrive while each
        # exchange runs, so 20 MB guarantees at least 20 / (1 + 2 + 1) > 3 of them.
        out, status = _exec(client, "emit 20000000 0")
        assert status == 0 and out == b"o" * 20000000
        inbound_rekeys = client._core.kex_count - 1
        assert inbound_rekeys >= 3
        chan = client.open_session()
        chan.settimeout(20)
        chan.exec_command("cat")
        got = bytearray()
        reader = threading.Thread(target=lambda: [got.extend(d) for d in iter(
            lambda: chan.recv(1 << 20), b"")])
        reader.start()
        chan.sendall(b"i" * 12000000)  # outbound bytes too
        chan.shutdown_write()
        reader.join(20)
        assert bytes(got) == b"i" * 12000000
        assert client._core.kex_count - 1 >= inbound_rekeys + 2
    finally:
        client.close()
        server_t.close()


def test_rekey_after_time_limit(host_keys):
    client, server_t, _ = _authed_pair(host_keys["ed25519"])
    try:
        client.set_rekey_limits(interval=0.3)
        deadline = time.monotonic() + 5
        while client._core.kex_count < 3 and time.monotonic() < deadline:
            assert _exec(client, "echo tick") == (b"tick\n", 0)
            time.sleep(0.1)
        assert client._core.kex_count >= 3
    finally:
        client.close()
        server_t.close()


def test_malformed_connection_messages_raise_only_ssh_exceptions(host_keys):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    client, server_t, _ = _authed_pair(host_keys["ed25519"])
    try:
        @settings(max_examples=300, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(ptype=st.integers(80, 127), body=st.binary(max_size=40))
        def feed(ptype, body):
            try:
                client._on_packet(ptype, bytes([ptype]) + body)
            except paramiko.SSHException:
                pass

        feed()
        assert client.is_active()
    finally:
        client.close()
        server_t.close()


def _nested(host_keys):
    """client -> gw (in-process) -direct-tcpip-> inner server riding on the gw's channel."""
    outer, gw_t, gw = _authed_pair(host_keys["ed25519"])
    holder = {}

    def serve_inner():
        chan = gw_t.accept(timeout=10)
        srv = paramiko.Transport(chan)
        srv.add_server_key(host_keys["ecdsa256"])
        holder["srv"] = srv
        srv.start_server(server=LoopServer())

    t = threading.Thread(target=serve_inner, daemon=True)
    t.start()
    hop = outer.open_channel("direct-tcpip", ("db1", 22), ("127.0.0.1", 0), timeout=10)
    inner = paramiko.Transport(hop)
    inner.start_client(timeout=10)
    inner.auth_password(USER, PASSWORD)
    t.join(10)
    return outer, gw_t, gw, inner, holder["srv"]


def test_nested_transport_push_mode_both_sides(host_keys):
    outer, gw_t, gw, inner, inner_srv = _nested(host_keys)
    try:
        assert inner._push and inner_srv._push  # both ride on one of our channels
        assert gw.direct_tcpip == [("db1", 22)]
        assert inner.get_remote_server_key().asbytes() == host_keys["ecdsa256"].asbytes()
        out, status = _exec(inner, "emit 5000000 10")
        assert status == 0 and out == b"o" * 5000000
        inner.renegotiate_keys()
        assert _exec(inner, "echo after rekey") == (b"after rekey\n", 0)
    finally:
        for t in (inner, inner_srv, outer, gw_t):
            t.close()
    assert not any(t.is_alive() for t in (inner, inner_srv, outer, gw_t))


@pytest.mark.parametrize("order", ["outer-first", "inner-first"])
def test_nested_close_in_any_order_never_hangs(host_keys, order):
    outer, gw_t, _gw, inner, inner_srv = _nested(host_keys)
    chan = inner.open_session()
    chan.settimeout(10)
    chan.exec_command("cat")
    t0 = time.monotonic()
    first, second = (outer, inner) if order == "outer-first" else (inner, outer)
    first.close()
    deadline = time.monotonic() + 5
    while inner.is_active() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not inner.is_active()  # the inner session notices promptly
    assert chan.recv(10) == b""  # its channel reads EOF instead of hanging
    with pytest.raises(OSError):
        chan.sendall(b"x" * 10)
    second.close()
    for t in (inner_srv, gw_t):
        t.close()
    assert time.monotonic() - t0 < 8
    assert not any(t.is_alive() for t in (inner, inner_srv, outer, gw_t))
    if order == "outer-first":
        assert inner.get_exception() is not None and "closed" in str(inner.get_exception())


def test_server_alive_probes_are_answered_and_a_dead_peer_is_detected(host_keys):
    client, server_t, _ = _authed_pair(host_keys["ed25519"])
    try:
        client.set_server_alive(0.3, count_max=2)
        time.sleep(1.5)  # several probes go out, each answered by the server
        assert client.is_active() and client._alive_outstanding <= 1
        # A peer that stops reading and answering: the server's reader is wedged.
        server_t._core.closed = True  # it now refuses to send anything
        deadline = time.monotonic() + 5
        while client.is_active() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.is_active()
        err = client.get_exception()
        assert "keepalive" in str(err) and err.phase == "transport"
    finally:
        client.close()
        server_t.close()
