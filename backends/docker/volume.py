"""The bottle's home volume, ``bottle-<slug>-home``: made at the first launch, kept by
``rm`` without ``--volumes`` (it holds ``~/.claude``, and with it the conversations).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from backends import ownership
from backends.base import GUEST_HOME
from backends.docker.engine import errors, quietly
from backends.docker.plan import HOME_MOUNT, LABEL_HOME_MOUNT

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan


def ensure_home(api: Any, plan: BottlePlan, undo: ExitStack) -> str:
    """Create the home volume unless it exists (``undo`` removes one made here); returns
    where to mount it."""
    assert plan.home_volume
    try:
        info = api.inspect_volume(plan.home_volume)
    except errors.NotFound:
        labels = {**plan.labels, LABEL_HOME_MOUNT: HOME_MOUNT}
        api.create_volume(plan.home_volume, labels=labels)
        undo.callback(quietly, api.remove_volume, plan.home_volume, force=True)
        return HOME_MOUNT
    labels = info.get("Labels") or {}
    if not ownership.is_mine(labels):  # never mount another operator's home
        raise ownership.foreign(
            plan.agent, f"volume {plan.home_volume}", labels.get(ownership.LABEL_OWNER)
        )
    # An existing home is kept on purpose: it is what `rm` without --volumes leaves.
    # One made before homes were mounted at /home holds the home at its top.
    return str((info.get("Labels") or {}).get(LABEL_HOME_MOUNT) or GUEST_HOME)
