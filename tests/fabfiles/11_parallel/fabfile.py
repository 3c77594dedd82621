# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *


@task
@parallel
def probe():
    """Ask every host who it is, all at once."""
    run('echo "conn=$SSH_CONNECTION"')
    run("sleep 0.2; printf 'seq=%s\\n' \"$(seq -s, 1 700)\"")
    run('echo "conn2=$SSH_CONNECTION"')


@task
@parallel(pool_size=2)
def throttled():
    run("sleep 0.3; echo throttled-ok")


@task
def plain():
    run('echo "plain conn=$SSH_CONNECTION"')


@task
@serial
def one_by_one():
    run("echo serial-step")


@task
@runs_once
def summary():
    puts("summary printed once")


@task
def fragile(bad):
    run('case "$SSH_CONNECTION" in *" %s "*) echo broken; exit 9;; esac; echo fine' % bad)


@task
@parallel
def disk_usage():
    return run("echo $(( $(echo $SSH_CONNECTION | cut -d' ' -f3 | cut -d. -f4) * 10 ))")


@task
@runs_once
def capacity_report():
    """Collect numbers from every host in parallel, then summarise locally."""
    usage = execute(disk_usage, hosts=env.fleet.split(";"))
    for host in sorted(usage):
        puts("%s uses %s" % (host, usage[host]))
    puts("total %d" % sum(int(v) for v in usage.values()))
