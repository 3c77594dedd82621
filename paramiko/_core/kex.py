"""Key exchange methods for SSH-2, written sans-IO.

A :class:`KexAlgorithm` is one run of one key exchange method, on one side. The transport
feeds it the kex-specific messages (numbers 30-49) and sends whatever payloads it returns;
once ``done`` is true, ``result`` holds the shared secret ``K`` (already in its SSH wire
encoding), the exchange hash ``H`` and the server's host key blob and signature. Verifying
that signature, key derivation (:func:`derive_key`) and NEWKEYS belong to the caller.

Implemented: curve25519-sha256 (RFC 8731), ecdh-sha2-nistp256/384/521 (RFC 5656),
diffie-hellman-group14-sha256 / group16-sha512 / group18-sha512 (RFC 8268 with the RFC 3526
groups), diffie-hellman-group-exchange-sha256 (RFC 4419) and, when the installed
``cryptography`` has ML-KEM-768, the hybrid mlkem768x25519-sha256
(draft-ietf-sshm-mlkem-hybrid-kex, as in OpenSSH 9.9). All arithmetic is ``cryptography``'s;
this module only lays out the messages and the exchange hash.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Tuple, Type, Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, ec, x25519

from paramiko.common import (
    MSG_KEX_DH_GEX_GROUP,
    MSG_KEX_DH_GEX_INIT,
    MSG_KEX_DH_GEX_REPLY,
    MSG_KEX_DH_GEX_REQUEST,
    MSG_KEX_DH_GEX_REQUEST_OLD,
    MSG_KEX_ECDH_INIT,
    MSG_KEX_ECDH_REPLY,
    MSG_KEXDH_INIT,
    MSG_KEXDH_REPLY,
    byte_chr,
)
from paramiko.message import Message
from paramiko.primes import ModulusPack
from paramiko.ssh_exception import MessageOrderError, SSHException

try:  # ML-KEM arrived in cryptography 46; older versions simply lack the hybrid method.
    from cryptography.hazmat.primitives.asymmetric import mlkem as _mlkem
except ImportError:  # pragma: no cover - depends on the installed cryptography
    _mlkem = None

__all__ = [
    "KEX_ALGORITHMS",
    "KexAlgorithm",
    "KexContext",
    "KexResult",
    "default_kex_order",
    "derive_key",
    "kex_available",
]

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}

# Group exchange bounds the server enforces whatever the client asks (RFC 8270 / OpenSSH).
GEX_MIN_BITS = 2048
GEX_MAX_BITS = 8192
GEX_SERVER_PREFERRED_BITS = 3072

# cryptography >= 50 flags every finite-field DH key as deprecated. SSH still negotiates
# these methods with servers that offer nothing better, so the warning only adds noise;
# the filter is narrowed to this module and that message.
_FFDH_WARNING = "Diffie-Hellman over finite fields"


def _quiet_ffdh_warning() -> None:
    # Re-added per exchange (not once at import) because harnesses such as pytest reset
    # the filter list between tests; filterwarnings() drops the duplicate first.
    warnings.filterwarnings("ignore", message=_FFDH_WARNING, module=r"paramiko\._core\.kex$")


def _digest(hash_name: str, *parts: bytes) -> bytes:
    try:
        algorithm = _HASHES[hash_name]()
    except KeyError:
        raise SSHException(f"unknown key exchange hash {hash_name!r}") from None
    h = hashes.Hash(algorithm)
    for part in parts:
        h.update(part)
    return h.finalize()


def derive_key(hash_name: str, K: bytes, H: bytes, letter: Union[bytes, str],
               session_id: bytes, nbytes: int) -> bytes:
    """``nbytes`` of key material for ``letter`` (b"A".."F"), per RFC 4253 section 7.2.

    ``K`` must already be SSH-encoded (as in :attr:`KexResult.K`). When one hash output is
    not enough the key is extended with HASH(K || H || K1 || K2 ...).
    """
    if isinstance(letter, str):
        letter = letter.encode("ascii")
    if nbytes <= 0:
        return b""
    out = _digest(hash_name, K, H, letter, session_id)
    while len(out) < nbytes:
        out += _digest(hash_name, K, H, out)
    return out[:nbytes]


@dataclass
class KexContext:
    """What a key exchange needs from the transport.

    Versions are the identification lines without CRLF; the KEXINITs are the complete
    payloads including the leading message number 20. ``host_key`` (server side) offers
    ``asbytes()`` and ``sign_ssh_data(data, algorithm)``; ``moduli`` feeds a group-exchange
    server; ``gex_bits`` is the (min, preferred, max) a group-exchange client asks for.
    """

    is_server: bool
    client_version: bytes
    server_version: bytes
    client_kexinit: bytes
    server_kexinit: bytes
    host_key: Optional[object] = None
    host_key_algorithm: Optional[str] = None
    moduli: Optional[ModulusPack] = None
    # 3072 preferred: cryptography re-validates group-exchange primes on every use, which
    # costs seconds above that size (about 20 s at 8192 bits).
    gex_bits: Tuple[int, int, int] = (2048, 3072, 8192)


@dataclass
class KexResult:
    """Outcome of a finished exchange. ``signature`` is the server's signature blob over
    ``H`` (the client must verify it against ``host_key_blob``)."""

    K: bytes
    H: bytes
    host_key_blob: bytes
    signature: Optional[bytes]
    hash_name: str


def _as_bytes(value: Union[bytes, str]) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _mpint(n: int) -> bytes:
    return Message().add_mpint(n).asbytes()


def _string(b: bytes) -> bytes:
    return Message().add_string(b).asbytes()


class KexAlgorithm:
    """One side of one run of a key exchange method (subclasses implement the methods).

    ``handle`` expects ``m`` positioned just after the message number byte.
    """

    name: str = ""
    hash_name: str = "sha256"

    def __init__(self, ctx: KexContext) -> None:
        self.ctx = ctx
        self.is_server = bool(ctx.is_server)
        self.done = False
        self.result: Optional[KexResult] = None
        self._started = False
        self._expect: FrozenSet[int] = frozenset()
        if self.is_server:
            if ctx.host_key is None:
                raise SSHException(f"{self.name}: the server side needs a host key")
            self._expect = self._server_first_types()

    # -- public interface -------------------------------------------------------------------
    @property
    def expected_types(self) -> FrozenSet[int]:
        """Kex message numbers acceptable right now (empty before start and once done)."""
        return self._expect

    def start(self) -> List[bytes]:
        """Payloads to send first: the client's opening message; nothing for the server."""
        if self._started:
            raise SSHException(f"{self.name}: key exchange already started")
        self._started = True
        if self.is_server:
            return []
        return self._client_start()

    def handle(self, ptype: int, m: Message) -> List[bytes]:
        """Process one kex message; returns the payloads to send in answer."""
        if self.is_server:
            self._started = True
        if self.done or ptype not in self._expect:
            raise MessageOrderError(
                f"{self.name}: unexpected message {ptype} during key exchange "
                f"(expected {sorted(self._expect)})")
        self._expect = frozenset()  # each step sets the next one; errors leave nothing open
        try:
            return self._handle(ptype, m)
        except (ValueError, UnsupportedAlgorithm) as exc:
            # Backstop: every known cryptography error is translated where it arises.
            raise SSHException(f"{self.name}: {exc}") from exc

    # -- for subclasses ----------------------------------------------------------------------
    def _server_first_types(self) -> FrozenSet[int]:
        raise NotImplementedError

    def _client_start(self) -> List[bytes]:
        raise NotImplementedError

    def _handle(self, ptype: int, m: Message) -> List[bytes]:
        raise NotImplementedError

    def _end(self, m: Message, what: str) -> None:
        if m.get_remainder():
            raise SSHException(f"{self.name}: trailing data after {what}")

    def _exchange_hash(self, host_key_blob: bytes, tail: bytes) -> bytes:
        """HASH(V_C || V_S || I_C || I_S || K_S || method-specific tail)."""
        ctx = self.ctx
        m = Message()
        m.add_string(_as_bytes(ctx.client_version))
        m.add_string(_as_bytes(ctx.server_version))
        m.add_string(_as_bytes(ctx.client_kexinit))
        m.add_string(_as_bytes(ctx.server_kexinit))
        m.add_string(host_key_blob)
        m.add_bytes(tail)
        return _digest(self.hash_name, m.asbytes())

    def _host_key_blob(self) -> bytes:
        blob = self.ctx.host_key.asbytes()
        return bytes(blob)

    def _sign(self, H: bytes) -> bytes:
        key = self.ctx.host_key
        algorithm = self.ctx.host_key_algorithm
        sig = key.sign_ssh_data(H, algorithm) if algorithm is not None else key.sign_ssh_data(H)
        if not isinstance(sig, (bytes, bytearray, memoryview)):
            sig = sig.asbytes()  # a Message holding string(alg) || string(sig)
        return bytes(sig)

    def _finish(self, K: bytes, H: bytes, host_key_blob: bytes,
                signature: Optional[bytes]) -> None:
        self.result = KexResult(K=K, H=H, host_key_blob=host_key_blob, signature=signature,
                                hash_name=self.hash_name)
        self.done = True
        self._expect = frozenset()


