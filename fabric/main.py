"""Entry point of the ``fab`` command.

Only ``--version`` and ``--help`` exist so far; the task runner arrives with the Fabric core
issue. Anything else is refused with a clear message and exit code 2 rather than pretending.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from fabric.version import version_report

_USAGE = "Usage: fab [options] <command>[:arg1,arg2=val2,host=foo,hosts='h1;h2',...] ..."


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``fab`` with ``argv`` (defaults to ``sys.argv[1:]``) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-V", "--version"):
        print(version_report())
        return 0
    if args and args[0] in ("-h", "--help"):
        print(_USAGE)
        print()
        print("Options:")
        print("  -h, --help     show this help message and exit")
        print("  -V, --version  show program's version number and exit")
        return 0
    print(
        "fab: the task runner is not implemented yet in this version of fabric-gateway; "
        "only --version and --help work (see README.rst).",
        file=sys.stderr,
    )
    return 2


def run() -> None:
    """Console-script wrapper around :func:`main`."""
    sys.exit(main())


if __name__ == "__main__":
    run()
