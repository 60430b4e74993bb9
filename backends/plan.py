"""The part of a plan every backend shares, checked the same way with the same errors.

``shared_plan`` checks the agent (name, workspace, skills, env keys), writes its prompt
file, makes its status directory and fills the fields both backends have; a backend's
``prepare`` passes only what is its own (limits and their defaults, network, home volume,
``extra``). So ``bottle-dash plan`` validates an agent identically on every backend.
Both also mount the same read-only parts of a git workspace (``git_read_only``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends import paths
from backends.base import (
    GUEST_PROMPT,
    GUEST_USER,
    AgentSpec,
    LaunchError,
    ProvisionError,
    bottle_labels,
    bottle_name,
    is_slug,
    sidecar_collision,
    skill_dest,
)
from backends.claude import claude_args, has_prompt
from backends.git_identity import identity_env

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan


def _where(agent: AgentSpec) -> str:
    return f" (from {agent.source})" if agent.source else ""


def check_name(agent: AgentSpec) -> None:
    """The agent's name is a slug and not the name of another agent's egress sidecar
    (``LaunchError`` otherwise)."""
    if not is_slug(agent.name):
        raise LaunchError(
            f"agent name {agent.name!r}{_where(agent)} is not a slug",
            fix="use lower-case letters, digits and '-', at most 40 characters",
            agent=agent.name,
        )
    collision = sidecar_collision(agent.name)
    if collision is not None:
        message, fix = collision
        raise LaunchError(f"{message}{_where(agent)}", fix=fix, agent=agent.name)


def resolve_workspace(agent: AgentSpec) -> str | None:
    """The absolute workspace directory, or None; ``ProvisionError`` when it is not one."""
    if agent.workspace is None:
        return None
    ws = Path(agent.workspace).expanduser().resolve()
    if not ws.is_dir():
        raise ProvisionError(
            f"workspace {ws} of agent {agent.name}{_where(agent)} is not a directory",
            fix=f"create it (`mkdir -p {ws}`) or change `workspace`",
            agent=agent.name,
        )
    return str(ws)


def resolve_skills(agent: AgentSpec) -> list[tuple[str, str]]:
    """(host directory, guest directory) of each skill; ``ProvisionError`` names a skill
    that is not a directory, has no name, or shares its name with another."""
    skills: list[tuple[str, str]] = []
    for skill in agent.skills:
        src = Path(skill).expanduser().resolve()
        if not src.is_dir():
            raise ProvisionError(
                f"skill {skill} of agent {agent.name}{_where(agent)} is not a directory",
                fix="create it or remove it from `skills`",
                agent=agent.name,
            )
        if not src.name:  # "/": its dest would be the skills folder itself
            raise ProvisionError(
                f"skill {skill} of agent {agent.name}{_where(agent)} has no directory name",
                fix="point `skills` at a skill's own directory",
                agent=agent.name,
            )
        dest = skill_dest(src)
        if any(d == dest for _, d in skills):
            raise ProvisionError(
                f"two skills of agent {agent.name}{_where(agent)} are both named {src.name!r}",
                fix="rename one of the directories",
                agent=agent.name,
            )
        skills.append((str(src), dest))
    return skills


def resolve_env(agent: AgentSpec) -> dict[str, str]:
    """The agent's env, sorted; ``LaunchError`` for a key that cannot be a variable."""
    env = {str(k): str(v) for k, v in sorted(agent.env.items())}
    for key in env:
        if not key or "=" in key or "\0" in key:
            raise LaunchError(
                f"env key {key!r} of agent {agent.name}{_where(agent)} is not a variable name",
                fix="use letters, digits and '_' in `env` keys",
                agent=agent.name,
            )
    return env


#: The config key that refuses a root agent.
ALLOW_ROOT_KEY = "allow_root"


def root_agent(agent: AgentSpec, workspace: str | None, uid: int) -> list[str]:
    """The warning of an agent that will run as uid 0 (its workspace is root's), or a
    ``LaunchError`` naming the file, agent, key and fix when ``allow_root`` is false."""
    if uid != 0:
        return []
    if not agent.allow_root:
        raise LaunchError(
            f"the workspace {workspace} of agent {agent.name}{_where(agent)} belongs to root, "
            f"so the agent would run as uid 0, and {ALLOW_ROOT_KEY} = false refuses that",
            fix=f"give the workspace to a non-root user (chown -R USER: {workspace}), or set "
            f"{ALLOW_ROOT_KEY} = true in [agents.{agent.name}] or [defaults]",
            agent=agent.name,
        )
    return [
        f"the agent runs as root (uid 0): its workspace {workspace} belongs to root, and the "
        "agent runs as the workspace's owner; it holds no capability. Set "
        f"{ALLOW_ROOT_KEY} = false to refuse this, or give the workspace to another user"
    ]


#: The part of a git workspace mounted read-only in the bottle: the whole ``.git`` (a
#: directory, or the FILE of a worktree or submodule). A hook, ``commondir``, a config or
#: a ``.git`` file naming a copy, planted there, would run on the host the next time the
#: operator runs git in the workspace; a mount point cannot be renamed or removed either
#: (EBUSY), so the agent cannot move ``.git`` aside and write its own.
GIT_READ_ONLY = (".git",)


