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
from typing import TYPE_CHECKING, Any, NamedTuple

from backends import copy_diff, paths, repo_copy
from backends.agent_files import COPY_RECORD, SETUP_LOG, SETUP_RESULT
from backends.base import BackendError
from backends.repo_copy import host_git

if TYPE_CHECKING:
    from collections.abc import Callable

    from backends.base import BottleBackend
    from bottle_dash.service.rows import AgentRow


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


def summary(
    backend: BottleBackend, agent: str, last: repo_copy.Summary | None = None
) -> repo_copy.Summary:
    """What the agent changed: computed in its bottle, parsed here (``repo_copy.Summary``).
    With ``last`` (the previous summary), the counts are computed again only when the
    copy's HEAD or index changed since."""
    rec = _need(agent)
    fp = last.fingerprint if last else ""
    script = f"set -- {shlex.quote(rec['base_oid'])} {shlex.quote(fp)}\n{repo_copy.SUMMARY_SCRIPT}"
    done = backend.read_copy(agent, script, timeout=120)
    if done.returncode not in (0,):
        raise BackendError(
            f"the copy of agent {agent} could not be read: "
            f"{(done.stderr or done.stdout).strip()[-200:]}",
            agent=agent,
        )
    behind = repo_copy.behind_count(Path(rec["path"]), rec.get("base"), rec["base_oid"])
    return repo_copy.parse_summary(
        done.stdout,
        branch=rec["branch"],
        base=rec.get("base") or rec["base_oid"][:12],
        behind=behind,
        last=last,
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
    bottle = backend.bottle(agent)
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
    push = [
        "git",
        *repo_copy.trust(repo),
        "-C",
        repo,
        "push",
        "--",
        remote,
        f"refs/heads/{branch}:refs/heads/{branch}",
    ]
    gh = ["gh", "pr", "create", "--head", branch, "--fill"]
    if rec.get("base"):
        gh += ["--base", str(rec["base"])]
    return push, gh


def with_changes(
    backend_of: Callable[[str], BottleBackend], rows: list[AgentRow]
) -> list[AgentRow]:
    """The rows with the change summary of each agent whose copy exists (read in its
    bottle, or a helper when stopped; a copy that cannot be read leaves the row as is)."""
    out = []
    for row in rows:
        if record(row.name) is not None and row.info is not None:
            row = row._replace(setup=setup_state(row.name))
            try:
                row = row._replace(changes=summary(backend_of(row.backend), row.name))
            except BackendError:  # the row stays without its summary
                row = row
        out.append(row)
    return out


def pull_request(agent: str, remote: str = "origin") -> str:
    """Push the agent's branch with the operator's ``remote`` (no terminal: a push that
    needs a password fails rather than asks) and open a pull request with ``gh`` when it
    is installed; returns what happened (the PR's address, or the command to run)."""
    from backends import run

    push, gh = pr_argv(agent, remote)
    rec = _need(agent)
    done = run.run(push, timeout=600, env=repo_copy.clean_env())
    if not done.ok:
        raise BackendError(
            f"pushing {rec['branch']} to {remote} failed: {done.stderr.strip()[-300:]}",
            fix=f"bottle-dash pr {agent} in a terminal (it may ask for credentials)",
            agent=agent,
        )
    if run.which("gh") is None:
        return (
            f"pushed; gh is not installed: cd {shlex.quote(str(rec['path']))} && {shlex.join(gh)}"
        )
    env = {**repo_copy.clean_env(), "GH_PROMPT_DISABLED": "1"}
    opened = run.run(gh, env=env, cwd=str(rec["path"]), timeout=300)
    if not opened.ok:
        raise BackendError(
            f"gh pr create failed: {(opened.stderr or opened.stdout).strip()[-300:]}",
            fix=f"cd {rec['path']} && {shlex.join(gh)}",
            agent=agent,
        )
    return opened.stdout.strip().splitlines()[-1] if opened.stdout.strip() else "opened"


#: Seconds one setup command may run.
SETUP_TIMEOUT = 1800
#: Lines of a failed setup command's output kept for the row and the operator.
SETUP_TAIL = 20


def run_setup(bottle: Any, agent: str, commands: list[str], progress: Any) -> bool:
    """Run the agent's ``setup`` commands in its bottle (as the agent, in /workspace, its
    network the egress sidecar's), one after another until one fails; their output goes
    to ``setup.log``, the outcome to ``setup.json`` (``setup_state``). A failure is said
    on ``progress`` with its last line and returns False: the agent still starts."""
    log_lines: list[str] = []
    outcome: dict[str, Any] = {"ok": True}
    for command in commands:
        progress(f"setup: {command}")
        done = bottle.exec(f"cd /workspace && {command}", timeout=SETUP_TIMEOUT)
        output = (done.stdout + done.stderr).splitlines()
        log_lines += [f"$ {command}", *output, f"(exit {done.returncode})"]
        if not done.ok:
            tail = output[-SETUP_TAIL:]
            outcome = {"ok": False, "command": command, "exit": done.returncode, "tail": tail}
            last = tail[-1] if tail else ""
            progress(f"setup failed: {command} (exit {done.returncode}) {last}".rstrip())
            break
    paths.write_private(paths.agent_path(agent, SETUP_LOG), "\n".join(log_lines).encode())
    paths.write_private(paths.agent_path(agent, SETUP_RESULT), json.dumps(outcome).encode())
    return bool(outcome["ok"])


def setup_state(agent: str) -> str:
    """``ok``, ``failed: CMD (exit N)``, or "" when no setup ran (one small file read)."""
    try:
        data = json.loads(paths.agent_path(agent, SETUP_RESULT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if not isinstance(data, dict):
        return ""
    if data.get("ok"):
        return "ok"
    return f"failed: {str(data.get('command', ''))[:80]} (exit {data.get('exit')})"


class ChangeWatcher:
    """The dashboard's change summaries: each computed in a daemon thread of its own (at
    most ``WORKERS`` at once), never on the poll's or the UI's thread, for running agents
    with a copy, at most every ``every`` seconds each or sooner when ``nudged`` (its status
    changed: the agent started or finished something). The script in the bottle compares
    HEAD and the index with the last run's and recomputes the counts only when they
    changed; the dirty flag needs a ``git status`` each time (about 1 s on a copy of
    100,000 files: ``benchmarks/bench_copy.py``), hence the long period."""

    WORKERS = 2
    EVERY = 60.0

    def __init__(
        self,
        backend_of: Callable[[str], BottleBackend],
        *,
        every: float = EVERY,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import threading
        import time

        self.backend_of = backend_of
        self.every = every
        self.clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._last: dict[str, repo_copy.Summary] = {}
        self._due: dict[str, float] = {}
        self._busy: set[str] = set()

    def apply(self, rows: list[AgentRow], nudged: frozenset[str] = frozenset()) -> list[AgentRow]:
        """``rows`` with the last summary of each, starting the computations that are due."""
        from backends.base import RUNNING

        now = self.clock()
        out = []
        for row in rows:
            if row.state == RUNNING and record(row.name) is not None:
                row = row._replace(setup=setup_state(row.name))
                due = now >= self._due.get(row.name, 0.0) or row.name in nudged
                with self._lock:
                    free = row.name not in self._busy and len(self._busy) < self.WORKERS
                    if due and free:
                        self._busy.add(row.name)
                        self._due[row.name] = now + self.every
                        self._start(row.backend, row.name)
            with self._lock:
                found = self._last.get(row.name)
            out.append(row._replace(changes=found) if found is not None else row)
        return out

    def _start(self, backend: str, agent: str) -> None:
        import threading

        thread = threading.Thread(
            target=self._compute, args=(backend, agent), name=f"changes-{agent}", daemon=True
        )
        thread.start()

    def _compute(self, backend: str, agent: str) -> None:
        try:
            with self._lock:
                last = self._last.get(agent)
            found = summary(self.backend_of(backend), agent, last)
            with self._lock:
                self._last[agent] = found
        except Exception:  # a copy that cannot be read keeps its last summary
            pass
        finally:
            with self._lock:
                self._busy.discard(agent)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no computation runs (tests, benchmarks); False on timeout."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if not self._busy:
                    return True
            time.sleep(0.02)
        return False


class CopyDiff(NamedTuple):
    """What the agent changed, file by file (``backends.copy_diff``)."""

    agent: str
    branch: str
    base: str
    files: list[copy_diff.FileChange]
    #: ``(part, path) -> patch`` (empty with ``stat`` only).
    patches: dict[tuple[str, str], str]

    def to_dict(self) -> dict[str, Any]:
        """``diff --json``: each file with its part, counts and (unless ``--stat``) patch."""
        files = []
        for f in self.files:
            entry: dict[str, Any] = f.to_dict()
            if self.patches:
                entry["patch"] = self.patches.get((f.part, f.path), "")
            files.append(entry)
        return {"agent": self.agent, "branch": self.branch, "base": self.base, "files": files}


def diff(backend: BottleBackend, agent: str, *, stat: bool = False) -> CopyDiff:
    """The agent's changes, read in its bottle: the file list, and the patches unless
    ``stat``."""
    rec = _need(agent)
    done = backend.read_copy(agent, copy_diff.numstat_script(rec["base_oid"]), timeout=300)
    if not done.ok:
        raise BackendError(
            f"the copy of agent {agent} could not be read: {done.stderr.strip()[-200:]}",
            agent=agent,
        )
    files = copy_diff.parse_numstat(done.stdout)
    patches: dict[tuple[str, str], str] = {}
    if not stat:
        for part in (copy_diff.COMMITTED, copy_diff.UNCOMMITTED):
            if not any(f.part == part for f in files):
                continue
            script = copy_diff.patch_script(rec["base_oid"], part)
            out = backend.read_copy(agent, script, timeout=300).stdout
            for path, text in copy_diff.patches_by_file(files, part, out).items():
                patches[(part, path)] = text
    base = rec.get("base") or rec["base_oid"][:12]
    return CopyDiff(agent, rec["branch"], base, files, patches)
