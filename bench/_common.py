"""Shared plumbing for the benchmarks: the test bed, the upstream virtualenv, worker processes.

A benchmark script is both the orchestrator (run with this project's interpreter) and, with
``--worker SPEC_JSON``, the worker that measures one library. Workers run from a temporary
copy of the script (and of this file), with the working directory outside the repository and
no ``PYTHONPATH``, so an upstream-paramiko interpreter imports upstream's ``paramiko`` and never
this repository's. Only the standard library is imported at module level here, because the
upstream virtualenv has nothing of this project.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_UPSTREAM_VENV = BENCH_DIR / ".venv-upstream"
OUR_PARAMIKO = REPO_ROOT / "paramiko"

_SCRUBBED_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "VIRTUAL_ENV")


def worker_env() -> Dict[str, str]:
    """The environment for a worker: ours minus anything that could redirect imports."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def probe_paramiko(python: str, timeout: float = 60) -> Optional[Dict[str, str]]:
    """``{"version", "file"}`` of the paramiko that ``python`` imports (outside the repo)."""
    code = ("import json, paramiko; "
            "print(json.dumps({'version': paramiko.__version__, 'file': paramiko.__file__}))")
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as cwd:
        r = subprocess.run([python, "-c", code], cwd=cwd, env=worker_env(), capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def is_ours(paramiko_file: str) -> bool:
    """True if a ``paramiko.__file__`` is this repository's package (not upstream's)."""
    return Path(paramiko_file).resolve().is_relative_to(OUR_PARAMIKO.resolve())


def ensure_upstream_python(venv: Path = DEFAULT_UPSTREAM_VENV) -> str:
    """The interpreter of a virtualenv with upstream ``paramiko``, created on first use."""
    python = venv / "bin" / "python"
    info = probe_paramiko(str(python)) if python.exists() else None
    if info and not is_ours(info["file"]):
        return str(python)
    if not python.exists():
        print(f"creating {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    print(f"installing upstream paramiko into {venv} ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-pip-") as cwd:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "paramiko"], cwd=cwd,
                       env=worker_env(), check=True, timeout=900, stdin=subprocess.DEVNULL)
    info = probe_paramiko(str(python))
    if not info or is_ours(info["file"]):
        raise RuntimeError(f"{python} does not import upstream paramiko: {info}")
    return str(python)


@contextlib.contextmanager
def testbed() -> Iterator[Any]:
    """The real-OpenSSH gateway topology of the test suite, torn down on exit (always)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.testbed.keys import KeyStore
    from tests.testbed.prereq import find_openssh
    from tests.testbed.topology import build_topology

    tools = find_openssh()
    missing = [k for k in ("sshd", "sftp-server", "ssh", "ssh-keygen") if not tools[k]]
    if missing:
        raise SystemExit(f"OpenSSH programs not installed: {', '.join(missing)}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-bed-"))
    topo = None
    try:
        keystore = KeyStore(workdir / "keys", tools["ssh-keygen"])
        topo = build_topology(workdir / "bed", keystore, tools)
        yield topo
    finally:
        try:
            if topo is not None:
                topo.teardown()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def run_worker(python: str, script: Path, spec: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    """Run ``script --worker SPEC`` with ``python`` from a temp copy; return its JSON result.

    The worker prints one JSON object as its last stdout line. A failure comes back as
    ``{"error": ...}``; a worker past ``timeout`` is killed (and reaped) by ``subprocess.run``.
    """
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        copy = Path(tmp) / script.name
        shutil.copyfile(script, copy)
        shutil.copyfile(BENCH_DIR / "_common.py", Path(tmp) / "_common.py")
        try:
            r = subprocess.run([python, str(copy), "--worker", json.dumps(spec)], cwd=tmp,
                               env=worker_env(), capture_output=True, text=True,
                               timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return {"error": f"worker timed out after {timeout:.0f}s"}
    lines: List[str] = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit {r.returncode}"]
        return {"error": tail[0][:200]}
    return json.loads(lines[-1])
