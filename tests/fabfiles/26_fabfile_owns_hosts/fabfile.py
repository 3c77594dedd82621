# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
"""Everything in the fabfile: the host list, the bastion, the login."""
import os

from fabric.api import *

env.user = "root"
env.key_filename = os.environ["DEPLOY_KEY"]
env.hosts = os.environ["APP_SERVERS"].split(",")


@task
def production():
    """Go through the production bastion."""
    env.gateway = os.environ["BASTION"]


@task
def hostname():
    run('echo "on $(echo $SSH_CONNECTION | cut -d" " -f3)"')
