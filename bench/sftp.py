"""SFTP throughput: MB/s of get, put and 32 KiB read/write loops through one gateway hop.

Moves one file (128 MiB of random bytes by default) between this machine and OpenSSH's
sftp-server on target ``t0``, reached through the gateway ``gw`` by a ``direct-tcpip`` channel
(client -> gw -> t0, as in ``throughput.py``'s hop mode). Four operations per library:

* ``get``    ``sftp.get(remote, local)``
* ``put``    ``sftp.put(local, remote)``
* ``read``   ``f = sftp.open(remote, "rb")`` then ``f.read(32768)`` until empty, no prefetch
* ``write``  ``f = sftp.open(remote, "wb")`` then ``f.write(chunk)`` with 32 KiB chunks, no
  pipelining; the timing includes ``f.close()``

for this library (the interpreter running this script), upstream paramiko (a virtualenv made
on demand at ``bench/.venv-upstream``) and OpenSSH's ``sftp -J gw -b BATCH t0`` (``get`` and
``put`` only; the time of a no-op batch, i.e. connection setup and teardown, is subtracted).
Every transfer is checked with sha256 (remote files by ``sha256sum`` on t0 over an exec
channel). Builds the test bed's OpenSSH topology itself and tears it down.

    .venv/bin/python bench/sftp.py [--size MiB] [--only ours|upstream|openssh] [--repeat N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import _common

OPS = ("get", "put", "read", "write")
OPENSSH_OPS = ("get", "put")
CHUNK = 32768
HASH_BLOCK = 1 << 20
LIBS = ("ours", "upstream", "openssh")


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(HASH_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# worker: runs under the measured library's interpreter (imports its paramiko only here)
# ---------------------------------------------------------------------------------------------


def _connect(paramiko, sock, user: str, identity: str, timeout: float):
    t = paramiko.Transport(sock)
    t.start_client(timeout=timeout)
    if not t.is_active():
        t.close()
        raise RuntimeError("key exchange did not complete")
    t.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(identity))
    if not t.is_authenticated():
        t.close()
        raise RuntimeError("authentication failed")
    return t


def _remote_sha256(t, path: str, timeout: float = 120) -> str:
    """``sha256sum`` of ``path`` on the target, run over an exec channel of transport ``t``."""
    chan = t.open_session(timeout=20)
    try:
        chan.settimeout(timeout)
        chan.exec_command(f"sha256sum -- {shlex.quote(path)}")
        out = b""
        for _ in range(10_000):  # the answer is one short line; bounded anyway
            data = chan.recv(4096)
            if not data:
                break
            out += data
        status = chan.recv_exit_status()
    finally:
        chan.close()
    if status != 0 or not out:
        raise RuntimeError(f"remote sha256sum of {path} failed (exit {status})")
    return out.split()[0].decode("ascii")


def _deadline_guard(deadline: float, what: str) -> Callable[[int, int], None]:
    def guard(done: int, total: int) -> None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} too slow: {done} of {total} bytes before the deadline")
    return guard


def _op_get(sftp, spec: Dict[str, Any], deadline: float) -> Tuple[float, Callable[[], None]]:
    dst = os.path.join(spec["workdir"], f"get-{spec['tag']}.bin")
    start = time.perf_counter()
    sftp.get(spec["src"], dst, callback=_deadline_guard(deadline, "get"))
    elapsed = time.perf_counter() - start

    def check() -> None:
        try:
            if os.path.getsize(dst) != spec["size"] or sha256_file(dst) != spec["sha256"]:
                raise RuntimeError("get: local copy differs from the remote file (sha256)")
        finally:
            os.unlink(dst)
    return elapsed, check


def _op_put(sftp, spec: Dict[str, Any], deadline: float) -> Tuple[float, str]:
    dst = os.path.join(spec["workdir"], f"put-{spec['tag']}.bin")
    start = time.perf_counter()
    sftp.put(spec["src"], dst, callback=_deadline_guard(deadline, "put"))
    return time.perf_counter() - start, dst


def _op_read(sftp, spec: Dict[str, Any], deadline: float) -> Tuple[float, Callable[[], None]]:
    size = spec["size"]
    chunks: List[bytes] = []
    received = 0
    start = time.perf_counter()
    f = sftp.open(spec["src"], "rb")
    try:
        for _ in range(size // CHUNK + 2):  # one more than needed to see the end of file
            data = f.read(CHUNK)
            if not data:
                break
            chunks.append(data)
            received += len(data)
            if received > size:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"read loop too slow: {received} bytes before the deadline")
    finally:
        f.close()
    elapsed = time.perf_counter() - start

    def check() -> None:
        if received != size:
            raise RuntimeError(f"read loop: got {received} bytes, expected {size}")
        h = hashlib.sha256()
        for c in chunks:
            h.update(c)
        if h.hexdigest() != spec["sha256"]:
            raise RuntimeError("read loop: data differs from the remote file (sha256)")
    return elapsed, check


def _op_write(sftp, spec: Dict[str, Any], deadline: float) -> Tuple[float, str]:
    with open(spec["src"], "rb") as src:
        data = src.read()
    dst = os.path.join(spec["workdir"], f"write-{spec['tag']}.bin")
    start = time.perf_counter()
    f = sftp.open(dst, "wb")
    try:
        for off in range(0, len(data), CHUNK):
            f.write(data[off:off + CHUNK])
            if time.monotonic() > deadline:
                raise RuntimeError(f"write loop too slow: {off} bytes before the deadline")
    finally:
        f.close()
    return time.perf_counter() - start, dst


def _sftp_client_class(paramiko):
    """``paramiko.SFTPClient``, or the class from its module if the package does not export it."""
    cls = getattr(paramiko, "SFTPClient", None)
    if cls is None:
        from paramiko.sftp_client import SFTPClient as cls
    return cls


def measure(spec: Dict[str, Any]) -> Dict[str, Any]:
    import socket

    import paramiko

    op = spec["op"]
    timeout = float(spec["timeout"])
    gw_addr, gw_port = spec["gateway"]
    sock = socket.create_connection((gw_addr, gw_port), timeout=10)
    if spec["nodelay"]:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transports = []
    sftp = None
    try:
        t = _connect(paramiko, sock, spec["user"], spec["identity"], 20)
        transports.append(t)
        t_addr, t_port = spec["target"]
        chan = t.open_channel("direct-tcpip", (t_addr, t_port), ("127.0.0.1", 0), timeout=20)
        t = _connect(paramiko, chan, spec["user"], spec["identity"], 20)
        transports.append(t)
        sftp = _sftp_client_class(paramiko).from_transport(t)
        sftp.get_channel().settimeout(60)  # bounds every wait for a server reply
        deadline = time.monotonic() + timeout
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        if op == "get":
            elapsed, check = _op_get(sftp, spec, deadline)
        elif op == "read":
            elapsed, check = _op_read(sftp, spec, deadline)
        else:
            elapsed, dst = (_op_put if op == "put" else _op_write)(sftp, spec, deadline)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        if op in ("get", "read"):
            check()
        else:
            try:
                if _remote_sha256(t, dst) != spec["sha256"]:
                    raise RuntimeError(f"{op}: remote file differs from the local one (sha256)")
            finally:
                sftp.remove(dst)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        return {
            "version": paramiko.__version__,
            "file": paramiko.__file__,
            "cipher": t.local_cipher,
            "seconds": elapsed,
            "mbps": spec["size"] / 1e6 / elapsed,
            "cpu": cpu / elapsed,
        }
    finally:
        if sftp is not None:
            sftp.close()
        for tr in reversed(transports):
            tr.close()
        sock.close()


def worker_main(spec_json: str) -> int:
    try:
        result = measure(json.loads(spec_json))
    except Exception as e:  # noqa: BLE001 - reported to the orchestrator as a table row
        result = {"error": f"{type(e).__name__}: {e}"[:200]}
    print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------
# OpenSSH's sftp client (run from the orchestrator)
# ---------------------------------------------------------------------------------------------


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run_sftp_batch(bed, sftp: str, batch: Path, timeout: float) -> Dict[str, Any]:
    """Run ``sftp -b batch`` through the gateway; wall seconds and CPU seconds of its processes.

    CPU comes from RUSAGE_CHILDREN, so it covers sftp and the ssh processes it waited for
    (the ssh to t0 and the ProxyJump ssh to gw).
    """
    cmd = [sftp, "-q", "-F", str(bed.ssh_config), "-J", "gw", "-b", str(batch), "t0"]
    cpu0 = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        return {"error": f"sftp timed out after {timeout:.0f}s"}
    finally:
        if proc.poll() is None:  # an exception other than the timeout: still kill and reap
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu0
    if proc.returncode != 0:
        tail = err.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return {"error": f"sftp: {tail[0][:180]}"}
    return {"seconds": elapsed, "cpu_seconds": cpu}


def _ssh_sha256(bed, path: str) -> str:
    r = bed.run_ssh("t0", f"sha256sum -- {shlex.quote(path)}", jump="gw", timeout=120)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"ssh t0 sha256sum {path}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout.split()[0]


def measure_openssh(bed, sftp: str, spec: Dict[str, Any], repeat: int,
                    timeout: float) -> Dict[str, Dict[str, Any]]:
    """Best-of-``repeat`` rows for OpenSSH's sftp ``get``/``put``, setup time subtracted."""
    workdir = Path(spec["workdir"])
    noop = workdir / "batch-noop"
    noop.write_text("pwd\n")
    noops = [_run_sftp_batch(bed, sftp, noop, 120) for _ in range(repeat)]
    ok = [r for r in noops if "error" not in r]
    if not ok:
        return {op: {"error": f"no-op batch failed: {noops[-1]['error']}"} for op in OPENSSH_OPS}
    setup = min(ok, key=lambda r: r["seconds"])
    results: Dict[str, Dict[str, Any]] = {}
    for op in OPENSSH_OPS:
        dst = workdir / f"{op}-openssh.bin"
        batch = workdir / f"batch-{op}"
        src_q, dst_q = shlex.quote(spec["src"]), shlex.quote(str(dst))
        batch.write_text(f"{op} {src_q} {dst_q}\n")
        runs = []
        for _ in range(repeat):
            r = _run_sftp_batch(bed, sftp, batch, timeout)
            if "error" not in r:
                try:
                    digest = sha256_file(str(dst)) if op == "get" else _ssh_sha256(bed, str(dst))
                    if digest != spec["sha256"]:
                        r = {"error": f"{op}: copy differs from the source (sha256)"}
                except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                    r = {"error": f"{op}: verification failed: {e}"[:200]}
            dst.unlink(missing_ok=True)
            runs.append(r)
        best = _best_by_seconds(runs)
        if "error" not in best:
            net = best["seconds"] - setup["seconds"]
            if net <= 0:
                best = {"error": f"{op} took no longer than the no-op batch"}
            else:
                best = {
                    "seconds": net,
                    "mbps": spec["size"] / 1e6 / net,
                    "cpu": max(0.0, best["cpu_seconds"] - setup["cpu_seconds"]) / net,
                    "note": (f"setup {setup['seconds']:.2f}s subtracted; whole command "
                             f"{spec['size'] / 1e6 / best['seconds']:.1f} MB/s"),
                }
        results[op] = best
    return results


