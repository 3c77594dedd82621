"""Inspect and edit files on the current remote host.

Every helper runs ordinary shell commands through :func:`fabric.operations.run` (or
:func:`~fabric.operations.sudo` with ``use_sudo=True``), so it honours ``cd()``, ``prefix()``,
``shell_env()``, ``hide()``/``show()`` and ``warn_only`` like any other command.

Quoting: text (``contains``/``append``) and sed expressions are always passed to the remote
shell as literal strings, whatever quotes, ``$``, backslashes, spaces or ``&`` they hold.
Paths keep the expansions Fabric 1.x users rely on -- a leading ``~`` or ``~user`` and
``$NAME``/``${NAME}`` variable references -- and everything else in them is literal (write
``\\$`` for a literal dollar sign followed by a name).
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
from typing import Any, Iterable, List, Mapping, Optional, Union

from fabric.state import env
from fabric.utils import abort, apply_lcwd

__all__ = [
    "append",
    "comment",
    "contains",
    "exists",
    "first",
    "is_link",
    "sed",
    "uncomment",
    "upload_template",
]

# Characters with a meaning in a POSIX extended regular expression (grep -E, sed -r/-E).
_ERE_SPECIALS = frozenset("\\^$.|?*+()[]{}")
# env keys that make run()/sudo() put commands in front of the one given.
_PREFIXING_KEYS = ("cwd", "command_prefixes", "path", "shell_env")
# Platforms whose sed has no GNU-style in-place editing (-i<suffix> with -r).
_NO_INPLACE_SED = ("NetBSD", "OpenBSD", "QNX")
# The slash stays unquoted too: sh expands a tilde prefix only up to an unquoted slash.
_TILDE = re.compile(r"~[A-Za-z0-9._-]*(?:/|$)")
_VARIABLE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})")


# ---------------------------------------------------------------------------------------------
# quoting
# ---------------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    """``text`` as one literal sh word.

    Built from single-quoted runs, with each ``'`` as ``"'"``: no backslash is added, so the
    word survives being nested inside Fabric's ``bash -l -c "..."`` wrapper unchanged.
    """
    if text == "":
        return "''"
    parts = text.split("'")
    out = []
    for i, part in enumerate(parts):
        if part:
            out.append(f"'{part}'")
        if i < len(parts) - 1:
            out.append("\"'\"")
    return "".join(out)


def _expand_path(path: str) -> str:
    """``path`` as one sh word with ``~``/``~user`` (leading) and ``$NAME``/``${NAME}``
    expanded by the remote shell and every other character taken literally."""
    path = str(path)
    out: List[str] = []
    literal: List[str] = []

    def flush() -> None:
        if literal:
            out.append(_quote("".join(literal)))
            literal.clear()

    pos = 0
    tilde = _TILDE.match(path)
    if tilde:
        out.append(tilde.group(0))
        pos = tilde.end()
    while pos < len(path):
        char = path[pos]
        if char == "\\" and pos + 1 < len(path) and path[pos + 1] == "$":
            literal.append("$")  # an escaped dollar is a literal one
            pos += 2
            continue
        var = _VARIABLE.match(path, pos) if char == "$" else None
        if var:
            flush()
            out.append(f'"{var.group(0)}"')
            pos = var.end()
            continue
        literal.append(char)
        pos += 1
    flush()
    return "".join(out) or "''"


def _escape_for_regex(text: str) -> str:
    """``text`` escaped so an extended regular expression matches it literally."""
    return "".join("\\" + c if c in _ERE_SPECIALS else c for c in str(text))


def _escape_delimiter(expr: str, delimiter: str = "/") -> str:
    """Escape each unescaped ``delimiter`` in a sed regex or replacement (already escaped
    ones, and any other backslash sequence, are left as they are)."""
    out: List[str] = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char == "\\" and i + 1 < len(expr):
            out.append(expr[i:i + 2])
            i += 2
            continue
        if char == delimiter:
            out.append("\\" + delimiter)
        elif char == "\n":
            out.append("\\n")  # a raw newline would end the sed command
        else:
            out.append(char)
        i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# running commands
# ---------------------------------------------------------------------------------------------


def _backslashes_survive_wrapper() -> bool:
    """Whether ``run(shell=True)`` escapes backslashes itself when it puts a command inside
    ``env.shell "..."`` (Fabric 1.x escapes only ``"``, ``$`` and backticks there)."""
    from fabric import operations

    escape = getattr(operations, "_shell_escape", None)
    if escape is None:
        return False
    try:
        return escape("\\") == "\\\\"
    except Exception:
        return False


def _remote(command: str, use_sudo: bool = False, shell: bool = True, **kwargs: Any) -> Any:
    """Run ``command`` -- a complete, correctly quoted sh command -- remotely.

    If it goes into the double-quoted ``env.shell`` wrapper, it is always escaped for it
    (whatever ``env.shell_escape`` says: these commands are not written for the unescaped
    form), and its backslashes are doubled first when the wrapper's escaping leaves them
    alone, so the remote shell sees exactly ``command``.
    """
    from fabric import operations

    func = operations.sudo if use_sudo else operations.run
    if use_sudo and not shell and any(env.get(k) for k in _PREFIXING_KEYS):
        # Unwrapped, sudo would apply to the "cd ... &&"/"export ... &&" prefix only.
        shell = True
    if shell and env.get("use_shell", True) and "\\" in command \
            and not _backslashes_survive_wrapper():
        command = command.replace("\\", "\\\\")
    return func(command, shell=shell, shell_escape=True, **kwargs)


def _probe(command: str, use_sudo: bool, verbose: bool = False, **kwargs: Any) -> bool:
    """True if ``command`` exits 0; quiet (and never aborting) unless ``verbose``."""
    from fabric.context_managers import hide, settings

    managers = () if verbose else (hide("everything"),)
    with settings(*managers, warn_only=True):
        return not _remote(command, use_sudo=use_sudo, **kwargs).failed


# ---------------------------------------------------------------------------------------------
# tests on paths
# ---------------------------------------------------------------------------------------------


def exists(path: str, use_sudo: bool = False, verbose: bool = False) -> bool:
    """True if ``path`` exists on the current remote host (``test -e``).

    ``use_sudo`` runs the test with sudo (for paths only root may see); ``verbose`` shows
    the command and its output instead of hiding them.
    """
    return _probe(f"test -e {_expand_path(path)}", use_sudo, verbose)


def is_link(path: str, use_sudo: bool = False, verbose: bool = False) -> bool:
    """True if ``path`` is a symbolic link on the current remote host (``test -L``);
    arguments as for :func:`exists`."""
    return _probe(f"test -L {_expand_path(path)}", use_sudo, verbose)


def first(*args: str, **kwargs: Any) -> Optional[str]:
    """The first of the given paths that :func:`exists` remotely, or None.

    Keyword arguments go to :func:`exists` (``use_sudo``, ``verbose``).
    """
    for path in args:
        if exists(path, **kwargs):
            return path
    return None


# ---------------------------------------------------------------------------------------------
# templates
# ---------------------------------------------------------------------------------------------


def _render_jinja(filename: str, directory: str, context: Optional[Mapping],
                  keep_trailing_newline: bool) -> str:
    try:
        from jinja2 import Environment, FileSystemLoader
    except ImportError:
        abort("upload_template(use_jinja=True) needs Jinja2, which is not installed "
              "(pip install jinja2)")
    jenv = Environment(loader=FileSystemLoader(directory),
                       keep_trailing_newline=keep_trailing_newline)
    return jenv.get_template(filename).render(**dict(context or {}))


def upload_template(filename: str, destination: str, context: Optional[Mapping] = None,
                    use_jinja: bool = False, template_dir: Optional[str] = None,
                    use_sudo: bool = False, backup: bool = True,
                    mirror_local_mode: bool = False, mode: Optional[int] = None,
                    pty: Optional[bool] = None, keep_trailing_newline: bool = False,
                    temp_dir: str = "") -> Any:
    """Render the local template ``filename`` with ``context`` and upload the result to
    ``destination`` on the current host.

    Rendering is Python ``%`` interpolation (only when ``context`` is given), or Jinja2 with
    ``use_jinja=True``, loading ``filename`` from ``template_dir`` (default: the current
    directory). A non-jinja ``filename`` is read from ``template_dir`` when that is given.
    If ``destination`` is a remote directory the template's file name is appended. An
    existing destination is copied to ``destination.bak`` first unless ``backup=False``.
    ``use_sudo``, ``mirror_local_mode``, ``mode`` and ``temp_dir`` are passed to
    :func:`~fabric.operations.put`; ``pty`` to the remote commands. Returns what ``put``
    returns.
    """
    from fabric.context_managers import hide, settings
    from fabric.operations import put

    def remote(command: str) -> Any:
        extra = {} if pty is None else {"pty": pty}
        return _remote(command, use_sudo=use_sudo, **extra)

    with settings(hide("everything"), warn_only=True):
        is_dir = not remote(f"test -d {_expand_path(destination)}").failed
    if is_dir:
        destination = posixpath.join(destination, os.path.basename(filename))

    if use_jinja:
        directory = apply_lcwd(os.path.expanduser(template_dir or os.getcwd()), env)
        local_file = os.path.join(directory, filename)
        text = _render_jinja(filename, directory, context, keep_trailing_newline)
    else:
        local_file = os.path.join(template_dir, filename) if template_dir else filename
        local_file = apply_lcwd(os.path.expanduser(local_file), env)
        with open(local_file, encoding="utf-8") as handle:
            text = handle.read()
        if context:
            text = text % context

    if mirror_local_mode and mode is None:
        # put() cannot mirror the mode of an in-memory file: take it from the template.
        mode = os.stat(local_file).st_mode
        mirror_local_mode = False

    if backup and exists(destination, use_sudo=use_sudo):
        target = _expand_path(destination)
        bak = _expand_path(destination + ".bak")
        remote(f"cp {target} {bak}")

    return put(local_path=io.BytesIO(text.encode("utf-8")), remote_path=destination,
               use_sudo=use_sudo, mirror_local_mode=mirror_local_mode, mode=mode,
               temp_dir=temp_dir)


# ---------------------------------------------------------------------------------------------
# editing
# ---------------------------------------------------------------------------------------------


def _remote_platform() -> str:
    from fabric.context_managers import hide

    with hide("running", "stdout"):
        return str(_remote("uname", shell=False, pty=False)).strip()


def sed(filename: str, before: str, after: str, limit: str = "", use_sudo: bool = False,
        backup: str = ".bak", flags: str = "", shell: bool = False) -> Any:
    """Replace every match of the extended regex ``before`` with ``after`` in the remote
    ``filename``, in place, keeping the original as ``filename + backup`` (``backup=''``
    keeps none).

    Like ``sed -i<backup> -r -e '<limit> s/<before>/<after>/<flags>g' <filename>``:
    ``after`` is a sed replacement (``\\1`` is a group, ``&`` the whole match, ``\\&`` a
    literal ampersand); ``limit`` restricts the edit to lines matching that regex; ``flags``
    are extra ``s`` flags such as ``i``. A ``/`` anywhere is taken literally; quotes, ``$``
    and spaces need no escaping.
    """
    before = _escape_delimiter(before)
    after = _escape_delimiter(after)
    address = f"/{_escape_delimiter(limit)}/ " if limit else ""
    script = f"{address}s/{before}/{after}/{flags}g"
    target = _expand_path(filename)
    platform = _remote_platform()
    if platform in _NO_INPLACE_SED:
        # No in-place editing there: edit into a temporary file, then swap it in. The chain
        # must run as one (possibly privileged) shell command.
        digest = hashlib.sha1(f"{env.host_string}\0{filename}".encode()).hexdigest()
        tmp = f"/tmp/{digest}"
        steps = [f"cp -p {target} {tmp}", f"sed -r -e {_quote(script)} {target} > {tmp}"]
        if backup:
            steps.append(f"cp -p {target} {target}{_quote(backup)}")
        steps.append(f"mv {tmp} {target}")
        command = " && ".join(steps)
        shell = True
    else:
        regex_flag = "-E" if platform == "Darwin" else "-r"
        suffix = _quote(backup) if backup else ""
        command = f"sed -i{suffix} {regex_flag} -e {_quote(script)} {target}"
    return _remote(command, use_sudo=use_sudo, shell=shell)


def _split_anchors(regex: str) -> tuple:
    start = "^" if regex.startswith("^") else ""
    end = "$" if regex.endswith("$") and not regex.endswith("\\$") else ""
    body = regex[len(start):len(regex) - len(end)]
    return start, body, end


def _escape_replacement(text: str) -> str:
    """``text`` as a literal sed replacement."""
    return re.sub(r"([\\&])", r"\\\1", text)


def comment(filename: str, regex: str, use_sudo: bool = False, char: str = "#",
            backup: str = ".bak", shell: bool = False) -> Any:
    """Comment out the lines of ``filename`` matching ``regex`` by putting ``char`` in
    front of the match (anchor with ``^``/``$`` to comment whole lines). Uses :func:`sed`."""
    start, body, end = _split_anchors(regex)
    return sed(filename, before=f"{start}({body}){end}",
               after=_escape_replacement(char) + r"\1",
               use_sudo=use_sudo, backup=backup, shell=shell)


def uncomment(filename: str, regex: str, use_sudo: bool = False, char: str = "#",
              backup: str = ".bak", shell: bool = False) -> Any:
    """Remove the comment character ``char`` (and one following space) from the start of
    the lines of ``filename`` matching ``regex``, keeping their indentation. Uses
    :func:`sed`."""
    return sed(filename, before=rf"^([[:space:]]*){_escape_for_regex(char)}[[:space:]]?",
               after=r"\1", limit=regex, use_sudo=use_sudo, backup=backup, shell=shell)


def contains(filename: str, text: str, exact: bool = False, use_sudo: bool = False,
             escape: bool = True, shell: bool = False, case_sensitive: bool = True) -> bool:
    """True if the remote ``filename`` has a line containing ``text`` (``grep -E``).

    ``text`` is literal unless ``escape=False``, in which case it is an extended regex;
    ``exact=True`` (with escaping) requires the whole line to equal ``text``;
    ``case_sensitive=False`` ignores case. A missing file gives False.
    """
    if escape:
        text = _escape_for_regex(text)
        if exact:
            text = f"^{text}$"
    options = "-E -i" if not case_sensitive else "-E"
    return _probe(f"grep {options} -e {_quote(text)} {_expand_path(filename)}", use_sudo,
                  shell=shell)


def append(filename: str, text: Union[str, Iterable[str]], use_sudo: bool = False,
           partial: bool = False, escape: bool = True, shell: bool = False) -> None:
    """Append ``text`` (a line or a list of lines) to the remote ``filename``, skipping
    lines the file already has, so running it twice changes nothing.

    A line counts as present when some line of the file equals it, or, with
    ``partial=True``, starts with it. The file is created if missing. ``escape=False``
    sends each line to the remote shell inside single quotes without quoting it first.
    """
    lines = [text] if isinstance(text, str) else list(text)
    target = _expand_path(filename)
    for line in lines:
        pattern = "^" + _escape_for_regex(line) + ("" if partial else "$")
        if line and exists(filename, use_sudo=use_sudo) and contains(
                filename, pattern, use_sudo=use_sudo, escape=False, shell=shell):
            continue
        word = _quote(line) if escape else f"'{line}'"
        if "\\" in line or line.startswith("-"):
            writer = f"printf '%s\\n' {word}"  # echo might take these as escapes/options
        else:
            writer = f"echo {word}"
        # Run inside the shell wrapper so that with sudo the redirection is privileged too.
        _remote(f"{writer} >> {target}", use_sudo=use_sudo, shell=True)

