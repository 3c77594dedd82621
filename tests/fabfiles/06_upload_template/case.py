"""contrib.files.upload_template: %-templates, Jinja2 with a directory destination, backups
of an existing file, explicit modes, use_sudo."""

SHOP = """# managed by fabric -- do not edit
server {{
    listen 8080;
    server_name {name};
    root {{tmp}}/etc/www;
    add_header X-Load 100%;
}}
"""

# Jinja2 drops the final newline unless keep_trailing_newline is asked for.
WORKERS = """[app]
name = SHOP

[worker:mail]
queue = mail-q

[worker:billing]
queue = billing-q

debug = no"""

SECRET = SHOP.replace("8080", "9000").replace("{{tmp}}/etc/www", "/srv")

CASE = {
    "runs": [
        {
            "name": "render-twice-keeps-backup",
            "argv": ["-g", "{gw}", "-i", "{key}", "--set", "conf_dir={tmp}/etc", "-H", "{t0}",
                     "nginx:old.example.com", "nginx:new.example.com", "workers:mail,billing",
                     "secrets"],
            "stdout": [
                "[{t0}] Executing task 'nginx'",
                "[{t0}] Executing task 'nginx'",
                "[{t0}] Executing task 'workers'",
                "[{t0}] Executing task 'secrets'",
                "Done.",
            ],
            "post": [
                {"path": "{tmp}/etc/nginx/shop.conf",
                 "content": SHOP.format(name="new.example.com").replace("{{tmp}}", "{tmp}"),
                 "mode": "0640"},
                {"path": "{tmp}/etc/nginx/shop.conf.bak",
                 "content": SHOP.format(name="old.example.com").replace("{{tmp}}", "{tmp}")},
                {"path": "{tmp}/etc/app/worker.ini.j2", "content": WORKERS},
                {"path": "{tmp}/etc/secret.conf", "content": SECRET.format(name="internal"),
                 "mode": "0600"},
                {"path": "{tmp}/etc/secret.conf.bak", "exists": False},
            ],
        },
    ],
}
