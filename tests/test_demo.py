"""The README's first command, ``python -m fabric.demo``, run for real."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import tempfile

from fabric.demo.server import LocalSSHServer, generate_host_key


def test_demo_runs_through_the_bastion_and_cleans_up():
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "fabric-gateway-demo-*")))
    r = subprocess.run([sys.executable, "-m", "fabric.demo"], capture_output=True, text=True,
                       timeout=180, stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "Direct connections to web1/web2 are refused" in out and "-> confirmed" in out
    assert re.search(r"1\. gateway \S+@127\.0\.0\.1:\d+\s+\[env\.gateway", out)
    assert out.count("out: release 1.0: built by the fabric-gateway demo") == 4
    assert "out: deployed on web1 as" in out and "out: deployed on web2 as" in out
    assert "-> serial run: exit 0; logins: bastion 1, web1 1, web2 1" in out
    assert "-> parallel run: exit 0; logins: bastion 1, web1 1, web2 1" in out
    assert out.count("uploaded intact") == 2
    assert "Demo finished: every step behaved as expected." in out
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "fabric-gateway-demo-*")))
    assert after == before, "the demo left its temporary directory behind"


def test_only_from_refuses_other_peers_and_forward_source_is_used(tmp_path):
    import socket

    import paramiko

    client_key = paramiko.Ed25519Key.generate()
    gw = LocalSSHServer(host_key=generate_host_key(), authorized_keys=[client_key],
                        cwd=str(tmp_path), name="gw", forward_source="127.0.0.2")
    target = LocalSSHServer(host_key=generate_host_key(), authorized_keys=[client_key],
                            cwd=str(tmp_path), name="t", allow_forwarding=False,
                            only_from=["127.0.0.2"])
    gw.start()
    target.start()
    try:
        with socket.create_connection(("127.0.0.1", target.port), timeout=5) as s:
            s.settimeout(5)
            assert s.recv(64) == b""  # closed before any banner
        assert target.refused == 1
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect("127.0.0.1", gw.port, username="u", pkey=client_key,
                       look_for_keys=False, allow_agent=False, timeout=10)
        chan = client.get_transport().open_channel(
            "direct-tcpip", ("127.0.0.1", target.port), ("127.0.0.1", 0), timeout=10)
        inner = paramiko.SSHClient()
        inner.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        inner.connect("127.0.0.1", target.port, username="u", pkey=client_key, sock=chan,
                      look_for_keys=False, allow_agent=False, timeout=10)
        _, stdout, _ = inner.exec_command("echo via-gateway", timeout=10)
        assert stdout.read() == b"via-gateway\n"
        assert target.logins == 1 and target.refused == 1
        inner.close()
        client.close()
    finally:
        target.stop()
        gw.stop()
