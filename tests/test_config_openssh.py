"""``SSHConfig.lookup()`` against OpenSSH's own resolution (``ssh -G``).

Every ``tests/ssh_configs/*.conf`` file is a case. Its header comments say what to do:

``# lookup: h1 h2``       the names to resolve (one test per file and name);
``# resolver: yes``       the case needs name resolution (CanonicalizeHostname);
``# env: NAME=value``     environment variables both sides see;
``# expect-error: h|*``   OpenSSH must refuse the name and we must raise.

For each (file, name) the test compares every keyword the file sets, directly or through
Include, with what ``ssh -G -F FILE NAME`` prints. When our result lacks a keyword,
ssh -G must print the same value as it does with an empty configuration (the keyword was
not set for this host). All ssh -G runs happen once, in a thread pool, before the tests.

Include targets live in ``ssh_configs/inc`` and are included with relative paths, which
OpenSSH resolves against ``$HOME/.ssh``: the files are copied to a temporary HOME for ssh
and our parser gets that ``.ssh`` directory as ``include_base``. In-process, HOME and the
user name are pinned to the password database, because ssh takes ``~``, ``%d`` and ``%u``
from there.

Name resolution: when running as root with ``unshare`` available, ssh -G runs in a
private mount namespace with ``ssh_configs/hosts`` over /etc/hosts and "hosts: files" as
nsswitch.conf (no DNS at all); our parser gets a getaddrinfo that serves the same file the
same way (exact, case-insensitive names; trailing dots literal). Without that, the
``resolver`` cases are skipped.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

import paramiko.config
from paramiko.config import SSHConfig
from paramiko.ssh_exception import ConfigParseError, CouldNotCanonicalize

pytestmark = pytest.mark.openssh

CORPUS = Path(__file__).parent / "ssh_configs"
SSH = shutil.which("ssh")
TOKEN_LETTERS = "CdhikLlnpru"
TOKEN_PROBE = "|".join("%" + t for t in TOKEN_LETTERS)


# --------------------------------------------------------------------------------------
# Corpus


@dataclass
class Case:
    name: str
    path: Path
    hosts: List[str]
    resolver: bool = False
    env: Dict[str, str] = field(default_factory=dict)
    errors: List[str] = field(default_factory=list)

    def expects_error(self, host: str) -> bool:
        return "*" in self.errors or host in self.errors


def _read_case(path: Path) -> Case:
    case = Case(path.name, path, [])
    with open(path, encoding="utf-8", newline=None) as fh:
        for line in fh:
            m = re.match(r"#\s*(lookup|resolver|env|expect-error):\s*(.*)", line.strip())
            if not m:
                continue
            what, value = m.group(1), m.group(2).split()
            if what == "lookup":
                case.hosts.extend(value)
            elif what == "resolver":
                case.resolver = value == ["yes"]
            elif what == "env":
                case.env.update(v.split("=", 1) for v in value)  # type: ignore[arg-type]
            else:
                case.errors.extend(value)
    assert case.hosts, f"{path.name}: no '# lookup:' header"
    return case


CASES = {p.name: _read_case(p) for p in sorted(CORPUS.glob("*.conf"))}
PARAMS = [(c.name, h) for c in CASES.values() for h in c.hosts]


# Seeded random configurations, checked the same way (a differential test over the
# grammar: Host/Match/Include nesting, first-wins, lists, proxies, tokens, second pass).
RANDOM_SEED = 20240611
RANDOM_CONFIGS = 100
RANDOM_HOSTS = ["web", "db", "Web", "app.example.com", "10.0.0.5", "x", "a.b.example.com"]
_R_PATTERNS = ["web", "db", "*", "*.example.com", "!web", "w*", "?b", "app*", "10.0.*", "!x",
               "x", "W*", "*.example.org", "mixed.case", "bar.example"]
_R_DIRECTIVES = [
    ["User bob", "User alice", "User root"],
    ["Port 2200", "Port 22", "Port=1234"],
    ["HostName %h.example.com", "HostName bar.example", "HostName BAR.EXAMPLE",
     "HostName 10.9.8.7", "HostName %h", "HostName Mixed.Case"],
    ["IdentityFile ~/.ssh/a", "IdentityFile ~/.ssh/%h_%r", "IdentityFile /k/%C",
     "IdentityFile /k/%n-%p-%k"],
    ["ProxyJump gw", "ProxyJump none", "ProxyJump u@gw2:2222,gw3"],
    ["ProxyCommand none", "ProxyCommand nc %h %p", "ProxyCommand ssh -W %h:%p %r@gw"],
    ["ControlPath ~/.ssh/%C", "ControlPath /tmp/%r@%h:%p", "ControlPath none"],
    ["SendEnv A", "SendEnv B C", "SendEnv -A", "SendEnv D*"],
    ["LocalForward 1 h:1", "LocalForward 2 [::1]:2", "RemoteForward 9001",
     "DynamicForward localhost:1081"],
    ["ForwardAgent yes", "ForwardAgent no", "ForwardAgent true", "Compression yes"],
    ["HostKeyAlias ka", "HostKeyAlias kb"],
    ["ConnectTimeout 5", "ConnectTimeout 1m", "ServerAliveInterval 1h"],
    ["UserKnownHostsFile ~/kh/%h ~/kh2", "UserKnownHostsFile none",
     "CertificateFile /c/%r-%h", "SetEnv A=1", "SetEnv B=2 C=3"],
    ["CanonicalizeHostname yes", "CanonicalizeHostname always", "CanonicalizeMaxDots 0",
     "CanonicalDomains invalid.test"],
    ["RemoteCommand echo %h %C %%", "LocalCommand echo %n %T %u"],
    ["Include inc/random/one.inc", "Include inc/random/*.inc"],
]


def _random_criterion(rnd) -> str:
    neg = "!" if rnd.random() < 0.25 else ""
    kind = rnd.choice(["host", "originalhost", "user", "localuser", "exec", "final",
                       "canonical"])
    if kind in ("final", "canonical"):
        return neg + kind
    if kind == "exec":
        cmd = rnd.choice(["true", "false", "test %h = web", "test %n = db", "test %p = 2200",
                          "test %k = ka", "test %r = bob"])
        return f'{neg}exec "{cmd}"'
    if kind in ("host", "originalhost"):
        pats = rnd.sample(["web", "db", "*.example.com", "!app*", "*", "bar.example"],
                          rnd.randint(1, 2))
        return f"{neg}{kind} {','.join(pats)}"
    if kind == "user":
        return neg + "user " + rnd.choice(["bob", "root", "alice,bob", "*"])
    return neg + "localuser " + rnd.choice(["root", "nobody"])


def _random_config(rnd) -> str:
    def directive() -> str:
        return rnd.choice(rnd.choice(_R_DIRECTIVES))

    lines = [directive() for _ in range(rnd.randint(0, 2))]
    for _ in range(rnd.randint(1, 6)):
        if rnd.random() < 0.5:
            lines.append("Host " + " ".join(rnd.sample(_R_PATTERNS, rnd.randint(1, 3))))
        elif rnd.random() < 0.1:
            lines.append("Match all")
        else:
            crits = [_random_criterion(rnd) for _ in range(rnd.randint(1, 3))]
            lines.append("Match " + " ".join(crits))
        lines.extend("    " + directive() for _ in range(rnd.randint(1, 3)))
    return "\n".join(lines) + "\n"


def _random_cases() -> Dict[str, str]:
    import random

    rnd = random.Random(RANDOM_SEED)
    return {f"random_{i:03d}.conf": _random_config(rnd) for i in range(RANDOM_CONFIGS)}


def test_corpus_size():
    assert len(CASES) >= 40
    assert len(PARAMS) >= 120


# --------------------------------------------------------------------------------------
# Running ssh -G (once, in parallel)

_RUNNER = r"""
import json, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
jobs = json.load(sys.stdin)
def run(job):
    p = subprocess.run(job["argv"], env=job["env"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}
with ThreadPoolExecutor(max_workers=16) as pool:
    results = list(pool.map(run, jobs))
print(json.dumps(results))
"""


@dataclass
class Run:
    rc: int
    out: str
    err: str

    def options(self) -> Dict[str, List[str]]:
        opts: Dict[str, List[str]] = {}
        for line in self.out.splitlines():
            key, _, value = line.partition(" ")
            opts.setdefault(key.lower(), []).append(value)
        return opts


@dataclass
class Oracle:
    home: Path
    cases_dir: Path
    resolver: bool
    runs: Dict[Tuple[str, str, str], Run]
    hosts_table: Dict[str, Tuple[str, str]]


def _namespace_prefix(tmp: Path) -> Optional[List[str]]:
    """Command prefix that gives the runner our hosts file and files-only NSS, or None."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not Path("/etc/nsswitch.conf").exists():
        return None
    nss = tmp / "nsswitch.conf"
    nss.write_text("hosts: files\n")
    script = ('mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf'
              ' && shift 2 && exec "$@"')
    prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
              str(CORPUS / "hosts"), str(nss)]
    probe = subprocess.run(prefix + ["getent", "hosts", "web.corp.example."],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0 or "127.0.0.2" not in probe.stdout:
        return None
    return prefix


def _hosts_table() -> Dict[str, Tuple[str, str]]:
    table: Dict[str, Tuple[str, str]] = {}
    for line in (CORPUS / "hosts").read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            for name in words[1:]:
                table.setdefault(name.lower(), (words[0], words[1]))
    return table


@pytest.fixture(scope="module")
def oracle(tmp_path_factory) -> Oracle:
    if SSH is None:
        pytest.skip("OpenSSH ssh is not installed")
    tmp = tmp_path_factory.mktemp("ssh_g")
    home = tmp / "home"
    shutil.copytree(CORPUS / "inc", home / ".ssh" / "inc")
    (home / ".ssh" / "inc" / "random").mkdir()
    (home / ".ssh" / "inc" / "random" / "one.inc").write_text(
        "User inc-one\nHost db\n    Port 2201\nMatch final\n    IdentityFile /inc-one\n")
    (home / ".ssh" / "inc" / "random" / "two.inc").write_text(
        "SendEnv INC_TWO\nHost *\n    HostKeyAlias inc-two\n")
    cases_dir = tmp / "cases"
    cases_dir.mkdir()
    all_cases = list(CASES.values())
    for case in CASES.values():
        shutil.copy(case.path, cases_dir / case.name)
    for name, text in _random_cases().items():
        (cases_dir / name).write_text(text)
        all_cases.append(Case(name, cases_dir / name, list(RANDOM_HOSTS)))
    for p in list(home.rglob("*")) + list(cases_dir.iterdir()):
        p.chmod(0o755 if p.is_dir() else 0o644)
    (home / ".ssh").chmod(0o700)

    prefix = _namespace_prefix(tmp)
    jobs: List[dict] = []
    keys: List[Tuple[str, str, str]] = []
    baselines = set()
    for case in all_cases:
        if case.resolver and prefix is None:
            continue
        env = dict(os.environ, HOME=str(home), **case.env)
        cfg = str(cases_dir / case.name)
        for host in case.hosts:
            jobs.append({"argv": [SSH, "-G", "-F", cfg, host], "env": env})
            keys.append((case.name, host, "main"))
            jobs.append({"argv": [SSH, "-G", "-F", cfg, "-o", f"ControlPath={TOKEN_PROBE}",
                                  host], "env": env})
            keys.append((case.name, host, "tokens"))
            if host not in baselines:
                baselines.add(host)
                jobs.append({"argv": [SSH, "-G", "-F", "/dev/null", host], "env": env})
                keys.append(("", host, "baseline"))
    argv = (prefix or []) + [sys.executable, "-c", _RUNNER]
    proc = subprocess.run(argv, input=json.dumps(jobs), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = [Run(**r) for r in json.loads(proc.stdout)]
    return Oracle(home, cases_dir, prefix is not None, dict(zip(keys, results)), _hosts_table())


# --------------------------------------------------------------------------------------
# Our side: same HOME/user as ssh's password-database view, same name table


class _FakeSocketModule:
    """``socket`` with a getaddrinfo that serves ssh_configs/hosts like glibc 'files'."""

    def __init__(self, table: Dict[str, Tuple[str, str]]) -> None:
        self._table = table

    def __getattr__(self, name: str):
        return getattr(socket, name)

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        entry = self._table.get(str(host).lower())
        if entry is not None:
            addr, canon = entry
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            if family in (0, socket.AF_UNSPEC, fam):
                sockaddr = (addr, port or 0) if fam == socket.AF_INET else (addr, port or 0, 0, 0)
                cname = canon if flags & socket.AI_CANONNAME else ""
                return [(fam, socket.SOCK_STREAM, 6, cname, sockaddr)]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture
def our_side(oracle, monkeypatch):
    pw = pwd.getpwuid(os.getuid())
    monkeypatch.setenv("HOME", pw.pw_dir)
    monkeypatch.setattr(paramiko.config.getpass, "getuser", lambda: pw.pw_name)
    monkeypatch.setattr(paramiko.config, "socket", _FakeSocketModule(oracle.hosts_table))

    def lookup(case: Case, host: str):
        for k, v in case.env.items():
            monkeypatch.setenv(k, v)
        cfg = SSHConfig.from_path(oracle.cases_dir / case.name,
                                  include_base=str(oracle.home / ".ssh"))
        return cfg.lookup(host)

    return lookup


# --------------------------------------------------------------------------------------
# Normalising both sides to ssh -G's spelling

_ALIASES = {
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "hostbasedkeytypes": "hostbasedacceptedalgorithms",
}
_YESNO = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}
_YESNO_KEYS = {
    "addkeystoagent", "batchmode", "canonicalizefallbacklocal", "canonicalizehostname",
    "checkhostip", "clearallforwardings", "compression", "controlmaster", "controlpersist",
    "enablesshkeysign", "exitonforwardfailure", "forwardagent", "forwardx11",
    "forwardx11trusted", "gatewayports", "hashknownhosts", "identitiesonly",
    "kbdinteractiveauthentication", "passwordauthentication", "permitlocalcommand",
    "proxyusefdpass", "pubkeyauthentication", "requesttty", "stdinnull",
    "stricthostkeychecking", "tcpkeepalive", "updatehostkeys", "verifyhostkeydns",
    "visualhostkey",
}
_TIME_KEYS = {"connecttimeout", "serveraliveinterval", "forwardx11timeout"}
_UPPER_KEYS = {"loglevel", "fingerprinthash", "syslogfacility"}
_SPACE_LIST_KEYS = {"canonicaldomains", "globalknownhostsfile", "userknownhostsfile",
                    "permitremoteopen"}
_ALGORITHM_KEYS = {"ciphers", "macs", "kexalgorithms", "hostkeyalgorithms",
                   "pubkeyacceptedalgorithms", "hostbasedacceptedalgorithms",
                   "casignaturealgorithms"}
# Keys ssh -G prints unexpanded (it expands them only when connecting), with the tokens
# ssh would expand there ("~" = leading tilde) and the ones left for later.
_RAW_PRINTED = {
    "identityfile": ("~" + TOKEN_LETTERS, ""),
    "certificatefile": ("~" + TOKEN_LETTERS, ""),
    "revokedhostkeys": ("~" + TOKEN_LETTERS, ""),
    "knownhostscommand": (TOKEN_LETTERS, "fHIKt%"),
    "localcommand": (TOKEN_LETTERS + "T", ""),
    "proxycommand": ("hknpr", ""),
    "proxyjump": ("hnpr", ""),
}


def _seconds(value: str) -> str:
    units = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return str(sum(int(n) * units[u.lower()] for n, u in re.findall(r"(\d+)([a-zA-Z]?)", value)))


def _expand_like_ssh(raw: str, tokens: Dict[str, str], allowed: str, keep: str,
                     env: bool) -> str:
    if "~" in allowed and (raw == "~" or raw.startswith("~/")):
        raw = tokens["d"] + raw[1:]
    out, i = [], 0
    while i < len(raw):
        if env and raw.startswith("${", i):
            end = raw.index("}", i)
            out.append(os.environ[raw[i + 2 : end]])
            i = end + 1
        elif raw[i] == "%":
            t = raw[i + 1]
            if t in keep:
                out.append("%" + t)
            elif t == "%":
                out.append("%")
            else:
                assert t in allowed, f"token %{t} is not expanded in this key"
                out.append(tokens[t])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _hop(spec: str) -> str:
    if spec.startswith("ssh://"):
        spec = spec[6:].rstrip("/")
    user, _, rest = spec.rpartition("@")
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]")
        port = port[1:]
    else:
        host, _, port = rest.partition(":")
    host = f"[{host}]" if ":" in host else host
    return (f"{user}@" if user else "") + host + (f":{port}" if port else "")


