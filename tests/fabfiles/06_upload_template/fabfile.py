# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *
from fabric.contrib.files import upload_template

# setdefault so that --set conf_dir=... (applied before the fabfile loads) wins.
env.setdefault("conf_dir", "/etc/shop")


@task
def nginx(server_name="shop.example.com"):
    """Render the vhost from a %-style template."""
    run("mkdir -p %s/nginx" % env.conf_dir)
    ctx = {"server_name": server_name, "port": 8080, "root": env.conf_dir + "/www"}
    upload_template("shop.conf", env.conf_dir + "/nginx/shop.conf", context=ctx,
                    template_dir="templates", mode=0o640)


@task
def workers(*names):
    """Render the worker config with Jinja2."""
    ctx = {"app": "shop", "workers": list(names) or ["default"], "debug": False}
    run("mkdir -p %s/app" % env.conf_dir)
    # Destination is a directory: the template's name is kept.
    upload_template("worker.ini.j2", env.conf_dir + "/app/", context=ctx, use_jinja=True,
                    template_dir="templates", backup=False)


@task
def secrets():
    """Root-only file via sudo, no backup."""
    upload_template("templates/shop.conf", env.conf_dir + "/secret.conf",
                    context={"server_name": "internal", "port": 9000, "root": "/srv"},
                    use_sudo=True, backup=False, mode=0o600)
