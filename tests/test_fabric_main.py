"""The ``fab`` command line (fabric.main): options, fabfile discovery and loading, listing,
task arguments, --set/rc files, exit codes and end-of-run output.

Most tests call ``fabric.main.main([...])`` in-process with a fabfile written to a temporary
directory; a few run the real ``fab`` console script against the loopback SSH server.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

import fabric.main as fab_main
from fabric import state
from fabric.state import env, output
from tests.testbed.prereq import require

pytestmark = pytest.mark.usefixtures("fabric_state")

FAB = Path(sys.executable).parent / "fab"

# Every option name of Fabric 1.x's `fab --help` (reference §3.1), plus ours.
HELP_OPTIONS = [
    "-h", "--help", "-d", "--display", "-F", "--list-format", "-I",
    "--initial-password-prompt", "--initial-sudo-password-prompt", "-l", "--list", "--set",
    "--shortlist", "-V", "--version",
    "-a", "--no_agent", "-A", "--forward-agent", "--abort-on-prompts", "-c", "--config",
    "--colorize-errors", "-D", "--disable-known-hosts", "-e", "--eagerly-disconnect", "-f",
    "--fabfile", "-g", "--gateway", "--gss-auth", "--gss-deleg", "--gss-kex", "--hide",
    "--show", "-H", "--hosts", "-i", "-k", "--no-keys", "--keepalive", "--linewise", "-n",
    "--connection-attempts", "--no-pty", "-p", "--password", "-P", "--parallel", "--port",
    "-r", "--reject-unknown-hosts", "--sudo-password", "--system-known-hosts", "-R",
    "--roles", "-s", "--shell", "--skip-bad-hosts", "--skip-unknown-tasks",
    "--ssh-config-path", "-t", "--timeout", "--banner-timeout", "--auth-timeout", "-T",
    "--command-timeout", "-u", "--user", "-w", "--warn-only", "-x", "--exclude-hosts", "-z",
    "--pool-size",
    # not in Fabric 1.x
    "--show-route", "--ssh-config",
]


# ---------------------------------------------------------------------------------------------
# in-process harness
# ---------------------------------------------------------------------------------------------


class Fab:
    """Runs ``fabric.main.main(argv)`` in ``cwd`` and captures what it printed."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture) -> None:
        self.root = root
        self.capsys = capsys

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def __call__(self, *argv: str, cwd: Optional[Path] = None) -> Tuple[int, str, str]:
        self.capsys.readouterr()
        old = os.getcwd()
        os.chdir(cwd or self.root)
        try:
            code = fab_main.main(list(argv))
        finally:
            os.chdir(old)
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def fab(tmp_path, capsys, monkeypatch):
    root = tmp_path / "proj"
    root.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no real ~/.fabricrc, and ~ expands here
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    yield Fab(root, capsys)
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        module = sys.modules.get(name)
        where = str(getattr(module, "__file__", "") or "")
        if where.startswith(str(tmp_path)) or name.split(".")[0] == "fabfile":
            del sys.modules[name]


CLASSIC = '''\
"""Ops fabfile."""
import os
from os.path import join
from subprocess import call

from fabric.api import env, local, puts, run

from fm_helpers import restart_app


class BadThing(Exception):
    pass


def _hidden():
    pass


def greet(name, greeting="hi"):
    """Say hello.

    More words here.
    """
    puts("%s, %s" % (greeting, name))


def show_env():
    puts("tasks=%r command=%s" % (env.tasks, env.command))


def long():
    """xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"""
'''

HELPERS = '''\
def restart_app():
    """Restart the app (lives beside the fabfile)."""
'''


def classic(fab: Fab) -> None:
    fab.write("fabfile.py", CLASSIC)
    fab.write("fm_helpers.py", HELPERS)


# ---------------------------------------------------------------------------------------------
# listing
# ---------------------------------------------------------------------------------------------


