"""Everything a fabfile usually needs: ``from fabric.api import *``."""

from fabric.context_managers import (
    cd,
    hide,
    lcd,
    path,
    prefix,
    quiet,
    remote_tunnel,
    settings,
    shell_env,
    show,
    warn_only,
)
from fabric.decorators import hosts, parallel, roles, runs_once, serial, task, with_settings
from fabric.operations import get, local, open_shell, prompt, put, reboot, require, run, sudo
from fabric.state import env, output
from fabric.tasks import execute
from fabric.utils import abort, fastprint, puts, warn

__all__ = [
    "cd", "hide", "settings", "show", "path", "prefix", "lcd", "quiet", "warn_only",
    "remote_tunnel", "shell_env", "hosts", "roles", "runs_once", "with_settings", "task",
    "serial", "parallel", "require", "prompt", "put", "get", "run", "sudo", "local", "reboot",
    "open_shell", "env", "output", "abort", "warn", "puts", "fastprint", "execute",
]
