"""Helpers for finding tasks by name and working out which hosts they run on."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Tuple

from fabric.utils import abort, indent

__all__ = ["crawl", "merge", "parse_kwargs"]


class _Dict(dict):
    """A task namespace (a module imported into the fabfile): its tasks by name, plus the
    namespace's default task, run when the namespace itself is named (``fab mymodule``)."""

    default: Any = None


def _lookup(name: str, mapping: Any) -> Any:
    key, _, rest = name.partition(".")
    value = mapping[key]
    return _lookup(rest, value) if rest else value


def crawl(name: str, mapping: Mapping[str, Any]) -> Any:
    """The task called ``name`` (dotted for namespaces: ``deploy.web.restart``), or None.

    A name that ends at a namespace gives that namespace's default task, or None without one.
    """
    if not isinstance(name, str) or not name:
        return None
    try:
        found = _lookup(name, mapping)
    except (KeyError, TypeError, IndexError):
        return None
    if isinstance(found, Mapping):
        return getattr(found, "default", None)
    return found


def _as_list(value: Any) -> List[Any]:
    """Host/role settings as a list: None is empty, a string is one item."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _role_hosts(role: str, roledefs: Mapping[str, Any]) -> List[str]:
    value = roledefs[role]
    if isinstance(value, Mapping):
        value = value.get("hosts", [])
    if callable(value):
        value = value()
    return _as_list(value)


def merge(hosts: Iterable[str], roles: Iterable[str], exclude: Iterable[str],
          roledefs: Mapping[str, Any]) -> List[str]:
    """Hosts plus the hosts of ``roles`` (looked up in ``roledefs``), minus ``exclude``.

    Unknown roles abort. Host strings are stripped; with ``env.dedupe_hosts`` (the default)
    duplicates are dropped, keeping the first occurrence's place.
    """
    from fabric.state import env

    hosts = _as_list(hosts)
    roles = _as_list(roles)
    excluded = {h.strip() for h in _as_list(exclude)}
    roledefs = roledefs or {}
    missing = [role for role in roles if role not in roledefs]
    if missing:
        abort("The following specified roles do not exist:\n" + indent(missing))
    combined: List[str] = list(hosts)
    for role in roles:
        combined.extend(_role_hosts(role, roledefs))
    cleaned = [str(h).strip() for h in combined]
    result: List[str] = []
    seen = set()
    dedupe = env.get("dedupe_hosts", True)
    for host in cleaned:
        if host in excluded:
            continue
        if dedupe:
            if host in seen:
                continue
            seen.add(host)
        result.append(host)
    return result


def _split_list(value: Any) -> List[str]:
    """A host/role list from a task argument: ``'a;b'`` (as typed on the command line) or a
    list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    return list(value)


def parse_kwargs(kwargs: Mapping[str, Any]
                 ) -> Tuple[Dict[str, Any], List[str], List[str], List[str]]:
    """Split task keyword arguments into ``(kwargs, hosts, roles, exclude_hosts)``.

    ``host``/``role`` name one host or role; ``hosts``/``roles``/``exclude_hosts`` take a list
    or a ``;``-separated string. Everything else is passed to the task.
    """
    new_kwargs: Dict[str, Any] = {}
    hosts: List[str] = []
    roles: List[str] = []
    exclude_hosts: List[str] = []
    for key, value in kwargs.items():
        if key == "host":
            hosts = _single(value)
        elif key == "hosts":
            hosts = _split_list(value)
        elif key == "role":
            roles = _single(value)
        elif key == "roles":
            roles = _split_list(value)
        elif key == "exclude_hosts":
            exclude_hosts = _split_list(value)
        else:
            new_kwargs[key] = value
    return new_kwargs, hosts, roles, exclude_hosts


def _single(value: Any) -> List[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value.strip()]
    return list(value) if isinstance(value, (list, tuple)) else [value]