def test_list_normal_classic_fabfile(fab):
    classic(fab)
    code, out, err = fab("--list")
    assert code == 0, err
    assert out.splitlines() == [
        "Ops fabfile.",
        "",
        "Available commands:",
        "",
        "    greet        Say hello.",
        "    long         " + "x" * 60 + "...",  # 80 columns, as fab-classic prints
        "    restart_app  Restart the app (lives beside the fabfile).",
        "    show_env",
    ]


def test_list_truncates_long_first_lines_to_the_terminal_width(fab):
    fab.write("fabfile.py", '''\
        def a():
            """%s"""
        ''' % ("y" * 120))
    code, out, _ = fab("-l")
    line = out.splitlines()[-1]
    # 80 columns in all, indent included (what fab-classic prints): the text is cut at 70.
    assert line == "    a  " + "y" * 70 + "..."



def test_shortlist_and_short_format_print_bare_names(fab):
    classic(fab)
    for argv in (["--shortlist"], ["-F", "short", "--list"]):
        code, out, _ = fab(*argv)
        assert code == 0
        assert out.splitlines() == ["greet", "long", "restart_app", "show_env"]


NAMESPACED = {
    "fabfile/__init__.py": '''\
        """Package fabfile."""
        from fabric.api import task

        from . import db, web, plain


        @task
        def status():
            """Show status."""


        def not_a_task():
            pass
        ''',
    "fabfile/db.py": '''\
        import fm_schema as schema  # noqa: F401  (a nested namespace)
        from fabric.api import task


        @task(default=True)
        def migrate():
            """Run migrations."""
            print("migrating")


        @task(alias="load")
        def restore(name):
            """Restore a dump."""
            print("restoring %s" % name)


        def helper():
            pass
        ''',
    "fm_schema.py": '''\
        from fabric.api import task


        @task
        def dump():
            """Dump the schema."""
        ''',
    "fabfile/web.py": '''\
        from fabric.api import task

        __all__ = ["deploy"]


        @task(name="deploy-app")
        def deploy(branch="main"):
            """Deploy a branch."""
            print("deploying %s" % branch)


        @task
        def secret():
            """Hidden by __all__."""
        ''',
    "fabfile/plain.py": '''\
        def no_tasks_here():
            pass
        ''',
}


def namespaced(fab: Fab) -> None:
    for path, text in NAMESPACED.items():
        fab.write(path, text)


def test_list_normal_with_namespaces_defaults_and_aliases(fab):
    namespaced(fab)
    code, out, err = fab("--list")
    assert code == 0, err
    assert out.splitlines() == [
        "Package fabfile.",
        "",
        "Available commands:",
        "",
        "    status          Show status.",
        "    db              Run migrations.",
        "    db.load         Restore a dump.",
        "    db.migrate      Run migrations.",
        "    db.restore      Restore a dump.",
        "    db.schema.dump  Dump the schema.",
        "    web.deploy-app  Deploy a branch.",
    ]


def test_list_nested_format(fab):
    namespaced(fab)
    code, out, _ = fab("--list", "--list-format=nested")
    assert code == 0
    assert out.splitlines() == [
        "Package fabfile.",
        "",
        "Available commands (remember to call as module.[...].task):",
        "",
        "    status",
        "    db:",
        "        load",
        "        migrate",
        "        restore",
        "        schema:",
        "            dump",
        "    web:",
        "        deploy-app",
    ]


def test_namespaced_tasks_run_by_dotted_name_default_and_alias(fab):
    namespaced(fab)
    code, out, err = fab("db", "db.load:nightly", "web.deploy-app:branch=v2")
    assert code == 0, err
    assert out.splitlines() == ["migrating", "restoring nightly", "deploying v2", "", "Done."]
    assert env.tasks == ["db", "db.load:nightly", "web.deploy-app:branch=v2"]
    assert env.real_fabfile == str(fab.root / "fabfile")
    assert set(state.commands) == {"status", "db", "web"}


def test_plain_functions_are_not_tasks_once_task_objects_exist(fab):
    namespaced(fab)
    code, out, err = fab("not_a_task")
    assert code == 1
    assert "Warning: Command(s) not found:\n    not_a_task\n" in err
    assert "Available commands:" in out