# == ECDH-shaped methods: one public value each way, hashed as strings ======================

class _EphemeralKex(KexAlgorithm):
    """Client sends string(Q_C) in message 30; server answers 31 with string(K_S),
    string(Q_S), string(signature). H's tail is string(Q_C) || string(Q_S) || K."""

    def _server_first_types(self) -> FrozenSet[int]:
        return frozenset({MSG_KEX_ECDH_INIT})

    # Subclasses: produce Q_C; answer Q_C with (Q_S, encoded K); turn Q_S into encoded K.
    def _client_public(self) -> bytes:
        raise NotImplementedError

    def _server_answer(self, q_c: bytes) -> Tuple[bytes, bytes]:
        raise NotImplementedError

    def _client_secret(self, q_s: bytes) -> bytes:
        raise NotImplementedError

    def _client_start(self) -> List[bytes]:
        self._q_c = self._client_public()
        m = Message()
        m.add_byte(byte_chr(MSG_KEX_ECDH_INIT)).add_string(self._q_c)
        self._expect = frozenset({MSG_KEX_ECDH_REPLY})
        return [m.asbytes()]

    def _handle(self, ptype: int, m: Message) -> List[bytes]:
        if self.is_server:
            q_c = m.get_string()
            self._end(m, "the client's public value")
            q_s, K = self._server_answer(q_c)
            host_key_blob = self._host_key_blob()
            H = self._exchange_hash(host_key_blob, _string(q_c) + _string(q_s) + K)
            sig = self._sign(H)
            out = Message()
            out.add_byte(byte_chr(MSG_KEX_ECDH_REPLY))
            out.add_string(host_key_blob).add_string(q_s).add_string(sig)
            self._finish(K, H, host_key_blob, None)
            return [out.asbytes()]
        host_key_blob = m.get_string()
        q_s = m.get_string()
        sig = m.get_string()
        self._end(m, "the server's reply")
        K = self._client_secret(q_s)
        H = self._exchange_hash(host_key_blob, _string(self._q_c) + _string(q_s) + K)
        self._finish(K, H, host_key_blob, sig)
        return []


