"""fabric.tasks / task_utils / docs: Task objects, host lists, execute() serial and parallel."""

from __future__ import annotations

import _thread
import signal
import socket
import threading
import time
import types

import pytest

from fabric import state
from fabric.decorators import hosts, parallel, roles, runs_once, serial, task
from fabric.exceptions import NetworkError
from fabric.state import env, output
from fabric.task_utils import _Dict, crawl, merge, parse_kwargs
from fabric.tasks import Task, WrappedCallableTask, execute, get_task_details
from fabric.utils import abort

pytestmark = pytest.mark.usefixtures("fabric_state")

HOSTS = [f"u{i}@host{i}.example:22{i:02d}" for i in range(8)]


# --- task_utils ----------------------------------------------------------------------------


def test_crawl_dotted_names_and_namespace_defaults():
    leaf = object()
    default_task = object()
    inner = _Dict(restart=leaf)
    inner.default = default_task
    mapping = {"top": 1, "ns": {"web": inner, "plain": {"x": 2}}}
    assert crawl("top", mapping) == 1
    assert crawl("ns.web.restart", mapping) is leaf
    assert crawl("ns.web", mapping) is default_task
    assert crawl("ns.plain", mapping) is None  # namespace without default
    assert crawl("ns.plain.x", mapping) == 2
    for bad in ("nope", "ns.nope", "top.deeper", "ns.web.restart.more", ""):
        assert crawl(bad, mapping) is None, bad


def test_merge_roles_exclude_and_dedupe_order():
    roledefs = {
        "web": ["w1", "w2 ", "shared"],
        "db": lambda: ["d1", "shared"],
        "cache": {"hosts": ["c1"], "extra": "ignored"},
    }
    got = merge(["h1", "shared", " h1"], ["web", "db", "cache"], ["w2"], roledefs)
    assert got == ["h1", "shared", "w1", "d1", "c1"]
    env.dedupe_hosts = False
    got = merge(["h1", "h1"], ["web"], ["w1"], roledefs)
    assert got == ["h1", "h1", "w2", "shared"]
    assert merge("single", [], [], {}) == ["single"]


def test_merge_unknown_roles_abort(capsys):
    with pytest.raises(SystemExit):
        merge([], ["web", "nope", "gone"], [], {"web": ["a"]})
    err = capsys.readouterr().err
    assert "Fatal error: The following specified roles do not exist:\n    nope\n    gone" in err


def test_parse_kwargs():
    kwargs, h, r, x = parse_kwargs({"host": "a", "role": "web", "exclude_hosts": "b;c",
                                    "other": 1})
    assert (kwargs, h, r, x) == ({"other": 1}, ["a"], ["web"], ["b", "c"])
    kwargs, h, r, x = parse_kwargs({"hosts": "h1; h2", "roles": ["r1", "r2"]})
    assert (kwargs, h, r, x) == ({}, ["h1", "h2"], ["r1", "r2"], [])
    kwargs, h, r, x = parse_kwargs({"hosts": ["x", "y"], "arg": "v"})
    assert (kwargs, h, r, x) == ({"arg": "v"}, ["x", "y"], [], [])


# --- Task / WrappedCallableTask ------------------------------------------------------------


def test_task_base_class():
    class Deploy(Task):
        name = "deploy"

        def run(self, where, force=False):
            """Deploy somewhere."""
            return (where, force)

    t = Deploy(aliases=["d", "dep"], default=True)
    assert t.aliases == ["d", "dep"] and t.is_default and t.use_task_objects
    assert t("prod") == ("prod", False)
    assert t.__details__() == "Deploy somewhere.\nArguments: where, force=False"
    with pytest.raises(NotImplementedError):
        Task().run()


