"""fabric.contrib (files, project, console, django) against the in-process ``local_ssh``
server, plus pure unit tests of the quoting and of the rsync command line.

The server runs commands as the current user on this machine, so what a remote command did
is checked directly on the local filesystem.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List

import pytest

from fabric import state
from fabric.contrib import console, django, files, project
from fabric.contrib.files import (
    _escape_for_regex,
    _expand_path,
    append,
    comment,
    contains,
    exists,
    first,
    is_link,
    sed,
    uncomment,
    upload_template,
)
from fabric.contrib.project import rsync_project, upload_project
from fabric.state import env
from tests.testbed.prereq import require

pytestmark = pytest.mark.usefixtures("fabric_state")

# Text that breaks naive quoting: both quotes, $ (with and without a name after it),
# backslashes, a slash, & and regex metacharacters.
NASTY = """it's a "test" of $HOME, $5 & \\back\\slash /etc/x [a-z]*.+?(g){2}|^ ~ `id`"""


@pytest.fixture
def remote(local_ssh):
    """env aimed at the in-process server with its key; strict host key checking."""
    env.host_string = local_ssh.host_string
    env.key_filename = [local_ssh.key_filename]
    env.system_known_hosts = local_ssh.known_hosts
    env.disable_known_hosts = True
    env.reject_unknown_hosts = True
    env.no_agent = True
    env.no_keys = True
    env.abort_exception = RuntimeError  # a failed command fails the test with its message
    return local_ssh


def _sh_word(word: str, **extra_env: str) -> str:
    """What ``sh`` makes of a word produced by the quoting helpers."""
    out = subprocess.run(["sh", "-c", f"printf '%s' {word}"], capture_output=True, text=True,
                         timeout=10, env={**os.environ, **extra_env})
    assert out.returncode == 0, out.stderr
    return out.stdout


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# quoting (pure)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/tmp/plain", "/tmp/with space", "/tmp/it's", '/tmp/"dq"', "/tmp/a&b;c|d", "/tmp/$5",
    "/tmp/a$", "/tmp/`id`", "/tmp/*.txt", "/tmp/back\\slash", "", "/tmp/a  b",
])
def test_expand_path_is_literal_apart_from_expansions(path):
    word = _expand_path(path)
    assert word.count("\\") == path.count("\\")  # adds no backslash of its own
    assert _sh_word(word) == path


def test_expand_path_expands_tilde_and_variables_only():
    home = os.path.expanduser("~")
    assert _sh_word(_expand_path("~")) == home
    assert _sh_word(_expand_path("~/a b")) == f"{home}/a b"
    assert _sh_word(_expand_path("$FABX/x y"), FABX="/v a") == "/v a/x y"
    assert _sh_word(_expand_path("${FABX}z"), FABX="/v") == "/vz"
    # An escaped dollar and a tilde that is not leading stay literal.
    assert _sh_word(_expand_path("/p/\\$FABX/~"), FABX="no") == "/p/$FABX/~"


def test_escape_for_regex_matches_literally():
    import re

    for text in (NASTY, "a.b", "(x)", "[*]", "\\d"):
        assert re.fullmatch(_escape_for_regex(text), text)
        assert not re.fullmatch(_escape_for_regex(text), text + "x")
    assert _escape_for_regex("a.b") == "a\\.b"


# ---------------------------------------------------------------------------------------------
# exists / is_link / first
# ---------------------------------------------------------------------------------------------


def test_exists_is_link_first(remote, tmp_path, capsys):
    odd = tmp_path / "dir with 'quotes' & \"more\" $5"
    odd.mkdir()
    (odd / "f").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(odd / "f")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    missing = str(tmp_path / "missing")

    assert exists(str(odd)) and exists(str(odd / "f"))
    assert not exists(missing)
    assert is_link(str(link)) and not is_link(str(odd / "f"))
    assert is_link(str(dangling)) and not exists(str(dangling))
    assert first(missing, str(odd / "f"), str(link)) == str(odd / "f")
    assert first(missing, missing + "2") is None
    # Quiet unless verbose.
    capsys.readouterr()
    exists(missing)
    quiet = capsys.readouterr()
    assert "test -e" not in quiet.out + quiet.err
    exists(missing, verbose=True)
    assert "test -e" in capsys.readouterr().out


