"""Command timeouts: run(timeout=) and -T raise CommandTimeout, which a task can catch; the
connection stays usable afterwards."""

GW = ["-g", "{gw}", "-i", "{key}", "-H", "{t0}"]

CASE = {
    "runs": [
        {
            "name": "per-call",
            "argv": GW + ["slow_health"],
            "stdout": ["[{t0}] health check timed out after 1s",
                       "[{t0}] out: connection still usable", "Done."],
            "not_stdout": ["in:out: too-late"],
            "timeout": 30,
        },
        {
            "name": "command-timeout-option",
            "argv": GW + ["-T", "1", "global_timeout"],
            "stdout": ["[{t0}] timed out by -T", "Done."],
            "not_stdout": ["in:out: too-late"],
            "timeout": 30,
        },
    ],
}
