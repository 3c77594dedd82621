"""sudo(): as root (no password prompt), user=, group=, env.sudo_user, within cd(),
shell=False; the output echo line is '[host] sudo: ...'."""

CASE = {
    "runs": [
        {
            "name": "accounts",
            "argv": ["-g", "{gw}", "-i", "{key}", "--set", "workdir={tmp}", "-H", "{t0}",
                     "accounts", "install_config"],
            "stdout": [
                "[{t0}] Executing task 'accounts'",
                "[{t0}] sudo: whoami",
                "[{t0}] out: root",
                "[{t0}] sudo: whoami",
                "[{t0}] out: nobody",
                "[{t0}] sudo: id -gn",
                "[{t0}] out: nogroup",
                "[{t0}] sudo: whoami",
                "[{t0}] out: daemon",
                "[{t0}] out: nobody",
                "[{t0}] out: cwd={tmp}",
                "[{t0}] sudo: ls -d /root",
                "[{t0}] no-shell sudo rc=0 out=/root",
                "[{t0}] Executing task 'install_config'",
                "[{t0}] config is root 644",
                "Done.",
            ],
            "not_stdout": ["in:sudo password:", "in:run: whoami"],
            "post": [{"path": "{tmp}/app.conf", "content": "listen 80\n", "mode": "0644"}],
        },
        {
            "name": "sudo-failure-aborts",
            "argv": ["-g", "{gw}", "-i", "{key}", "-H", "{t0}", "--",
                     "sudo -n -u nobody test -w /root"],
            "exit": 1,
            "stderr": ["Fatal error: run() received nonzero return code 1 while executing!"],
        },
    ],
}
