"""Task objects and :func:`execute`, which runs a task once per host (serially or in
parallel threads).

Parallel mode runs every host's task in a worker thread inside its own
:func:`fabric.state.isolated_context`, so each host sees a private copy of ``env`` and
``output`` while sharing the connection cache (and the gateway connections in it).
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from fabric.context_managers import settings
from fabric.exceptions import NetworkError
from fabric.state import env, output
from fabric.task_utils import crawl, merge, parse_kwargs
from fabric.utils import abort, error, output_lock, warn

__all__ = ["Task", "WrappedCallableTask", "execute", "get_task_details", "requires_parallel"]

_MISSING = object()


def _chain_getattr(obj: Any, name: str) -> Any:
    """``getattr(obj, name)``, else the same on what ``obj`` wraps (``__wrapped__``, as set
    by ``functools.wraps``), and so on down the chain; AttributeError if nobody has it.

    Decorators put attributes (``hosts``, ``parallel``...) on their own wrapper, and a task
    object in the middle of a decorator stack hides its wrapped function's attributes from
    the wrappers above it; walking the chain finds them in any decorator order.
    """
    seen = set()
    while obj is not None and id(obj) not in seen:
        seen.add(id(obj))
        try:
            return getattr(obj, name)
        except AttributeError:
            pass
        obj = getattr(obj, "__wrapped__", None)
    raise AttributeError(name)


def _task_attr(obj: Any, name: str, default: Any = None) -> Any:
    try:
        return _chain_getattr(obj, name)
    except AttributeError:
        return default


def get_task_details(task: Any) -> str:
    """The text ``fab -d`` shows: the docstring (dedented) and an ``Arguments:`` line."""
    target = _innermost(task)
    doc = getattr(task, "__doc__", None) or getattr(target, "__doc__", None)
    lines = [inspect.cleandoc(doc) if doc else "No docstring provided"]
    try:
        params = inspect.signature(target, follow_wrapped=False).parameters.values()
    except (TypeError, ValueError):
        params = []
    names: List[str] = []
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is param.empty:
            names.append(param.name)
        else:
            names.append(f"{param.name}={param.default!r}")
    lines.append("Arguments: " + ", ".join(names))
    return "\n".join(lines)


def _innermost(obj: Any) -> Any:
    """The function whose arguments a (decorated) task takes: decorator wrappers and task
    objects are looked through; a custom Task's arguments are those of its ``run``."""
    for _ in range(100):  # decorator stacks are short; never loop on a cyclic chain
        if isinstance(obj, WrappedCallableTask):
            obj = obj.wrapped
        elif isinstance(obj, Task):
            return obj.run
        elif getattr(obj, "__wrapped__", None) is not None:
            obj = obj.__wrapped__
        else:
            break
    return obj


class Task:
    """Base class of task objects: subclass it and implement :meth:`run`.

    ``name`` is the task's name on the command line, ``aliases`` more names for it,
    ``is_default`` marks the task run when only its namespace is named. Any of ``hosts``,
    ``roles``, ``serial``, ``parallel`` and ``pool_size`` set on the object steer
    :func:`execute`.
    """

    name = "undefined"
    use_task_objects = True
    aliases: Optional[List[str]] = None
    is_default = False

    def __init__(self, alias: Optional[str] = None, aliases: Optional[List[str]] = None,
                 default: bool = False, name: Optional[str] = None, *args: Any,
                 **kwargs: Any) -> None:
        names: List[str] = []
        if alias is not None:
            names.append(alias)
        if aliases is not None:
            names.extend(a for a in ([aliases] if isinstance(aliases, str) else aliases)
                         if a not in names)
        if names:
            self.aliases = names
        if name is not None:
            self.name = name
        self.is_default = default

    def __details__(self) -> str:
        return get_task_details(self.run)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"task {self.name!r} ({type(self).__name__}) has no run()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def get_hosts_and_effective_roles(self, arg_hosts: Any, arg_roles: Any,
                                      arg_exclude_hosts: Any,
                                      env: Optional[Mapping[str, Any]] = None
                                      ) -> Tuple[List[str], List[str]]:
        """``(hosts, roles)`` this task runs on.

        The first level that names hosts or roles wins: the per-call/CLI arguments, then the
        ``@hosts``/``@roles`` decorators, then ``env.hosts``/``env.roles``. Exclusions apply
        at their own level only (``arg_exclude_hosts`` to the first two, ``env.exclude_hosts``
        to the env lists), as in Fabric 1.x.
        """
        if env is None:
            env = {"hosts": [], "roles": [], "exclude_hosts": []}
        roledefs = env.get("roledefs") or {}
        if arg_hosts or arg_roles:
            return merge(arg_hosts, arg_roles, arg_exclude_hosts, roledefs), _listed(arg_roles)
        task_hosts = _task_attr(self, "hosts", None) or []
        task_roles = _task_attr(self, "roles", None) or []
        if task_hosts or task_roles:
            return (merge(task_hosts, task_roles, arg_exclude_hosts, roledefs),
                    _listed(task_roles))
        env_hosts = env.get("hosts") or []
        env_roles = env.get("roles") or []
        env_exclude = env.get("exclude_hosts") or []
        return merge(env_hosts, env_roles, env_exclude, roledefs), _listed(env_roles)

    def get_pool_size(self, hosts: List[str], default: Optional[int]) -> int:
        """How many hosts run at once: ``@parallel(pool_size)``, else ``default``
        (``env.pool_size``), else all of them; never more than there are hosts."""
        from_task = _task_attr(self, "pool_size", None)
        size = int(from_task or default or len(hosts))
        size = min(size, len(hosts))
        if output.get("debug"):
            with output_lock:
                print(f"Parallel tasks now using pool size of {size}")
        return size


