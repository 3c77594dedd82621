"""Output control: --hide/--show on the command line, hide()/show() in code, output_prefix,
puts/fastprint; configuration from -c rcfile (including the gateway and key) and --set, and
the rcfile-over-CLI precedence of Fabric 1.x."""

RC = """# deploy settings
gateway = {gw}
key_filename = {key}
app_name = shop
stage = prod
"""
FILES = {"{tmp}/fabricrc": RC}

CASE = {
    "runs": [
        {
            "name": "rcfile-and-defaults",
            "files": FILES,
            "argv": ["-c", "{tmp}/fabricrc", "--set", "owner=ops", "-H", "{t0}", "report"],
            "stdout": [
                "[{t0}] Executing task 'report'",
                "[{t0}] run: echo visible-output",
                "[{t0}] out: visible-output",
                "[{t0}] run: /bin/bash -l -c \"echo debug-shown\"",
                "[{t0}] out: debug-shown",
                "[{t0}] app=shop stage=prod owner=ops",
                "progress: 100%",
                "[{t0}] run: echo no-prefix",
                "no-prefix",
                "[{t0}] captured silently-captured",
                "Done.",
            ],
            "not_stdout": ["in:hidden-output", "in:out: no-prefix",
                           "in:out: silently-captured", "in:run: echo silently-captured"],
            "logins": {"gw": 1},
        },
        {
            "name": "rcfile-wins-over-set",
            "files": FILES,
            "argv": ["-c", "{tmp}/fabricrc", "--set", "stage=qa", "-H", "{t0}", "report"],
            "stdout": ["[{t0}] app=shop stage=prod owner=None"],
        },
        {
            "name": "hide-running-and-stdout",
            "files": FILES,
            "argv": ["-c", "{tmp}/fabricrc", "--hide", "running,stdout", "-H", "{t0}", "report"],
            "stdout": ["[{t0}] app=shop stage=prod owner=None", "progress: 100%",
                       "[{t0}] captured silently-captured", "Done."],
            "not_stdout": ["in:Executing task", "in:run: echo", "in:out: visible-output",
                           "no-prefix"],
        },
        {
            "name": "show-debug-everywhere",
            "files": FILES,
            "argv": ["-c", "{tmp}/fabricrc", "--show", "debug", "-H", "{t0}", "report"],
            "stdout": ["[{t0}] run: /bin/bash -l -c \"echo visible-output\"",
                       "[{t0}] run: /bin/bash -l -c \"echo debug-shown\""],
            "not_stdout": ["[{t0}] run: echo visible-output"],
        },
        {
            "name": "hide-status-drops-done",
            "files": FILES,
            "argv": ["-c", "{tmp}/fabricrc", "--hide", "status", "-H", "{t0}", "report"],
            "stdout": ["[{t0}] out: visible-output"],
            "not_stdout": ["Done.", "re:^Disconnecting"],
        },
        {
            "name": "shell-option",
            "files": FILES,
            "argv": ["-c", "{tmp}/fabricrc", "--show", "debug", "-s", "/bin/sh -c",
                     "-H", "{t0}", "--", "echo", "shell-is-$0"],
            "stdout": ["[{t0}] run: /bin/sh -c \"echo shell-is-\\$0\"",
                       "[{t0}] out: shell-is-/bin/sh"],
        },
    ],
}