def _x25519_public(data: bytes, who: str) -> x25519.X25519PublicKey:
    if len(data) != 32:
        raise SSHException(f"{who} X25519 public key is {len(data)} bytes, expected 32")
    try:
        return x25519.X25519PublicKey.from_public_bytes(data)
    except ValueError as exc:
        raise SSHException(f"invalid {who} X25519 public key: {exc}") from exc


def _x25519_exchange(private: x25519.X25519PrivateKey, peer: x25519.X25519PublicKey,
                     who: str) -> bytes:
    try:
        return private.exchange(peer)
    except ValueError as exc:  # all-zero output: a low-order point (RFC 8731 section 3)
        raise SSHException(f"{who} X25519 public key gives a degenerate shared secret") from exc


def _x25519_raw(private: x25519.X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)


class KexCurve25519(_EphemeralKex):
    """curve25519-sha256 (RFC 8731); K is the X25519 output read as a big-endian mpint."""

    name = "curve25519-sha256"
    hash_name = "sha256"

    def _client_public(self) -> bytes:
        self._priv = x25519.X25519PrivateKey.generate()
        return _x25519_raw(self._priv)

    def _server_answer(self, q_c: bytes) -> Tuple[bytes, bytes]:
        peer = _x25519_public(q_c, "client's")
        priv = x25519.X25519PrivateKey.generate()
        shared = _x25519_exchange(priv, peer, "client's")
        return _x25519_raw(priv), _mpint(int.from_bytes(shared, "big"))

    def _client_secret(self, q_s: bytes) -> bytes:
        peer = _x25519_public(q_s, "server's")
        shared = _x25519_exchange(self._priv, peer, "server's")
        return _mpint(int.from_bytes(shared, "big"))


