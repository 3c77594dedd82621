"""``PKey``: the interface every SSH key type shares, plus certificate public blobs.

All key math, parsing of private key files and serialization is done by ``cryptography``;
this module only speaks the SSH wire encodings around it and turns every failure into an
``SSHException`` subclass.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections import namedtuple
from pathlib import Path
from typing import IO, Any, List, Optional, Tuple, Type, Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization

from paramiko.common import o600
from paramiko.message import Message
from paramiko.ssh_exception import PasswordRequiredException, SSHException

__all__ = [
    "CERT_SUFFIX",
    "OPENSSH",
    "PEM",
    "FileFormat",
    "PKey",
    "PublicBlob",
    "UnknownKeyType",
    "load_private_key_object",
]

# On-disk private key encodings accepted by write_private_key(file_format=...).
FileFormat = namedtuple("FileFormat", ["name"])
PEM = FileFormat("PEM")  # PKCS#1 (RSA) / SEC1 (ECDSA); Ed25519 has no PEM form in OpenSSH
OPENSSH = FileFormat("OPENSSH")  # "-----BEGIN OPENSSH PRIVATE KEY-----" (PROTOCOL.key)

CERT_SUFFIX = "-cert-v01@openssh.com"

Password = Union[str, bytes, None]


class UnknownKeyType(SSHException):
    """A key type this library cannot handle (e.g. ssh-dss, sk-*, unknown names).

    Upstream derives it from ``Exception``; deriving from ``SSHException`` keeps that true
    while letting callers catch every key-loading problem with one class.
    """

    def __init__(self, key_type: Optional[str] = None, key_bytes: Optional[bytes] = None) -> None:
        super().__init__(key_type, key_bytes)
        self.key_type = key_type
        self.key_bytes = key_bytes

    def __str__(self) -> str:
        size = len(self.key_bytes) if self.key_bytes is not None else 0
        return f"UnknownKeyType(type={self.key_type!r}, bytes=<{size}>)"


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _password_bytes(password: Password) -> Optional[bytes]:
    # An empty passphrase means "none": ssh-keygen -N "" writes unencrypted keys.
    if password is None or len(password) == 0:
        return None
    if isinstance(password, str):
        return password.encode("utf-8")
    return bytes(password)


def load_private_key_object(data: Union[bytes, str], password: Password = None) -> Any:
    """Parse an OpenSSH-format or PEM (PKCS#1, SEC1, PKCS#8) private key with cryptography.

    Returns the cryptography private key object. A passphrase given for an unencrypted key
    is ignored (SSHClient passes its password as passphrase for every key it tries).
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
        loader = serialization.load_ssh_private_key
    elif b"-----BEGIN " in data and b"PRIVATE KEY-----" in data:
        loader = serialization.load_pem_private_key
    else:
        raise SSHException("not a private key file (no PEM or OpenSSH private key armour)")
    pw = _password_bytes(password)
    try:
        return loader(data, None)
    except TypeError as e:
        # cryptography signals "encrypted, no password given" with TypeError.
        if "password" not in str(e).lower():
            raise SSHException(f"invalid private key: {e}") from None
        if pw is None:
            raise PasswordRequiredException("private key file is encrypted") from None
    except UnsupportedAlgorithm as e:
        raise SSHException(f"unsupported private key: {e}") from None
    except (ValueError, IndexError, OverflowError) as e:
        raise SSHException(f"invalid private key: {e}") from None
    try:
        return loader(data, pw)
    except ValueError:
        raise SSHException(
            "could not decrypt private key: wrong passphrase (or the key file is corrupt)"
        ) from None
    except UnsupportedAlgorithm as e:
        raise SSHException(f"unsupported private key: {e}") from None
    except (TypeError, IndexError, OverflowError) as e:
        raise SSHException(f"invalid private key: {e}") from None


def _key_classes() -> List[Type[PKey]]:
    # Imported late: the subclasses import this module.
    from paramiko.ecdsakey import ECDSAKey
    from paramiko.ed25519key import Ed25519Key
    from paramiko.rsakey import RSAKey

    return [RSAKey, Ed25519Key, ECDSAKey]


def _key_from_object(obj: Any, want: Optional[Type[PKey]] = None) -> PKey:
    for klass in _key_classes():
        if klass._accepts(obj):
            if want is not None and want is not PKey and not issubclass(klass, want):
                raise SSHException(
                    f"private key is {klass._ALGORITHM}, not {want._ALGORITHM}"
                )
            return klass._from_key_object(obj)
    raise UnknownKeyType(key_type=type(obj).__name__)


def _read_text_or_bytes(file_obj: IO) -> bytes:
    data = file_obj.read()
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    return bytes(data)


class PublicBlob:
    """An OpenSSH public key or certificate as type name plus raw blob (plus comment)."""

    def __init__(self, type_: str, blob: bytes, comment: Optional[str] = None) -> None:
        self.key_type = type_
        self.key_blob = bytes(blob)
        self.comment = comment

    @classmethod
    def from_file(cls, filename: Union[str, os.PathLike]) -> PublicBlob:
        with open(filename, encoding="utf-8", errors="replace") as f:
            return cls.from_string(f.read())

    @classmethod
    def from_string(cls, string: Union[str, bytes]) -> PublicBlob:
        """Parse one ``type base64 [comment]`` line (a ``.pub`` or ``-cert.pub`` file)."""
        if isinstance(string, bytes):
            string = string.decode("utf-8", "replace")
        fields = string.strip().split(None, 2)
        if len(fields) < 2:
            raise SSHException("not a public key line: need 'type base64 [comment]'")
        key_type = fields[0]
        try:
            blob = base64.b64decode(fields[1], validate=True)
        except (binascii.Error, ValueError):
            raise SSHException("public key blob is not valid base64") from None
        inner = Message(blob).get_text()
        if inner != key_type:
            raise SSHException(f"public key line says {key_type!r} but its blob holds {inner!r}")
        comment = fields[2].strip() if len(fields) == 3 else None
        return cls(type_=key_type, blob=blob, comment=comment)

    @classmethod
    def from_message(cls, message: Message) -> PublicBlob:
        """The whole message is the blob; its first string is the type."""
        type_ = message.get_text()
        return cls(type_=type_, blob=message.asbytes())

    def __str__(self) -> str:
        what = "certificate" if self.key_type.endswith(CERT_SUFFIX) else "public key"
        return f"{self.key_type} {what}"

    def __repr__(self) -> str:
        return f"PublicBlob({self.key_type!r}, <{len(self.key_blob)} bytes>, {self.comment!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicBlob):
            return NotImplemented
        return self.key_type == other.key_type and self.key_blob == other.key_blob

    def __hash__(self) -> int:
        return hash((self.key_type, self.key_blob))


class PKey:
    """Base class of ``RSAKey``, ``ECDSAKey`` and ``Ed25519Key``.

    Subclasses hold a cryptography key object (``_private`` when they can sign, ``_public``
    always) and implement the small ``_`` hooks below; everything else lives here and works
    from ``asbytes()``, so agent-backed keys can reuse it by overriding ``asbytes``/``get_name``.
    """

    name: str = ""
    _ALGORITHM: str = ""
    _private: Any = None
    _public: Any = None
    public_blob: Optional[PublicBlob] = None

    def __init__(self, msg: Optional[Message] = None, data: Optional[bytes] = None) -> None:
        # The abstract base holds no key; subclasses parse msg/data.
        pass

    # -- construction ---------------------------------------------------------------------
    @staticmethod
    def from_path(
        path: Union[str, os.PathLike],
        passphrase: Password = None,
        password: Password = None,
    ) -> PKey:
        """Load a private key of any supported type; ``-cert.pub`` beside it is loaded too.

        ``path`` may also name the certificate itself (``id_x-cert.pub``). ``password`` is
        accepted as an alias of ``passphrase``.
        """
        secret = passphrase if passphrase is not None else password
        p = Path(path).expanduser()
        suffix = "-cert.pub"
        if p.name.endswith(suffix):
            cert_path = p
            p = p.with_name(p.name[: -len(suffix)])
        else:
            cert_path = p.with_name(p.name + suffix)
        key = _key_from_object(load_private_key_object(p.read_bytes(), secret))
        if cert_path.is_file():
            key.load_certificate(str(cert_path))
        return key

    @staticmethod
    def from_type_string(key_type: str, key_bytes: bytes, password: Password = None) -> PKey:
        """A public key (or certificate) from its type name and wire blob."""
        for klass in _key_classes():
            if key_type in klass.identifiers():
                return klass(data=key_bytes)
        raise UnknownKeyType(key_type=key_type, key_bytes=key_bytes)

    @classmethod
    def from_private_key(cls, file_obj: IO, password: Password = None) -> PKey:
        if cls is PKey:
            return _key_from_object(load_private_key_object(_read_text_or_bytes(file_obj),
                                                            password))
        return cls(file_obj=file_obj, password=password)

    @classmethod
    def from_private_key_file(cls, filename: Union[str, os.PathLike],
                              password: Password = None) -> PKey:
        if cls is PKey:
            return PKey.from_path(filename, passphrase=password)
        return cls(filename=filename, password=password)

    @classmethod
    def identifiers(cls) -> List[str]:
        """Every type name (key, certificate, signature) this class answers to."""
        return []

    @classmethod
    def _key_types(cls) -> Tuple[str, ...]:
        """Plain key type names whose blobs this class parses."""
        return ()

    @classmethod
    def _accepts(cls, obj: Any) -> bool:
        return False

    @classmethod
    def _from_key_object(cls, obj: Any) -> PKey:
        key = cls.__new__(cls)
        key._set_key(obj)
        return key

    def _load(self, msg: Optional[Message], data: Optional[bytes],
              filename: Optional[Union[str, os.PathLike]], password: Password,
              file_obj: Optional[IO], key_obj: Any = None) -> None:
        """Shared constructor body: first of file_obj, filename, key object, msg/data."""
        self.public_blob = None
        if file_obj is not None:
            obj = load_private_key_object(_read_text_or_bytes(file_obj), password)
        elif filename is not None:
            with open(filename, "rb") as f:
                obj = load_private_key_object(f.read(), password)
        elif key_obj is not None:
            obj = key_obj
        else:
            if msg is None and data is not None:
                msg = Message(bytes(data))
            if msg is None:
                raise SSHException("key object may not be empty")
            self._set_key(self._parse_public(msg))
            return
        if not self._accepts(obj):
            klass = next((k for k in _key_classes() if k._accepts(obj)), None)
            got = klass._ALGORITHM if klass else type(obj).__name__
            raise SSHException(f"key is {got}, not {self._ALGORITHM}")
        self._set_key(obj)

    def _set_key(self, obj: Any) -> None:
        if hasattr(obj, "public_key"):
            self._private = obj
            self._public = obj.public_key()
        else:
            self._private = None
            self._public = obj

    def _parse_public(self, msg: Message) -> Any:
        """Read a key or certificate blob from ``msg``; returns the public key object."""
        start = msg.get_so_far()
        key_type = msg.get_text()
        is_cert = False
        if key_type not in self._key_types():
            base = key_type[: -len(CERT_SUFFIX)] if key_type.endswith(CERT_SUFFIX) else None
            if base not in self._key_types():
                raise SSHException(f"not a {self._ALGORITHM} key blob (type {key_type!r})")
            is_cert = True
            key_type = base
            msg.get_string()  # certificate nonce
        public = self._read_public_fields(key_type, msg)
        if is_cert:
            self.public_blob = PublicBlob(key_type + CERT_SUFFIX, msg.asbytes()[len(start):])
        elif msg.get_remainder():
            raise SSHException(f"trailing bytes after {key_type} key blob")
        return public

    # -- hooks for subclasses -------------------------------------------------------------
    def _read_public_fields(self, key_type: str, msg: Message) -> Any:
        raise NotImplementedError

    def _write_public_fields(self, msg: Message) -> None:
        raise NotImplementedError

    def _sign(self, data: bytes, algorithm: Optional[str]) -> Tuple[str, bytes]:
        raise NotImplementedError

    def _verify(self, sig_name: str, sig: bytes, data: bytes) -> bool:
        raise NotImplementedError

    def _pem_format(self) -> serialization.PrivateFormat:
        return serialization.PrivateFormat.TraditionalOpenSSL

    # -- public API -----------------------------------------------------------------------
    def get_name(self) -> str:
        """The key type name, e.g. ``ssh-rsa``, ``ssh-ed25519``, ``ecdsa-sha2-nistp256``."""
        return self.name

    @property
    def algorithm_name(self) -> str:
        return self._ALGORITHM

    def get_bits(self) -> int:
        return 0

    def can_sign(self) -> bool:
        return self._private is not None

    def asbytes(self) -> bytes:
        """The public key blob (RFC 4253 6.6)."""
        m = Message()
        m.add_string(self.get_name())
        self._write_public_fields(m)
        return m.asbytes()

    def __bytes__(self) -> bytes:
        return self.asbytes()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PKey):
            return NotImplemented
        return self.asbytes() == other.asbytes()

    def __hash__(self) -> int:
        return hash(self.asbytes())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(alg={self.algorithm_name}, bits={self.get_bits()}, "
                f"fp={self.fingerprint})")

    def get_base64(self) -> str:
        return base64.b64encode(self.asbytes()).decode("ascii")

    def get_fingerprint(self) -> bytes:
        """MD5 of the public blob (the legacy ``ssh-keygen -E md5`` fingerprint), raw bytes."""
        return _digest(hashes.MD5(), self.asbytes())

    @property
    def fingerprint(self) -> str:
        """``SHA256:<unpadded base64>``, as ``ssh-keygen -l`` prints it."""
        digest = _digest(hashes.SHA256(), self.asbytes())
        return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")

    def sign_ssh_data(self, data: bytes, algorithm: Optional[str] = None) -> Message:
        """Sign ``data``; returns a Message holding ``string alg, string signature``."""
        if self._private is None:
            raise SSHException("public-only key cannot sign")
        if algorithm is not None and algorithm.endswith(CERT_SUFFIX):
            # Certificate algorithms sign with the underlying key's signature format.
            algorithm = algorithm[: -len(CERT_SUFFIX)]
        name, sig = self._sign(bytes(data), algorithm)
        m = Message()
        m.add_string(name)
        m.add_string(sig)
        return m

    def verify_ssh_sig(self, data: bytes, msg: Union[Message, bytes]) -> bool:
        """True if ``msg`` (``string alg, string signature``) is a valid signature of data."""
        if not isinstance(msg, Message):
            msg = Message(bytes(msg))
        try:
            sig_name = msg.get_text()
            sig = msg.get_binary()
        except SSHException:
            return False
        return self._verify(sig_name, sig, bytes(data))

    def _private_bytes(self, password: Password, file_format: Any) -> bytes:
        if self._private is None:
            raise SSHException("no private key to write (public-only key)")
        fmt_name = getattr(file_format, "name", file_format)
        if fmt_name == OPENSSH.name:
            fmt = serialization.PrivateFormat.OpenSSH
        elif fmt_name == PEM.name:
            fmt = self._pem_format()
        else:
            raise SSHException(f"unknown private key file format {file_format!r}")
        pw = _password_bytes(password)
        enc: serialization.KeySerializationEncryption
        enc = serialization.BestAvailableEncryption(pw) if pw else serialization.NoEncryption()
        try:
            return self._private.private_bytes(serialization.Encoding.PEM, fmt, enc)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise SSHException(f"cannot serialize private key: {e}") from None

    def write_private_key(self, file_obj: IO, password: Password = None,
                          file_format: FileFormat = PEM) -> None:
        """Write the private key to an open file (text or binary)."""
        data = self._private_bytes(password, file_format)
        try:
            file_obj.write(data.decode("ascii"))
        except TypeError:  # a binary file object
            file_obj.write(data)

    def write_private_key_file(self, filename: Union[str, os.PathLike],
                               password: Password = None,
                               file_format: FileFormat = PEM) -> None:
        """Write the private key to ``filename`` with mode 0600 (also if it existed)."""
        data = self._private_bytes(password, file_format)
        flags = os.O_WRONLY | os.O_TRUNC | os.O_CREAT
        # Create with 0600 and chmod too: an existing file keeps its old mode on O_CREAT.
        with os.fdopen(os.open(filename, flags, o600), "w") as f:
            os.chmod(filename, o600)
            f.write(data.decode("ascii"))

    def load_certificate(self, value: Union[str, os.PathLike, Message, PublicBlob]) -> None:
        """Attach an OpenSSH certificate for this key (path, ``.pub`` line, Message or blob).

        Raises ``SSHException`` if it is not a certificate of this very public key.
        """
        if isinstance(value, PublicBlob):
            blob = value
        elif isinstance(value, Message):
            blob = PublicBlob.from_message(value)
        elif isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
            blob = PublicBlob.from_file(value)
        else:
            blob = PublicBlob.from_string(value)
        expected_type = self.get_name() + CERT_SUFFIX
        if blob.key_type != expected_type:
            raise SSHException(f"certificate type {blob.key_type!r} does not match key type "
                               f"{self.get_name()!r}")
        m = Message(blob.key_blob)
        m.get_text()
        m.get_string()  # nonce
        # The public key fields follow the nonce; they are self-delimiting, so compare prefixes.
        fields = self.asbytes()[4 + len(self.get_name().encode("utf-8")):]
        if m.get_bytes(min(len(fields), len(m.get_remainder()))) != fields:
            raise SSHException("certificate is for a different public key")
        self.public_blob = blob
