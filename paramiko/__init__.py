"""SSH-2 library with Paramiko's public API (part of the ``fabric-gateway`` distribution).

See README.rst for what exists today.
"""

from paramiko import route
from paramiko._version import __version__, __version_info__
from paramiko.agent import Agent, AgentKey
from paramiko.auth_handler import AuthHandler
from paramiko.auth_strategy import (
    AuthFailure,
    AuthResult,
    AuthSource,
    AuthStrategy,
    InMemoryPrivateKey,
    NoneAuth,
    OnDiskPrivateKey,
    Password,
    PrivateKey,
    SourceResult,
)
from paramiko.channel import Channel, ChannelFile, ChannelStderrFile, ChannelStdinFile
from paramiko.client import (
    AutoAddPolicy,
    MissingHostKeyPolicy,
    RejectPolicy,
    SSHClient,
    WarningPolicy,
)
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
from paramiko.config import SSHConfig, SSHConfigDict
from paramiko.ecdsakey import ECDSAKey
from paramiko.ed25519key import Ed25519Key
from paramiko.file import BufferedFile
from paramiko.hostkeys import HostKeys
from paramiko.message import Message
from paramiko.pkey import PKey, PublicBlob, UnknownKeyType
from paramiko.proxy import ProxyCommand
from paramiko.route import (
    Hop,
    Route,
    RouteAuthenticationError,
    RouteChannelError,
    RouteError,
    RouteHostKeyError,
    connect_route,
    jump_chain,
    resolve_route,
)
from paramiko.rsakey import RSAKey
from paramiko.server import InteractiveQuery, ServerInterface, SubsystemHandler
from paramiko.sftp import (
    SFTP_BAD_MESSAGE,
    SFTP_CONNECTION_LOST,
    SFTP_EOF,
    SFTP_FAILURE,
    SFTP_NO_CONNECTION,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
    BaseSFTP,
    SFTPError,
)
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_client import SFTP, SFTPClient
from paramiko.sftp_file import SFTPFile
from paramiko.sftp_handle import SFTPHandle
from paramiko.sftp_server import SFTPServer
from paramiko.sftp_si import SFTPServerInterface
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
    "Agent",
    "AgentKey",
    "AuthFailure",
    "AuthHandler",
    "AuthResult",
    "AuthSource",
    "AuthStrategy",
    "AuthenticationException",
    "AutoAddPolicy",
    "BadAuthenticationType",
    "BadHostKeyException",
    "BaseSFTP",
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
    "Hop",
    "HostKeys",
    "InMemoryPrivateKey",
    "IncompatiblePeer",
    "InteractiveQuery",
    "Message",
    "MessageOrderError",
    "MissingHostKeyPolicy",
    "NoneAuth",
    "OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED",
    "OPEN_FAILED_CONNECT_FAILED",
    "OPEN_FAILED_RESOURCE_SHORTAGE",
    "OPEN_FAILED_UNKNOWN_CHANNEL_TYPE",
    "OPEN_SUCCEEDED",
    "OnDiskPrivateKey",
    "PKey",
    "Password",
    "PasswordRequiredException",
    "PrivateKey",
    "ProxyCommand",
    "ProxyCommandFailure",
    "PublicBlob",
    "RSAKey",
    "RejectPolicy",
    "Route",
    "RouteAuthenticationError",
    "RouteChannelError",
    "RouteError",
    "RouteHostKeyError",
    "SFTP",
    "SFTPAttributes",
    "SFTPClient",
    "SFTPError",
    "SFTPFile",
    "SFTPHandle",
    "SFTPServer",
    "SFTPServerInterface",
    "SFTP_BAD_MESSAGE",
    "SFTP_CONNECTION_LOST",
    "SFTP_EOF",
    "SFTP_FAILURE",
    "SFTP_NO_CONNECTION",
    "SFTP_NO_SUCH_FILE",
    "SFTP_OK",
    "SFTP_OP_UNSUPPORTED",
    "SFTP_PERMISSION_DENIED",
    "SSHClient",
    "SSHConfig",
    "SSHConfigDict",
    "SSHException",
    "SecurityOptions",
    "ServerInterface",
    "ServiceRequestingTransport",
    "SourceResult",
    "SubsystemHandler",
    "Transport",
    "UnknownKeyType",
    "WarningPolicy",
    "__version__",
    "__version_info__",
    "connect_route",
    "io_sleep",
    "jump_chain",
    "key_classes",
    "resolve_route",
    "route",
]
