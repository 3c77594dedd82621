"""zlib packet compression (RFC 4253 section 6.2 and OpenSSH's delayed ``zlib@openssh.com``).

One zlib stream runs per direction and per key exchange; each packet's payload is flushed
with a partial flush so the peer can inflate it on its own. Compression is not crypto, so
the stdlib ``zlib`` module is the right tool here.
"""

from __future__ import annotations

import zlib
from typing import Callable, Dict, NamedTuple, Optional

from paramiko.ssh_exception import SSHException

__all__ = [
    "CompressionError",
    "ZlibCompressor",
    "ZlibDecompressor",
    "CompressionSpec",
    "COMPRESSIONS",
    "MAX_DECOMPRESSED_SIZE",
]

# A decompressed payload may not exceed the largest legal packet plus a little header room;
# anything bigger is a zip bomb (or a broken peer), never a real SSH payload.
MAX_DECOMPRESSED_SIZE = 256 * 1024 + 4096


class CompressionError(SSHException):
    """A compressed payload could not be inflated, or would inflate too far."""


class ZlibCompressor:
    """Callable: payload in, compressed payload out (stream state carries over)."""

    def __init__(self, level: int = 6) -> None:
        self._z = zlib.compressobj(level)

    def __call__(self, data) -> bytes:
        z = self._z
        # Partial flush, as OpenSSH does: the peer can decode this packet without waiting
        # for the next one, and the dictionary survives for better ratios.
        return z.compress(data) + z.flush(zlib.Z_PARTIAL_FLUSH)


class ZlibDecompressor:
    """Callable: compressed payload in, payload out; bounded to ``max_size`` bytes."""

    def __init__(self, max_size: int = MAX_DECOMPRESSED_SIZE) -> None:
        self._z = zlib.decompressobj()
        self._max = max_size

    def __call__(self, data) -> bytes:
        z = self._z
        try:
            # Ask for one byte more than allowed: getting it (or leaving input behind)
            # proves the packet expands past the cap, without ever inflating further.
            out = z.decompress(data, self._max + 1)
        except zlib.error as e:
            raise CompressionError(f"zlib decompression failed: {e}") from None
        if len(out) > self._max or z.unconsumed_tail:
            raise CompressionError(
                f"compressed packet expands beyond {self._max} bytes (zip bomb?)"
            )
        if z.eof:
            # A peer never finishes its stream; later packets would be undecodable.
            raise CompressionError("peer ended the zlib stream")
        return out


class CompressionSpec(NamedTuple):
    """A negotiable compression method. ``delayed`` ones start only after user auth."""

    name: str
    delayed: bool
    compressor: Optional[Callable[[], ZlibCompressor]]
    decompressor: Optional[Callable[[], ZlibDecompressor]]


COMPRESSIONS: Dict[str, CompressionSpec] = {
    "none": CompressionSpec("none", False, None, None),
    "zlib": CompressionSpec("zlib", False, ZlibCompressor, ZlibDecompressor),
    "zlib@openssh.com": CompressionSpec("zlib@openssh.com", True, ZlibCompressor,
                                        ZlibDecompressor),
}
