"""The operations a fabfile calls: ``run``, ``sudo``, ``local``, ``put``, ``get``,
``open_shell``, ``reboot``, ``prompt`` and ``require``.

Remote commands run on a fresh session channel of the host's cached connection
(:func:`fabric.state.default_channel`), wrapped in ``env.shell`` with the ``cd()``, ``prefix()``,
``path()`` and ``shell_env()`` settings applied, and their output streamed with ``[host] out:``
prefixes. Unlike Fabric 1.x nothing here polls: the channel is waited on with ``select``.
"""

from __future__ import annotations

import contextlib
import io as _stdio
import os
import re
import selectors
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from fabric.exceptions import CommandTimeout, NetworkError
from fabric.io import (
    CaptureBuffer,
    OutputLooper,
    _PromptState,
    char_buffered,
    pump_channel,
    stdin_fd_for_forwarding,
)
from fabric.network import needs_host
from fabric.state import default_channel, env, output
from fabric.thread_handling import ThreadHandler
from fabric.utils import (
    _pty_size,
    abort,
    apply_lcwd,
    error,
    handle_prompt_abort,
    indent,
    isatty,
    output_lock,
    warn,
)
from paramiko import SSHException

__all__ = [
    "get",
    "local",
    "open_shell",
    "prompt",
    "put",
    "reboot",
    "require",
    "run",
    "sudo",
]


# ---------------------------------------------------------------------------------------------
# return types
# ---------------------------------------------------------------------------------------------


class _stdoutString(str):
    """The captured stdout of a command, carrying ``failed``, ``succeeded``,
    ``return_code``, ``stderr``, ``command`` and ``real_command`` attributes."""

    @property
    def stdout(self) -> str:
        return str(self)


#: Fabric 1.14's name for the same type.
_AttributeString = _stdoutString


class _stdoutBytes(bytes):
    """:class:`_stdoutString` for ``local(..., encoding='binary')``."""

    @property
    def stdout(self) -> bytes:
        return bytes(self)


class _AttributeList(list):
    """A list that accepts attributes (``put``/``get`` results: ``failed``, ``succeeded``)."""


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------

_MISSING = object()


@contextlib.contextmanager
def _settings(hide: Tuple[str, ...] = (), **env_values: Any) -> Iterator[None]:
    """Temporarily hide output levels and set env keys (restored afterwards).

    A private stand-in for ``settings(hide(...), ...)`` so this module does not depend on
    ``fabric.context_managers``.
    """
    saved_env = {k: env.get(k, _MISSING) for k in env_values}
    levels = output.expand_aliases(hide) if hide else []
    saved_out = {k: output.get(k, _MISSING) for k in levels}
    try:
        for key, value in env_values.items():
            env[key] = value
        for level in levels:
            output[level] = False
        yield
    finally:
        for key, value in saved_env.items():
            if value is _MISSING:
                env.pop(key, None)
            else:
                env[key] = value
        for level, value in saved_out.items():
            if value is _MISSING:
                output.pop(level, None)
            else:
                output[level] = value


def _console(text: str, stream: Any = None) -> None:
    """Write whole lines to the console under the output lock."""
    stream = stream if stream is not None else sys.stdout
    with output_lock:
        try:
            stream.write(text)
            stream.flush()
        except (ValueError, OSError):
            pass


# ---------------------------------------------------------------------------------------------
# command wrapping
# ---------------------------------------------------------------------------------------------


def _shell_escape(string: str) -> str:
    """Backslash-escape ``"``, ``$`` and `````` for use inside a double-quoted shell word."""
    for char in ('"', "$", "`"):
        string = string.replace(char, "\\" + char)
    return string


def _shell_wrap(command: str, shell_escape: bool, shell: bool = True,
                sudo_prefix: Optional[str] = None) -> str:
    """``[sudo_prefix ]env.shell "command"`` (escaped when ``shell_escape``).

    ``shell=False`` or ``env.use_shell=False`` sends the command unwrapped.
    """
    if shell and not env.get("use_shell", True):
        shell = False
    lead = "" if sudo_prefix is None else sudo_prefix + " "
    if not shell:
        return lead + command
    if shell_escape:
        command = _shell_escape(command)
    return f'{lead}{env.shell} "{command}"'


