"""The ``fab`` command: options, fabfile discovery and loading, task listing, task arguments,
and running the requested tasks with :func:`fabric.tasks.execute`.

``main(argv)`` returns the exit code; ``main()`` with no arguments reads ``sys.argv`` and
exits, as Fabric 1.x's did. ``run()`` is the console script.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import optparse
import os
import sys
import types
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from fabric import state
from fabric.state import env, env_options, output
from fabric.utils import _pty_size, abort, indent, output_lock, warn

__all__ = [
    "display_command",
    "extract_tasks",
    "find_fabfile",
    "is_classic_task",
    "is_task_module",
    "is_task_object",
    "list_commands",
    "load_fabfile",
    "load_settings",
    "load_tasks_from_module",
    "main",
    "parse_arguments",
    "parse_options",
    "parse_remainder",
    "run",
    "show_commands",
    "update_output_levels",
]

USAGE = "fab [options] <command>[:arg1,arg2=val2,host=foo,hosts='h1;h2',...] ..."
LIST_FORMAT_OPTIONS = ("short", "normal", "nested")
COMMANDS_HEADER = "Available commands"
NESTED_REMINDER = " (remember to call as module.[...].task)"
REMAINDER_TASK = "<remainder>"

# Per-task arguments that choose hosts instead of being passed to the task.
_HOST_ARGS = ("host", "hosts", "role", "roles", "exclude_hosts")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0", "")


# ---------------------------------------------------------------------------------------------
# console output
# ---------------------------------------------------------------------------------------------


def _say(text: str = "", stream: Any = None) -> None:
    """Write a whole line under the console lock; a vanished reader (``fab -l | head``) is not
    an error worth a traceback."""
    stream = stream if stream is not None else sys.stdout
    with output_lock:
        try:
            stream.write(text + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass


# ---------------------------------------------------------------------------------------------
# the option parser
# ---------------------------------------------------------------------------------------------


class _ExplicitValues(optparse.Values):
    """Option values that remember which destinations the command line actually set, so
    ``--set key=...`` is only overridden by an option that was really given."""

    def __init__(self, defaults: Optional[Dict[str, Any]] = None) -> None:
        object.__setattr__(self, "explicit", set())
        super().__init__(defaults)
        self.explicit.clear()

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "explicit":
            self.explicit.add(name)
        object.__setattr__(self, name, value)


def _build_parser() -> optparse.OptionParser:
    parser = optparse.OptionParser(usage=USAGE)
    parser.add_option("-d", "--display", metavar="NAME",
                      help="print detailed info about command NAME")
    parser.add_option("-F", "--list-format", choices=LIST_FORMAT_OPTIONS, default="normal",
                      metavar="FORMAT",
                      help="formats --list, choices: " + ", ".join(LIST_FORMAT_OPTIONS))
    parser.add_option("-I", "--initial-password-prompt", action="store_true", default=False,
                      help="Force password prompt up-front")
    parser.add_option("--initial-sudo-password-prompt", action="store_true", default=False,
                      help="Force sudo password prompt up-front")
    parser.add_option("-l", "--list", action="store_true", dest="list_commands",
                      default=False, help="print list of possible commands and exit")
    parser.add_option("--set", metavar="KEY=VALUE,...", dest="env_settings", default="",
                      help="comma separated KEY=VALUE pairs to set Fab env vars")
    parser.add_option("--shortlist", action="store_true", default=False,
                      help="alias for -F short --list")
    parser.add_option("--show-route", metavar="HOST", dest="show_route", default=None,
                      help="print the hops (gateways, ssh_config ProxyJump/ProxyCommand) "
                           "used to reach HOST, then exit (not in Fabric 1.x)")
    parser.add_option("-V", "--version", action="store_true", dest="show_version",
                      default=False, help="show program's version number and exit")
    for option in env_options:
        parser.add_option(option)
    return parser


def parse_options(argv: Optional[Sequence[str]] = None
                  ) -> Tuple[optparse.OptionParser, Any, List[str]]:
    """Parse ``argv`` (default ``sys.argv[1:]``): ``(parser, options, arguments)``.

    After parsing, ``parser.largs`` holds the task arguments and ``parser.rargs`` the words
    after ``--`` (the remainder command). ``options.explicit`` names the destinations that
    were given on the command line.
    """
    parser = _build_parser()
    values = _ExplicitValues(parser.get_default_values().__dict__)
    args = list(sys.argv[1:] if argv is None else argv)
    options, arguments = parser.parse_args(args, values)
    return parser, options, arguments


# ---------------------------------------------------------------------------------------------
# --set, rc files and output levels
# ---------------------------------------------------------------------------------------------


def _escape_split(sep: str, text: str) -> List[str]:
    """Split ``text`` on ``sep``, where a backslash before ``sep`` makes it literal."""
    escaped = "\\" + sep
    parts: List[str] = []
    current: List[str] = []
    i = 0
    while i < len(text):
        if text.startswith(escaped, i):
            current.append(sep)
            i += len(escaped)
        elif text.startswith(sep, i):
            parts.append("".join(current))
            current = []
            i += len(sep)
        else:
            current.append(text[i])
            i += 1
    parts.append("".join(current))
    return parts


def _key_value(pair: str) -> Tuple[str, Optional[str]]:
    """``'k=v'`` -> ``('k', 'v')`` (only the first unescaped ``=`` splits); ``'k'`` ->
    ``('k', None)``."""
    parts = _escape_split("=", pair)
    if len(parts) == 1:
        return parts[0], None
    return parts[0], "=".join(parts[1:])


@functools.cache
def _key_kinds() -> Dict[str, type]:
    """The type each typed env key takes: booleans, ints and floats (options and defaults)."""
    kinds: Dict[str, type] = {}
    for key, value in state._default_env().items():
        if isinstance(value, bool):
            kinds[key] = bool
        elif isinstance(value, (int, float)):
            kinds[key] = type(value)
    for option in env_options:
        if option.action in ("store_true", "store_false"):
            kinds[option.dest] = bool
        elif option.type in ("int", "float"):
            kinds[option.dest] = int if option.type == "int" else float
    return kinds


def _coerce(key: str, value: Any, where: str) -> Any:
    """A ``--set``/rc-file string turned into the type of a typed env key.

    Booleans take true/false/yes/no/on/off/1/0 (other words are kept as the string, truthy
    as in Fabric 1.x); numbers must parse, else the run aborts naming the source.
    """
    if not isinstance(value, str):
        return value
    kind = _key_kinds().get(key)
    if kind is bool:
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        return value
    if kind in (int, float):
        try:
            return kind(value.strip())
        except ValueError:
            abort(f"{where}: env.{key} takes {'an integer' if kind is int else 'a number'}, "
                  f"not {value!r}")
    return value


def load_settings(path: str) -> Dict[str, str]:
    """``key = value`` lines of the rc file at ``path`` (``~`` expanded) as a dict.

    Blank lines and lines starting with ``#`` are skipped; a missing file gives ``{}``.
    """
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        return {}
    result: Dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        abort(f"Cannot read the settings file {path}: {e}")
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, _, value = text.partition("=")
        result[key.strip()] = value.strip()
    return result


def _output_level_names() -> List[str]:
    levels = output._target()
    return sorted(set(levels.keys()) | set(getattr(levels, "aliases", {}).keys()))


def update_output_levels(show: Optional[str], hide: Optional[str]) -> None:
    """Apply ``--show`` then ``--hide`` (comma-separated output levels; hide wins).

    Unknown level names abort (Fabric 1.x silently created a useless key).
    """
    known = set(_output_level_names())
    for flag, value, setting in (("--show", show, True), ("--hide", hide, False)):
        if not value:
            continue
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown:
            abort(f"Unknown output level(s) for {flag}: {', '.join(unknown)} "
                  f"(known levels: {', '.join(_output_level_names())})")
        for name in names:
            output[name] = setting


def _split_host_lists() -> None:
    """``-H``/``-R``/``-x`` (and the same keys from --set or an rc file) as lists."""
    for key in ("hosts", "roles", "exclude_hosts"):
        value = env.get(key)
        if isinstance(value, str):
            env[key] = [part.strip() for part in value.split(",") if part.strip()]


def _fresh(value: Any) -> Any:
    # Option defaults are shared objects; env must never alias them.
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _apply_options(options: Any) -> None:
    """``--set`` pairs first, then every env option (an option given on the command line
    wins over ``--set``; one left at its default does not)."""
    from_set: Set[str] = set()
    for pair in _escape_split(",", options.env_settings or ""):
        if not pair:
            continue
        key, value = _key_value(pair)
        if not key:
            abort(f"--set {pair!r}: no key before '='")
        env[key] = True if value is None else _coerce(key, value, "--set")
        from_set.add(key)
    explicit = getattr(options, "explicit", None)
    for option in env_options:
        dest = option.dest
        given = explicit is None or dest in explicit
        if given or dest not in from_set:
            env[dest] = _fresh(getattr(options, dest))
    _split_host_lists()


def _apply_rcfile() -> None:
    path = env.get("rcfile") or ""
    if not path:
        return
    where = os.path.expanduser(path)
    for key, value in load_settings(path).items():
        env[key] = _coerce(key, value, where)
    _split_host_lists()


# ---------------------------------------------------------------------------------------------
# finding and loading the fabfile
# ---------------------------------------------------------------------------------------------


def _is_package(path: str) -> bool:
    return os.path.isdir(path) and os.path.exists(os.path.join(path, "__init__.py"))


def find_fabfile(names: Optional[List[str]] = None) -> Optional[str]:
    """The absolute path of the fabfile to load, or None.

    ``names`` defaults to ``[env.fabfile]``; ``name.py`` is tried too. A name with a
    directory part (``../x.py``, ``~/ops/fabfile.py``) is used as given; a bare name is
    looked for in the current directory and then each parent (the filesystem root itself is
    not searched). A directory only counts when it is a package (has ``__init__.py``).
    """
    if names is None:
        names = [env.get("fabfile") or "fabfile"]
    names = list(names)
    if not names[0].endswith(".py"):
        names.append(names[0] + ".py")
    if os.path.dirname(names[0]):
        for name in names:
            expanded = os.path.expanduser(name)
            if os.path.exists(expanded) and (name.endswith(".py") or _is_package(expanded)):
                return os.path.abspath(expanded)
        return None
    directory = os.path.abspath(os.getcwd())
    while os.path.split(directory)[1]:
        for name in names:
            candidate = os.path.join(directory, name)
            if os.path.exists(candidate) and (name.endswith(".py") or _is_package(candidate)):
                return os.path.abspath(candidate)
        directory = os.path.dirname(directory)
    return None


# Modules already looked into during one fabfile load (imports may form cycles).
_seen: Set[int] = set()
# Where the fabfile being loaded lives; classic tasks must come from there (see below).
_load_root: Optional[str] = None
_load_module_name: Optional[str] = None


@functools.cache
def _library_dirs() -> Tuple[str, ...]:
    dirs = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    # Fabric and paramiko themselves (an editable install lives outside sys.prefix).
    dirs.add(os.path.dirname(os.path.abspath(__file__)))
    dirs.add(os.path.dirname(os.path.abspath(_paramiko().__file__)))
    return tuple(sorted(dirs))


def _paramiko() -> Any:
    import paramiko

    return paramiko


def _module_file(module: Any) -> Optional[str]:
    path = getattr(module, "__file__", None)
    return os.path.abspath(path) if isinstance(path, str) else None


def _installed(path: str) -> bool:
    parts = path.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


def _is_library_file(path: Optional[str]) -> bool:
    """True for code that is not the user's: builtins, the standard library, installed
    packages, Fabric and paramiko themselves."""
    if path is None:
        return True
    if _installed(path):
        return True
    return any(path.startswith(d + os.sep) for d in _library_dirs())


@functools.cache
def _internal_ids() -> frozenset:
    """Callables of Fabric's own API modules: imported into a classic fabfile they are
    tools, not tasks."""
    from fabric import api, colors

    modules: List[Any] = [api, colors]
    for name in ("fabric.contrib.project", "fabric.contrib.files", "fabric.contrib.console"):
        try:
            modules.append(importlib.import_module(name))
        except Exception:  # an optional contrib module failing must not break loading
            continue
    return frozenset(id(value) for module in modules for value in vars(module).values()
                     if callable(value))


def _defined_by_user(obj: Any) -> bool:
    """False for a callable imported from a library (``from os.path import join``).

    Callables whose module is the fabfile, lives beside it, or cannot be determined
    (``functools.partial`` objects...) count as the user's.
    """
    module_name = getattr(obj, "__module__", None)
    if not isinstance(module_name, str) or module_name in (_load_module_name, "__main__"):
        return True
    module = sys.modules.get(module_name)
    if module is None:
        return True
    return _is_user_file(_module_file(module))


def _is_user_file(path: Optional[str]) -> bool:
    """True for code beside the fabfile (even when the project lives under sys.prefix) and
    for any other code that is not a library."""
    if path is None:
        return False
    if _load_root and path.startswith(_load_root + os.sep):
        return not _installed(path)  # a virtualenv inside the project is still a library
    return not _is_library_file(path)


def is_task_object(a: Any) -> bool:
    """True for a :class:`~fabric.tasks.Task` instance that wants to be used as a task."""
    from fabric.tasks import Task

    return isinstance(a, Task) and bool(getattr(a, "use_task_objects", True))


def is_classic_task(tup: Tuple[str, Any]) -> bool:
    """True if ``(name, obj)`` of a fabfile without task objects is a task: a public
    callable that is not an exception class, not part of Fabric's API and not imported from
    a library."""
    name, func = tup
    try:
        if not callable(func) or name.startswith("_"):
            return False
        if inspect.isclass(func) and issubclass(func, BaseException):
            return False
        if id(func) in _internal_ids():
            return False
        return _defined_by_user(func)
    except Exception:  # objects with odd __eq__/__getattr__ are simply not tasks
        return False


def is_task_module(a: Any) -> bool:
    """True (once per module) for a module whose task objects become a namespace."""
    if not isinstance(a, types.ModuleType) or id(a) in _seen:
        return False
    _seen.add(id(a))
    name = getattr(a, "__name__", "") or ""
    if name == "fabric" or name.startswith(("fabric.", "paramiko")):
        return False  # Fabric's own modules hold no task objects; skip walking them
    path = _module_file(a)
    if path is None:
        return False  # builtin modules cannot hold tasks
    # Installed packages may ship tasks (shared task libraries); the standard library
    # does not, and walking it would only cost time.
    return _installed(path) or _is_user_file(path)


def _module_vars(module: Any) -> List[Tuple[str, Any]]:
    values = vars(module)
    wanted = values.get("__all__")
    if wanted is not None:
        try:
            names = [str(n) for n in wanted]
        except TypeError:
            names = []
        return [(name, values[name]) for name in values if name in names]
    return list(values.items())


def extract_tasks(imported_vars: Iterable[Tuple[str, Any]]) -> Tuple[Any, Dict[str, Any], Any]:
    """``(new_style_tasks, classic_tasks, default_task)`` from a module's ``(name, value)``
    pairs. Imported modules holding task objects become nested namespaces."""
    from fabric.task_utils import _Dict

    new_style: Any = _Dict()
    classic: Dict[str, Any] = {}
    default_task = None
    if "new_style_tasks" not in env:
        env.new_style_tasks = False
    for name, obj in imported_vars:
        if is_task_object(obj):
            env.new_style_tasks = True
            task_name = getattr(obj, "name", None)
            if not task_name or task_name == "undefined":
                obj.name = task_name = name
            new_style[task_name] = obj
            for alias in getattr(obj, "aliases", None) or []:
                new_style[alias] = obj
            if getattr(obj, "is_default", False):
                default_task = obj
        elif is_classic_task((name, obj)):
            classic[name] = obj
        elif is_task_module(obj):
            _doc, sub_new, _sub_classic, sub_default = load_tasks_from_module(obj)
            for task_name, task in sub_new.items():
                if name not in new_style:
                    new_style[name] = _Dict()
                new_style[name][task_name] = task
            if sub_default is not None:
                if name not in new_style:
                    new_style[name] = _Dict()
                new_style[name].default = sub_default
    return new_style, classic, default_task


def load_tasks_from_module(imported: Any) -> Tuple[Optional[str], Any, Dict[str, Any], Any]:
    """``(docstring, new_style_tasks, classic_tasks, default_task)`` of a module, honouring
    its ``__all__``."""
    new_style, classic, default = extract_tasks(_module_vars(imported))
    return imported.__doc__, new_style, classic, default


def _move_to_front(directory: str) -> Callable[[], None]:
    """Put ``directory`` first on ``sys.path``; the returned function undoes exactly that,
    leaving any change the fabfile itself made to ``sys.path`` in place."""
    index: Optional[int] = None
    if directory in sys.path:
        index = sys.path.index(directory)
        del sys.path[index]
    sys.path.insert(0, directory)

    def restore() -> None:
        # One equal entry comes out (an extra copy the fabfile added itself stays, which is
        # what it asked for); one that was there before goes back to its old place.
        if directory not in sys.path:
            return
        if sys.path[0] == directory:
            del sys.path[0]
        else:
            sys.path.remove(directory)
        if index is not None:
            sys.path.insert(min(index, len(sys.path)), directory)

    return restore


def _forget_module(name: str) -> None:
    """Drop a previous import of the fabfile module (and its submodules) so the file is
    executed afresh (``main()`` may run more than once in a process)."""
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def _import_fabfile(path: str) -> Any:
    directory, filename = os.path.split(path)
    name = os.path.splitext(filename)[0]
    if os.path.isdir(path):
        init = os.path.join(path, "__init__.py")
        spec = importlib.util.spec_from_file_location(name, init,
                                                      submodule_search_locations=[path])
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        abort(f"Cannot load the fabfile {path}: not a Python module")
    occupant = sys.modules.get(name)
    # A fabfile called e.g. json.py must not replace the real json module for everyone
    # else: it is registered only while it runs. Anything else under the name (an earlier
    # load of a fabfile) is forgotten so this file runs afresh.
    protect = occupant is not None and _is_library_file(_module_file(occupant))
    if not protect:
        _forget_module(name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if sys.modules.get(name) is module:
            del sys.modules[name]
        raise
    finally:
        if protect:
            sys.modules[name] = occupant
    return module


def load_fabfile(path: str, importer: Optional[Callable[[str], Any]] = None
                 ) -> Tuple[Optional[str], Dict[str, Any], Any]:
    """Import the fabfile at ``path`` (a ``.py`` file or a package directory) and return
    ``(docstring, tasks, default_task)``.

    The fabfile's directory is first on ``sys.path`` during the import (so it can import
    modules beside it) and is taken off again afterwards. When any task object (``@task``,
    ``Task`` subclasses) is found, only task objects are tasks; otherwise every public
    function of the fabfile is ("classic" fabfiles).
    """
    global _load_root, _load_module_name
    path = os.path.abspath(path)
    directory, filename = os.path.split(path)
    name = os.path.splitext(filename)[0]
    # Decided afresh for each load (the fabfile itself may still set it while importing).
    env.new_style_tasks = False
    restore = _move_to_front(directory)
    try:
        if importer is not None:
            imported = importer(name)
        else:
            imported = _import_fabfile(path)
    finally:
        restore()
    _seen.clear()
    _seen.add(id(imported))
    _load_root = path if os.path.isdir(path) else directory
    _load_module_name = getattr(imported, "__name__", name)
    try:
        docstring, new_style, classic, default = load_tasks_from_module(imported)
    finally:
        _seen.clear()
        _load_root = None
        _load_module_name = None
    tasks = new_style if env.get("new_style_tasks") else classic
    return docstring, tasks, default


# ---------------------------------------------------------------------------------------------
# listing and describing tasks
# ---------------------------------------------------------------------------------------------


def _is_namespace(value: Any) -> bool:
    return isinstance(value, dict)


def _sift_tasks(mapping: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    tasks = sorted(name for name, value in mapping.items()
                   if not _is_namespace(value) and name is not None)
    namespaces = sorted(name for name, value in mapping.items() if _is_namespace(value))
    return tasks, namespaces


def _task_names(mapping: Dict[str, Any]) -> List[str]:
    """Every callable task name, dotted, tasks before namespaces, each sorted; a namespace
    with a default task is itself a name."""
    tasks, namespaces = _sift_tasks(mapping)
    for namespace in namespaces:
        module = mapping[namespace]
        if getattr(module, "default", None) is not None:
            tasks.append(namespace)
        tasks.extend(f"{namespace}.{sub}" for sub in _task_names(module))
    return tasks


def _first_doc_line(name: str) -> Optional[str]:
    from fabric.task_utils import crawl

    doc = getattr(crawl(name, state.commands), "__doc__", None)
    if not isinstance(doc, str):
        return None
    for line in doc.splitlines():
        if line.strip():
            return line.strip()
    return None


def _normal_list(docstrings: bool = True) -> List[str]:
    names = _task_names(state.commands)
    width = max((len(n) for n in names), default=0)
    trail = "..."
    max_width = _pty_size()[1] - 1 - len(trail)
    lines = []
    for name in names:
        first = _first_doc_line(name) if docstrings else None
        if first:
            column = name.ljust(width) + "  "
            text = column + first
            if len(text) > max_width:
                # Only the docstring is cut, to what is left of the line after the name
                # column and the trail (Fabric 1.x's arithmetic: 80 columns, indent included).
                text = column + first[:max(0, max_width - len(column) - len(trail))] + trail
        else:
            text = name
        lines.append(indent(text))
    return lines


def _nested_list(mapping: Dict[str, Any], level: int = 1) -> List[str]:
    tasks, namespaces = _sift_tasks(mapping)
    lines = [indent(name, spaces=level * 4) for name in tasks]
    for namespace in namespaces:
        lines.append(indent(namespace + ":", spaces=level * 4))
        lines.extend(_nested_list(mapping[namespace], level + 1))
    return lines


def list_commands(docstring: Optional[str], format_: str) -> List[str]:
    """The lines ``fab --list`` prints in ``format_`` (short, normal or nested)."""
    if format_ == "short":
        return _task_names(state.commands)
    lines = []
    if docstring:
        lines.append(docstring if docstring.endswith("\n") else docstring + "\n")
    header = COMMANDS_HEADER + (NESTED_REMINDER if format_ == "nested" else "")
    lines.append(header + ":\n")
    if format_ == "nested":
        lines.extend(_nested_list(state.commands))
    else:
        lines.extend(_normal_list())
    return lines


def show_commands(docstring: Optional[str], format_: str, code: int = 0) -> None:
    """Print the task list and exit with ``code``."""
    _say("\n".join(list_commands(docstring, format_)))
    raise SystemExit(code)


def display_command(name: str) -> None:
    """Print the docstring and arguments of task ``name`` (``fab -d``) and exit 0; an
    unknown name aborts listing the valid ones."""
    from fabric.task_utils import crawl
    from fabric.tasks import get_task_details

    command = crawl(name, state.commands)
    if command is None:
        abort(f"Task '{name}' does not appear to exist. Valid task names:\n"
              + "\n".join(_normal_list(False)))
    if hasattr(command, "__details__"):
        details = command.__details__()
    else:
        details = get_task_details(command)
    if details:
        _say(f"Displaying detailed information for task '{name}':")
        _say()
        _say(indent(details, strip=True))
        _say()
    else:
        _say(f"No detailed information available for task '{name}':")
    raise SystemExit(0)


# ---------------------------------------------------------------------------------------------
# task arguments
# ---------------------------------------------------------------------------------------------


def parse_arguments(arguments: Sequence[str]
                    ) -> List[Tuple[str, List[str], Dict[str, str], List[str], List[str],
                                    List[str]]]:
    """Each ``task:a,b,k=v,host=h,hosts='h1;h2',role=r,roles=..,exclude_hosts=..`` as
    ``(name, args, kwargs, hosts, roles, exclude_hosts)``.

    ``\\,`` and ``\\=`` are a literal comma and equals sign; only the first unescaped ``=``
    of a pair separates key and value. Quotes are the shell's business and kept as typed.
    The host keywords are taken out by :func:`fabric.task_utils.parse_kwargs`, as for
    ``execute()``.
    """
    from fabric.task_utils import parse_kwargs

    commands = []
    for word in arguments:
        args: List[str] = []
        given: Dict[str, str] = {}
        name = word
        if ":" in word:
            name, argstr = word.split(":", 1)
            for pair in _escape_split(",", argstr):
                key, value = _key_value(pair)
                if value is None:
                    args.append(key)
                else:
                    given[key] = value
        kwargs, hosts, roles, exclude_hosts = parse_kwargs(given)
        commands.append((name, args, kwargs, hosts, roles, exclude_hosts))
    return commands


def parse_remainder(arguments: Sequence[str]) -> str:
    """The words after ``--`` as one shell command."""
    return " ".join(arguments)


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def _initial_prompt(key: str) -> None:
    from fabric.context_managers import settings
    from fabric.network import prompt_for_password

    # Asked for explicitly, so --abort-on-prompts (often combined with -I) does not apply.
    with settings(abort_on_prompts=False):
        value = prompt_for_password(f"Initial value for env.{key}")
    env[key] = value


def _show_route(host: str) -> None:
    from fabric.exceptions import NetworkError
    from fabric.network import describe_route

    try:
        text = describe_route(host)
    except NetworkError as e:
        abort(str(e) or f"Cannot work out a route to {host}")
    except ValueError as e:
        abort(f"Cannot work out a route to {host}: {e}")
    _say(text)
    raise SystemExit(0)


def _run(argv: List[str], fabfile_locations: Optional[List[str]]) -> None:
    """Everything ``fab`` does; ends by returning (success) or raising SystemExit."""
    from fabric.task_utils import crawl

    parser, options, _ = parse_options(argv)
    arguments = list(parser.largs)
    remainder_arguments = list(parser.rargs)

    _apply_options(options)
    env.tasks = list(arguments)
    update_output_levels(show=options.show, hide=options.hide)

    if options.show_version:
        from fabric.version import version_report

        _say(version_report())
        raise SystemExit(0)

    _apply_rcfile()

    fabfile = find_fabfile(fabfile_locations)
    fabfile_asked = fabfile_locations is not None or "fabfile" in options.explicit
    if not fabfile and (not (remainder_arguments or options.show_route)
                        or (options.show_route and fabfile_asked)):
        abort("Couldn't find any fabfiles!\n\nRemember that -f can be used to specify "
              "fabfile path, and use -h for help.")
    env.real_fabfile = fabfile

    default = None
    docstring = None
    if fabfile:
        docstring, callables, default = load_fabfile(fabfile)
        state.commands.update(callables)

    if options.show_route:
        _show_route(options.show_route)

    actions = (options.list_commands, options.shortlist, options.display, arguments,
               remainder_arguments, default)
    if not any(actions):
        parser.print_help()
        raise SystemExit(1)

    if not state.commands and not remainder_arguments:
        abort("Fabfile didn't contain any commands!")

    if output.debug:
        if fabfile:
            _say(f"Using fabfile '{fabfile}'")
        else:
            _say("No fabfile loaded -- remainder command only")

    if options.shortlist:
        options.list_format = "short"
        options.list_commands = True
    if options.list_commands:
        show_commands(docstring, options.list_format)
    if options.display:
        display_command(options.display)

    commands_to_run = parse_arguments(arguments)
    remainder_command = parse_remainder(remainder_arguments)

    unknown = [entry[0] for entry in commands_to_run if crawl(entry[0], state.commands) is None]
    if unknown and not env.get("skip_unknown_tasks"):
        warn("Command(s) not found:\n" + indent(unknown))
        show_commands(None, options.list_format, 1)

    if remainder_command:
        from fabric import operations

        def remainder() -> Any:
            return operations.run(remainder_command)

        state.commands[REMAINDER_TASK] = remainder
        commands_to_run.append((REMAINDER_TASK, [], {}, [], [], []))

    if not commands_to_run and default is not None:
        name = getattr(default, "name", None)
        target = name if name and crawl(name, state.commands) is default else default
        commands_to_run.append((target, [], {}, [], [], []))

    if options.initial_password_prompt:
        _initial_prompt("password")
    if options.initial_sudo_password_prompt:
        _initial_prompt("sudo_password")

    if output.debug:
        names = ", ".join(str(getattr(c[0], "name", c[0])) for c in commands_to_run)
        _say(f"Commands to run: {names}")

    from fabric.tasks import execute

    for name, args, kwargs, hosts, roles, exclude_hosts in commands_to_run:
        execute(name, *args, hosts=hosts, roles=roles, exclude_hosts=exclude_hosts, **kwargs)

    if output.status:
        _say("\nDone.")


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    _say(str(code), sys.stderr)  # sys.exit("message") semantics
    return 1


def _stopped() -> int:
    if output.get("status", True):
        with output_lock:
            try:
                sys.stderr.write("\nStopped.\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
    return 1


def _traceback() -> int:
    sys.excepthook(*sys.exc_info())
    return 1


def _main(argv: List[str], fabfile_locations: Optional[List[str]] = None) -> int:
    code = 0
    try:
        _run(argv, fabfile_locations)
    except SystemExit as e:
        code = _exit_code(e)
    except KeyboardInterrupt:
        code = _stopped()
    except BaseException:
        code = _traceback()
    finally:
        # Always, even after an abort or Ctrl-C: closing prints "Disconnecting from ..."
        # and keeps live transports from holding up interpreter exit.
        try:
            from fabric.network import disconnect_all

            disconnect_all()
        except KeyboardInterrupt:
            code = code or _stopped()
        except Exception:
            code = code or _traceback()
    return code


def main(argv: Optional[Sequence[str]] = None,
         fabfile_locations: Optional[List[str]] = None) -> int:
    """Run ``fab``.

    With ``argv`` (the arguments after ``fab``) the exit code is returned. Without it,
    ``sys.argv`` is used and the process exits, as Fabric 1.x's ``main()`` did.
    ``fabfile_locations`` overrides ``-f`` as the list of fabfile names to look for.
    """
    if argv is None:
        sys.exit(_main(list(sys.argv[1:]), fabfile_locations))
    return _main(list(argv), fabfile_locations)


def run() -> None:
    """Console-script entry point (``fab``)."""
    sys.exit(_main(list(sys.argv[1:])))


if __name__ == "__main__":
    run()
