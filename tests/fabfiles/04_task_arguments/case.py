"""Command-line task arguments (positional, keyword, escaped ',' and '='), per-task host=,
hosts=, a task that sets env.hosts for later ones, @hosts precedence, dedupe, and `--`."""

GW = ["-g", "{gw}", "-i", "{key}"]

CASE = {
    "runs": [
        {
            "name": "positional-keyword-escaped",
            "argv": GW + ["-H", "{t0}", "greet:World\\, friends,greeting=hi,punct=?",
                          "greet:ops"],
            "stdout": [
                "[{t0}] Executing task 'greet'",
                "[{t0}] run: echo 'hi, World, friends?'",
                "[{t0}] out: hi, World, friends?",
                "[{t0}] Executing task 'greet'",
                "[{t0}] out: hello, ops!",
                "Done.",
            ],
        },
        {
            "name": "local-task-args-and-set",
            "argv": ["--set", "verbose,empty=", "showargs:a,b,c=3,d=x\\=y"],
            "stdout": [
                "args=('a', 'b')",
                "kwargs=[('c', '3'), ('d', 'x=y')]",
                "verbose=True empty=''",
                "Done.",
            ],
            "not_stdout": ["in:Executing task"],
        },
        {
            "name": "task-sets-env-hosts",
            "argv": GW + ["--set", "staging_hosts={t0};{t1}", "staging", "greet:team"],
            "stdout": [
                "[{t0}] Executing task 'greet'",
                "[{t0}] out: hello, team!",
                "[{t1}] Executing task 'greet'",
                "[{t1}] out: hello, team!",
                "Done.",
            ],
            "count_stdout": {"re:Executing task": 2},
            "logins": {"gw": 1, "targets": 2},
        },
        {
            "name": "per-task-host-and-hosts",
            "argv": GW + ["-H", "{t0}", "where:host={t4}", "where:hosts={t5};{t6}", "where"],
            "stdout": [
                "[{t4}] Executing task 'where'",
                "[{t4}] out: {a4}",
                "[{t5}] Executing task 'where'",
                "[{t5}] out: {a5}",
                "[{t6}] Executing task 'where'",
                "[{t6}] out: {a6}",
                "[{t0}] Executing task 'where'",
                "[{t0}] out: {a0}",
                "Done.",
            ],
            "count_stdout": {"re:Executing task": 4},
            "logins": {"gw": 1, "targets": 4},
        },
        {
            "name": "decorator-beats-global-hosts",
            "env": {"PINNED_HOST": "{t7}"},
            "argv": GW + ["-H", "{t0}", "pinned", "pinned:host={t8}"],
            "stdout": [
                "[{t7}] Executing task 'pinned'",
                "re:^\\[{t7}\\] out: pinned conn=\\S+ \\d+ {a7} \\d+$",
                "[{t8}] Executing task 'pinned'",
                "re:^\\[{t8}\\] out: pinned conn=\\S+ \\d+ {a8} \\d+$",
                "Done.",
            ],
            "not_stdout": ["in:[{t0}]"],
        },
        {
            "name": "duplicate-hosts-run-once",
            "argv": GW + ["-H", "{t0},{t0},{t1}", "where"],
            "count_stdout": {"re:Executing task 'where'": 2},
            "stdout": ["[{t0}] out: {a0}", "[{t1}] out: {a1}", "Done."],
        },
        {
            "name": "remainder-command",
            "argv": GW + ["-H", "{t0},{t1}", "--", "echo", "answer=$((6*7))"],
            "stdout": [
                "[{t0}] Executing task '<remainder>'",
                "[{t0}] run: echo answer=$((6*7))",
                "[{t0}] out: answer=42",
                "[{t1}] Executing task '<remainder>'",
                "[{t1}] out: answer=42",
                "Done.",
            ],
        },
        {
            "name": "display-arguments",
            "argv": ["-d", "greet"],
            "stdout": [
                "Displaying detailed information for task 'greet':",
                "    Say hello on each host.",
                "re:^\\s+Arguments: name, greeting='hello', punct='!'$",
            ],
        },
        {
            "name": "bad-arguments-fail",
            "argv": GW + ["-H", "{t0}", "greet"],
            "exit": 1,
            "stderr": ["in:greet"],
            "not_stdout": ["in:run: echo"],
        },
    ],
}