def _prefix_commands(command: str, which: str) -> str:
    """Put ``cd <cwd> >/dev/null`` (``which`` 'remote': env.cwd, 'local': env.lcwd) and
    ``env.command_prefixes`` in front of ``command``, all joined with `` && ``."""
    prefixes = list(env.get("command_prefixes") or [])
    cwd = env.get("cwd") if which == "remote" else env.get("lcwd")
    if cwd:
        prefixes.insert(0, f"cd {cwd} >/dev/null")
    if not prefixes:
        return command
    return " && ".join(prefixes) + " && " + command


def _prefix_env_vars(command: str, local: bool = False, _rewrapped: bool = False) -> str:
    """Put ``export PATH="..." K="v" && `` in front of ``command`` for ``path()`` (per
    ``env.path_behavior``) and ``env.shell_env``; values other than PATH are escaped.

    ``_rewrapped``: the result will be escaped again by :func:`_shell_wrap`, which leaves
    backslashes alone; the values' escapes are then doubled so ``"``, ``$`` and `````` in a
    value still arrive intact (Fabric 1.x produced a broken command there).
    """
    variables: Dict[str, str] = {}
    path = env.get("path")
    if path:
        behavior = env.get("path_behavior", "append")
        if behavior == "prepend":
            variables["PATH"] = f'"{path}":$PATH'
        elif behavior == "replace":
            variables["PATH"] = f'"{path}"'
        else:
            variables["PATH"] = f'$PATH:"{path}"'
    variables.update(env.get("shell_env") or {})
    if not variables:
        return command
    def quote(value: Any) -> str:
        escaped = _shell_escape(str(value))
        return escaped.replace("\\", "\\\\") if _rewrapped else escaped

    exports = " ".join(f'{name}="{value if name == "PATH" else quote(value)}"'
                       for name, value in variables.items())
    return f"export {exports} && {command}"


def _sudo_prefix_argument(argument: str, value: Any) -> str:
    if value is None:
        return ""
    if str(value).isdigit():
        value = f"#{value}"  # sudo reads "#N" as a numeric uid/gid
    return f' {argument} "{value}"'


def _sudo_prefix(user: Any, group: Any = None) -> str:
    """``env.sudo_prefix % env``, plus `` -u "user"`` / `` -g "group"`` when given."""
    prefix = env.sudo_prefix % env
    if user is None and group is None:
        return prefix
    return (prefix + _sudo_prefix_argument("-u", user)
            + _sudo_prefix_argument("-g", group) + " ")


# ---------------------------------------------------------------------------------------------
# running a command on a channel
# ---------------------------------------------------------------------------------------------


def _wants_agent_forwarding() -> bool:
    if env.get("forward_agent"):
        return True
    try:
        from fabric.network import ssh_config

        conf = ssh_config(env.host_string) or {}
    except Exception:
        return False
    return str(conf.get("forwardagent", "no")).strip().lower() == "yes"


def _stdin_source(stdin: Any) -> Any:
    """A readable object for the ``stdin=`` data, or None for "the local terminal"."""
    if stdin is None or stdin is sys.stdin:
        return None
    if isinstance(stdin, str):
        return _stdio.BytesIO(stdin.encode("utf-8"))
    if isinstance(stdin, (bytes, bytearray, memoryview)):
        return _stdio.BytesIO(bytes(stdin))
    if hasattr(stdin, "read"):
        return stdin
    raise TypeError(f"stdin= must be a file-like object, str or bytes, not "
                    f"{type(stdin).__name__}")


def _feed_stdin(chan: Any, source: Any) -> None:
    """Send everything ``source`` holds to the command, then EOF (runs in a helper thread)."""
    while True:
        data = source.read(32768)
        if not data:
            break
        if isinstance(data, str):
            data = data.encode("utf-8")
        view = memoryview(data)
        while len(view):
            try:
                sent = chan.send(view)
            except socket.timeout:
                continue  # the window is still shut; closing the channel ends the wait
            except OSError:
                return  # the command finished without reading everything
            if not sent:
                return
            view = view[sent:]
    chan.shutdown_write()


