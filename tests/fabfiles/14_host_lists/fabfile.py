# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
import os

from fabric.api import *

env.roledefs = {
    # Looked up lazily: the list comes from the environment when the role is used.
    "app": lambda: os.environ["APP_HOSTS"].split(","),
    "cache": {"hosts": os.environ.get("CACHE_HOSTS", "").split(",")},
}


@task
def ping():
    run("echo pong-$((40+2))")


@task
def inventory():
    """Show how the host list was assembled (runs locally)."""
    puts("all_hosts=%s" % ",".join(env.all_hosts))
    puts("roles=%s" % ",".join(env.effective_roles))
