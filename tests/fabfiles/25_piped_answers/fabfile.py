# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
"""Unattended upgrades, driven as `yes | fab upgrade`."""
from fabric.api import *


@task
def upgrade():
    """The package tool asks before it proceeds; the answer comes from our stdin."""
    # -t: the real tool would wait forever; a bounded wait keeps a broken run short.
    run("read -t 4 -p 'Do you want to continue? [Y/n] ' a; echo \"answer=[$a]\"")


@task
def shell():
    """An interactive shell; keystrokes may be piped in too."""
    # unset HISTFILE: the interactive shell must not leave our commands in root's history.
    open_shell("unset HISTFILE")
