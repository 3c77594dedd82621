"""Host key algorithms: which key type and signature format each wire name means.

Sans-IO helpers for the transport core: parse a server's host key blob, check its
signature over the exchange hash under the negotiated algorithm, and list the algorithms a
server's own key can offer.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Tuple, Type

from paramiko.ecdsakey import ECDSAKey
from paramiko.ed25519key import Ed25519Key
from paramiko.message import Message
from paramiko.pkey import PKey, UnknownKeyType
from paramiko.rsakey import RSAKey
from paramiko.ssh_exception import SSHException

__all__ = [
    "DEFAULT_HOSTKEY_ORDER",
    "HOSTKEY_ALGORITHMS",
    "HostKeyAlgorithm",
    "algorithms_for_key",
    "key_from_blob",
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
}

DEFAULT_HOSTKEY_ORDER: Tuple[str, ...] = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)

# Default order first, then anything registered but off by default.
_ALL_ORDER: Tuple[str, ...] = DEFAULT_HOSTKEY_ORDER + tuple(
    n for n in HOSTKEY_ALGORITHMS if n not in DEFAULT_HOSTKEY_ORDER
)

_CLASS_BY_KEY_TYPE: Dict[str, Type[PKey]] = {
    spec.key_type: spec.key_class for spec in HOSTKEY_ALGORITHMS.values()
}


def key_from_blob(blob: bytes) -> PKey:
    """The public key in an SSH key blob; ``SSHException`` if unknown or malformed."""
    m = Message(bytes(blob))
    key_type = m.get_text()
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


def sign_data(algorithm: str, key: PKey, data: bytes) -> bytes:
    """The signature blob a server sends for ``data`` under host key ``algorithm``."""
    spec = HOSTKEY_ALGORITHMS.get(algorithm)
    if spec is None:
        raise SSHException(f"unknown host key algorithm {algorithm!r}")
    if key.get_name() != spec.key_type:
        raise SSHException(f"a {key.get_name()} key cannot sign for {algorithm}")
    return key.sign_ssh_data(bytes(data), algorithm=spec.sig_algorithm).asbytes()


def algorithms_for_key(key: PKey) -> List[str]:
    """Host key algorithm names this key's type can serve, default order first."""
    name = key.get_name()
    return [n for n in _ALL_ORDER if HOSTKEY_ALGORITHMS[n].key_type == name]
