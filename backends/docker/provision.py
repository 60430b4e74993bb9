"""Provisioning a started docker bottle: ``/home/node`` owned by the agent's uid:gid, then
the prompt file (always), the seeded ``~/.claude.json`` and the skills, owned by it too,
and a sealed bottle's egress CA certificate, written through ``put_archive`` because root
in the bottle holds no capabilities (it could not chown them)."""

from __future__ import annotations

import posixpath
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from backends.agent_files import COPY, EGRESS_CA_CERT, target
from backends.base import (
    GUEST_CLAUDE_JSON,
    GUEST_HOME,
    GUEST_SKILLS,
    BackendError,
    ProgressFn,
    ProvisionError,
)
from backends.claude import (
    API_KEY_ENV,
    CLAUDE_JSON,
    CLAUDE_SETTINGS,
    merge_claude_json,
    merge_claude_settings,
)
from backends.docker.accounts import own_home
from backends.docker.archive import file_tar, paths_tar
from backends.docker.bottle import put_archive, sdk_exec
from backends.docker.engine import api_message, errors
from backends.egress.plan import SKIP_PERMISSIONS

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan


def provision(api: Any, plan: BottlePlan, progress: ProgressFn) -> None:
    """The home's owner, the prompt file (always) then skills, owned by the agent's
    uid:gid (``plan.uid``/``plan.gid``), through archives."""
    progress("checking the home's owner")
    if own_home(api, plan):
        progress(f"gave /home/node to uid {plan.uid}:{plan.gid}")
    progress("copying the prompt")
    try:
        prompt = Path(plan.prompt_host).read_bytes()
    except OSError as exc:
        raise ProvisionError(
            f"prompt file {plan.prompt_host} of agent {plan.agent} cannot be read: {exc}",
            fix=f"run `bottle-dash plan {plan.agent}` to write it again",
            agent=plan.agent,
        ) from exc
    rel = PurePosixPath(plan.prompt_guest).relative_to(GUEST_HOME)
    parents = [(str(p), 0o700) for p in reversed(rel.parents) if str(p) != "."]
    data = file_tar(str(rel), prompt, mode=0o600, uid=plan.uid, gid=plan.gid, parents=parents)
    _put(api, plan, GUEST_HOME, data, "the prompt file")
    seed_claude_json(api, plan, progress)
    if not plan.skills:
        return
    progress("copying skills")
    for src, _dest in plan.skills:
        if not Path(src).is_dir():
            raise ProvisionError(
                f"skill {src} of agent {plan.agent} does not exist (any more)",
                fix="create it or remove it from `skills`",
                agent=plan.agent,
            )
    dests = [dest for _, dest in plan.skills]
    # Replace each skill whole (a file removed on the host goes away in the guest too);
    # as the agent (`node`, whatever its uid), because root in the bottle has no
    # capabilities over the agent's files.
    code, _out, err = sdk_exec(
        api,
        plan.bottle,
        ["sh", "-c", 'rm -rf -- "$@" && mkdir -p -- "$@"', "provision", *dests],
        user=f"{plan.uid}:{plan.gid}",
    )
    if code:
        raise ProvisionError(
            f"cannot prepare {GUEST_SKILLS} in agent {plan.agent}: {err.strip()}",
            agent=plan.agent,
        )
    # Every skill dest sits in GUEST_SKILLS (base.skill_dest): one archive carries them all.
    items = [(Path(src), posixpath.basename(dest)) for src, dest in plan.skills]
    data = paths_tar(items, uid=plan.uid, gid=plan.gid)
    _put(api, plan, GUEST_SKILLS, data, "skills " + ", ".join(src for src, _ in plan.skills))


def seed_claude_json(api: Any, plan: BottlePlan, progress: ProgressFn) -> None:
    """Merge the keys that open claude at its prompt into ``~/.claude.json`` (see
    ``backends.claude.seeded_claude_json``), keeping what is there."""
    progress("seeding ~/.claude.json")
    code, current, _err = sdk_exec(
        api,
        plan.bottle,
        ["sh", "-c", 'cat -- "$1" 2>/dev/null', "seed", GUEST_CLAUDE_JSON],
        user=f"{plan.uid}:{plan.gid}",
    )
    data = merge_claude_json(current if code == 0 else None, api_key=plan.env.get(API_KEY_ENV))
    tar = file_tar(CLAUDE_JSON, data, mode=0o600, uid=plan.uid, gid=plan.gid)
    _put(api, plan, GUEST_HOME, tar, "~/.claude.json")
    if SKIP_PERMISSIONS not in plan.claude_args:
        return
    progress("seeding ~/.claude/settings.json")
    code, current, _err = sdk_exec(
        api,
        plan.bottle,
        ["sh", "-c", 'cat -- "$1" 2>/dev/null', "seed", f"{GUEST_HOME}/{CLAUDE_SETTINGS}"],
        user=f"{plan.uid}:{plan.gid}",
    )
    data = merge_claude_settings(current if code == 0 else None)
    parent = posixpath.dirname(CLAUDE_SETTINGS)
    tar = file_tar(
        CLAUDE_SETTINGS, data, mode=0o600, uid=plan.uid, gid=plan.gid, parents=[(parent, 0o700)]
    )
    _put(api, plan, GUEST_HOME, tar, "~/.claude/settings.json")


def _put(api: Any, plan: BottlePlan, path: str, data: bytes, what: str) -> None:
    try:
        put_archive(api, plan.bottle, path, data)
    except (errors.APIError, BackendError) as exc:
        detail = api_message(exc) if isinstance(exc, errors.APIError) else str(exc)
        raise ProvisionError(
            f"copying {what} into agent {plan.agent} failed: {detail}", agent=plan.agent
        ) from exc


def provision_ca(api: Any, plan: BottlePlan) -> None:
    """Copy the bottle's egress CA certificate (never its key) where the bottle trusts it
    (``guest.GUEST_CA``)."""
    cert = Path(plan.extra["egress"]["dir"]) / EGRESS_CA_CERT.name
    rel = PurePosixPath(target(EGRESS_CA_CERT, COPY)).relative_to(GUEST_HOME)
    parents = [(str(p), 0o700) for p in reversed(rel.parents) if str(p) != "."]
    data = file_tar(
        str(rel), cert.read_bytes(), mode=0o644, uid=plan.uid, gid=plan.gid, parents=parents
    )
    put_archive(api, plan.bottle, GUEST_HOME, data)
