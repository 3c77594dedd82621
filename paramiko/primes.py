"""``ModulusPack``: the server's pool of Diffie-Hellman groups for group exchange (RFC 4419).

The pool is read from a file in OpenSSH's ``moduli`` format (see moduli(5)), one group per
line::

    timestamp type tests tries size generator modulus-hex

``size`` is the modulus bit length minus one. Only safe primes (type 2) that passed at least
one primality test and were not flagged composite are kept; every other line is skipped and,
when it names a modulus, recorded in ``discarded``.
"""

from __future__ import annotations

import builtins
import os
import secrets
from typing import Dict, List, Tuple, Union

from paramiko.ssh_exception import SSHException

# moduli(5) values.
_TYPE_SAFE = 2
_TEST_COMPOSITE = 0x01
# Bounds that keep a hostile or corrupt file from making us parse absurd integers.
_MIN_BITS = 512
_MAX_BITS = 16384


class ModulusPack:
    """Safe-prime DH groups indexed by modulus bit length."""

    def __init__(self) -> None:
        # bits -> list of (generator, modulus)
        self.pack: Dict[int, List[Tuple[int, int]]] = {}
        # (modulus or None, reason) for each line that was refused
        self.discarded: List[Tuple[object, str]] = []

    def _parse_modulus(self, line: str) -> None:
        fields = line.split()
        if len(fields) != 7:
            self.discarded.append((None, "wrong number of fields"))
            return
        _stamp, mtype, tests, tries, size, gen, mod_hex = fields
        try:
            mtype_i = int(mtype)
            tests_i = int(tests)
            tries_i = int(tries)
            size_i = int(size)
            gen_i = int(gen, 16)  # OpenSSH writes the generator in hex too
        except ValueError:
            self.discarded.append((None, "non-numeric field"))
            return
        # Size is checked before the modulus is parsed so a giant hex blob costs nothing.
        if not _MIN_BITS - 1 <= size_i <= _MAX_BITS - 1 or len(mod_hex) > _MAX_BITS // 4 + 2:
            self.discarded.append((None, f"unsupported size {size_i}"))
            return
        try:
            modulus = int(mod_hex, 16)
        except ValueError:
            self.discarded.append((None, "modulus is not hexadecimal"))
            return
        if mtype_i != _TYPE_SAFE:
            self.discarded.append((modulus, "not a safe prime"))
            return
        if tests_i & _TEST_COMPOSITE or not tests_i & ~_TEST_COMPOSITE:
            self.discarded.append((modulus, "composite or untested"))
            return
        if tries_i <= 0:
            self.discarded.append((modulus, "no primality trials"))
            return
        bits = modulus.bit_length()
        if bits != size_i + 1:
            self.discarded.append((modulus, f"declared size {size_i} but modulus has {bits} bits"))
            return
        if modulus % 2 == 0 or not 2 <= gen_i < modulus - 1:
            self.discarded.append((modulus, "bad generator or even modulus"))
            return
        self.pack.setdefault(bits, []).append((gen_i, modulus))

    def read_file(self, filename: Union[str, os.PathLike]) -> None:
        """Replace the pool with the groups in ``filename``.

        Malformed lines are skipped; a missing or unreadable file raises ``OSError``.
        """
        self.pack = {}
        self.discarded = []
        with open(filename, encoding="ascii", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                self._parse_modulus(line)

    # The parameter names match upstream's (they shadow min/max, hence builtins.min below).
    def get_modulus(self, min: int, prefer: int, max: int) -> Tuple[int, int]:
        """A random ``(generator, modulus)`` whose size is the best fit for the request.

        Among the sizes in ``[min, max]`` this takes the smallest one at least ``prefer``,
        or failing that the largest one below it (as OpenSSH's sshd does).
        """
        sizes = [b for b in self.pack if min <= b <= max]
        if not sizes:
            have = ", ".join(str(b) for b in sorted(self.pack)) or "none"
            raise SSHException(
                f"no DH group of {min}..{max} bits available (moduli sizes: {have})"
            )
        at_least = [b for b in sizes if b >= prefer]
        bits = builtins.min(at_least) if at_least else builtins.max(sizes)
        return secrets.choice(self.pack[bits])
