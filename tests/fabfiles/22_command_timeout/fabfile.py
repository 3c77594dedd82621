# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *
from fabric.exceptions import CommandTimeout


@task
def slow_health():
    """A health check that must not hang the deploy."""
    try:
        run("sleep 8; echo too-late", timeout=1)
    except CommandTimeout as e:
        puts("health check timed out after %ss" % e.timeout)
    run("echo connection still usable")


@task
def global_timeout():
    try:
        run("sleep 8; echo too-late")
    except CommandTimeout:
        puts("timed out by -T")
