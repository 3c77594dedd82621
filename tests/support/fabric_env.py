"""Fixtures that give every Fabric test a clean global state.

``fabric_state`` puts ``env``/``output`` back to their defaults, empties the task table and
closes every cached connection after the test, so no test sees another's settings or
connections. ``clean_net`` checks that ``disconnect_all()`` really leaves nothing running.
"""

from __future__ import annotations

import threading
import time

import pytest


def _reset() -> None:
    from fabric import state

    cache = state.__dict__.get("connections")
    if cache is not None:
        for key in list(cache.keys()):
            try:
                cache.drop(key)
            except Exception:
                pass
    state.reset_to_defaults()
    state.commands.clear()


@pytest.fixture
def fabric_state():
    """A pristine ``fabric.state`` for one test (and cleanup of its connections)."""
    _reset()
    yield
    _reset()


def _client_transports() -> set:
    import paramiko

    return {t for t in threading.enumerate()
            if isinstance(t, paramiko.Transport) and not t.server_mode and t.is_alive()}


@pytest.fixture
def clean_net():
    """After the test, disconnect_all() leaves an empty cache and no client transport."""
    from fabric import state
    from fabric.network import disconnect_all

    before = _client_transports()
    yield
    disconnect_all()
    assert dict.__len__(state.connections) == 0
    deadline = time.monotonic() + 5
    while _client_transports() - before and time.monotonic() < deadline:
        time.sleep(0.02)  # transport threads end a moment after close(); bounded
    assert not (_client_transports() - before), "client transports left running"
