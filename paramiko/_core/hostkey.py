"""Host key algorithms: which key type and signature format each wire name means.

Sans-IO helpers for the transport core: parse a server's host key blob, check its
signature over the exchange hash under the negotiated algorithm, and list the algorithms a
server's own key can offer.

Host certificates (``*-cert-v01@openssh.com``) are registered too but never offered by a
client by default (``CERT_HOSTKEY_ORDER`` is for callers that trust a CA for the host). Under
a certificate algorithm the host key blob is the certificate, the signature is made with the
certified key under the plain algorithm (``rsa-sha2-512`` for ``rsa-sha2-512-cert-v01``), and
``key_from_blob`` gives the certified key with the certificate in its ``public_blob``. A server
key with a host certificate loaded (``key.load_certificate(path)``) serves the certificate
algorithms as well as the plain ones.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple, Type

from paramiko._core import certificate as _certificate
from paramiko.ecdsakey import ECDSAKey
from paramiko.ed25519key import Ed25519Key
from paramiko.message import Message
from paramiko.pkey import CERT_SUFFIX, PKey, UnknownKeyType
from paramiko.rsakey import RSAKey
from paramiko.ssh_exception import SSHException

__all__ = [
    "CERT_HOSTKEY_ORDER",
    "DEFAULT_HOSTKEY_ORDER",
    "HOSTKEY_ALGORITHMS",
    "HostKeyAlgorithm",
    "algorithms_for_key",
    "is_cert_algorithm",
    "kex_host_key",
    "key_from_blob",
    "server_algorithms",
    "sign_data",
    "verify_signature",
]


class HostKeyAlgorithm(NamedTuple):
    key_class: Type[PKey]
    key_type: str  # the type name inside the key blob
    sig_algorithm: str  # the name inside the signature blob


HOSTKEY_ALGORITHMS: Dict[str, HostKeyAlgorithm] = {
    "ssh-ed25519": HostKeyAlgorithm(Ed25519Key, "ssh-ed25519", "ssh-ed25519"),
    "ecdsa-sha2-nistp256": HostKeyAlgorithm(ECDSAKey, "ecdsa-sha2-nistp256",
                                            "ecdsa-sha2-nistp256"),
    "ecdsa-sha2-nistp384": HostKeyAlgorithm(ECDSAKey, "ecdsa-sha2-nistp384",
                                            "ecdsa-sha2-nistp384"),
    "ecdsa-sha2-nistp521": HostKeyAlgorithm(ECDSAKey, "ecdsa-sha2-nistp521",
                                            "ecdsa-sha2-nistp521"),
    "rsa-sha2-512": HostKeyAlgorithm(RSAKey, "ssh-rsa", "rsa-sha2-512"),
    "rsa-sha2-256": HostKeyAlgorithm(RSAKey, "ssh-rsa", "rsa-sha2-256"),
    # SHA-1: registered for explicit opt-in against legacy servers, never offered by default.
    "ssh-rsa": HostKeyAlgorithm(RSAKey, "ssh-rsa", "ssh-rsa"),
    # Host certificates: key_type is the certificate blob's type, sig_algorithm the plain one.
    "ssh-ed25519-cert-v01@openssh.com": HostKeyAlgorithm(
        Ed25519Key, "ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519"),
    "ecdsa-sha2-nistp256-cert-v01@openssh.com": HostKeyAlgorithm(
        ECDSAKey, "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp256"),
    "ecdsa-sha2-nistp384-cert-v01@openssh.com": HostKeyAlgorithm(
        ECDSAKey, "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp384"),
    "ecdsa-sha2-nistp521-cert-v01@openssh.com": HostKeyAlgorithm(
        ECDSAKey, "ecdsa-sha2-nistp521-cert-v01@openssh.com", "ecdsa-sha2-nistp521"),
    "rsa-sha2-512-cert-v01@openssh.com": HostKeyAlgorithm(
        RSAKey, "ssh-rsa-cert-v01@openssh.com", "rsa-sha2-512"),
    "rsa-sha2-256-cert-v01@openssh.com": HostKeyAlgorithm(
        RSAKey, "ssh-rsa-cert-v01@openssh.com", "rsa-sha2-256"),
}

DEFAULT_HOSTKEY_ORDER: Tuple[str, ...] = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)

# Host certificate algorithms, in the order a client that trusts a CA for the host puts them
# in front of DEFAULT_HOSTKEY_ORDER.
CERT_HOSTKEY_ORDER: Tuple[str, ...] = tuple(n + CERT_SUFFIX for n in DEFAULT_HOSTKEY_ORDER)


def is_cert_algorithm(algorithm: str) -> bool:
    """True for a host certificate algorithm name (``...-cert-v01@openssh.com``)."""
    return algorithm.endswith(CERT_SUFFIX)


# Default order first, then anything registered but off by default (plain keys only).
_ALL_ORDER: Tuple[str, ...] = DEFAULT_HOSTKEY_ORDER + tuple(
    n for n in HOSTKEY_ALGORITHMS
    if n not in DEFAULT_HOSTKEY_ORDER and not is_cert_algorithm(n)
)

_CLASS_BY_KEY_TYPE: Dict[str, Type[PKey]] = {
    spec.key_type: spec.key_class for spec in HOSTKEY_ALGORITHMS.values()
    if not is_cert_algorithm(spec.key_type)
}


def key_from_blob(blob: bytes) -> PKey:
    """The public key in an SSH key blob; ``SSHException`` if unknown or malformed.

    For a certificate blob: the certified key, with the certificate as its ``public_blob``
    (the certificate is parsed, not trusted: see ``certificate.verify_host_certificate``).
    """
    m = Message(bytes(blob))
    key_type = m.get_text()
    if is_cert_algorithm(key_type):
        return _certificate.parse_certificate(bytes(blob)).key
    klass = _CLASS_BY_KEY_TYPE.get(key_type)
    if klass is None:
        raise UnknownKeyType(key_type=key_type, key_bytes=bytes(blob))
    return klass(data=bytes(blob))


def verify_signature(algorithm: str, key_blob: bytes, data: bytes, sig_blob: bytes) -> bool:
    """Whether ``sig_blob`` signs ``data`` with the host key under ``algorithm``.

    Raises ``SSHException`` for an unknown algorithm or an unparsable key blob; any defect
    of the signature itself (wrong key type for the algorithm, a signature made with another
    algorithm such as ssh-rsa under rsa-sha2-512, garbage, trailing bytes) gives False.
    """
    spec = HOSTKEY_ALGORITHMS.get(algorithm)
    if spec is None:
        raise SSHException(f"unknown host key algorithm {algorithm!r}")
    if is_cert_algorithm(algorithm):
        key = _certified_key(spec, key_blob)
        if key is None:
            return False
    else:
        key = key_from_blob(key_blob)
        if key.get_name() != spec.key_type or key.public_blob is not None:
            return False
    m = Message(bytes(sig_blob))
    try:
        sig_name = m.get_text()
        sig = m.get_binary()
    except SSHException:
        return False
    if sig_name != spec.sig_algorithm or m.get_remainder():
        return False
    check = Message()
    check.add_string(sig_name)
    check.add_string(sig)
    check.rewind()
    return key.verify_ssh_sig(bytes(data), check)


def _certified_key(spec: HostKeyAlgorithm, key_blob: bytes) -> Optional[PKey]:
    """The certified key of a host certificate blob for ``spec``; None if it is another type.

    Like ``ssh``, a certificate whose CA signature does not verify is unusable: that raises
    ``SSHException`` (so does a malformed certificate).
    """
    m = Message(bytes(key_blob))
    if m.get_text() != spec.key_type:
        return None
    cert = _certificate.parse_certificate(bytes(key_blob))
    if not cert.signature_is_valid():
        raise SSHException(f"host certificate ({spec.key_type}, key id {cert.key_id!r}): "
                           "its CA signature does not verify")
    return cert.key


def _host_cert_type(key: PKey) -> Optional[str]:
    """The certificate blob type of ``key``'s loaded host certificate, if it has one."""
    blob = getattr(key, "public_blob", None)
    if blob is None or blob.key_type != key.get_name() + CERT_SUFFIX:
        return None
    try:
        if _certificate.parse_certificate(blob.key_blob).cert_type != "host":
            return None
    except SSHException:
        return None
    return blob.key_type


