# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
from fabric.api import *


@task
def envcheck():
    """Exercise the context managers that shape the remote command."""
    with cd(env.workdir):
        run("mkdir -p 'sub dir/inner'")
        run("pwd")
        with cd("sub dir"):
            run("pwd")
            with cd("inner"):
                run("pwd")
        with cd("/tmp"):
            run("pwd")
    with prefix("export GREETING=hola"):
        with prefix("export TARGET=mundo"):
            run('echo "$GREETING $TARGET"')
    with shell_env(APP_MODE="blue", EMPTY=""):
        run('echo "mode=$APP_MODE empty=[$EMPTY]"')
    with path("/opt/shop/bin"):
        run('echo "$PATH" | tr : "\\n" | tail -n 1')
    with path("/opt/first", behavior="prepend"):
        run('echo "$PATH" | cut -d: -f1')
    with path("/opt/only", behavior="replace"):
        run('echo "$PATH"')
    run("echo 'single' \"double\" `echo back` $((2+3))")
    run("echo %s" % "percent-100%")


@task
def virtualenv_style():
    """The classic 'activate, then run' idiom."""
    with cd(env.workdir):
        run("mkdir -p venv/bin && echo 'export VIRTUAL_ENV=%s/venv' > venv/bin/activate"
            % env.workdir)
        with prefix("source venv/bin/activate"):
            run('echo "venv=$VIRTUAL_ENV"')
            with settings(shell_env={"DJANGO_SETTINGS_MODULE": "shop.settings"}):
                run('echo "$DJANGO_SETTINGS_MODULE"')
