"""``python -m fabric`` is ``fab``."""

from fabric.main import run

run()
