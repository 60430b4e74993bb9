"""Provisioning a started machine, in order: the agent's account (``node`` given the
workspace owner's uid:gid), ``/home/node`` handed to node, the prompt file (always; 0600,
owner node), the seeded ``~/.claude.json`` (merged; 0600, owner node), the skills
(``~/.claude/skills/<name>/``, owner node). Paths, modes and owners are those of the
docker backend."""

from __future__ import annotations

import tempfile
from pathlib import Path

from backends import paths
from backends.base import (
    GUEST_CLAUDE_JSON,
    GUEST_HOME,
    GUEST_USER,
    BottlePlan,
    ProgressFn,
    ProvisionError,
)
from backends.claude import API_KEY_ENV, merge_claude_json
from backends.owner import guest_group, guest_passwd
from backends.smolmachines.bottle import SmolBottle


def _root(bottle: SmolBottle, script: str, what: str) -> str:
    done = bottle.exec(script, user="root")
    if not done.ok:
        raise ProvisionError(f"{what} failed: {done.stderr.strip()}", agent=bottle.agent)
    return done.stdout


def align_account(bottle: SmolBottle, uid: int, gid: int) -> bool:
    """Give the guest's ``node`` the ids ``uid:gid`` (its ``/etc/passwd`` and ``/etc/group``
    rewritten as root in the VM, its home re-owned); False when it had them already."""
    ids = _root(bottle, f"id -u {GUEST_USER}; id -g {GUEST_USER}", "reading the agent's ids")
    if ids.split() == [str(uid), str(gid)]:
        return False
    passwd = guest_passwd(_root(bottle, "cat /etc/passwd", "reading /etc/passwd"), uid, gid)
    group = guest_group(_root(bottle, "cat /etc/group", "reading /etc/group"), gid)
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in (("passwd", passwd), ("group", group)):
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            bottle.cp_in(path, f"/etc/{name}", mode=0o644, user="root")
    _root(bottle, f"chown -R {uid}:{gid} {GUEST_HOME}", "chown of /home/node")
    return True


def provision(bottle: SmolBottle, plan: BottlePlan, progress: ProgressFn) -> None:
    """Provision ``bottle`` as ``plan`` says; ``ProvisionError`` names what failed."""
    progress(f"provisioning: the agent's account ({plan.uid}:{plan.gid})")
    align_account(bottle, plan.uid, plan.gid)
    progress("provisioning: /home/node ownership")
    # The image's /home/node may belong to root (or to another uid); claude writes there.
    _root(bottle, f"chown -R {plan.uid}:{plan.gid} {GUEST_HOME}", "chown of /home/node")
    progress("provisioning: prompt")
    # Always copied (an empty prompt too), so a stale one never lingers in the home.
    bottle.cp_in(Path(plan.prompt_host), plan.prompt_guest, mode=0o600, user=GUEST_USER)
    progress("provisioning: ~/.claude.json")
    current = bottle.exec(f"cat -- {GUEST_CLAUDE_JSON} 2>/dev/null", user=GUEST_USER)
    data = merge_claude_json(
        current.stdout if current.ok else None, api_key=plan.env.get(API_KEY_ENV)
    )
    seed = paths.agent_state_dir(plan.agent) / "claude.json"
    paths.write_private(seed, data)
    bottle.cp_in(seed, GUEST_CLAUDE_JSON, mode=0o600, user=GUEST_USER)
    for src, dest in plan.skills:
        progress(f"provisioning: skill {Path(src).name}")
        if not Path(src).is_dir():
            raise ProvisionError(f"skill {Path(src).name!r} not found at {src}", agent=plan.agent)
        bottle.cp_in(Path(src), dest, user=GUEST_USER)
