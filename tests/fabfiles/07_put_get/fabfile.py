# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from io import StringIO

from fabric.api import *


def _remote():
    return "%s/srv/%s" % (env.workdir, env.host)


@task
@runs_once
def build():
    """Build the release tarball locally (once, whatever the host list)."""
    local("mkdir -p build/dist/static build/dist/logs")
    with lcd("build"):
        local("echo v1.7 > dist/VERSION")
        local("printf 'body { color: red }\\n' > dist/static/site.css")
        local("printf '#!/bin/sh\\necho ok\\n' > dist/run.sh && chmod 750 dist/run.sh")
        local("tar czf release.tgz -C dist .")
        size = local("wc -c < release.tgz", capture=True)
    puts("built release.tgz (%s bytes)" % size.strip())


@task
def ship():
    """Upload the release and its bits."""
    execute(build)
    remote = _remote()
    run("mkdir -p %s/glob" % remote)
    uploaded = put("build/release.tgz", remote + "/")
    puts("uploaded %s ok=%s failed=%s" % (uploaded[0], uploaded.succeeded, uploaded.failed))
    put("build/dist/run.sh", remote + "/run.sh", mirror_local_mode=True)
    put(StringIO(u"db_url=postgres://shop\n"), remote + "/settings.ini", mode=0o600)
    put("build/dist/static", remote)  # a whole directory
    put("build/dist/*.sh", remote + "/glob/")  # a glob
    with cd(remote):
        put("build/dist/VERSION", "VERSION.uploaded")  # relative to cd()
        run("tar xzf release.tgz && cat VERSION")
        run("./run.sh")


@task
def fetch():
    """Collect logs and versions from the hosts."""
    remote = _remote()
    run("mkdir -p %s/logs && echo 'GET / 200' > %s/logs/access.log && "
        "echo 'boom' > %s/logs/error.log" % (remote, remote, remote))
    got = get(remote + "/logs/*.log", "collected/%(host)s/%(basename)s")
    puts("fetched %d log files" % len(got))
    # Default local path: <host string with ':' as '-'>/<remote path>.
    get(remote + "/VERSION")
    with lcd("collected"):
        get(remote + "/settings.ini", "%(basename)s.%(host)s")


@task
def ship_missing():
    """Upload something that was never built."""
    put("build/never-built.tgz", _remote() + "/")
