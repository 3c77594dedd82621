# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *


@task
def check_services():
    """Fails half way through."""
    run("echo checking")
    run("exit 3")
    run("echo after-failure")


@task
def tolerant():
    """Keeps going whatever happens."""
    with settings(warn_only=True):
        r = run("exit 2")
    puts("failed=%s rc=%s succeeded=%s" % (r.failed, r.return_code, r.succeeded))
    r = run("ls /nonexistent-dir-fabcorpus", quiet=True)
    puts("quiet rc=%s" % r.return_code)
    with settings(ok_ret_codes=[0, 1]):
        r = run("grep -q no-such-text /etc/hostname")
    puts("grep rc=%s failed=%s" % (r.return_code, r.failed))
    with quiet():
        r = run("echo hidden-text; exit 5")
    puts("quiet stdout=%s rc=%s" % (r, r.return_code))
    with warn_only():
        r = sudo("exit 6")
    puts("sudo rc=%s" % r.return_code)
    r = run("echo to-out; echo to-err 1>&2", pty=False, combine_stderr=False)
    puts("split stdout=%r stderr=%r" % (str(r.stdout), str(r.stderr)))
    r = run("printf 'a\\nb\\n'")
    puts("lines=%r command=%r" % (r.splitlines(), r.command))


@task
def explode():
    abort("database %s is not reachable" % "orders")


@task
def crash():
    raise RuntimeError("unexpected crash in task")