def _stop_remote(channel: Any, name: str = "TERM") -> None:
    """Ask the server to signal the command (sshd signals the session's process group).

    Closing the channel alone only stops commands with a pty (they get SIGHUP); without one
    OpenSSH lets them run on. Best effort: a server may ignore the request.
    """
    try:
        send = getattr(channel, "send_signal", None)
        if send is not None:
            send(name)
        else:  # this repo's Channel has no public method for the "signal" request yet
            channel._request("signal", lambda: channel._state.signal_request(name),
                             want_reply=False)
    except Exception:
        pass


def _execute(channel: Any, command: Optional[str], pty: bool = True,
             combine_stderr: Optional[bool] = None, invoke_shell: bool = False,
             stdin: Any = None, stdout: Any = None, stderr: Any = None,
             timeout: Optional[float] = None,
             capture_buffer_size: Optional[int] = None) -> Tuple[str, str, int]:
    """Run ``command`` (or a shell) on ``channel``; ``(stdout, stderr, exit status)``.

    Output is shown as it arrives and captured (stripped); with ``invoke_shell`` nothing is
    captured and the output is shown raw. Raises :class:`CommandTimeout` after ``timeout``
    seconds (default ``env.command_timeout``); the channel is closed either way.
    """
    out_stream = stdout if stdout is not None else sys.stdout
    err_stream = stderr if stderr is not None else sys.stderr
    if timeout is None:
        timeout = env.get("command_timeout")
    if timeout in ("", None):  # --set command_timeout= gives a string
        timeout = None
    source = None if invoke_shell else _stdin_source(stdin)
    using_pty = bool(invoke_shell or (pty and env.get("always_use_pty", True)
                                      and source is None))
    combine = env.get("combine_stderr", True) if combine_stderr is None else combine_stderr
    remote_interrupt = env.get("remote_interrupt")
    if remote_interrupt is None:
        remote_interrupt = invoke_shell
    stdin_fd = None if source is not None else stdin_fd_for_forwarding(stdin)
    shell_eof: Optional[Callable[[], None]] = None
    forward = None
    feeder = None
    loopers: List[OutputLooper] = []
    # Channel requests below wait for their reply this long (the 0.1 s read timeout Fabric
    # sets is meaningless here: reads only happen when select says data is there).
    channel.settimeout(float(env.get("timeout") or 10))
    try:
        # The value itself goes into CommandTimeout, as given (1 stays 1, as in Fabric 1.x).
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        try:
            if using_pty:
                rows, cols = _pty_size()
                channel.get_pty(term=os.environ.get("TERM") or "vt100", width=cols,
                                height=rows)
            channel.set_combine_stderr(bool(combine))
            if _wants_agent_forwarding():
                from paramiko.agent import AgentRequestHandler

                forward = AgentRequestHandler(channel)
            if invoke_shell:
                channel.invoke_shell()
            else:
                channel.exec_command(command)
        except SSHException as exc:
            host = env.get("host_string")
            what = "a shell" if invoke_shell else "the command"
            raise NetworkError(f"Could not start {what} on {host}: {exc}", exc, host=host,
                               phase="channel-open") from exc
        if invoke_shell:
            if command:
                channel.sendall(command + "\n")
            if stdin_fd is None:
                # Nobody can type into this shell: let it run the command and leave.
                channel.sendall("exit\n")
            elif not isatty(sys.stdin):
                # Piped keystrokes: once they run out, leave the shell as a user would.
                def leave_shell() -> None:
                    if not channel.closed:
                        channel.sendall("exit\n")

                shell_eof = leave_shell
            out = OutputLooper(channel, out_stream, None, raw=True)
            err = None
            out_capture = err_capture = None
        else:
            if source is not None:
                feeder = ThreadHandler("stdin", _feed_stdin, channel, source)
            linewise = bool(env.get("linewise") or env.get("parallel"))
            show_prefix = env.get("output_prefix", True)
            host = env.get("host_string")
            out_capture = CaptureBuffer(capture_buffer_size)
            err_capture = CaptureBuffer(capture_buffer_size)
            prompts = _PromptState()

            def before_prompt() -> None:
                for looper in loopers:
                    if looper.printing:
                        looper.end_line()

            out = OutputLooper(channel, out_stream, out_capture,
                               prefix=f"[{host}] out: " if show_prefix else "",
                               printing=bool(output.get("stdout", True)), linewise=linewise,
                               prompt_state=prompts, before_prompt=before_prompt)
            err = OutputLooper(channel, err_stream, err_capture,
                               prefix=f"[{host}] err: " if show_prefix else "",
                               printing=bool(output.get("stderr", True)), linewise=linewise,
                               prompt_state=prompts, before_prompt=before_prompt)
        loopers.extend(x for x in (out, err) if x is not None)
        with char_buffered(stdin_fd):
            try:
                status = pump_channel(channel, out, err, deadline=deadline, timeout=timeout,
                                      stdin_fd=stdin_fd, using_pty=using_pty,
                                      remote_interrupt=bool(remote_interrupt),
                                      echo=out_stream, on_stdin_eof=shell_eof)
            except (CommandTimeout, KeyboardInterrupt):
                # We stop waiting: the command must stop too, not run on unattended.
                _stop_remote(channel)
                raise
            finally:
                for looper in loopers:
                    looper.finish()
    finally:
        channel.close()
        if forward is not None:
            forward.close()
        if feeder is not None:
            feeder.join(5.0)
    if feeder is not None and not feeder.is_alive():
        feeder.raise_if_needed()
    if out_capture is None:
        return "", "", status
    return out_capture.getvalue().strip(), err_capture.getvalue().strip(), status


