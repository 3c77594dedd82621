"""Fabric operations: command wrapping, output handling, local(), prompt(), require(), and
run/sudo/put/get/open_shell/reboot against the in-process loopback server (``local_ssh``)."""

from __future__ import annotations

import builtins
import getpass
import hashlib
import io
import os
import re
import threading
import time

import pytest

from fabric import operations
from fabric.exceptions import CommandTimeout
from fabric.io import CaptureBuffer, OutputLooper
from fabric.operations import (
    _AttributeList,
    _AttributeString,
    _prefix_commands,
    _prefix_env_vars,
    _shell_escape,
    _shell_wrap,
    _stdoutBytes,
    _stdoutString,
    _sudo_prefix,
    get,
    local,
    open_shell,
    prompt,
    put,
    reboot,
    require,
    run,
    sudo,
)
from fabric.state import env, output

pytestmark = pytest.mark.usefixtures("fabric_state")


# =============================================================================================
# wrapping and escaping (pure)
# =============================================================================================


def test_shell_escape_escapes_quote_dollar_backtick_only():
    assert _shell_escape('say "hi" $HOME `id` \\n') == 'say \\"hi\\" \\$HOME \\`id\\` \\n'


def test_shell_wrap_default_shell_and_escaping():
    assert _shell_wrap('echo "$X"', True) == '/bin/bash -l -c "echo \\"\\$X\\""'
    assert _shell_wrap('echo "$X"', False) == '/bin/bash -l -c "echo "$X""'
    env.shell = "/bin/sh -c"
    assert _shell_wrap("ls", True) == '/bin/sh -c "ls"'


def test_shell_wrap_shell_false_and_use_shell_false():
    assert _shell_wrap('echo "x"', True, shell=False) == 'echo "x"'
    env.use_shell = False
    assert _shell_wrap('echo "x"', True, shell=True) == 'echo "x"'


def test_sudo_prefix_formats():
    assert _sudo_prefix(None) == "sudo -S -p 'sudo password:' "
    assert _sudo_prefix("www") == "sudo -S -p 'sudo password:'  -u \"www\" "
    assert _sudo_prefix("1001", "0") == "sudo -S -p 'sudo password:'  -u \"#1001\" -g \"#0\" "
    assert _sudo_prefix(None, "adm") == "sudo -S -p 'sudo password:'  -g \"adm\" "
    env.sudo_prompt = "PW?"
    assert _sudo_prefix(None) == "sudo -S -p 'PW?' "
    wrapped = _shell_wrap("whoami", True, True, _sudo_prefix(None))
    assert wrapped == "sudo -S -p 'PW?'  /bin/bash -l -c \"whoami\""


def test_prefix_commands_cwd_first_then_prefixes():
    assert _prefix_commands("ls", "remote") == "ls"
    env.cwd = "/srv/my\\ app"
    env.command_prefixes = ["source venv/bin/activate", "umask 022"]
    assert _prefix_commands("ls", "remote") == (
        "cd /srv/my\\ app >/dev/null && source venv/bin/activate && umask 022 && ls")
    env.lcwd = "/tmp"
    assert _prefix_commands("ls", "local").startswith("cd /tmp >/dev/null && source")


@pytest.mark.parametrize("behavior,expected", [
    ("append", 'export PATH="$PATH:"/opt/bin"" && cmd'),
    ("prepend", 'export PATH=""/opt/bin":$PATH" && cmd'),
    ("replace", 'export PATH=""/opt/bin"" && cmd'),
])
def test_prefix_env_vars_path_behaviors(behavior, expected):
    env.path = "/opt/bin"
    env.path_behavior = behavior
    assert _prefix_env_vars("cmd") == expected


def test_prefix_env_vars_shell_env_escaped():
    assert _prefix_env_vars("cmd") == "cmd"
    env.shell_env = {"A": 'x "y" $z', "B": "2"}
    assert _prefix_env_vars("cmd") == 'export A="x \\"y\\" \\$z" B="2" && cmd'
    # Escaped twice over (run() wraps and escapes again): still the exact value remotely.
    assert _prefix_env_vars("cmd", _rewrapped=True) == \
        r'export A="x \\"y\\" \\$z" B="2" && cmd'
    env.path = "/p"
    assert _prefix_env_vars("cmd").startswith('export PATH="$PATH:"/p"" A=')


def test_return_types():
    s = _stdoutString("out")
    s.failed = False
    assert s == "out" and s.stdout == "out" and type(s.stdout) is str
    assert _AttributeString is _stdoutString
    b = _stdoutBytes(b"\x00\x01")
    assert b.stdout == b"\x00\x01"
    lst = _AttributeList(["a"])
    lst.failed = []
    assert lst == ["a"] and lst.failed == []


