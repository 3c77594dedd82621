# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *
from fabric.exceptions import NetworkError


class DeployError(Exception):
    pass


@task
def ping():
    run("echo alive")


@task
def health_report():
    """Check every host without stopping at the first dead one."""
    with settings(skip_bad_hosts=True):
        results = execute(ping, hosts=env.check_hosts.split(";"))
    for host in env.check_hosts.split(";"):
        value = results[host]
        puts("%s: %s" % (host, "down" if isinstance(value, NetworkError) else "up"))


@task
def strict_probe():
    """Let network errors surface as exceptions."""
    with settings(use_exceptions_for={"network": True}):
        try:
            execute(ping, hosts=[env.bad_host])
        except NetworkError as e:
            puts("caught NetworkError for %s" % env.bad_host)
            puts("has message: %s" % bool(str(e)))


@task
def guarded():
    """Turn aborts into exceptions the task can handle."""
    with settings(abort_exception=DeployError):
        try:
            run("exit 7")
        except DeployError as e:
            puts("caught: %s" % str(e).splitlines()[0])
    run("echo carried on")
