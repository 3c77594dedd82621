"""One real OpenSSH ``sshd`` instance with its own config, pid file, log and host keys."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tests.testbed import registry

_ACCEPTED = re.compile(r"Accepted (\S+) for (\S+) from (\S+) port (\d+)")
_CONNECTION = re.compile(r"Connection from (\S+) port (\d+) on (\S+) port (\d+)")
_LISTENING = re.compile(r"Server listening on (\S+) port (\d+)")


@dataclass
class LogCounts:
    """What an sshd log says happened since a mark: logins and TCP connections."""

    logins: List[Tuple[str, str, str]] = field(default_factory=list)  # (method, user, src)
    connections: List[Tuple[str, int]] = field(default_factory=list)  # (src addr, src port)

    @property
    def login_count(self) -> int:
        return len(self.logins)

    @property
    def connection_count(self) -> int:
        return len(self.connections)


def count_log(text: str) -> LogCounts:
    """Count logins (``Accepted ...``) and TCP connections in sshd VERBOSE log text."""
    counts = LogCounts()
    for line in text.splitlines():
        m = _ACCEPTED.search(line)
        if m:
            counts.logins.append((m.group(1), m.group(2), m.group(3)))
            continue
        m = _CONNECTION.search(line)
        if m:
            counts.connections.append((m.group(1), int(m.group(2))))
    return counts


def descendants(pid: int) -> List[int]:
    """All living descendants of ``pid`` (read from /proc), deepest last."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        # The command name may contain spaces or parens: the ppid follows the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: List[int] = []
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().decode("ascii", "replace").rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Sshd:
    """A private sshd: started in a namespace (or not), stopped by pid, log inspectable."""

    def __init__(self, name: str, workdir: Path, sshd_path: str, sftp_server: str,
                 host_keys: Dict[str, Path], authorized_keys: Path,
                 listen: Sequence[Tuple[str, int]], netns: Optional[str] = None,
                 extra_config: Sequence[str] = (),
                 overrides: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        self.workdir = workdir
        self.sshd_path = sshd_path
        self.sftp_server = sftp_server
        self.host_keys = dict(host_keys)
        self.authorized_keys = authorized_keys
        self.listen = list(listen)
        self.netns = netns
        self.extra_config = list(extra_config)
        # sshd takes the first value of most keywords, so defaults are replaced, not appended.
        self.overrides = {k.lower(): v for k, v in (overrides or {}).items()}
        self.config_path = workdir / "sshd_config"
        self.pid_path = workdir / "sshd.pid"
        self.log_path = workdir / "sshd.log"
        self.proc: Optional[subprocess.Popen] = None
        workdir.mkdir(parents=True, exist_ok=True)

    # -- configuration -------------------------------------------------------------
    def render_config(self) -> str:
        lines = [f"# test-bed sshd '{self.name}'"]
        for addr, port in self.listen:
            host = f"[{addr}]" if ":" in addr else addr
            lines.append(f"ListenAddress {host}:{port}")
        lines += [f"HostKey {p}" for p in self.host_keys.values()]
        lines += [
            f"PidFile {self.pid_path}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            # The bed's files live in a temp dir whose parents are not root-owned 0755.
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "AllowTcpForwarding yes",
            "AllowAgentForwarding yes",
            "X11Forwarding no",
            "PrintMotd no",
            "PrintLastLog no",
            "AcceptEnv LANG LC_*",
            "LogLevel VERBOSE",
            f"Subsystem sftp {self.sftp_server}",
        ]
        out = []
        pending = dict(self.overrides)
        for line in lines:
            key = line.split(" ", 1)[0].lower()
            if key in pending:
                out.append(f"{line.split(' ', 1)[0]} {pending.pop(key)}")
            else:
                out.append(line)
        out += [f"{k} {v}" for k, v in pending.items()]
        out += self.extra_config
        return "\n".join(out) + "\n"

    @property
    def command(self) -> List[str]:
        base = [self.sshd_path, "-D", "-f", str(self.config_path), "-E", str(self.log_path)]
        if self.netns:
            return ["ip", "netns", "exec", self.netns] + base
        return base

    # -- lifecycle -----------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> None:
        """Start sshd and wait (bounded) until every listen address is bound."""
        if os.geteuid() == 0:
            # sshd refuses to start without its privilege separation directory.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.config_path.write_text(self.render_config())
        check = subprocess.run([self.sshd_path, "-t", "-f", str(self.config_path)],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"sshd '{self.name}' config rejected: {check.stderr.strip()}")
        self.log_path.write_text("")
        stderr_path = self.workdir / "sshd.stderr"
        with open(stderr_path, "wb") as err:
            # `ip netns exec` execs sshd, so the pid we hold is sshd's own.
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, start_new_session=True)
        registry.record_pid(self.proc.pid, self.name)
        deadline = time.monotonic() + timeout
        want = len(self.listen)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"sshd '{self.name}' exited with {self.proc.returncode}: "
                    f"{stderr_path.read_text()[-2000:]} {self.log_text()[-2000:]}")
            if len(_LISTENING.findall(self.log_text())) >= want:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd '{self.name}' did not start listening within {timeout}s: "
                           f"{self.log_text()[-2000:]}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop this sshd and every process it forked (by pid; nothing else is touched)."""
        if self.proc is None:
            return
        pids = [self.proc.pid] + descendants(self.proc.pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(pid_alive(p) for p in pids[1:]):
            time.sleep(0.05)
        for pid in pids[1:]:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)
        self.proc = None

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    # -- log inspection ------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """A position in the log; pass it to :meth:`counts` to count only what follows."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def counts(self, since: int = 0) -> LogCounts:
        """Logins and TCP connections logged since ``since`` (a :meth:`log_mark`)."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return count_log(f.read().decode("utf-8", "replace"))

    def wait_counts(self, predicate: Callable[[LogCounts], bool], since: int = 0,
                    timeout: float = 5.0) -> LogCounts:
        """Poll the log (bounded) until ``predicate(counts)`` holds; return the last counts.

        sshd's per-connection children write their lines a little after the client moves on,
        so a test that wants a quiet log before taking a mark waits for its own lines first.
        """
        deadline = time.monotonic() + timeout
        counts = self.counts(since)
        while not predicate(counts) and time.monotonic() < deadline:
            time.sleep(0.05)
            counts = self.counts(since)
        return counts
