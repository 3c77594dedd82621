"""How host lists are built: callable and dict roledefs, -R with -H (hosts first), -x and
per-task exclude_hosts/roles, unknown roles, unknown tasks (nothing runs) and
--skip-unknown-tasks."""

GW = ["-g", "{gw}", "-i", "{key}"]
ENV = {"APP_HOSTS": "{t0},{t1}", "CACHE_HOSTS": "{t2}"}

CASE = {
    "runs": [
        {
            "name": "two-roles",
            "env": ENV,
            "argv": GW + ["-R", "app,cache", "ping"],
            "stdout": [
                "[{t0}] Executing task 'ping'",
                "[{t0}] out: pong-42",
                "[{t1}] Executing task 'ping'",
                "[{t2}] Executing task 'ping'",
                "[{t2}] out: pong-42",
                "Done.",
            ],
            "logins": {"gw": 1, "targets": 3},
        },
        {
            "name": "hosts-before-roles-and-exclude",
            "env": ENV,
            "argv": GW + ["-H", "{t3},{t0}", "-R", "app,cache", "-x", "{t1}", "ping"],
            "stdout": [
                "[{t3}] Executing task 'ping'",
                "[{t0}] Executing task 'ping'",
                "[{t2}] Executing task 'ping'",
                "Done.",
            ],
            "count_stdout": {"re:Executing task": 3},
        },
        {
            "name": "per-task-roles-and-exclude",
            "env": ENV,
            "argv": GW + ["ping:roles=app;cache,exclude_hosts={t0};{t2}"],
            "stdout": ["[{t1}] Executing task 'ping'", "Done."],
            "count_stdout": {"re:Executing task": 1},
        },
        {
            "name": "unknown-role",
            "env": ENV,
            "argv": GW + ["-R", "app,nosuchrole", "ping"],
            "exit": 1,
            "stderr": ["in:nosuchrole"],
            "not_stdout": ["in:Executing task", "in:out: pong"],
        },
        {
            "name": "unknown-tasks-run-nothing",
            "env": ENV,
            "argv": GW + ["-H", "{t0}", "ping", "nosuch", "other"],
            "exit": 1,
            "stderr": ["Warning: Command(s) not found:", "    nosuch", "    other"],
            "stdout": ["Available commands:", "    inventory  Show how the host list was "
                       "assembled (runs locally).", "    ping"],
            "not_stdout": ["in:Executing task"],
            "logins": {"gw": 0},
        },
        {
            "name": "skip-unknown-tasks",
            "env": ENV,
            "argv": GW + ["--skip-unknown-tasks", "-H", "{t0}", "nosuch", "ping"],
            "stdout": ["[{t0}] Executing task 'ping'", "[{t0}] out: pong-42", "Done."],
            "stderr": ["in:nosuch"],
        },
        {
            "name": "effective-hosts-and-roles",
            "env": ENV,
            "argv": ["-R", "cache", "-H", "{t5}", "inventory"],
            "stdout": ["[{t5}] Executing task 'inventory'", "[{t5}] all_hosts={t5},{t2}",
                       "[{t2}] roles=cache", "Done."],
        },
    ],
}
