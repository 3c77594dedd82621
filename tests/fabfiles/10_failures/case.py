"""Failing commands and exit codes: abort on nonzero return (and the remaining hosts are not
touched), -w, settings(warn_only), quiet=/quiet(), ok_ret_codes, return-value attributes,
combine_stderr=False, abort() and an uncaught exception."""

GW = ["-g", "{gw}", "-i", "{key}"]

CASE = {
    "runs": [
        {
            "name": "abort-on-failure",
            "argv": GW + ["-H", "{t0},{t1}", "check_services"],
            "exit": 1,
            "stdout": [
                "[{t0}] Executing task 'check_services'",
                "[{t0}] out: checking",
                "[{t0}] run: exit 3",
                "Disconnecting from {d0}... done.",
            ],
            "stderr": [
                "Fatal error: run() received nonzero return code 3 while executing!",
                "",
                "Requested: exit 3",
                "Executed: /bin/bash -l -c \"exit 3\"",
                "",
                "Aborting.",
            ],
            "not_stdout": ["in:after-failure", "in:[{t1}] Executing", "Done."],
            "logins": {"gw": 1, "targets": 1},
        },
        {
            "name": "warn-only-flag",
            "argv": GW + ["-w", "-H", "{t0},{t1}", "check_services"],
            "stdout": [
                "[{t0}] out: after-failure",
                "[{t1}] Executing task 'check_services'",
                "[{t1}] out: after-failure",
                "Done.",
            ],
            "stderr": ["Warning: run() received nonzero return code 3 while executing 'exit 3'!",
                       "Warning: run() received nonzero return code 3 while executing 'exit 3'!"],
            "not_stderr": ["in:Fatal error", "Aborting.", "in:Requested:", "in:Executed:"],
        },
        {
            "name": "tolerant-task",
            "argv": GW + ["-H", "{t2}", "tolerant"],
            "stdout": [
                "[{t2}] failed=True rc=2 succeeded=False",
                "[{t2}] quiet rc=2",
                "[{t2}] grep rc=1 failed=False",
                "[{t2}] quiet stdout=hidden-text rc=5",
                "[{t2}] sudo: exit 6",
                "[{t2}] sudo rc=6",
                "[{t2}] split stdout='to-out' stderr='to-err'",
                "[{t2}] lines=['a', 'b'] command=\"printf 'a\\\\nb\\\\n'\"",
                "Done.",
            ],
            "stderr": [
                "Warning: run() received nonzero return code 2 while executing 'exit 2'!",
                "Warning: sudo() received nonzero return code 6 while executing 'exit 6'!",
            ],
            "not_stdout": ["in:ls /nonexistent", "in:hidden-text; exit 5", "in:out: hidden-text"],
            "not_stderr": ["in:return code 5", "in:return code 1 ", "in:nonexistent-dir"],
        },
        {
            # 'everything' covers warnings, running, user, output, exceptions: not aborts.
            "name": "hide-everything-still-shows-aborts",
            "argv": GW + ["--hide", "everything", "-H", "{t0}", "check_services"],
            "exit": 1,
            "stderr": ["Fatal error: run() received nonzero return code 3 while executing!",
                       "Aborting."],
            "not_stdout": ["in:Executing task", "in:out: checking"],
        },
        {
            "name": "explicit-abort",
            "argv": GW + ["-H", "{t0}", "explode"],
            "exit": 1,
            "stderr": ["Fatal error: database orders is not reachable", "", "Aborting."],
        },
        {
            "name": "uncaught-exception",
            "argv": GW + ["-H", "{t0}", "crash"],
            "exit": 1,
            "stdout": ["[{t0}] Executing task 'crash'"],
            "stderr": ["re:^Traceback", "RuntimeError: unexpected crash in task"],
            "not_stdout": ["Done."],
        },
    ],
}
