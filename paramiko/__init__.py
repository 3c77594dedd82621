"""SSH-2 library with Paramiko's public API (part of the ``fabric-gateway`` distribution).

The protocol implementation is being built issue by issue; see README.rst for what
exists today.
"""

from paramiko._version import __version__, __version_info__

__all__ = ["__version__", "__version_info__"]