def _run_command(command: str, shell: bool = True, pty: bool = True,
                 combine_stderr: Optional[bool] = None, sudo: bool = False,
                 user: Any = None, quiet: bool = False, warn_only: bool = False,
                 stdin: Any = None, stdout: Any = None, stderr: Any = None, group: Any = None,
                 timeout: Optional[float] = None, shell_escape: Optional[bool] = None,
                 capture_buffer_size: Optional[int] = None) -> _stdoutString:
    if quiet:
        manager: Any = _settings(hide=("everything",), warn_only=True)
    elif warn_only:
        manager = _settings(warn_only=True)
    else:
        manager = contextlib.nullcontext()
    with manager:
        given = command
        if shell_escape is None:
            shell_escape = env.get("shell_escape", True)
        rewrapped = bool(shell and env.get("use_shell", True) and shell_escape)
        wrapped = _shell_wrap(_prefix_env_vars(_prefix_commands(command, "remote"),
                                               _rewrapped=rewrapped),
                              shell_escape, shell,
                              _sudo_prefix(user, group) if sudo else None)
        which = "sudo" if sudo else "run"
        if output.get("debug"):
            _console(f"[{env.host_string}] {which}: {wrapped}\n")
        elif output.get("running", True):
            _console(f"[{env.host_string}] {which}: {given}\n")
        result_out, result_err, status = _execute(
            channel=default_channel(), command=wrapped, pty=pty,
            combine_stderr=combine_stderr, invoke_shell=False, stdin=stdin, stdout=stdout,
            stderr=stderr, timeout=timeout, capture_buffer_size=capture_buffer_size)
        out = _stdoutString(result_out)
        err = _stdoutString(result_err)
        out.command = given
        out.real_command = wrapped
        out.return_code = status
        out.stderr = err
        out.failed = status not in env.get("ok_ret_codes", [0])
        out.succeeded = not out.failed
        if out.failed:
            msg = f"{which}() received nonzero return code {status} while executing"
            if env.get("warn_only"):
                msg += f" '{given}'!"
            else:
                msg += f"!\n\nRequested: {given}\nExecuted: {wrapped}"
            error(message=msg, stdout=out, stderr=err)
        return out


