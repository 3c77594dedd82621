# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
"""Housekeeping for the ops team."""
# Old-style fabfile: no @task anywhere, so every public function is a task.
import os

from fabric.api import *

env.shell = "/bin/bash -l -c"


def _banner(text):
    puts("== %s ==" % text)


def host_type():
    """Print the kernel name of each host."""
    run('uname -s')


def whoami_check():
    """Check which account we log in as."""
    _banner("identity")
    who = run("whoami")
    if who != env.user:
        abort("expected to be %s but logged in as %s" % (env.user, who))
    puts("connected as %s to %s port %s" % (who, env.host, env.port))


def diskfree():
    run("df -P / | tail -n +2 | wc -l")


def uptime_local():
    local("echo local pid $$ > %s" % os.devnull)