# ---------------------------------------------------------------------------------------------
# orchestrator
# ---------------------------------------------------------------------------------------------


def _best_by_seconds(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    ok = [r for r in results if "error" not in r]
    return min(ok, key=lambda r: r["seconds"]) if ok else results[-1]


def _make_source(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left > 0:
            block = os.urandom(min(HASH_BLOCK, left))
            f.write(block)
            h.update(block)
            left -= len(block)
    return h.hexdigest()


def _row(lib: str, op: str, r: Dict[str, Any]) -> str:
    if "error" in r:
        return f"{lib:<9} {op:<6} ERROR: {r['error']}"
    return (f"{lib:<9} {op:<6} {r['mbps']:>8.1f} {r['cpu'] * 100:>5.0f}% "
            f"{r['seconds']:>8.2f}  {r.get('note', '')}")


def _ratio_line(label: str, num: Dict[str, Any], den: Dict[str, Any],
                target: Optional[float]) -> str:
    if "error" in num or "error" in den:
        return f"  {label:<34} n/a (a measurement failed)"
    ratio = num["mbps"] / den["mbps"]
    if target is None:
        return f"  {label:<34} {ratio:6.2f}x"
    verdict = "met" if ratio >= target else "NOT met"
    return f"  {label:<34} {ratio:6.2f}x  (target >= {target:g}x: {verdict})"


def _print_ratios(results: Dict[str, Dict[str, Dict[str, Any]]]) -> None:
    ours = results.get("ours")
    if not ours:
        return
    print("\ntargets:")
    if "upstream" in results:
        up = results["upstream"]
        print(_ratio_line("ours/upstream get", ours["get"], up["get"], 2))
        print(_ratio_line("ours/upstream put", ours["put"], up["put"], 2))
    print(_ratio_line("ours read loop / ours get", ours["read"], ours["get"], 0.7))
    print(_ratio_line("ours write loop / ours put", ours["write"], ours["put"], 0.7))
    if "openssh" in results:
        print("for information:")
        for op in OPENSSH_OPS:
            print(_ratio_line(f"ours/openssh {op}", ours[op], results["openssh"][op], None))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128, help="file size in MiB (default 128)")
    ap.add_argument("--only", choices=LIBS, help="measure one client only")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the best is shown")
    ap.add_argument("--nodelay", action="store_true",
                    help="set TCP_NODELAY on the client's socket to gw (default: leave the "
                         "socket as created, so each library's own choice shows)")
    ap.add_argument("--upstream-venv", type=Path, default=_common.DEFAULT_UPSTREAM_VENV,
                    help="virtualenv for upstream paramiko (created if missing)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    if args.size < 1:
        ap.error("--size must be at least 1 MiB")

    size = args.size * 1024 * 1024
    repeat = max(1, args.repeat)
    chosen = [args.only] if args.only else list(LIBS)
    pythons: Dict[str, str] = {}
    if "ours" in chosen:
        pythons["ours"] = sys.executable
    if "upstream" in chosen:
        pythons["upstream"] = _common.ensure_upstream_python(args.upstream_venv)
    sftp_prog = shutil.which("sftp")
    if "openssh" in chosen and not sftp_prog:
        raise SystemExit("OpenSSH's sftp client is not installed")
    script = Path(__file__).resolve()
    timeout = 120 + args.size * 4.0  # generous: >= 0.25 MB/s, for upstream's unpipelined write
    results: Dict[str, Dict[str, Dict[str, Any]]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="bench-sftp-"))
    try:
        src = workdir / "source.bin"
        digest = _make_source(src, size)
        base = {"size": size, "src": str(src), "sha256": digest, "workdir": str(workdir)}
        with _common.testbed() as bed:
            print(f"test bed: {bed.kind}; gw {bed.gateway.address}:{bed.gateway.port}, "
                  f"t0 {bed.targets[0].address}:{bed.targets[0].port}; {args.size} MiB file; "
                  f"TCP_NODELAY by the bench: {'yes' if args.nodelay else 'no'}", flush=True)
            if _ssh_sha256(bed, str(src)) != digest:  # sftp-server must see our file system
                raise SystemExit("t0 does not see the source file this script wrote")
            for lib, python in pythons.items():
                results[lib] = {}
                for op in OPS:
                    spec = dict(base, op=op, tag=lib, timeout=timeout - 30,
                                nodelay=args.nodelay,
                                gateway=[bed.gateway.address, bed.gateway.port],
                                target=[bed.targets[0].address, bed.targets[0].port],
                                user=bed.user, identity=str(bed.identity))
                    runs = [_common.run_worker(python, script, spec, timeout)
                            for _ in range(repeat)]
                    results[lib][op] = r = _best_by_seconds(runs)
                    if "error" not in r:
                        if _common.is_ours(r["file"]) != (lib == "ours"):
                            r.clear()
                            r["error"] = f"{lib} worker imported the wrong paramiko ({python})"
                        else:
                            r["note"] = f"paramiko {r['version']}, {r['cipher']}"
                    print(f"  {_row(lib, op, r)}", file=sys.stderr, flush=True)
            if "openssh" in chosen:
                results["openssh"] = measure_openssh(bed, sftp_prog, base, repeat, timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"{'library':<9} {'op':<6} {'MB/s':>8} {'cpu':>6} {'seconds':>8}  note")
    for lib, by_op in results.items():
        for op, r in by_op.items():
            print(_row(lib, op, r))
    _print_ratios(results)
    failed = any("error" in r for by_op in results.values() for r in by_op.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
