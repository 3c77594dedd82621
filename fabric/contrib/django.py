"""Point Django at a settings module from a fabfile, so the fabfile can import and use a
Django project's models and settings.

Both helpers only set the ``DJANGO_SETTINGS_MODULE`` environment variable of this (local)
process; import Django itself afterwards, once the variable is in place::

    from fabric.contrib import django
    django.project('myproject')
    from myproject.myapp.models import Thing
"""

from __future__ import annotations

import os

__all__ = ["project", "settings_module"]

_VARIABLE = "DJANGO_SETTINGS_MODULE"


def settings_module(module: str) -> None:
    """Use the dotted module path ``module`` (e.g. ``'myproject.settings.production'``) as
    Django's settings module."""
    if not isinstance(module, str) or not module.strip():
        raise ValueError(f"settings_module() needs a dotted module path, got {module!r}")
    # Process-wide on purpose: Django reads it from os.environ, once, when first configured.
    os.environ[_VARIABLE] = module


def project(name: str) -> None:
    """Use ``<name>.settings``, the layout ``django-admin startproject`` creates."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"project() needs a project package name, got {name!r}")
    settings_module(f"{name}.settings")
