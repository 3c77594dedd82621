"""Protocol constants (RFC 4250-4254 numbers), defaults and small byte helpers."""

from __future__ import annotations

import struct

# -- transport layer (RFC 4253) ------------------------------------------------------------
MSG_DISCONNECT = 1
MSG_IGNORE = 2
MSG_UNIMPLEMENTED = 3
MSG_DEBUG = 4
MSG_SERVICE_REQUEST = 5
MSG_SERVICE_ACCEPT = 6
MSG_EXT_INFO = 7
MSG_KEXINIT = 20
MSG_NEWKEYS = 21
# kex-method specific (30-49)
MSG_KEXDH_INIT = 30
MSG_KEXDH_REPLY = 31
MSG_KEX_ECDH_INIT = 30
MSG_KEX_ECDH_REPLY = 31
MSG_KEX_DH_GEX_REQUEST_OLD = 30
MSG_KEX_DH_GEX_GROUP = 31
MSG_KEX_DH_GEX_INIT = 32
MSG_KEX_DH_GEX_REPLY = 33
MSG_KEX_DH_GEX_REQUEST = 34
# -- user authentication (RFC 4252) --------------------------------------------------------
MSG_USERAUTH_REQUEST = 50
MSG_USERAUTH_FAILURE = 51
MSG_USERAUTH_SUCCESS = 52
MSG_USERAUTH_BANNER = 53
MSG_USERAUTH_PK_OK = 60
MSG_USERAUTH_INFO_REQUEST = 60
MSG_USERAUTH_INFO_RESPONSE = 61
MSG_USERAUTH_GSSAPI_RESPONSE = 60
MSG_USERAUTH_GSSAPI_TOKEN = 61
MSG_USERAUTH_GSSAPI_EXCHANGE_COMPLETE = 63
MSG_USERAUTH_GSSAPI_ERROR = 64
MSG_USERAUTH_GSSAPI_ERRTOK = 65
MSG_USERAUTH_GSSAPI_MIC = 66
HIGHEST_USERAUTH_MESSAGE_ID = 79
# -- connection protocol (RFC 4254) --------------------------------------------------------
MSG_GLOBAL_REQUEST = 80
MSG_REQUEST_SUCCESS = 81
MSG_REQUEST_FAILURE = 82
MSG_CHANNEL_OPEN = 90
MSG_CHANNEL_OPEN_SUCCESS = 91
MSG_CHANNEL_OPEN_FAILURE = 92
MSG_CHANNEL_WINDOW_ADJUST = 93
MSG_CHANNEL_DATA = 94
MSG_CHANNEL_EXTENDED_DATA = 95
MSG_CHANNEL_EOF = 96
MSG_CHANNEL_CLOSE = 97
MSG_CHANNEL_REQUEST = 98
MSG_CHANNEL_SUCCESS = 99
MSG_CHANNEL_FAILURE = 100

_ALL_MSG = {k: v for k, v in dict(globals()).items() if k.startswith("MSG_")}


def byte_chr(c: int) -> bytes:
    """One byte with value ``c``."""
    return bytes((c,))


def byte_ord(c) -> int:
    return c if isinstance(c, int) else ord(c)


def byte_mask(c: int, mask: int) -> bytes:
    return byte_chr(c & mask)


# cMSG_* are the one-byte encodings of MSG_* (upstream exposes both).
for _name, _value in _ALL_MSG.items():
    globals()["c" + _name] = byte_chr(_value)
del _name, _value

