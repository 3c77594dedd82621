"""SSH-2 library with Paramiko's public API (part of the ``fabric-gateway`` distribution).

See README.rst for what exists today; names that arrive with later work (SSHClient, HostKeys,
SSHConfig, ProxyCommand, SFTP, Agent) are not exported yet.
"""

from paramiko._version import __version__, __version_info__
from paramiko.auth_handler import AuthHandler
from paramiko.channel import Channel, ChannelFile, ChannelStderrFile, ChannelStdinFile
from paramiko.common import (
    AUTH_FAILED,
    AUTH_PARTIALLY_SUCCESSFUL,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_FAILED_CONNECT_FAILED,
    OPEN_FAILED_RESOURCE_SHORTAGE,
    OPEN_FAILED_UNKNOWN_CHANNEL_TYPE,
    OPEN_SUCCEEDED,
    io_sleep,
)
from paramiko.ecdsakey import ECDSAKey
from paramiko.ed25519key import Ed25519Key
from paramiko.file import BufferedFile
from paramiko.message import Message
from paramiko.pkey import PKey, PublicBlob, UnknownKeyType
from paramiko.rsakey import RSAKey
from paramiko.server import InteractiveQuery, ServerInterface, SubsystemHandler
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    BadHostKeyException,
    ChannelException,
    ConfigParseError,
    CouldNotCanonicalize,
    IncompatiblePeer,
    MessageOrderError,
    PasswordRequiredException,
    ProxyCommandFailure,
    SSHException,
)
from paramiko.transport import SecurityOptions, ServiceRequestingTransport, Transport

key_classes = [RSAKey, Ed25519Key, ECDSAKey]

__all__ = [
    "AUTH_FAILED",
    "AUTH_PARTIALLY_SUCCESSFUL",
    "AUTH_SUCCESSFUL",
    "AuthHandler",
    "AuthenticationException",
    "BadAuthenticationType",
    "BadHostKeyException",
    "BufferedFile",
    "Channel",
    "ChannelException",
    "ChannelFile",
    "ChannelStderrFile",
    "ChannelStdinFile",
    "ConfigParseError",
    "CouldNotCanonicalize",
    "ECDSAKey",
    "Ed25519Key",
    "IncompatiblePeer",
    "InteractiveQuery",
    "Message",
    "MessageOrderError",
    "OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED",
    "OPEN_FAILED_CONNECT_FAILED",
    "OPEN_FAILED_RESOURCE_SHORTAGE",
    "OPEN_FAILED_UNKNOWN_CHANNEL_TYPE",
    "OPEN_SUCCEEDED",
    "PKey",
    "PasswordRequiredException",
    "ProxyCommandFailure",
    "PublicBlob",
    "RSAKey",
    "SSHException",
    "SecurityOptions",
    "ServerInterface",
    "ServiceRequestingTransport",
    "SubsystemHandler",
    "Transport",
    "UnknownKeyType",
    "__version__",
    "__version_info__",
    "io_sleep",
    "key_classes",
]
