"""``RSAKey``: RSA keys (key type ``ssh-rsa``; signatures rsa-sha2-512/256, legacy ssh-rsa)."""

from __future__ import annotations

import os
from typing import IO, Any, Callable, Dict, List, Optional, Tuple, Union

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from paramiko.message import Message
from paramiko.pkey import CERT_SUFFIX, Password, PKey
from paramiko.ssh_exception import SSHException

# Signature algorithm name -> hash (RFC 8332; "ssh-rsa" is SHA-1, RFC 4253).
_HASHES: Dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "rsa-sha2-512": hashes.SHA512,
    "rsa-sha2-256": hashes.SHA256,
    "ssh-rsa": hashes.SHA1,
}


class RSAKey(PKey):
    """An RSA public key, or key pair when loaded from a private key."""

    name = "ssh-rsa"
    _ALGORITHM = "RSA"
    # SHA-1 signatures are legacy; sign with SHA-512 unless the caller asks otherwise.
    DEFAULT_SIGNATURE_ALGORITHM = "rsa-sha2-512"
    HASHES = _HASHES

    def __init__(
        self,
        msg: Optional[Message] = None,
        data: Optional[bytes] = None,
        filename: Optional[Union[str, os.PathLike]] = None,
        password: Password = None,
        key: Optional[Union[rsa.RSAPrivateKey, rsa.RSAPublicKey]] = None,
        file_obj: Optional[IO] = None,
    ) -> None:
        self._load(msg, data, filename, password, file_obj, key_obj=key)

    @classmethod
    def identifiers(cls) -> List[str]:
        names = list(_HASHES)
        return names + [n + CERT_SUFFIX for n in names]

    @classmethod
    def _key_types(cls) -> Tuple[str, ...]:
        return ("ssh-rsa",)

    @classmethod
    def _accepts(cls, obj: Any) -> bool:
        return isinstance(obj, (rsa.RSAPrivateKey, rsa.RSAPublicKey))

    @property
    def key(self) -> Union[rsa.RSAPrivateKey, rsa.RSAPublicKey]:
        """The cryptography key object (private if this key can sign)."""
        return self._private if self._private is not None else self._public

    @property
    def private_key(self) -> Optional[rsa.RSAPrivateKey]:
        return self._private

    @property
    def public_numbers(self) -> rsa.RSAPublicNumbers:
        return self._public.public_numbers()

    @property
    def size(self) -> int:
        return self._public.key_size

    def get_bits(self) -> int:
        return self._public.key_size

    def _read_public_fields(self, key_type: str, msg: Message) -> Any:
        e = msg.get_mpint()
        n = msg.get_mpint()
        if e <= 0 or n <= 0:
            raise SSHException("invalid RSA public key: non-positive exponent or modulus")
        try:
            return rsa.RSAPublicNumbers(e, n).public_key()
        except (ValueError, OverflowError, UnsupportedAlgorithm) as exc:
            raise SSHException(f"invalid RSA public key: {exc}") from None

    def _write_public_fields(self, msg: Message) -> None:
        numbers = self._public.public_numbers()
        msg.add_mpint(numbers.e)
        msg.add_mpint(numbers.n)

    def _sign(self, data: bytes, algorithm: Optional[str]) -> Tuple[str, bytes]:
        name = algorithm or self.DEFAULT_SIGNATURE_ALGORITHM
        if name not in _HASHES:
            raise SSHException(f"unknown RSA signature algorithm {name!r}")
        try:
            sig = self._private.sign(data, padding.PKCS1v15(), _HASHES[name]())
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SSHException(f"RSA signing failed: {exc}") from None
        return name, sig

    def _verify(self, sig_name: str, sig: bytes, data: bytes) -> bool:
        if sig_name not in _HASHES:
            return False
        size = (self._public.key_size + 7) // 8
        if len(sig) > size:
            return False
        # Some implementations strip leading zero bytes; RFC 8332 says to accept that.
        sig = sig.rjust(size, b"\x00")
        try:
            self._public.verify(sig, data, padding.PKCS1v15(), _HASHES[sig_name]())
        except (InvalidSignature, ValueError, UnsupportedAlgorithm):
            return False
        return True

    @classmethod
    def generate(cls, bits: int, progress_func: Optional[Callable] = None) -> RSAKey:
        """A new RSA key pair of ``bits`` bits (``progress_func`` is ignored)."""
        try:
            private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        except (ValueError, TypeError) as exc:
            raise SSHException(f"cannot generate RSA key: {exc}") from None
        return cls(key=private)
