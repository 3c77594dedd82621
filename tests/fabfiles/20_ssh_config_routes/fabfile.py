# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
"""Hosts are ssh_config aliases; the bastion setup lives in ~/.ssh/config-style files."""
from fabric.api import *

env.use_ssh_config = True
env.roledefs = {"app": ["t5", "t6"], "vault": ["deep"]}


@task
def hostinfo():
    """Where did we land?"""
    run('echo "landed on $(echo $SSH_CONNECTION | cut -d" " -f3)"')
