"""open_shell(): an interactive pty shell fed a command line; the task continues after the
shell exits."""

CASE = {
    "runs": [
        {
            "name": "command-line",
            "argv": ["-g", "{gw}", "-i", "{key}", "--set", "workdir={tmp}", "-H", "{t0}",
                     "debug_session"],
            "stdout": ["[{t0}] Executing task 'debug_session'", "re:in-work-42",
                       "[{t0}] shell closed", "Done."],
            "timeout": 40,
        },
    ],
}
