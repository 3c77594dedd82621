# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *
from fabric.contrib.project import rsync_project, upload_project


@task
def sync():
    """Mirror the site to the web root, dropping stale files."""
    out = rsync_project(remote_dir=env.remote_dir, local_dir=env.local_dir + "/",
                        exclude=["*.pyc", ".git"], delete=True)
    puts("rsync succeeded: %s" % out.succeeded)
    run("ls %s | sort | tr '\\n' ' '" % env.remote_dir)


@task
def bundle():
    """Ship the site as a tarball instead."""
    run("mkdir -p %s" % env.bundle_dir)
    upload_project(local_dir=env.local_dir, remote_dir=env.bundle_dir)
    run("ls %s/site | sort | tr '\\n' ' '" % env.bundle_dir)