# =============================================================================================
# require / prompt
# =============================================================================================


def test_require_passes_when_present():
    env.thing = "x"
    require("thing", "host_string" if env.host_string else "thing")


def test_require_single_missing_message(capsys):
    env.command = "deploy"
    env.empty_list = []
    with pytest.raises(SystemExit):
        require("empty_list", used_for="picking servers", provided_by=["setup_env"])
    err = capsys.readouterr().err
    assert ("The command 'deploy' failed because the following required environment "
            "variable was not defined:\n    empty_list") in err
    assert "This variable is used for picking servers" in err
    assert "Try running the following command prior to this one, to fix this:\n    setup_env" \
        in err


def test_require_plural_and_callables(capsys):
    def staging():
        pass

    with pytest.raises(SystemExit):
        require("aa", "bb", provided_by=[staging, "production"])
    err = capsys.readouterr().err
    assert "The following required environment variables were not defined:\n    aa\n    bb" \
        in err
    assert "one of the following commands prior to this one, to fix this:\n    staging\n" \
        "    production" in err


def _feed_input(monkeypatch, answers, seen):
    answers = list(answers)

    def fake_input(text=""):
        seen.append(text)
        return answers.pop(0)

    monkeypatch.setattr(builtins, "input", fake_input)


def test_prompt_default_key_and_overwrite_warning(monkeypatch, capsys):
    seen = []
    _feed_input(monkeypatch, ["", "blue"], seen)
    assert prompt("Colour?", default="red") == "red"
    assert seen[0] == "Colour? [red] "
    env.colour = "green"
    env.host_string = "u@h:22"
    assert prompt("  Colour? ", key="colour") == "blue"
    assert seen[1] == "[u@h:22] Colour? "
    assert env.colour == "blue"
    assert "overwrote previous env variable 'colour'; used to be 'green', is now 'blue'." \
        in capsys.readouterr().err


def test_prompt_validate_regex_anchored(monkeypatch, capsys):
    seen = []
    _feed_input(monkeypatch, ["12a", "a12", "123"], seen)
    assert prompt("Port", validate=r"\d+") == "123"
    out = capsys.readouterr().out
    assert "Regular expression validation failed: '12a' does not match '^\\d+$'" in out
    assert len(seen) == 3


def test_prompt_validate_callable_converts_and_retries(monkeypatch, capsys):
    _feed_input(monkeypatch, ["x", "8"], [])
    assert prompt("N", validate=int) == 8
    assert "Validation failed for the following reason:" in capsys.readouterr().out


def test_prompt_aborts_with_abort_on_prompts(monkeypatch, capsys):
    _feed_input(monkeypatch, [], [])
    env.abort_on_prompts = True
    with pytest.raises(SystemExit):
        prompt("Anything?")
    assert "Needed to prompt for user input" in capsys.readouterr().err


# =============================================================================================
# local()
# =============================================================================================


def test_local_capture_attributes(capsys):
    result = local("echo hello; echo oops >&2", capture=True)
    assert result == "hello" and result.stderr == "oops"
    assert result.succeeded and not result.failed and result.return_code == 0
    assert result.command == "echo hello; echo oops >&2"
    assert capsys.readouterr().out == "[localhost] local: echo hello; echo oops >&2\n"


def test_local_failure_aborts_with_message(capsys):
    with pytest.raises(SystemExit):
        local("exit 4", capture=True)
    err = capsys.readouterr().err
    assert "Fatal error: local() encountered an error (return code 4) while executing " \
        "'exit 4'" in err


def test_local_warn_only_and_ok_ret_codes(capsys):
    env.warn_only = True
    result = local("exit 2", capture=True)
    assert result.failed and result.return_code == 2
    assert "Warning: local() encountered an error (return code 2)" in capsys.readouterr().err
    env.warn_only = False
    env.ok_ret_codes = [0, 2]
    assert local("exit 2", capture=True).succeeded


def test_local_binary_encoding_and_lcd_path_shell_env(tmp_path):
    data = local("printf '\\000\\001\\377 '", capture=True, encoding="binary")
    assert isinstance(data, bytes) and data == b"\x00\x01\xff "
    env.lcwd = str(tmp_path)
    env.shell_env = {"GREETING": 'hi "there" $x'}
    env.path = "/nonexistent/bin"
    out = local('pwd; echo "$GREETING"; echo "$PATH"', capture=True).splitlines()
    assert out[0] == str(tmp_path)
    assert out[1] == 'hi "there" $x'
    assert out[2].endswith(":/nonexistent/bin")