# ---------------------------------------------------------------------------------------------
# -d
# ---------------------------------------------------------------------------------------------


def test_display_prints_docstring_and_arguments(fab):
    classic(fab)
    code, out, err = fab("-d", "greet")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:3] == ["Displaying detailed information for task 'greet':", "",
                         "    Say hello."]
    assert "    More words here." in lines
    assert "    Arguments: name, greeting='hi'" in lines
    assert lines[-1] == ""


def test_display_of_unknown_task_aborts_with_the_valid_names(fab):
    classic(fab)
    code, out, err = fab("--display", "nope")
    assert code == 1
    assert ("Fatal error: Task 'nope' does not appear to exist. Valid task names:\n"
            "    greet\n    long\n    restart_app\n    show_env\n\nAborting.\n") in err


# ---------------------------------------------------------------------------------------------
# running tasks, arguments, unknown tasks
# ---------------------------------------------------------------------------------------------


def test_local_tasks_get_positional_and_keyword_arguments(fab):
    classic(fab)
    code, out, err = fab("greet:World\\, all,greeting=hey", "show_env")
    assert code == 0, err
    assert out.splitlines() == [
        "hey, World, all",
        "tasks=['greet:World\\\\, all,greeting=hey', 'show_env'] command=show_env",
        "",
        "Done.",
    ]


def test_parse_arguments_handles_escapes_and_host_keywords():
    parsed = fab_main.parse_arguments([
        "deploy",
        "t:a,b\\,c,k=v\\=w,x=1=2",
        "t2:host=h1,roles=r1; r2,exclude_hosts=h2;h3",
        "t3:hosts=a;b,role=web",
        "t4:",
    ])
    assert parsed == [
        ("deploy", [], {}, [], [], []),
        ("t", ["a", "b,c"], {"k": "v=w", "x": "1=2"}, [], [], []),
        ("t2", [], {}, ["h1"], ["r1", "r2"], ["h2", "h3"]),
        ("t3", [], {}, ["a", "b"], ["web"], []),
        ("t4", [""], {}, [], [], []),
    ]


def test_per_task_hosts_reach_execute(fab, monkeypatch):
    fab.write("fabfile.py", """\
        def where():
            pass
        """)
    calls: List[Tuple] = []

    def fake_execute(task, *args, **kwargs):
        calls.append((task, args, kwargs))
        return {}

    monkeypatch.setattr("fabric.tasks.execute", fake_execute)
    code, _, err = fab("where:a1,k=v,hosts=h1;h2,role=web,exclude_hosts=h2")
    assert code == 0, err
    assert calls == [("where", ("a1",), {"k": "v", "hosts": ["h1", "h2"], "roles": ["web"],
                                         "exclude_hosts": ["h2"]})]


def test_unknown_tasks_warn_list_and_run_nothing(fab):
    fab.write("fabfile.py", """\
        def first():
            print("first ran")
        """)
    code, out, err = fab("first", "nosuch", "other:x")
    assert code == 1
    assert "\nWarning: Command(s) not found:\n    nosuch\n    other\n\n" in err
    assert out.splitlines() == ["Available commands:", "", "    first"]


def test_skip_unknown_tasks_runs_the_known_ones(fab):
    fab.write("fabfile.py", """\
        def first():
            print("first ran")
        """)
    code, out, err = fab("--skip-unknown-tasks", "nosuch", "first")
    assert code == 0, err
    assert "nosuch" in err and "Warning:" in err
    assert out.splitlines() == ["first ran", "", "Done."]


def test_bare_fab_prints_help_and_fails(fab):
    classic(fab)
    code, out, _ = fab()
    assert code == 1
    assert out.startswith("Usage: fab [options] <command>"
                          "[:arg1,arg2=val2,host=foo,hosts='h1;h2',...] ...\n")


def test_default_task_runs_when_no_task_is_named(fab):
    fab.write("fabfile.py", """\
        from fabric.api import task

        @task(default=True)
        def build():
            print("building")

        @task
        def other():
            print("other")
        """)
    code, out, err = fab()
    assert code == 0, err
    assert out.splitlines() == ["building", "", "Done."]


