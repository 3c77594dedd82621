# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
import os

from fabric.api import *


@task
def staging():
    """Select the staging servers for the following tasks."""
    env.hosts = env.staging_hosts.split(";")


@task
def greet(name, greeting="hello", punct="!"):
    """Say hello on each host."""
    run("echo '%s, %s%s'" % (greeting, name, punct))


@task
def showargs(*args, **kwargs):
    """Print what the command line passed in."""
    puts("args=%r" % (args,))
    puts("kwargs=%r" % (sorted(kwargs.items()),))
    puts("verbose=%r empty=%r" % (env.get("verbose"), env.get("empty")))


@task
@hosts(os.environ.get("PINNED_HOST", "nowhere.invalid"))
def pinned():
    """Always runs on the pinned host unless told otherwise per task."""
    run('echo "pinned conn=$SSH_CONNECTION"')


@task
def where():
    run('echo "$SSH_CONNECTION" | cut -d" " -f3')