def test_local_uncaptured_goes_to_terminal_and_pty_false(capfd):
    result = local("echo visible; echo err-visible >&2", pty=False)
    assert result == "" and result.succeeded
    captured = capfd.readouterr()
    assert "visible\n" in captured.out and "err-visible" in captured.err
    output["stdout"] = False
    local("echo hidden-$((40+2))")
    out = capfd.readouterr().out
    assert "local: echo hidden-$((40+2))" in out and "hidden-42" not in out


def test_local_linewise_pumps_whole_lines(capfd):
    env.linewise = True
    local("for i in 1 2 3; do echo line$i; done; printf tail")
    out = capfd.readouterr().out
    assert "line1\nline2\nline3\ntail\n" in out


# =============================================================================================
# OutputLooper (pure, fake channel)
# =============================================================================================


class FakeChan:
    def __init__(self):
        self.sent = []

    def sendall(self, data):
        self.sent.append(data)


def test_looper_prefixes_across_chunks_and_crlf():
    stream = io.StringIO()
    cap = CaptureBuffer()
    looper = OutputLooper(FakeChan(), stream, cap, prefix="[h] out: ")
    for chunk in (b"one\r", b"\ntw", b"o\r\nthr", b"ee\rTHREE\n", b"last"):
        looper.feed(chunk)
    looper.finish()
    assert stream.getvalue() == ("[h] out: one\n[h] out: two\n[h] out: three\r[h] out: THREE\n"
                                 "[h] out: last\n")
    assert cap.getvalue() == "one\r\ntwo\r\nthree\rTHREE\nlast"


def test_looper_linewise_writes_only_whole_lines():
    writes = []

    class Recorder(io.StringIO):
        def write(self, s):
            writes.append(s)
            return len(s)

    looper = OutputLooper(FakeChan(), Recorder(), CaptureBuffer(), prefix="P ", linewise=True)
    looper.feed(b"ab")
    assert writes == []
    looper.feed(b"c\nde")
    looper.feed(b"f\ng\n")
    looper.finish()
    assert writes == ["P abc\n", "P def\nP g\n"]


def test_looper_decodes_split_utf8_and_no_prefix():
    stream = io.StringIO()
    looper = OutputLooper(FakeChan(), stream, CaptureBuffer(), prefix="")
    data = "héllo ✓\n".encode()
    for i in range(len(data)):
        looper.feed(data[i:i + 1])
    looper.finish()
    assert stream.getvalue() == "héllo ✓\n"


def test_capture_buffer_maxlen_keeps_tail():
    cap = CaptureBuffer(10)
    for i in range(2000):
        cap.append(f"{i},")
    assert cap.getvalue() == "1998,1999,"
    cap.drop_tail(5)
    assert cap.getvalue() == "1998,"


def test_looper_answers_env_prompts_once():
    chan = FakeChan()
    env.prompts = {"Continue? ": "yes", "": "never"}
    looper = OutputLooper(chan, io.StringIO(), CaptureBuffer(), printing=False)
    looper.feed(b"Contin")
    assert chan.sent == []
    looper.feed(b"ue? ")
    assert chan.sent == ["yes\n"]
    looper.feed(b"yes\n")
    assert chan.sent == ["yes\n"]


def test_looper_loop_reads_until_eof_and_times_out():
    import socket

    chunks = [b"a\n", b"b", b""]
    stream = io.StringIO()
    looper = OutputLooper(FakeChan(), stream, CaptureBuffer(), prefix="> ")
    looper.loop(lambda n: chunks.pop(0))
    assert stream.getvalue() == "> a\n> b\n"

    def never(n):
        time.sleep(0.02)
        raise socket.timeout()

    start = time.monotonic()
    with pytest.raises(CommandTimeout):
        OutputLooper(FakeChan(), io.StringIO(), CaptureBuffer()).loop(never, timeout=0.1)
    assert time.monotonic() - start < 2


def test_refused_session_is_a_network_error_naming_the_host():
    from fabric.exceptions import NetworkError
    from paramiko import SSHException

    class RefusingChannel:
        closed = False

        def settimeout(self, t):
            pass

        def set_combine_stderr(self, combine):
            pass

        def get_pty(self, **kw):
            pass

        def exec_command(self, command):
            raise SSHException("The server refused the exec request")

        def close(self):
            self.closed = True

    env.host_string = "deploy@web1:2222"
    chan = RefusingChannel()
    with pytest.raises(NetworkError) as info:
        operations._execute(chan, "uptime")
    assert info.value.host == "deploy@web1:2222" and info.value.phase == "channel-open"
    assert "deploy@web1:2222" in str(info.value) and "refused" in str(info.value)
    assert chan.closed


# =============================================================================================
# run / sudo against the loopback server
# =============================================================================================


