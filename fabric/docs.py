"""Sphinx helper: make a fabfile's tasks look like plain functions to autodoc."""

from __future__ import annotations

from types import ModuleType

from fabric.tasks import WrappedCallableTask

__all__ = ["unwrap_tasks"]


def unwrap_tasks(module: ModuleType, hide_nontasks: bool = False) -> None:
    """Replace each task object in ``module`` by the function it wraps, bound to the task's
    name (so ``@task(name='deploy') def _deploy`` is documented as ``deploy``).

    With ``hide_nontasks``, other public objects that have a docstring are renamed with a
    leading underscore, so autodoc's default (public members only) shows just the tasks.
    Call it from Sphinx's ``conf.py`` after importing the fabfile.
    """
    task_names = set()
    for obj in list(vars(module).values()):
        if isinstance(obj, WrappedCallableTask):
            function = obj.wrapped
            try:
                function.__name__ = obj.name
            except (AttributeError, TypeError):
                pass  # e.g. a functools.partial: keeps its own name
            setattr(module, obj.name, function)
            task_names.add(obj.name)
    if not hide_nontasks:
        return
    for attr, obj in list(vars(module).items()):
        if attr in task_names or attr.startswith("_"):
            continue
        if getattr(obj, "__doc__", None):
            setattr(module, "_" + attr, obj)
            delattr(module, attr)