def test_wrapped_callable_task_copies_metadata_and_reads_function_attributes():
    def fn(a, b="x"):
        """
        Line one.
            indented
        """
        return a + b

    fn.hosts = ["h"]
    t = WrappedCallableTask(fn, alias="f2")
    assert (t.name, t.__name__, t.__module__) == ("fn", "fn", __name__)
    assert t.wrapped is fn and t.hosts == ["h"] and t.aliases == ["f2"]
    assert not hasattr(t, "roles")
    assert t("1") == "1x"
    assert t.__details__() == "Line one.\n    indented\nArguments: a, b='x'"
    assert get_task_details(lambda: None).startswith("No docstring provided\nArguments: ")
    import copy

    clone = copy.copy(t)
    assert clone.wrapped is fn and clone.name == "fn"


def test_details_of_decorated_task_show_the_original_signature():
    @task
    @hosts("x")
    def deploy(version, fast=True):
        """Ship it."""

    assert deploy.__details__() == "Ship it.\nArguments: version, fast=True"


def test_host_precedence():
    env.roledefs = {"web": ["w1", "w2"], "db": ["d1"]}
    env.hosts = ["e1", "e2"]
    env.exclude_hosts = ["e2", "w1"]

    plain = WrappedCallableTask(lambda: None)
    assert plain.get_hosts_and_effective_roles([], [], [], env) == (["e1"], [])
    decorated = roles("web")(task(lambda: None))
    assert decorated.get_hosts_and_effective_roles([], [], [], env) == (["w1", "w2"], ["web"])
    assert decorated.get_hosts_and_effective_roles(["a"], ["db"], ["d1"], env) == (["a"], ["db"])
    assert decorated.get_hosts_and_effective_roles([], [], ["w2"], env) == (["w1"], ["web"])
    assert plain.get_hosts_and_effective_roles([], [], [], None) == ([], [])


def test_pool_size():
    t = WrappedCallableTask(lambda: None)
    assert t.get_pool_size(["a", "b", "c"], 0) == 3
    assert t.get_pool_size(["a", "b", "c"], 2) == 2
    assert t.get_pool_size(["a", "b"], 10) == 2
    assert parallel(pool_size=1)(t).get_pool_size(["a", "b"], 5) == 1
    assert parallel(pool_size="2")(t).get_pool_size(["a", "b", "c"], 0) == 2


# --- execute: serial -------------------------------------------------------------------------


def _recording_task(seen):
    def record(*args, **kwargs):
        seen.append({k: env.get(k) for k in ("host_string", "host", "user", "port", "command",
                                             "all_hosts", "effective_roles", "parallel")}
                    | {"args": args, "kwargs": kwargs,
                       "thread": threading.current_thread().name})
        return env.host_string

    return record


def test_execute_without_hosts_is_local_only():
    seen = []
    result = execute(_recording_task(seen), 1, k=2)
    assert result == {"<local-only>": None}
    assert seen[0]["args"] == (1,) and seen[0]["kwargs"] == {"k": 2}
    assert seen[0]["command"] == "record"
    assert env.command is None and env.all_hosts == []


def test_execute_serial_per_host_env_and_restore(capsys):
    seen = []
    env.user = "me"
    results = execute(_recording_task(seen), "pos", hosts=["a", "u@b:2200"], roles=[],
                      flag=True)
    assert results == {"a": "a", "u@b:2200": "u@b:2200"}
    assert [s["host"] for s in seen] == ["a", "b"]
    assert [s["user"] for s in seen] == ["me", "u"]
    assert [s["port"] for s in seen] == ["22", "2200"]
    assert all(s["all_hosts"] == ["a", "u@b:2200"] and s["command"] == "record" for s in seen)
    assert all(s["args"] == ("pos",) and s["kwargs"] == {"flag": True} for s in seen)
    assert seen[0]["thread"] == threading.current_thread().name
    assert env.host_string is None and env.host is None and env.command is None
    assert env.all_hosts == [] and env.user == "me"
    out = capsys.readouterr().out
    assert out == "[a] Executing task 'record'\n[u@b:2200] Executing task 'record'\n"


def test_execute_hides_executing_line_with_output_running_off(capsys):
    output.running = False
    execute(lambda: None, host="a")
    assert capsys.readouterr().out == ""


