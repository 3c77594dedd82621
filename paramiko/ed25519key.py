"""``Ed25519Key``: Ed25519 keys (RFC 8709), stored on disk in OpenSSH's own format."""

from __future__ import annotations

import os
from typing import IO, Any, Callable, List, Optional, Tuple, Union

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from paramiko.message import Message
from paramiko.pkey import CERT_SUFFIX, Password, PKey
from paramiko.ssh_exception import SSHException


class Ed25519Key(PKey):
    """An Ed25519 public key, or key pair when loaded from a private key."""

    name = "ssh-ed25519"
    _ALGORITHM = "ED25519"

    def __init__(
        self,
        msg: Optional[Message] = None,
        data: Optional[bytes] = None,
        filename: Optional[Union[str, os.PathLike]] = None,
        password: Password = None,
        file_obj: Optional[IO] = None,
    ) -> None:
        self._load(msg, data, filename, password, file_obj)

    @classmethod
    def identifiers(cls) -> List[str]:
        return [cls.name, cls.name + CERT_SUFFIX]

    @classmethod
    def _key_types(cls) -> Tuple[str, ...]:
        return (cls.name,)

    @classmethod
    def _accepts(cls, obj: Any) -> bool:
        return isinstance(obj, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey))

    @property
    def private_key(self) -> Optional[ed25519.Ed25519PrivateKey]:
        return self._private

    def get_bits(self) -> int:
        return 256

    def _pem_format(self) -> serialization.PrivateFormat:
        # OpenSSH has no PEM encoding for Ed25519 (ssh-keygen -m PEM writes its own format
        # too), and it is the one every OpenSSH version reads.
        return serialization.PrivateFormat.OpenSSH

    def _read_public_fields(self, key_type: str, msg: Message) -> Any:
        raw = msg.get_binary()
        if len(raw) != 32:
            raise SSHException(f"invalid Ed25519 public key length {len(raw)}")
        try:
            return ed25519.Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise SSHException(f"invalid Ed25519 public key: {exc}") from None

    def _write_public_fields(self, msg: Message) -> None:
        msg.add_string(self._public.public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw))

    def _sign(self, data: bytes, algorithm: Optional[str]) -> Tuple[str, bytes]:
        return self.name, self._private.sign(data)

    def _verify(self, sig_name: str, sig: bytes, data: bytes) -> bool:
        if sig_name != self.name or len(sig) != 64:
            return False
        try:
            self._public.verify(sig, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def generate(cls, progress_func: Optional[Callable] = None) -> Ed25519Key:
        """A new key pair (an extension: upstream Paramiko has no Ed25519 generate)."""
        return cls._from_key_object(ed25519.Ed25519PrivateKey.generate())