class KexCurve25519LibSSH(KexCurve25519):
    """The pre-RFC name of the same method."""

    name = "curve25519-sha256@libssh.org"


class _KexECDHNist(_EphemeralKex):
    """ecdh-sha2-nistp* (RFC 5656 section 4); points travel uncompressed (SEC1 0x04)."""

    curve: ec.EllipticCurve

    def _point_size(self) -> int:
        return 1 + 2 * ((self.curve.key_size + 7) // 8)

    def _load_point(self, data: bytes, who: str) -> ec.EllipticCurvePublicKey:
        size = self._point_size()
        if len(data) != size or data[:1] != b"\x04":
            raise SSHException(
                f"{who} {self.curve.name} point is malformed ({len(data)} bytes; "
                f"expected {size} starting with 0x04)")
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(self.curve, data)
        except ValueError as exc:  # not on the curve
            raise SSHException(f"invalid {who} {self.curve.name} point: {exc}") from exc

    def _shared(self, private: ec.EllipticCurvePrivateKey,
                peer: ec.EllipticCurvePublicKey) -> bytes:
        try:
            x = private.exchange(ec.ECDH(), peer)
        except ValueError as exc:
            raise SSHException(f"ECDH on {self.curve.name} failed: {exc}") from exc
        return _mpint(int.from_bytes(x, "big"))

    def _new_key(self) -> Tuple[ec.EllipticCurvePrivateKey, bytes]:
        priv = ec.generate_private_key(self.curve)
        pub = priv.public_key().public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint)
        return priv, pub

    def _client_public(self) -> bytes:
        self._priv, pub = self._new_key()
        return pub

    def _server_answer(self, q_c: bytes) -> Tuple[bytes, bytes]:
        peer = self._load_point(q_c, "client's")
        priv, pub = self._new_key()
        return pub, self._shared(priv, peer)

    def _client_secret(self, q_s: bytes) -> bytes:
        return self._shared(self._priv, self._load_point(q_s, "server's"))


class KexECDHNistP256(_KexECDHNist):
    name = "ecdh-sha2-nistp256"
    hash_name = "sha256"
    curve = ec.SECP256R1()


class KexECDHNistP384(_KexECDHNist):
    name = "ecdh-sha2-nistp384"
    hash_name = "sha384"
    curve = ec.SECP384R1()


class KexECDHNistP521(_KexECDHNist):
    name = "ecdh-sha2-nistp521"
    hash_name = "sha512"
    curve = ec.SECP521R1()


# ML-KEM-768 sizes (FIPS 203) and X25519's.
_MLKEM768_EK = 1184
_MLKEM768_CT = 1088
_X25519_PUB = 32


