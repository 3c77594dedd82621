"""local(): streaming and captured output, lcd (nested, relative), shell_env, path, prefix,
warn_only, failure messages; no SSH connection is made even with -g on the command line."""

CASE = {
    "runs": [
        {
            "name": "build-and-check",
            "cwd": "{tmp}",
            "argv": ["-f", "{case}/fabfile.py", "-g", "{gw}", "-i", "{key}", "build", "check",
                     "version"],
            "stdout": [
                "[localhost] local: mkdir -p build/out",
                "[localhost] local: echo built > out/artifact.txt",
                "[localhost] local: cat artifact.txt",
                "artifact says built (failed=False rc=0)",
                "[localhost] local: echo to-stderr 1>&2; exit 4",
                "check rc=4 failed=True stderr=to-stderr",
                "[localhost] local: echo \"env=$APP_ENV\"",
                "env=ci",
                "path appended: True",
                "stage=qa",
                "version=1.4.2",
                "",
                "Done.",
            ],
            "stderr": ["re:^Warning: local\\(\\) encountered an error \\(return code 4\\) "
                       "while executing 'echo to-stderr 1>&2; exit 4'$"],
            "not_stdout": ["re:^Disconnecting", "in:Executing task"],
            "post": [{"path": "{tmp}/build/out/artifact.txt", "content": "built\n"}],
            "logins": {"gw": 0},
        },
        {
            "name": "failing-lint",
            "cwd": "{tmp}",
            "argv": ["-f", "{case}/fabfile.py", "lint"],
            "exit": 1,
            "stdout": ["[localhost] local: echo linting", "linting",
                       "[localhost] local: exit 3"],
            "stderr": ["Fatal error: local() encountered an error (return code 3) while "
                       "executing 'exit 3'", "", "Aborting."],
            "not_stdout": ["in:not reached", "Done."],
        },
        {
            "name": "quiet-with-hide",
            "cwd": "{tmp}",
            "argv": ["-f", "{case}/fabfile.py", "--hide", "running", "version"],
            "stdout": ["version=1.4.2", "Done."],
            "not_stdout": ["in:local:"],
        },
    ],
}
