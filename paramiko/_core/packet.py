"""The SSH binary packet protocol (RFC 4253 section 6), sans-IO.

:class:`PacketCodec` turns payloads into wire bytes (``encode``) and wire bytes back into
payloads (``feed`` + ``next_payload``). It owns sequence numbers, per-direction keys,
compression and the traffic counters used for rekey decisions, and nothing else: no
sockets, threads or clocks.

Decoding is strictly one packet at a time, because the keys may change between two
packets (NEWKEYS): bytes beyond the packet being returned are never decrypted.
"""

from __future__ import annotations

import os
import struct
from typing import Optional

from cryptography.exceptions import InvalidSignature

from paramiko._core.ciphers import (
    CIPHERS,
    MACS,
    MODE_CHACHA,
    MODE_GCM,
    MODE_STREAM,
)
from paramiko.compress import COMPRESSIONS, CompressionError
from paramiko.ssh_exception import SSHException

__all__ = [
    "PacketCodec",
    "PacketError",
    "MACError",
    "CompressionError",
    "MAX_PACKET_LENGTH",
]

# Upper bound of the packet_length field; OpenSSH uses the same limit.
MAX_PACKET_LENGTH = 256 * 1024
_MIN_BLOCK = 8
_MODE_NONE = 0
_SEQ_MASK = 0xFFFFFFFF

_U32 = struct.Struct(">I")
_HEAD = struct.Struct(">IB")  # packet_length, padding_length
_pack_u32 = _U32.pack
_unpack_u32 = _U32.unpack_from
_pack_head = _HEAD.pack

# Compact the receive buffer only once this much consumed data sits in front of it.
_COMPACT_AT = 64 * 1024
_RANDOM_POOL = 4096


class PacketError(SSHException):
    """A malformed packet from the peer (bad length, bad padding, ...), or a payload too
    large to send."""


class MACError(PacketError):
    """A packet failed its MAC or AEAD tag check."""


class _Direction:
    """Keys and counters of one direction; swapped wholesale on every key change."""

    __slots__ = ("mode", "cipher_name", "cipher", "block_size", "aad", "mac_name", "mac",
                 "mac_size", "etm", "tag_size", "comp_name", "comp_delayed", "comp")

    def __init__(self) -> None:
        self.mode = _MODE_NONE
        self.cipher_name = "none"
        self.cipher = None
        self.block_size = _MIN_BLOCK
        self.aad = 0  # 4 when the length field is outside the padding alignment
        self.mac_name: Optional[str] = None
        self.mac = None
        self.mac_size = 0
        self.etm = False
        self.tag_size = 0
        self.comp_name = "none"
        self.comp_delayed = False
        self.comp = None


def _make_direction(cipher: str, key: bytes, iv: bytes, mac: Optional[str],
                    mac_key: Optional[bytes], compression: str) -> _Direction:
    d = _Direction()
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}")
    d.comp_name = compression
    d.comp_delayed = COMPRESSIONS[compression].delayed
    if cipher in (None, "none"):
        if mac not in (None, "none"):
            raise ValueError("a MAC without a cipher is not supported")
        return d
    spec = CIPHERS.get(cipher)
    if spec is None:
        raise ValueError(f"unknown cipher {cipher!r}")
    d.cipher_name = spec.name
    d.cipher = spec.new(key, iv)
    d.mode = spec.mode
    d.block_size = max(spec.block_size, _MIN_BLOCK)
    if spec.is_aead:
        # AEAD ciphers authenticate the packet themselves; any negotiated MAC is ignored.
        d.tag_size = spec.tag_size
        d.aad = 4
        return d
    mspec = MACS.get(mac) if mac else None
    if mspec is None:
        raise ValueError(f"cipher {cipher!r} needs a MAC; got {mac!r}")
    if mac_key is None:
        raise ValueError(f"MAC {mac!r} needs a key")
    d.mac_name = mspec.name
    d.mac = mspec.new(mac_key)
    d.mac_size = mspec.digest_size
    d.etm = mspec.etm
    d.aad = 4 if mspec.etm else 0
    return d


