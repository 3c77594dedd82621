"""A fabfile that owns its settings: module-level env.hosts/user/key_filename (which, in
Fabric 1.x, overwrite -H because the fabfile loads after the command line is read), a task
that sets env.gateway for the tasks after it, and the bastion itself in the host list (it
is then dialled directly, not through itself)."""

ENV = {"DEPLOY_KEY": "{key}", "APP_SERVERS": "{a4},{a5}", "BASTION": "{gw_addr}"}

CASE = {
    "runs": [
        {
            "name": "gateway-from-a-task",
            "env": ENV,
            "argv": ["production", "hostname"],
            "stdout": [
                # env.hosts is global, so 'production' too runs once per host (it only sets
                # env.gateway, which needs no connection).
                "[{a4}] Executing task 'production'",
                "[{a5}] Executing task 'production'",
                "[{a4}] Executing task 'hostname'",
                "[{a4}] out: on {a4}",
                "[{a5}] Executing task 'hostname'",
                "[{a5}] out: on {a5}",
                "Done.",
            ],
            "logins": {"gw": 1, "targets": 2},
        },
        {
            "name": "fabfile-hosts-overwrite-cli",
            "env": ENV,
            "argv": ["-H", "{a6}", "production", "hostname"],
            "stdout": ["[{a4}] out: on {a4}", "[{a5}] out: on {a5}", "Done."],
            "not_stdout": ["in:{a6}"],
        },
        {
            "name": "bastion-in-host-list",
            "env": {"DEPLOY_KEY": "{key}", "APP_SERVERS": "{gw_addr},{a4}",
                    "BASTION": "{gw_addr}"},
            "argv": ["production", "hostname"],
            "stdout": [
                "[{gw_addr}] Executing task 'hostname'",
                "[{gw_addr}] out: on {gw_addr}",
                "[{a4}] Executing task 'hostname'",
                "[{a4}] out: on {a4}",
                "Done.",
            ],
            "logins": {"gw": 1, "targets": 1},
        },
    ],
}