@pytest.fixture
def host(local_ssh):
    env.host_string = local_ssh.host_string
    env.key_filename = [local_ssh.key_filename]
    env.disable_known_hosts = True
    env.no_agent = True
    env.no_keys = True
    return local_ssh


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_run_output_lines_and_attributes(host, capsys):
    hs = host.host_string
    result = run("echo hello")
    assert result == "hello"
    assert isinstance(result, _stdoutString) and result.stdout == "hello"
    assert result.return_code == 0 and result.succeeded and not result.failed
    assert result.stderr == ""
    assert result.command == "echo hello"
    assert result.real_command == '/bin/bash -l -c "echo hello"'
    assert capsys.readouterr().out == f"[{hs}] run: echo hello\n[{hs}] out: hello\n"


def test_run_failure_aborts_with_requested_and_executed(host, capsys):
    with pytest.raises(SystemExit):
        run("echo before; exit 3")
    err = capsys.readouterr().err
    assert ("Fatal error: run() received nonzero return code 3 while executing!\n\n"
            "Requested: echo before; exit 3\n"
            'Executed: /bin/bash -l -c "echo before; exit 3"\n\nAborting.') in err


def test_run_warn_only_ok_ret_codes_and_quiet(host, capsys):
    result = run("echo out; exit 3", warn_only=True)
    assert result.failed and not result.succeeded and result.return_code == 3
    assert result == "out"
    assert ("Warning: run() received nonzero return code 3 while executing "
            "'echo out; exit 3'!") in capsys.readouterr().err
    assert env.warn_only is False  # the keyword does not leak into env
    env.ok_ret_codes = [0, 3]
    assert run("exit 3").succeeded
    env.ok_ret_codes = [0]
    quiet_result = run("echo secret; exit 1", quiet=True)
    assert quiet_result.failed and quiet_result == "secret"
    captured = capsys.readouterr()
    assert "secret" not in captured.out and "secret" not in captured.err
    assert output.running is True and output.stdout is True  # restored


def test_run_stderr_separate_when_not_combined(host, capsys):
    hs = host.host_string
    result = run("echo o; echo e >&2", pty=False, combine_stderr=False)
    assert result == "o" and result.stderr == "e"
    captured = capsys.readouterr()
    assert f"[{hs}] out: o\n" in captured.out
    assert f"[{hs}] err: e\n" in captured.err
    combined = run("echo o; sleep 0.05; echo e >&2", pty=False)
    assert combined.splitlines() == ["o", "e"] and combined.stderr == ""


def test_run_pty_on_off(host):
    assert run("tty").startswith("/dev/pts/")
    assert run("printf 'a\\nb\\n'") == "a\r\nb"
    assert run("tty", pty=False, warn_only=True) == "not a tty"
    assert run("printf 'a\\nb\\n'", pty=False) == "a\nb"
    env.always_use_pty = False
    assert run("tty", warn_only=True) == "not a tty"


def test_run_cd_prefix_path_shell_env(host):
    env.cwd = host.workdir
    env.command_prefixes = ["export FOO=bar"]
    env.path = "/opt/fab-test/bin"
    env.shell_env = {"Q": 'a "b" $c `d` \\n'}
    lines = run('pwd; echo $FOO; echo $PATH; echo "$Q"', pty=False).splitlines()
    assert lines[0] == os.path.realpath(host.workdir) or lines[0] == host.workdir
    assert lines[1] == "bar"
    assert lines[2].endswith(":/opt/fab-test/bin")
    assert lines[3] == 'a "b" $c `d` \\n'


def test_run_escaping_and_shell_false(host):
    assert run('X=1; echo "x=$X" `echo tick`') == "x=1 tick"
    escaped = run('echo "$0"', pty=False)
    unescaped = run('echo "$0"', pty=False, shell_escape=False)
    assert "bash" in escaped and unescaped != escaped
    env.shell_escape = False
    assert run('echo "$0"', pty=False) == unescaped
    raw = run("echo $0", shell=False, pty=False)
    assert raw.real_command == "echo $0" and "bash" not in raw


def test_run_output_controls(host, capsys):
    hs = host.host_string
    env.output_prefix = False
    run("echo plain")
    assert capsys.readouterr().out == f"[{hs}] run: echo plain\nplain\n"
    env.output_prefix = True
    output.debug = True
    run("echo dbg")
    assert f'[{hs}] run: /bin/bash -l -c "echo dbg"\n' in capsys.readouterr().out
    output.debug = False
    output.running = False
    output.stdout = False
    assert run("echo hidden") == "hidden"
    assert capsys.readouterr().out == ""


