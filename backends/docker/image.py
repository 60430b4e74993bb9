"""Building the agent image (``bottle-dash image build``) with the build's output streamed
as progress lines.

The Dockerfile ships inside the package (``backends/docker/agent-image/``), so an
installed wheel can build it without the source tree. ``build_or_assemble`` uses it when
its base image is there or can be pulled, and otherwise (or when asked) assembles the same
image offline (``backends.images.agent``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from backends.base import BackendError, ProgressFn, no_progress
from backends.docker.engine import Engine, api_message, errors
from backends.images import agent, rootfs

AGENT_IMAGE_DIR = Path(__file__).resolve().parent / "agent-image"
DEFAULT_TAG = agent.DEFAULT_TAG


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
    progress: ProgressFn = no_progress,
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


def base_image(context: Path) -> str | None:
    """The first ``FROM`` of the Dockerfile in ``context`` (None when there is none)."""
    for line in (context / "Dockerfile").read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "FROM":
            return words[1]
    return None


def base_available(context: Path, progress: ProgressFn, engine: Engine) -> bool:
    """Whether the Dockerfile's base image is in the engine or can be pulled now (pull
    progress goes to ``progress``). False, with the reason as a progress line, when no
    registry answers; an engine that does not answer raises ``BackendUnavailable``."""
    base = base_image(context)
    if base is None:
        return False
    with engine.translating() as api:
        try:
            api.inspect_image(base)
            return True
        except errors.NotFound:
            pass
        progress(f"pulling {base}")
        repo, _, tag = base.rpartition(":") if ":" in base.split("/")[-1] else (base, "", "")
        try:
            follow_build(
                api.pull(repo, tag=tag or "latest", stream=True, decode=True), progress, tag=base
            )
            return True
        except (errors.APIError, BackendError) as exc:
            reason = exc.message if isinstance(exc, BackendError) else api_message(exc)
            progress(f"cannot pull {base}: {reason.splitlines()[0] if reason else 'failed'}")
            return False


def build_or_assemble(
    tag: str = DEFAULT_TAG,
    progress: ProgressFn = no_progress,
    *,
    offline: bool | None = None,
    rebuild: bool = False,
    engine: Engine | None = None,
) -> str:
    """Build the agent image as ``tag``: from the shipped Dockerfile when its base image
    is there or can be pulled (``offline=None``, the default, or ``offline=False``, which
    fails when it cannot), else by assembling it offline (``offline=True`` goes straight
    there); both install Claude Code ``agent.CLAUDE_CODE_VERSION``. Returns ``tag``."""
    engine = engine or Engine()
    if offline is not True:
        if offline is False or base_available(AGENT_IMAGE_DIR, progress, engine):
            build_agent_image(
                tag,
                progress,
                build_args={"CLAUDE_CODE_VERSION": agent.CLAUDE_CODE_VERSION},
                engine=engine,
            )
            return tag
        progress("no registry answers: assembling the image offline from Debian and npm")
    # A custom tag's rebuild leaves the shared cached image (and so the default) alone.
    shared = tag == DEFAULT_TAG
    rootfs.ensure_image(agent.AGENT_SPEC, progress, tags=[tag], rebuild=rebuild, shared=shared)
    return tag