class KexMLKEM768X25519(_EphemeralKex):
    """mlkem768x25519-sha256: C_INIT = ek || X25519 pub, S_REPLY = ciphertext || X25519 pub,
    K = string(SHA-256(ML-KEM secret || X25519 secret))."""

    name = "mlkem768x25519-sha256"
    hash_name = "sha256"

    def _combine(self, kem_secret: bytes, ecdh_secret: bytes) -> bytes:
        return _string(_digest("sha256", kem_secret, ecdh_secret))

    def _client_public(self) -> bytes:
        self._kem = _mlkem.MLKEM768PrivateKey.generate()
        self._priv = x25519.X25519PrivateKey.generate()
        return self._kem.public_key().public_bytes_raw() + _x25519_raw(self._priv)

    def _server_answer(self, q_c: bytes) -> Tuple[bytes, bytes]:
        if len(q_c) != _MLKEM768_EK + _X25519_PUB:
            raise SSHException(f"client's mlkem768x25519 value is {len(q_c)} bytes, "
                               f"expected {_MLKEM768_EK + _X25519_PUB}")
        try:
            ek = _mlkem.MLKEM768PublicKey.from_public_bytes(q_c[:_MLKEM768_EK])
        except ValueError as exc:
            raise SSHException(f"invalid ML-KEM-768 encapsulation key from client: {exc}") \
                from exc
        peer = _x25519_public(q_c[_MLKEM768_EK:], "client's")
        kem_secret, ciphertext = ek.encapsulate()
        priv = x25519.X25519PrivateKey.generate()
        ecdh_secret = _x25519_exchange(priv, peer, "client's")
        return ciphertext + _x25519_raw(priv), self._combine(kem_secret, ecdh_secret)

    def _client_secret(self, q_s: bytes) -> bytes:
        if len(q_s) != _MLKEM768_CT + _X25519_PUB:
            raise SSHException(f"server's mlkem768x25519 value is {len(q_s)} bytes, "
                               f"expected {_MLKEM768_CT + _X25519_PUB}")
        try:
            kem_secret = self._kem.decapsulate(q_s[:_MLKEM768_CT])
        except ValueError as exc:
            raise SSHException(f"invalid ML-KEM-768 ciphertext from server: {exc}") from exc
        peer = _x25519_public(q_s[_MLKEM768_CT:], "server's")
        ecdh_secret = _x25519_exchange(self._priv, peer, "server's")
        return self._combine(kem_secret, ecdh_secret)


# == finite-field Diffie-Hellman ============================================================

# Loading a group makes cryptography/OpenSSL verify it (a safe-prime test that costs
# seconds for 4096+ bit groups that OpenSSL does not know by name), so checked groups are
# kept for reuse. Bounded, and keyed by the numbers themselves.
_GROUP_CACHE: OrderedDict[Tuple[int, int], Tuple[dh.DHParameters, dh.DHParameterNumbers]] = \
    OrderedDict()
_GROUP_CACHE_SIZE = 16
_GROUP_CACHE_LOCK = threading.Lock()


def _dh_group(p: int, g: int) -> Tuple[dh.DHParameters, dh.DHParameterNumbers]:
    key = (p, g)
    with _GROUP_CACHE_LOCK:
        hit = _GROUP_CACHE.get(key)
        if hit is not None:
            _GROUP_CACHE.move_to_end(key)
            return hit
    try:
        numbers = dh.DHParameterNumbers(p, g)
        params = numbers.parameters()
    except (ValueError, TypeError) as exc:
        raise SSHException(f"unusable DH group ({p.bit_length()} bits, g={g}): {exc}") from exc
    with _GROUP_CACHE_LOCK:
        _GROUP_CACHE[key] = (params, numbers)
        while len(_GROUP_CACHE) > _GROUP_CACHE_SIZE:
            _GROUP_CACHE.popitem(last=False)
    return params, numbers


class _DHMixin:
    """Key generation, peer value checks and agreement for a group (p, g)."""

    name: str

    def _dh_setup(self, p: int, g: int) -> None:
        _quiet_ffdh_warning()
        self._p, self._g = p, g
        self._params, self._numbers = _dh_group(p, g)
        self._x = self._params.generate_private_key()
        self._y = self._x.public_key().public_numbers().y

    def _check_peer(self, value: int, label: str) -> None:
        # RFC 4253 section 8: values outside [2, p-2] give away or fix the secret.
        if not 1 < value < self._p - 1:
            raise SSHException(f"{self.name}: peer's DH value {label} is out of range "
                               "(must satisfy 1 < value < p-1)")

    def _dh_secret(self, peer_value: int) -> bytes:
        """SSH mpint of the shared secret g^(xy) mod p."""
        _quiet_ffdh_warning()
        try:
            peer = dh.DHPublicNumbers(peer_value, self._numbers).public_key()
            shared = self._x.exchange(peer)
        except ValueError as exc:
            raise SSHException(f"{self.name}: DH agreement failed: {exc}") from exc
        return _mpint(int.from_bytes(shared, "big"))


