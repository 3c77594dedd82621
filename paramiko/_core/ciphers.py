"""Cipher and MAC registries for the SSH binary packet protocol (sans-IO).

Every primitive comes from ``cryptography``; this module only arranges keys, nonces and
counters the way the SSH specs (RFC 4344, RFC 5647 as OpenSSH does it, and OpenSSH's
PROTOCOL.chacha20poly1305) lay them out. The packet framing itself lives in
:mod:`paramiko._core.packet`, which drives the small per-direction state objects built here.
"""

from __future__ import annotations

import struct
from typing import Dict, Optional, Tuple

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.poly1305 import Poly1305

__all__ = [
    "CIPHERS",
    "MACS",
    "DEFAULT_CIPHERS",
    "DEFAULT_MACS",
    "CipherSpec",
    "MacSpec",
    "MODE_STREAM",
    "MODE_GCM",
    "MODE_CHACHA",
]

# How PacketCodec must frame packets for a cipher.
MODE_STREAM = 1  # length-preserving cipher (AES-CTR) plus a separate MAC
MODE_GCM = 2  # AES-GCM: clear length as AAD, 16-byte tag
MODE_CHACHA = 3  # OpenSSH chacha20-poly1305: encrypted length, Poly1305 tag

_U64 = struct.Struct(">Q")
_ZERO_BLOCK = bytes(64)
_MASK64 = (1 << 64) - 1


class CipherSpec:
    """What negotiation and key derivation need to know about one cipher.

    ``key_size``/``iv_size``/``block_size`` are in bytes (``iv_size`` is 0 where the cipher
    takes no IV). ``mode`` tells the packet codec which framing to use; ``tag_size`` is the
    length of the AEAD tag appended to each packet (0 for non-AEAD ciphers).
    """

    __slots__ = ("name", "key_size", "iv_size", "block_size", "is_aead", "tag_size", "mode")

    def __init__(self, name: str, key_size: int, iv_size: int, block_size: int, mode: int,
                 tag_size: int = 0) -> None:
        self.name = name
        self.key_size = key_size
        self.iv_size = iv_size
        self.block_size = block_size
        self.mode = mode
        self.tag_size = tag_size
        self.is_aead = tag_size > 0

    def __repr__(self) -> str:
        return f"<CipherSpec {self.name}>"

    def new(self, key: bytes, iv: bytes):
        """A state object for one direction (the same object encrypts or decrypts)."""
        if len(key) < self.key_size or len(iv) < self.iv_size:
            raise ValueError(f"{self.name}: need a {self.key_size}-byte key and "
                             f"{self.iv_size}-byte IV, got {len(key)} and {len(iv)}")
        key = bytes(key[: self.key_size])
        iv = bytes(iv[: self.iv_size])
        if self.mode == MODE_STREAM:
            # CTR is symmetric: an "encryptor" also decrypts. The context keeps the counter
            # running across packets, as RFC 4344 requires.
            return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
        if self.mode == MODE_GCM:
            return GCMState(key, iv)
        return ChaChaPolyState(key)


class GCMState:
    """AES-GCM the OpenSSH way: nonce = 4-byte fixed field + 8-byte invocation counter.

    The counter starts from the derived IV and goes up by one per packet (mod 2^64);
    the cleartext 4-byte packet length is the additional authenticated data.
    """

    __slots__ = ("_aead", "_fixed", "_counter")

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._aead = AESGCM(key)
        self._fixed = iv[:4]
        self._counter = int.from_bytes(iv[4:12], "big")

    def _next_nonce(self) -> bytes:
        c = self._counter
        self._counter = (c + 1) & _MASK64
        return self._fixed + _U64.pack(c)

    def seal(self, length4: bytes, body) -> bytes:
        """Ciphertext of ``body`` followed by the 16-byte tag."""
        return self._aead.encrypt(self._next_nonce(), body, length4)

    def open(self, length4, body_and_tag) -> Optional[bytes]:
        """Plaintext of a packet body, or None if the tag does not verify."""
        try:
            return self._aead.decrypt(self._next_nonce(), body_and_tag, length4)
        except InvalidTag:
            return None


