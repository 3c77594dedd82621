# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *


@task
def rotate_logs():
    run("echo rotated on $(echo $SSH_CONNECTION | cut -d' ' -f3)")
