# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import abort, cd, env, run, task


def _dump_dir():
    return "%s/dumps" % env.billing_root


@task(default=True)
def migrate():
    """Apply pending migrations."""
    run("mkdir -p %s" % env.billing_root)
    with cd(env.billing_root):
        run("echo schema-v42 > schema.txt && cat schema.txt")


@task
def backup(name="nightly"):
    """Dump the database to a file."""
    run("mkdir -p %s" % _dump_dir())
    run("echo dump > %s/%s.sql" % (_dump_dir(), name))


@task(alias="load")
def restore(name):
    """Load a dump back."""
    path = "%s/%s.sql" % (_dump_dir(), name)
    if run("test -f %s && echo yes || echo no" % path) != "yes":
        abort("no such dump: %s" % name)
    run("cat %s" % path)


def vacuum():
    # Not a task: once @task is used anywhere, plain functions are not exposed.
    run("echo vacuum")