_GROUP14_P = int(
    (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF"
    ),
    16,
)
_GROUP16_P = int(
    (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
        "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
        "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
        "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
        "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8"
        "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2"
        "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
        "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF"
    ),
    16,
)
_GROUP18_P = int(
    (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
        "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
        "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
        "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
        "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8"
        "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2"
        "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
        "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026"
        "C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE"
        "B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B"
        "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC"
        "F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E"
        "59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA"
        "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76"
        "F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468"
        "043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DBE115974A3926F12FEE5E4"
        "38777CB6A932DF8CD8BEC4D073B931BA3BC832B68D9DD300741FA7BF8AFC47ED"
        "2576F6936BA424663AAB639C5AE4F5683423B4742BF1C978238F16CBE39D652D"
        "E3FDB8BEFC848AD922222E04A4037C0713EB57A81A23F0C73473FC646CEA306B"
        "4BCBC8862F8385DDFA9D4B7FA2C087E879683303ED5BDD3A062B3CF5B3A278A6"
        "6D2A13F83F44F82DDF310EE074AB6A364597E899A0255DC164F31CC50846851D"
        "F9AB48195DED7EA1B1D510BD7EE74D73FAF36BC31ECFA268359046F4EB879F92"
        "4009438B481C6CD7889A002ED5EE382BC9190DA6FC026E479558E4475677E9AA"
        "9E3050E2765694DFC81F56E880B96E7160C980DD98EDD3DFFFFFFFFFFFFFFFFF"
    ),
    16,
)


class _KexDHFixedGroup(_DHMixin, KexAlgorithm):
    """diffie-hellman-group* (RFC 4253 section 8 with RFC 8268 names): the client sends
    mpint e in message 30; the server answers 31 with string K_S, mpint f, string sig."""

    prime: int
    generator = 2

    def _server_first_types(self) -> FrozenSet[int]:
        return frozenset({MSG_KEXDH_INIT})

    def _client_start(self) -> List[bytes]:
        self._dh_setup(self.prime, self.generator)
        m = Message()
        m.add_byte(byte_chr(MSG_KEXDH_INIT)).add_mpint(self._y)
        self._expect = frozenset({MSG_KEXDH_REPLY})
        return [m.asbytes()]

    def _handle(self, ptype: int, m: Message) -> List[bytes]:
        if self.is_server:
            e = m.get_mpint()
            self._end(m, "e")
            self._dh_setup(self.prime, self.generator)
            self._check_peer(e, "e")
            K = self._dh_secret(e)
            host_key_blob = self._host_key_blob()
            H = self._exchange_hash(host_key_blob, _mpint(e) + _mpint(self._y) + K)
            sig = self._sign(H)
            out = Message()
            out.add_byte(byte_chr(MSG_KEXDH_REPLY))
            out.add_string(host_key_blob).add_mpint(self._y).add_string(sig)
            self._finish(K, H, host_key_blob, None)
            return [out.asbytes()]
        host_key_blob = m.get_string()
        f = m.get_mpint()
        sig = m.get_string()
        self._end(m, "the server's reply")
        self._check_peer(f, "f")
        K = self._dh_secret(f)
        H = self._exchange_hash(host_key_blob, _mpint(self._y) + _mpint(f) + K)
        self._finish(K, H, host_key_blob, sig)
        return []


class KexGroup14SHA256(_KexDHFixedGroup):
    name = "diffie-hellman-group14-sha256"
    hash_name = "sha256"
    prime = _GROUP14_P


