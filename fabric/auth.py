"""Where passwords are kept: ``env.passwords`` (login, per ``user@host:port``),
``env.sudo_passwords`` (sudo, per host string), ``env.password`` and ``env.sudo_password``
(fallbacks, for targets only).

Unlike Fabric 1.x, :func:`set_password` stores under the host's own key only: a password typed
for one host (a gateway above all) never becomes another host's fallback.
"""

from __future__ import annotations

from typing import Optional

from fabric.state import env

__all__ = ["get_password", "set_password"]


def _key(user: str, host: str, port: str) -> str:
    from fabric.network import join_host_strings

    return join_host_strings(user, host, port)


def get_password(user: str, host: str, port: str, login_only: bool = False,
                 fallback: bool = True) -> Optional[str]:
    """The password to try for ``user@host:port``.

    Order: ``env.sudo_passwords[key]`` and ``env.sudo_password`` (unless ``login_only``),
    ``env.passwords[key]``, then ``env.password``. ``fallback=False`` skips the two global
    values (gateways use it: a target's ``env.password`` is never sent to a gateway).
    """
    key = _key(user, host, port)
    if not login_only:
        value = (env.get("sudo_passwords") or {}).get(key)
        if value is None and fallback:
            value = env.get("sudo_password")
        if value is not None:
            return value
    value = (env.get("passwords") or {}).get(key)
    if value is None and fallback:
        value = env.get("password")
    return value


def set_password(user: str, host: str, port: str, password: str) -> None:
    """Remember ``password`` for ``user@host:port`` (login store, that host only)."""
    passwords = env.get("passwords")
    if passwords is None:
        passwords = env["passwords"] = {}
    passwords[_key(user, host, port)] = password