def _endpoint(spec: str) -> str:
    if "/" in spec:
        return spec
    if spec.startswith("["):
        host, _, port = spec[1:].partition("]:")
        return f"[{host}]:{port}"
    if ":" in spec:
        host, port = spec.rsplit(":", 1)
        return f"[{host}]:{port}"
    return spec


def _scalar(key: str, value: str) -> str:
    if key in _YESNO_KEYS:
        value = _YESNO.get(value.lower(), value)
        if key == "stricthostkeychecking" and value == "off":
            value = "no"
        if key in ("controlpersist", "addkeystoagent") and re.fullmatch(r"[\dsmhdwSMHDW]+", value):
            value = "yes" if key == "controlpersist" and value == "0" else _seconds(value)
    if key in _TIME_KEYS:
        value = _seconds(value)
    if key in _UPPER_KEYS:
        value = value.upper()
    if key in _SPACE_LIST_KEYS:
        value = " ".join(value.split())
    if key == "port":
        value = str(int(value))
    return value


def _ours(key: str, value) -> Optional[List[str]]:
    """Our value in ssh -G's lines, or None where ssh -G prints nothing."""
    if value is None:  # ProxyCommand none
        return None
    if key == "controlpath" and value == "none":
        return None  # ssh -G prints nothing for a disabled ControlPath
    if key == "proxyjump":
        return None if value == "none" else [",".join(_hop(h) for h in value.split(","))]
    if key in ("localforward", "remoteforward"):
        out = []
        for fwd in value:
            parts = fwd.split()
            # ssh -G spells the connect side of a dynamic (SOCKS) RemoteForward "[socks]:0"
            connect = _endpoint(parts[1]) if len(parts) > 1 else "[socks]:0"
            out.append(f"{_endpoint(parts[0])} {connect}")
        return out
    if key == "dynamicforward":
        return [_endpoint(v) for v in value]
    if isinstance(value, list):
        return list(value)
    return [_scalar(key, value)]


