# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
"""Ops tasks for the billing service."""
from fabric.api import env, puts, run, task

from . import db, web  # noqa: F401  (imported so they become task namespaces)

# setdefault so that --set billing_root=... (applied before the fabfile loads) wins.
env.setdefault("billing_root", "/srv/billing")


@task
def status():
    """Show service status on every host."""
    run("echo billing ok")
    puts("root is %s" % env.billing_root)
