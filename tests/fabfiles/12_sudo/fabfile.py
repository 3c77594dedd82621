# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *


@task
def accounts():
    """Who do we become with sudo?"""
    sudo("whoami")
    sudo("whoami", user="nobody")
    sudo("id -gn", user="nobody", group="nogroup")
    with settings(sudo_user="daemon"):
        sudo("whoami")
    with cd(env.workdir):
        sudo("mkdir -p owned && chown nobody owned && stat -c %U owned")
        sudo('echo "cwd=$(pwd)"')
    r = sudo("ls -d /root", shell=False)
    puts("no-shell sudo rc=%s out=%s" % (r.return_code, r))


@task
def install_config():
    """Write a root-owned file like a real install step."""
    with cd(env.workdir):
        sudo("printf 'listen 80\\n' > app.conf && chmod 644 app.conf")
        sudo("chown root:root app.conf")
    out = sudo("stat -c '%%U %%a' %s/app.conf" % env.workdir)
    puts("config is %s" % out)