def _theirs(key: str, lines: List[str], tokens: Dict[str, str],
            opts: Dict[str, List[str]]) -> Optional[List[str]]:
    if key in _RAW_PRINTED:
        allowed, keep = _RAW_PRINTED[key]
        env = key in ("identityfile", "certificatefile", "knownhostscommand")
        tokens = dict(tokens, T="NONE")  # %T: no tunnel device (LocalCommand only)
        lines = [_expand_like_ssh(v, tokens, allowed, keep, env) for v in lines]
    if key == "proxyjump":
        return [",".join(_hop(h) for h in lines[0].split(","))]
    if key == "dynamicforward":
        # ssh 9.2's dump also lists a LocalForward whose connect side is a Unix socket
        # under dynamicforward (its listen side); that line is not a DynamicForward.
        artefacts = {f.split()[0] for f in opts.get("localforward", [])
                     if len(f.split()) > 1 and "/" in f.split()[1]}
        return [v for v in lines if v not in artefacts]
    if key in ("identityfile", "certificatefile", "sendenv", "setenv", "localforward",
               "remoteforward"):
        return lines
    return [_scalar(key, v) for v in lines]


def _keys_set_by(path: Path, inc_base: Path, seen=None) -> Tuple[set, set]:
    """Keywords a file sets (following Include), and the IgnoreUnknown patterns."""
    seen = set() if seen is None else seen
    keys, ignored = set(), set()
    if path in seen:
        return keys, ignored
    seen.add(path)
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s*([A-Za-z0-9]+)\s*=?\s*(.*)", line)
        if not m or line.strip().startswith("#"):
            continue
        key = _ALIASES.get(m.group(1).lower(), m.group(1).lower())
        if key == "include":
            for pat in m.group(2).split("#")[0].split():
                for sub in sorted(Path(p) for p in glob.glob(os.path.join(inc_base, pat))):
                    k, i = _keys_set_by(sub, inc_base, seen)
                    keys |= k
                    ignored |= i
        elif key == "ignoreunknown":
            ignored |= {p.lower() for p in m.group(2).split(",")}
        elif key not in ("host", "match"):
            keys.add(key)
    return keys, ignored


