"""The gateway topology: client -> gw -> targets, and gw -> gw2 -> deep target.

Two implementations share one interface:

* :class:`NetnsTopology` (isolated, needs root): every server lives in a network namespace the
  bed creates; the test process (the client, in its own namespace) reaches only ``gw``. Targets
  sit behind ``gw``; ``deep`` sits behind ``gw2``, which only ``gw`` can reach. A blackhole route
  in the client namespace covers the whole range, so nothing addressed to it can leave the host.
* :class:`LoopbackTopology` (a weaker fallback, NOT isolated): every server listens on a
  127.x.y.z alias in the current namespace, so the client could reach the targets directly.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from tests.testbed import registry
from tests.testbed.keys import KeyStore, public_line
from tests.testbed.sshd import Sshd, pid_alive

N_TARGETS_NETNS = 100  # enough for the 20-host fan-out tests and the 100-host bench
N_TARGETS_LOOPBACK = 30
MAX_LISTEN_PER_SSHD = 15  # OpenSSH accepts at most 16 listen sockets per sshd


@dataclass
class Endpoint:
    """One SSH server address as the client (or a gateway) dials it."""

    name: str  # the Host alias in the bed's ssh_config
    address: str
    port: int
    sshd: Sshd

    @property
    def hostport(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return host if self.port == 22 else f"{host}:{self.port}"

    def known_hosts_name(self) -> str:
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


def _run(cmd: Sequence[str], check: bool = True, input: Optional[str] = None,
         timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=check, input=input, capture_output=True, text=True,
                          timeout=timeout)


class Topology:
    """Common parts: keys, ssh_config, known_hosts, helpers to run OpenSSH's ``ssh``."""

    kind = "abstract"
    isolated = False

    def __init__(self, workdir: Path, keystore: KeyStore, tools: Dict[str, str]) -> None:
        self.workdir = workdir
        self.keystore = keystore
        self.tools = tools
        self.user = _current_user()
        self.identity = keystore.user_key()
        self.authorized_keys = workdir / "authorized_keys"
        self.known_hosts = workdir / "known_hosts"
        self.ssh_config = workdir / "ssh_config"
        self.sshds: List[Sshd] = []
        self.gateway: Endpoint
        self.gateway2: Endpoint
        self.targets: List[Endpoint] = []
        self.deep: Endpoint
        self.client_address: str = ""
        workdir.mkdir(parents=True, exist_ok=True)
        self.authorized_keys.write_text(public_line(self.identity) + "\n")

    # -- building --------------------------------------------------------------
    def _new_sshd(self, role: str, listen, netns: Optional[str] = None,
                  extra: Sequence[str] = ()) -> Sshd:
        sshd = Sshd(role, self.workdir / role, self.tools["sshd"], self.tools["sftp-server"],
                    self.keystore.host_keys(role), self.authorized_keys, listen, netns, extra)
        self.sshds.append(sshd)
        return sshd

    def endpoints(self) -> List[Endpoint]:
        return [self.gateway, self.gateway2, self.deep] + self.targets

    def _write_client_files(self) -> None:
        kh = []
        for ep in self.endpoints():
            for key in ep.sshd.host_keys.values():
                kh.append(f"{ep.known_hosts_name()} {public_line(key)}")
        self.known_hosts.write_text("\n".join(kh) + "\n")
        cfg = []
        for ep in self.endpoints():
            cfg += [f"Host {ep.name}", f"  HostName {ep.address}", f"  Port {ep.port}"]
        cfg += [
            "Host *",
            f"  User {self.user}",
            f"  IdentityFile {self.identity}",
            "  IdentitiesOnly yes",
            "  IdentityAgent none",
            f"  UserKnownHostsFile {self.known_hosts}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            "  BatchMode yes",
            "  ConnectTimeout 10",
            "  LogLevel ERROR",
        ]
        self.ssh_config.write_text("\n".join(cfg) + "\n")

    def start(self) -> Topology:
        try:
            self._build()
            for sshd in self.sshds:
                sshd.start()
            self._write_client_files()
        except BaseException:
            self.teardown()
            raise
        return self

    def _build(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def teardown(self) -> None:
        for sshd in reversed(self.sshds):
            sshd.stop()

    # -- using -----------------------------------------------------------------
    def ssh_command(self, host: str, command: str, jump: Optional[str] = None,
                    options: Sequence[str] = ()) -> List[str]:
        cmd = [self.tools["ssh"], "-F", str(self.ssh_config)]
        for opt in options:
            cmd += ["-o", opt]
        if jump:
            cmd += ["-J", jump]
        return cmd + [host, command]

    def run_ssh(self, host: str, command: str, jump: Optional[str] = None,
                options: Sequence[str] = (), timeout: float = 60) -> subprocess.CompletedProcess:
        """Run OpenSSH's ``ssh`` with the bed's config; never prompts (BatchMode)."""
        return subprocess.run(self.ssh_command(host, command, jump, options),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def target(self, i: int) -> Endpoint:
        return self.targets[i]

    def alive_pids(self) -> List[int]:
        return [s.pid for s in self.sshds if s.pid and pid_alive(s.pid)]


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def tcp_connect_error(address: str, port: int, timeout: float = 3.0) -> Optional[str]:
    """Try a direct TCP connect from this process; return the error text, or None if it worked."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return None
    except OSError as e:
        return f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------------------------------------
# network namespaces
# ---------------------------------------------------------------------------------------------


def _existing_namespaces() -> List[str]:
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _existing_links() -> List[str]:
    out = _run(["ip", "-o", "link", "show"], check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def _used_networks() -> List[ipaddress.IPv4Network]:
    """IPv4 prefixes already in use by addresses or routes (any table) in this namespace."""
    nets = []
    addrs = _run(["ip", "-o", "-4", "addr", "show"], check=False).stdout
    for line in addrs.splitlines():
        for tok in line.split():
            if "/" in tok:
                try:
                    nets.append(ipaddress.ip_network(tok, strict=False))
                except ValueError:
                    pass
                break
    routes = _run(["ip", "-4", "route", "show", "table", "all"], check=False).stdout
    for line in routes.splitlines():
        toks = line.split()
        if not toks:
            continue
        dest = toks[1] if toks[0] in ("blackhole", "unreachable", "prohibit", "local",
                                     "broadcast", "unicast") and len(toks) > 1 else toks[0]
        if dest == "default":
            continue
        try:
            nets.append(ipaddress.ip_network(dest, strict=False))
        except ValueError:
            pass
    return [n for n in nets if isinstance(n, ipaddress.IPv4Network)]


def _random_suffix() -> str:
    return secrets.token_hex(3)


class NetnsTopology(Topology):
    kind = "netns"
    isolated = True

    def __init__(self, workdir: Path, keystore: KeyStore, tools: Dict[str, str],
                 n_targets: int = N_TARGETS_NETNS,
                 suffix_factory: Callable[[], str] = _random_suffix) -> None:
        super().__init__(workdir, keystore, tools)
        self.n_targets = n_targets
        self.suffix_factory = suffix_factory
        self.namespaces: List[str] = []  # only the ones this object created
        self.root_links: List[str] = []
        self.root_routes: List[str] = []
        self.suffix = ""
        self.net: Optional[ipaddress.IPv4Network] = None

    def _pick_names(self) -> None:
        ns_used = set(_existing_namespaces())
        links_used = set(_existing_links())
        for _ in range(50):
            sfx = self.suffix_factory()
            names = [f"fgw-{sfx}-{r}" for r in ("gw", "tgt", "gw2", "deep")]
            links = [f"fg{sfx}{r}" for r in ("c0", "g0", "g1", "t1", "g2", "h2", "h3", "d3")]
            if not (set(names) & ns_used or set(links) & links_used):
                self.suffix = sfx
                return
        raise RuntimeError("could not find free namespace/link names in 50 tries")

    def _pick_network(self) -> None:
        used = _used_networks()
        for _ in range(200):
            octet = 64 + secrets.randbelow(190)
            net = ipaddress.ip_network(f"10.{octet}.0.0/16")
            if not any(net.overlaps(u) for u in used):
                self.net = net
                return
        raise RuntimeError("no free 10.x.0.0/16 range for the test bed")

    def addr(self, third: int, fourth: int) -> str:
        assert self.net is not None
        return str(self.net.network_address + (third << 8) + fourth)

    def _ns(self, role: str) -> str:
        return f"fgw-{self.suffix}-{role}"

    def _link(self, role: str) -> str:
        return f"fg{self.suffix}{role}"

    def _build(self) -> None:
        self._pick_names()
        self._pick_network()
        gw, tgt, gw2, deep = (self._ns(r) for r in ("gw", "tgt", "gw2", "deep"))
        for ns in (gw, tgt, gw2, deep):
            _run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            registry.record_namespace(ns)
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # The gateways must not route between their links: only sshd may bridge them.
        for ns in (gw, gw2):
            _run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=0"])

        c0, g0 = self._link("c0"), self._link("g0")
        _run(["ip", "link", "add", c0, "type", "veth", "peer", "name", g0, "netns", gw])
        self.root_links.append(c0)
        registry.record_link(c0)
        self.client_address = self.addr(0, 1)
        _run(["ip", "addr", "add", f"{self.client_address}/30", "dev", c0])
        _run(["ip", "link", "set", c0, "up"])
        blackhole = f"blackhole {self.net}"
        _run(["ip", "route", "add"] + blackhole.split())
        self.root_routes.append(blackhole)
        registry.record_route(blackhole)
        _run(["ip", "-n", gw, "addr", "add", f"{self.addr(0, 2)}/30", "dev", g0])
        _run(["ip", "-n", gw, "link", "set", g0, "up"])

        self._veth(gw, "g1", self.addr(1, 1), 24, tgt, "t1",
                   [self.addr(1, 10 + i) for i in range(self.n_targets)])
        self._veth(gw, "g2", self.addr(2, 1), 30, gw2, "h2", [self.addr(2, 2)])
        self._veth(gw2, "h3", self.addr(3, 1), 30, deep, "d3", [self.addr(3, 2)])

        gw_sshd = self._new_sshd("gw", [("0.0.0.0", 22)], gw)
        tgt_sshd = self._new_sshd("targets", [("0.0.0.0", 22)], tgt,
                                  # One sshd stands in for many machines: lift its startup limit.
                                  extra=["MaxStartups 400:30:800", "MaxSessions 100"])
        gw2_sshd = self._new_sshd("gw2", [("0.0.0.0", 22)], gw2)
        deep_sshd = self._new_sshd("deep", [("0.0.0.0", 22)], deep)
        self.gateway = Endpoint("gw", self.addr(0, 2), 22, gw_sshd)
        self.gateway2 = Endpoint("gw2", self.addr(2, 2), 22, gw2_sshd)
        self.deep = Endpoint("deep", self.addr(3, 2), 22, deep_sshd)
        self.targets = [Endpoint(f"t{i}", self.addr(1, 10 + i), 22, tgt_sshd)
                        for i in range(self.n_targets)]
        # Where each server sees the previous hop coming from (used by tests).
        self.gw_address_towards_targets = self.addr(1, 1)
        self.gw_address_towards_gw2 = self.addr(2, 1)
        self.gw2_address_towards_deep = self.addr(3, 1)

    def _veth(self, ns_a: str, role_a: str, addr_a: str, plen: int, ns_b: str, role_b: str,
              addrs_b: List[str]) -> None:
        a, b = self._link(role_a), self._link(role_b)
        _run(["ip", "-n", ns_a, "link", "add", a, "type", "veth", "peer", "name", b,
              "netns", ns_b])
        _run(["ip", "-n", ns_a, "addr", "add", f"{addr_a}/{plen}", "dev", a])
        _run(["ip", "-n", ns_a, "link", "set", a, "up"])
        batch = "".join(f"addr add {x}/{plen} dev {b}\n" for x in addrs_b)
        batch += f"link set {b} up\n"
        _run(["ip", "-n", ns_b, "-batch", "-"], input=batch)

    def teardown(self) -> None:
        super().teardown()
        errors = []
        for route in reversed(self.root_routes):
            r = _run(["ip", "route", "del"] + route.split(), check=False)
            if r.returncode != 0:
                errors.append(f"route {route}: {r.stderr.strip()}")
        self.root_routes.clear()
        for ns in reversed(self.namespaces):
            # Only processes of the bed can be inside namespaces it created.
            for pid in _run(["ip", "netns", "pids", ns], check=False).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            r = _run(["ip", "netns", "del", ns], check=False)
            if r.returncode != 0:
                errors.append(f"netns {ns}: {r.stderr.strip()}")
        self.namespaces.clear()
        # Deleting a namespace destroys its veths and so their peers here; check, don't assume.
        for link in self.root_links:
            if link in _existing_links():
                _run(["ip", "link", "del", link], check=False)
        self.root_links.clear()
        if errors:
            raise RuntimeError("test bed teardown: " + "; ".join(errors))

    def leftovers(self, namespaces: Sequence[str], links: Sequence[str],
                  routes: Sequence[str]) -> List[str]:
        """Which of the given names/routes still exist (for the cleanup assertions)."""
        return leftovers(namespaces, links, routes)


def leftovers(namespaces: Sequence[str], links: Sequence[str], routes: Sequence[str]) -> List[str]:
    left = []
    ns_now = set(_existing_namespaces())
    left += [f"netns {n}" for n in namespaces if n in ns_now]
    links_now = set(_existing_links())
    left += [f"link {n}" for n in links if n in links_now]
    routes_now = _run(["ip", "-4", "route", "show", "table", "all"], check=False).stdout
    for r in routes:
        if any(line.split() == r.split() for line in routes_now.splitlines()):
            left.append(f"route {r}")
    return left


# ---------------------------------------------------------------------------------------------
# loopback fallback
# ---------------------------------------------------------------------------------------------


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class LoopbackTopology(Topology):
    """WEAKER FALLBACK: servers on 127.x aliases; the client can reach every target directly."""

    kind = "loopback"
    isolated = False

    def __init__(self, workdir: Path, keystore: KeyStore, tools: Dict[str, str],
                 n_targets: int = N_TARGETS_LOOPBACK) -> None:
        super().__init__(workdir, keystore, tools)
        self.n_targets = n_targets

    def _build(self) -> None:
        base = f"127.{64 + secrets.randbelow(190)}"
        self.client_address = "127.0.0.1"
        gw_addr, gw2_addr, deep_addr = f"{base}.0.2", f"{base}.2.2", f"{base}.3.2"
        gw_port, gw2_port, deep_port = (_free_port(a) for a in (gw_addr, gw2_addr, deep_addr))
        self.gateway = Endpoint("gw", gw_addr, gw_port,
                                self._new_sshd("gw", [(gw_addr, gw_port)]))
        self.gateway2 = Endpoint("gw2", gw2_addr, gw2_port,
                                 self._new_sshd("gw2", [(gw2_addr, gw2_port)]))
        self.deep = Endpoint("deep", deep_addr, deep_port,
                             self._new_sshd("deep", [(deep_addr, deep_port)]))
        addrs = [f"{base}.1.{10 + i}" for i in range(self.n_targets)]
        for chunk_start in range(0, len(addrs), MAX_LISTEN_PER_SSHD):
            chunk = addrs[chunk_start:chunk_start + MAX_LISTEN_PER_SSHD]
            port = _free_port(chunk[0])
            sshd = self._new_sshd(f"targets{chunk_start // MAX_LISTEN_PER_SSHD}",
                                  [(a, port) for a in chunk],
                                  extra=["MaxStartups 400:30:800", "MaxSessions 100"])
            for a in chunk:
                self.targets.append(Endpoint(f"t{len(self.targets)}", a, port, sshd))
        self.gw_address_towards_targets = "127.0.0.1"
        self.gw_address_towards_gw2 = "127.0.0.1"
        self.gw2_address_towards_deep = "127.0.0.1"


def build_topology(workdir: Path, keystore: KeyStore, tools: Dict[str, str],
                   prefer_netns: bool = True) -> Topology:
    """An isolated namespace topology when possible, else the loopback fallback."""
    from tests.testbed.prereq import netns_available

    if prefer_netns and netns_available() and os.environ.get("FG_TESTBED") != "loopback":
        return NetnsTopology(workdir, keystore, tools).start()
    return LoopbackTopology(workdir, keystore, tools).start()
