"""Host keys: --system-known-hosts with -r (strict) succeeds; -r without any known hosts
fails before logging in; a changed key for a target in ~/.ssh/known_hosts is refused; -D
ignores ~/.ssh/known_hosts again."""

from tests.testbed.keys import public_line

GW = ["-g", "{gw}", "-i", "{key}"]


def _write(ctx, lines):
    ssh = ctx.home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "known_hosts").write_text("\n".join(lines) + "\n")


def wrong_target_key(ctx):
    """The gateway is known correctly; t0's entry carries the gateway's keys instead."""
    bed = ctx.bed
    gw, t0 = bed.gateway, bed.targets[0]
    lines = [f"{gw.known_hosts_name()} {public_line(k)}" for k in gw.sshd.host_keys.values()]
    lines += [f"{t0.known_hosts_name()} {public_line(k)}" for k in gw.sshd.host_keys.values()]
    _write(ctx, lines)


CASE = {
    "runs": [
        {
            "name": "strict-with-system-known-hosts",
            "argv": GW + ["--system-known-hosts", "{known_hosts}", "-r", "-H", "{t0}",
                          "fingerprint_check"],
            "stdout": ["[{t0}] out: key-accepted", "Done."],
            "logins": {"gw": 1, "targets": 1},
        },
        {
            "name": "strict-without-known-hosts",
            "argv": GW + ["-r", "-H", "{t0}", "fingerprint_check"],
            "exit": 1,
            "stderr": ["re:^Fatal error: .*(known_hosts|[Uu]nknown)", "Aborting."],
            "not_stdout": ["in:out: key-accepted"],
            "logins": {"gw": 0, "targets": 0},
        },
        {
            "name": "changed-target-key",
            "setup": "wrong_target_key",
            "argv": GW + ["-H", "{t0}", "fingerprint_check"],
            "exit": 1,
            "stderr": ["re:^Fatal error: .*{a0}.*", "Aborting."],
            "not_stdout": ["in:out: key-accepted"],
            "logins": {"gw": 1, "targets": 0},
        },
        {
            "name": "disable-known-hosts",
            "setup": "wrong_target_key",
            "argv": GW + ["-D", "-H", "{t0}", "fingerprint_check"],
            "stdout": ["[{t0}] out: key-accepted", "Done."],
        },
    ],
}
