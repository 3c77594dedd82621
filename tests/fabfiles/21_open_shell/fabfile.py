# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *


@task
def shell(command=None):
    """Drop into a shell on the host (or run one line in an interactive shell)."""
    open_shell(command)


@task
def debug_session():
    # unset HISTFILE: the interactive shell must not leave our commands in root's history.
    open_shell("unset HISTFILE; cd %s && echo in-$(basename $PWD)-$((6*7)); exit"
               % env.workdir)
    puts("shell closed")
