"""Provisioning a started machine, in order: ``/home/node`` handed to node, the prompt
file (always; 0600, owner node), the skills (``~/.claude/skills/<name>/``, owner node).
Paths, modes and owners are those of the docker backend."""

from __future__ import annotations

from pathlib import Path

from backends.base import GUEST_USER, BottlePlan, ProgressFn, ProvisionError
from backends.smolmachines.bottle import SmolBottle


def provision(bottle: SmolBottle, plan: BottlePlan, progress: ProgressFn) -> None:
    """Provision ``bottle`` as ``plan`` says; ``ProvisionError`` names what failed."""
    progress("provisioning: /home/node ownership")
    # The image's /home/node may belong to root (or to another uid); claude writes there.
    done = bottle.exec("chown -R node:node /home/node", user="root")
    if not done.ok:
        raise ProvisionError(f"chown of /home/node failed: {done.stderr.strip()}", agent=plan.agent)
    progress("provisioning: prompt")
    # Always copied (an empty prompt too), so a stale one never lingers in the home.
    bottle.cp_in(Path(plan.prompt_host), plan.prompt_guest, mode=0o600, user=GUEST_USER)
    for src, dest in plan.skills:
        progress(f"provisioning: skill {Path(src).name}")
        if not Path(src).is_dir():
            raise ProvisionError(f"skill {Path(src).name!r} not found at {src}", agent=plan.agent)
        bottle.cp_in(Path(src), dest, user=GUEST_USER)
