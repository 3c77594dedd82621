"""ssh_config integration: aliases resolved through HostName/Port/User/IdentityFile of the
bed's config, -g naming an alias, a comma-separated -g chain (gw,gw2) to a host behind the
second gateway, a host's own ProxyJump winning over -g (with a warning), --show-route."""

CFG = ["--ssh-config-path", "{ssh_config}"]


def own_proxyjump(ctx):
    """t7 says in its own stanza how to get there; -g points elsewhere (a dead end)."""
    text = "Host t7\n  ProxyJump gw\n\n" + ctx.bed.ssh_config.read_text()
    (ctx.tmp / "ssh_config").write_text(text)


CASE = {
    "runs": [
        {
            "name": "aliases-through-aliased-gateway",
            "argv": CFG + ["-g", "gw", "-R", "app", "hostinfo"],
            "stdout": [
                "[t5] Executing task 'hostinfo'",
                "[t5] out: landed on {a5}",
                "[t6] Executing task 'hostinfo'",
                "[t6] out: landed on {a6}",
                "Done.",
                "re:^Disconnecting from (t5|{d5})\\.\\.\\. done\\.$",
                "re:^Disconnecting from (t6|{d6})\\.\\.\\. done\\.$",
            ],
            "logins": {"gw": 1, "targets": 2},
        },
        {
            "name": "two-hop-chain",
            "argv": CFG + ["-g", "gw,gw2", "-R", "vault", "hostinfo"],
            "stdout": ["[deep] Executing task 'hostinfo'", "[deep] out: landed on {deep_addr}",
                       "Done."],
            "logins": {"gw": 1, "gw2": 1, "deep": 1},
        },
        {
            "name": "chain-of-host-strings",
            "argv": ["-i", "{key}", "-g", "{gw},{gw2}", "-H", "{deep}", "hostinfo"],
            "stdout": ["[{deep}] out: landed on {deep_addr}", "Done."],
            "logins": {"gw": 1, "gw2": 1, "deep": 1},
        },
        {
            "name": "own-proxyjump-beats-gateway",
            "setup": "own_proxyjump",
            "argv": ["--ssh-config-path", "{tmp}/ssh_config", "-g", "gw,gw2", "-H", "t7",
                     "hostinfo"],
            "stdout": ["[t7] out: landed on {a7}", "Done."],
            "stderr": ["re:^Warning: .*"],
            "logins": {"gw": 1, "gw2": 0},
        },
        {
            "name": "show-route",
            "argv": CFG + ["-g", "gw,gw2", "--show-route", "deep"],
            "stdout": ["re:gw", "re:gw2", "re:deep"],
            "logins": {"gw": 0, "gw2": 0, "deep": 0},
        },
    ],
}