def sign_data(algorithm: str, key: PKey, data: bytes) -> bytes:
    """The signature blob a server sends for ``data`` under host key ``algorithm``."""
    spec = HOSTKEY_ALGORITHMS.get(algorithm)
    if spec is None:
        raise SSHException(f"unknown host key algorithm {algorithm!r}")
    name = key.get_name() + CERT_SUFFIX if is_cert_algorithm(algorithm) else key.get_name()
    if name != spec.key_type:
        raise SSHException(f"a {key.get_name()} key cannot sign for {algorithm}")
    return key.sign_ssh_data(bytes(data), algorithm=spec.sig_algorithm).asbytes()


def algorithms_for_key(key: PKey) -> List[str]:
    """Host key algorithm names this key can serve, default order first.

    A key with a host certificate loaded serves the certificate algorithms first, then the
    plain ones.
    """
    name = key.get_name()
    plain = [n for n in _ALL_ORDER if HOSTKEY_ALGORITHMS[n].key_type == name]
    cert_type = _host_cert_type(key)
    if cert_type is None:
        return plain
    return [n for n in CERT_HOSTKEY_ORDER if HOSTKEY_ALGORITHMS[n].key_type == cert_type] + plain


def server_algorithms(preferred: Iterable[str], keys: Iterable[PKey]) -> List[str]:
    """The host key algorithms a server offers, in ``preferred`` order, for its ``keys``.

    When ``preferred`` names no certificate algorithm (the default), each plain algorithm
    is preceded by its certificate variant if a key has a host certificate for it; a list
    that names certificate algorithms itself is taken literally.
    """
    prefs = list(preferred)
    served = set()
    for key in keys:
        served.update(algorithms_for_key(key))
    if not any(is_cert_algorithm(n) for n in prefs):
        expanded: List[str] = []
        for n in prefs:
            if n + CERT_SUFFIX in HOSTKEY_ALGORITHMS:
                expanded.append(n + CERT_SUFFIX)
            expanded.append(n)
        prefs = expanded
    out: List[str] = []
    for n in prefs:
        if n in served and n not in out:
            out.append(n)
    return out