def _inside(root: Path, path: Path) -> str | None:
    """``path`` (symlinks resolved) relative to ``root``, when it is inside it."""
    real = Path(os.path.realpath(path))
    try:
        rel = real.relative_to(root)
    except ValueError:
        return None
    return str(rel) if str(rel) != "." else None


def git_read_only(workspace: str | None) -> list[str]:
    """The workspace paths to mount read-only: ``.git`` (directory or file, never a
    symlink: see ``git_notes``), and for a ``.git`` FILE the git directory it names and
    that directory's ``commondir`` when those lie inside the workspace (a copy git would
    read as the repository). Writes nothing."""
    if not workspace:
        return []
    root = Path(os.path.realpath(workspace))
    git = root / ".git"
    if git.is_symlink() or not (git.is_dir() or git.is_file()):
        return []
    found = [".git"]
    gitdir = git
    if git.is_file():
        try:
            first = git.read_text(encoding="utf-8", errors="replace").partition("\n")[0]
        except OSError:
            first = ""
        if first.startswith("gitdir:"):
            target = Path(first[len("gitdir:") :].strip())
            gitdir = target if target.is_absolute() else root / target
            rel = _inside(root, gitdir)
            if rel and Path(root / rel).is_dir():
                found.append(rel)
    try:
        common = (gitdir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        common = ""
    if common:
        target = Path(common) if Path(common).is_absolute() else gitdir / common
        rel = _inside(root, target)
        if rel and Path(root / rel).is_dir() and rel not in found:
            found.append(rel)
    return [p for p in found if p == ".git" or not p.startswith(".git/")]


def git_notes(workspace: str | None, agent: str = "") -> list[str]:
    """What of the workspace's repository cannot be mounted read-only, or is, each a
    warning line for ``plan`` and ``up`` (the workspace check watches the first)."""
    if not workspace:
        return []
    git = Path(workspace) / ".git"
    if not git.is_symlink() and git.is_dir():
        table = f"[agents.{agent}]" if agent else "the agent's table"
        return [
            f"the workspace's .git ({git}) is read-only in the bottle, to keep the "
            "operator's repository safe from the agent: git commit, add and config fail "
            f"there (Read-only file system); to let the agent commit, give it its own copy "
            f'with repo = "{workspace}" in {table} (README: "git in the bottle")'
        ]
    if git.is_symlink():
        return [
            f"the workspace's .git is a symlink ({os.readlink(git)}): it is not mounted "
            "read-only; the workspace check (workspace-clean) watches what git reads"
        ]
    return []


def plan_warnings(plan: BottlePlan) -> list[str]:
    """The warnings ``plan`` and ``up`` print for ``plan`` (a root agent, a repository
    that cannot be mounted read-only)."""
    return [str(w) for w in plan.extra.get("warnings") or []]


def shared_plan(agent: AgentSpec, backend: str, **own: Any) -> BottlePlan:
    """Check ``agent``, write its prompt file (mode 0600) and return its plan on
    ``backend``; ``own`` sets the backend's own fields (``cpus``, ``memory``, ``pids``,
    ``network``, ``home_volume``, ``extra``). Talks to no engine."""
    # Here: listing (`ls`) only checks names; it needs neither the plan nor the owner.
    from backends.agent_user import agent_user
    from backends.bottle_plan import BottlePlan

    check_name(agent)
    workspace = resolve_workspace(agent)
    skills = resolve_skills(agent)
    env = resolve_env(agent)
    env = dict(sorted({**identity_env(agent.git_user, env), **env}.items()))
    # the agent runs as its workspace's owner (its repository's, for a copy)
    owned = workspace or (str(agent.repo) if agent.repo else None)
    user = agent_user(owned)
    warnings = root_agent(agent, owned, user.uid)
    prompt_host = paths.write_prompt(agent.name, agent.prompt)
    nonempty = has_prompt(agent.prompt)
    plan = BottlePlan(
        agent=agent.name,
        backend=backend,
        bottle=bottle_name(agent.name),
        image=agent.image,
        labels=bottle_labels(agent.name, backend),
        env=env,
        workspace=workspace,
        prompt_host=str(prompt_host),
        prompt_guest=GUEST_PROMPT,
        prompt_nonempty=nonempty,
        skills=skills,
        claude_args=claude_args(GUEST_PROMPT, nonempty, agent.claude_args, status_hooks=True),
        user=GUEST_USER,
        uid=user.uid,
        gid=user.gid,
        uid_reason=user.reason,
        status_dir=str(paths.ensure_status_dir(agent.name, user.uid)),
        **own,
    )
    if agent.repo is not None:
        plan.extra["repo"] = repo_plan(agent)
    if warnings:
        plan.extra["warnings"] = [*warnings, *plan.extra.get("warnings", [])]
    return plan


def repo_plan(agent: AgentSpec) -> dict[str, Any]:
    """The ``repo`` part of a plan: the host repository, the base and the commit it names
    now, the agent's branch and the volume its copy lives in (``backends.repo_copy``)."""
    from backends.repo_copy import resolve_base

    assert agent.repo is not None
    repo = Path(agent.repo)
    return {
        "path": str(repo),
        "base": agent.base,
        "base_oid": resolve_base(
            repo, agent.base, agent=agent.name, source=str(agent.source or "")
        ),
        "branch": agent.branch or f"bottle/{agent.name}",
        "volume": bottle_name(agent.name, "-copy"),
        "copy": list(agent.copy),
        "setup": list(agent.setup),
    }