def test_serial_task_changes_to_env_persist_but_host_keys_revert():
    @task
    def mutate():
        env.persisted = env.host
        env.user = "changed-by-task"

    env.user = "me"
    execute(mutate, hosts=["h1", "h2"])
    assert env.persisted == "h2"
    assert env.user == "changed-by-task"  # clean_revert keeps what the task changed
    assert env.host_string is None


def test_execute_roles_and_effective_roles():
    seen = []
    env.roledefs = {"web": {"hosts": ["w1", "w2"]}, "db": lambda: ["d1"]}
    results = execute(_recording_task(seen), roles=["web", "db"], exclude_hosts=["w2"])
    assert list(results) == ["w1", "d1"]
    assert seen[0]["effective_roles"] == ["web", "db"]
    env.roles = ["db"]
    assert list(execute(_recording_task(seen))) == ["d1"]
    assert seen[-1]["effective_roles"] == ["db"]


def test_execute_by_dotted_name_and_task_name():
    seen = []
    deploy = task(name="deploy")(_recording_task(seen))
    ns = _Dict(deploy=deploy)
    ns.default = deploy
    state.commands.update({"deploy": deploy, "app": ns})
    assert execute("deploy", host="a") == {"a": "a"}
    assert execute("app.deploy", host="b") == {"b": "b"}
    assert execute("app", host="c") == {"c": "c"}
    assert [s["command"] for s in seen] == ["deploy", "app.deploy", "app"]
    assert execute(deploy, host="d") == {"d": "d"}
    assert seen[-1]["command"] == "deploy"


def test_execute_unknown_name_aborts_or_warns(capsys):
    with pytest.raises(SystemExit):
        execute("no.such.task")
    assert "Fatal error: 'no.such.task' is not callable or a valid task name" in \
        capsys.readouterr().err
    env.skip_unknown_tasks = True
    assert execute("missing") == {}
    assert "Warning: 'missing' is not callable or a valid task name" in capsys.readouterr().err


def test_runs_once_runs_once_across_hosts(capsys):
    calls = []

    @runs_once
    def once():
        calls.append(env.host)
        return "first:" + env.host

    results = execute(once, hosts=["a", "b", "c"])
    assert calls == ["a"]
    assert results == {"a": "first:a", "b": "first:a", "c": "first:a"}
    assert capsys.readouterr().out == "[a] Executing task 'once'\n"


def test_serial_network_error_aborts_skips_or_raises(capsys):
    ran = []

    def flaky():
        ran.append(env.host)
        if env.host == "bad":
            raise NetworkError("Timed out trying to connect to bad", OSError("x"), host="bad")
        return "ok"

    with pytest.raises(SystemExit):
        execute(flaky, hosts=["good", "bad", "later"])
    assert ran == ["good", "bad"]
    assert "Fatal error: Timed out trying to connect to bad" in capsys.readouterr().err

    ran.clear()
    env.skip_bad_hosts = True
    results = execute(flaky, hosts=["good", "bad", "later"])
    assert ran == ["good", "bad", "later"]
    assert results["good"] == "ok" and results["later"] == "ok"
    assert isinstance(results["bad"], NetworkError)
    assert "Warning: Timed out trying to connect to bad" in capsys.readouterr().err

    env.use_exceptions_for["network"] = True
    with pytest.raises(NetworkError):
        execute(flaky, hosts=["bad"])


def test_eagerly_disconnect_serial(monkeypatch):
    import fabric.network

    calls = []
    monkeypatch.setattr(fabric.network, "disconnect_all", lambda: calls.append(env.host))
    env.eagerly_disconnect = True
    execute(lambda: None, hosts=["a", "b"])
    assert len(calls) == 2


def test_eagerly_disconnect_parallel_drops_each_host_then_all(monkeypatch):
    import fabric.network

    dropped, final = [], []

    class FakeCache:
        def drop(self, key):
            dropped.append(key)

    monkeypatch.setattr(state, "connections", FakeCache(), raising=False)
    monkeypatch.setattr(fabric.network, "disconnect_all", lambda: final.append(len(dropped)))
    env.eagerly_disconnect = True
    execute(parallel(lambda: None), hosts=["a", "b", "c"])
    assert sorted(dropped) == ["a", "b", "c"]  # each host's own connection, from its thread
    assert final == [3]  # then everything that is left (gateways), once


