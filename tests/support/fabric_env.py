"""Fixtures that give every Fabric test a clean global state.

``fabric_state`` puts ``env``/``output`` back to their defaults, empties the task table and
closes every cached connection after the test, so no test sees another's settings or
connections.
"""

from __future__ import annotations

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