class KexGroup16SHA512(_KexDHFixedGroup):
    name = "diffie-hellman-group16-sha512"
    hash_name = "sha512"
    prime = _GROUP16_P


class KexGroup18SHA512(_KexDHFixedGroup):
    name = "diffie-hellman-group18-sha512"
    hash_name = "sha512"
    prime = _GROUP18_P


class KexGexSHA256(_DHMixin, KexAlgorithm):
    """diffie-hellman-group-exchange-sha256 (RFC 4419).

    Client: REQUEST(34: min, n, max) -> GROUP(31: p, g) -> INIT(32: e) -> REPLY(33: K_S, f,
    sig). The server also takes the obsolete REQUEST_OLD (30: n), which changes the hash to
    carry n alone.
    """

    name = "diffie-hellman-group-exchange-sha256"
    hash_name = "sha256"

    def __init__(self, ctx: KexContext) -> None:
        super().__init__(ctx)
        self._request = b""  # the request fields as they go into H
        if self.is_server:
            if ctx.moduli is None or not ctx.moduli.pack:
                raise SSHException(f"{self.name}: the server has no moduli loaded")
        else:
            bits = tuple(ctx.gex_bits)
            if (len(bits) != 3 or not all(isinstance(b, int) for b in bits)
                    or not 0 < bits[0] <= bits[1] <= bits[2] <= 0xFFFFFFFF):
                raise SSHException(f"{self.name}: bad gex_bits {ctx.gex_bits!r} "
                                   "(need 0 < min <= preferred <= max)")
            self._min, self._n, self._max = bits

    def _server_first_types(self) -> FrozenSet[int]:
        return frozenset({MSG_KEX_DH_GEX_REQUEST, MSG_KEX_DH_GEX_REQUEST_OLD})

    def _client_start(self) -> List[bytes]:
        m = Message()
        m.add_byte(byte_chr(MSG_KEX_DH_GEX_REQUEST))
        m.add_int(self._min).add_int(self._n).add_int(self._max)
        self._request = Message().add_int(self._min).add_int(self._n).add_int(self._max) \
            .asbytes()
        self._expect = frozenset({MSG_KEX_DH_GEX_GROUP})
        return [m.asbytes()]

    def _handle(self, ptype: int, m: Message) -> List[bytes]:
        if self.is_server:
            if ptype == MSG_KEX_DH_GEX_INIT:
                return self._server_init(m)
            return self._server_request(ptype, m)
        if ptype == MSG_KEX_DH_GEX_GROUP:
            return self._client_group(m)
        return self._client_reply(m)

    # -- server -----------------------------------------------------------------------------
    def _server_request(self, ptype: int, m: Message) -> List[bytes]:
        if ptype == MSG_KEX_DH_GEX_REQUEST:
            lo, n, hi = m.get_int(), m.get_int(), m.get_int()
            self._end(m, "the group request")
            if not lo <= n <= hi:
                raise SSHException(f"{self.name}: bad group request "
                                   f"(min={lo}, preferred={n}, max={hi})")
            self._request = Message().add_int(lo).add_int(n).add_int(hi).asbytes()
        else:
            n = m.get_int()
            self._end(m, "the group request")
            lo, hi = GEX_MIN_BITS, GEX_MAX_BITS
            self._request = Message().add_int(n).asbytes()
        # Whatever the client asks, stay within the sizes we consider safe and affordable.
        lo, hi = max(lo, GEX_MIN_BITS), min(hi, GEX_MAX_BITS)
        # Prefer at most GEX_SERVER_PREFERRED_BITS: validating a larger prime in cryptography
        # takes seconds per exchange, so a stock `ssh` asking for 8192 would wait ~50 s.
        n = min(max(n, GEX_MIN_BITS), GEX_MAX_BITS, max(lo, GEX_SERVER_PREFERRED_BITS))
        if lo > hi:
            raise SSHException(f"{self.name}: requested group sizes are outside "
                               f"{GEX_MIN_BITS}..{GEX_MAX_BITS} bits")
        g, p = self.ctx.moduli.get_modulus(lo, n, hi)
        self._dh_setup(p, g)
        out = Message()
        out.add_byte(byte_chr(MSG_KEX_DH_GEX_GROUP)).add_mpint(p).add_mpint(g)
        self._expect = frozenset({MSG_KEX_DH_GEX_INIT})
        return [out.asbytes()]

    def _server_init(self, m: Message) -> List[bytes]:
        e = m.get_mpint()
        self._end(m, "e")
        self._check_peer(e, "e")
        K = self._dh_secret(e)
        host_key_blob = self._host_key_blob()
        H = self._exchange_hash(host_key_blob, self._gex_tail(e, self._y, K))
        sig = self._sign(H)
        out = Message()
        out.add_byte(byte_chr(MSG_KEX_DH_GEX_REPLY))
        out.add_string(host_key_blob).add_mpint(self._y).add_string(sig)
        self._finish(K, H, host_key_blob, None)
        return [out.asbytes()]

    # -- client -----------------------------------------------------------------------------
    def _client_group(self, m: Message) -> List[bytes]:
        p = m.get_mpint()
        g = m.get_mpint()
        self._end(m, "the group")
        bits = p.bit_length() if p > 0 else 0
        if not self._min <= bits <= self._max:
            raise SSHException(f"{self.name}: server sent a {bits}-bit group, outside the "
                               f"requested {self._min}..{self._max} bits")
        if p % 2 == 0 or not 1 < g < p - 1:
            raise SSHException(f"{self.name}: server sent an invalid group (even modulus "
                               "or generator out of range)")
        self._dh_setup(p, g)  # cryptography also checks p is a safe prime
        out = Message()
        out.add_byte(byte_chr(MSG_KEX_DH_GEX_INIT)).add_mpint(self._y)
        self._expect = frozenset({MSG_KEX_DH_GEX_REPLY})
        return [out.asbytes()]

    def _client_reply(self, m: Message) -> List[bytes]:
        host_key_blob = m.get_string()
        f = m.get_mpint()
        sig = m.get_string()
        self._end(m, "the server's reply")
        self._check_peer(f, "f")
        K = self._dh_secret(f)
        H = self._exchange_hash(host_key_blob, self._gex_tail(self._y, f, K))
        self._finish(K, H, host_key_blob, sig)
        return []

    def _gex_tail(self, e: int, f: int, K: bytes) -> bytes:
        return self._request + _mpint(self._p) + _mpint(self._g) + _mpint(e) + _mpint(f) + K


