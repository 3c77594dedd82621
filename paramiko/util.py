"""Small helpers that user code imports from ``paramiko.util``."""

from __future__ import annotations

import logging
import struct
import sys
import threading
from hashlib import sha1
from typing import Optional

from paramiko.common import DEBUG, asbytes  # noqa: F401  (asbytes is part of this API)


def b(s, encoding: str = "utf8") -> bytes:
    if isinstance(s, bytes):
        return s
    if isinstance(s, str):
        return s.encode(encoding)
    raise TypeError(f"Expected unicode or bytes, got {type(s)!r}")


def u(s, encoding: str = "utf8") -> str:
    if isinstance(s, bytes):
        return s.decode(encoding)
    if isinstance(s, str):
        return s
    raise TypeError(f"Expected unicode or bytes, got {type(s)!r}")


def inflate_long(s: bytes, always_positive: bool = False) -> int:
    """Big-endian two's-complement bytes -> int (positive if ``always_positive``)."""
    return int.from_bytes(s, "big", signed=not always_positive)


def deflate_long(n: int, add_sign_padding: bool = True) -> bytes:
    """int -> big-endian bytes; with ``add_sign_padding`` as an SSH mpint body."""
    if n == 0:
        return b"\x00" if add_sign_padding else b""
    if n > 0:
        length = (n.bit_length() + 7) // 8
        raw = n.to_bytes(length, "big")
        if add_sign_padding and raw[0] & 0x80:
            raw = b"\x00" + raw
        return raw
    raw = n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True)
    while len(raw) > 1 and raw[0] == 0xFF and raw[1] >= 0x80:
        raw = raw[1:]  # a redundant sign byte
    return raw


def safe_string(s: bytes) -> bytes:
    out = b""
    for c in s:
        if 32 <= c <= 127:
            out += bytes((c,))
        else:
            out += b"%" + f"{c:02X}".encode()
    return out


def bit_length(n: int) -> int:
    return n.bit_length()


def generate_key_bytes(hash_alg, salt: bytes, key: bytes, nbytes: int) -> bytes:
    """OpenSSL's legacy EVP_BytesToKey derivation (MD5, one round) used by old PEM keys."""
    keydata = b""
    digest = b""
    if len(salt) > 8:
        salt = salt[:8]
    while nbytes > 0:
        h = hash_alg()
        if digest:
            h.update(digest)
        h.update(b(key))
        h.update(salt)
        digest = h.digest()
        size = min(nbytes, len(digest))
        keydata += digest[:size]
        nbytes -= size
    return keydata


def format_binary(data: bytes, prefix: str = "") -> list:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        hexpart = " ".join(f"{c:02X}" for c in chunk)
        text = "".join(chr(c) if 32 <= c < 127 else "." for c in chunk)
        lines.append(f"{prefix}{i:08X}   {hexpart:<48}   {text}")
    return lines


def clamp_value(minimum: int, val: int, maximum: int) -> int:
    return max(minimum, min(val, maximum))


def load_host_keys(filename: str):
    from paramiko.hostkeys import HostKeys  # arrives with the keys issue

    return HostKeys(filename)


def get_thread_id() -> int:
    return threading.get_ident()


def log_to_file(filename: str, level: int = DEBUG) -> None:
    """Send the ``paramiko`` logger's records to ``filename`` (appending)."""
    logger = logging.getLogger("paramiko")
    if logger.handlers:
        return
    logger.setLevel(level)
    handler = logging.FileHandler(filename, "a")
    handler.setFormatter(logging.Formatter(
        "%(levelname)-.3s [%(asctime)s.%(msecs)03d] thr=%(thread)-3d %(name)s: %(message)s",
        "%Y%m%d-%H:%M:%S"))
    logger.addHandler(handler)


class PFilter:
    def filter(self, record) -> bool:
        record._threadid = get_thread_id()
        return True


_pfilter = PFilter()


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.addFilter(_pfilter)
    return logger


class ClosingContextManager:
    """``with obj:`` calls ``obj.close()`` on exit."""

    def __enter__(self):
        return self

    def __exit__(self, type, value, traceback) -> None:
        self.close()


def constant_time_bytes_eq(a: bytes, b: bytes) -> bool:
    import hmac

    return hmac.compare_digest(a, b)


def asbytes_or_none(s) -> Optional[bytes]:
    return None if s is None else asbytes(s)


_ = (struct, sys, sha1)  # kept importable for code that reaches for them here