def test_exists_expands_home_and_variables(remote, tmp_path):
    from fabric.context_managers import shell_env

    name = f".fab-contrib-{os.getpid()}-{tmp_path.name}"
    home_file = Path(getattr(remote, "home", None) or Path.home()) / name
    home_file.write_text("x")
    try:
        assert exists(f"~/{name}")
    finally:
        home_file.unlink()
    assert not exists(f"~/{name}")
    (tmp_path / "v").write_text("x")
    with shell_env(FAB_CONTRIB_DIR=str(tmp_path)):
        assert exists("$FAB_CONTRIB_DIR/v")
        assert not exists("\\$FAB_CONTRIB_DIR/v")


def test_exists_with_sudo(remote, tmp_path):
    require(shutil.which("sudo") is not None, "sudo is not installed")
    (tmp_path / "s").write_text("x")
    assert exists(str(tmp_path / "s"), use_sudo=True)
    assert not exists(str(tmp_path / "nope"), use_sudo=True)


# ---------------------------------------------------------------------------------------------
# contains / append
# ---------------------------------------------------------------------------------------------


def test_contains_literal_exact_and_case(remote, tmp_path):
    f = tmp_path / "c.txt"
    f.write_text(f"first\n{NASTY}\nMixed Case Line\n-dash line\n")
    path = str(f)
    assert contains(path, NASTY)
    assert contains(path, NASTY, exact=True)
    assert contains(path, "$HOME, $5 &")
    assert not contains(path, os.path.expanduser("~"))  # $HOME was not expanded
    assert contains(path, "back\\slash")
    assert not contains(path, "a-z]*.+?(g){3}")
    assert not contains(path, "first line", exact=True)
    assert contains(path, "first", exact=True)
    assert not contains(path, "mixed case")
    assert contains(path, "mixed case", case_sensitive=False)
    assert contains(path, "-dash")
    assert contains(path, r"^Mixed (Case|Kase)", escape=False)
    assert not contains(path, r"^Case", escape=False)
    assert not contains(str(tmp_path / "missing"), "first")


def test_append_is_idempotent_and_literal(remote, tmp_path):
    f = tmp_path / "sub dir" / "a 'file'.txt"
    f.parent.mkdir()
    path = str(f)
    lines = [NASTY, "plain", "  indented  ", "100% done\\n"]
    append(path, lines)  # creates the file
    append(path, lines)  # nothing new
    append(path, "plain")
    assert f.read_text() == "".join(line + "\n" for line in lines)
    append(path, "plain and more")  # "plain" is not this line
    assert f.read_text().endswith("plain and more\n")
    append(path, "plain and", partial=True)  # a line starts with it: skipped
    assert f.read_text().count("plain and") == 1
    append(path, "")  # empty lines are always added
    assert f.read_text().endswith("plain and more\n\n")


def test_append_with_sudo_in_a_cd(remote, tmp_path):
    require(shutil.which("sudo") is not None, "sudo is not installed")
    from fabric.context_managers import cd

    with cd(str(tmp_path)):
        append("rel.txt", ["x $y", "x $y"], use_sudo=True)
    assert (tmp_path / "rel.txt").read_text() == "x $y\n"


@pytest.mark.parametrize("setting", [{"shell_escape": False}, {"use_shell": False},
                                     {"shell": "/bin/sh -c"}], ids=str)
def test_text_helpers_survive_other_shell_settings(remote, tmp_path, setting):
    env.update(setting)
    f = tmp_path / "o.txt"
    lines = [NASTY, "back\\tslash", "-n"]
    append(str(f), lines)
    append(str(f), lines)
    assert f.read_text() == "".join(line + "\n" for line in lines)
    assert all(contains(str(f), line, exact=True) for line in lines)
    sed(str(f), r"^(back)\\t", r"<\1> & \\ ", shell=True)
    assert f.read_text().splitlines()[1] == "<back> back\\t \\ slash"


# ---------------------------------------------------------------------------------------------
# sed / comment / uncomment
# ---------------------------------------------------------------------------------------------


