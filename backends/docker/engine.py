"""The connection to the Docker engine, and the translation of "the engine is not there"
into ``BackendUnavailable`` with the exact fix.

Two paths: read-only calls (list, inspect, version) go straight over the engine's unix
socket with the stdlib, and everything else through a lazily created docker SDK client.
The SDK (with requests and urllib3) costs about 100 ms to import, which every
``bottle-dash ls`` would otherwise pay; it is imported only when something is written,
or when the engine is reached over TCP/TLS/SSH. A missing SDK is a preflight problem
with its ``pip install`` fix, never an ImportError in the middle of the dashboard.
"""

from __future__ import annotations

import _socket
import json
import os
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from backends.base import BackendError, BackendUnavailable
from backends.digest import sha256_hex


class _StandIns:
    """Exception classes for when the SDK cannot be imported: ``except errors.NotFound``
    clauses stay valid, and nothing ever raises these."""

    class DockerException(Exception):
        """Stand-in for docker.errors.DockerException."""

    class APIError(DockerException):
        """Stand-in for docker.errors.APIError."""

    class NotFound(APIError):
        """Stand-in for docker.errors.NotFound."""

    class ConnectionError(Exception):
        """Stand-in for requests.exceptions.ConnectionError."""

    class Timeout(Exception):
        """Stand-in for requests.exceptions.Timeout."""


class _Errors:
    """The SDK's exception classes, imported on first use.

    Importing the SDK (requests, urllib3) costs about 100 ms, which ``bottle-dash ls``
    would pay on every call; read-only calls go over the socket with the stdlib instead
    (``Engine.get``), so the SDK is imported only when something is written or when an
    ``except errors.X`` clause is reached with an exception in flight.
    """

    DockerException: type[Exception]
    APIError: type[Exception]
    NotFound: type[Exception]
    ConnectionError: type[Exception]
    Timeout: type[Exception]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            from docker import errors as sdk
            from requests import exceptions as http

            found = {
                "DockerException": sdk.DockerException,
                "APIError": sdk.APIError,
                "NotFound": sdk.NotFound,
                "ConnectionError": http.ConnectionError,
                "Timeout": http.Timeout,
            }
        except ImportError:
            found = {
                k: getattr(_StandIns, k)
                for k in ("DockerException", "APIError", "NotFound", "ConnectionError", "Timeout")
            }
        if name not in found:
            raise AttributeError(name)
        for key, value in found.items():
            setattr(self, key, value)
        return found[name]


#: ``except errors.NotFound:`` and friends; see ``_Errors``.
errors = _Errors()


def sdk_import_error() -> str | None:
    """Why the SDK cannot be imported, or None (found without importing it)."""
    import importlib.util  # here: only preflight asks, never listing

    for module in ("docker", "requests"):
        try:
            if importlib.util.find_spec(module) is None:
                return f"no module named {module!r}"
        except (ImportError, ValueError) as exc:
            return str(exc)
    return None


