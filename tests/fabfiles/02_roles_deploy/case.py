"""Role-based deploy: roledefs (list and dict forms), @roles, execute() chains from a local task,
env.gateway/key_filename set in the fabfile, execute() results, -R and -x on the command line."""

INVENTORY = """{
  "web": ["{t0}", "{t1}"],
  "db": ["{t2}"],
  "bastion": "{gw}",
  "key": "{key}",
  "app_root": "{tmp}/shop"
}
"""
FILES = {"{tmp}/inventory.json": INVENTORY}
ENV = {"SHOP_INVENTORY": "{tmp}/inventory.json"}

CASE = {
    "runs": [
        {
            "name": "deploy",
            "files": FILES,
            "env": ENV,
            "argv": ["deploy:release=2.1"],
            "stdout": [
                "[{t0}] Executing task 'update_code'",
                "[{t0}] run: mkdir -p {tmp}/shop/{a0}/releases/2.1",
                "[{t0}] run: echo 2.1 > VERSION",
                "[{t0}] run: ln -sfn releases/2.1 current",
                "[{t1}] Executing task 'update_code'",
                "[{t2}] Executing task 'migrate'",
                "[{t2}] out: migrated to 2.1",
                "[{t0}] Executing task 'restart'",
                "[{t0}] out: restarted",
                "[{t1}] Executing task 'restart'",
                "[{t1}] out: restarted",
                "[{t0}] Executing task 'status'",
                "[{t0}] out: 2.1",
                "[{t1}] Executing task 'status'",
                "[{t2}] Executing task 'status'",
                "[{t2}] out: none",
                # Sorted host strings; after execute() host_string is restored, so no prefix.
                "re:^{t0} -> 2\\.1$",
                "re:^{t1} -> 2\\.1$",
                "re:^{t2} -> none$",
                "deployed 2.1 to 2 web hosts",
                "Done.",
            ],
            "count_stdout": {"re:Executing task 'deploy'": 0},
            "post": [
                {"path": "{tmp}/shop/{a0}/current/VERSION", "content": "2.1\n"},
                {"path": "{tmp}/shop/{a1}/current/restart.txt", "content": ""},
                {"path": "{tmp}/shop/{a2}/migrations.log", "content": "migrated to 2.1\n"},
                {"path": "{tmp}/shop/{a2}/current/VERSION", "exists": False},
            ],
            "logins": {"gw": 1, "targets": 3},
        },
        {
            # Fabric 1.x: a global -x (like -H/-R) does not change a list set by @roles;
            # only the per-task exclude_hosts does (documented; fabric#1534, #308).
            "name": "global-exclude-ignored-by-decorated-task",
            "files": FILES,
            "env": ENV,
            "argv": ["-x", "{t1}", "status"],
            "stdout": [
                "[{t0}] Executing task 'status'",
                "[{t1}] Executing task 'status'",
                "[{t2}] Executing task 'status'",
                "Done.",
            ],
            "logins": {"gw": 1, "targets": 3},
        },
        {
            "name": "per-task-exclude",
            "files": FILES,
            "env": ENV,
            "argv": ["status:exclude_hosts={t1}"],
            "stdout": [
                "[{t0}] Executing task 'status'",
                "[{t2}] Executing task 'status'",
                "Done.",
            ],
            "not_stdout": ["in:[{t1}]"],
            "logins": {"gw": 1, "targets": 2},
        },
        {
            "name": "restart-before-deploy-aborts",
            "files": FILES,
            "env": ENV,
            "argv": ["restart"],
            "exit": 1,
            "stdout": ["[{t0}] Executing task 'restart'"],
            "stderr": ["Fatal error: no release deployed on {a0}", "", "Aborting."],
            "not_stdout": ["in:[{t1}] Executing", "Done."],
        },
        {
            "name": "list-shows-docstrings",
            "files": FILES,
            "env": ENV,
            "argv": ["--list"],
            "stdout": [
                "Deploy the shop: code to the web tier, migrations on the database tier.",
                "Available commands:",
                "    deploy       Full deploy: code, migrations, restart.",
                "    migrate      Run database migrations.",
                "    restart      Restart the application servers.",
                "    status       Show what every host runs.",
                "    update_code  Unpack a release and switch the 'current' symlink.",
            ],
            "not_stdout": ["in:_host_root", "in:exists", "re:^\\s+json"],
        },
    ],
}