class _CertifiedHostKey:
    """What the kex sees for a server key under a certificate algorithm: the certificate
    as host key blob (K_S), signatures from the key under the plain algorithm."""

    def __init__(self, key: PKey, cert_blob: bytes, sig_algorithm: str) -> None:
        self.key = key
        self.cert_blob = cert_blob
        self.sig_algorithm = sig_algorithm

    def asbytes(self) -> bytes:
        return self.cert_blob

    def get_name(self) -> str:
        return Message(self.cert_blob).get_text()

    def sign_ssh_data(self, data: bytes, algorithm: Optional[str] = None) -> Message:
        return self.key.sign_ssh_data(data, algorithm=self.sig_algorithm)


def kex_host_key(algorithm: str, key: Optional[PKey]) -> Any:
    """The host key object a server's kex uses for ``algorithm``: ``key`` itself for a plain
    algorithm, a certificate-presenting wrapper for a certificate algorithm."""
    if key is None or not is_cert_algorithm(algorithm):
        return key
    spec = HOSTKEY_ALGORITHMS[algorithm]
    blob = key.public_blob
    if blob is None or blob.key_type != spec.key_type:
        raise SSHException(f"server key {key.get_name()} has no certificate for {algorithm}")
    return _CertifiedHostKey(key, bytes(blob.key_blob), spec.sig_algorithm)
