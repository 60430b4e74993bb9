"""The egress sidecar image: Debian's python3 and mitmproxy from PyPI.

Built like the agent image, with the shared offline builder (``backends.images.rootfs``:
debootstrap of Debian bookworm, pip in the rootfs, ``docker import``), so no image
registry is needed; the tag carries a digest of the inputs and the image is built once
per machine. The broker addon is not in the image: the sidecar mounts this package's
folder read-only at ``ADDON_DIR``, so a new bottle-dash runs its own addon without a
rebuild.
"""

from __future__ import annotations

from pathlib import Path

from backends.base import ProgressFn, no_progress
from backends.images import rootfs

HERE = Path(__file__).resolve().parent
REPO = "bottle-dash-egress"
MITMPROXY = "mitmproxy==11.0.2"
#: Where the sidecar mounts this folder (read-only) and finds the addon.
ADDON_HOST_DIR = HERE
ADDON_DIR = "/opt/bottle-egress"
ADDON = f"{ADDON_DIR}/addon.py"
LABEL = "bottle-dash.egress-image"

SPEC = rootfs.ImageSpec(
    repository=REPO,
    packages=("python3", "ca-certificates"),
    pip=(MITMPROXY,),
    env={
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/tmp",
    },
    labels={LABEL: "1"},
    cmd=("python3",),
)


def sidecar_tag() -> str:
    """The image tag for the current inputs (pure: builds nothing)."""
    return rootfs.image_tag(SPEC)


def ensure_sidecar_image(progress: ProgressFn = no_progress) -> str:
    """The sidecar image's tag, building it when the engine does not have it."""
    return rootfs.ensure_image(SPEC, progress)