@needs_host
def run(command: str, shell: bool = True, pty: bool = True,
        combine_stderr: Optional[bool] = None, quiet: bool = False, warn_only: bool = False,
        stdin: Any = None, stdout: Any = None, stderr: Any = None,
        timeout: Optional[float] = None, shell_escape: Optional[bool] = None,
        capture_buffer_size: Optional[int] = None) -> _stdoutString:
    """Run ``command`` on the current host; returns its stdout with result attributes.

    ``shell`` wraps it in ``env.shell``; ``pty`` asks for a pseudo-terminal (if
    ``env.always_use_pty``); ``combine_stderr`` (default ``env.combine_stderr``) merges
    stderr into stdout; ``quiet`` hides everything and only warns on failure;
    ``warn_only`` warns instead of aborting on a return code outside ``env.ok_ret_codes``;
    ``stdin`` (file-like, str or bytes) is sent to the command followed by EOF;
    ``stdout``/``stderr`` are the streams output is shown on; ``timeout`` (default
    ``env.command_timeout``) raises :class:`~fabric.exceptions.CommandTimeout`;
    ``shell_escape`` (default ``env.shell_escape``, True) escapes ``"$``` for the wrapper;
    ``capture_buffer_size`` keeps only that many trailing characters.
    """
    return _run_command(command, shell=shell, pty=pty, combine_stderr=combine_stderr,
                        quiet=quiet, warn_only=warn_only, stdin=stdin, stdout=stdout,
                        stderr=stderr, timeout=timeout, shell_escape=shell_escape,
                        capture_buffer_size=capture_buffer_size)


@needs_host
def sudo(command: str, shell: bool = True, pty: bool = True,
         combine_stderr: Optional[bool] = None, user: Any = None, quiet: bool = False,
         warn_only: bool = False, stdin: Any = None, stdout: Any = None, stderr: Any = None,
         group: Any = None, timeout: Optional[float] = None,
         shell_escape: Optional[bool] = None,
         capture_buffer_size: Optional[int] = None) -> _stdoutString:
    """:func:`run` through ``sudo`` (``env.sudo_prefix``), as ``user`` (default
    ``env.sudo_user``) and/or ``group``; numeric ids are passed as ``#N``.

    The password prompt (``env.sudo_prompt``) is answered from ``env.sudo_passwords`` /
    ``env.sudo_password`` / ``env.passwords`` / ``env.password`` for this host, else the
    user is asked (and asked again after ``env.again_prompt``).
    """
    return _run_command(command, shell=shell, pty=pty, combine_stderr=combine_stderr,
                        sudo=True, user=user if user is not None else env.get("sudo_user"),
                        group=group, quiet=quiet, warn_only=warn_only, stdin=stdin,
                        stdout=stdout, stderr=stderr, timeout=timeout,
                        shell_escape=shell_escape, capture_buffer_size=capture_buffer_size)


# ---------------------------------------------------------------------------------------------
# local
# ---------------------------------------------------------------------------------------------


def _pump_local(proc: subprocess.Popen, show_out: bool, show_err: bool) -> None:
    """Show a local command's output whole line by whole line (parallel/linewise mode)."""
    loopers = {}
    sel = selectors.DefaultSelector()
    try:
        for pipe, stream, shown in ((proc.stdout, sys.stdout, show_out),
                                    (proc.stderr, sys.stderr, show_err)):
            if pipe is None:
                continue
            looper = OutputLooper(None, stream, None, printing=shown, linewise=True)
            loopers[pipe.fileno()] = looper
            sel.register(pipe, selectors.EVENT_READ, looper)
        while sel.get_map():
            for key, _ in sel.select():
                data = os.read(key.fd, 65536)
                if data:
                    key.data.feed(data)
                else:
                    sel.unregister(key.fileobj)
    finally:
        sel.close()
        for looper in loopers.values():
            looper.finish()


