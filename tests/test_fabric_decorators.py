"""fabric.decorators: attributes, stacking in any order, runs_once, with_settings."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from fabric import state
from fabric.context_managers import hide
from fabric.decorators import hosts, parallel, roles, runs_once, serial, task, with_settings
from fabric.state import env, output
from fabric.tasks import Task, WrappedCallableTask, requires_parallel

pytestmark = pytest.mark.usefixtures("fabric_state")


def _plain(a, b=2):
    """Plain docstring."""
    return (a, b)


# --- @task ----------------------------------------------------------------------------------


def test_bare_task_wraps_function():
    t = task(_plain)
    assert isinstance(t, WrappedCallableTask)
    assert t.name == "_plain" and t.__name__ == "_plain"
    assert t.__doc__ == "Plain docstring."
    assert t.__module__ == __name__
    assert t.wrapped is _plain
    assert t(1) == (1, 2) and t.run(3, b=4) == (3, 4)
    assert t.aliases is None and t.is_default is False


def test_task_with_options():
    t = task(alias="a1", default=True, name="renamed")(_plain)
    assert t.name == "renamed" and t.__name__ == "renamed"
    assert t.aliases == ["a1"] and t.is_default is True
    t2 = task(aliases=["x", "y"])(_plain)
    assert t2.aliases == ["x", "y"]
    t3 = task()(_plain)
    assert isinstance(t3, WrappedCallableTask) and t3.name == "_plain"


def test_task_class_receives_extra_arguments():
    class MyTask(WrappedCallableTask):
        def __init__(self, func, flavour, *args, **kwargs):
            super().__init__(func, *args, **kwargs)
            self.flavour = flavour

        def run(self, *args, **kwargs):
            return ("mine", self.flavour, super().run(*args, **kwargs))

    t = task(task_class=MyTask, flavour="spicy", alias="hot")(_plain)
    assert isinstance(t, MyTask)
    assert t.flavour == "spicy" and t.aliases == ["hot"]
    assert t(5) == ("mine", "spicy", (5, 2))


# --- hosts / roles / serial / parallel ---------------------------------------------------------


def test_hosts_and_roles_accept_varargs_or_one_list():
    assert hosts("a", "b")(_plain).hosts == ["a", "b"]
    assert hosts(["a", "b"])(_plain).hosts == ["a", "b"]
    assert hosts(("a",))(_plain).hosts == ["a"]
    assert hosts("single")(_plain).hosts == ["single"]
    assert roles("web", "db")(_plain).roles == ["web", "db"]
    assert roles(["web"])(_plain).roles == ["web"]


def test_decorating_does_not_touch_the_original_function():
    decorated = hosts("h")(_plain)
    assert decorated is not _plain
    assert not hasattr(_plain, "hosts")
    assert decorated.__name__ == "_plain" and decorated.__doc__ == "Plain docstring."
    assert decorated(7) == (7, 2)


def test_parallel_bare_and_called():
    p1 = parallel(_plain)
    assert (p1.parallel, p1.serial, p1.pool_size) == (True, False, None)
    p2 = parallel(pool_size=3)(_plain)
    assert (p2.parallel, p2.serial, p2.pool_size) == (True, False, 3)
    p3 = parallel(5)(_plain)
    assert p3.pool_size == 5
    p4 = parallel()(_plain)
    assert p4.parallel is True and p4.pool_size is None


def test_serial_marks_unless_parallel():
    assert serial(_plain).serial is True
    both = serial(parallel(_plain))
    assert both.parallel is True and both.serial is False


def _stack(order, func):
    """Apply the decorators named in ``order`` (innermost first)."""
    decorators = {
        "task": task(alias="al", default=True),
        "hosts": hosts("h1", "h2"),
        "roles": roles("r1"),
        "parallel": parallel(pool_size=4),
        "with_settings": with_settings(stacked_marker="yes"),
    }
    for name in order:
        func = decorators[name](func)
    return func


@pytest.mark.parametrize("order", list(itertools.permutations(
    ["task", "hosts", "roles", "parallel", "with_settings"])))
def test_decorators_compose_in_any_order(order):
    def deploy(x, y=1):
        """Deploy it."""
        return (x, y, env.get("stacked_marker"))

    t = _stack(order, deploy)
    assert isinstance(t, WrappedCallableTask), order
    assert t.name == "deploy"
    assert t.aliases == ["al"] and t.is_default is True
    assert t.hosts == ["h1", "h2"] and t.roles == ["r1"]
    assert t.parallel is True and t.serial is False and t.pool_size == 4
    assert t.__doc__ == "Deploy it."
    assert t(9) == (9, 1, "yes")
    assert "stacked_marker" not in env
    assert requires_parallel(t)
    assert t.get_pool_size(["a"] * 10, 2) == 4


def test_custom_task_class_survives_outer_decorators():
    class Special(WrappedCallableTask):
        pass

    t = hosts("x")(task(task_class=Special, name="sp")(_plain))
    assert isinstance(t, Special) and t.name == "sp" and t.hosts == ["x"]


def test_plain_task_subclass_decorated_becomes_wrapped_task():
    class Restart(Task):
        name = "restart"

        def run(self, service="web"):
            return "restarted " + service

    t = hosts("h")(Restart(alias="rs"))
    assert isinstance(t, WrappedCallableTask)
    assert t.name == "restart" and t.aliases == ["rs"] and t.hosts == ["h"]
    assert t(service="db") == "restarted db"


def test_requires_parallel_with_env_parallel():
    env.parallel = True
    assert requires_parallel(task(_plain))
    assert not requires_parallel(serial(_plain))
    assert not requires_parallel(runs_once(_plain))
    env.parallel = False
    assert not requires_parallel(task(_plain))
    assert requires_parallel(parallel(_plain))


# --- runs_once --------------------------------------------------------------------------------


def test_runs_once_memoizes_and_implies_serial():
    calls = []

    @runs_once
    def once(x):
        calls.append(x)
        return x * 10

    assert once(1) == 10
    assert once(2) == 10
    assert calls == [1]
    assert once.return_value == 10
    assert once.serial is True


def test_runs_once_on_a_task_object():
    calls = []

    @runs_once
    @task
    def once():
        calls.append(1)
        return "v"

    assert isinstance(once, WrappedCallableTask)
    assert once() == "v" and once() == "v"
    assert calls == [1]
    assert once.return_value == "v" and once.serial is True


def test_runs_once_retries_after_failure():
    attempts = []

    @runs_once
    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first fails")
        return "ok"

    with pytest.raises(RuntimeError):
        flaky()
    assert flaky() == "ok" and flaky() == "ok"
    assert len(attempts) == 2


def test_runs_once_is_thread_safe():
    calls = []
    start = threading.Barrier(8, timeout=10)

    @runs_once
    def slow():
        calls.append(threading.get_ident())
        time.sleep(0.2)
        return "result"

    got = []

    def worker():
        start.wait()
        got.append(slow())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    assert len(calls) == 1
    assert got == ["result"] * 8


# --- with_settings ----------------------------------------------------------------------------


def test_with_settings_applies_and_restores():
    @with_settings(hide("running"), warn_only=True, fresh_key="v")
    def inner():
        return env.warn_only, output.running, env.fresh_key

    assert inner() == (True, False, "v")
    assert env.warn_only is False and output.running is True and "fresh_key" not in env
    assert inner() == (True, False, "v")  # reusable: a second call works the same
    assert inner.__name__ == "inner"


def test_with_settings_restores_on_exception():
    @with_settings(user="temp")
    def failing():
        raise KeyError("x")

    env.user = "orig"
    with pytest.raises(KeyError):
        failing()
    assert env.user == "orig"


def test_with_settings_in_parallel_contexts():
    @with_settings(hide("stdout"), host_marker="m")
    def body(name, barrier):
        barrier.wait()
        env.host_marker = name
        barrier.wait()
        return env.host_marker, output.stdout

    barrier = threading.Barrier(4, timeout=10)
    results = {}

    def run(name):
        results[name] = state.isolated_context().run(body, name, barrier)

    threads = [threading.Thread(target=run, args=(f"h{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    assert results == {f"h{i}": (f"h{i}", False) for i in range(4)}
    assert "host_marker" not in env and output.stdout is True
