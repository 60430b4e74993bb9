"""How the service tells a failure: one line with its fix, a ``Problem`` for a component,
and "did you mean" for an unknown name."""

from __future__ import annotations

from collections.abc import Sequence

from backends.base import BackendError, Problem


def describe(exc: BaseException) -> str:
    """One line (plus the fix) for an operation's failure."""
    if isinstance(exc, BackendError):
        return str(exc).replace("\n", " ")
    return str(exc) or type(exc).__name__


def problem_of(component: str, exc: BackendError, *, fatal: bool) -> Problem:
    """``exc`` as a problem of ``component``: its message, and its fix in its own field."""
    return Problem(component, exc.message, exc.fix or "", fatal=fatal)


def nearest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to ``name`` (for "did you mean"), or None."""
    import difflib  # only for an unknown name

    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return close[0] if close else None
