"""fabric.contrib.files: exists, sed (with backup), comment, uncomment, append (the same line
twice is written once; lists; shell metacharacters), contains (case-insensitive), is_link,
first."""

ORIG = """# test sshd config
Port 22
PermitRootLogin yes
X11Forwarding yes
#UseDNS no
"""

HARDENED = """# test sshd config
Port 22
PermitRootLogin no
#X11Forwarding yes
UseDNS no
ClientAliveInterval 60
MaxAuthTries 3
LoginGraceTime 30
Banner "$HOME/banner" # it's quoted
"""

CASE = {
    "runs": [
        {
            "name": "seed-and-harden",
            "files": {"{tmp}/sshd_config.orig": ORIG},
            "argv": ["-g", "{gw}", "-i", "{key}", "--set", "workdir={tmp}", "-H", "{t0}",
                     "seed", "harden"],
            "stdout": [
                "[{t0}] Executing task 'seed'",
                "[{t0}] Executing task 'harden'",
                "[{t0}] root login disabled: True",
                "[{t0}] case-insensitive: True",
                "[{t0}] backup kept: True",
                "[{t0}] missing: False",
                "[{t0}] link: True",
                "[{t0}] not a link: False",
                "[{t0}] first: {tmp}/{a0}/sshd_config",
                "Done.",
            ],
            "post": [
                {"path": "{tmp}/{a0}/sshd_config", "content": HARDENED},
                # The backup is the state before the last sed-based edit (uncomment).
                {"path": "{tmp}/{a0}/sshd_config.bak", "contains": ["#UseDNS no"],
                 "lacks": ["ClientAliveInterval"]},
                {"path": "{tmp}/sshd_config.orig", "content": ORIG},
            ],
        },
        {
            "name": "harden-without-seed-aborts",
            "argv": ["-g", "{gw}", "-i", "{key}", "--set", "workdir={tmp}", "-H", "{t2}",
                     "harden"],
            "exit": 1,
            "stderr": ["Fatal error: {tmp}/{a2}/sshd_config is missing, run seed first"],
        },
    ],
}