def test_sed_with_awkward_text_and_backup(remote, tmp_path):
    f = tmp_path / "conf file's.txt"
    original = 'url = "http://old/path" # $cost & more\nkeep /old/\nURL = http://old/\n'
    f.write_text(original)
    sed(str(f), 'http://old/path" # \\$cost', "https://new/it's \"here\" $x")
    assert f.read_text().splitlines()[0] == \
        'url = "https://new/it\'s "here" $x & more'
    assert Path(str(f) + ".bak").read_text() == original


def test_sed_limit_flags_groups_and_ampersand(remote, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("alpha=1\nbeta=1\nAlpha=2\n")
    sed(str(f), "=1", "=9", limit="^beta", backup="")
    assert f.read_text() == "alpha=1\nbeta=9\nAlpha=2\n"
    assert not Path(str(f) + ".bak").exists()
    sed(str(f), "^alpha=([0-9])", r"[\1] & \&", flags="i", backup=".orig")
    assert f.read_text() == "[1] alpha=1 &\nbeta=9\n[2] Alpha=2 &\n"
    assert Path(str(f) + ".orig").read_text() == "alpha=1\nbeta=9\nAlpha=2\n"


def test_comment_uncomment_round_trip(remote, tmp_path):
    f = tmp_path / "cfg"
    text = "PermitRootLogin yes\n    indented yes\nother\n"
    f.write_text(text)
    comment(str(f), "^PermitRootLogin.*$")
    comment(str(f), "indented")
    assert f.read_text() == "#PermitRootLogin yes\n    #indented yes\nother\n"
    uncomment(str(f), "PermitRootLogin")
    uncomment(str(f), "indented")
    assert f.read_text() == text
    comment(str(f), "^other$", char="// ")
    assert f.read_text().splitlines()[2] == "// other"
    uncomment(str(f), "other", char="//")
    assert f.read_text() == text
    assert Path(str(f) + ".bak").exists()


def test_sed_shell_true_keeps_backslashes(remote, tmp_path):
    # shell=True nests the command in bash -c "..." which would eat unescaped backslashes.
    f = tmp_path / "b.txt"
    f.write_text("a\\b $v\n")
    sed(str(f), r"a\\b \$v", r"c\\d", shell=True)
    assert f.read_text() == "c\\d\n"


# ---------------------------------------------------------------------------------------------
# upload_template
# ---------------------------------------------------------------------------------------------


def test_upload_template_plain_backup_and_directory(remote, tmp_path):
    tpl_dir = tmp_path / "tpl"
    tpl_dir.mkdir()
    tpl = tpl_dir / "app.conf"
    tpl.write_text("name=%(name)s\nquote=%(q)s\n100%%\n")
    tpl.chmod(0o640)
    dest_dir = tmp_path / "dest dir"
    dest_dir.mkdir()
    upload_template(str(tpl), str(dest_dir), context={"name": "svc", "q": "it's $x"})
    out = dest_dir / "app.conf"
    assert out.read_text() == "name=svc\nquote=it's $x\n100%\n"
    assert not (dest_dir / "app.conf.bak").exists()
    upload_template("app.conf", str(out), context={"name": "v2", "q": ""},
                    template_dir=str(tpl_dir), mirror_local_mode=True)
    assert out.read_text().startswith("name=v2\n")
    assert (dest_dir / "app.conf.bak").read_text().startswith("name=svc\n")
    assert (out.stat().st_mode & 0o777) == 0o640
    # No context: the file is sent as it is, % signs and all.
    upload_template(str(tpl), str(out), backup=False, mode=0o600)
    assert out.read_text() == tpl.read_text()
    assert (out.stat().st_mode & 0o777) == 0o600


def test_upload_template_jinja(remote, tmp_path):
    try:
        import jinja2  # noqa: F401
        have = True
    except ImportError:
        have = False
    require(have, "Jinja2 is not installed (it is in the test extras)")
    (tmp_path / "j.txt").write_text("{% for u in users %}{{ u }};{% endfor %}\n")
    dest = tmp_path / "out.txt"
    upload_template("j.txt", str(dest), {"users": ["a", "b'c"]}, use_jinja=True,
                    template_dir=str(tmp_path))
    assert dest.read_text() == "a;b'c;"
    upload_template("j.txt", str(dest), {"users": ["x"]}, use_jinja=True,
                    template_dir=str(tmp_path), keep_trailing_newline=True, backup=False)
    assert dest.read_text() == "x;\n"


# ---------------------------------------------------------------------------------------------
# console.confirm
# ---------------------------------------------------------------------------------------------


def _answers(monkeypatch, replies: List[str]) -> List[str]:
    asked: List[str] = []
    queue = list(replies)

    def fake_input(text: str = "") -> str:
        asked.append(text)
        return queue.pop(0)

    monkeypatch.setattr(builtins, "input", fake_input)
    return asked


@pytest.mark.parametrize("replies,default,expected", [
    ([""], True, True), ([""], False, False), (["Y"], False, True), (["yes"], False, True),
    (["No"], True, False), (["N"], True, False), (["YeS"], False, True),
])
def test_confirm_answers(monkeypatch, replies, default, expected):
    asked = _answers(monkeypatch, replies)
    assert console.confirm("Go on?", default=default) is expected
    suffix = "[Y/n] " if default else "[y/N] "
    assert asked == [f"Go on? {suffix}"]


def test_confirm_reasks_and_names_the_host(monkeypatch, capsys):
    env.host_string = "deploy@web1:22"
    asked = _answers(monkeypatch, ["maybe", "ja", "n"])
    assert console.confirm("Really?") is False
    assert len(asked) == 3 and all(a == "[deploy@web1:22] Really? [Y/n] " for a in asked)
    assert capsys.readouterr().out.count(
        "I didn't understand you. Please specify '(y)es' or '(n)o'.") == 2


def test_confirm_aborts_on_prompts(monkeypatch):
    _answers(monkeypatch, [])  # input() must not be reached
    env.abort_on_prompts = True
    with pytest.raises(SystemExit):
        console.confirm("Proceed?")


# ---------------------------------------------------------------------------------------------
# django
# ---------------------------------------------------------------------------------------------


def test_django_settings(monkeypatch):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    django.settings_module("site.settings.prod")
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "site.settings.prod"
    django.project("shop")
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "shop.settings"
    with pytest.raises(ValueError):
        django.project("")


# ---------------------------------------------------------------------------------------------
# upload_project
# ---------------------------------------------------------------------------------------------


def _tree(root: Path) -> Dict[str, str]:
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _fab_tempdirs() -> set:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("fab-upload-")}