# --------------------------------------------------------------------------------------
# The comparison


@pytest.mark.parametrize("case_name,host", PARAMS, ids=[f"{c}-{h}" for c, h in PARAMS])
def test_lookup_matches_ssh_G(oracle, our_side, case_name, host):
    case = CASES[case_name]
    if case.resolver and not oracle.resolver:
        pytest.skip("needs root and unshare to give ssh -G a private /etc/hosts")
    main = oracle.runs[(case_name, host, "main")]
    if case.expects_error(host):
        assert main.rc != 0, f"ssh -G accepted {host}:\n{main.out}"
        with pytest.raises((ConfigParseError, CouldNotCanonicalize)):
            our_side(case, host)
        return
    assert main.rc == 0, f"ssh -G failed: {main.err}"
    mismatches = _compare(oracle, case_name, host, our_side(case, host))
    assert not mismatches, f"{case_name} / {host}:\n  " + "\n  ".join(mismatches)


def test_random_configs_match_ssh_G(oracle, our_side):
    mismatches = []
    for name in _random_cases():
        case = Case(name, oracle.cases_dir / name, list(RANDOM_HOSTS))
        for host in RANDOM_HOSTS:
            main = oracle.runs[(name, host, "main")]
            try:
                ours = our_side(case, host)
            except (ConfigParseError, CouldNotCanonicalize) as exc:
                if main.rc == 0:
                    mismatches.append(f"{name} / {host}: we raised {exc!r}, ssh -G did not")
                continue
            if main.rc != 0:
                mismatches.append(f"{name} / {host}: ssh -G failed ({main.err.strip()}), "
                                  "we did not")
                continue
            mismatches += [f"{name} / {host}: {m}"
                           for m in _compare(oracle, name, host, ours)]
    assert not mismatches, "\n".join(mismatches[:40])


