# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *


@task
def report():
    """Print a status report with various output levels."""
    run("echo visible-output")
    with hide("running", "stdout"):
        run("echo hidden-output")
    with show("debug"):
        run("echo debug-shown")
    puts("app=%s stage=%s owner=%s" % (env.app_name, env.stage, env.get("owner")))
    fastprint("progress: 100%\n")
    with settings(output_prefix=False):
        run("echo no-prefix")
    with hide("everything"):
        r = run("echo silently-captured")
    puts("captured %s" % r)
