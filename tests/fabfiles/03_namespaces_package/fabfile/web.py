# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import env, run, task
from fabric.tasks import Task


@task
def deploy(branch="main"):
    """Deploy a branch of the web frontend."""
    run("mkdir -p %s/web && echo %s > %s/web/BRANCH" % (env.billing_root, branch,
                                                         env.billing_root))


@task(name="restart-app")
def restart_app():
    """Restart the web workers."""
    run("echo restarting workers")


class Bounce(Task):
    """Bounce the load balancer pool (a Task subclass, the other 1.x way to define tasks)."""

    name = "bounce"

    def run(self, pool="default"):
        run("echo bouncing %s" % pool)


bounce = Bounce()