class PacketCodec:
    """Encoder/decoder of SSH binary packets for one connection (both directions).

    Starts in the cleartext state (no cipher, no MAC, no compression). Errors in received
    data raise :class:`PacketError` / :class:`MACError` / ``CompressionError`` (all
    ``SSHException``); after one, the inbound side is dead and keeps raising it.
    ``set_outbound``/``set_inbound`` raise ``ValueError`` for unknown names or short keys
    (those are local bugs, not peer input).
    """

    def __init__(self) -> None:
        self._out = _Direction()
        self._in = _Direction()
        self.out_seq = 0
        self.in_seq = 0
        self.out_bytes = 0
        self.in_bytes = 0
        self.out_packets = 0
        self.in_packets = 0
        self._authenticated = False
        self._buf = bytearray()
        self._pos = 0
        # Cached header of a partly received packet: its packet_length and, for
        # non-etm stream ciphers, the already-decrypted first block.
        self._hdr_len = -1
        self._hdr_first: Optional[bytes] = None
        self._error: Optional[SSHException] = None
        self._rpool = b""
        self._rpos = 0

    # -- key management ------------------------------------------------------------------
    def set_outbound(self, cipher: str, key: bytes, iv: bytes, mac: Optional[str],
                     mac_key: Optional[bytes], compression: str = "none") -> None:
        """Switch the sending side to new keys now (call right after encoding NEWKEYS).

        Resets ``out_bytes``/``out_packets`` but not ``out_seq`` (see
        :meth:`reset_outbound_seq`). A fresh compression stream starts, as RFC 4253
        requires after every key exchange.
        """
        d = _make_direction(cipher, key, iv, mac, mac_key, compression)
        self._start_compression(d, outbound=True)
        self._out = d
        self.out_bytes = 0
        self.out_packets = 0

    def set_inbound(self, cipher: str, key: bytes, iv: bytes, mac: Optional[str],
                    mac_key: Optional[bytes], compression: str = "none") -> None:
        """Switch the receiving side to new keys now (call right after reading NEWKEYS)."""
        d = _make_direction(cipher, key, iv, mac, mac_key, compression)
        self._start_compression(d, outbound=False)
        self._in = d
        # Anything cached about the next packet was derived with the old keys.
        self._hdr_len = -1
        self._hdr_first = None
        self.in_bytes = 0
        self.in_packets = 0

    def _start_compression(self, d: _Direction, outbound: bool) -> None:
        spec = COMPRESSIONS[d.comp_name]
        if spec.compressor is None or (spec.delayed and not self._authenticated):
            d.comp = None
        else:
            d.comp = spec.compressor() if outbound else spec.decompressor()

    def enable_delayed_compression(self) -> None:
        """User auth succeeded: start ``zlib@openssh.com`` in both directions (and in any
        later key exchange that negotiates it)."""
        self._authenticated = True
        for d, outbound in ((self._out, True), (self._in, False)):
            if d.comp is None and d.comp_delayed:
                self._start_compression(d, outbound)

    def reset_outbound_seq(self) -> None:
        """Strict kex: the sending sequence number restarts at 0 after NEWKEYS."""
        self.out_seq = 0

    def reset_inbound_seq(self) -> None:
        """Strict kex: the receiving sequence number restarts at 0 after NEWKEYS."""
        self.in_seq = 0

    # -- introspection -------------------------------------------------------------------
    @property
    def out_cipher(self) -> str:
        return self._out.cipher_name

    @property
    def in_cipher(self) -> str:
        return self._in.cipher_name

    @property
    def out_mac(self) -> Optional[str]:
        return self._out.mac_name

    @property
    def in_mac(self) -> Optional[str]:
        return self._in.mac_name

    @property
    def out_block_size(self) -> int:
        return self._out.block_size

    @property
    def in_block_size(self) -> int:
        return self._in.block_size

    @property
    def out_mac_size(self) -> int:
        """Bytes of MAC or AEAD tag appended to each sent packet."""
        return self._out.mac_size + self._out.tag_size

    @property
    def in_mac_size(self) -> int:
        return self._in.mac_size + self._in.tag_size

    @property
    def out_compression_active(self) -> bool:
        return self._out.comp is not None

    @property
    def in_compression_active(self) -> bool:
        return self._in.comp is not None

    @property
    def buffered(self) -> int:
        """Received bytes not yet returned as payloads."""
        return len(self._buf) - self._pos

    # -- sending -------------------------------------------------------------------------
    def _padding(self, n: int) -> bytes:
        # Slices of a pooled urandom block: random padding without a syscall per packet.
        p = self._rpos
        if p + n > len(self._rpool):
            self._rpool = os.urandom(_RANDOM_POOL)
            p = 0
        self._rpos = p + n
        return self._rpool[p:p + n]

    def encode(self, payload: bytes) -> bytes:
        """Wire bytes of one packet carrying ``payload``; bumps ``out_seq``."""
        d = self._out
        if d.comp is not None:
            # Checked before compressing too: the peer refuses to inflate beyond this.
            if len(payload) > MAX_PACKET_LENGTH:
                raise PacketError(f"payload of {len(payload)} bytes is too large to send")
            payload = d.comp(payload)
        n = len(payload)
        bs = d.block_size
        # For etm and AEAD modes the 4-byte length is not part of the aligned data.
        pad = bs - ((5 - d.aad + n) % bs)
        if pad < 4:
            pad += bs
        plen = n + pad + 1
        if plen > MAX_PACKET_LENGTH:
            raise PacketError(f"payload of {n} bytes exceeds the maximum packet size")
        padding = self._padding(pad)
        seq = self.out_seq
        mode = d.mode
        if mode == MODE_STREAM:
            if d.etm:
                ct = d.cipher.update(b"".join((bytes((pad,)), payload, padding)))
                head = _pack_u32(plen)
                m = d.mac.copy()
                m.update(_pack_u32(seq))
                m.update(head)
                m.update(ct)
                out = b"".join((head, ct, m.finalize()))
            else:
                plain = b"".join((_pack_head(plen, pad), payload, padding))
                m = d.mac.copy()
                m.update(_pack_u32(seq))
                m.update(plain)
                out = b"".join((d.cipher.update(plain), m.finalize()))
        elif mode == MODE_GCM:
            head = _pack_u32(plen)
            out = head + d.cipher.seal(head, b"".join((bytes((pad,)), payload, padding)))
        elif mode == MODE_CHACHA:
            out = b"".join(d.cipher.seal(seq, _pack_u32(plen),
                                         b"".join((bytes((pad,)), payload, padding))))
        else:
            out = b"".join((_pack_head(plen, pad), payload, padding))
        self.out_seq = (seq + 1) & _SEQ_MASK
        self.out_packets += 1
        self.out_bytes += len(out)
        return out

    # -- receiving -----------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Append received bytes; call :meth:`next_payload` until it returns None."""
        if data and self._error is None:
            self._buf += data

    def next_payload(self) -> Optional[bytes]:
        """The next complete payload, or None if more bytes are needed.

        Raises ``SSHException`` subclasses for malformed, oversized or forged packets.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._decode_one()
        except SSHException as e:
            self._error = e
            self._hdr_first = None
            raise

    def _bad_length(self, plen: int, bs: int, aad: int) -> Optional[str]:
        if plen > MAX_PACKET_LENGTH:
            return f"packet length {plen} exceeds the maximum of {MAX_PACKET_LENGTH}"
        if plen < 5:
            return f"packet length {plen} is too small"
        if (plen + 4 - aad) % bs:
            return f"packet length {plen} is not a multiple of the cipher block size {bs}"
        return None

    def _decode_one(self) -> Optional[bytes]:
        d = self._in
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < 4:
            return None
        mode = d.mode
        seq = self.in_seq
        plen = self._hdr_len
        if mode == MODE_STREAM and not d.etm:
            bs = d.block_size
            first = self._hdr_first
            if first is None:
                if avail < bs:
                    return None
                # The first block always lies inside this packet (packets are >= 1 block),
                # so decrypting it never touches the next packet's bytes.
                first = d.cipher.update(buf[pos:pos + bs])
                plen = _unpack_u32(first)[0]
                err = self._bad_length(plen, bs, 0)
                if err:
                    raise PacketError(err)
                self._hdr_first = first
                self._hdr_len = plen
            total = 4 + plen + d.mac_size
            if avail < total:
                return None
            end = pos + 4 + plen
            with memoryview(buf) as mv:
                rest = d.cipher.update(mv[pos + bs:end])
                tag = bytes(mv[end:pos + total])
            m = d.mac.copy()
            m.update(_pack_u32(seq))
            m.update(first)
            m.update(rest)
            try:
                m.verify(tag)
            except InvalidSignature:
                raise MACError(f"MAC check failed ({d.mac_name}, packet {seq})") from None
            padlen = first[4]
            paylen = self._payload_len(plen, padlen)
            lead = bs - 5  # payload bytes that were in the first block
            if paylen <= lead:
                payload = first[5:5 + paylen]
            else:
                payload = first[5:] + rest[:paylen - lead]
        else:
            aad = 4
            if mode == _MODE_NONE:
                aad = 0
            if plen < 0:
                if mode == MODE_CHACHA:
                    plen = _unpack_u32(d.cipher.crypt_length(seq, buf[pos:pos + 4]))[0]
                else:
                    plen = _unpack_u32(buf, pos)[0]
                err = self._bad_length(plen, d.block_size, aad)
                if err:
                    raise PacketError(err)
                self._hdr_len = plen
            total = 4 + plen + d.mac_size + d.tag_size
            if avail < total:
                return None
            end = pos + 4 + plen
            with memoryview(buf) as mv:
                if mode == MODE_GCM:
                    body = d.cipher.open(mv[pos:pos + 4], mv[pos + 4:pos + total])
                    if body is None:
                        raise MACError(f"AES-GCM tag check failed (packet {seq})")
                elif mode == MODE_CHACHA:
                    body = d.cipher.open(seq, mv[pos:end], bytes(mv[end:pos + total]))
                    if body is None:
                        raise MACError(f"chacha20-poly1305 tag check failed (packet {seq})")
                elif mode == MODE_STREAM:  # encrypt-then-MAC
                    m = d.mac.copy()
                    m.update(_pack_u32(seq))
                    m.update(mv[pos:end])
                    try:
                        m.verify(bytes(mv[end:pos + total]))
                    except InvalidSignature:
                        raise MACError(
                            f"MAC check failed ({d.mac_name}, packet {seq})") from None
                    body = d.cipher.update(mv[pos + 4:end])
                else:
                    body = bytes(mv[pos + 4:end])
            paylen = self._payload_len(plen, body[0])
            payload = body[1:1 + paylen]
        # The packet is authentic and complete: consume it.
        self._hdr_len = -1
        self._hdr_first = None
        pos += total
        if pos == len(buf):
            buf.clear()
            pos = 0
        elif pos >= _COMPACT_AT and pos * 2 >= len(buf):
            del buf[:pos]
            pos = 0
        self._pos = pos
        self.in_seq = (seq + 1) & _SEQ_MASK
        self.in_packets += 1
        self.in_bytes += total
        if d.comp is not None:
            payload = d.comp(payload)
        return payload

    @staticmethod
    def _payload_len(plen: int, padlen: int) -> int:
        if padlen < 4:
            raise PacketError(f"padding length {padlen} is below the minimum of 4")
        paylen = plen - 1 - padlen
        if paylen < 0:
            raise PacketError(f"padding length {padlen} exceeds packet length {plen}")
        return paylen

