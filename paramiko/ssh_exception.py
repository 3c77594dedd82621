"""The exception hierarchy (names, bases and attributes as in Paramiko)."""

from __future__ import annotations

import socket
from typing import Dict, Optional, Tuple


class SSHException(Exception):
    """Base of the library's errors: a protocol, negotiation or logic failure.

    fabric-gateway sets ``peer`` (printable ``host:port``) and ``phase`` (``banner``, ``kex``,
    ``hostkey``, ``auth``, ``channel-open``, ``transport``) where it knows them.
    """

    peer: Optional[str] = None
    phase: Optional[str] = None


class AuthenticationException(SSHException):
    """Authentication failed (wrong credentials, or no method left)."""


class PasswordRequiredException(AuthenticationException):
    """A private key is encrypted and no passphrase was given."""


class BadAuthenticationType(AuthenticationException):
    """The server refused this authentication method; ``allowed_types`` says what it takes."""

    allowed_types: list = []

    def __init__(self, explanation: str, types) -> None:
        AuthenticationException.__init__(self, explanation, types)
        self.explanation = explanation
        self.allowed_types = list(types)

    def __str__(self) -> str:
        return f"{self.explanation}; allowed types: {self.allowed_types!r}"


class PartialAuthentication(AuthenticationException):
    """One method succeeded but the server wants more (``allowed_types``)."""

    allowed_types: list = []

    def __init__(self, types) -> None:
        AuthenticationException.__init__(self, types)
        self.allowed_types = list(types)

    def __str__(self) -> str:
        return f"Partial authentication; allowed types: {self.allowed_types!r}"


class UnableToAuthenticate(AuthenticationException):
    pass


class ChannelException(SSHException):
    """A channel could not be opened; ``code`` is the RFC 4254 reason code."""

    def __init__(self, code: int, text: str) -> None:
        SSHException.__init__(self, code, text)
        self.code = code
        self.text = text

    def __str__(self) -> str:
        return f"ChannelException({self.code!r}, {self.text!r})"


class BadHostKeyException(SSHException):
    """The server's host key differs from the one on record."""

    def __init__(self, hostname: str, got_key, expected_key) -> None:
        SSHException.__init__(self, hostname, got_key, expected_key)
        self.hostname = hostname
        self.key = got_key
        self.expected_key = expected_key

    def __str__(self) -> str:
        return (f"Host key for server '{self.hostname}' does not match: got "
                f"'{self.key.get_base64()}', expected '{self.expected_key.get_base64()}'")


class IncompatiblePeer(SSHException):
    """No common algorithm, or an unsupported protocol version."""


class MessageOrderError(SSHException):
    """A message arrived out of the order the protocol allows (e.g. during strict kex)."""


class ProxyCommandFailure(SSHException):
    """The ProxyCommand subprocess failed."""

    def __init__(self, command: str, error: str) -> None:
        SSHException.__init__(self, command, error)
        self.command = command
        self.error = error

    def __str__(self) -> str:
        return f'ProxyCommand("{self.command}") returned nonzero exit status: {self.error}'


class CouldNotCanonicalize(SSHException):
    pass


class ConfigParseError(SSHException):
    pass


class NoValidConnectionsError(socket.error):
    """Every address of a host refused the TCP connection; ``errors`` maps address -> error."""

    def __init__(self, errors: Dict[Tuple, Exception]) -> None:
        addrs = sorted(errors.keys())
        body = ", ".join(str(a[0]) for a in addrs[:-1])
        tail = str(addrs[-1][0]) if addrs else "?"
        port = addrs[0][1] if addrs else "?"
        msg = (f"Unable to connect to port {port} on {body} or {tail}" if body
               else f"Unable to connect to port {port} on {tail}")
        super().__init__(None, msg)
        self.errors = errors

    def __reduce__(self):
        return (self.__class__, (self.errors,))
