"""Questions asked on the console from inside a task."""

from __future__ import annotations

from fabric.utils import output_lock

__all__ = ["confirm"]

_YES = ("y", "yes")
_NO = ("n", "no")
_NOT_UNDERSTOOD = "I didn't understand you. Please specify '(y)es' or '(n)o'."


def confirm(question: str, default: bool = True) -> bool:
    """Ask a yes/no ``question`` and return the answer as a bool.

    The prompt is ``question [Y/n] `` (``[y/N] `` when ``default`` is False); ``y``/``yes``
    and ``n``/``no`` are accepted in any case, an empty answer means ``default``, and
    anything else is asked again. The question goes through
    :func:`fabric.operations.prompt`, so it names the current host, and aborts when
    ``env.abort_on_prompts`` is set, instead of waiting for an answer nobody will give.
    """
    from fabric.operations import prompt

    choices = "Y/n" if default else "y/N"
    text = f"{question} [{choices}] "
    # Held for the whole exchange (RLock, so prompt() may take it too): in parallel mode
    # another host's output or question cannot land between a re-ask and its answer.
    with output_lock:
        while True:
            answer = prompt(text).strip().lower()
            if not answer:
                return bool(default)
            if answer in _YES:
                return True
            if answer in _NO:
                return False
            print(_NOT_UNDERSTOOD, flush=True)