def test_fabfile_without_tasks_aborts(fab):
    fab.write("fabfile.py", "X = 1\n")
    code, _, err = fab("anything")
    assert code == 1
    assert "Fatal error: Fabfile didn't contain any commands!\n\nAborting.\n" in err


# ---------------------------------------------------------------------------------------------
# finding and importing the fabfile
# ---------------------------------------------------------------------------------------------

NO_FABFILE = ("\nFatal error: Couldn't find any fabfiles!\n\nRemember that -f can be used to "
              "specify fabfile path, and use -h for help.\n\nAborting.\n")


def test_no_fabfile_aborts(fab):
    code, out, err = fab("deploy")
    assert code == 1
    assert err.endswith(NO_FABFILE)
    assert "Done." not in out


def test_fabfile_is_found_in_a_parent_directory(fab):
    classic(fab)
    deep = fab.root / "a" / "b"
    deep.mkdir(parents=True)
    code, out, err = fab("greet:x", cwd=deep)
    assert code == 0, err
    assert out.splitlines()[0] == "hi, x"
    assert env.real_fabfile == str(fab.root / "fabfile.py")


def test_dash_f_relative_home_and_bare_module_names(fab):
    fab.write("ops/tasks.py", "def one():\n    print('one')\n")
    home = Path(os.environ["HOME"])
    (home / "fm_homefab.py").write_text("def two():\n    print('two')\n")
    code, out, err = fab("-f", "ops/tasks.py", "one")
    assert (code, out.splitlines()[0]) == (0, "one"), err
    code, out, err = fab("-f", "~/fm_homefab.py", "two")
    assert (code, out.splitlines()[0]) == (0, "two"), err
    assert env.real_fabfile == str(home / "fm_homefab.py")
    # a bare name is looked for upward, with ".py" added
    code, out, err = fab("--fabfile", "tasks", "one", cwd=fab.root / "ops")
    assert (code, out.splitlines()[0]) == (0, "one"), err
    code, _, err = fab("-f", "ops/missing.py", "one")
    assert code == 1 and err.endswith(NO_FABFILE)


def test_sys_path_is_restored_after_loading(fab):
    fab.write("fabfile.py", """\
        import sys
        import fm_sibling
        SEEN_FIRST = sys.path[0]

        def t():
            print("first on path during import:", SEEN_FIRST)
            print(fm_sibling.VALUE)
        """)
    fab.write("fm_sibling.py", "VALUE = 'sibling imported'\n")
    before = list(sys.path)
    code, out, err = fab("t")
    assert code == 0, err
    assert out.splitlines()[:2] == [f"first on path during import: {fab.root}",
                                    "sibling imported"]
    assert sys.path == before


def test_sys_path_is_restored_when_the_fabfile_fails_to_import(fab):
    fab.write("fabfile.py", "raise RuntimeError('broken fabfile')\n")
    before = list(sys.path)
    code, out, err = fab("t")
    assert code == 1
    assert "Traceback" in err and "RuntimeError: broken fabfile" in err
    assert sys.path == before


def test_fabfile_named_like_a_library_module_does_not_replace_it(fab):
    import json

    fab.write("ops/json.py", "def shout():\n    print('json fabfile task')\n")
    code, out, err = fab("-f", "ops/json.py", "shout")
    assert code == 0, err
    assert out.splitlines()[0] == "json fabfile task"
    assert sys.modules["json"] is json


def test_fabfile_module_code_overrides_set_like_fabric_1(fab):
    fab.write("fabfile.py", """\
        from fabric.api import env
        env.stage = "from-fabfile"

        def show():
            print(env.stage, env.other)
        """)
    code, out, _ = fab("--set", "stage=cli,other=cli", "show")
    assert code == 0
    assert out.splitlines()[0] == "from-fabfile cli"


# ---------------------------------------------------------------------------------------------
# options, --set, rc files, output levels
# ---------------------------------------------------------------------------------------------

ENV_DUMP = """\
from fabric.api import env

def dump():
    pass
"""


