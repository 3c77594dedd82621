"""contrib.project: rsync_project (local rsync over ssh, through the gateway, with excludes and
--delete) and upload_project (tar + put + untar). rsync's own ssh checks host keys, so this
run passes --system-known-hosts (OpenSSH takes ~/.ssh from the passwd entry, not $HOME,
so the run's empty $HOME cannot carry a known_hosts file for it)."""

FILES = {
    "{tmp}/site/index.html": "<h1>shop</h1>\n",
    "{tmp}/site/static/app.css": "body{}\n",
    "{tmp}/site/cache.pyc": "junk",
    "{tmp}/www/stale.html": "old\n",
}


SETS = "local_dir={tmp}/site,remote_dir={tmp}/www,bundle_dir={tmp}/bundle"

CASE = {
    "runs": [
        {
            "name": "rsync-through-gateway",
            "requires": ["rsync", "ssh"],
            "files": FILES,
            "argv": ["-g", "{gw}", "-i", "{key}", "--system-known-hosts", "{known_hosts}",
                     "--set", SETS, "-H", "{t0}", "sync"],
            "stdout": [
                "[{t0}] Executing task 'sync'",
                "re:^\\[localhost\\] local: rsync .*--delete",
                "[{t0}] rsync succeeded: True",
                "[{t0}] out: index.html static",
                "Done.",
            ],
            "post": [
                {"path": "{tmp}/www/index.html", "content": "<h1>shop</h1>\n"},
                {"path": "{tmp}/www/static/app.css", "content": "body{}\n"},
                {"path": "{tmp}/www/cache.pyc", "exists": False},
                {"path": "{tmp}/www/stale.html", "exists": False},
            ],
            "timeout": 90,
        },
        {
            "name": "upload-project",
            "files": FILES,
            "argv": ["-g", "{gw}", "-i", "{key}", "--system-known-hosts", "{known_hosts}",
                     "--set", SETS, "-H", "{t0}", "bundle"],
            "stdout": ["[{t0}] Executing task 'bundle'",
                       "[{t0}] out: cache.pyc index.html static", "Done."],
            "post": [{"path": "{tmp}/bundle/site/static/app.css", "content": "body{}\n"}],
        },
    ],
}