def test_run_timeout_raises_and_stops_remote_command(host):
    start = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        run("sleep 7.31; echo never", timeout=0.5)
    assert time.monotonic() - start < 3
    assert info.value.timeout == 0.5
    env.command_timeout = "0.3"  # as --set gives it
    with pytest.raises(CommandTimeout):
        run("sleep 7.32", pty=False)
    env.command_timeout = None
    with pytest.raises(CommandTimeout) as info:
        run("sleep 7.33", timeout=1)
    assert info.value.timeout == 1 and str(info.value) == \
        "Command failed to finish in 1 seconds"
    env.command_timeout = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = local("pgrep -f 'sleep 7.3[123]' || true", capture=True)
        if not left:
            break
        time.sleep(0.1)
    assert not left, f"timed-out remote commands still running: {left}"
    assert run("echo still-usable") == "still-usable"


def test_run_true_is_fast(host):
    run("true")  # connect once
    start = time.monotonic()
    for _ in range(5):
        run("true", pty=False, shell=False)
    assert (time.monotonic() - start) / 5 < 0.25


def test_run_stdin_parameter(host):
    assert run("cat", stdin="hello\n") == "hello"
    assert run("cat", stdin=b"bytes in") == "bytes in"
    text = io.StringIO("from a text stream")
    assert run("cat", stdin=text) == "from a text stream"
    blob = os.urandom(3_000_000)
    assert run("sha256sum | cut -c1-64", stdin=io.BytesIO(blob)) == _sha(blob)
    with pytest.raises(TypeError):
        run("cat", stdin=12)


def test_run_output_streams_parameters(host, capsys):
    out, err = io.StringIO(), io.StringIO()
    result = run("echo to-out; echo to-err >&2", pty=False, combine_stderr=False,
                 stdout=out, stderr=err)
    assert result == "to-out" and result.stderr == "to-err"
    assert out.getvalue() == f"[{host.host_string}] out: to-out\n"
    assert err.getvalue() == f"[{host.host_string}] err: to-err\n"
    captured = capsys.readouterr()
    assert "to-out" not in captured.out.replace("run: echo to-out", "")
    assert "to-err" not in captured.err


@pytest.fixture
def fake_terminal(monkeypatch):
    """sys.stdin replaced by the slave side of a pty; yields the master fd to type into."""
    import sys

    master, slave = os.openpty()
    tty_in = os.fdopen(slave, "r")
    monkeypatch.setattr(sys, "stdin", tty_in)
    try:
        yield master
    finally:
        tty_in.close()
        os.close(master)


def test_terminal_input_forwarded_and_echoed(host, fake_terminal, capsys):
    from fabric.io import stdin_fd_for_forwarding

    env.command_timeout = 10  # a lost keystroke must fail the test, not hang it
    os.write(fake_terminal, b"typed\n")
    assert run("read x; echo got=$x", pty=False) == "got=typed"
    # Without a pty nobody else echoes the keystrokes: we do (env.echo_stdin).
    assert "typed\n" in capsys.readouterr().out.replace("got=typed", "")
    env.echo_stdin = False
    os.write(fake_terminal, b"quiet\n")
    assert run("read x; echo got=$x", pty=False) == "got=quiet"
    assert "quiet" not in capsys.readouterr().out.replace("got=quiet", "")
    os.write(fake_terminal, b"via-pty\n")
    assert run("read x; echo got=$x").endswith("got=via-pty")
    assert stdin_fd_for_forwarding(None) is not None
    env.parallel = True
    assert stdin_fd_for_forwarding(None) is None  # hosts would fight over keystrokes


def test_run_large_output_captured_quickly(host, capsys):
    output.stdout = False
    start = time.monotonic()
    result = run("head -c 10000000 /dev/zero | tr '\\0' a; echo", pty=False)
    elapsed = time.monotonic() - start
    assert len(result) == 10_000_000 and set(result) == {"a"}
    assert elapsed < 15, elapsed
    output.stdout = True
    capsys.readouterr()
    shown = run("seq 1 200000", pty=False)
    assert shown.splitlines()[-1] == "200000"
    out = capsys.readouterr().out
    assert out.count(f"[{host.host_string}] out: ") == 200000


def test_run_capture_buffer_size(host):
    output.stdout = False
    result = run("seq 1 5000", pty=False, capture_buffer_size=30)
    assert len(result) <= 30 and result.endswith("4999\n5000")


def test_env_prompts_auto_answer(host):
    env.prompts = {"Continue? ": "yes"}
    result = run('printf "Continue? "; read x; echo "got $x"', pty=False)
    assert result.endswith("got yes")


