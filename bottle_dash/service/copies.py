"""An agent's repository copy seen from the service: its change summary, what ``rm`` would
lose, and bringing its work home (``fetch``, ``merge``, ``pr``).

Nothing here reads the copy with host git: the backend runs the scripts of
``backends.repo_copy`` in the bottle (``read_copy``); host git runs only in the operator's
repository, and ``fetch`` gets the agent's commits over a pipe from ``git-upload-pack``
running in the bottle.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends import paths, repo_copy
from backends.agent_files import COPY_RECORD
from backends.base import BackendError
from backends.repo_copy import host_git

if TYPE_CHECKING:
    from backends.base import BottleBackend


class WorkWouldBeLost(BackendError):
    """``rm --volumes`` of an agent whose copy holds work the host repository lacks."""


def record(agent: str) -> dict[str, Any] | None:
    """The agent's ``copy.json`` (repository, base, commit, branch), or None (no copy)."""
    try:
        data = json.loads(paths.agent_path(agent, COPY_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not repo_copy.is_oid(str(data.get("base_oid", ""))):
        return None
    return data


def _need(agent: str) -> dict[str, Any]:
    found = record(agent)
    if found is None:
        raise BackendError(
            f"agent {agent} has no repository copy yet",
            fix=f'set repo = "PATH" in its config and run `bottle-dash up {agent}`',
            agent=agent,
        )
    return found


def summary(backend: BottleBackend, agent: str) -> repo_copy.Summary:
    """What the agent changed: computed in its bottle, parsed here (``repo_copy.Summary``)."""
    rec = _need(agent)
    script = f"set -- {shlex.quote(rec['base_oid'])}\n{repo_copy.SUMMARY_SCRIPT}"
    done = backend.read_copy(agent, script, timeout=120)
    behind = repo_copy.behind_count(Path(rec["path"]), rec.get("base"), rec["base_oid"])
    return repo_copy.parse_summary(
        done.stdout,
        branch=rec["branch"],
        base=rec.get("base") or rec["base_oid"][:12],
        behind=behind,
    )


def lost_work(backend: BottleBackend, agent: str) -> list[str]:
    """What removing the agent's copy would lose (empty: nothing)."""
    rec = record(agent)
    if rec is None:
        return []
    done = backend.read_copy(agent, repo_copy.LOST_SCRIPT, timeout=120)
    if not done.ok:
        return [f"the copy could not be read ({(done.stderr or done.stdout).strip()[-200:]})"]
    return repo_copy.lost_work(done.stdout, Path(rec["path"]))


def refuse_loss(backend: BottleBackend, agent: str) -> None:
    """``WorkWouldBeLost`` naming what would go, unless the copy holds nothing new."""
    lost = lost_work(backend, agent)
    if lost:
        raise WorkWouldBeLost(
            f"removing the copy of agent {agent} would lose: " + "; ".join(lost),
            fix=f"bottle-dash fetch {agent} first (or commit in the bottle), or "
            f"bottle-dash rm --volumes --force {agent} to discard it",
            agent=agent,
        )


def fetch(backend: BottleBackend, agent: str) -> tuple[Path, str, str]:
    """Bring the agent's branch into the host repository: ``(repo, branch, commit)``."""
    rec = _need(agent)
    bottle = backend.attach(agent)
    if not getattr(bottle, "running", True):
        bottle = backend.start(agent)
    upload = bottle.exec_argv(["git", "upload-pack", repo_copy.GUEST_COPY])
    repo = Path(rec["path"])
    oid = repo_copy.fetch(repo, upload, rec["branch"], agent=agent)
    return repo, rec["branch"], oid


def host_dirty(repo: Path) -> list[str]:
    """Tracked files changed in the host repository's work tree (what a merge refuses)."""
    done = host_git(repo, "status", "--porcelain", "--untracked-files=no", timeout=120)
    return done.stdout.splitlines()


def merge(agent: str) -> tuple[Path, str]:
    """Merge the fetched branch into the host's current branch; ``(repo, output)``."""
    rec = _need(agent)
    repo = Path(rec["path"])
    branch = rec["branch"]
    have = host_git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
    if not have.ok:
        raise BackendError(
            f"branch {branch} of agent {agent} is not in {repo} yet",
            fix=f"bottle-dash fetch {agent}",
            agent=agent,
        )
    dirty = host_dirty(repo)
    if dirty:
        raise BackendError(
            f"{repo} has uncommitted changes ({len(dirty)} files): a merge would mix them in",
            fix=f"commit or stash them in {repo}, then bottle-dash merge {agent}",
            agent=agent,
        )
    done = host_git(repo, "merge", "--no-edit", f"refs/heads/{branch}", timeout=600)
    if not done.ok:
        raise BackendError(
            f"merging {branch} into {repo} failed: {(done.stdout + done.stderr).strip()[-400:]}",
            fix=f"resolve it in {repo} (git status), or git -C {repo} merge --abort",
            agent=agent,
        )
    return repo, done.stdout.strip()


def pr_argv(agent: str, remote: str = "origin") -> tuple[list[str], list[str]]:
    """The push (the operator's own remote and credentials) and ``gh pr create`` argv."""
    rec = _need(agent)
    repo = str(rec["path"])
    branch = rec["branch"]
    push = ["git", "-C", repo, "push", "--", remote, f"refs/heads/{branch}:refs/heads/{branch}"]
    gh = ["gh", "pr", "create", "--head", branch, "--fill"]
    if rec.get("base"):
        gh += ["--base", str(rec["base"])]
    return push, gh
