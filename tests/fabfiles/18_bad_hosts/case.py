"""Unreachable hosts behind the gateway (nothing listens on port 2 of a target): abort by
default, --skip-bad-hosts warns and goes on, execute() results hold the NetworkError,
use_exceptions_for['network'] raises it; env.abort_exception turns aborts into exceptions."""

GW = ["-g", "{gw}", "-i", "{key}"]
BAD = "root@{a1}:2"

CASE = {
    "runs": [
        {
            "name": "bad-host-aborts",
            "argv": GW + ["-H", BAD + ",{t0}", "ping"],
            "exit": 1,
            "stdout": ["[" + BAD + "] Executing task 'ping'"],
            "stderr": ["re:^Fatal error: ", "Aborting."],
            "not_stdout": ["in:[{t0}] Executing task", "in:out: alive"],
            "timeout": 60,
        },
        {
            # The bastion itself is down: a clear error, no hang, nothing runs.
            "name": "dead-gateway",
            "argv": ["-g", "root@{gw_addr}:2", "-i", "{key}", "-H", "{t0}", "ping"],
            "exit": 1,
            "stdout": ["[{t0}] Executing task 'ping'"],
            "stderr": ["re:^Fatal error: .*{gw_addr}", "Aborting."],
            "not_stdout": ["in:out: alive"],
            "logins": {"gw": 0, "targets": 0},
        },
        {
            "name": "skip-bad-hosts",
            "argv": GW + ["--skip-bad-hosts", "-H", BAD + ",{t0}", "ping"],
            "stdout": ["[" + BAD + "] Executing task 'ping'", "[{t0}] Executing task 'ping'",
                       "[{t0}] out: alive", "Done."],
            "stderr": ["re:^Warning: "],
            "not_stderr": ["in:Fatal error"],
        },
        {
            "name": "execute-results-hold-errors",
            "argv": GW + ["--set", "check_hosts={t0};" + BAD + ";{t1}", "health_report"],
            "stdout": ["[{t0}] out: alive", "[{t1}] out: alive",
                       "{t0}: up", BAD + ": down", "{t1}: up", "Done."],
        },
        {
            "name": "network-exceptions",
            "argv": GW + ["--set", "bad_host=" + BAD, "strict_probe"],
            "stdout": ["caught NetworkError for " + BAD, "has message: True", "Done."],
            "not_stderr": ["in:Fatal error"],
        },
        {
            "name": "abort-exception",
            "argv": GW + ["-H", "{t0}", "guarded"],
            "stdout": ["[{t0}] caught: run() received nonzero return code 7 while executing!",
                       "[{t0}] out: carried on", "Done."],
            "stderr": ["Fatal error: run() received nonzero return code 7 while executing!"],
        },
    ],
}
