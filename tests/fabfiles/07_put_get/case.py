"""put/get: upload file, executable with mirror_local_mode, file-like object with mode, a
directory, a glob, a relative path under cd(); get with a glob, the default local path,
%(host)s/%(basename)s interpolation and lcd(); @runs_once build via execute()."""

FAB = ["-f", "{case}/fabfile.py", "-g", "{gw}", "-i", "{key}", "--set", "workdir={tmp}"]

CASE = {
    "runs": [
        {
            "name": "ship-and-fetch",
            "cwd": "{tmp}",
            "argv": FAB + ["-H", "{t0},{t1}", "ship", "fetch"],
            "stdout": [
                "[{t0}] Executing task 'ship'",
                "[localhost] local: mkdir -p build/dist/static build/dist/logs",
                "re:^\\[{t0}\\] built release\\.tgz \\(\\d+ bytes\\)$",
                "[{t0}] put: build/release.tgz -> {tmp}/srv/{a0}/release.tgz",
                "[{t0}] uploaded {tmp}/srv/{a0}/release.tgz ok=True failed=[]",
                "[{t0}] out: v1.7",
                "[{t0}] out: ok",
                "[{t1}] Executing task 'ship'",
                "[{t1}] put: build/release.tgz -> {tmp}/srv/{a1}/release.tgz",
                "[{t1}] out: ok",
                "[{t0}] Executing task 'fetch'",
                "[{t0}] fetched 2 log files",
                "[{t1}] Executing task 'fetch'",
                "[{t1}] fetched 2 log files",
                "Done.",
            ],
            # @runs_once: the build happens once although ship runs on two hosts.
            "count_stdout": {"in:local: tar czf release.tgz": 1},
            "post": [
                {"path": "{tmp}/srv/{a0}/release.tgz", "same_as": "{tmp}/build/release.tgz"},
                {"path": "{tmp}/srv/{a1}/release.tgz", "same_as": "{tmp}/build/release.tgz"},
                {"path": "{tmp}/srv/{a0}/run.sh", "mode": "0750",
                 "same_as": "{tmp}/build/dist/run.sh"},
                {"path": "{tmp}/srv/{a0}/settings.ini", "content": "db_url=postgres://shop\n",
                 "mode": "0600"},
                {"path": "{tmp}/srv/{a0}/static/site.css", "content": "body { color: red }\n"},
                {"path": "{tmp}/srv/{a0}/glob/run.sh", "same_as": "{tmp}/build/dist/run.sh"},
                {"path": "{tmp}/srv/{a1}/VERSION.uploaded", "content": "v1.7\n"},
                {"path": "{tmp}/collected/root@{a0}-{t0_port}/access.log",
                 "content": "GET / 200\n"},
                {"path": "{tmp}/collected/root@{a1}-{t1_port}/error.log", "content": "boom\n"},
                {"glob": "{tmp}/root@{a0}-{t0_port}/**/srv/{a0}/VERSION", "count": 1},
                {"path": "{tmp}/collected/settings.ini.root@{a1}-{t1_port}",
                 "content": "db_url=postgres://shop\n"},
            ],
            "logins": {"gw": 1, "targets": 2},
        },
        {
            "name": "put-missing-local-file-aborts",
            "cwd": "{tmp}",
            "argv": FAB + ["-H", "{t0}", "ship_missing"],
            "exit": 1,
            "stdout": ["[{t0}] Executing task 'ship_missing'"],
            "stderr": ["in:never-built.tgz"],
            "not_stdout": ["Done."],
        },
    ],
}
