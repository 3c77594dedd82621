"""Property tests: hostile bytes into PacketCodec and Message give SSHException or nothing.

Every decode loop is bounded: a call to ``next_payload`` either returns None (needs more
bytes), returns a payload (having consumed at least one minimal packet), or raises.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paramiko._core.ciphers import CIPHERS, MACS
from paramiko._core.packet import PacketCodec
from paramiko.message import Message
from paramiko.ssh_exception import SSHException

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

MODES = ["none", "zlib-plain"] + list(CIPHERS)
_MAC_FOR = {"aes128-ctr": "hmac-sha2-256", "aes192-ctr": "hmac-sha2-512-etm@openssh.com",
            "aes256-ctr": "hmac-sha1"}
# Fixed keys so hypothesis can replay and shrink examples deterministically.
_KEYS = {name: (bytes(range(spec.key_size)), bytes(range(100, 100 + spec.iv_size)))
         for name, spec in CIPHERS.items()}


def codec_for(mode: str, inbound: bool = True) -> PacketCodec:
    c = PacketCodec()
    if mode == "none":
        return c
    if mode == "zlib-plain":
        args = ("none", b"", b"", None, None, "zlib")
    else:
        key, iv = _KEYS[mode]
        mac = _MAC_FOR.get(mode)
        mac_key = bytes(MACS[mac].key_size) if mac else None
        args = (mode, key, iv, mac, mac_key, "zlib" if mode.startswith("aes256") else "none")
    (c.set_inbound if inbound else c.set_outbound)(*args)
    return c


def drain(codec: PacketCodec, nbytes: int) -> list:
    """Pull payloads until None or an SSHException; anything else fails the test."""
    out = []
    for _ in range(nbytes // 5 + 2):  # each payload consumes >= 8 bytes: this bound suffices
        try:
            p = codec.next_payload()
        except SSHException:
            return out
        if p is None:
            return out
        assert isinstance(p, bytes)
        out.append(p)
    raise AssertionError("next_payload kept returning payloads beyond the input size")


@FUZZ
@given(mode=st.sampled_from(MODES), data=st.binary(max_size=2048),
       chunk=st.integers(min_value=1, max_value=600))
def test_random_bytes(mode, data, chunk):
    rx = codec_for(mode)
    for i in range(0, len(data), chunk):
        rx.feed(data[i:i + chunk])
        drain(rx, len(data))


@FUZZ
@given(mode=st.sampled_from(MODES),
       payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
       cut=st.integers(min_value=0, max_value=10**6))
def test_truncated_valid_stream_waits_then_completes(mode, payloads, cut):
    tx = codec_for(mode, inbound=False)
    wire = b"".join(tx.encode(p) for p in payloads)
    cut %= len(wire)
    rx = codec_for(mode)
    rx.feed(wire[:cut])
    early = drain(rx, cut)
    assert early == payloads[:len(early)]  # a prefix yields only complete, correct packets
    rx.feed(wire[cut:])
    assert early + drain(rx, len(wire)) == payloads


@FUZZ
@given(mode=st.sampled_from(MODES), payload=st.binary(max_size=200),
       flips=st.lists(st.tuples(st.integers(min_value=0, max_value=10**6),
                                st.integers(min_value=1, max_value=255)),
                      min_size=1, max_size=4),
       tail=st.binary(max_size=64))
def test_mutated_packets(mode, payload, flips, tail):
    tx = codec_for(mode, inbound=False)
    wire = bytearray(tx.encode(payload))
    for pos, xor in flips:
        wire[pos % len(wire)] ^= xor
    rx = codec_for(mode)
    rx.feed(bytes(wire) + tail)
    got = drain(rx, len(wire) + len(tail))
    if mode in CIPHERS and got:
        # Authenticated modes: whatever decodes must be the original (a flip that cancels
        # out, e.g. twice on the same byte, is the only way to get here).
        assert got[0] == payload


_GETTERS = ["get_byte", "get_boolean", "get_int", "get_int64", "get_adaptive_int",
            "get_mpint", "get_string", "get_text", "get_binary", "get_list", "get_remainder"]


@FUZZ
@given(data=st.binary(max_size=256),
       calls=st.lists(st.sampled_from(_GETTERS + ["get_bytes"]), min_size=1, max_size=12),
       n=st.integers(min_value=-4, max_value=300))
def test_message_getters_on_random_bytes(data, calls, n):
    m = Message(data)
    try:
        for name in calls:
            if name == "get_bytes":
                m.get_bytes(n)
            else:
                getattr(m, name)()
    except SSHException:
        pass


def test_random_keyed_streams_smoke():
    """A few large random inputs per keyed mode (beyond what hypothesis generates)."""
    for mode in MODES:
        rx = codec_for(mode)
        data = os.urandom(70000)
        rx.feed(data)
        drain(rx, len(data))