# == registry ===============================================================================

def _probe(fn) -> bool:
    try:
        fn()
    except (UnsupportedAlgorithm, ValueError, AttributeError):
        return False
    return True


_X25519_OK = _probe(x25519.X25519PrivateKey.generate)
_MLKEM_OK = _mlkem is not None and _X25519_OK and _probe(
    lambda: _mlkem.MLKEM768PrivateKey.generate().public_key().encapsulate())

_ALL: Tuple[Type[KexAlgorithm], ...] = (
    KexMLKEM768X25519,
    KexCurve25519,
    KexCurve25519LibSSH,
    KexECDHNistP256,
    KexECDHNistP384,
    KexECDHNistP521,
    KexGexSHA256,
    KexGroup16SHA512,
    KexGroup18SHA512,
    KexGroup14SHA256,
)


def _usable(cls: Type[KexAlgorithm]) -> bool:
    if cls is KexMLKEM768X25519:
        return _MLKEM_OK
    if issubclass(cls, KexCurve25519):
        return _X25519_OK
    return True


#: Wire name -> class, holding only the methods this installation can run.
KEX_ALGORITHMS: Dict[str, Type[KexAlgorithm]] = {c.name: c for c in _ALL if _usable(c)}


def kex_available(name: str) -> bool:
    """Whether the key exchange method ``name`` is implemented and usable here."""
    return name in KEX_ALGORITHMS


def default_kex_order() -> Tuple[str, ...]:
    """Preferred key exchange methods, best first (the hybrid PQ one only if available)."""
    return tuple(c.name for c in _ALL if kex_available(c.name))
