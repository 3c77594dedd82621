"""Prerequisite checks that skip on a developer machine but fail under CI.

CI must never pass by skipping, so with ``CI=true`` or ``REQUIRE_OPENSSH=1`` a missing
prerequisite is a test failure instead of a skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, Optional

import pytest

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
SFTP_SERVER_CANDIDATES = (
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/libexec/sftp-server",
)


def strict() -> bool:
    """True when missing prerequisites must fail rather than skip."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("REQUIRE_OPENSSH") == "1"


def require(ok: bool, reason: str) -> None:
    """Skip (developer machine) or fail (CI) the current test when ``ok`` is false."""
    if ok:
        return
    if strict():
        pytest.fail(f"missing prerequisite (CI=true/REQUIRE_OPENSSH=1 forbid skipping): {reason}",
                    pytrace=False)
    pytest.skip(reason)


def _first_existing(paths) -> Optional[str]:
    for p in paths:
        if Path(p).is_file() and os.access(p, os.X_OK):
            return p
    return None


def find_openssh() -> Dict[str, Optional[str]]:
    """Absolute paths of the OpenSSH programs the test bed uses (None where missing)."""
    return {
        "sshd": _first_existing(SSHD_CANDIDATES),
        "sftp-server": _first_existing(SFTP_SERVER_CANDIDATES),
        "ssh": shutil.which("ssh"),
        "ssh-keygen": shutil.which("ssh-keygen"),
        "sftp": shutil.which("sftp"),
    }


def netns_available() -> bool:
    """Network namespaces need root and the ``ip`` tool."""
    return os.geteuid() == 0 and shutil.which("ip") is not None
