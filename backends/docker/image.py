"""Building the agent image (``bottle-dash image build``) with the build's output streamed
as progress lines.

The Dockerfile ships inside the package (``backends/docker/agent-image/``), so an
installed wheel can build it without the source tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from backends.base import BackendError, ProgressFn, _no_progress
from backends.docker.engine import Engine, api_message, errors

AGENT_IMAGE_DIR = Path(__file__).resolve().parent / "agent-image"
DEFAULT_TAG = "bottle-dash-agent:latest"


def _lines(chunk: Mapping[str, Any]) -> list[str]:
    """Human lines from one decoded build-stream object (``stream``, pull ``status``)."""
    if "stream" in chunk:
        return [line.rstrip() for line in str(chunk["stream"]).splitlines() if line.strip()]
    if "status" in chunk:
        # Pull progress repeats a line per layer per tick; keep the ones that say something
        # new (no byte counter), so the operator sees layers start and finish.
        if chunk.get("progressDetail", {}).get("current"):
            return []
        ident = chunk.get("id")
        return [f"{ident}: {chunk['status']}" if ident else str(chunk["status"])]
    return []


def follow_build(
    stream: Iterable[Mapping[str, Any]], progress: ProgressFn, *, tag: str = "the image"
) -> str | None:
    """Feed a decoded build stream to ``progress``; return the image id the engine reported.

    Raises ``BackendError`` with the build's last error line when the build failed.
    """
    image_id: str | None = None
    for chunk in stream:
        if "error" in chunk:
            detail = chunk.get("errorDetail") or {}
            text = str(detail.get("message") or chunk["error"]).strip()
            last = text.splitlines()[-1] if text else "unknown error"
            progress(f"error: {last}")
            raise BackendError(
                f"image build of {tag} failed: {last}",
                fix="fix the cause above; the base image and npm must be reachable "
                "(or `docker load` a built image)",
            )
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            image_id = str(aux["ID"])
        for line in _lines(chunk):
            progress(line)
    return image_id


def build_agent_image(
    tag: str = DEFAULT_TAG,
    progress: ProgressFn = _no_progress,
    *,
    context: Path = AGENT_IMAGE_DIR,
    build_args: Mapping[str, str] | None = None,
    engine: Engine | None = None,
) -> str:
    """Build the image in ``context`` (the shipped agent Dockerfile by default) as ``tag``,
    streaming the engine's output line by line to ``progress``; returns the image id (or
    the tag when the engine did not say). ``BackendError`` carries the last error line;
    an engine that does not answer raises ``BackendUnavailable``."""
    if not (context / "Dockerfile").is_file():
        raise BackendError(f"no Dockerfile in {context}", fix="reinstall bottle-dash")
    engine = engine or Engine()
    progress(f"building {tag} from {context}")
    with engine.translating() as api:
        try:
            stream = api.build(
                path=str(context),
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                buildargs=dict(build_args or {}),
            )
            image_id = follow_build(stream, progress, tag=tag)
        except json.JSONDecodeError as exc:
            raise BackendError(f"image build of {tag}: unreadable engine output: {exc}") from exc
        except errors.DockerException as exc:
            raise BackendError(
                f"image build of {tag} failed: {api_message(exc)}",
                fix="check `docker info` and the Dockerfile",
            ) from exc
    progress(f"built {tag}")
    return image_id or tag
