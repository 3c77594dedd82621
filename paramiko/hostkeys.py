"""``HostKeys``: read, query and write OpenSSH ``known_hosts`` files.

Line format (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT")::

    [@cert-authority|@revoked] patterns keytype base64-blob [comment]

Matching follows OpenSSH rather than upstream Paramiko:

* ``patterns`` is a comma-separated list of globs (``*`` and ``?``, compared without
  regard to case). A ``!pattern`` that matches rejects the whole line even when another
  pattern matches. Nothing else is special, so ``[host]:2222`` only matches that port.
* A patterns field that starts with ``|`` is one hashed name,
  ``|1|base64(salt)|base64(HMAC-SHA1(salt, name))``; it never combines with other patterns.
* ``@cert-authority`` lines hold CA keys (see :meth:`HostKeys.cert_authorities`); they are
  not host keys. ``@revoked`` keys are refused for every host.

A line that cannot be used (garbage, truncated base64, a key type this library does not
support, a certificate) is logged on the ``paramiko.hostkeys`` logger and skipped; loading
never stops half-way. Such lines are kept verbatim and written back by :meth:`HostKeys.save`,
so saving does not destroy what another SSH implementation could still read.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from collections.abc import Mapping, MutableMapping
from typing import Iterable, Iterator, List, Optional, Set, Tuple, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from paramiko._core.hostkey import HOSTKEY_ALGORITHMS, key_from_blob
from paramiko.pkey import CERT_SUFFIX, PKey, UnknownKeyType
from paramiko.ssh_exception import SSHException
from paramiko.util import get_logger

__all__ = [
    "MARKER_CERT_AUTHORITY",
    "MARKER_REVOKED",
    "HostKeyEntry",
    "HostKeys",
    "InvalidHostKey",
]

log = get_logger("paramiko.hostkeys")

MARKER_CERT_AUTHORITY = "@cert-authority"
MARKER_REVOKED = "@revoked"
_MARKERS = (MARKER_CERT_AUTHORITY, MARKER_REVOKED)

_HASH_MAGIC = "|1|"
_SALT_LEN = 20  # OpenSSH only accepts salts as long as the SHA-1 output
_FIELD_SEP = re.compile(r"[ \t]+")
_BLANKS = " \t\r\n"
# Key type names that may appear in the keytype field (the blob names, not sig names).
_SUPPORTED_TYPES = frozenset(
    spec.key_type for spec in HOSTKEY_ALGORITHMS.values()
    if not spec.key_type.endswith(CERT_SUFFIX)
)
# Signature algorithm names callers sometimes use where the key type is meant.
_TYPE_ALIASES = {"rsa-sha2-256": "ssh-rsa", "rsa-sha2-512": "ssh-rsa"}


class InvalidHostKey(SSHException):
    """A known_hosts line that could not be turned into a host key.

    Kept for compatibility: :class:`HostKeys` logs and skips bad lines instead of raising.
    """

    def __init__(self, line: str, exc: BaseException) -> None:
        super().__init__(line, exc)
        self.line = line
        self.exc = exc


# -- helpers -------------------------------------------------------------------------------
def _glob(name: str, pattern: str) -> bool:
    """OpenSSH-style wildcard match: ``*`` is any run, ``?`` one character, rest literal.

    Greedy with a single backtrack point, so the cost is O(len(name) * len(pattern)) at
    worst; no pathological patterns.
    """
    n = p = 0
    star = -1
    resume = 0
    while n < len(name):
        if p < len(pattern) and pattern[p] == "*":
            star = p
            resume = n
            p += 1
        elif p < len(pattern) and (pattern[p] == "?" or pattern[p] == name[n]):
            n += 1
            p += 1
        elif star >= 0:
            p = star + 1
            resume += 1
            n = resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _hmac_sha1(salt: bytes, data: bytes) -> hmac.HMAC:
    h = hmac.HMAC(salt, hashes.SHA1())
    h.update(data)
    return h


def _b64decode_strict(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _split_hashed(token: str) -> Optional[Tuple[bytes, bytes]]:
    """``(salt, digest)`` of a ``|1|salt|digest`` token, or None if it is not well formed."""
    if not token.startswith(_HASH_MAGIC):
        return None
    parts = token[len(_HASH_MAGIC):].split("|")
    if len(parts) != 2:
        return None
    try:
        salt = _b64decode_strict(parts[0])
        digest = _b64decode_strict(parts[1])
    except (binascii.Error, ValueError):
        return None
    if len(salt) != _SALT_LEN or len(digest) != _SALT_LEN:
        return None
    return salt, digest


def _hashed_match(token: str, hostname: str) -> bool:
    split = _split_hashed(token)
    if split is None:
        return False
    salt, digest = split
    candidates = [hostname]
    if hostname.lower() != hostname:
        candidates.append(hostname.lower())  # ssh lower-cases names before hashing them
    for name in candidates:
        try:
            _hmac_sha1(salt, name.encode("utf-8", "surrogateescape")).verify(digest)
            return True
        except InvalidSignature:
            continue
    return False


def _looks_like_pattern(name: str) -> bool:
    """True for strings that only occur as known_hosts patterns, never as real host names."""
    return name[:1] in ("!", "|") or "*" in name or "?" in name


def _normalize_marker(marker: Optional[str]) -> Optional[str]:
    if marker is None or marker == "":
        return None
    if not marker.startswith("@"):
        marker = "@" + marker
    if marker not in _MARKERS:
        raise ValueError(f"unknown known_hosts marker {marker!r}")
    return marker


def _salt_bytes(salt: Union[str, bytes, bytearray, memoryview]) -> bytes:
    if isinstance(salt, (bytes, bytearray, memoryview)):
        raw = bytes(salt)
        if len(raw) == _SALT_LEN:
            return raw
        try:
            salt = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"salt must be {_SALT_LEN} raw bytes or base64 text") from None
    if not isinstance(salt, str):
        raise TypeError(f"salt must be str or bytes, not {type(salt).__name__}")
    text = salt[len(_HASH_MAGIC):].split("|")[0] if salt.startswith(_HASH_MAGIC) else salt
    try:
        decoded = _b64decode_strict(text)
    except (binascii.Error, ValueError):
        raise ValueError(f"salt {salt!r} is not valid base64") from None
    if len(decoded) != _SALT_LEN:
        raise ValueError(f"salt must decode to {_SALT_LEN} bytes, got {len(decoded)}")
    return decoded


def _check_hostname(hostname: str) -> None:
    if not isinstance(hostname, str) or not hostname:
        raise ValueError("hostname must be a non-empty string")
    if any(c.isspace() for c in hostname) or "," in hostname:
        raise ValueError(f"hostname {hostname!r} cannot be written to known_hosts")


def _canonical_type(keytype: str) -> str:
    return _TYPE_ALIASES.get(keytype, keytype)


# -- one line ------------------------------------------------------------------------------
_Parsed = Tuple[Optional["HostKeyEntry"], Optional[str], int]


def _parse_line(line: str) -> _Parsed:
    """``(entry, why_skipped, log_level)``; both None for blank and comment lines."""
    text = line.strip(_BLANKS)
    if not text or text.startswith("#"):
        return None, None, logging.DEBUG
    fields = _FIELD_SEP.split(text, maxsplit=3)
    marker = None
    if fields[0].startswith("@"):
        if fields[0] not in _MARKERS:
            return None, f"unknown marker {fields[0]!r}", logging.WARNING
        marker = fields[0]
        fields = _FIELD_SEP.split(text, maxsplit=4)[1:]
    if len(fields) < 3:
        return None, "not enough fields (want: hostnames keytype base64-key)", logging.WARNING
    hostfield, keytype, blob64 = fields[0], fields[1], fields[2]
    comment = fields[3] if len(fields) > 3 else None
    hostnames = [h for h in hostfield.split(",") if h]
    if not hostnames:
        return None, "empty host pattern list", logging.WARNING
    if keytype.endswith(CERT_SUFFIX):
        return (None, f"certificate type {keytype} is not valid in known_hosts "
                      "(trust the CA with @cert-authority instead)", logging.INFO)
    if keytype not in _SUPPORTED_TYPES:
        return None, f"unsupported key type {keytype!r}", logging.INFO
    try:
        blob = _b64decode_strict(blob64)
    except (binascii.Error, ValueError) as e:
        return None, f"key is not valid base64 ({e})", logging.WARNING
    try:
        key = key_from_blob(blob)
    except UnknownKeyType as e:
        return None, f"blob holds unsupported key type {e.key_type!r}", logging.WARNING
    except Exception as e:  # anything wrong with the blob must not stop the load
        return None, f"unusable {keytype} key ({e})", logging.WARNING
    if key.public_blob is not None:
        return None, "certificate blob is not valid in known_hosts", logging.INFO
    if key.get_name() != keytype:
        return (None, f"key type field says {keytype} but the key is {key.get_name()}",
                logging.WARNING)
    return HostKeyEntry(hostnames, key, marker=marker, comment=comment), None, logging.DEBUG


class HostKeyEntry:
    """One known_hosts line: host patterns, a public key, an optional marker and comment."""

    def __init__(
        self,
        hostnames: Optional[Union[str, Iterable[str]]] = None,
        key: Optional[PKey] = None,
        marker: Optional[str] = None,
        comment: Optional[str] = None,
    ) -> None:
        if isinstance(hostnames, str):
            hostnames = hostnames.split(",")
        self.hostnames: List[str] = [h for h in hostnames if h] if hostnames else []
        self.key = key
        self.marker = _normalize_marker(marker)
        self.comment = comment
        # Original text of a line kept only so save() can write it back unchanged.
        self._raw: Optional[str] = None

    @property
    def valid(self) -> bool:
        """True when the entry has at least one host pattern and a key."""
        return bool(self.hostnames) and self.key is not None

    @classmethod
    def from_line(cls, line: str, lineno: Optional[int] = None) -> Optional[HostKeyEntry]:
        """Parse one known_hosts line; None for blank, comment and unusable lines.

        Unusable lines (malformed, unsupported key type, certificates) are logged on the
        ``paramiko.hostkeys`` logger; nothing is raised.
        """
        entry, why, level = _parse_line(line)
        if why is not None:
            where = f"line {lineno}" if lineno is not None else "line"
            log.log(level, "known_hosts %s skipped: %s", where, why)
        return entry

    def to_line(self) -> Optional[str]:
        """The entry in known_hosts format with a trailing newline; None if not valid."""
        if not self.valid:
            return None
        assert self.key is not None
        parts = []
        if self.marker:
            parts.append(self.marker)
        parts += [",".join(self.hostnames), self.key.get_name(), self.key.get_base64()]
        if self.comment:
            comment = " ".join(self.comment.splitlines()).strip(_BLANKS)
            if comment:
                parts.append(comment)
        return " ".join(parts) + "\n"

    def _is_hashed(self) -> bool:
        return bool(self.hostnames) and self.hostnames[0].startswith("|")

    def matches(self, hostname: str) -> bool:
        """Whether ``hostname`` (``host`` or ``[host]:port``) is covered by this line.

        Globs compare case-insensitively; any matching ``!`` pattern vetoes the line; a
        hashed field matches the name exactly as given or lower-cased.
        """
        if not self.hostnames:
            return False
        if self._is_hashed():
            # OpenSSH reads the whole field as one hash; a list starting with one is dead.
            return len(self.hostnames) == 1 and _hashed_match(self.hostnames[0], hostname)
        name = hostname.lower()
        positive = False
        for pattern in self.hostnames:
            negated = pattern.startswith("!")
            if negated:
                pattern = pattern[1:]
            if _glob(name, pattern.lower()):
                if negated:
                    return False
                positive = True
        return positive

    def __repr__(self) -> str:
        marker = f"{self.marker} " if self.marker else ""
        key = self.key.get_name() if self.key is not None else None
        return f"<HostKeyEntry {marker}{self.hostnames!r}: {key}>"


# -- the file --------------------------------------------------------------------------------
class _HostKeyView(MutableMapping):
    """Live ``{keytype: PKey}`` view of the keys a ``HostKeys`` holds for one host name.

    Keys from lines naming the host itself (literally or hashed) come before keys that
    only reach it through wildcards, so ``view[keytype]`` prefers the specific one.
    ``rsa-sha2-256``/``rsa-sha2-512`` are accepted as lookups for ``ssh-rsa``.
    """

    def __init__(self, hostkeys: HostKeys, hostname: str) -> None:
        self._hostkeys = hostkeys
        self._hostname = hostname

    def _keys(self) -> List[PKey]:
        return self._hostkeys._keys_for(self._hostname)

    def __getitem__(self, keytype: str) -> PKey:
        want = _canonical_type(keytype)
        for key in self._keys():
            if key.get_name() == want:
                return key
        raise KeyError(keytype)

    def __iter__(self) -> Iterator[str]:
        return iter(list(dict.fromkeys(k.get_name() for k in self._keys())))

    def __len__(self) -> int:
        return len({k.get_name() for k in self._keys()})

    def __setitem__(self, keytype: str, key: PKey) -> None:
        self._hostkeys.add(self._hostname, keytype, key)

    def __delitem__(self, keytype: str) -> None:
        if not self._hostkeys._remove_host(self._hostname, _canonical_type(keytype)):
            raise KeyError(keytype)

    def __repr__(self) -> str:
        return repr(dict(self))


class HostKeys(MutableMapping):
    """The entries of one or more known_hosts files, in file order.

    As a mapping it is keyed by host pattern (as written in the file; for lookups any
    host name works) and each value is a dict-like ``{keytype: PKey}`` of the usable host
    keys: ``@cert-authority`` lines and revoked keys are never among them.
    """

    def __init__(self, filename: Optional[Union[str, os.PathLike]] = None) -> None:
        self._entries: List[HostKeyEntry] = []
        if filename is not None:
            self.load(filename)

    # -- editing -------------------------------------------------------------------------
    def add(self, hostname: str, keytype: str, key: PKey) -> None:
        """Make ``key`` the ``keytype`` key of ``hostname`` (a name or ``[name]:port``).

        The first line naming just this host with that key type (literally or hashed) gets
        the new key in place; the host is taken out of any other such line, so stale keys
        do not linger. Otherwise a new line is appended. Wildcard lines are left alone.
        """
        _check_hostname(hostname)
        if not isinstance(key, PKey):
            raise TypeError(f"key must be a PKey, not {type(key).__name__}")
        if _canonical_type(keytype) != key.get_name():
            raise ValueError(f"keytype {keytype!r} does not match a {key.get_name()} key")
        replaced = False
        for entry in list(self._entries):
            if not self._is_host_line(entry, hostname, key.get_name()):
                continue
            if not replaced and len(entry.hostnames) == 1:
                entry.key = key
                replaced = True
            else:
                self._drop_host(entry, hostname)
        if not replaced:
            self._entries.append(HostKeyEntry([hostname], key))

    def _is_host_line(self, entry: HostKeyEntry, hostname: str,
                      keytype: Optional[str] = None) -> bool:
        """A plain host-key line that names ``hostname`` itself (not through a wildcard)."""
        if entry.marker is not None or not entry.valid:
            return False
        assert entry.key is not None
        if keytype is not None and entry.key.get_name() != keytype:
            return False
        if hostname in entry.hostnames:
            return True
        return len(entry.hostnames) == 1 and entry._is_hashed() and entry.matches(hostname)

    def _drop_host(self, entry: HostKeyEntry, hostname: str) -> None:
        remaining = [h for h in entry.hostnames if h != hostname]
        if len(entry.hostnames) == 1 or not remaining:
            self._entries.remove(entry)
        else:
            entry.hostnames = remaining

    def _remove_host(self, hostname: str, keytype: Optional[str] = None) -> bool:
        found = False
        for entry in list(self._entries):
            if self._is_host_line(entry, hostname, keytype):
                self._drop_host(entry, hostname)
                found = True
        return found

    def clear(self) -> None:
        """Forget every entry (including kept comment and unusable lines)."""
        self._entries = []

    # -- files ---------------------------------------------------------------------------
    def load(self, filename: Union[str, os.PathLike]) -> None:
        """Add the entries of a known_hosts file after the ones already held.

        Lines identical to ones already held (same marker, patterns and key) are not
        duplicated, so re-loading a file before saving it is harmless. Unusable lines are
        logged and skipped. A missing or unreadable file raises ``OSError``.
        """
        seen: Set[Tuple[Optional[str], Tuple[str, ...], bytes]] = set()
        kept_raw: Set[str] = set()
        for entry in self._entries:
            if entry.valid:
                seen.add(self._identity(entry))
            elif entry._raw is not None:
                kept_raw.add(entry._raw)
        new: List[HostKeyEntry] = []
        with open(filename, encoding="utf-8", errors="surrogateescape") as f:
            for lineno, line in enumerate(f, 1):
                entry, why, level = _parse_line(line)
                if entry is None:
                    if why is not None:
                        log.log(level, "%s:%d skipped: %s", os.fspath(filename), lineno, why)
                    raw = line.rstrip("\r\n")
                    if raw not in kept_raw:
                        keep = HostKeyEntry()
                        keep._raw = raw
                        new.append(keep)
                    continue
                ident = self._identity(entry)
                if ident in seen:
                    continue
                seen.add(ident)
                new.append(entry)
        self._entries.extend(new)

    @staticmethod
    def _identity(entry: HostKeyEntry) -> Tuple[Optional[str], Tuple[str, ...], bytes]:
        assert entry.key is not None
        return entry.marker, tuple(entry.hostnames), entry.key.asbytes()

    def save(self, filename: Union[str, os.PathLike]) -> None:
        """Write every entry in known_hosts format (mode 0600 if the file is created).

        Markers, hashed names and comments are kept; comment lines and lines this library
        could not use are written back as they were read.
        """
        lines = []
        for entry in self._entries:
            line = entry.to_line()
            if line is None and entry._raw is not None:
                line = entry._raw + "\n"
            if line is not None:
                lines.append(line)
        data = "".join(lines).encode("utf-8", "surrogateescape")
        fd = os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as f:
            f.write(data)

    # -- queries -------------------------------------------------------------------------
    def _revoked(self) -> Set[bytes]:
        return {
            e.key.asbytes() for e in self._entries
            if e.marker == MARKER_REVOKED and e.valid
        }

    def _applies(self, entry: HostKeyEntry, hostname: str) -> bool:
        if entry.matches(hostname):
            return True
        # Pattern text (a hashed token, "!x", "*.x") as a mapping key finds its own lines.
        return _looks_like_pattern(hostname) and hostname in entry.hostnames

    def _keys_for(self, hostname: str) -> List[PKey]:
        """Usable host keys for ``hostname``: host-specific lines first, then the rest."""
        revoked = self._revoked()
        specific: List[PKey] = []
        general: List[PKey] = []
        for entry in self._entries:
            if entry.marker is not None or not entry.valid:
                continue
            assert entry.key is not None
            if not self._applies(entry, hostname):
                continue
            if revoked and entry.key.asbytes() in revoked:
                continue
            if self._is_host_line(entry, hostname):
                specific.append(entry.key)
            else:
                general.append(entry.key)
        return specific + general

    def lookup(self, hostname: str) -> Optional[MutableMapping]:
        """``{keytype: PKey}`` of the host keys for ``hostname``, or None if there are none.

        Pass ``"[host]:port"`` for a port other than 22. Every line whose patterns match
        contributes (exact, hashed, wildcard, with ``!`` vetoes); CA and revoked keys do
        not. With several keys of one type the host-specific line wins; :meth:`check`
        considers them all.
        """
        if not self._keys_for(hostname):
            return None
        return _HostKeyView(self, hostname)

    def check(self, hostname: str, key: PKey) -> bool:
        """True if ``key`` is a known, non-revoked host key for ``hostname``.

        Like OpenSSH, any matching line with an equal key is enough.
        """
        blob = key.asbytes()
        return any(k.asbytes() == blob for k in self._keys_for(hostname))

    def cert_authorities(self, hostname: str) -> List[PKey]:
        """CA keys (``@cert-authority`` lines) trusted to sign host certificates for
        ``hostname``, in file order, without revoked or repeated keys."""
        revoked = self._revoked()
        out: List[PKey] = []
        seen: Set[bytes] = set()
        for entry in self._entries:
            if entry.marker != MARKER_CERT_AUTHORITY or not entry.valid:
                continue
            assert entry.key is not None
            blob = entry.key.asbytes()
            if blob in revoked or blob in seen or not self._applies(entry, hostname):
                continue
            seen.add(blob)
            out.append(entry.key)
        return out

    def is_revoked(self, key: PKey) -> bool:
        """True if an ``@revoked`` line lists ``key`` (whatever its host patterns)."""
        return key.asbytes() in self._revoked()

    @staticmethod
    def hash_host(hostname: str,
                  salt: Optional[Union[str, bytes, bytearray, memoryview]] = None) -> str:
        """``|1|salt|hmac`` for ``hostname`` (``host`` or ``[host]:port``), as OpenSSH
        writes with ``HashKnownHosts``.

        ``salt`` is 20 raw bytes, the base64 of 20 bytes, or an existing hashed entry
        (``|1|salt|...``) whose salt is reused; a fresh random salt if None.
        """
        salt_raw = os.urandom(_SALT_LEN) if salt is None else _salt_bytes(salt)
        digest = _hmac_sha1(salt_raw, hostname.encode("utf-8", "surrogateescape")).finalize()
        return "{}{}|{}".format(_HASH_MAGIC, base64.b64encode(salt_raw).decode("ascii"),
                                base64.b64encode(digest).decode("ascii"))

    # -- mapping protocol --------------------------------------------------------------
    def _patterns(self) -> List[str]:
        revoked = self._revoked()
        seen: dict = {}
        for entry in self._entries:
            if entry.marker is not None or not entry.valid:
                continue
            assert entry.key is not None
            if entry.key.asbytes() in revoked:
                continue
            for pattern in entry.hostnames:
                seen.setdefault(pattern, None)
        return list(seen)

    def __iter__(self) -> Iterator[str]:
        return iter(self._patterns())

    def __len__(self) -> int:
        return len(self._patterns())

    def __getitem__(self, hostname: str) -> MutableMapping:
        view = self.lookup(hostname)
        if view is None:
            raise KeyError(hostname)
        return view

    def __setitem__(self, hostname: str, keys: Mapping) -> None:
        """``hk[host] = {keytype: key, ...}``: :meth:`add` each one (other types stay)."""
        if not isinstance(keys, Mapping):
            raise TypeError("value must be a mapping of keytype to PKey")
        for keytype, key in list(keys.items()):
            self.add(hostname, keytype, key)

    def __delitem__(self, hostname: str) -> None:
        """Remove the host from every host-key line naming it (literally or hashed).

        Wildcard lines that merely match it stay; KeyError if no line names it.
        """
        if not self._remove_host(hostname):
            raise KeyError(hostname)

    def __repr__(self) -> str:
        return f"<HostKeys: {len(self._entries)} lines>"
