"""Transport throughput: MB/s of one exec stream from OpenSSH sshd, ours vs upstream paramiko.

Streams ``head -c SIZE /dev/zero`` (256 MiB by default) over one session channel, directly
(client -> gw) and through one ``direct-tcpip`` hop (client -> gw -> t0), with this library
(the interpreter running this script) and with upstream paramiko (a virtualenv created on demand
at ``bench/.venv-upstream``). Builds the test bed's OpenSSH topology itself and tears it down.

    .venv/bin/python bench/throughput.py [--size MiB] [--only ours|upstream] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import _common

MODES = ("direct", "hop")
READ_CHUNK = 1 << 20


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


def measure(spec: Dict[str, Any]) -> Dict[str, Any]:
    import resource
    import socket

    import paramiko

    size = int(spec["size"])
    timeout = float(spec["timeout"])
    gw_addr, gw_port = spec["gateway"]
    sock = socket.create_connection((gw_addr, gw_port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transports = []
    try:
        t = _connect(paramiko, sock, spec["user"], spec["identity"], 20)
        transports.append(t)
        if spec["mode"] == "hop":
            t_addr, t_port = spec["target"]
            chan = t.open_channel("direct-tcpip", (t_addr, t_port), ("127.0.0.1", 0),
                                  timeout=20)
            t = _connect(paramiko, chan, spec["user"], spec["identity"], 20)
            transports.append(t)
        chan = t.open_session(timeout=20)
        chan.settimeout(30)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        chan.exec_command(f"head -c {size} /dev/zero")
        received = 0
        deadline = time.monotonic() + timeout
        while True:
            data = chan.recv(READ_CHUNK)
            if not data:
                break
            received += len(data)
            if time.monotonic() > deadline:
                raise RuntimeError(f"stream too slow: {received} bytes in {timeout:.0f}s")
        elapsed = time.perf_counter() - start
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        chan.close()
        if received != size:
            raise RuntimeError(f"received {received} bytes, expected {size}")
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        return {
            "version": paramiko.__version__,
            "file": paramiko.__file__,
            "cipher": t.local_cipher,
            "mac": getattr(t, "local_mac", "") or "",
            "seconds": elapsed,
            "mbps": size / 1e6 / elapsed,
            "cpu": cpu / elapsed,
        }
    finally:
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
# orchestrator
# ---------------------------------------------------------------------------------------------


def _best(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    ok = [r for r in results if "error" not in r]
    return max(ok, key=lambda r: r["mbps"]) if ok else results[-1]


def _row(lib: str, mode: str, r: Dict[str, Any]) -> str:
    if "error" in r:
        return f"{lib:<9} {mode:<7} ERROR: {r['error']}"
    mac = r["mac"] if r["mac"] and "gcm" not in r["cipher"] and "poly" not in r["cipher"] else "-"
    return (f"{lib:<9} {mode:<7} {r['version']:<11} {r['cipher']:<30} {mac:<30} "
            f"{r['mbps']:>8.1f} {r['cpu'] * 100:>5.0f}%")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="stream size in MiB (default 256)")
    ap.add_argument("--only", choices=("ours", "upstream"), help="measure one library only")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the best is shown")
    ap.add_argument("--upstream-venv", type=Path, default=_common.DEFAULT_UPSTREAM_VENV,
                    help="virtualenv for upstream paramiko (created if missing)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args.worker)

    size = args.size * 1024 * 1024
    libs: Dict[str, str] = {}
    if args.only in (None, "ours"):
        libs["ours"] = sys.executable
    if args.only in (None, "upstream"):
        libs["upstream"] = _common.ensure_upstream_python(args.upstream_venv)
    script = Path(__file__).resolve()
    timeout = 120 + args.size * 2.0  # generous: >= 0.5 MB/s
    results: Dict[str, Dict[str, Dict[str, Any]]] = {}
    with _common.testbed() as bed:
        print(f"test bed: {bed.kind}; gw {bed.gateway.address}:{bed.gateway.port}, "
              f"t0 {bed.targets[0].address}:{bed.targets[0].port}; {args.size} MiB stream",
              flush=True)
        for lib, python in libs.items():
            results[lib] = {}
            for mode in MODES:
                spec = {
                    "mode": mode, "size": size, "timeout": timeout - 30,
                    "gateway": [bed.gateway.address, bed.gateway.port],
                    "target": [bed.targets[0].address, bed.targets[0].port],
                    "user": bed.user, "identity": str(bed.identity),
                }
                runs = [_common.run_worker(python, script, spec, timeout)
                        for _ in range(max(1, args.repeat))]
                results[lib][mode] = r = _best(runs)
                if "error" not in r and _common.is_ours(r["file"]) != (lib == "ours"):
                    r.clear()
                    r["error"] = f"{lib} worker imported the wrong paramiko ({python})"

    print()
    print(f"{'library':<9} {'path':<7} {'paramiko':<11} {'cipher':<30} {'mac':<30} "
          f"{'MB/s':>8} {'cpu':>6}")
    for lib, by_mode in results.items():
        for mode, r in by_mode.items():
            print(_row(lib, mode, r))
    failed = any("error" in r for by_mode in results.values() for r in by_mode.values())
    if {"ours", "upstream"} <= set(results):
        ours, up = results["ours"]["hop"], results["upstream"]["hop"]
        if "error" not in ours and "error" not in up:
            ratio = ours["mbps"] / up["mbps"]
            verdict = "met" if ratio >= 3 else "NOT met"
            print(f"\nratio ours/upstream through the hop: {ratio:.2f}x "
                  f"(target >= 3x: {verdict})")
        else:
            print("\nratio ours/upstream through the hop: n/a (a measurement failed)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
