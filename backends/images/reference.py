"""What an agent's ``image`` may be: an image reference (both backends) or, for the
smolmachines backend, a local path (pure checks; nothing is looked up)."""

from __future__ import annotations

import re

# The distribution reference grammar (github.com/distribution/reference): an optional
# registry host[:port], path components of lowercase alphanumerics joined by separators,
# an optional tag, an optional digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = (
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
)
_HOST += r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,})?$"
)
_NAME_MAX = 255

#: Local sources smolvm reads itself (a ``docker save`` archive, a rootfs, a pack).
LOCAL_PREFIXES = ("/", "./", "../", "~")
LOCAL_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".smolmachine")


def is_reference(image: str) -> bool:
    """A well-formed image reference such as ``bottle-dash-agent:latest``,
    ``registry.example:5000/team/agent:1.2`` or ``name@sha256:<hex>``."""
    name = image.split("@", 1)[0].rsplit(":", 1)[0] if image else ""
    return bool(_REFERENCE.match(image)) and len(name) <= _NAME_MAX


def is_local_path(image: str) -> bool:
    """A file or directory (smolmachines reads these), by smolvm's own rule."""
    return image.startswith(LOCAL_PREFIXES) or image.endswith(LOCAL_SUFFIXES)


def image_problem(image: str, backend: str) -> str | None:
    """Why ``image`` cannot be an image of ``backend`` (None when it can)."""
    if backend == "smolmachines" and is_local_path(image):
        if any(ch in image for ch in "\n\r\t"):
            return f"image path {image!r} contains a control character"
        return None
    if is_reference(image):
        return None
    if any(ch.isspace() for ch in image):
        return f"image {image!r} contains whitespace; an image reference has none"
    return (
        f"image {image!r} is not an image reference (name[:tag] or name@digest, "
        "lowercase name components)"
    )
