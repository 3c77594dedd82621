"""A corpus of realistic Fabric 1.x fabfiles, run through the real ``fab`` command.

Every directory ``tests/fabfiles/NN_name/`` holds a fabfile (``fabfile.py`` or a ``fabfile/``
package) written the way people wrote them for Fabric 1.x, plus ``case.py``, whose ``CASE``
dict lists one or more runs. Each run becomes one test item ``NN_name-runname``:

``argv``
    arguments after ``fab`` (placeholders below are filled in).
``cwd``
    working directory (default: the case directory, so fabfile discovery is exercised).
``stdin``
    text piped to ``fab`` (default: empty, i.e. immediate EOF, as under cron).
``files``
    ``{path: text}`` written before the run (both sides take placeholders).
``setup``
    name of a function in ``case.py`` called as ``fn(ctx)`` before the run.
``env``
    extra environment variables for ``fab``.
``exit``
    expected exit code (default 0).
``stdout`` / ``stderr``
    matchers that must match lines IN ORDER (other lines may come between).
``not_stdout`` / ``not_stderr``
    matchers that must match no line.
``count_stdout`` / ``count_stderr``
    ``{matcher: n}``: exactly ``n`` lines match.
``post``
    file checks after the run: ``{"path", "exists", "content", "contains", "lacks", "mode",
    "same_as"}`` or ``{"glob", "count"}``.
``logins``
    ``{"gw"|"gw2"|"deep"|"targets": n}``: exactly ``n`` SSH logins on that sshd during the run
    (all targets share one sshd).
``custom``
    names of functions in ``case.py`` called as ``fn(result, ctx)`` after the run.
``requires``
    programs that must be on PATH (``require``: skipped locally, a failure under CI).
``xfail``
    reason string: the run is ``xfail(strict=True)`` (a known bug in another module).
``timeout``
    seconds (default 60).

A matcher is a plain string (a whole line, compared after stripping trailing blanks), ``re:``
plus a regular expression (``re.search`` on the line; placeholder values are regex-escaped) or
``in:`` plus a substring.

Placeholders: ``{gw}`` (``root@<gw address>:<port>``), ``{gw_addr}``, ``{gw_d}`` (the gateway
as Fabric's ``denormalize`` prints it), the same for ``gw2`` and ``deep``; ``{t0}``..``{t9}``
(target host strings ``root@<addr>:<port>``), ``{a0}``.. (addresses), ``{hp0}``.. (``addr`` or
``addr:port``), ``{d0}``.. (denormalized), ``{t0_port}``..; ``{key}`` (identity), ``{known_hosts}``,
``{ssh_config}`` (the bed's files), ``{user}``, ``{tmp}`` (a fresh directory under /tmp for this
run, removed afterwards; targets share this machine's filesystem, so remote paths under it are
visible locally), ``{home}`` (``$HOME`` of the run: empty, so no ~/.fabricrc or ~/.ssh leaks
in), ``{case}`` (the case directory), ``{rport}`` (a random high port for remote forwards).

Host keys: ``$HOME`` is empty, so unless a run sets ``--system-known-hosts``/``-r`` or writes
``{home}/.ssh/known_hosts``, Fabric's default AutoAddPolicy accepts the bed's keys.

After every run the runner also checks that ``fab`` left no process behind (it runs in its own
session; anything still in that session afterwards is a leak). ``FABCORPUS_TIMES=path``
appends each run's wall time to ``path`` (to find slow cases).
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests.testbed.prereq import require

pytestmark = [pytest.mark.openssh, pytest.mark.netns]

CASES_DIR = Path(__file__).resolve().parent / "fabfiles"
FAB = Path(sys.executable).parent / "fab"
DEFAULT_TIMEOUT = 60.0
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


# ---------------------------------------------------------------------------------------------
# loading the corpus
# ---------------------------------------------------------------------------------------------


def _load_case_module(case_dir: Path) -> Any:
    name = "fabcorpus_case_" + re.sub(r"\W", "_", case_dir.name)
    spec = importlib.util.spec_from_file_location(name, case_dir / "case.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # The case directories are fabfile projects: keep them free of __pycache__.
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


def _collect() -> List[Any]:
    params = []
    for case_dir in sorted(p for p in CASES_DIR.iterdir() if (p / "case.py").is_file()):
        module = _load_case_module(case_dir)
        for i, run in enumerate(module.CASE["runs"]):
            marks = []
            if run.get("xfail"):
                marks.append(pytest.mark.xfail(strict=True, reason=run["xfail"]))
            rid = f"{case_dir.name}-{run.get('name', i)}"
            params.append(pytest.param(case_dir, module, run, id=rid, marks=marks))
    return params


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    argv: List[str]
    returncode: int
    stdout: str
    stderr: str
    stdout_lines: List[str] = field(default_factory=list)
    stderr_lines: List[str] = field(default_factory=list)
    elapsed: float = 0.0

    def describe(self) -> str:
        return (f"fab {' '.join(self.argv)}\n--- exit {self.returncode} after "
                f"{self.elapsed:.1f}s\n--- stdout:\n{self.stdout}\n--- stderr:\n{self.stderr}")


@dataclass
class Ctx:
    bed: Any
    ph: Dict[str, str]
    tmp: Path
    home: Path
    case_dir: Path

    def fill(self, text: str, regex: bool = False) -> str:
        return fill(text, self.ph, regex)


def fill(text: str, ph: Dict[str, str], regex: bool = False) -> str:
    def sub(m: re.Match) -> str:
        if m.group(1) not in ph:
            return m.group(0)  # a literal brace (shell ${VAR}, Jinja...) stays as written
        value = ph[m.group(1)]
        return re.escape(value) if regex else value

    return _PLACEHOLDER.sub(sub, text)


def _denormalize(user: str, addr: str, port: int, local_user: str) -> str:
    host = f"[{addr}]" if ":" in addr else addr
    if port != 22:
        host = f"{host}:{port}"
    return host if user == local_user else f"{user}@{host}"


def _placeholders(bed: Any, tmp: Path, home: Path, case_dir: Path) -> Dict[str, str]:
    import pwd

    local_user = pwd.getpwuid(os.geteuid()).pw_name
    user = bed.user
    ph: Dict[str, str] = {
        "key": str(bed.identity),
        "known_hosts": str(bed.known_hosts),
        "ssh_config": str(bed.ssh_config),
        "user": user,
        "tmp": str(tmp),
        "home": str(home),
        "case": str(case_dir),
        "rport": str(random.randint(20000, 45000)),
    }
    named = {"gw": bed.gateway, "gw2": bed.gateway2, "deep": bed.deep}
    named.update({f"t{i}": ep for i, ep in enumerate(bed.targets[:10])})
    for name, ep in named.items():
        host = f"[{ep.address}]" if ":" in ep.address else ep.address
        ph[name] = f"{user}@{host}:{ep.port}"
        d = _denormalize(user, ep.address, ep.port, local_user)
        if name.startswith("t"):
            i = name[1:]
            ph[f"a{i}"], ph[f"hp{i}"], ph[f"d{i}"] = ep.address, ep.hostport, d
            ph[f"t{i}_port"] = str(ep.port)
        else:
            ph[f"{name}_addr"], ph[f"{name}_port"], ph[f"{name}_d"] = (
                ep.address, str(ep.port), d)
    return ph


def _lines(text: str) -> List[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [line.rstrip() for line in text.split("\n")]


def _matches(matcher: str, line: str, ctx: Ctx) -> bool:
    if matcher.startswith("re:"):
        return re.search(ctx.fill(matcher[3:], regex=True), line) is not None
    if matcher.startswith("in:"):
        return ctx.fill(matcher[3:]) in line
    return line == ctx.fill(matcher).rstrip()


def _check_in_order(stream: str, lines: List[str], expected: List[str], ctx: Ctx,
                    result: Result) -> None:
    pos = 0
    for matcher in expected:
        for i in range(pos, len(lines)):
            if _matches(matcher, lines[i], ctx):
                pos = i + 1
                break
        else:
            earlier = any(_matches(matcher, line, ctx) for line in lines[:pos])
            where = " (it does appear, but earlier than expected)" if earlier else ""
            pytest.fail(f"{stream}: no line matching {ctx.fill(matcher)!r} after line {pos}"
                        f"{where}\n{result.describe()}", pytrace=False)


def _check_absent(stream: str, lines: List[str], forbidden: List[str], ctx: Ctx,
                  result: Result) -> None:
    for matcher in forbidden:
        hits = [line for line in lines if _matches(matcher, line, ctx)]
        if hits:
            pytest.fail(f"{stream}: unexpected line(s) matching {ctx.fill(matcher)!r}: {hits}"
                        f"\n{result.describe()}", pytrace=False)


def _check_counts(stream: str, lines: List[str], counts: Dict[str, int], ctx: Ctx,
                  result: Result) -> None:
    for matcher, n in counts.items():
        got = sum(1 for line in lines if _matches(matcher, line, ctx))
        if got != n:
            pytest.fail(f"{stream}: {got} line(s) match {ctx.fill(matcher)!r}, expected {n}"
                        f"\n{result.describe()}", pytrace=False)


def _check_post(post: List[Dict[str, Any]], ctx: Ctx, result: Result) -> None:
    import glob as globmod

    for chk in post:
        if "glob" in chk:
            found = globmod.glob(ctx.fill(chk["glob"]), recursive=True)
            assert len(found) == chk["count"], (
                f"glob {ctx.fill(chk['glob'])}: {found}\n{result.describe()}")
            continue
        path = Path(ctx.fill(chk["path"]))
        if not chk.get("exists", True):
            assert not path.exists(), f"{path} should not exist\n{result.describe()}"
            continue
        assert path.is_file(), f"{path} is missing\n{result.describe()}"
        data = path.read_bytes()
        text = data.decode("utf-8", "replace")
        if "content" in chk:
            assert text == ctx.fill(chk["content"]), f"{path} content: {text!r}"
        for needle in chk.get("contains", []):
            assert ctx.fill(needle) in text, f"{path} lacks {ctx.fill(needle)!r}: {text!r}"
        for needle in chk.get("lacks", []):
            assert ctx.fill(needle) not in text, f"{path} has {ctx.fill(needle)!r}: {text!r}"
        if "mode" in chk:
            mode = path.stat().st_mode & 0o7777
            assert mode == int(chk["mode"], 8), f"{path} mode {oct(mode)}, want {chk['mode']}"
        if "same_as" in chk:
            other = Path(ctx.fill(chk["same_as"]))
            assert data == other.read_bytes(), f"{path} differs from {other}"


def _session_members(sid: int) -> List[int]:
    """Processes whose session id is ``sid`` (``fab`` was started as that session's leader)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp session ...
        rest = stat.rsplit(")", 1)[-1].split()
        if len(rest) > 3 and rest[0] != "Z" and int(rest[3]) == sid:
            found.append(int(entry))
    return found


def _leftovers(sid: int) -> List[int]:
    deadline = time.monotonic() + 3
    left = _session_members(sid)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = _session_members(sid)
    return left


def _run_fab(argv: List[str], cwd: Path, env: Dict[str, str], stdin: str,
             timeout: float) -> Result:
    started = time.monotonic()
    proc = subprocess.Popen([str(FAB)] + argv, cwd=str(cwd), env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(stdin.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        # Only our own process group: fab and whatever it started.
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        res = Result(argv, -9, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        pytest.fail(f"fab did not finish within {timeout}s\n{res.describe()}", pytrace=False)
    res = Result(argv, proc.returncode, out.decode("utf-8", "replace"),
                 err.decode("utf-8", "replace"), elapsed=time.monotonic() - started)
    if os.environ.get("FABCORPUS_TIMES"):
        with open(os.environ["FABCORPUS_TIMES"], "a") as f:
            f.write(f"{res.elapsed:6.2f} {' '.join(argv)[-80:]}\n")
    res.stdout_lines, res.stderr_lines = _lines(res.stdout), _lines(res.stderr)
    left = _leftovers(proc.pid)
    if left:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pytest.fail(f"fab left processes behind: {left}\n{res.describe()}", pytrace=False)
    return res


def _sshd_for(bed: Any, name: str) -> Any:
    return {"gw": bed.gateway, "gw2": bed.gateway2, "deep": bed.deep,
            "targets": bed.targets[0]}[name].sshd


# ---------------------------------------------------------------------------------------------
# the test
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fab_ready():
    require(FAB.exists(), f"the fab console script is not installed at {FAB}")
    probe = subprocess.run([str(FAB), "--help"], capture_output=True, text=True, timeout=30)
    require(probe.returncode == 0 and "--gateway" in probe.stdout,
            "fab --help does not list the Fabric 1.x options yet (fabric/main.py missing)")
    return FAB


@pytest.mark.parametrize("case_dir,module,spec", _collect())
def test_fabfile(case_dir: Path, module: Any, spec: Dict[str, Any], testbed, fab_ready):
    for program in spec.get("requires", []):
        require(shutil.which(program) is not None, f"{program} is not installed")
    base = Path(tempfile.mkdtemp(prefix=f"fabcorpus-{case_dir.name[:20]}-", dir="/tmp"))
    try:
        tmp, home = base / "work", base / "home"
        tmp.mkdir()
        home.mkdir()
        ctx = Ctx(testbed, _placeholders(testbed, tmp, home, case_dir), tmp, home, case_dir)
        _one_run(ctx, module, spec)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _one_run(ctx: Ctx, module: Any, spec: Dict[str, Any]) -> None:
    for path, text in spec.get("files", {}).items():
        p = Path(ctx.fill(path))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(ctx.fill(text))
    if spec.get("setup"):
        getattr(module, spec["setup"])(ctx)

    env = {k: v for k, v in os.environ.items()
           if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID", "PYTHONPATH")}
    env.update(HOME=str(ctx.home), LANG="C.UTF-8", LC_ALL="C.UTF-8",
               # The case directories are in the repository: no __pycache__ there.
               PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    env.update({k: ctx.fill(v) for k, v in spec.get("env", {}).items()})
    argv = [ctx.fill(a) for a in spec["argv"]]
    cwd = Path(ctx.fill(spec["cwd"])) if "cwd" in spec else ctx.case_dir

    marks = {name: _sshd_for(ctx.bed, name).log_mark() for name in spec.get("logins", {})}
    result = _run_fab(argv, cwd, env, ctx.fill(spec.get("stdin", "")),
                      float(spec.get("timeout", DEFAULT_TIMEOUT)))

    want_exit = spec.get("exit", 0)
    assert result.returncode == want_exit, (
        f"exit code {result.returncode}, expected {want_exit}\n{result.describe()}")
    _check_in_order("stdout", result.stdout_lines, spec.get("stdout", []), ctx, result)
    _check_in_order("stderr", result.stderr_lines, spec.get("stderr", []), ctx, result)
    _check_absent("stdout", result.stdout_lines, spec.get("not_stdout", []), ctx, result)
    _check_absent("stderr", result.stderr_lines, spec.get("not_stderr", []), ctx, result)
    _check_counts("stdout", result.stdout_lines, spec.get("count_stdout", {}), ctx, result)
    _check_counts("stderr", result.stderr_lines, spec.get("count_stderr", {}), ctx, result)
    _check_post(spec.get("post", []), ctx, result)
    for name, want in spec.get("logins", {}).items():
        sshd = _sshd_for(ctx.bed, name)
        got = sshd.wait_counts(lambda c, w=want: c.login_count >= w, marks[name], timeout=5)
        assert got.login_count == want, (
            f"{name} sshd saw {got.login_count} login(s), expected {want}: {got.logins}\n"
            f"{result.describe()}")
    for fn in spec.get("custom", []):
        getattr(module, fn)(result, ctx)


def test_corpus_is_big_enough():
    """The corpus is meant to be broad: at least 16 cases, each with a fabfile."""
    cases = [p for p in CASES_DIR.iterdir() if (p / "case.py").is_file()]
    assert len(cases) >= 16, [p.name for p in cases]
    for case in cases:
        assert (case / "fabfile.py").is_file() or (case / "fabfile" / "__init__.py").is_file(), \
            case.name