def test_upload_project_round_trip(remote, tmp_path):
    src = tmp_path / "my project"
    (src / "pkg" / "deep").mkdir(parents=True)
    (src / "README").write_text("hello\n")
    (src / "pkg" / "deep" / "data.bin").write_bytes(os.urandom(200_000))
    (src / "pkg" / "it's $odd.txt").write_text("odd\n")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    dest = tmp_path / "remote dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("untouched")
    before = _fab_tempdirs()
    upload_project(str(src) + "/", str(dest))
    assert _tree(dest / "my project") == _tree(src)
    assert os.access(dest / "my project" / "run.sh", os.X_OK)
    assert sorted(os.listdir(dest)) == ["keep.txt", "my project"]  # remote tarball removed
    assert _fab_tempdirs() == before  # local temp dir removed


def test_upload_project_failures_are_clear_and_clean_up(remote, tmp_path):
    src = tmp_path / "p"
    src.mkdir()
    (src / "f").write_text("1")
    missing = tmp_path / "no such dir"
    before = _fab_tempdirs()
    with pytest.raises(RuntimeError):
        upload_project(str(src), str(missing))
    assert not missing.exists()
    assert _fab_tempdirs() == before
    with pytest.raises(RuntimeError, match="does not exist"):
        upload_project(str(tmp_path / "absent"), str(tmp_path))


def test_upload_project_with_sudo_and_glob_characters(remote, tmp_path):
    require(shutil.which("sudo") is not None, "sudo is not installed")
    from fabric.context_managers import cd

    src = tmp_path / "proj[1]*"
    src.mkdir()
    (src / "x").write_text("x\n")
    dest = tmp_path / "d"
    dest.mkdir()
    with cd(str(tmp_path)):
        upload_project(str(src), "d", use_sudo=True)  # remote_dir relative to cd()
    assert _tree(dest / "proj[1]*") == _tree(src)
    assert os.listdir(dest) == ["proj[1]*"]


