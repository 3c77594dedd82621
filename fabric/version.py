"""Version information printed by ``fab --version``."""

from __future__ import annotations

import platform

from paramiko._version import __version__ as _dist_version

DISTRIBUTION = "fabric-gateway"


def version_report() -> str:
    """Return the lines ``fab --version`` prints: distribution, paramiko and Python versions."""
    import paramiko

    return "\n".join(
        [
            f"{DISTRIBUTION} {_dist_version}",
            f"Paramiko {paramiko.__version__}",
            f"Python {platform.python_version()}",
        ]
    )