# --- execute: parallel ------------------------------------------------------------------------


def test_parallel_hosts_are_isolated_and_concurrent():
    barrier = threading.Barrier(len(HOSTS), timeout=20)
    env.hosts = []
    env.shell_env = {"K": "caller"}
    env.caller_only = "c"

    @parallel
    def work(tag):
        barrier.wait()  # passes only when every host runs at the same time
        env.foo = env.host_string
        env.hosts.append(env.host)
        env.shell_env["K"] = env.host
        output.running = False
        del env.caller_only
        barrier.wait()  # everyone has written: nobody may see another host's values
        return (tag, env.foo, list(env.hosts), env.shell_env["K"], env.parallel,
                env.linewise, env.host, env.user, env.port, threading.current_thread().name)

    results = execute(work, "t", hosts=HOSTS)
    assert list(results) == HOSTS
    threads = set()
    for i, h in enumerate(HOSTS):
        tag, foo, host_list, k, par, linewise, host, user, port, thread = results[h]
        assert (tag, foo, host_list, k) == ("t", h, [f"host{i}.example"], f"host{i}.example")
        assert (par, linewise, host, user, port) == (True, True, f"host{i}.example", f"u{i}",
                                                     f"22{i:02d}")
        threads.add(thread)
    assert len(threads) == len(HOSTS)
    # Nothing leaked back to the caller.
    assert "foo" not in env and env.hosts == [] and env.shell_env == {"K": "caller"}
    assert env.caller_only == "c" and output.running is True
    assert env.parallel is False and env.linewise is False and env.host_string is None
    assert not [t for t in threading.enumerate() if t.name.startswith("fabric-parallel")]


def test_env_parallel_runs_plain_task_in_threads():
    env.parallel = True
    main = threading.current_thread().name
    names = execute(lambda: threading.current_thread().name, hosts=["a", "b"])
    assert all(name != main for name in names.values())
    # @serial beats -P
    names = execute(serial(lambda: threading.current_thread().name), hosts=["a", "b"])
    assert set(names.values()) == {main}


def test_pool_size_limits_concurrency_and_keeps_order():
    lock = threading.Lock()
    state_ = {"now": 0, "max": 0, "order": []}
    pair = threading.Barrier(2, timeout=20)

    @parallel(pool_size=2)
    def work():
        with lock:
            state_["now"] += 1
            state_["max"] = max(state_["max"], state_["now"])
            state_["order"].append(env.host_string)
        pair.wait()  # two at once must be possible...
        time.sleep(0.05)
        with lock:
            state_["now"] -= 1

    hosts_ = [f"h{i}" for i in range(6)]
    execute(work, hosts=hosts_)
    assert state_["max"] == 2  # ...and never more than two
    # pairs start together, in list order
    order = state_["order"]
    assert [set(order[i:i + 2]) for i in (0, 2, 4)] == [{"h0", "h1"}, {"h2", "h3"}, {"h4", "h5"}]


def test_env_pool_size_and_serial_order_in_pool_of_one():
    env.pool_size = 1
    env.parallel = True
    order = []
    execute(lambda: order.append(env.host), hosts=["c", "a", "b"])
    assert order == ["c", "a", "b"]


def test_parallel_failure_report_and_abort(capsys):
    done = []

    @parallel
    def work():
        if env.host == "h2":
            raise ValueError("boom on h2")
        done.append(env.host)
        return "ok"

    with pytest.raises(SystemExit):
        execute(work, hosts=["h1", "h2", "h3"])
    assert sorted(done) == ["h1", "h3"]  # the others still ran to the end
    err = capsys.readouterr().err
    assert "!!! Parallel execution exception under host 'h2':\nTraceback" in err
    assert "ValueError: boom on h2" in err
    assert "Fatal error: One or more hosts failed while executing task 'work'" in err
    assert err.index("!!! Parallel") < err.index("Fatal error: One or more")