def local(command: str, capture: bool = False, shell: Optional[str] = None,
          pty: bool = True, encoding: str = "utf-8") -> Union[_stdoutString, _stdoutBytes]:
    """Run ``command`` on this machine (``/bin/sh -c``, or the ``shell`` executable).

    Honours ``lcd()``, ``path()``, ``prefix()`` and ``shell_env()``. With ``capture`` the
    output is returned instead of shown; ``pty=False`` detaches the command from the
    terminal (new session, no stdin); ``encoding='binary'`` returns bytes.
    """
    given = command
    wrapped = _prefix_commands(_prefix_env_vars(command, local=True), "local")
    if output.get("debug"):
        _console(f"[localhost] local: {wrapped}\n")
    elif output.get("running", True):
        _console(f"[localhost] local: {given}\n")
    linewise = bool(env.get("linewise") or env.get("parallel"))
    show_out = bool(output.get("stdout", True))
    show_err = bool(output.get("stderr", True))
    if capture:
        out_to: Any = subprocess.PIPE
        err_to: Any = subprocess.PIPE
    elif linewise:
        # Through us, so lines from parallel hosts stay whole on the console.
        out_to = subprocess.PIPE if show_out else subprocess.DEVNULL
        err_to = subprocess.PIPE if show_err else subprocess.DEVNULL
    else:
        out_to = None if show_out else subprocess.DEVNULL
        err_to = None if show_err else subprocess.DEVNULL
    extra: Dict[str, Any] = {}
    if not pty:
        extra["stdin"] = subprocess.DEVNULL
        extra["start_new_session"] = True
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()  # our own earlier output first
        except (ValueError, OSError, AttributeError):
            pass
    proc = subprocess.Popen(wrapped, shell=True, executable=shell, stdout=out_to,
                            stderr=err_to, close_fds=True, **extra)
    try:
        if capture:
            raw_out, raw_err = proc.communicate()
        else:
            if linewise:
                _pump_local(proc, show_out, show_err)
            proc.wait()
            raw_out, raw_err = b"", b""
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    if encoding == "binary":
        out: Any = _stdoutBytes(raw_out or b"")
        err: Any = _stdoutBytes(raw_err or b"")
    else:
        out = _stdoutString((raw_out or b"").decode(encoding, "replace").strip())
        err = _stdoutString((raw_err or b"").decode(encoding, "replace").strip())
    out.command = given
    out.real_command = wrapped
    out.return_code = proc.returncode
    out.stderr = err
    out.failed = proc.returncode not in env.get("ok_ret_codes", [0])
    out.succeeded = not out.failed
    if out.failed:
        msg = (f"local() encountered an error (return code {proc.returncode}) while "
               f"executing '{given}'")
        error(message=msg, stdout=out if isinstance(out, str) else None,
              stderr=err if isinstance(err, str) else None)
    return out


# ---------------------------------------------------------------------------------------------
# put / get
# ---------------------------------------------------------------------------------------------


def _remote_cwd() -> str:
    """env.cwd for SFTP use: the shell-escaped spaces of ``cd()`` turned back."""
    return (env.get("cwd") or "").replace("\\ ", " ")


def _resolve_remote(path: str, home: str) -> str:
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    cwd = _remote_cwd()
    if cwd and not path.startswith("/"):
        path = cwd.rstrip("/") + "/" + path
    return path