MSG_NAMES = {
    MSG_DISCONNECT: "disconnect",
    MSG_IGNORE: "ignore",
    MSG_UNIMPLEMENTED: "unimplemented",
    MSG_DEBUG: "debug",
    MSG_SERVICE_REQUEST: "service-request",
    MSG_SERVICE_ACCEPT: "service-accept",
    MSG_EXT_INFO: "ext-info",
    MSG_KEXINIT: "kexinit",
    MSG_NEWKEYS: "newkeys",
    30: "kex30",
    31: "kex31",
    32: "kex32",
    33: "kex33",
    34: "kex34",
    MSG_USERAUTH_REQUEST: "userauth-request",
    MSG_USERAUTH_FAILURE: "userauth-failure",
    MSG_USERAUTH_SUCCESS: "userauth-success",
    MSG_USERAUTH_BANNER: "userauth-banner",
    MSG_USERAUTH_PK_OK: "userauth-60",
    MSG_USERAUTH_INFO_RESPONSE: "userauth-info-response",
    MSG_GLOBAL_REQUEST: "global-request",
    MSG_REQUEST_SUCCESS: "request-success",
    MSG_REQUEST_FAILURE: "request-failure",
    MSG_CHANNEL_OPEN: "channel-open",
    MSG_CHANNEL_OPEN_SUCCESS: "channel-open-success",
    MSG_CHANNEL_OPEN_FAILURE: "channel-open-failure",
    MSG_CHANNEL_WINDOW_ADJUST: "channel-window-adjust",
    MSG_CHANNEL_DATA: "channel-data",
    MSG_CHANNEL_EXTENDED_DATA: "channel-extended-data",
    MSG_CHANNEL_EOF: "channel-eof",
    MSG_CHANNEL_CLOSE: "channel-close",
    MSG_CHANNEL_REQUEST: "channel-request",
    MSG_CHANNEL_SUCCESS: "channel-success",
    MSG_CHANNEL_FAILURE: "channel-failure",
}

# -- authentication results (ServerInterface return values) --------------------------------
AUTH_SUCCESSFUL, AUTH_PARTIALLY_SUCCESSFUL, AUTH_FAILED = range(3)

# -- channel open results / failure reason codes (RFC 4254 5.1) ----------------------------
OPEN_SUCCEEDED = 0
OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED = 1
OPEN_FAILED_CONNECT_FAILED = 2
OPEN_FAILED_UNKNOWN_CHANNEL_TYPE = 3
OPEN_FAILED_RESOURCE_SHORTAGE = 4

CONNECTION_FAILED_CODE = {
    1: "Administratively prohibited",
    2: "Connect failed",
    3: "Unknown channel type",
    4: "Resource shortage",
}

# -- disconnect reason codes (RFC 4253 11.1) -----------------------------------------------
DISCONNECT_HOST_NOT_ALLOWED_TO_CONNECT = 1
DISCONNECT_PROTOCOL_ERROR = 2
DISCONNECT_KEY_EXCHANGE_FAILED = 3
DISCONNECT_RESERVED = 4
DISCONNECT_MAC_ERROR = 5
DISCONNECT_COMPRESSION_ERROR = 6
DISCONNECT_SERVICE_NOT_AVAILABLE = 7
DISCONNECT_PROTOCOL_VERSION_NOT_SUPPORTED = 8
DISCONNECT_HOST_KEY_NOT_VERIFIABLE = 9
DISCONNECT_CONNECTION_LOST = 10
DISCONNECT_BY_APPLICATION = 11
DISCONNECT_TOO_MANY_CONNECTIONS = 12
DISCONNECT_AUTH_CANCELLED_BY_USER = 13
DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE = 14
DISCONNECT_ILLEGAL_USER_NAME = 15
DISCONNECT_SERVICE_NOT_AVAILABLE = 7

# -- defaults ------------------------------------------------------------------------------
DEFAULT_WINDOW_SIZE = 64 * 2**15  # 2 MiB
DEFAULT_MAX_PACKET_SIZE = 2**15  # 32 KiB
MIN_WINDOW_SIZE = 2**15
MIN_PACKET_SIZE = 2**12
MAX_WINDOW_SIZE = 2**32 - 1

# Seconds between wake-ups of a blocked read in the legacy helpers.
io_sleep = 0.01

# -- byte helpers --------------------------------------------------------------------------
zero_byte = b"\x00"
one_byte = b"\x01"
four_byte = b"\x04"
max_byte = b"\xff"
cr_byte = b"\r"
linefeed_byte = b"\n"
crlf = b"\r\n"
cr_byte_value = 13
linefeed_byte_value = 10

xffffffff = 0xFFFFFFFF
x80000000 = 0x80000000
o666 = 0o666
o660 = 0o660
o644 = 0o644
o600 = 0o600
o777 = 0o777
o700 = 0o700
o70 = 0o70

PY2 = False
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50

_U32 = struct.Struct(">I")


def asbytes(s) -> bytes:
    """Bytes of ``s``: bytes pass through, str is UTF-8 encoded, objects with asbytes() too."""
    if isinstance(s, (bytes, bytearray, memoryview)):
        return bytes(s)
    if isinstance(s, str):
        return s.encode("utf-8")
    if hasattr(s, "asbytes"):
        return s.asbytes()
    raise TypeError(f"expected bytes, str or an object with asbytes(), got {type(s).__name__}")