def _listed(value: Any) -> List[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


class WrappedCallableTask(Task):
    """A task made from a plain function (what ``@task`` returns).

    Takes the function's ``__name__``, ``__doc__`` and ``__module__``; other attributes
    (``hosts``, ``roles``, ``parallel``...) are read from the function.
    """

    def __init__(self, callable: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wrapped = callable
        self.__wrapped__ = callable  # inspect.signature() shows the function's arguments
        if hasattr(callable, "__name__"):
            if self.name == "undefined":
                self.name = callable.__name__
            self.__name__ = self.name
        if hasattr(callable, "__doc__"):
            self.__doc__ = callable.__doc__
        if hasattr(callable, "__module__"):
            self.__module__ = callable.__module__

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes the task itself lacks. Dunders and 'wrapped' must not
        # recurse (copy/pickle probe them before __dict__ is filled).
        if name.startswith("__") or name == "wrapped":
            raise AttributeError(name)
        wrapped = self.__dict__.get("wrapped")
        if wrapped is None:
            raise AttributeError(name)
        return _chain_getattr(wrapped, name)

    def __details__(self) -> str:
        return get_task_details(self.wrapped)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self.wrapped(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(*args, **kwargs)


def _is_task(obj: Any) -> bool:
    return isinstance(obj, Task)


def requires_parallel(task: Any) -> bool:
    """True if ``task`` runs in parallel: ``@parallel``, or ``-P``/``env.parallel`` unless the
    task is ``@serial`` (``@runs_once`` implies serial)."""
    return bool((env.get("parallel") and not _task_attr(task, "serial", False))
                or _task_attr(task, "parallel", False))


def _already_ran(task: Any) -> bool:
    """True for a ``@runs_once`` task that has run (it prints no 'Executing task' line)."""
    once = _task_attr(task, "_runs_once_state", None)
    if once is not None:
        return bool(once.done)
    return _task_attr(task, "return_value", _MISSING) is not _MISSING


def _announce(host: str, command: Any) -> None:
    with output_lock:
        sys.stdout.write(f"[{host}] Executing task '{command}'\n")
        sys.stdout.flush()


def _network_exceptions_wanted() -> bool:
    """``env.use_exceptions_for['network']``: raise NetworkError instead of aborting."""
    wanted = env.get("use_exceptions_for") or {}
    return bool(wanted.get("network"))


def _network_error_ignored() -> bool:
    return bool(not _network_exceptions_wanted() and env.get("skip_bad_hosts"))


def _report_network_error(exc: NetworkError, func: Callable[[str], Any]) -> None:
    error(exc.message or str(exc), func=func, exception=exc.wrapped)


def _to_dict(host: str) -> Dict[str, Any]:
    from fabric.network import to_dict

    return to_dict(host)


def _disconnect_all() -> None:
    from fabric.network import disconnect_all

    disconnect_all()


def execute(task: Any, *args: Any, **kwargs: Any) -> Dict[str, Any]:
    """Run ``task`` once per host it resolves to, and return ``{host_string: result}``.

    ``task`` is a callable, a :class:`Task` or a task name (dotted for namespaces) from the
    loaded fabfile. The keyword arguments ``host``, ``hosts``, ``role``, ``roles`` and
    ``exclude_hosts`` choose the hosts (see :meth:`Task.get_hosts_and_effective_roles`);
    everything else is passed to the task. Without any host the task runs once and the
    result is under ``'<local-only>'``.

    Hosts run one after the other, or in parallel threads (``@parallel``, ``-P``). An
    unreachable host aborts, or with ``env.skip_bad_hosts`` warns and is skipped (its result
    is the :class:`~fabric.exceptions.NetworkError`). In parallel mode a failing host's result
    is its exception, and once all hosts are done any failure aborts (``env.warn_only``: warns)
    with ``One or more hosts failed while executing task '<name>'``.
    """
    from fabric import state

    my_env: Dict[str, Any] = {"clean_revert": True}
    results: Dict[str, Any] = {}
    if not (callable(task) or _is_task(task)):
        my_env["command"] = task
        found = crawl(task, state.commands) if isinstance(task, str) else None
        if found is None:
            msg = f"{task!r} is not callable or a valid task name"
            if env.get("skip_unknown_tasks"):
                warn(msg)
                return results
            abort(msg)
        task = found
    else:
        my_env["command"] = getattr(task, "name", None) or getattr(task, "__name__", None)
    if not _is_task(task):
        task = WrappedCallableTask(task)
    new_kwargs, hosts, roles, exclude_hosts = parse_kwargs(kwargs)
    all_hosts, effective_roles = task.get_hosts_and_effective_roles(
        hosts, roles, exclude_hosts, state.env)
    my_env["all_hosts"] = all_hosts
    my_env["effective_roles"] = effective_roles

    if not all_hosts:
        with settings(**my_env):
            results["<local-only>"] = task.run(*args, **new_kwargs)
        return results

    if requires_parallel(task):
        pool_size = task.get_pool_size(all_hosts, env.get("pool_size"))
        results.update(_execute_parallel(task, all_hosts, my_env, args, new_kwargs, pool_size))
        if env.get("eagerly_disconnect"):
            _disconnect_all()
        return results

    for host in all_hosts:
        try:
            results[host] = _execute_serial(task, host, my_env, args, new_kwargs)
        except NetworkError as exc:
            results[host] = exc
            if _network_exceptions_wanted():
                raise
            _report_network_error(exc, warn if env.get("skip_bad_hosts") else abort)
        if env.get("eagerly_disconnect"):
            _disconnect_all()
    return results


def _execute_serial(task: Task, host: str, my_env: Dict[str, Any], args: Tuple[Any, ...],
                    kwargs: Dict[str, Any]) -> Any:
    local_env = _to_dict(host)
    local_env.update(my_env)
    if output.get("running") and not _already_ran(task):
        _announce(host, my_env["command"])
    with settings(**local_env):
        return task.run(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# parallel execution
# ---------------------------------------------------------------------------------------------

# The main thread re-checks for completion this often even without a wake-up (the wait
# itself ends as soon as a host finishes).
_WAIT_TICK = 1.0
# After Ctrl-C: how long hosts already running may take to finish before we re-raise.
_INTERRUPT_GRACE = 5.0
# Joining workers that have already reported their last host: they only have to return.
_JOIN_TIMEOUT = 5.0


class _HostOutcome:
    __slots__ = ("host", "value", "exception", "failed")

    def __init__(self, host: str) -> None:
        self.host = host
        self.value: Any = None
        self.exception: Optional[BaseException] = None
        self.failed = False


class _ParallelRun:
    """Runs ``jobs`` (host, context) on ``size`` worker threads, in list order.

    The workers are daemon threads of our own rather than a ThreadPoolExecutor: after a
    Ctrl-C the hosts still running cannot be interrupted, and executor threads would then
    keep the interpreter from exiting until their remote commands end.
    """

    def __init__(self, task: Task, jobs: List[Tuple[str, Any]], size: int, command: Any,
                 args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        self.task = task
        self.jobs = jobs
        self.size = max(1, size)
        self.command = command
        self.args = args
        self.kwargs = kwargs
        self.outcomes: List[Optional[_HostOutcome]] = [None] * len(jobs)
        self.cond = threading.Condition()
        self.next_job = 0
        self.finished = 0
        self.running = 0
        self.stopping = False

    def run(self) -> List[_HostOutcome]:
        workers = [threading.Thread(target=self._worker, name=f"fabric-parallel-{i}",
                                    daemon=True)
                   for i in range(min(self.size, len(self.jobs)))]
        try:
            for worker in workers:
                worker.start()
            with self.cond:
                while self.finished < len(self.jobs):
                    self.cond.wait(_WAIT_TICK)
        except KeyboardInterrupt:
            with self.cond:
                self.stopping = True
                deadline = time.monotonic() + _INTERRUPT_GRACE
                while self.running and time.monotonic() < deadline:
                    self.cond.wait(max(0.0, deadline - time.monotonic()))
            raise
        for worker in workers:
            worker.join(_JOIN_TIMEOUT)
        return [o for o in self.outcomes if o is not None]

    def _worker(self) -> None:
        while True:
            with self.cond:
                if self.stopping or self.next_job >= len(self.jobs):
                    return
                index = self.next_job
                self.next_job += 1
                self.running += 1
            host, ctx = self.jobs[index]
            outcome = _HostOutcome(host)
            try:
                ctx.run(self._run_host, outcome)
            finally:
                with self.cond:
                    self.outcomes[index] = outcome
                    self.running -= 1
                    self.finished += 1
                    self.cond.notify_all()

    def _run_host(self, outcome: _HostOutcome) -> None:
        """Runs inside the host's own context: ``env``/``output`` are its private copies."""
        host = outcome.host
        try:
            if output.get("running") and not _already_ran(self.task):
                _announce(host, self.command)
            outcome.value = self.task.run(*self.args, **self.kwargs)
        except BaseException as exc:  # everything a host raises is reported, never lost
            outcome.exception = exc
            outcome.value = exc
            if isinstance(exc, NetworkError) and _network_error_ignored():
                _report_network_error(exc, warn)
            else:
                outcome.failed = True
                if type(exc) is not SystemExit:  # abort() has printed its own message
                    _print_host_exception(host, exc)
        finally:
            if env.get("eagerly_disconnect"):
                _drop_connection(env.get("host_string"))


def _print_host_exception(host: str, exc: BaseException) -> None:
    if isinstance(exc, NetworkError) and not output.get("debug"):
        # An unreachable host is not a bug: its message says all, a traceback would not.
        detail = "".join(traceback.format_exception_only(type(exc), exc))
    else:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    with output_lock:
        try:
            sys.stderr.write(f"!!! Parallel execution exception under host {host!r}:\n"
                             f"{detail}")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _drop_connection(host_string: Optional[str]) -> None:
    """Close one host's own connection (``-e`` in parallel mode); gateways stay, since other
    hosts may be using them."""
    if not host_string:
        return
    from fabric import state

    try:
        state.connections.drop(host_string)
    except Exception:
        pass  # never connected, or already gone


def _execute_parallel(task: Task, hosts: List[str], my_env: Dict[str, Any],
                      args: Tuple[Any, ...], kwargs: Dict[str, Any],
                      pool_size: int) -> Dict[str, Any]:
    from fabric import state

    host_env = {k: v for k, v in my_env.items() if k != "clean_revert"}
    jobs: List[Tuple[str, Any]] = []
    for host in hosts:
        # Built here, in the caller's context, so each host starts from the caller's env
        # (also when the caller is itself a parallel host running a nested execute()).
        updates = _to_dict(host)
        updates.update(host_env)
        updates["parallel"] = True
        updates["linewise"] = True
        jobs.append((host, state.isolated_context(**updates)))
    runner = _ParallelRun(task, jobs, pool_size, my_env["command"], args, kwargs)
    outcomes = runner.run()
    results = {o.host: o.value for o in outcomes}
    failures = [o for o in outcomes if o.failed]
    if failures:
        first = next((o.exception for o in failures
                      if o.exception is not None and type(o.exception) is not SystemExit),
                     None)
        error(f"One or more hosts failed while executing task '{my_env['command']}'",
              exception=first)
    return results