@needs_host
def put(local_path: Any = None, remote_path: Optional[str] = None, use_sudo: bool = False,
        mirror_local_mode: bool = False, mode: Any = None, use_glob: bool = True,
        temp_dir: Optional[str] = None) -> _AttributeList:
    """Upload ``local_path`` (a path, a glob, a directory or a file-like object) to
    ``remote_path`` (default: the remote home) on the current host.

    Returns the remote paths written, with ``failed`` (local paths that failed) and
    ``succeeded``. ``use_sudo`` uploads to ``temp_dir`` (default the remote home) and moves
    the file into place with ``sudo mv``; ``mode`` / ``mirror_local_mode`` set permissions.
    """
    from fabric.sftp import SFTP

    if local_path is None:
        raise ValueError("put() needs a local_path (a file path, glob or file-like object)")
    local_is_path = not (hasattr(local_path, "read") and callable(local_path.read))
    with SFTP(env.host_string) as ftp:
        home = ftp.normalize(".")
        remote_path = _resolve_remote(remote_path or home, home)
        if temp_dir is None or temp_dir == "":
            temp_dir = home
        if local_is_path:
            local_path = os.path.expanduser(apply_lcwd(str(local_path), env))
            if use_glob:
                import glob as _glob

                names = sorted(_glob.glob(local_path))
            else:
                names = [local_path] if os.path.exists(local_path) else []
            if not names:
                raise ValueError(f"'{local_path}' is not a valid local path or glob.")
        else:
            names = [local_path]
        if len(names) > 1 and not ftp.isdir(remote_path):
            raise ValueError(f"'{remote_path}' is not a directory (needed for the "
                             f"{len(names)} files matching '{local_path}')")
        remote_paths = _AttributeList()
        failed: List[Any] = []
        for name in names:
            try:
                if local_is_path and os.path.isdir(name):
                    remote_paths.extend(ftp.put_dir(name, remote_path, use_sudo,
                                                    mirror_local_mode, mode, temp_dir))
                else:
                    remote_paths.append(ftp.put(name, remote_path, use_sudo,
                                                mirror_local_mode, mode, local_is_path,
                                                temp_dir))
            except Exception as exc:
                shown = name if local_is_path else "<file obj>"
                failed.append(shown)
                error(message=f"put() encountered an exception while uploading '{shown}'",
                      exception=exc)
        remote_paths.failed = failed
        remote_paths.succeeded = not failed
        return remote_paths


@needs_host
def get(remote_path: str, local_path: Any = None, use_sudo: bool = False,
        temp_dir: Optional[str] = None) -> _AttributeList:
    """Download ``remote_path`` (a file, a directory or a glob) from the current host.

    ``local_path`` is a path template (default ``%(host)s/%(path)s``; keys ``host`` with
    ``:`` shown as ``-``, ``dirname``, ``basename``, ``path``), a directory, or a file-like
    object (single remote file only). Returns the local paths written, with ``failed``
    (remote paths that failed) and ``succeeded``.
    """
    from fabric.sftp import SFTP

    if local_path is None:
        local_path = "%(host)s/%(path)s"
    local_is_path = not (hasattr(local_path, "write") and callable(local_path.write))
    with SFTP(env.host_string) as ftp:
        home = ftp.normalize(".")
        remote_path = _resolve_remote(remote_path, home)
        if temp_dir is None or temp_dir == "":
            temp_dir = home
        if local_is_path:
            local_path = apply_lcwd(os.path.expanduser(str(local_path)), env)
        if "*" in remote_path or "?" in remote_path:
            names = ftp.glob(remote_path)
            if not names:
                raise ValueError(f"'{remote_path}' is not a valid remote path or glob "
                                 f"(nothing matched).")
        else:
            names = [remote_path]
        if not local_is_path and (len(names) > 1 or ftp.isdir(names[0])):
            raise ValueError("get() with a file-like local_path needs a single remote file, "
                             f"not '{remote_path}'")
        if local_is_path and len(names) > 1 and "%(" not in local_path:
            # Several files to one plain path would overwrite each other: it is a directory.
            os.makedirs(os.path.abspath(local_path), exist_ok=True)
        local_files = _AttributeList()
        failed: List[str] = []
        for name in names:
            try:
                if ftp.isdir(name):
                    local_files.extend(ftp.get_dir(name, local_path, use_sudo, temp_dir))
                else:
                    result = ftp.get(name, local_path, use_sudo, local_is_path,
                                     temp_dir=temp_dir)
                    if local_is_path:
                        local_files.append(result)
            except Exception as exc:
                failed.append(name)
                error(message=f"get() encountered an exception while downloading '{name}'",
                      exception=exc)
        local_files.failed = failed
        local_files.succeeded = not failed
        return local_files


# ---------------------------------------------------------------------------------------------
# interactive bits
# ---------------------------------------------------------------------------------------------


@needs_host
def open_shell(command: Optional[str] = None) -> None:
    """Open an interactive shell (with a pty) on the current host.

    ``command`` is typed into it first. Without a local terminal nobody could type into the
    shell, so it is sent ``exit`` after the command and ends by itself.
    """
    _execute(channel=default_channel(), command=command, pty=True, combine_stderr=True,
             invoke_shell=True)


