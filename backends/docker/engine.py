"""The connection to the Docker engine: one lazily created SDK client, and the translation
of "the engine is not there" into ``BackendUnavailable`` with the exact fix.

The SDK is imported here and nowhere else at module level, behind a guard: the registry
imports backends lazily so that a missing or broken SDK becomes a preflight problem (with
``pip install``) instead of an ImportError in the middle of the dashboard.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from backends.base import BackendUnavailable

try:
    import docker
    from docker.errors import APIError, DockerException, NotFound
    from requests.exceptions import ConnectionError as EngineConnectionError
    from requests.exceptions import Timeout as EngineTimeout

    SDK_IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # pragma: no cover - docker is a declared dependency
    docker = None
    SDK_IMPORT_ERROR = exc

    # Stand-ins so that ``except NotFound:`` clauses stay valid without the SDK; they are
    # never raised, because every call first asks ``Engine.api()``, which raises instead.
    class DockerException(Exception):  # type: ignore[no-redef]
        """Stand-in for docker.errors.DockerException."""

    class APIError(DockerException):  # type: ignore[no-redef]
        """Stand-in for docker.errors.APIError."""

    class NotFound(APIError):  # type: ignore[no-redef]
        """Stand-in for docker.errors.NotFound."""

    class EngineConnectionError(Exception):  # type: ignore[no-redef]
        """Stand-in for requests.exceptions.ConnectionError."""

    class EngineTimeout(Exception):  # type: ignore[no-redef]
        """Stand-in for requests.exceptions.Timeout."""


__all__ = [
    "APIError",
    "DockerException",
    "Engine",
    "EngineConnectionError",
    "EngineTimeout",
    "NotFound",
    "api_message",
    "docker_host",
    "unavailable",
]

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
#: Seconds one API call may wait for the engine before the engine counts as not answering.
API_TIMEOUT = 60
START_FIX = (
    "start the engine: `sudo systemctl start docker` or `sudo dockerd &`; "
    "or point DOCKER_HOST at a running engine"
)
PERMISSION_FIX = (
    "let this user reach the socket: `sudo usermod -aG docker $USER` and log in again "
    "(or run as root); or point DOCKER_HOST at an engine you may use"
)
SDK_FIX = "install the Docker SDK for Python: `pip install 'docker>=7.1,<8'`"


def docker_host() -> str:
    """Where the engine is expected: ``$DOCKER_HOST``, else the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def _where() -> str:
    host = docker_host()
    if os.environ.get("DOCKER_HOST"):
        return f"DOCKER_HOST={host}"
    return f"the default socket {host} (DOCKER_HOST is unset)"


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and every exception it carries (requests nests the socket error in args)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc] if exc is not None else []
    while todo:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        todo += [a for a in cur.args if isinstance(a, BaseException)]
        todo += [e for e in (cur.__cause__, cur.__context__) if e is not None]


def _reason(exc: BaseException | None) -> str:
    """The innermost useful words of a connection error (the socket's own complaint)."""
    for cur in _chain(exc):
        if isinstance(cur, OSError) and cur.strerror:
            return cur.strerror
    text = str(exc or "").strip().splitlines()
    return text[0][:200] if text else ""


def unavailable(exc: BaseException | None = None) -> BackendUnavailable:
    """The ``BackendUnavailable`` for an engine that does not answer, naming where it was
    looked for and how to fix it."""
    if docker is None:
        return BackendUnavailable(
            f"the Docker SDK for Python is not importable: {SDK_IMPORT_ERROR}", fix=SDK_FIX
        )
    denied = any(isinstance(e, PermissionError) for e in _chain(exc)) or "ermission denied" in str(
        exc
    )
    reason = _reason(exc)
    message = f"Docker engine not answering at {_where()}"
    if reason:
        message += f": {reason}"
    return BackendUnavailable(message, fix=PERMISSION_FIX if denied else START_FIX)


def api_message(exc: BaseException) -> str:
    """One line from an engine error: the daemon's explanation, without the HTTP framing."""
    explanation = getattr(exc, "explanation", None)
    if explanation:
        text = (
            explanation.decode(errors="replace")
            if isinstance(explanation, bytes)
            else str(explanation)
        )
    else:
        text = str(exc)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class Engine:
    """A lazily created low-level client (``docker.APIClient``) shared by a backend and its
    bottle handles. Creating it asks the engine for its API version, so nothing talks to
    Docker until the first real call."""

    def __init__(self) -> None:
        self._api: Any = None
        self._lock = threading.Lock()

    def api(self) -> Any:
        """The client; ``BackendUnavailable`` when the SDK or the engine is missing."""
        with self._lock:
            if self._api is None:
                if docker is None:
                    raise unavailable()
                try:
                    self._api = docker.from_env(timeout=API_TIMEOUT).api
                except (DockerException, EngineConnectionError, EngineTimeout) as exc:
                    raise unavailable(exc) from exc
            return self._api

    def forget(self) -> None:
        """Drop the client so the next call reconnects (the engine went away, or moved)."""
        with self._lock:
            api, self._api = self._api, None
        if api is not None:
            # Closing a connection to a dead engine may fail in any way; it is gone anyway.
            with suppress(Exception):
                api.close()

    @contextmanager
    def translating(self) -> Iterator[Any]:
        """Run engine calls; a connection that fails becomes ``BackendUnavailable``.

        Yields the client. Other engine errors (``APIError``) pass through for the caller,
        which knows what step it was doing.
        """
        api = self.api()
        try:
            yield api
        except (EngineConnectionError, EngineTimeout) as exc:
            self.forget()
            raise unavailable(exc) from exc
