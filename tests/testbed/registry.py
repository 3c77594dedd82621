"""What the test bed created in this process, so the end of the session can check it is gone."""

from __future__ import annotations

import threading
from typing import Dict, List, Tuple

_lock = threading.Lock()
_pids: Dict[int, str] = {}
_namespaces: List[str] = []
_links: List[str] = []
_routes: List[Tuple[str, str]] = []  # (namespace or "", route spec)
_users: List[str] = []


def record_pid(pid: int, what: str) -> None:
    with _lock:
        _pids[pid] = what


def record_namespace(name: str) -> None:
    with _lock:
        _namespaces.append(name)


def record_link(name: str) -> None:
    with _lock:
        _links.append(name)


def record_route(spec: str) -> None:
    with _lock:
        _routes.append(("", spec))


def record_user(name: str) -> None:
    with _lock:
        _users.append(name)


def snapshot() -> Dict[str, list]:
    with _lock:
        return {
            "pids": sorted(_pids.items()),
            "namespaces": list(_namespaces),
            "links": list(_links),
            "routes": list(_routes),
            "users": list(_users),
        }
