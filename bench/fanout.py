"""Fan-out through one gateway: ``hostname`` on N targets behind one bastion, three ways.

* this project's ``fab -P -g GW -H t0,...`` (threads, one shared gateway connection);
* fab-classic's ``fab -P -g GW -H ...`` (upstream Fabric 1.x on Python 3, forked workers,
  installed into ``bench/.venv-fabclassic`` on first use);
* OpenSSH: ``xargs -P N ssh -J gw tK hostname``.

For each it prints the wall time, how many logins the gateway's sshd logged, and how many
targets failed. Builds the test bed's OpenSSH topology itself (root for network namespaces),
so the targets really are reachable only through the gateway, and tears it down.

    .venv/bin/python bench/fanout.py [--hosts 20,100] [--only ours,fab-classic,openssh]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import _common

TOOLS = ("ours", "fab-classic", "openssh")
FABCLASSIC_VENV = _common.BENCH_DIR / ".venv-fabclassic"
RUN_TIMEOUT = 600.0

FABFILE = '''\
from fabric.api import run, task


@task
def hostname():
    run("hostname")
'''


def ensure_fabclassic(venv: Path = FABCLASSIC_VENV) -> str:
    """The ``fab`` script of a virtualenv holding fab-classic, created on first use."""
    fab = venv / "bin" / "fab"
    if fab.exists():
        return str(fab)
    print(f"creating {venv} with fab-classic ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300,
                   stdin=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="bench-pip-") as cwd:
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        "fab-classic"], cwd=cwd, env=_common.worker_env(), check=True,
                       timeout=900, stdin=subprocess.DEVNULL)
    return str(fab)


def our_fab() -> str:
    here = Path(sys.executable).parent / "fab"
    found = str(here) if here.exists() else shutil.which("fab")
    if not found:
        raise SystemExit("this project's fab is not installed (pip install -e .)")
    return found


def _count_ok(text: str, hosts: List[str]) -> int:
    """Targets whose ``[host] out: <name>`` line made it to the output."""
    ok = 0
    for host in hosts:
        if re.search(r"^\[" + re.escape(host) + r"\] out: \S", text, re.M):
            ok += 1
    return ok


@contextlib.contextmanager
def bench_user(bed: Any) -> Iterator[str]:
    """A throwaway account with ``/bin/sh`` and an empty home, removed afterwards.

    The bed's sshds accept the bed's key for any account. Running as root would measure this
    machine's ``/root/.bashrc`` (here: pyenv init, ~90 ms of CPU per command on every target),
    which swamps what the tools themselves cost; an ordinary account is what fleets have.
    """
    if os.geteuid() != 0:
        raise SystemExit("fanout.py needs root (network namespaces, a throwaway account)")
    name = f"fgwb{secrets.token_hex(3)}"
    home = tempfile.mkdtemp(prefix=f"{name}-home-")
    os.chmod(home, 0o755)
    # "*" rather than useradd's "!": sshd (UsePAM no) refuses locked accounts even for keys.
    subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", "-p", "*", name],
                   check=True, capture_output=True, timeout=30)
    # sshd reads the bed's shared authorized_keys file as the logging-in user: let it
    # traverse the bed's private temp directories (search only) and read that one file.
    keys = Path(bed.authorized_keys)
    keys.chmod(0o644)
    for parent in keys.parents:
        if parent == Path(tempfile.gettempdir()):
            break
        parent.chmod(parent.stat().st_mode | 0o111)
    try:
        yield name
    finally:
        # userdel refuses while the account's last sessions are still exiting: retry briefly.
        for _ in range(20):
            r = subprocess.run(["userdel", name], capture_output=True, text=True, timeout=30)
            if r.returncode == 0 or "does not exist" in r.stderr:
                break
            time.sleep(0.25)
        else:
            print(f"warning: could not delete the account {name}: {r.stderr.strip()}",
                  file=sys.stderr)
        shutil.rmtree(home, ignore_errors=True)


def run_fab(fab: str, bed: Any, user: str, n: int, workdir: Path) -> Dict[str, Any]:
    hosts = [f"{user}@{t.address}:{t.port}" for t in bed.targets[:n]]
    gw = bed.gateway
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    argv = [fab, "-f", str(workdir / "fabfile.py"), "-P", "-a", "-k",
            "-g", f"{user}@{gw.address}:{gw.port}", "-i", str(bed.identity),
            "-H", ",".join(hosts), "hostname"]
    env = dict(_common.worker_env(), HOME=str(home))
    mark = gw.sshd.log_mark()
    start = time.perf_counter()
    try:
        r = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
        out, code = r.stdout + r.stderr, r.returncode
    except subprocess.TimeoutExpired as e:
        out, code = f"{e.stdout or ''}{e.stderr or ''}", "timeout"
    wall = time.perf_counter() - start
    ok = _count_ok(out if isinstance(out, str) else out.decode(errors="replace"), hosts)
    logins = _settled_logins(gw, mark)
    return {"wall": wall, "logins": logins, "failures": n - ok, "exit": code,
            "tail": _tail(out)}


def run_openssh(bed: Any, user: str, n: int, workdir: Path) -> Dict[str, Any]:
    names = "\n".join(t.name for t in bed.targets[:n]) + "\n"
    ssh = bed.tools["ssh"]
    script = (f'out=$({ssh} -F "{bed.ssh_config}" -o User={user} '
              f'-J {user}@{bed.gateway.name} "$1" hostname) '
              '&& printf "%s %s\\n" "$1" "$out"; exit 0')
    argv = ["xargs", "-P", str(n), "-I{}", "sh", "-c", script, "sh", "{}"]
    gw = bed.gateway
    mark = gw.sshd.log_mark()
    start = time.perf_counter()
    try:
        r = subprocess.run(argv, input=names, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT, cwd=workdir)
        out, code = r.stdout, r.returncode
        err = r.stderr
    except subprocess.TimeoutExpired as e:
        out, code, err = str(e.stdout or ""), "timeout", str(e.stderr or "")
    wall = time.perf_counter() - start
    ok = sum(1 for line in out.splitlines() if len(line.split()) >= 2)
    return {"wall": wall, "logins": _settled_logins(gw, mark), "failures": n - ok,
            "exit": code, "tail": _tail(err)}


def _settled_logins(gw: Any, mark: int) -> int:
    # sshd writes its log line a moment after the client sees success; give it a second.
    deadline = time.monotonic() + 2.0
    count = gw.sshd.counts(mark).login_count
    while time.monotonic() < deadline:
        time.sleep(0.2)
        later = gw.sshd.counts(mark).login_count
        if later == count:
            break
        count = later
    return count


def _tail(text: Any) -> str:
    if not isinstance(text, str):
        text = text.decode(errors="replace") if text else ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="20,100",
                        help="comma-separated target counts (default 20,100)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per tool and host count; the summary uses the median")
    parser.add_argument("--only", default=",".join(TOOLS),
                        help=f"comma-separated subset of {', '.join(TOOLS)}")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.hosts.split(",") if x.strip()]
    tools = [t for t in args.only.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    fabs = {}
    if "ours" in tools:
        fabs["ours"] = our_fab()
    if "fab-classic" in tools:
        fabs["fab-classic"] = ensure_fabclassic()
    results: Dict[int, Dict[str, Dict[str, Any]]] = {}
    with _common.testbed() as bed, bench_user(bed) as user, \
            tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        workdir = Path(tmp)
        (workdir / "fabfile.py").write_text(FABFILE)
        print(f"test bed: {bed.kind}, gateway {bed.gateway.address}:{bed.gateway.port}, "
              f"{len(bed.targets)} targets", flush=True)
        for n in counts:
            if n > len(bed.targets):
                print(f"skipping {n} targets: the bed has {len(bed.targets)}")
                continue
            results[n] = {}
            # Rounds interleave the tools so drift on the machine hits all of them alike.
            runs: Dict[str, List[Dict[str, Any]]] = {tool: [] for tool in tools}
            for _round in range(args.repeat):
                for tool in tools:
                    if tool == "openssh":
                        res = run_openssh(bed, user, n, workdir)
                    else:
                        res = run_fab(fabs[tool], bed, user, n, workdir)
                    runs[tool].append(res)
                    print(f"{n:4d} targets  {tool:12s} wall {res['wall']:7.2f} s  "
                          f"gateway logins {res['logins']:4d}  failures {res['failures']:4d}  "
                          f"exit {res['exit']}"
                          + (f"  ({res['tail']})" if res["failures"] else ""), flush=True)
            for tool, tool_runs in runs.items():
                walls = sorted(r["wall"] for r in tool_runs)
                results[n][tool] = {
                    "wall": walls[len(walls) // 2],  # median
                    "logins": max(r["logins"] for r in tool_runs),
                    "failures": sum(r["failures"] for r in tool_runs),
                }
    print()
    print("summary over all rounds: median wall, most gateway logins in one run, failures "
          "summed")
    print("(target: ours <= 0.5x fab-classic wall time, 1 gateway login, 0 failures)")
    for n, by_tool in results.items():
        for tool, res in by_tool.items():
            print(f"{n:4d} targets  {tool:12s} median wall {res['wall']:6.2f} s  "
                  f"gateway logins <= {res['logins']:3d}  failures {res['failures']}")
    for n, by_tool in results.items():
        ours = by_tool.get("ours")
        classic = by_tool.get("fab-classic")
        if ours and classic and classic["wall"] > 0:
            ratio = ours["wall"] / classic["wall"]
            verdict = ("met" if ratio <= 0.5 and ours["logins"] == 1 and ours["failures"] == 0
                       else "NOT met")
            print(f"{n:4d} targets: ours/fab-classic wall = {ratio:.2f}, ours gateway logins "
                  f"{ours['logins']}, failures {ours['failures']} -> {verdict}")
    return 0


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main())
