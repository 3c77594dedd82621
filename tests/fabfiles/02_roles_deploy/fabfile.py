# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
"""Deploy the shop: code to the web tier, migrations on the database tier."""
import json
import os

from fabric.api import *
from fabric.contrib.files import exists

# The inventory is kept outside the fabfile so ops can edit hosts without touching code.
with open(os.environ.get("SHOP_INVENTORY", "inventory.json")) as f:
    _inventory = json.load(f)

env.roledefs = {
    "web": _inventory["web"],
    # Newer 1.x style: a role can be a dict with a 'hosts' key.
    "db": {"hosts": _inventory["db"]},
}
env.gateway = _inventory["bastion"]
env.key_filename = [_inventory["key"]]
env.app_root = _inventory["app_root"]


def _host_root():
    # Every host gets its own tree (in real life they would be different machines).
    return "%s/%s" % (env.app_root, env.host)


@task
@roles("web")
def update_code(release):
    """Unpack a release and switch the 'current' symlink."""
    release_dir = "%s/releases/%s" % (_host_root(), release)
    run("mkdir -p %s" % release_dir)
    with cd(release_dir):
        run("echo %s > VERSION" % release)
    with cd(_host_root()):
        run("ln -sfn releases/%s current" % release)


@task
@roles("db")
def migrate(release):
    """Run database migrations."""
    run("mkdir -p %s" % _host_root())
    with cd(_host_root()):
        run("echo 'migrated to %s' >> migrations.log" % release)
        run("tail -n 1 migrations.log")


@task
@roles("web")
def restart():
    """Restart the application servers."""
    if not exists("%s/current" % _host_root()):
        abort("no release deployed on %s" % env.host)
    run("touch %s/current/restart.txt && echo restarted" % _host_root())


@task
@roles("web", "db")
def status():
    """Show what every host runs."""
    return run("cat %s/current/VERSION 2>/dev/null || echo none" % _host_root())


@task
@runs_once
def deploy(release="1.0"):
    """Full deploy: code, migrations, restart."""
    execute(update_code, release)
    execute(migrate, release)
    execute(restart)
    versions = execute(status)
    for host in sorted(versions):
        puts("%s -> %s" % (host, versions[host]))
    puts("deployed %s to %d web hosts" % (release, len(env.roledefs["web"])))