def test_set_values_booleans_numbers_and_escapes(fab):
    fab.write("fabfile.py", ENV_DUMP)
    code, _, err = fab("--set", "flag,empty=,name=a\\,b,eq=x=y,use_ssh_config=false,"
                       "always_use_pty=No,timeout=3,pool_size=4,combine_stderr=0,"
                       "mystery=false", "dump")
    assert code == 0, err
    assert env.flag is True and env.empty == "" and env.name == "a,b" and env.eq == "x=y"
    assert env.use_ssh_config is False and env.always_use_pty is False
    assert env.timeout == 3.0 and env.pool_size == 4 and env.combine_stderr is False
    assert env.mystery == "false"  # not a typed key: kept as typed, like Fabric 1.x
    assert "" not in env


def test_set_bad_number_aborts(fab):
    fab.write("fabfile.py", ENV_DUMP)
    code, _, err = fab("--set", "timeout=soon", "dump")
    assert code == 1
    assert "Fatal error: --set: env.timeout takes a number, not 'soon'" in err


def test_explicit_options_beat_set_and_defaults_do_not(fab):
    fab.write("fabfile.py", ENV_DUMP)
    code, _, err = fab("--set", "shell=/bin/sh -c,user=deploy,use_ssh_config=true",
                       "-s", "/bin/zsh -c", "dump")
    assert code == 0, err
    assert env.shell == "/bin/zsh -c"
    assert env.user == "deploy"
    assert env.use_ssh_config is True
    code, _, err = fab("--set", "use_ssh_config=no", "--ssh-config", "dump")
    assert env.use_ssh_config is True


def test_option_values_reach_env(fab, monkeypatch):
    fab.write("fabfile.py", ENV_DUMP)
    monkeypatch.setattr("fabric.tasks.execute", lambda *a, **k: {})  # no connections
    code, _, err = fab("-H", "h1, h2,", "-R", "web,db", "-x", "h3", "-i", "k1", "-i", "k2",
                       "-p", "pw", "-u", "bob", "--port", "2200", "-P", "-z", "3", "-w",
                       "-g", "gw:22", "-t", "4.5", "-T", "9", "-n", "2", "--no-pty",
                       "--abort-on-prompts", "-k", "-a", "-A", "dump")
    assert code == 0, err
    assert env.hosts == ["h1", "h2"] and env.roles == ["web", "db"]
    assert env.exclude_hosts == ["h3"]
    assert env.key_filename == ["k1", "k2"]
    assert (env.password, env.user, env.port, env.parallel, env.pool_size) == \
        ("pw", "bob", "2200", True, 3)
    assert (env.warn_only, env.gateway, env.timeout, env.command_timeout) == \
        (True, "gw:22", 4.5, 9.0)
    assert (env.connection_attempts, env.always_use_pty, env.abort_on_prompts) == \
        (2, False, True)
    assert (env.no_keys, env.no_agent, env.forward_agent) == (True, True, True)


def _every_env_option():
    from fabric.state import env_options

    for option in env_options:
        if option.dest in ("hide", "show"):
            continue  # output levels: test_hide_and_show_levels
        yield pytest.param(option, id=option.get_opt_string())


_SAMPLE_VALUES = {"int": ("7", 7), "float": ("2.5", 2.5)}


@pytest.mark.parametrize("option", list(_every_env_option()))
def test_every_env_option_sets_its_env_key(fab, monkeypatch, option):
    fab.write("fabfile.py", ENV_DUMP)
    monkeypatch.setattr("fabric.tasks.execute", lambda *a, **k: {})  # no connections
    flag = option.get_opt_string()
    if option.action == "store_true":
        argv, expected = [flag], True
    elif option.action == "store_false":
        argv, expected = [flag], False
    else:
        raw, expected = _SAMPLE_VALUES.get(option.type, ("sample-value", "sample-value"))
        if option.dest in ("hosts", "roles", "exclude_hosts"):
            expected = ["sample-value"]
        elif option.action == "append":
            expected = ["sample-value"]
        elif option.dest == "fabfile":
            raw = expected = "fabfile.py"
        elif option.dest == "rcfile":
            raw = expected = str(fab.root / "no-such-rc")
        argv = [flag, raw]
    code, _, err = fab(*argv, "dump")
    assert code == 0, err
    assert env[option.dest] == expected


