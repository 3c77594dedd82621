"""Key material made with the real ``ssh-keygen``, cached per test session."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

# (file suffix, ssh-keygen -t, -b): every host key type the bed's sshd offers.
HOST_KEY_SPECS: List[Tuple[str, str, Optional[int]]] = [
    ("ed25519", "ed25519", None),
    ("ecdsa256", "ecdsa", 256),
    ("ecdsa384", "ecdsa", 384),
    ("ecdsa521", "ecdsa", 521),
    ("rsa", "rsa", 3072),
]


def keygen(path: Path, ktype: str, bits: Optional[int] = None, comment: str = "",
           passphrase: str = "", ssh_keygen: str = "ssh-keygen") -> Path:
    """Create a key pair at ``path`` (and ``path.pub``) with ssh-keygen; return ``path``."""
    cmd = [ssh_keygen, "-q", "-t", ktype, "-N", passphrase, "-C", comment, "-f", str(path)]
    if bits:
        cmd[4:4] = ["-b", str(bits)]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, timeout=60,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return path


class KeyStore:
    """Generates keys once per directory and name, so several topologies can share them."""

    def __init__(self, root: Path, ssh_keygen: str = "ssh-keygen") -> None:
        self.root = root
        self.ssh_keygen = ssh_keygen
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def host_keys(self, role: str) -> Dict[str, Path]:
        """Private key paths of every host key type for ``role`` (e.g. ``gw1``)."""
        out = {}
        with self._lock:
            d = self.root / "host" / role
            d.mkdir(parents=True, exist_ok=True)
            for name, ktype, bits in HOST_KEY_SPECS:
                p = d / f"ssh_host_{name}_key"
                if not p.exists():
                    keygen(p, ktype, bits, comment=f"{role}-{name}", ssh_keygen=self.ssh_keygen)
                out[name] = p
        return out

    def user_key(self, name: str = "id_ed25519", ktype: str = "ed25519",
                 bits: Optional[int] = None) -> Path:
        """A client key pair, created on first use."""
        with self._lock:
            p = self.root / "user" / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if not p.exists():
                keygen(p, ktype, bits, comment=f"testbed-{name}", ssh_keygen=self.ssh_keygen)
                p.chmod(0o600)
        return p


def public_line(private_path: Path) -> str:
    """The ``type base64`` part of a key's ``.pub`` file (comment dropped)."""
    parts = Path(str(private_path) + ".pub").read_text().split()
    return f"{parts[0]} {parts[1]}"