def test_parallel_failure_with_warn_only_returns_exceptions(capsys):
    @parallel
    def work():
        if env.host == "bad":
            raise KeyError("k")
        return env.host

    env.warn_only = True
    results = execute(work, hosts=["good", "bad"])
    assert results["good"] == "good"
    assert isinstance(results["bad"], KeyError)
    err = capsys.readouterr().err
    assert "Warning: One or more hosts failed while executing task 'work'" in err
    assert err.count("!!! Parallel execution exception under host 'bad':") == 1


def test_parallel_abort_in_host_is_not_reported_twice(capsys):
    @parallel
    def work():
        if env.host == "h1":
            abort("host-level problem")
        return 1

    env.warn_only = True
    results = execute(work, hosts=["h1", "h2"])
    assert isinstance(results["h1"], SystemExit) and results["h2"] == 1
    err = capsys.readouterr().err
    assert "Fatal error: host-level problem" in err
    assert "!!! Parallel" not in err
    assert "Warning: One or more hosts failed while executing task 'work'" in err


def test_parallel_skip_bad_hosts_network_error(capsys):
    @parallel
    def work():
        if env.host == "unreachable":
            raise NetworkError("Low level socket error connecting to host unreachable",
                               ConnectionRefusedError(111, "refused"), host=env.host_string)
        return "fine"

    env.skip_bad_hosts = True
    results = execute(work, hosts=["ok1", "unreachable", "ok2"])
    assert results["ok1"] == results["ok2"] == "fine"
    assert isinstance(results["unreachable"], NetworkError)
    err = capsys.readouterr().err
    assert "Warning: Low level socket error connecting to host unreachable" in err
    assert "!!!" not in err and "One or more hosts failed" not in err

    env.skip_bad_hosts = False
    with pytest.raises(SystemExit):
        execute(work, hosts=["ok1", "unreachable"])
    err = capsys.readouterr().err
    assert "!!! Parallel execution exception under host 'unreachable':" in err
    assert "NetworkError: Low level socket error" in err
    assert "One or more hosts failed while executing task 'work'" in err


def test_runs_once_under_parallel_runs_once(capsys):
    calls = []
    gate = threading.Barrier(4, timeout=20)

    @parallel
    @runs_once
    def once():
        calls.append(env.host)
        time.sleep(0.1)
        return "only:" + env.host

    @parallel
    def driver():
        gate.wait()
        return once()

    results = execute(driver, hosts=["a", "b", "c", "d"])
    assert len(calls) == 1
    assert len(set(results.values())) == 1
    # -P without @parallel: runs_once implies serial, and it has already run.
    env.parallel = True
    assert execute(once, hosts=["x"]) == {"x": "only:" + calls[0]}
    assert len(calls) == 1


def test_nested_execute_inside_parallel_task():
    @task
    def inner(prefix_):
        return f"{prefix_}:{env.host}:{env.outer_marker}"

    @parallel
    def outer():
        env.outer_marker = env.host
        nested = execute(inner, "in", hosts=[env.host + "-sub"])
        return nested, env.host_string, env.outer_marker

    results = execute(outer, hosts=["p1", "p2", "p3"])
    for h in ("p1", "p2", "p3"):
        nested, host_string, marker = results[h]
        assert nested == {f"{h}-sub": f"in:{h}-sub:{h}"}
        assert host_string == h and marker == h  # nested execute restored the host's env
    assert "outer_marker" not in env


