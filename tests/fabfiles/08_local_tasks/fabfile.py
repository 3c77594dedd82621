# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
"""Local build helpers; nothing here touches a server."""
from fabric.api import *

env.build_dir = "build"


@task
def build():
    """Build the artifact."""
    local("mkdir -p %s/out" % env.build_dir)
    with lcd(env.build_dir):
        local("echo built > out/artifact.txt")
        with lcd("out"):
            text = local("cat artifact.txt", capture=True)
    puts("artifact says %s (failed=%s rc=%s)" % (text, text.failed, text.return_code))


@task
def check():
    """Run the checks but keep going."""
    with settings(warn_only=True):
        r = local("echo to-stderr 1>&2; exit 4", capture=True)
    puts("check rc=%s failed=%s stderr=%s" % (r.return_code, r.failed, r.stderr))
    with shell_env(APP_ENV="ci"):
        local('echo "env=$APP_ENV"')
    with path("/opt/fake/bin"):
        p = local('echo "$PATH"', capture=True)
    puts("path appended: %s" % p.endswith(":/opt/fake/bin"))
    with prefix("export STAGE=qa"):
        local('echo "stage=$STAGE"')


@task
def lint():
    """Fail the build on purpose."""
    local("echo linting")
    local("exit 3")
    local("echo not reached")


@task
def version():
    v = local("echo 1.4.2", capture=True)
    puts("version=%s" % v)
    return v