# ---------------------------------------------------------------------------------------------
# rsync_project: the command line (local() captured)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def captured_local(monkeypatch):
    from fabric import operations

    commands: List[str] = []

    def fake_local(command, capture=False, **kwargs):
        commands.append(command)
        return ""

    monkeypatch.setattr(operations, "local", fake_local)
    return commands


def _rsh_argv(command: str) -> List[str]:
    """The ssh argv rsync would run for ``command`` (the local shell, then rsync's split)."""
    words = shlex.split(command)
    rsh = next(w for w in words if w.startswith("--rsh="))[len("--rsh="):]
    return _rsync_split(rsh)


def _rsync_split(text: str) -> List[str]:
    """rsync's own --rsh splitting: spaces separate, '' and "" quote (doubled = literal)."""
    args: List[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == " ":
            i += 1
            continue
        word = []
        while i < n and text[i] != " ":
            if text[i] in "'\"":
                q = text[i]
                i += 1
                while i < n:
                    if text[i] == q:
                        if i + 1 < n and text[i + 1] == q:
                            word.append(q)
                            i += 2
                            continue
                        i += 1
                        break
                    word.append(text[i])
                    i += 1
            else:
                word.append(text[i])
                i += 1
        args.append("".join(word))
    return args


def test_rsync_command_without_gateway(captured_local, tmp_path, monkeypatch):
    require(shutil.which("rsync") is not None, "rsync is not installed")
    env.host_string = "deploy@example.com:2222"
    env.key_filename = ["/keys/id one", "/keys/100%.key"]
    monkeypatch.chdir(tmp_path)
    rsync_project("/srv/app dir/", exclude=["*.pyc", "it's"], delete=True,
                  extra_opts="--dry-run", ssh_opts="-o Compression=yes")
    cmd = captured_local[-1]
    words = shlex.split(cmd)
    assert words[0] == "rsync" and words[1] == "--delete"
    assert "--exclude=*.pyc" in words and "--exclude=it's" in words
    assert words.index("-pthrvz") < words.index("--dry-run")
    assert words[-2:] == [f"../{tmp_path.name}", "deploy@example.com:/srv/app dir/"]
    argv = _rsh_argv(cmd)
    assert argv[:7] == ["ssh", "-i", "/keys/id one", "-i", "/keys/100%%.key", "-p", "2222"]
    assert argv[7:9] == ["-o", "Compression=yes"]
    assert not any("ProxyCommand" in a for a in argv)
    # Download: the remote side comes first; IPv6 literals are bracketed.
    env.host_string = "u@[2001:db8::5]:22"
    rsync_project("logs/", str(tmp_path / "in"), upload=False, default_opts="-a")
    words = shlex.split(captured_local[-1])
    assert words[-2:] == ["u@[2001:db8::5]:logs/", str(tmp_path / "in")]


def test_rsync_local_dir_keeps_globs_and_tilde(tmp_path):
    from fabric.contrib.project import _local_word

    (tmp_path / "a b.txt").write_text("")
    (tmp_path / "c.txt").write_text("")
    (tmp_path / "d.md").write_text("")
    word = _local_word(str(tmp_path / "*.txt"))
    out = subprocess.run(["sh", "-c", f"printf '%s|' {word}"], capture_output=True,
                         text=True, timeout=10).stdout
    assert out == f"{tmp_path}/a b.txt|{tmp_path}/c.txt|"
    assert _sh_word(_local_word("~/x y")) == os.path.expanduser("~/x y")
    assert _sh_word(_local_word("it's [not a glob")) == "it's [not a glob"


def test_rsync_command_host_key_policy(captured_local):
    require(shutil.which("rsync") is not None, "rsync is not installed")
    env.host_string = "h"
    env.system_known_hosts = "/kh/known hosts"
    env.disable_known_hosts = True
    rsync_project("/r", "l")
    argv = _rsh_argv(captured_local[-1])
    assert "GlobalKnownHostsFile=/kh/known hosts" in argv
    assert "UserKnownHostsFile=/dev/null" in argv
    assert "StrictHostKeyChecking=accept-new" in argv
    env.reject_unknown_hosts = True
    rsync_project("/r", "l")
    argv = _rsh_argv(captured_local[-1])
    assert "StrictHostKeyChecking=yes" in argv and "StrictHostKeyChecking=accept-new" not in argv


def test_rsync_proxy_chain_quoting(captured_local):
    """Two gateways: each level is a valid command line after the shell and ssh's %%."""
    require(shutil.which("rsync") is not None, "rsync is not installed")
    env.host_string = "t@target:22"
    env.gateway = "g1@gw1:2201,g2@gw2:2202"
    env.key_filename = ["/k/it's 50%"]
    rsync_project("/r", "l", ssh_opts="-o Ciphers=aes128-ctr -o User=ignored-for-hops")
    argv = _rsh_argv(captured_local[-1])
    outer = next(a for a in argv if a.startswith("ProxyCommand="))[len("ProxyCommand="):]
    level2 = shlex.split(outer.replace("%%", "%"))  # what the target's ssh runs
    assert level2[0] == "ssh" and level2[-3:] == ["-W", "target:22", "gw2"]
    assert ["-p", "2202", "-l", "g2"] == level2[1:5]
    assert "/k/it's 50%%" in level2  # -i values are %-escaped for ssh itself
    assert "Ciphers=aes128-ctr" in level2 and "User=ignored-for-hops" not in level2
    inner = next(a for a in level2 if a.startswith("ProxyCommand="))[len("ProxyCommand="):]
    level1 = shlex.split(inner.replace("%%", "%"))
    assert level1[-3:] == ["-W", "gw2:2202", "gw1"]
    assert ["-p", "2201", "-l", "g1"] == level1[1:5]
    assert not any(a.startswith("ProxyCommand=") for a in level1)


def test_rsync_leaves_route_to_explicit_proxy_in_ssh_opts(captured_local):
    require(shutil.which("rsync") is not None, "rsync is not installed")
    env.host_string = "t@target:22"
    env.gateway = "gw"
    rsync_project("/r", "l", ssh_opts="-J somewhere")
    argv = _rsh_argv(captured_local[-1])
    assert "-J" in argv and not any(a.startswith("ProxyCommand=") for a in argv)


# ---------------------------------------------------------------------------------------------
# rsync_project for real, through the in-process gateway (OpenSSH client + rsync)
# ---------------------------------------------------------------------------------------------


def test_rsync_through_local_gateway(local_gateway_pair, tmp_path):
    require(shutil.which("rsync") is not None, "rsync is not installed")
    require(shutil.which("ssh") is not None, "OpenSSH client (ssh) is not installed")
    gw, target = local_gateway_pair.gateway, local_gateway_pair.target
    env.host_string = target.host_string
    env.gateway = gw.host_string
    env.key_filename = [target.key_filename]
    env.system_known_hosts = local_gateway_pair.known_hosts
    env.disable_known_hosts = True
    env.reject_unknown_hosts = True
    env.no_agent = True
    env.abort_exception = RuntimeError
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(50_000))
    (src / "skip.pyc").write_text("no")
    dest = tmp_path / "dest"
    dest.mkdir()
    gw_logins, target_logins = gw.server.logins, target.server.logins
    rsync_project(str(dest), str(src) + "/", exclude="*.pyc", capture=True)
    assert _tree(dest) == {k: v for k, v in _tree(src).items() if not k.endswith(".pyc")}
    # Both servers listen on 127.0.0.1, so only the login counts show the hop was taken.
    assert gw.server.logins == gw_logins + 1
    assert target.server.logins == target_logins + 1
    back = tmp_path / "back"
    rsync_project(str(dest) + "/", str(back), upload=False, capture=True)
    assert _tree(back) == _tree(dest)


def test_module_all_names():
    assert set(files.__all__) == {"append", "comment", "contains", "exists", "first",
                                  "is_link", "sed", "uncomment", "upload_template"}
    assert set(project.__all__) == {"rsync_project", "upload_project"}
    assert state.env is env