class ChaChaPolyState:
    """chacha20-poly1305@openssh.com: two DJB ChaCha20 instances plus Poly1305.

    The 64-byte key is K_2 (payload, first half) then K_1 (length, second half). Both use the
    packet sequence number as a 64-bit big-endian nonce. cryptography's ChaCha20 takes a
    16-byte "nonce" that is really the 64-bit little-endian block counter followed by the
    64-bit nonce, which is exactly the original DJB layout OpenSSH uses.
    """

    __slots__ = ("_len_ctx", "_main_ctx")

    def __init__(self, key: bytes) -> None:
        k2, k1 = key[:32], key[32:64]
        # One context per key, re-pointed at each packet's nonce with reset_nonce(): far
        # cheaper than building new Cipher objects for every packet.
        self._len_ctx = Cipher(algorithms.ChaCha20(k1, bytes(16)), None).encryptor()
        self._main_ctx = Cipher(algorithms.ChaCha20(k2, bytes(16)), None).encryptor()

    def crypt_length(self, seq: int, data4) -> bytes:
        """Encrypt or decrypt the 4-byte length field of packet ``seq``."""
        ctx = self._len_ctx
        ctx.reset_nonce(b"\x00" * 8 + _U64.pack(seq))
        return ctx.update(data4)

    def _start(self, seq: int) -> bytes:
        """Point the payload stream at packet ``seq`` and return its Poly1305 key."""
        ctx = self._main_ctx
        ctx.reset_nonce(b"\x00" * 8 + _U64.pack(seq))
        # Block 0 yields the one-time Poly1305 key; the payload then starts at block 1,
        # which is where the stream is left after consuming one full 64-byte block.
        return ctx.update(_ZERO_BLOCK)[:32]

    def seal(self, seq: int, length4: bytes, body) -> Tuple[bytes, bytes, bytes]:
        """``(encrypted length, encrypted body, tag)`` for packet ``seq``."""
        enc_len = self.crypt_length(seq, length4)
        poly_key = self._start(seq)
        ct = self._main_ctx.update(body)
        mac = Poly1305(poly_key)
        mac.update(enc_len)
        mac.update(ct)
        return enc_len, ct, mac.finalize()

    def open(self, seq: int, enc_packet, tag: bytes) -> Optional[bytes]:
        """Verify ``tag`` over the encrypted length+body, then decrypt the body.

        Returns None (and decrypts nothing) if the tag does not verify.
        """
        poly_key = self._start(seq)
        try:
            Poly1305.verify_tag(poly_key, enc_packet, tag)
        except InvalidSignature:
            return None
        return self._main_ctx.update(enc_packet[4:])


class MacSpec:
    """An HMAC algorithm: ``key_size`` and ``digest_size`` in bytes; ``etm`` for the
    encrypt-then-MAC variants (MAC over the ciphertext, cleartext packet length)."""

    __slots__ = ("name", "key_size", "digest_size", "etm", "_hash")

    def __init__(self, name: str, hash_cls, etm: bool) -> None:
        self.name = name
        self._hash = hash_cls
        self.digest_size = hash_cls.digest_size
        self.key_size = self.digest_size  # RFC 4253/6668: key length = digest length
        self.etm = etm

    def __repr__(self) -> str:
        return f"<MacSpec {self.name}>"

    def new(self, key: bytes) -> hmac.HMAC:
        """A keyed HMAC template; ``.copy()`` it per packet instead of re-keying."""
        if len(key) < self.key_size:
            raise ValueError(f"{self.name}: need a {self.key_size}-byte key, got {len(key)}")
        return hmac.HMAC(bytes(key[: self.key_size]), self._hash())


CIPHERS: Dict[str, CipherSpec] = {
    spec.name: spec
    for spec in (
        CipherSpec("chacha20-poly1305@openssh.com", 64, 0, 8, MODE_CHACHA, tag_size=16),
        CipherSpec("aes128-gcm@openssh.com", 16, 12, 16, MODE_GCM, tag_size=16),
        CipherSpec("aes256-gcm@openssh.com", 32, 12, 16, MODE_GCM, tag_size=16),
        CipherSpec("aes128-ctr", 16, 16, 16, MODE_STREAM),
        CipherSpec("aes192-ctr", 24, 16, 16, MODE_STREAM),
        CipherSpec("aes256-ctr", 32, 16, 16, MODE_STREAM),
    )
}

MACS: Dict[str, MacSpec] = {
    spec.name: spec
    for spec in (
        MacSpec("hmac-sha2-256-etm@openssh.com", hashes.SHA256, True),
        MacSpec("hmac-sha2-512-etm@openssh.com", hashes.SHA512, True),
        MacSpec("hmac-sha2-256", hashes.SHA256, False),
        MacSpec("hmac-sha2-512", hashes.SHA512, False),
        MacSpec("hmac-sha1", hashes.SHA1, False),
    )
}

# AES-GCM first: with AES-NI it is the fastest AEAD for us and for OpenSSH's sshd (through a
# jump host the peer's cipher speed bounds throughput); chacha20-poly1305 for hosts without it.
DEFAULT_CIPHERS: Tuple[str, ...] = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)

# Order from docs/transport-design.rst (encrypt-then-MAC first, as OpenSSH prefers).
DEFAULT_MACS: Tuple[str, ...] = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
)
