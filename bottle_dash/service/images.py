"""The agent image: which images the agents run, which one bottle-dash can build, and the
one way every caller builds it."""

from __future__ import annotations

from backends.base import DEFAULT_IMAGE, BackendUnavailable, ProgressFn, no_progress
from backends.images.reference import is_local_path
from bottle_dash.config import Config


def can_build_image(image: str) -> bool:
    """Whether ``image`` is one ``build_agent_image`` knows how to make: the agent image
    (``bottle-dash-agent`` with any tag, not a digest)."""
    return image.split(":", 1)[0] == DEFAULT_IMAGE.split(":", 1)[0] and "@" not in image


def images_needed(config: Config | None) -> list[str]:
    """Engine images the agents run (a smolmachines path or pack is not one), the default
    agent image first; the default alone when no agent is defined."""
    refs = [DEFAULT_IMAGE]
    for spec in config.agents.values() if config else ():
        if spec.image not in refs and not is_local_path(spec.image):
            refs.append(spec.image)
    return refs


def build_agent_image(
    image: str = DEFAULT_IMAGE,
    progress: ProgressFn = no_progress,
    *,
    offline: bool | None = None,
    rebuild: bool = False,
) -> str:
    """Build the agent image as ``image`` (see ``AgentService.build_image``). Returns
    ``image``; raises ``BackendUnavailable`` when the docker backend cannot be loaded."""
    try:
        from backends.docker.image import build_or_assemble
    except ImportError as exc:
        raise BackendUnavailable(
            f"the docker backend cannot be loaded: {exc}",
            fix="reinstall bottle-dash with its dependencies",
        ) from exc
    return build_or_assemble(image, progress, offline=offline, rebuild=rebuild)
