# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *
from fabric.contrib.console import confirm


def _not_reserved(value):
    if value.lower() in ("latest", "head"):
        raise Exception("'%s' is reserved" % value)
    return value.lower()


@task
def release():
    """Tag a release after asking a few questions."""
    version = prompt("Release version?", default="1.0.0", validate=r"\d+\.\d+\.\d+")
    prompt("Codename:", key="codename", validate=_not_reserved)
    if not confirm("Tag %s (%s) now?" % (version, env.codename), default=False):
        abort("release cancelled by user")
    puts("tagging %s as %s" % (version, env.codename))


@task
def publish():
    """Publish a tagged release."""
    require("codename", "channel", provided_by=[release])
    puts("publishing %s to %s" % (env.codename, env.channel))


@task
def upgrade_packages():
    """Answer the remote tool's questions automatically."""
    with settings(prompts={"Continue? [y/n] ": "y", "Restart services? ": "no"}):
        run("read -p 'Continue? [y/n] ' a; read -p 'Restart services? ' b; "
            "echo \"answers=$a/$b\"")
