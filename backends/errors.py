"""The errors every backend raises: one root, ``BackendError``, whose ``fix`` says what the
operator can do.

A module of its own (re-exported by ``backends.base``) so that the modules ``base`` builds
on, such as ``ownership``, can raise them without importing ``base``: no import circle.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class BackendError(Exception):
    """Root of every error a backend raises. ``fix`` says what the operator can do."""

    def __init__(self, message: str, *, fix: str | None = None, agent: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.agent = agent

    def __str__(self) -> str:
        text = self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class BackendUnavailable(BackendError):
    """The engine or CLI behind a backend is not there (Docker down, smolvm missing)."""


class UnknownBackend(BackendError):
    """A backend name that is not registered."""


class BottleNotFound(BackendError):
    """No bottle exists for that agent."""


class ImageNotFound(BackendError):
    """The agent's image is not available to the backend."""


class LaunchError(BackendError):
    """A launch failed; everything it had created has been removed."""


class ProvisionError(LaunchError):
    """Provisioning a started bottle failed (prompt, skills, ownership)."""


class CommandFailed(BackendError):
    """A command run through ``backends.run`` exited non-zero or timed out."""


@contextmanager
def launch_failure(agent: str, bottle: str) -> Iterator[None]:
    """Turn a ``BackendError`` raised inside (once what it made is undone: put this outside
    the undo stack) into the ``LaunchError`` of ``bottle``, its fix kept; a
    ``LaunchError`` passes as it is."""
    try:
        yield
    except LaunchError:
        raise
    except BackendError as exc:
        raise LaunchError(
            f"launching {bottle} failed (nothing was left behind): {exc.message}",
            fix=exc.fix,
            agent=agent,
        ) from exc
