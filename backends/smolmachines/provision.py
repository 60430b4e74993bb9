"""Provisioning a started machine, in order: the agent's account (``node`` given the
workspace owner's uid:gid), ``/home/node`` handed to node, the prompt file (always; 0600,
owner node), the seeded ``~/.claude.json`` (merged; 0600, owner node), for an agent
that skips permissions ``skipDangerousModePermissionPrompt`` merged into
``~/.claude/settings.json`` (0600 in a 0700 ``~/.claude``), the skills
(``~/.claude/skills/<name>/``, owner node). Paths, modes and owners are those of the
docker backend."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from backends import paths
from backends.agent_files import (
    COPY,
    EGRESS_CA_CERT,
    SEED_CLAUDE_JSON,
    SEED_SETTINGS,
    AgentFile,
    target,
)
from backends.agent_user import guest_group, guest_passwd
from backends.base import (
    GUEST_HOME,
    GUEST_USER,
    ProgressFn,
    ProvisionError,
)
from backends.claude import (
    API_KEY_ENV,
    merge_claude_json,
    merge_claude_settings,
)
from backends.egress.plan import SKIP_PERMISSIONS
from backends.smolmachines.bottle import SmolBottle

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan


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


#: claude's own folder in the home (0700, as claude makes it).
GUEST_CLAUDE_DIR = f"{GUEST_HOME}/.claude"


def _merge(
    bottle: SmolBottle, plan: BottlePlan, seed: AgentFile, merge: Callable[[str | None], bytes]
) -> None:
    """Rewrite the agent's JSON file that ``seed`` is copied to as ``merge`` makes it from
    its current text (None when absent), 0600 and owned by the agent (staged as ``seed``
    in the 0600 state dir)."""
    guest = target(seed, COPY)
    current = bottle.exec(f"cat -- {guest} 2>/dev/null", user=GUEST_USER)
    staged = paths.agent_path(plan.agent, seed)
    paths.write_private(staged, merge(current.stdout if current.ok else None))
    bottle.cp_in(staged, guest, mode=0o600, user=GUEST_USER)


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
    api_key = plan.env.get(API_KEY_ENV)
    _merge(bottle, plan, SEED_CLAUDE_JSON, lambda now: merge_claude_json(now, api_key=api_key))
    if SKIP_PERMISSIONS in plan.claude_args:
        # claude's one-time "Bypass Permissions mode" confirmation, accepted for it.
        progress("provisioning: ~/.claude/settings.json")
        _root(bottle, f"mkdir -p -m 700 {GUEST_CLAUDE_DIR}", "mkdir ~/.claude")
        _root(bottle, f"chown {plan.uid}:{plan.gid} {GUEST_CLAUDE_DIR}", "chown ~/.claude")
        _merge(bottle, plan, SEED_SETTINGS, merge_claude_settings)
    for src, dest in plan.skills:
        progress(f"provisioning: skill {Path(src).name}")
        if not Path(src).is_dir():
            raise ProvisionError(f"skill {Path(src).name!r} not found at {src}", agent=plan.agent)
        bottle.cp_in(Path(src), dest, user=GUEST_USER)


def copy_ca(bottle: SmolBottle, plan: BottlePlan) -> None:
    """Copy a sealed bottle's egress CA certificate (never its key) into the machine."""
    cert = Path(plan.extra["egress"]["dir"]) / EGRESS_CA_CERT.name
    bottle.cp_in(cert, target(EGRESS_CA_CERT, COPY), mode=0o644)
