"""OpenSSH certificates (PROTOCOL.certkeys): parsing, and the checks a client or server makes.

Parsing and the CA signature check are done by ``cryptography``
(``load_ssh_public_identity`` / ``SSHCertificate``); this module adds the SSH policy on top:

* :func:`verify_host_certificate` -- what ``ssh`` checks before trusting a host certificate
  through an ``@cert-authority`` line: a host certificate, signed by one of the given CA keys
  with an allowed signature algorithm, valid now, naming the host among its principals (an
  empty list means any host; the lower-cased host name must equal a principal exactly, as
  with OpenSSH 9.2; ``*``/``?`` patterns in principals only on request), no critical
  options.
* :func:`check_user_certificate` -- what ``sshd`` checks for a user certificate signed by a
  ``TrustedUserCAKeys`` CA: a user certificate, trusted CA, valid now, the user name listed
  exactly among the principals (an empty list is refused), only understood critical options
  (``source-address`` is enforced when the client address is given).

Every problem is raised as :class:`CertificateRejected` (an ``SSHException``);
host certificate problems as its subclass :class:`HostCertificateRejected`, which is also a
``BadHostKeyException``. ``reason`` holds the human-readable cause and ``code`` a short
stable token (see the ``REASON_*`` constants).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import SSHCertificateType

from paramiko.message import Message
from paramiko.pkey import CERT_SUFFIX, PKey, PublicBlob, UnknownKeyType, _key_from_object
from paramiko.ssh_exception import BadHostKeyException, SSHException

__all__ = [
    "CERT_KEY_TYPES",
    "DEFAULT_CA_SIGNATURE_ALGORITHMS",
    "KNOWN_USER_CRITICAL_OPTIONS",
    "CertificateRejected",
    "HostCertificateRejected",
    "SSHCert",
    "check_user_certificate",
    "is_certificate_type",
    "parse_certificate",
    "principal_matches",
    "verify_host_certificate",
]

# Certificate blob types we understand, mapped to the number of key-specific fields that
# follow the nonce (RSA: e, n; ECDSA: curve, point; Ed25519: pk).
_FIELDS_AFTER_NONCE: Dict[str, int] = {
    "ssh-ed25519" + CERT_SUFFIX: 1,
    "ecdsa-sha2-nistp256" + CERT_SUFFIX: 2,
    "ecdsa-sha2-nistp384" + CERT_SUFFIX: 2,
    "ecdsa-sha2-nistp521" + CERT_SUFFIX: 2,
    "ssh-rsa" + CERT_SUFFIX: 2,
}
CERT_KEY_TYPES = tuple(_FIELDS_AFTER_NONCE)

# OpenSSH's default CASignatureAlgorithms (minus the FIDO and PQ types we cannot verify):
# certificates signed with SHA-1 RSA ("ssh-rsa") are refused unless asked for.
DEFAULT_CA_SIGNATURE_ALGORITHMS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)

# Critical options sshd understands in user certificates.
KNOWN_USER_CRITICAL_OPTIONS = ("force-command", "source-address", "verify-required")

REASON_MALFORMED = "malformed"
REASON_BAD_SIGNATURE = "bad-signature"
REASON_WRONG_TYPE = "wrong-type"
REASON_UNKNOWN_CA = "unknown-ca"
REASON_CA_ALGORITHM = "ca-algorithm"
REASON_NOT_YET_VALID = "not-yet-valid"
REASON_EXPIRED = "expired"
REASON_PRINCIPAL = "principal"
REASON_CRITICAL_OPTION = "critical-option"
REASON_SOURCE_ADDRESS = "source-address"

CertInput = Union[bytes, bytearray, memoryview, str, PKey, PublicBlob]


class CertificateRejected(SSHException):
    """A certificate failed parsing or a policy check; ``reason`` says why, ``code`` what."""

    def __init__(self, subject: str, reason: str, code: str,
                 cert: Optional[SSHCert] = None) -> None:
        SSHException.__init__(self, subject, reason, code)
        self.subject = subject
        self.reason = reason
        self.code = code
        self.cert = cert

    def __str__(self) -> str:
        return f"certificate for {self.subject!r} rejected: {self.reason}"


class HostCertificateRejected(CertificateRejected, BadHostKeyException):
    """A host certificate is not acceptable for ``hostname``.

    ``key`` is the certified host key (None if the blob did not even parse) and
    ``expected_key`` the first CA key that was tried (None when none was given).
    """

    def __init__(self, hostname: str, reason: str, code: str, cert: Optional[SSHCert] = None,
                 ca_keys: Sequence[PKey] = ()) -> None:
        CertificateRejected.__init__(self, hostname, reason, code, cert)
        self.args = (hostname, reason, code)
        self.hostname = hostname
        self.key = cert.key if cert is not None else None
        self.expected_key = ca_keys[0] if ca_keys else None
        self.phase = "hostkey"

    def __str__(self) -> str:
        return f"host certificate for server {self.hostname!r} rejected: {self.reason}"


def is_certificate_type(name: str) -> bool:
    """True for a certificate key or algorithm name (``...-cert-v01@openssh.com``)."""
    return name.endswith(CERT_SUFFIX)


class SSHCert:
    """One parsed (not yet trusted) OpenSSH certificate.

    Attributes: ``blob`` (wire bytes), ``cert_key_type`` (e.g.
    ``ssh-ed25519-cert-v01@openssh.com``), ``key`` (the certified public key as a ``PKey``
    whose ``public_blob`` is this certificate), ``cert_type`` (``"user"`` or ``"host"``),
    ``key_id``, ``serial``, ``principals`` (list of str; empty = any), ``valid_after``,
    ``valid_before`` (seconds since the epoch; ``2**64-1`` = forever), ``ca_key`` (``PKey``),
    ``critical_options`` and ``extensions`` (dict str -> bytes: the option's value with the
    inner string unwrapped, ``b""`` for flags), ``signature_algorithm`` (how the CA signed,
    e.g. ``rsa-sha2-512``), ``nonce``.
    """

    def __init__(self, blob: bytes) -> None:
        blob = bytes(blob)
        self.blob = blob
        try:
            key_type = Message(blob).get_string().decode("ascii")
        except (SSHException, UnicodeDecodeError):
            raise SSHException("certificate blob is truncated or has no valid type") from None
        if key_type not in _FIELDS_AFTER_NONCE:
            if is_certificate_type(key_type):
                raise UnknownKeyType(key_type=key_type, key_bytes=blob)
            raise SSHException(f"not a certificate: key type {key_type!r}")
        self.cert_key_type = key_type
        line = key_type.encode("ascii") + b" " + base64.b64encode(blob)
        try:
            cert = serialization.load_ssh_public_identity(line)
        except UnsupportedAlgorithm as e:
            raise UnknownKeyType(key_type=key_type, key_bytes=blob) from e
        except Exception as e:  # noqa: BLE001 - ValueError, NotImplementedError... from parsing
            raise SSHException(f"malformed {key_type} certificate: {e}") from None
        if not isinstance(cert, serialization.SSHCertificate):
            raise SSHException(f"not a certificate: {key_type}")
        self._cert = cert
        try:
            # Some fields (e.g. the CA key) are only decoded when first asked for.
            public, ca_public = cert.public_key(), cert.signature_key()
            self.cert_type = "host" if cert.type == SSHCertificateType.HOST else "user"
            self.key_id = cert.key_id.decode("utf-8", "replace")
            self.serial = int(cert.serial)
            self.principals: List[str] = [p.decode("utf-8", "replace")
                                          for p in cert.valid_principals]
            self.valid_after = int(cert.valid_after)
            self.valid_before = int(cert.valid_before)
            self.critical_options: Dict[str, bytes] = {
                k.decode("utf-8", "replace"): bytes(v)
                for k, v in cert.critical_options.items()}
            self.extensions: Dict[str, bytes] = {
                k.decode("utf-8", "replace"): bytes(v) for k, v in cert.extensions.items()}
            self.nonce = bytes(cert.nonce)
        except UnsupportedAlgorithm as e:
            raise SSHException(f"{key_type} certificate: unsupported CA key: {e}") from None
        except Exception as e:  # noqa: BLE001 - lazily decoded fields fail only here
            raise SSHException(f"malformed {key_type} certificate: {e}") from None
        self.key = _key_from_object(public)
        self.key.public_blob = PublicBlob(key_type, blob)
        self.ca_key = _key_from_object(ca_public)
        self.signature_algorithm = self._read_signature_algorithm(key_type)

    def _read_signature_algorithm(self, key_type: str) -> str:
        # cryptography does not expose which algorithm the CA used; walk the wire fields.
        m = Message(self.blob)
        try:
            m.get_string()  # type
            m.get_string()  # nonce
            for _ in range(_FIELDS_AFTER_NONCE[key_type]):
                m.get_string()
            m.get_int64()  # serial
            m.get_int()  # type
            for _ in range(2):  # key id, principals
                m.get_string()
            m.get_int64()
            m.get_int64()
            for _ in range(4):  # critical options, extensions, reserved, signature key
                m.get_string()
            return Message(m.get_string()).get_string().decode("ascii")
        except (SSHException, UnicodeDecodeError):
            raise SSHException(f"malformed {key_type} certificate signature") from None

    def signature_is_valid(self) -> bool:
        """Whether the CA signature over the certificate verifies under ``ca_key``."""
        try:
            self._cert.verify_cert_signature()
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            return False
        return True

    def validity_problem(self, now: Optional[float] = None) -> Optional[str]:
        """None if valid at ``now`` (default: the current time), else the reason."""
        t = int(time.time() if now is None else now)
        if t < self.valid_after:
            return f"certificate not yet valid (valid from {_when(self.valid_after)})"
        if t >= self.valid_before:
            return f"certificate expired (valid until {_when(self.valid_before)})"
        return None

    def __repr__(self) -> str:
        return (f"SSHCert({self.cert_key_type}, {self.cert_type}, id={self.key_id!r}, "
                f"serial={self.serial}, principals={self.principals!r})")


def _when(t: int) -> str:
    if t >= (1 << 64) - 1:
        return "forever"
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    except (OverflowError, OSError, ValueError):
        return str(t)


def _cert_blob(value: CertInput) -> bytes:
    if isinstance(value, PKey):
        if value.public_blob is None:
            raise SSHException(f"{value.get_name()} key has no certificate loaded")
        return bytes(value.public_blob.key_blob)
    if isinstance(value, PublicBlob):
        return bytes(value.key_blob)
    if isinstance(value, str):
        return bytes(PublicBlob.from_string(value).key_blob)
    return bytes(value)


def parse_certificate(blob: CertInput) -> SSHCert:
    """Parse an OpenSSH certificate; nothing is trusted or checked beyond its structure.

    ``blob`` is the wire blob, a ``-cert.pub`` line (str), a ``PublicBlob``, or a ``PKey``
    with a certificate loaded. Raises ``SSHException`` (``UnknownKeyType`` for certificate
    types this library cannot handle, e.g. ``ssh-dss`` or FIDO) if it is not one.
    """
    return SSHCert(_cert_blob(blob))


_PATTERN_CACHE: Dict[str, re.Pattern[str]] = {}


def principal_matches(name: str, pattern: str) -> bool:
    """OpenSSH-style pattern match: ``*`` any run, ``?`` one character, rest literal."""
    rx = _PATTERN_CACHE.get(pattern)
    if rx is None:
        parts = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern]
        rx = re.compile("".join(parts), re.DOTALL)
        if len(_PATTERN_CACHE) < 1024:
            _PATTERN_CACHE[pattern] = rx
    return rx.fullmatch(name) is not None


def _host_name(hostname: str) -> str:
    # Certificates name hosts, never ports: accept known_hosts' "[host]:port" form too.
    if hostname.startswith("[") and "]" in hostname:
        hostname = hostname[1:hostname.index("]")]
    return hostname.lower()


def _ca_blobs(ca_keys: Iterable[Union[PKey, bytes]]) -> List[bytes]:
    out = []
    for ca in ca_keys:
        out.append(ca.asbytes() if isinstance(ca, PKey) else bytes(ca))
    return out


def _checked(cert_blob: CertInput, want: str, cas: List[Union[PKey, bytes]],
             algorithms: Iterable[str], now: Optional[float],
             reject: Callable[..., CertificateRejected]) -> SSHCert:
    """Parse, CA signature, type, trusted CA, CA algorithm, validity: shared by both sides."""
    try:
        cert = parse_certificate(cert_blob)
    except SSHException as e:
        raise reject(f"cannot parse certificate: {e}", REASON_MALFORMED) from None
    if not cert.signature_is_valid():
        raise reject("CA signature on the certificate does not verify", REASON_BAD_SIGNATURE,
                     cert)
    if cert.cert_type != want:
        raise reject(f"not a {want} certificate (it is a {cert.cert_type} certificate)",
                     REASON_WRONG_TYPE, cert)
    if cert.ca_key.asbytes() not in _ca_blobs(cas):
        raise reject(f"signed by an unknown CA ({cert.ca_key.get_name()} "
                     f"{cert.ca_key.fingerprint})", REASON_UNKNOWN_CA, cert)
    if cert.signature_algorithm not in tuple(algorithms):
        raise reject(f"CA signature algorithm {cert.signature_algorithm} is not allowed",
                     REASON_CA_ALGORITHM, cert)
    problem = cert.validity_problem(now)
    if problem is not None:
        code = REASON_NOT_YET_VALID if "not yet" in problem else REASON_EXPIRED
        raise reject(problem, code, cert)
    return cert


def verify_host_certificate(cert_blob: CertInput, hostname: str,
                            ca_keys: Sequence[Union[PKey, bytes]],
                            now: Optional[float] = None, *,
                            ca_signature_algorithms: Iterable[str] =
                            DEFAULT_CA_SIGNATURE_ALGORITHMS,
                            wildcard_principals: bool = False) -> PKey:
    """Check a server's host certificate as ``ssh`` does; return the certified host key.

    ``cert_blob``: the certificate (wire blob, ``PublicBlob``, or the ``PKey`` from
    ``Transport.get_remote_server_key()``). ``hostname``: the name the user connected to (or
    the host key alias), without port; compared in lower case. ``ca_keys``: the CA keys
    trusted for this host (``@cert-authority`` lines). ``now``: seconds since the epoch.
    The host name must equal one of the principals (case-sensitive, as ``ssh`` 9.2 does);
    ``wildcard_principals=True`` also lets ``*``/``?`` patterns in principals match.

    Raises :class:`HostCertificateRejected` (a ``BadHostKeyException``) naming the host and
    the reason: malformed, bad CA signature, not a host certificate, unknown CA, disallowed
    CA signature algorithm, not yet valid, expired, host not a listed principal, or critical
    options present.
    """
    cas = list(ca_keys)
    ca_pkeys = [c for c in cas if isinstance(c, PKey)]

    def reject(reason: str, code: str, cert: Optional[SSHCert] = None) -> CertificateRejected:
        return HostCertificateRejected(hostname, reason, code, cert, ca_pkeys)

    cert = _checked(cert_blob, "host", cas, ca_signature_algorithms, now, reject)
    name = _host_name(hostname)
    if wildcard_principals:
        listed = any(principal_matches(name, p) for p in cert.principals)
    else:
        listed = name in cert.principals
    if cert.principals and not listed:
        raise reject(f"{name!r} is not a listed principal ({', '.join(cert.principals)})",
                     REASON_PRINCIPAL, cert)
    if cert.critical_options:
        options = ", ".join(sorted(cert.critical_options))
        raise reject(f"host certificate has critical options ({options})",
                     REASON_CRITICAL_OPTION, cert)
    return cert.key


def _source_allowed(spec: bytes, address: str) -> bool:
    try:
        addr = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for item in spec.decode("ascii", "replace").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            return False  # like sshd: a malformed list refuses the certificate
        if addr.version == net.version and addr in net:
            return True
    return False


def check_user_certificate(cert_blob: CertInput, username: str,
                           ca_keys: Sequence[Union[PKey, bytes]],
                           now: Optional[float] = None, *,
                           client_address: Optional[str] = None,
                           ca_signature_algorithms: Iterable[str] =
                           DEFAULT_CA_SIGNATURE_ALGORITHMS) -> SSHCert:
    """Check a client's user certificate as ``sshd`` does for ``TrustedUserCAKeys``.

    For ``ServerInterface.check_auth_publickey(username, key)``: pass ``key`` itself (its
    ``public_blob`` is the certificate) or the blob, the trusted CA keys and, to enforce a
    ``source-address`` option, the client's IP address. Returns the parsed certificate so
    the server can apply ``force-command`` and the ``permit-*`` extensions. Raises
    :class:`CertificateRejected` with the reason: malformed, bad CA signature, not a user
    certificate, unknown CA, disallowed CA algorithm, not yet valid, expired, user not a
    listed principal (an empty principal list is refused, as by sshd), an unknown critical
    option, or a source address outside the allowed list (or no address given to check).
    """
    def reject(reason: str, code: str, cert: Optional[SSHCert] = None) -> CertificateRejected:
        return CertificateRejected(username, reason, code, cert)

    cert = _checked(cert_blob, "user", list(ca_keys), ca_signature_algorithms, now, reject)
    if not cert.principals:
        raise reject("certificate lists no principals", REASON_PRINCIPAL, cert)
    if username not in cert.principals:
        raise reject(f"user {username!r} is not a listed principal "
                     f"({', '.join(cert.principals)})", REASON_PRINCIPAL, cert)
    for name, value in sorted(cert.critical_options.items()):
        if name not in KNOWN_USER_CRITICAL_OPTIONS:
            raise reject(f"unknown critical option {name!r}", REASON_CRITICAL_OPTION, cert)
        if name == "verify-required":
            # Only FIDO keys can assert user verification; none of ours are.
            raise reject("critical option 'verify-required' needs a FIDO security key",
                         REASON_CRITICAL_OPTION, cert)
        if name == "source-address":
            allowed = value.decode("ascii", "replace")
            if client_address is None:
                raise reject(f"certificate is restricted to source-address {allowed} but no "
                             "client address was given to check", REASON_SOURCE_ADDRESS, cert)
            if not _source_allowed(value, client_address):
                raise reject(f"client address {client_address} not allowed by "
                             f"source-address {allowed}", REASON_SOURCE_ADDRESS, cert)
    return cert
