# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *


@task
def fingerprint_check():
    """Run something trivial; the point is the host-key check on the way."""
    run("echo key-accepted")