def test_rcfile_is_applied_after_the_options(fab):
    fab.write("fabfile.py", ENV_DUMP)
    rc = fab.write("rc", """\
        # comment line
        user = rc-user

        hosts = a, b
        stage = prod
        linewise = yes
        keepalive = 7
        """)
    code, _, err = fab("-c", str(rc), "-u", "cli-user", "--set", "stage=qa", "dump")
    assert code == 0, err
    assert env.user == "rc-user"  # Fabric 1.x: the rc file wins over the command line
    assert env.stage == "prod"
    assert env.hosts == ["a", "b"]
    assert env.linewise is True and env.keepalive == 7
    assert env.rcfile == str(rc)


def test_default_rcfile_is_read_from_home(fab):
    fab.write("fabfile.py", ENV_DUMP)
    Path(os.environ["HOME"], ".fabricrc").write_text("from_home = yes\n")
    code, _, err = fab("dump")
    assert code == 0, err
    assert env.from_home == "yes"


def test_hide_and_show_levels(fab):
    fab.write("fabfile.py", ENV_DUMP)
    code, out, err = fab("--show", "debug", "--hide", "running,status", "dump")
    assert code == 0, err
    assert output.debug is True and output.running is False and output.status is False
    assert "Done." not in out
    assert f"Using fabfile '{fab.root / 'fabfile.py'}'" in out
    assert "Commands to run: dump" in out
    code, _, _ = fab("--hide", "everything", "dump")
    assert output.stdout is False and output.warnings is False and output.aborts is True


def test_unknown_output_level_aborts(fab):
    fab.write("fabfile.py", ENV_DUMP)
    code, _, err = fab("--hide", "runing", "dump")
    assert code == 1
    assert "Fatal error: Unknown output level(s) for --hide: runing (known levels:" in err


def test_version_and_help(fab):
    from fabric.version import version_report

    code, out, _ = fab("-V")
    assert (code, out) == (0, version_report() + "\n")
    code, out, _ = fab("--help")
    assert code == 0
    words = set(out.replace(",", " ").replace("=", " ").split())
    missing = [name for name in HELP_OPTIONS if name not in words]
    assert not missing, missing


def test_bad_option_is_a_usage_error(fab):
    code, _, err = fab("--no-such-option")
    assert code == 2
    assert "no such option: --no-such-option" in err
    code, _, err = fab("-F", "fancy", "--list")
    assert code == 2 and "invalid choice: 'fancy'" in err


def test_initial_password_prompts(fab, monkeypatch):
    fab.write("fabfile.py", ENV_DUMP)
    asked: List[str] = []

    def fake_prompt(prompt, stream):
        asked.append(prompt)
        return f"secret-{len(asked)}"

    monkeypatch.setattr("fabric.network._password_prompt", fake_prompt)
    code, _, err = fab("-I", "--initial-sudo-password-prompt", "--abort-on-prompts", "dump")
    assert code == 0, err
    assert asked == ["Initial value for env.password: ",
                     "Initial value for env.sudo_password: "]
    assert env.password == "secret-1" and env.sudo_password == "secret-2"


# ---------------------------------------------------------------------------------------------
# exit codes and the end of a run
# ---------------------------------------------------------------------------------------------

FAILING = """\
import sys
from fabric.api import abort

def crash():
    raise RuntimeError("boom in task")

def stop():
    abort("stopping here")

def leave():
    sys.exit(3)

def interrupt():
    raise KeyboardInterrupt

def fine():
    print("fine")
"""


@pytest.fixture
def disconnects(monkeypatch):
    calls: List[int] = []
    monkeypatch.setattr("fabric.network.disconnect_all", lambda: calls.append(1))
    return calls


