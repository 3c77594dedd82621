"""``ECDSAKey``: ECDSA keys on NIST P-256, P-384 and P-521 (RFC 5656)."""

from __future__ import annotations

import os
from typing import IO, Any, Callable, List, NamedTuple, Optional, Tuple, Type, Union

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from paramiko.message import Message
from paramiko.pkey import CERT_SUFFIX, Password, PKey
from paramiko.ssh_exception import SSHException


class ECDSACurve(NamedTuple):
    """One supported curve: how SSH names it and which hash its signatures use."""

    curve_class: Type[ec.EllipticCurve]
    nist_name: str  # the curve identifier inside the key blob, e.g. "nistp256"
    key_length: int
    hash_class: Type[hashes.HashAlgorithm]

    @property
    def key_format_identifier(self) -> str:
        return "ecdsa-sha2-" + self.nist_name


# RFC 5656 section 6.2.1: hash by curve size.
_CURVES: Tuple[ECDSACurve, ...] = (
    ECDSACurve(ec.SECP256R1, "nistp256", 256, hashes.SHA256),
    ECDSACurve(ec.SECP384R1, "nistp384", 384, hashes.SHA384),
    ECDSACurve(ec.SECP521R1, "nistp521", 521, hashes.SHA512),
)
_BY_TYPE = {c.key_format_identifier: c for c in _CURVES}
_BY_CURVE_NAME = {c.curve_class.name: c for c in _CURVES}
_BY_BITS = {c.key_length: c for c in _CURVES}


class ECDSAKey(PKey):
    """An ECDSA public key, or key pair when loaded from a private key."""

    _ALGORITHM = "ECDSA"
    ecdsa_curve: ECDSACurve = _CURVES[0]

    def __init__(
        self,
        msg: Optional[Message] = None,
        data: Optional[bytes] = None,
        filename: Optional[Union[str, os.PathLike]] = None,
        password: Password = None,
        vals: Optional[Tuple[Any, Any]] = None,
        file_obj: Optional[IO] = None,
        validate_point: bool = True,
    ) -> None:
        # validate_point is accepted for API compatibility only: cryptography always checks
        # that a public point lies on its curve, which we never want to skip.
        key_obj = None
        if vals is not None:
            signing, verifying = vals
            key_obj = signing if signing is not None else verifying
        self._load(msg, data, filename, password, file_obj, key_obj=key_obj)

    @classmethod
    def supported_key_format_identifiers(cls) -> List[str]:
        return [c.key_format_identifier for c in _CURVES]

    @classmethod
    def identifiers(cls) -> List[str]:
        names = cls.supported_key_format_identifiers()
        return names + [n + CERT_SUFFIX for n in names]

    @classmethod
    def _key_types(cls) -> Tuple[str, ...]:
        return tuple(_BY_TYPE)

    @classmethod
    def _accepts(cls, obj: Any) -> bool:
        return (isinstance(obj, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey))
                and obj.curve.name in _BY_CURVE_NAME)

    def _set_key(self, obj: Any) -> None:
        super()._set_key(obj)
        self.ecdsa_curve = _BY_CURVE_NAME[self._public.curve.name]
        self.name = self.ecdsa_curve.key_format_identifier

    @property
    def signing_key(self) -> Optional[ec.EllipticCurvePrivateKey]:
        return self._private

    @property
    def verifying_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def private_key(self) -> Optional[ec.EllipticCurvePrivateKey]:
        return self._private

    def get_bits(self) -> int:
        return self.ecdsa_curve.key_length

    def _read_public_fields(self, key_type: str, msg: Message) -> Any:
        curve = _BY_TYPE[key_type]
        ident = msg.get_text()
        if ident != curve.nist_name:
            raise SSHException(f"ECDSA key blob curve {ident!r} does not match {key_type!r}")
        point = msg.get_binary()
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(curve.curve_class(), point)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SSHException(f"invalid ECDSA public point: {exc}") from None

    def _write_public_fields(self, msg: Message) -> None:
        msg.add_string(self.ecdsa_curve.nist_name)
        msg.add_string(self._public.public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint))

    def _sign(self, data: bytes, algorithm: Optional[str]) -> Tuple[str, bytes]:
        der = self._private.sign(data, ec.ECDSA(self.ecdsa_curve.hash_class()))
        r, s = decode_dss_signature(der)
        # RFC 5656 3.1.2: the signature blob is mpint r, mpint s.
        inner = Message()
        inner.add_mpint(r)
        inner.add_mpint(s)
        return self.get_name(), inner.asbytes()

    def _verify(self, sig_name: str, sig: bytes, data: bytes) -> bool:
        if sig_name != self.get_name():
            return False
        m = Message(sig)
        try:
            r = m.get_mpint()
            s = m.get_mpint()
        except SSHException:
            return False
        if r <= 0 or s <= 0 or m.get_remainder():
            return False
        try:
            self._public.verify(encode_dss_signature(r, s), data,
                                ec.ECDSA(self.ecdsa_curve.hash_class()))
        except (InvalidSignature, ValueError, OverflowError):
            return False
        return True

    @classmethod
    def generate(
        cls,
        curve: ec.EllipticCurve = ec.SECP256R1(),  # noqa: B008 (upstream's signature)
        progress_func: Optional[Callable] = None,
        bits: Optional[int] = None,
    ) -> ECDSAKey:
        """A new key pair on ``curve``, or on the NIST curve of ``bits`` bits if given."""
        if bits is not None:
            if bits not in _BY_BITS:
                raise SSHException(f"unsupported ECDSA key size {bits}")
            spec = _BY_BITS[bits]
        else:
            spec = _BY_CURVE_NAME.get(getattr(curve, "name", None))
            if spec is None:
                raise SSHException(f"unsupported ECDSA curve {curve!r}")
        private = ec.generate_private_key(spec.curve_class())
        return cls(vals=(private, private.public_key()))
