"""What the Docker engine itself gives or withholds of a bottle's hardening, read from
``GET /info``: a user namespace, and a disk budget for the home volume and workspace.

Pure functions over the ``/info`` answer, so tests feed them engine answers directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backends.base import Problem

USERNS_FIX = (
    'add "userns-remap": "default" to /etc/docker/daemon.json and restart dockerd '
    "(bottles then run as an unprivileged subordinate uid of the host), or run rootless "
    "Docker (`dockerd-rootless-setuptool.sh install`)"
)
DISK_FIX = (
    "put Docker's data root on xfs mounted with `pquota` (the overlay2 and local volume "
    "drivers then enforce sizes); until then watch `docker system df -v`"
)


def userns(info: Mapping[str, Any]) -> str | None:
    """``userns-remap`` or ``rootless`` when the engine uses a user namespace, else None."""
    options = " ".join(str(o) for o in info.get("SecurityOptions") or [])
    if "name=rootless" in options:
        return "rootless"
    if "name=userns" in options:
        return "userns-remap"
    return None


def backing_filesystem(info: Mapping[str, Any]) -> str:
    """The storage driver and the filesystem under it, as ``overlay2 on extfs``."""
    status = {str(k): str(v) for k, v in (info.get("DriverStatus") or []) if k}
    backing = status.get("Backing Filesystem", "unknown filesystem")
    return f"{info.get('Driver') or 'unknown driver'} on {backing}"


def disk_budget(info: Mapping[str, Any]) -> dict[str, str]:
    """What limits each writable place of a bottle on this engine (``plan`` records it).

    The root is read-only and /tmp, /var/tmp are size-limited tmpfs (``plan.TMPFS``)
    everywhere. The home volume could only be sized by the local driver on xfs with
    project quotas, and the workspace is a host directory no engine can limit.
    """
    where = backing_filesystem(info)
    home = (
        "not enforced: bottle-dash does not size volumes yet (this engine could, on xfs)"
        if "xfs" in where
        else f"not enforced: the engine's storage ({where}) has no volume sizes"
    )
    return {
        "root": "read-only",
        "tmpfs": "size-limited (/tmp 512 MiB, /var/tmp 64 MiB; counted in the memory limit)",
        "home": home,
        "workspace": "not enforced: a host directory, limited only by the host's disk",
    }


def notes(info: Mapping[str, Any]) -> list[Problem]:
    """The non-fatal hardening notes ``doctor`` prints for this engine."""
    found: list[Problem] = []
    mode = userns(info)
    if mode is None:
        found.append(
            Problem(
                "docker",
                "the engine uses no user namespace: the bottle's uid 1000 is host uid 1000 "
                "(a host user with that uid can read the bottle's processes and files)",
                USERNS_FIX,
                fatal=False,
            )
        )
    budget = disk_budget(info)
    if budget["home"].startswith("not enforced"):
        found.append(
            Problem(
                "docker",
                f"no disk budget for the home volume or the workspace ({budget['home']}); "
                "the root is read-only and /tmp is a size-limited tmpfs",
                DISK_FIX,
                fatal=False,
            )
        )
    return found
