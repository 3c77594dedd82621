# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *
from fabric.contrib.files import append, comment, contains, exists, first, is_link, sed, uncomment


def _conf():
    return "%s/%s/sshd_config" % (env.workdir, env.host)


@task
def seed():
    """Copy the pristine config into place for this host."""
    run("mkdir -p %s/%s" % (env.workdir, env.host))
    run("cp %s/sshd_config.orig %s" % (env.workdir, _conf()))
    run("ln -sfn %s %s/%s/current.conf" % (_conf(), env.workdir, env.host))


@task
def harden():
    """Lock down sshd settings."""
    conf = _conf()
    if not exists(conf):
        abort("%s is missing, run seed first" % conf)
    sed(conf, "^PermitRootLogin yes", "PermitRootLogin no")
    comment(conf, "^X11Forwarding yes")
    uncomment(conf, "UseDNS no")
    append(conf, "ClientAliveInterval 60")
    append(conf, "ClientAliveInterval 60")  # appending twice must not duplicate
    append(conf, ["MaxAuthTries 3", "LoginGraceTime 30"])
    append(conf, 'Banner "$HOME/banner" # it\'s quoted')
    puts("root login disabled: %s" % contains(conf, "PermitRootLogin no"))
    puts("case-insensitive: %s" % contains(conf, "permitrootlogin NO", case_sensitive=False))
    puts("backup kept: %s" % exists(conf + ".bak"))
    puts("missing: %s" % exists("%s/nope/none" % env.workdir))
    puts("link: %s" % is_link("%s/%s/current.conf" % (env.workdir, env.host)))
    puts("not a link: %s" % is_link(conf))
    puts("first: %s" % first("%s/nope" % env.workdir, conf))