def test_sudo_prompt_answered_from_env_password(host, capsys):
    env.password = "s3cret"
    script = 'printf "sudo password:"; read pw; echo "pw=$pw"'
    assert run(script, pty=False) == "pw=s3cret"
    assert f"[{host.host_string}] out: sudo password:\n" in capsys.readouterr().out
    # With a pty, like sudo, turn echo off: the answer then shows up nowhere.
    result = run("stty -echo; " + script)
    assert result.replace("\r", "").strip() == "pw=s3cret"
    assert "s3cret" not in capsys.readouterr().out.replace("pw=s3cret", "")


def test_sudo_prompt_again_prompt_forces_reprompt(host, monkeypatch):
    asked = []

    def fake_getpass(prompt="", stream=None):
        asked.append(prompt)
        return "right"

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    env.password = "wrong"
    script = ('printf "sudo password:"; read a; echo "Sorry, try again."; '
              'printf "sudo password:"; read b; echo "a=$a b=$b"')
    result = run(script, pty=False)
    assert result.endswith("a=wrong b=right")
    assert len(asked) == 1 and host.host_string in asked[0]
    key = f"{host.user}@{host.host}:{host.port}"
    assert env.passwords[key] == "right" and env.password == "wrong"
    # The typed password is used next time without asking again.
    assert run('printf "sudo password:"; read a; echo "a=$a"', pty=False) == "a=right"
    assert len(asked) == 1


def test_sudo_prompt_with_abort_on_prompts_aborts(host, capsys):
    env.abort_on_prompts = True
    with pytest.raises(SystemExit):
        run('printf "sudo password:"; read a', pty=False)
    assert "abort-on-prompts was set to True" in capsys.readouterr().err


@pytest.fixture
def fake_sudo(tmp_path):
    """A stand-in for sudo: checks the password like ``sudo -S`` and runs the command."""
    script = tmp_path / "fakesudo"
    script.write_text(
        "#!/bin/sh\n"
        "prompt=''; args=''\n"
        "while [ $# -gt 0 ]; do case \"$1\" in\n"
        "  -S) shift;; -p) prompt=\"$2\"; shift 2;;\n"
        "  -u|-g) args=\"$args $1 $2\"; shift 2;;\n"
        "  *) break;; esac; done\n"
        "tries=0\n"
        # Like sudo: echo goes off *before* the prompt appears.
        "ask() { [ -t 0 ] && stty -echo; printf '%s' \"$prompt\" >&2; read pw; r=$?; "
        "[ -t 0 ] && { stty echo; echo; }; return $r; }\n"
        "while :; do ask || exit 1\n"
        "  [ \"$pw\" = letmein ] && break\n"
        "  tries=$((tries+1)); [ $tries -ge 3 ] && { echo 'fakesudo: 3 incorrect' >&2; exit 1; }\n"
        "  echo 'Sorry, try again.' >&2; done\n"
        "echo \"as:$args\"\n"
        "exec \"$@\"\n")
    script.chmod(0o755)
    env.sudo_prefix = f"{script} -S -p '%(sudo_prompt)s' "
    return script