@pytest.mark.parametrize("task,code,needle", [
    ("crash", 1, "RuntimeError: boom in task"),
    ("stop", 1, "\nFatal error: stopping here\n\nAborting.\n"),
    ("leave", 3, ""),
    ("interrupt", 1, "\nStopped.\n"),
])
def test_failures_give_exit_codes_and_still_disconnect(fab, disconnects, task, code, needle):
    fab.write("fabfile.py", FAILING)
    got, out, err = fab(task, "fine")
    assert got == code
    assert needle in err
    assert "fine" not in out and "Done." not in out
    assert disconnects == [1]


def test_success_prints_done_and_disconnects(fab, disconnects):
    fab.write("fabfile.py", FAILING)
    code, out, _ = fab("fine")
    assert (code, out) == (0, "fine\n\nDone.\n")
    assert disconnects == [1]


def test_main_without_argv_reads_sys_argv_and_exits(fab, monkeypatch):
    fab.write("fabfile.py", FAILING)
    monkeypatch.setattr(sys, "argv", ["fab", "leave"])
    monkeypatch.chdir(fab.root)
    with pytest.raises(SystemExit) as info:
        fab_main.main()
    assert info.value.code == 3


# ---------------------------------------------------------------------------------------------
# --show-route
# ---------------------------------------------------------------------------------------------


def test_show_route_prints_the_hops(fab):
    code, out, err = fab("-g", "deploy@bastion.example:2200", "--show-route",
                         "app@10.0.0.5:2222")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Route to app@10.0.0.5:2222 (app@10.0.0.5:2222):"
    assert lines[1].split()[:3] == ["1.", "gateway", "deploy@bastion.example:2200"]
    assert lines[2].split()[:3] == ["2.", "target", "app@10.0.0.5:2222"]


def test_show_route_sees_what_the_fabfile_sets(fab):
    fab.write("fabfile.py", """\
        from fabric.api import env
        env.gateway = "ops@jump.example:2022"

        def t():
            pass
        """)
    code, out, err = fab("--show-route", "app@10.0.0.7")
    assert code == 0, err
    assert "1. gateway ops@jump.example:2022" in out


def test_remainder_runs_without_a_fabfile(fab, monkeypatch):
    ran: List[Tuple[str, object]] = []
    monkeypatch.setattr("fabric.operations.run",
                        lambda command, **kw: ran.append((command, env.command)))
    code, out, err = fab("--", "uname", "-a")
    assert code == 0, err
    assert ran == [("uname -a", "<remainder>")]
    assert env.real_fabfile is None
    assert out == "\nDone.\n"


def test_show_route_without_a_way_to_build_it_fails(fab):
    code, out, err = fab("-g", "bastion:notaport", "--show-route", "app@10.0.0.5")
    assert code == 1
    assert "Fatal error: " in err and "notaport" in err and "Aborting." in err
    assert "Route to" not in out


# ---------------------------------------------------------------------------------------------
# the real `fab` against the loopback SSH server
# ---------------------------------------------------------------------------------------------

REMOTE = '''\
"""Remote tasks."""
import sys
import time

from fabric.api import env, run, task


@task
def hello():
    """Say hello remotely."""
    run("echo hello")


@task
def fail():
    run("echo before; exit 3")
    run("echo not reached")


@task
def which_shell():
    run("echo via $0")


@task
def nap():
    sys.stdout.write("napping\\n")
    sys.stdout.flush()
    time.sleep(30)
'''


def _fab_env(home: Path) -> Dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK",)}
    environ["HOME"] = str(home)
    environ["PYTHONUNBUFFERED"] = "1"
    return environ


@pytest.fixture
def remote(tmp_path, local_ssh):
    require(FAB.exists(), "the fab console script is not installed (pip install -e .)")
    proj = tmp_path / "remote"
    proj.mkdir()
    (proj / "fabfile.py").write_text(REMOTE)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)

    def call(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(FAB), "-i", local_ssh.key_filename, *argv], cwd=proj,
                              env=_fab_env(home), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    call.proj = proj  # type: ignore[attr-defined]
    call.home = home  # type: ignore[attr-defined]
    return call


def _lines(text: str) -> List[str]:
    return [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]


