"""Piped stdin reaches the remote command, as Fabric 1.x's input loop forwards whatever
stdin holds (terminal or not): `yes | fab upgrade` answers the remote prompt, and
`printf 'cmd\\nexit\\n' | fab shell` types into open_shell()."""

CASE = {
    "runs": [
        {
            "name": "yes-pipe-answers-remote-prompt",
            "argv": ["-g", "{gw}", "-i", "{key}", "-H", "{t0}", "upgrade"],
            "stdin": "y\ny\ny\n",
            "stdout": ["[{t0}] Executing task 'upgrade'", "in:answer=[y]", "Done."],
            "timeout": 30,
        },
        {
            "name": "keystrokes-into-open-shell",
            "argv": ["-g", "{gw}", "-i", "{key}", "-H", "{t0}", "shell"],
            "stdin": "echo typed-$((40+2))\nexit\n",
            "stdout": ["[{t0}] Executing task 'shell'", "re:^typed-42$", "Done."],
            "timeout": 30,
        },
    ],
}