def test_sudo_through_fake_sudo(host, fake_sudo, monkeypatch, capsys):
    hs = host.host_string
    env.sudo_password = "letmein"
    result = sudo("echo ran", user="www", group="1000")
    assert result.splitlines() == ["as: -u www -g #1000", "ran"]
    shown = capsys.readouterr().out
    assert shown == (f"[{hs}] sudo: echo ran\n[{hs}] out: sudo password:\n"
                     f"[{hs}] out: as: -u www -g #1000\n[{hs}] out: ran\n")
    assert sudo("echo ran", pty=False).splitlines()[-1] == "ran"
    assert f"[{hs}] out: sudo password:\n[{hs}] out: as:" in capsys.readouterr().out
    assert result.real_command.startswith(f"{fake_sudo} -S -p 'sudo password:'  -u \"www\"")
    env.sudo_user = "deploy"
    assert sudo("true", pty=False).startswith("as: -u deploy")
    # A wrong stored password: the user is asked (once per failure), then it works.
    env.sudo_password = "nope"
    answers = iter(["bad", "letmein"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="", stream=None: next(answers))
    assert sudo("echo ok").endswith("ok")


def test_parallel_style_threads_never_interleave_lines(local_ssh, capsys):
    from fabric.state import isolated_context

    env.key_filename = [local_ssh.key_filename]
    env.disable_known_hosts = True
    env.no_agent = env.no_keys = True
    hosts = [local_ssh.host_string, f"{local_ssh.user}@localhost:{local_ssh.port}"]
    errors = []

    def task():
        try:
            run("for i in $(seq 1 300); do echo line-$i-" + "x" * 60 + "; done")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=isolated_context(host_string=h, parallel=True).run,
                                args=(task,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    lines = capsys.readouterr().out.splitlines()
    names = "|".join(re.escape(h) for h in hosts)
    pattern = re.compile(rf"^\[({names})\] (run: .*|out: line-\d+-x{{60}})$")
    assert len(lines) == 602
    assert all(pattern.match(line) for line in lines), [x for x in lines
                                                        if not pattern.match(x)][:3]


def test_remote_interrupt_sends_ctrl_c(host):
    import signal

    def interrupt_soon():
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)

    env.remote_interrupt = True
    threading.Thread(target=interrupt_soon, daemon=True).start()
    start = time.monotonic()
    result = run("sleep 5; echo done", warn_only=True)
    assert time.monotonic() - start < 4
    assert result.failed and "done" not in result
    env.remote_interrupt = False
    threading.Thread(target=interrupt_soon, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run("sleep 5")
    assert run("echo alive") == "alive"


# =============================================================================================
# put / get
# =============================================================================================


@pytest.fixture
def remote_dir(host, tmp_path_factory):
    """A fresh directory on the "remote" side (the loopback server shares our filesystem)."""
    path = tmp_path_factory.mktemp("remote")
    return str(path)


def test_put_single_file_checksum_and_status(host, remote_dir, tmp_path, capsys):
    data = os.urandom(1_500_000)
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    result = put(str(src), remote_dir)
    target = os.path.join(remote_dir, "blob.bin")
    assert list(result) == [target] and result.succeeded and result.failed == []
    assert _sha(open(target, "rb").read()) == _sha(data)
    assert f"[{host.host_string}] put: {src} -> {target}\n" in capsys.readouterr().out


def test_put_mode_mirror_and_filelike(host, remote_dir, tmp_path):
    src = tmp_path / "script.sh"
    src.write_text("#!/bin/sh\necho hi\n")
    src.chmod(0o751)
    put(str(src), remote_dir + "/mirrored.sh", mirror_local_mode=True)
    assert os.stat(remote_dir + "/mirrored.sh").st_mode & 0o7777 == 0o751
    put(str(src), remote_dir + "/moded.sh", mode=0o640)
    assert os.stat(remote_dir + "/moded.sh").st_mode & 0o7777 == 0o640
    put(str(src), remote_dir + "/strmode.sh", mode="600")
    assert os.stat(remote_dir + "/strmode.sh").st_mode & 0o7777 == 0o600
    buf = io.BytesIO(b"in memory")
    buf.read(3)
    assert list(put(buf, remote_dir + "/mem.txt")) == [remote_dir + "/mem.txt"]
    assert open(remote_dir + "/mem.txt", "rb").read() == b"in memory"
    assert buf.tell() == 3  # position restored
    put(io.StringIO("text ✓"), remote_dir + "/text.txt")
    assert open(remote_dir + "/text.txt", encoding="utf-8").read() == "text ✓"


def test_put_directory_glob_and_cwd(host, remote_dir, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    files = {"a.txt": b"A" * 1000, "b.txt": b"B", "sub/c.bin": os.urandom(200_000)}
    for name, content in files.items():
        (tree / name).write_bytes(content)
    uploaded = put(str(tree), remote_dir)
    assert sorted(uploaded) == sorted(os.path.join(remote_dir, "tree", n) for n in files)
    for name, content in files.items():
        assert _sha(open(os.path.join(remote_dir, "tree", name), "rb").read()) == _sha(content)
    os.mkdir(remote_dir + "/globbed")
    globbed = put(str(tree / "*.txt"), remote_dir + "/globbed")
    assert sorted(os.path.basename(p) for p in globbed) == ["a.txt", "b.txt"]
    env.cwd = remote_dir.replace(" ", "\\ ")
    put(str(tree / "b.txt"), "relative.txt")
    assert open(remote_dir + "/relative.txt", "rb").read() == b"B"
    env.cwd = ""
    env.lcwd = str(tree)
    put("a.txt", remote_dir + "/from-lcd.txt")
    assert os.path.getsize(remote_dir + "/from-lcd.txt") == 1000


def test_put_errors(host, remote_dir, tmp_path, capsys):
    with pytest.raises(ValueError, match="not a valid local path or glob"):
        put(str(tmp_path / "missing-*.nothing"), remote_dir)
    src = tmp_path / "x.txt"
    src.write_text("x")
    env.warn_only = True
    result = put(str(src), remote_dir + "/no/such/dir/x.txt")
    assert not result.succeeded and result.failed == [str(src)] and list(result) == []
    assert f"put() encountered an exception while uploading '{src}'" in capsys.readouterr().err
    env.warn_only = False
    with pytest.raises(SystemExit):
        put(str(src), remote_dir + "/no/such/dir/x.txt")


def test_get_default_template_dir_target_and_template(host, remote_dir, tmp_path,
                                                      monkeypatch, capsys):
    data = os.urandom(800_000)
    remote_file = os.path.join(remote_dir, "data.bin")
    with open(remote_file, "wb") as fh:
        fh.write(data)
    monkeypatch.chdir(tmp_path)
    result = get(remote_file)
    expected = os.path.join(str(tmp_path), host.host_string.replace(":", "-"),
                            remote_file.lstrip("/"))
    assert list(result) == [expected] and result.succeeded
    assert _sha(open(expected, "rb").read()) == _sha(data)
    assert f"[{host.host_string}] download: {expected} <- {remote_file}\n" \
        in capsys.readouterr().out
    (tmp_path / "into").mkdir()
    assert list(get(remote_file, str(tmp_path / "into"))) == [str(tmp_path / "into/data.bin")]
    templ = get(remote_file, str(tmp_path / "t" / "%(basename)s.100%.copy"))
    assert list(templ) == [str(tmp_path / "t" / "data.bin.100%.copy")]
    env.lcwd = str(tmp_path / "lcd")
    assert list(get(remote_file, "rel.bin")) == [str(tmp_path / "lcd" / "rel.bin")]
    buf = io.BytesIO()
    assert list(get(remote_file, buf)) == []
    assert buf.getvalue() == data


def test_get_directory_and_glob(host, remote_dir, tmp_path):
    os.makedirs(os.path.join(remote_dir, "logs", "app"))
    contents = {"logs/x.log": b"x", "logs/y.log": b"yy", "logs/app/z.log": b"zzz",
                "logs/notes.txt": b"n"}
    for name, content in contents.items():
        with open(os.path.join(remote_dir, name), "wb") as fh:
            fh.write(content)
    got = get(os.path.join(remote_dir, "logs"), str(tmp_path / "dl"))
    assert sorted(got) == sorted(str(tmp_path / "dl" / n) for n in contents)
    for name, content in contents.items():
        assert (tmp_path / "dl" / name).read_bytes() == content
    globbed = get(os.path.join(remote_dir, "logs", "*.log"), str(tmp_path / "g"))
    assert sorted(os.path.basename(p) for p in globbed) == ["x.log", "y.log"]
    env.cwd = remote_dir
    rel = get("logs/notes.txt", str(tmp_path / "%(dirname)s-%(basename)s"))
    assert (tmp_path / f"{remote_dir}/logs-notes.txt".lstrip("/")).read_bytes() == b"n" \
        or os.path.exists(rel[0])


def test_get_missing_remote(host, remote_dir, tmp_path, capsys):
    env.warn_only = True
    result = get(remote_dir + "/absent.txt", str(tmp_path / "x"))
    assert result.failed == [remote_dir + "/absent.txt"] and not result.succeeded
    assert "get() encountered an exception while downloading" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a valid remote path or glob"):
        get(remote_dir + "/nothing-*.here", str(tmp_path / "y"))


def test_put_get_use_sudo_bounce(host, remote_dir, tmp_path, fake_sudo):
    env.sudo_password = "letmein"
    src = tmp_path / "s.txt"
    src.write_bytes(b"via sudo")
    assert list(put(str(src), remote_dir + "/s.txt", use_sudo=True, mode=0o600,
                    temp_dir=remote_dir)) == [remote_dir + "/s.txt"]
    assert open(remote_dir + "/s.txt", "rb").read() == b"via sudo"
    assert os.stat(remote_dir + "/s.txt").st_mode & 0o777 == 0o600
    got = get(remote_dir + "/s.txt", str(tmp_path / "back.txt"), use_sudo=True,
              temp_dir=remote_dir)
    assert (tmp_path / "back.txt").read_bytes() == b"via sudo" and got.succeeded
    assert sorted(os.listdir(remote_dir)) == ["s.txt"]  # no temporary files left


# =============================================================================================
# open_shell / reboot
# =============================================================================================


def test_open_shell_with_command_exits(host, capsys):
    start = time.monotonic()
    assert open_shell("echo shell-$((6*7))") is None
    assert time.monotonic() - start < 10
    assert "shell-42" in capsys.readouterr().out


def test_reboot_reconnects(host, capsys):
    from fabric import state

    run("true")
    capsys.readouterr()
    before = state.connections[host.host_string]
    start = time.monotonic()
    reboot(wait=0.2, command="true", use_sudo=False)
    assert time.monotonic() - start < 5
    after = state.connections[host.host_string]
    assert after is not before
    assert before.get_transport() is None or not before.get_transport().is_active()
    assert run("echo back") == "back"
    assert "run: true" not in capsys.readouterr().out
