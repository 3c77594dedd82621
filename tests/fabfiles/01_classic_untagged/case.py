"""Classic (untagged) fabfile: every public function is a task, helpers with _ are not."""

GW = ["-g", "{gw}", "-i", "{key}"]

CASE = {
    "runs": [
        {
            "name": "list",
            "argv": ["--list"],
            "stdout": [
                "Housekeeping for the ops team.",
                "",
                "Available commands:",
                "",
                "    diskfree",
                "    host_type     Print the kernel name of each host.",
                "    uptime_local",
                "    whoami_check  Check which account we log in as.",
            ],
            "not_stdout": ["in:_banner", "re:^\\s+(run|local|abort|puts|env|os)\\b"],
        },
        {
            "name": "two-hosts-two-tasks",
            "argv": GW + ["-H", "{t0},{t1}", "host_type", "whoami_check"],
            "stdout": [
                "[{t0}] Executing task 'host_type'",
                "[{t0}] run: uname -s",
                "[{t0}] out: Linux",
                "[{t1}] Executing task 'host_type'",
                "[{t1}] run: uname -s",
                "[{t1}] out: Linux",
                "[{t0}] Executing task 'whoami_check'",
                "[{t0}] == identity ==",
                "[{t0}] run: whoami",
                "[{t0}] out: root",
                "[{t0}] connected as root to {a0} port {t0_port}",
                "[{t1}] Executing task 'whoami_check'",
                "[{t1}] connected as root to {a1} port {t1_port}",
                "",
                "Done.",
                "Disconnecting from {d0}... done.",
                "Disconnecting from {d1}... done.",
                "Disconnecting from {gw_d}... done.",
            ],
            "stderr": [],
            "not_stderr": ["re:\\S"],
            # Two targets, one gateway: the gateway connection is shared, not re-made.
            "logins": {"gw": 1, "targets": 2},
        },
        {
            "name": "bare-host-with-user-option",
            "argv": GW + ["-u", "root", "-H", "{hp2}", "diskfree"],
            "stdout": [
                "[{hp2}] Executing task 'diskfree'",
                "[{hp2}] run: df -P / | tail -n +2 | wc -l",
                "[{hp2}] out: 1",
                "Done.",
            ],
            "logins": {"gw": 1, "targets": 1},
        },
        {
            "name": "display",
            "argv": ["-d", "whoami_check"],
            "stdout": [
                "Displaying detailed information for task 'whoami_check':",
                "",
                "    Check which account we log in as.",
                "re:^\\s+Arguments:$",
            ],
        },
        {
            # No host anywhere: run() asks for one (needs_host), answered from stdin.
            "name": "asks-for-a-host",
            "argv": GW + ["whoami_check"],
            "stdin": "{t3}\n",
            "stdout": [
                # The piped answer is not echoed: the next output shares the prompt's line.
                "No hosts found. Please specify (single) host string for connection: "
                "[{t3}] run: whoami",
                "[{t3}] out: root",
                "Done.",
            ],
        },
        {
            # Run from a subdirectory: fab looks for the fabfile in the parent directories.
            "name": "fabfile-found-from-subdirectory",
            "cwd": "{case}/docs",
            "argv": ["--shortlist"],
            "stdout": ["diskfree", "host_type", "uptime_local", "whoami_check"],
        },
        {
            "name": "missing-fabfile",
            "cwd": "{tmp}",
            "argv": ["-f", "nosuchfile.py", "--list"],
            "exit": 1,
            "stderr": ["Fatal error: Couldn't find any fabfiles!", "",
                       "Remember that -f can be used to specify fabfile path, and use -h for help.",
                       "", "Aborting."],
        },
        {
            "name": "local-only-task-makes-no-connection",
            "argv": GW + ["uptime_local"],
            "stdout": ["re:^\\[localhost\\] local: echo local pid \\$\\$ > /dev/null$", "Done."],
            "not_stdout": ["re:^Disconnecting"],
            "logins": {"gw": 0},
        },
    ],
}
