# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
"""Idioms from older fabfiles: host_string juggling, with_settings, execute by name."""
from fabric.api import *

env.colorize_errors = False


@with_settings(warn_only=True)
def _cleanup_tmp():
    return run("rm -rf %s/scratch && echo cleaned" % env.workdir)


@task
def get_load():
    return run("echo 0.42")


@task
@with_settings(hide("running"), warn_only=True)
def flaky():
    """Decorated settings: warn instead of abort, and don't echo commands."""
    r = run("exit 1")
    puts("flaky failed=%s" % r.failed)


@task
def orchestrate():
    """Drive other tasks from Python instead of the command line."""
    hosts = env.fleet.split(";")
    loads = execute(get_load, hosts=hosts)
    for host in hosts:
        puts("load %s = %s" % (host, loads[host]))
    execute("flaky", host=hosts[0])
    # The pre-execute() way: point host_string at a box and call functions directly.
    with settings(host_string=hosts[1]):
        run("mkdir -p %s/scratch" % env.workdir)
        puts("cleanup said %s" % _cleanup_tmp())
    puts("host_string afterwards: %r" % env.host_string)
    local_only = execute(lambda: "computed locally")
    puts("local result: %r" % local_only)