def quietly(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Undo one step of a failed launch (``fn(*args, **kwargs)``, an engine call); an undo
    that fails must not hide the reason the launch failed (and the sweep by label catches
    what is left)."""
    with suppress(Exception):
        fn(*args, **kwargs)


class EngineNotFound(Exception):
    """A read-only call asked for something the engine does not have (HTTP 404)."""


__all__ = [
    "Engine",
    "EngineNotFound",
    "api_message",
    "docker_host",
    "errors",
    "quietly",
    "sdk_import_error",
    "unavailable",
]

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
#: Seconds one API call may wait for the engine before the engine counts as not answering.
API_TIMEOUT = 60
#: Reads (list, inspect) answer in milliseconds; one that hangs this long means a hung
#: engine, and the dashboard should say so instead of freezing its poll for a minute.
READ_TIMEOUT = 15
START_FIX = (
    "start the engine: `sudo systemctl start docker` or `sudo dockerd &`; "
    "or point DOCKER_HOST at a running engine"
)
PERMISSION_FIX = (
    "let this user reach the socket: `sudo usermod -aG docker $USER` and log in again "
    "(or run as root); or point DOCKER_HOST at an engine you may use"
)
SDK_FIX = "install the Docker SDK for Python: `pip install 'docker>=7.1,<8'`"


def docker_context() -> tuple[str, str] | None:
    """``(name, host)`` of the docker CLI context in use, when it is not ``default``:
    ``$DOCKER_CONTEXT``, else ``currentContext`` in ``$DOCKER_CONFIG/config.json``
    (``~/.docker``). Rootless Docker and Docker Desktop select their socket this way; the
    CLI that attaches panes follows it, so the SDK must too."""
    config_dir = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    name = os.environ.get("DOCKER_CONTEXT")
    if not name:
        try:
            name = json.loads((config_dir / "config.json").read_text()).get("currentContext")
        except (OSError, ValueError, AttributeError):
            return None
    if not name or name == "default":
        return None
    digest = sha256_hex(name)
    try:
        meta = json.loads((config_dir / "contexts" / "meta" / digest / "meta.json").read_text())
        host = meta["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (name, str(host)) if host else None


def docker_host() -> str:
    """Where the engine is expected: ``$DOCKER_HOST``, else the host of the docker
    context in use, else the default socket."""
    env = os.environ.get("DOCKER_HOST")
    if env:
        return env
    context = docker_context()
    return context[1] if context else DEFAULT_SOCKET


def _where() -> str:
    host = docker_host()
    if os.environ.get("DOCKER_HOST"):
        return f"DOCKER_HOST={host}"
    context = docker_context()
    if context:
        return f"{host} (docker context {context[0]!r}; DOCKER_HOST is unset)"
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
    denied = any(isinstance(e, PermissionError) for e in _chain(exc)) or "ermission denied" in str(
        exc
    )
    reason = _reason(exc)
    message = f"Docker engine not answering at {_where()}"
    if reason:
        message += f": {reason}"
    return BackendUnavailable(message, fix=PERMISSION_FIX if denied else START_FIX)


def _body_message(body: bytes) -> str:
    """The ``message`` of an engine error body (JSON), else its first line."""
    try:
        data = json.loads(body)
    except ValueError:
        lines = body.decode(errors="replace").strip().splitlines()
        return lines[0] if lines else ""
    return str(data.get("message", "")) if isinstance(data, dict) else ""


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


def unix_socket() -> str | None:
    """The socket path when the engine is reached over a unix socket, else None (tcp,
    ssh and TLS hosts go through the SDK)."""
    host = docker_host()
    if host.startswith("unix://"):
        return host[len("unix://") :] or None
    return None


def unix_get(path: str, target: str, *, timeout: float | None = None) -> tuple[int, bytes]:
    """``GET target`` over the unix socket ``path`` with HTTP/1.0 (the engine answers
    without chunking and closes); returns ``(status, body)``. Raises ``OSError``."""
    # _socket is the socket module's C core: socket.py wraps it with enums and helpers
    # this GET does not use, whose import costs `ls` (run often) ~3 % of its instructions.
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.settimeout(timeout or READ_TIMEOUT)
        conn.connect(path)
        request = f"GET {target} HTTP/1.0\r\nHost: docker\r\nUser-Agent: bottle-dash\r\n\r\n"
        conn.sendall(request.encode())
        chunks: list[bytes] = []
        while chunk := conn.recv(1 << 16):
            chunks.append(chunk)
    finally:
        conn.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP answer from {path}: {head[:80]!r}")
    return int(parts[1]), body


class Engine:
    """The connection to one engine, shared by a backend and its bottle handles.

    Read-only calls (``get``) go straight over a unix socket with the stdlib; everything
    else uses a lazily created low-level SDK client (``api()``), whose creation asks the
    engine for its API version. Nothing talks to Docker until the first real call.
    """

    def __init__(self) -> None:
        self._api: Any = None
        self._lock = threading.Lock()

    def api(self) -> Any:
        """The SDK client; ``BackendUnavailable`` when the SDK or the engine is missing."""
        with self._lock:
            if self._api is None:
                try:
                    import docker
                except ImportError as exc:
                    raise BackendUnavailable(
                        f"the Docker SDK for Python is not importable: {exc}", fix=SDK_FIX
                    ) from exc
                try:
                    if os.environ.get("DOCKER_HOST") or docker_context() is None:
                        client = docker.from_env(timeout=API_TIMEOUT)
                    else:  # from_env knows no contexts: give it the context's host
                        client = docker.DockerClient(base_url=docker_host(), timeout=API_TIMEOUT)
                    self._api = client.api
                except (errors.DockerException, errors.ConnectionError, errors.Timeout) as exc:
                    raise unavailable(exc) from exc
            return self._api

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The decoded JSON of the read-only endpoint ``path`` (e.g. ``/containers/json``).

        ``EngineNotFound`` on 404, ``BackendError`` on another failure status,
        ``BackendUnavailable`` when the engine does not answer. Over a unix socket this
        needs neither the SDK nor an API-version round trip: an unversioned path gets the
        engine's own current API.
        """
        target = path + ("?" + urllib.parse.urlencode(params) if params else "")
        sock = unix_socket()
        if sock is None:
            with self.translating() as api:
                res = api._get(api._url(path), params=dict(params or {}))
                status, body = res.status_code, res.content
        else:
            try:
                status, body = unix_get(sock, target)
            except OSError as exc:
                raise unavailable(exc) from exc
        if status == 404:
            raise EngineNotFound(_body_message(body) or path)
        if status >= 400:
            raise BackendError(f"Docker engine: GET {path}: {_body_message(body) or status}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise BackendError(f"Docker engine: GET {path}: unreadable answer: {exc}") from exc

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
        except (errors.ConnectionError, errors.Timeout) as exc:
            self.forget()
            raise unavailable(exc) from exc
