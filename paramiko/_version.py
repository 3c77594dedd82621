"""Single source of the distribution's version (read by setup.py and both packages)."""

__version__ = "0.1.0.dev0"
__version_info__ = (0, 1, 0, "dev0")