def _interrupt_main_thread():
    """Ctrl-C as the main thread would get it (a real SIGINT when Python's handler is on)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
    else:
        _thread.interrupt_main()


def test_keyboard_interrupt_stops_starting_hosts(monkeypatch):
    import fabric.tasks

    monkeypatch.setattr(fabric.tasks, "_INTERRUPT_GRACE", 0.5)
    started = []
    release = threading.Event()

    @parallel(pool_size=1)
    def work():
        started.append(env.host)
        _interrupt_main_thread()
        release.wait(10)  # still running when execute() gives up waiting

    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            execute(work, hosts=["h1", "h2", "h3"])
    finally:
        release.set()
    assert started == ["h1"]
    assert time.monotonic() - t0 < 5
    for worker in [t for t in threading.enumerate() if t.name.startswith("fabric-parallel")]:
        worker.join(5)  # released above: the running host returns and starts nothing new
    assert not [t for t in threading.enumerate() if t.name.startswith("fabric-parallel")]
    assert started == ["h1"]


# --- against the in-process SSH server ----------------------------------------------------------


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _remote_output(command, timeout=10.0):
    chan = state.default_channel()
    try:
        chan.exec_command(command)
        data = b""
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"{command!r} did not finish in {timeout}s")
            try:
                chunk = chan.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                break
            data += chunk
        return data.decode().strip()
    finally:
        chan.close()


def test_execute_parallel_over_real_connections(local_ssh, capsys):
    env.key_filename = [local_ssh.key_filename]
    env.no_agent = True
    env.no_keys = True
    env.skip_bad_hosts = True
    env.timeout = 5
    dead = f"{local_ssh.user}@127.0.0.1:{_closed_port()}"

    @parallel
    def whoami():
        return _remote_output("echo reached-$((6*7))")

    results = execute(whoami, hosts=[local_ssh.host_string, dead])
    assert results[local_ssh.host_string] == "reached-42"
    assert isinstance(results[dead], NetworkError)
    err = capsys.readouterr().err
    assert "Warning:" in err and "127.0.0.1" in err
    assert "One or more hosts failed" not in err


# --- docs -----------------------------------------------------------------------------------


def test_unwrap_tasks():
    from fabric.docs import unwrap_tasks

    module = types.ModuleType("fake_fabfile")

    def deploy():
        """Deploy."""

    def _hidden_impl():
        """Private impl."""

    def helper():
        """A helper."""

    module.deploy = task(deploy)
    module._hidden_impl = task(name="public_name")(_hidden_impl)
    module.helper = helper
    module.undocumented = lambda: None
    unwrap_tasks(module, hide_nontasks=True)
    assert module.deploy is deploy
    assert module.public_name is _hidden_impl and _hidden_impl.__name__ == "public_name"
    assert not hasattr(module, "helper") and module._helper is helper
    assert module.undocumented.__doc__ is None  # no docstring: left alone


def test_details_of_decorated_task_subclass_use_run_signature():
    class Restart(Task):
        name = "restart"

        def run(self, service, graceful=True):
            """Restart a service."""

    t = hosts("h")(Restart())
    assert t.__details__() == "Restart a service.\nArguments: service, graceful=True"


def test_details_clean_up_docstring_indentation():
    def fn():
        """Summary line.

        More detail.
          Indented more.
        """

    assert get_task_details(fn) == "Summary line.\n\nMore detail.\n  Indented more.\nArguments: "


def test_parallel_hosts_share_one_gateway_connection(local_gateway_pair):
    gw, target = local_gateway_pair.gateway, local_gateway_pair.target
    env.key_filename = [gw.key_filename]
    env.no_agent = True
    env.no_keys = True
    env.timeout = 10
    env.gateway = gw.host_string
    # Six distinct target connections (one per login name), all behind the one gateway.
    targets = [f"user{i}@127.0.0.1:{target.port}" for i in range(6)]
    gw_logins, target_logins = gw.server.logins, target.server.logins
    start = threading.Barrier(len(targets), timeout=20)

    @parallel
    def probe():
        start.wait()  # all hosts dial at the same moment
        return env.user, _remote_output("echo via-gateway")

    results = execute(probe, hosts=targets)
    assert results == {h: (f"user{i}", "via-gateway") for i, h in enumerate(targets)}
    assert target.server.logins - target_logins == len(targets)
    assert gw.server.logins - gw_logins == 1  # the gateway connection was shared