def _compare(oracle: Oracle, case_name: str, host: str, ours) -> List[str]:
    theirs = oracle.runs[(case_name, host, "main")].options()
    probe = oracle.runs[(case_name, host, "tokens")].options()["controlpath"][0]
    tokens = dict(zip(TOKEN_LETTERS, probe.split("|")))
    baseline = oracle.runs[("", host, "baseline")].options()

    keys, ignored = _keys_set_by(oracle.cases_dir / case_name, oracle.home / ".ssh")
    keys.add("hostname")
    mismatches = []
    for key in sorted(keys):
        if key == "ignoreunknown":
            continue  # ssh -G does not print it
        if key in ignored:
            continue  # ssh skips keywords named by IgnoreUnknown; we keep them verbatim
        if key in _ALGORITHM_KEYS and str(ours.get(key, ""))[:1] in ("+", "-", "^"):
            continue  # ssh -G prints the resulting full algorithm list, not the edit
        want = _theirs(key, theirs[key], tokens, theirs) if key in theirs else None
        if key not in ours:
            if theirs.get(key) != baseline.get(key):
                mismatches.append(f"{key}: we have nothing, ssh -G has {theirs.get(key)}")
            continue
        got = _ours(key, ours[key])
        if got != want:
            mismatches.append(f"{key}: ours {got!r} (raw {ours[key]!r}) != ssh -G {want!r}")
    return mismatches