@needs_host
def reboot(wait: float = 120, command: str = "reboot", use_sudo: bool = True) -> None:
    """Reboot the current host and reconnect to it, trying for up to ``wait`` seconds.

    Reconnection uses 5 s connect timeouts and ``round(wait / 5)`` attempts; the
    connection to the host is dropped first so the next command uses the new one.
    """
    from fabric import state

    timeout = 5.0
    attempts = max(1, int(round(float(wait) / timeout)))
    with _settings(hide=("running",), timeout=timeout, connection_attempts=attempts):
        with _settings(hide=("warnings",), warn_only=True):
            result = (sudo if use_sudo else run)(command)
        # -1: the channel closed without an exit status, i.e. the host went down under it.
        if result.failed and result.return_code != -1:
            error(f"reboot() command '{command}' failed with return code "
                  f"{result.return_code}", stdout=result, stderr=result.stderr)
        state.connections.drop(env.host_string)
        # Leave the host time to go down before dialling it again.
        time.sleep(min(timeout, max(0.0, float(wait))))
        state.connections.connect(env.host_string)


def prompt(text: str, key: Optional[str] = None, default: Any = "",
           validate: Any = None) -> Any:
    """Ask the user for a value (``input()``); returns it, and stores it in ``env[key]``.

    ``default`` is shown as ``[default]`` and used for an empty answer. ``validate`` is a
    callable (returns the value to use, raises to reject) or a regular expression the whole
    answer must match; a rejected answer is asked again.
    """
    handle_prompt_abort("user input")
    previous = env.get(key) if key else None
    shown_default = f" [{str(default).strip()}] " if default != "" else " "
    host = env.get("host_string")
    question = (f"[{host}] " if host else "") + text.strip() + shown_default
    pattern = None
    if validate is not None and not callable(validate):
        pattern = str(validate)
        if not pattern.startswith("^"):
            pattern = "^" + pattern
        if not pattern.endswith("$"):
            pattern += "$"
    while True:
        with output_lock:
            value = input(question) or default
        if callable(validate):
            try:
                value = validate(value)
            except Exception as exc:
                _console("Validation failed for the following reason:\n"
                         + indent(str(exc)) + "\n\n")
                continue
        elif pattern is not None and not re.match(pattern, str(value)):
            _console(f"Regular expression validation failed: '{value}' does not match "
                     f"'{pattern}'\n\n")
            continue
        break
    if key:
        env[key] = value
        if previous is not None and previous != value:
            warn(f"overwrote previous env variable '{key}'; used to be '{previous}', is "
                 f"now '{value}'.")
    return value


def require(*keys: str, **kwargs: Any) -> None:
    """Abort unless every env key in ``keys`` is set (and not an empty collection).

    ``used_for`` says what the keys are for; ``provided_by`` lists the tasks (or names)
    that set them.
    """
    missing = [k for k in keys
               if k not in env or (isinstance(env[k], (dict, list, tuple, set)) and not env[k])]
    if not missing:
        return
    plural = len(missing) > 1
    variable = "variables were" if plural else "variable was"
    command = env.get("command")
    lead = f"The command '{command}' failed because the " if command else "The "
    msg = f"{lead}following required environment {variable} not defined:\n{indent(missing)}"
    if "used_for" in kwargs:
        these = "These variables are" if plural else "This variable is"
        msg += f"\n\n{these} used for {kwargs['used_for']}"
    if "provided_by" in kwargs:
        funcs = kwargs["provided_by"]
        if isinstance(funcs, (str, bytes)) or not hasattr(funcs, "__iter__"):
            funcs = [funcs]
        funcs = list(funcs)
        which = ("one of the following commands" if len(funcs) > 1
                 else "the following command")
        names = [getattr(f, "__name__", str(f)) for f in funcs]
        msg += f"\n\nTry running {which} prior to this one, to fix this:\n{indent(names)}"
    abort(msg)
