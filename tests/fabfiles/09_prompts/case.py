"""prompt() with default, regex and callable validation, key=; contrib.console.confirm with a
default and a bad answer; require() with provided_by; env.prompts answering a remote program.
Answers come from stdin, piped."""

GW = ["-g", "{gw}", "-i", "{key}"]

CASE = {
    "runs": [
        {
            "name": "answers-with-retries",
            "argv": ["release"],
            "stdin": "abc\n2.3.4\nLatest\nZephyr\nmaybe\ny\n",
            # Piped answers are not echoed, so what follows a prompt shares its line.
            "stdout": [
                "re:^Release version\\? \\[1\\.0\\.0\\] Regular expression validation "
                "failed: 'abc' does not match '.*'$",
                "Release version? [1.0.0] Codename: Validation failed for the following reason:",
                "    'Latest' is reserved",
                "Codename: Tag 2.3.4 (zephyr) now? [y/N] I didn't understand you. Please "
                "specify '(y)es' or '(n)o'.",
                "Tag 2.3.4 (zephyr) now? [y/N] tagging 2.3.4 as zephyr",
                "",
                "Done.",
            ],
        },
        {
            "name": "defaults-then-cancel",
            "argv": ["release"],
            "stdin": "\nbeta\n\n",
            "exit": 1,
            "stdout": ["Release version? [1.0.0] Codename: Tag 1.0.0 (beta) now? [y/N]"],
            "stderr": ["Fatal error: release cancelled by user", "", "Aborting."],
            "not_stdout": ["in:tagging"],
        },
        {
            "name": "require-missing",
            "argv": ["--set", "channel=stable", "publish"],
            "exit": 1,
            "stderr": [
                "re:^Fatal error: The command 'publish' failed because the following required "
                "environment variable was not defined:$",
                "    codename",
                "in:Try running the following command prior to this one, to fix this:",
                "    release",
                "Aborting.",
            ],
            "not_stdout": ["in:publishing"],
        },
        {
            "name": "require-satisfied",
            "argv": ["--set", "codename=zephyr,channel=stable", "publish"],
            "stdout": ["publishing zephyr to stable", "Done."],
        },
        {
            "name": "release-then-publish-in-one-go",
            "argv": ["--set", "channel=beta", "release", "publish"],
            "stdin": "0.9.1\nnova\nyes\n",
            "stdout": ["re:tagging 0\\.9\\.1 as nova$", "publishing nova to beta", "Done."],
        },
        {
            "name": "abort-on-prompts",
            "argv": ["--abort-on-prompts", "release"],
            "stdin": "1.2.3\n",
            "exit": 1,
            "stderr": ["re:^Fatal error: Needed to prompt for .*abort-on-prompts was set to True",
                       "Aborting."],
            "not_stdout": ["in:Release version?"],
        },
        {
            "name": "env-prompts-answer-remote",
            "argv": GW + ["-H", "{t0}", "upgrade_packages"],
            "stdout": ["[{t0}] Executing task 'upgrade_packages'", "in:answers=y/no",
                       "Done."],
        },
    ],
}
