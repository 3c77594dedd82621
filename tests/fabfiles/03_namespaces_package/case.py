"""A fabfile package with namespaces: submodules, a default task, an alias, a custom name,
plain functions hidden once @task is used, and the three --list formats plus -d."""

GW = ["-g", "{gw}", "-i", "{key}"]

CASE = {
    "runs": [
        {
            "name": "list-normal",
            "argv": ["--list"],
            "stdout": [
                "Ops tasks for the billing service.",
                "",
                "Available commands:",
                "",
                "    status           Show service status on every host.",
                "    db               Apply pending migrations.",
                "    db.backup        Dump the database to a file.",
                "    db.load          Load a dump back.",
                "    db.migrate       Apply pending migrations.",
                "    db.restore       Load a dump back.",
                "re:^    web\\.bounce       Bounce the load balancer pool",
                "    web.deploy       Deploy a branch of the web frontend.",
                "    web.restart-app  Restart the web workers.",
            ],
            "not_stdout": ["in:vacuum", "in:_dump_dir", "in:restart_app"],
        },
        {
            # No terminal: 80 columns. Fabric 1.x cuts the docstring so that the line stays
            # within them: name column + 2 + doc + '...' = 80 - 1 - 3 - 4 (indent).
            "name": "list-cuts-long-docstrings",
            "argv": ["--list"],
            "stdout": [
                "    web.bounce       Bounce the load balancer pool (a Task subclass, the othe...",
            ],
        },
        {
            "name": "shortlist",
            "argv": ["--shortlist"],
            "stdout": ["status", "db", "db.backup", "db.load", "db.migrate", "db.restore",
                       "web.bounce", "web.deploy", "web.restart-app"],
            "not_stdout": ["in:Available commands", "in:billing service"],
        },
        {
            "name": "list-nested",
            "argv": ["--list", "-F", "nested"],
            "stdout": [
                "Available commands (remember to call as module.[...].task):",
                "",
                "    status",
                "    db:",
                "        backup",
                "        load",
                "        migrate",
                "        restore",
                "    web:",
                "        bounce",
                "        deploy",
                "        restart-app",
            ],
        },
        {
            "name": "display-task-with-arguments",
            "argv": ["-d", "db.backup"],
            "stdout": [
                "Displaying detailed information for task 'db.backup':",
                "",
                "    Dump the database to a file.",
                "re:^\\s+Arguments: name='nightly'$",
            ],
        },
        {
            "name": "run-namespaced-tasks",
            "argv": GW + ["--set", "billing_root={tmp}/billing", "-H", "{t3}",
                          "db", "db.backup:pre-deploy", "web.deploy:branch=release-7",
                          "db.load:pre-deploy", "web.restart-app", "web.bounce:pool=blue",
                          "status"],
            "stdout": [
                "[{t3}] Executing task 'db'",
                "[{t3}] out: schema-v42",
                "[{t3}] Executing task 'db.backup'",
                "[{t3}] Executing task 'web.deploy'",
                "[{t3}] Executing task 'db.load'",
                "[{t3}] out: dump",
                "[{t3}] Executing task 'web.restart-app'",
                "[{t3}] out: restarting workers",
                "[{t3}] Executing task 'web.bounce'",
                "[{t3}] out: bouncing blue",
                "[{t3}] Executing task 'status'",
                "[{t3}] out: billing ok",
                "[{t3}] root is {tmp}/billing",
                "Done.",
            ],
            "post": [
                {"path": "{tmp}/billing/schema.txt", "content": "schema-v42\n"},
                {"path": "{tmp}/billing/dumps/pre-deploy.sql", "content": "dump\n"},
                {"path": "{tmp}/billing/web/BRANCH", "content": "release-7\n"},
            ],
            "logins": {"gw": 1, "targets": 1},
        },
        {
            "name": "hidden-plain-function-is-unknown",
            "argv": GW + ["-H", "{t3}", "db.vacuum"],
            "exit": 1,
            "stderr": ["Warning: Command(s) not found:", "    db.vacuum"],
            "stdout": ["Available commands:"],
            "not_stdout": ["in:Executing task"],
            "logins": {"gw": 0},
        },
        {
            "name": "missing-dump-aborts",
            "argv": GW + ["--set", "billing_root={tmp}/billing", "-H", "{t3}",
                          "db.restore:nosuch"],
            "exit": 1,
            "stdout": ["[{t3}] Executing task 'db.restore'", "[{t3}] out: no"],
            "stderr": ["Fatal error: no such dump: nosuch", "", "Aborting."],
        },
    ],
}