def _in_order(lines: List[str], wanted: List[str]) -> bool:
    pos = 0
    for line in lines:
        if pos < len(wanted) and line == wanted[pos]:
            pos += 1
    return pos == len(wanted)


def test_fab_runs_a_remote_task(remote, local_ssh):
    hs = local_ssh.host_string
    res = remote("-H", hs, "hello")
    assert res.returncode == 0, res.stdout + res.stderr
    assert _in_order(_lines(res.stdout), [
        f"[{hs}] Executing task 'hello'",
        f"[{hs}] run: echo hello",
        f"[{hs}] out: hello",
        "",
        "Done.",
        f"Disconnecting from 127.0.0.1:{local_ssh.port}... done.",
    ]), res.stdout
    assert res.stderr == ""


def test_fab_failing_command_aborts_and_still_disconnects(remote, local_ssh):
    hs = local_ssh.host_string
    res = remote("-H", hs, "fail")
    assert res.returncode == 1
    assert _in_order(_lines(res.stderr), [
        "Fatal error: run() received nonzero return code 3 while executing!", "Aborting."]), \
        res.stderr
    out = _lines(res.stdout)
    assert f"[{hs}] out: before" in out
    assert "Done." not in out and not any("not reached" in line for line in out)
    assert out[-2] == f"Disconnecting from 127.0.0.1:{local_ssh.port}... done."


def test_fab_warn_only_hide_running_and_remainder(remote, local_ssh):
    hs = local_ssh.host_string
    res = remote("-w", "--hide", "running", "-H", hs, "fail", "--", "echo", "rest=$((6*7))")
    assert res.returncode == 0, res.stdout + res.stderr
    out = _lines(res.stdout)
    assert any(line.startswith("Warning: run() received nonzero return code 3 while executing")
               for line in _lines(res.stderr)), res.stderr
    assert not any(" run: " in line or "Executing task" in line for line in out), out
    assert _in_order(out, [f"[{hs}] out: before", f"[{hs}] out: not reached",
                           f"[{hs}] out: rest=42", "Done."]), out


def test_fab_rcfile_and_set_reach_the_remote_run(remote, local_ssh):
    rc = remote.proj / "rc"
    rc.write_text(f"hosts = {local_ssh.host_string}\n# a comment\n")
    res = remote("-c", str(rc), "--set", "shell=/bin/sh -c", "--show", "debug", "which_shell")
    assert res.returncode == 0, res.stdout + res.stderr
    out = _lines(res.stdout)
    assert f"[{local_ssh.host_string}] run: /bin/sh -c \"echo via \\$0\"" in out, out
    assert f"[{local_ssh.host_string}] out: via /bin/sh" in out


def test_fab_parallel_prefixes_every_line_with_its_host(remote, local_ssh):
    with_user = local_ssh.host_string
    without_user = f"{local_ssh.host}:{local_ssh.port}"
    res = remote("-P", "-H", f"{with_user},{without_user}", "--", "echo", "par")
    assert res.returncode == 0, res.stdout + res.stderr
    out = _lines(res.stdout)
    for hs in (with_user, without_user):
        assert f"[{hs}] Executing task '<remainder>'" in out
        assert f"[{hs}] out: par" in out
    assert "Done." in out


def test_fab_list_and_display_as_a_subprocess(remote):
    res = remote("--list")
    assert res.returncode == 0, res.stderr
    assert _lines(res.stdout)[:6] == ["Remote tasks.", "", "Available commands:", "",
                                      "    fail", "    hello        Say hello remotely."]
    res = remote("-d", "hello")
    assert res.returncode == 0
    assert _lines(res.stdout)[:3] == ["Displaying detailed information for task 'hello':",
                                      "", "    Say hello remotely."]


def test_fab_interrupted_says_stopped(remote):
    proc = subprocess.Popen([str(FAB), "nap"], cwd=remote.proj, env=_fab_env(remote.home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        seen = b""
        while b"napping" not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"task never started: {seen!r}"
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                assert chunk, f"fab exited early: {seen!r}"
                seen += chunk
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole group
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert err.decode().endswith("\nStopped.\n")
    assert b"Done." not in seen + out
