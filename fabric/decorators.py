"""Decorators for fabfile tasks: ``@task``, ``@hosts``, ``@roles``, ``@runs_once``,
``@serial``, ``@parallel`` and ``@with_settings``.

They stack in any order. Each returns a wrapper carrying its attribute (``hosts``,
``parallel``...); when it decorates a task object the result is again a task object of the
same kind, keeping the task's name, aliases and default flag.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any, Callable, Dict, Optional

from fabric import tasks
from fabric.context_managers import settings

__all__ = ["hosts", "parallel", "roles", "runs_once", "serial", "task", "with_settings"]


def task(*args: Any, **kwargs: Any) -> Any:
    """Mark a function as a fabfile task (a :class:`~fabric.tasks.WrappedCallableTask`).

    Bare (``@task``) or called: ``@task(alias='x', aliases=[...], default=True, name='n',
    task_class=MyTask, ...)``; other arguments go to the task class's constructor.
    """
    bare = len(args) == 1 and callable(args[0]) and not kwargs
    task_class = kwargs.pop("task_class", tasks.WrappedCallableTask)
    if bare:
        return task_class(args[0])

    def wrapper(func: Callable[..., Any]) -> Any:
        return task_class(func, *args, **kwargs)

    return wrapper


def _wrap_as_new(original: Any, new: Callable[..., Any], attrs: Dict[str, Any]) -> Any:
    """``new`` (a wrapper of ``original``), turned into a task if ``original`` was one."""
    if isinstance(original, tasks.WrappedCallableTask):
        # Same class, name, aliases, default flag and any custom attributes.
        wrapped_task = copy.copy(original)
        wrapped_task.wrapped = new
        wrapped_task.__wrapped__ = new
    elif isinstance(original, tasks.Task):
        wrapped_task = tasks.WrappedCallableTask(
            new, name=original.name, aliases=original.aliases, default=original.is_default)
    else:
        return new
    # Attributes set on the task object itself would hide the new wrapper's.
    for key, value in attrs.items():
        setattr(wrapped_task, key, value)
    return wrapped_task


def _annotate(func: Callable[..., Any], **attrs: Any) -> Any:
    """A pass-through wrapper of ``func`` with ``attrs`` set on it."""

    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    for key, value in attrs.items():
        setattr(inner, key, value)
    return _wrap_as_new(func, inner, attrs)


def _values(values: tuple) -> list:
    # Both @hosts('a', 'b') and @hosts(['a', 'b']) (any single non-string iterable).
    if len(values) == 1 and not isinstance(values[0], str):
        return list(values[0])
    return list(values)


def hosts(*host_list: Any) -> Callable[[Callable[..., Any]], Any]:
    """Run the task on these hosts unless hosts are given on the command line or to
    ``execute()``."""
    chosen = _values(host_list)

    def attach(func: Callable[..., Any]) -> Any:
        return _annotate(func, hosts=list(chosen))

    return attach


def roles(*role_list: Any) -> Callable[[Callable[..., Any]], Any]:
    """Run the task on the hosts of these roles (``env.roledefs``) unless hosts or roles are
    given on the command line or to ``execute()``."""
    chosen = _values(role_list)

    def attach(func: Callable[..., Any]) -> Any:
        return _annotate(func, roles=list(chosen))

    return attach


def serial(func: Callable[..., Any]) -> Any:
    """Never run this task in parallel, even with ``-P`` (unless it is also ``@parallel``)."""
    if tasks._task_attr(func, "parallel", False):
        return func
    return _annotate(func, serial=True)


def parallel(pool_size: Any = None) -> Any:
    """Run this task on all its hosts at once (``-P`` for this task only).

    Bare (``@parallel``) or called (``@parallel(pool_size=5)``): at most ``pool_size`` hosts
    run at the same time.
    """
    bare = callable(pool_size)

    def decorate(func: Callable[..., Any]) -> Any:
        return _annotate(func, parallel=True, serial=False,
                         pool_size=None if bare else pool_size)

    if bare:
        return decorate(pool_size)
    return decorate


class _RunOnce:
    """What a ``@runs_once`` function remembers: whether it ran, and what it returned.

    A condition serializes callers, so two parallel hosts never run it twice: the second
    waits for the first and gets its return value. If the run fails the next caller tries.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.done = False
        self.value: Any = None
        self.owner: Optional[int] = None

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        me = threading.get_ident()
        with self.cond:
            while not self.done and self.owner is not None and self.owner != me:
                # Bounded wait; a finishing run wakes us at once.
                self.cond.wait(1.0)
            if self.done:
                return self.value
            claimed = self.owner is None
            if claimed:
                self.owner = me
        try:
            value = func(*args, **kwargs)
        except BaseException:
            if claimed:
                with self.cond:
                    self.owner = None
                    self.cond.notify_all()
            raise
        with self.cond:
            if not self.done:
                self.value = value
                self.done = True
            if claimed:
                self.owner = None
            self.cond.notify_all()
            return self.value


def runs_once(func: Callable[..., Any]) -> Any:
    """Run the task only once per ``fab`` run; later calls return the first result.

    Implies :func:`serial`.
    """
    once = _RunOnce()

    @functools.wraps(func)
    def decorated(*args: Any, **kwargs: Any) -> Any:
        value = once.call(func, *args, **kwargs)
        decorated.return_value = value  # type: ignore[attr-defined]  # Fabric 1.x attribute
        return value

    attrs: Dict[str, Any] = {"_runs_once_state": once}
    if not tasks._task_attr(func, "parallel", False):
        attrs["serial"] = True  # as @serial, but without another wrapper hiding return_value
    for key, value in attrs.items():
        setattr(decorated, key, value)
    return _wrap_as_new(func, decorated, attrs)


def with_settings(*arg_settings: Any, **kw_settings: Any) -> Callable[[Callable[..., Any]], Any]:
    """Run the decorated function inside ``settings(*arg_settings, **kw_settings)``."""
    managers = settings(*arg_settings, **kw_settings)

    def outer(func: Callable[..., Any]) -> Any:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with managers:
                return func(*args, **kwargs)

        return _wrap_as_new(func, inner, {})

    return outer
