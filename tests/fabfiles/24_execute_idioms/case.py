"""execute() as a library call: results per host, task names as strings with host=,
callables with no hosts ('<local-only>'), @with_settings on tasks and helpers, and the old
settings(host_string=...) idiom; host_string is restored afterwards."""

CASE = {
    "runs": [
        {
            "name": "orchestrate",
            "argv": ["-g", "{gw}", "-i", "{key}", "--set", "workdir={tmp},fleet={t0};{t1}",
                     "orchestrate"],
            "stdout": [
                "[{t0}] Executing task 'get_load'",
                "[{t0}] out: 0.42",
                "[{t1}] Executing task 'get_load'",
                "load {t0} = 0.42",
                "load {t1} = 0.42",
                "[{t0}] Executing task 'flaky'",
                "[{t0}] flaky failed=True",
                "[{t1}] run: mkdir -p {tmp}/scratch",
                "[{t1}] out: cleaned",
                "[{t1}] cleanup said cleaned",
                "host_string afterwards: None",
                "local result: {'<local-only>': 'computed locally'}",
                "Done.",
            ],
            "stderr": ["Warning: run() received nonzero return code 1 while executing 'exit 1'!"],
            "not_stdout": ["[{t0}] run: exit 1"],
            "logins": {"gw": 1, "targets": 2},
        },
    ],
}
