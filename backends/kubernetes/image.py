"""The seal image: what the pod's init container runs to write its iptables rules.

Debian's ``iptables`` and ``iproute2`` (the seal script reads the pod's gateway with
``ip route``), assembled offline like the agent and sidecar images
(``backends.images.rootfs``); the tag carries a digest of the inputs. The cluster's nodes
need it like the other images: pushed to a registry they pull from, or imported.
"""

from __future__ import annotations

from backends.base import ProgressFn, no_progress
from backends.images import rootfs

REPO = "bottle-dash-seal"
LABEL = "bottle-dash.seal-image"

SEAL_SPEC = rootfs.ImageSpec(
    repository=REPO,
    packages=("iptables", "iproute2"),
    labels={LABEL: "1"},
    cmd=("sh",),
)


def seal_tag() -> str:
    """The seal image's tag for the current inputs (pure: builds nothing)."""
    return rootfs.image_tag(SEAL_SPEC)


def ensure_seal_image(progress: ProgressFn = no_progress) -> str:
    """The seal image's tag, building it when the local engine does not have it."""
    return rootfs.ensure_image(SEAL_SPEC, progress)
