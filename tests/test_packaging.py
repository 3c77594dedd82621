"""Packaging facts: console script, dependencies, the README's commands, lint."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import paramiko
from tests.testbed.prereq import require

ROOT = Path(__file__).resolve().parent.parent


def _fab() -> str:
    here = Path(sys.executable).parent / "fab"
    found = str(here) if here.exists() else shutil.which("fab")
    require(bool(found), "the fab console script is not installed (pip install -e .)")
    return found


def test_fab_version_prints_distribution_paramiko_and_python():
    out = subprocess.run([_fab(), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"fabric-gateway {metadata.version('fabric-gateway')}",
        f"Paramiko {paramiko.__version__}",
        f"Python {platform.python_version()}",
    ]


def test_fab_without_a_fabfile_aborts(tmp_path):
    # From "/" no fabfile can be found (the root itself is never searched, as in Fabric 1.x),
    # and an empty HOME keeps a personal ~/.fabricrc out.
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env["HOME"] = str(tmp_path)
    out = subprocess.run([_fab(), "deploy"], capture_output=True, text=True, timeout=60,
                         cwd="/", env=env, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    assert out.stderr == ("\nFatal error: Couldn't find any fabfiles!\n\nRemember that -f can "
                          "be used to specify fabfile path, and use -h for help.\n\nAborting.\n")
    assert out.stdout == ""


def test_runtime_dependencies_are_cryptography_and_bcrypt_only():
    reqs = metadata.requires("fabric-gateway") or []
    runtime = sorted(re.split(r"[<>=!~ ;\[]", r)[0] for r in reqs if "extra ==" not in r)
    assert runtime == ["bcrypt", "cryptography"]


def _readme_test_command() -> str:
    text = (ROOT / "README.rst").read_text()
    m = re.search(r"\.\. test-command\n\n::\n\n    (.+)\n", text)
    assert m, "README.rst lost its marked test command"
    return m.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in ci
    assert _readme_test_command() in [line.strip() for line in ci.splitlines()]


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    require(Path(ruff).exists(), "ruff not installed (it is in the test extra)")
    out = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
