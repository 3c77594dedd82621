"""Server-side policy hooks: ``ServerInterface``, ``InteractiveQuery``, ``SubsystemHandler``.

A server application subclasses :class:`ServerInterface` and passes it to
``Transport.start_server``. Every hook has a conservative default (refuse), so a subclass
only opts in to what it supports. Hooks run on the transport's reader thread: they should
return quickly and hand long work to another thread.
"""

from __future__ import annotations

import threading
from typing import Any, List, Optional, Tuple, Union

from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    DEBUG,
    ERROR,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
)


class ServerInterface:
    """Policy for an SSH server; override the hooks you want to allow."""

    # -- channels and global requests ---------------------------------------------------
    def check_channel_request(self, kind: str, chanid: int) -> int:
        """Allow a channel of ``kind`` (e.g. "session")? Return OPEN_SUCCEEDED or a code."""
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_global_request(self, kind: str, msg) -> Union[bool, tuple]:
        """Allow a global request; True, a tuple of reply data, or False."""
        return False

    def check_port_forward_request(self, address: str, port: int) -> Union[bool, int]:
        """Allow remote forwarding; return the bound port (or True) to accept."""
        return False

    def cancel_port_forward_request(self, address: str, port: int) -> None:
        """A previously granted remote forward is being cancelled."""

    def check_channel_direct_tcpip_request(self, chanid: int, origin: Tuple[str, int],
                                           destination: Tuple[str, int]) -> int:
        """Allow a local-forward (``direct-tcpip``) channel?"""
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    # -- authentication ------------------------------------------------------------------
    def get_allowed_auths(self, username: str) -> str:
        """Comma-separated auth methods offered to ``username``."""
        return "password"

    def check_auth_none(self, username: str) -> int:
        return AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        return AUTH_FAILED

    def check_auth_publickey(self, username: str, key) -> int:
        """Called for a key query and again with a verified signature; same answer both."""
        return AUTH_FAILED

    def check_auth_interactive(self, username: str, submethods: str) -> Union[int, Any]:
        """Start keyboard-interactive auth: return an ``InteractiveQuery`` or AUTH_FAILED."""
        return AUTH_FAILED

    def check_auth_interactive_response(self, responses: List[str]) -> Union[int, Any]:
        """Judge the answers; may return another ``InteractiveQuery`` for more rounds."""
        return AUTH_FAILED

    def check_auth_gssapi_with_mic(self, username: str, gss_authenticated: int = AUTH_FAILED,
                                   cc_file: Optional[str] = None) -> int:
        return AUTH_SUCCESSFUL if gss_authenticated == AUTH_SUCCESSFUL else AUTH_FAILED

    def check_auth_gssapi_keyex(self, username: str, gss_authenticated: int = AUTH_FAILED,
                                cc_file: Optional[str] = None) -> int:
        return AUTH_SUCCESSFUL if gss_authenticated == AUTH_SUCCESSFUL else AUTH_FAILED

    def enable_auth_gssapi(self) -> bool:
        return False

    def get_banner(self) -> Tuple[Optional[str], Optional[str]]:
        """``(text, language)`` sent before authentication, or ``(None, None)``."""
        return (None, None)

    # -- session channel requests --------------------------------------------------------
    def check_channel_pty_request(self, channel, term: bytes, width: int, height: int,
                                  pixelwidth: int, pixelheight: int, modes: bytes) -> bool:
        return False

    def check_channel_shell_request(self, channel) -> bool:
        return False

    def check_channel_exec_request(self, channel, command: bytes) -> bool:
        return False

    def check_channel_subsystem_request(self, channel, name: str) -> bool:
        """Start the handler registered with ``Transport.set_subsystem_handler``, if any."""
        transport = channel.get_transport()
        handler_class, args, kwargs = transport._get_subsystem_handler(name)
        if handler_class is None:
            return False
        handler = handler_class(channel, name, self, *args, **kwargs)
        handler.start()
        return True

    def check_channel_window_change_request(self, channel, width: int, height: int,
                                            pixelwidth: int, pixelheight: int) -> bool:
        return False

    def check_channel_x11_request(self, channel, single_connection: bool, auth_protocol: str,
                                  auth_cookie: bytes, screen_number: int) -> bool:
        return False

    def check_channel_forward_agent_request(self, channel) -> bool:
        return False

    def check_channel_env_request(self, channel, name: bytes, value: bytes) -> bool:
        return False

    def check_channel_signal_request(self, channel, name: str) -> bool:
        """Deliver signal ``name`` (no ``SIG`` prefix) to the channel's command; refused by
        default. Not in upstream Paramiko."""
        return False


class InteractiveQuery:
    """One round of keyboard-interactive prompts (for ``check_auth_interactive``)."""

    def __init__(self, name: str = "", instructions: str = "",
                 *prompts: Union[str, Tuple[str, bool]]) -> None:
        self.name = name
        self.instructions = instructions
        self.prompts: List[Tuple[str, bool]] = []
        for prompt in prompts:
            if isinstance(prompt, str):
                self.add_prompt(prompt)
            else:
                self.add_prompt(prompt[0], prompt[1])

    def add_prompt(self, prompt: str, echo: bool = True) -> None:
        """Add a prompt; ``echo`` says whether the answer may be shown as typed."""
        self.prompts.append((prompt, echo))


class SubsystemHandler(threading.Thread):
    """Runs one subsystem (e.g. SFTP) on a channel in its own thread.

    Subclasses implement ``start_subsystem``; when it returns (or raises),
    ``finish_subsystem`` runs and the channel is closed.
    """

    def __init__(self, channel, name: str, server: ServerInterface) -> None:
        super().__init__(name=f"subsystem-{name}-{channel.get_id()}", daemon=True)
        self.__channel = channel
        self.__transport = channel.get_transport()
        self.__name = name
        self.__server = server

    def get_server(self) -> ServerInterface:
        return self.__server

    def _log(self, level: int, msg: str) -> None:
        log = getattr(self.__transport, "_log", None)
        if log is not None:
            log(level, msg)

    def run(self) -> None:
        try:
            self._log(DEBUG, f"starting subsystem {self.__name!r} on channel "
                             f"{self.__channel.get_id()}")
            self.start_subsystem(self.__name, self.__transport, self.__channel)
        except Exception as exc:
            self._log(ERROR, f"subsystem {self.__name!r} failed: {exc!r}")
        finally:
            try:
                self.finish_subsystem()
            finally:
                self.__channel.close()

    def start_subsystem(self, name: str, transport, channel) -> None:
        """Serve the subsystem until done; the channel closes after this returns."""

    def finish_subsystem(self) -> None:
        """Clean-up hook (the base closes the channel)."""
        self.__channel.close()
