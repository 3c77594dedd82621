"""Shared fixtures: the real-OpenSSH test bed and the in-memory socket pair."""

from __future__ import annotations

import pytest

from tests.support.memsock import socket_pair
from tests.testbed import registry
from tests.testbed.keys import KeyStore
from tests.testbed.prereq import find_openssh, require
from tests.testbed.sshd import pid_alive
from tests.testbed.topology import build_topology, leftovers

pytest_plugins = ["tests.support.fabric_env", "tests.support.fabric_server"]


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture
def mem_socket_pair():
    """``(client_end, server_end)`` of an in-memory socket pair (no ``fileno``)."""
    a, b = socket_pair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture(scope="session")
def openssh_tools():
    tools = find_openssh()
    missing = [k for k in ("sshd", "sftp-server", "ssh", "ssh-keygen") if not tools[k]]
    require(not missing, f"OpenSSH programs not installed: {', '.join(missing)} "
                         "(Debian: apt-get install openssh-server openssh-client)")
    return tools


@pytest.fixture(scope="session")
def keystore(tmp_path_factory, openssh_tools):
    return KeyStore(tmp_path_factory.mktemp("keys"), openssh_tools["ssh-keygen"])


@pytest.fixture(scope="session")
def testbed(tmp_path_factory, keystore, openssh_tools):
    """The session's gateway topology (isolated netns when root, else loopback fallback)."""
    topo = build_topology(tmp_path_factory.mktemp("testbed"), keystore, openssh_tools)
    yield topo
    topo.teardown()


@pytest.fixture(scope="session")
def auth_bed(tmp_path_factory, keystore, openssh_tools):
    """sshd on 127.0.0.1 with password/keyboard-interactive (PAM) for a session user, user
    certificates and a host certificate (needs root to create the user)."""
    import os

    from tests.testbed.authbed import AuthBed

    require(os.geteuid() == 0, "the auth test bed creates a system user: needs root")
    bed = AuthBed(tmp_path_factory.mktemp("authbed"), keystore, openssh_tools).start()
    yield bed
    bed.teardown()


@pytest.fixture
def isolated_testbed(testbed):
    """The topology, only if the targets really are unreachable except through the gateway."""
    require(testbed.isolated,
            "network namespaces unavailable (needs root and iproute2); the loopback "
            "fallback is not isolated")
    return testbed


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if anything the bed created is still there once fixtures are torn down."""
    snap = registry.snapshot()
    alive = [f"pid {pid} ({what})" for pid, what in snap["pids"] if pid_alive(pid)]
    users = [f"user {u}" for u in snap["users"] if _user_exists(u)]
    if not (snap["namespaces"] or snap["links"] or snap["routes"] or alive or users):
        return
    left = alive + users + leftovers(snap["namespaces"], snap["links"],
                                     [r for _, r in snap["routes"]])
    if left:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = "test bed left behind: " + ", ".join(left)
        if tr:
            tr.write_line(msg, red=True)
        session.exitstatus = 1
