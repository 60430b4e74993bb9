"""Host-side locations (XDG), overridable by environment so tests never touch real ones:
where each per-agent file of ``backends.agent_files`` is, and how it is written (0600 from
the first byte, in 0700 folders).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from backends import agent_files
from backends.agent_files import (
    EGRESS_DIR,
    EGRESS_LOG,
    PLAN_FILE,
    PROMPT_FILE,
    STATUS_DIR,
    AgentFile,
)

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

__all__ = [
    "EGRESS_DIR",
    "EGRESS_LOG",
    "PLAN_FILE",
    "PROMPT_FILE",
    "STATUS_DIR",
    "agent_file",
    "agent_path",
    "agent_state_dir",
    "budget_file",
    "cache_dir",
    "egress_dir",
    "egress_log",
    "ensure_status_dir",
    "plan_file",
    "private_dirs",
    "save_plan",
    "saved_plan",
    "state_dir",
    "status_dir",
    "usage_log",
    "write_private",
    "write_prompt",
    "write_readable",
    "agent_lock",
]


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / default


def state_dir() -> Path:
    """``$XDG_STATE_HOME/bottle-dash``."""
    return _xdg("XDG_STATE_HOME", ".local/state") / "bottle-dash"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/bottle-dash``."""
    return _xdg("XDG_CACHE_HOME", ".cache") / "bottle-dash"


def agent_state_dir(agent: str) -> Path:
    """Per-agent host state: every entry of ``AGENT_FILES`` with a ``path``."""
    return state_dir() / "agents" / agent


def agent_path(agent: str, entry: AgentFile) -> Path:
    """Where ``entry`` (one of ``AGENT_FILES``, in the state folder) is for ``agent``."""
    if not entry.path:
        raise ValueError(f"{entry.config_key} is the operator's path, not in the state folder")
    return agent_state_dir(agent) / entry.path


#: Paths in agents' state dirs by (state location, home, agent, file): the dashboard reads
#: a file or two of every running agent on every tick, and building the path with pathlib
#: cost more than reading the file.
_AGENT_FILES: dict[tuple[str, str, str, str], str] = {}


def agent_file(agent: str, *parts: str) -> str:
    """``agent_state_dir(agent) / parts``, as a string, remembered."""
    key = (os.environ.get("XDG_STATE_HOME", ""), os.environ.get("HOME", ""), agent, "/".join(parts))
    path = _AGENT_FILES.get(key)
    if path is None:
        path = _AGENT_FILES[key] = str(agent_state_dir(agent).joinpath(*parts))
    return path


def private_dirs(folder: Path) -> None:
    """Create ``folder`` and every folder between it and ``state_dir()`` mode 0700 (and
    tighten them when they exist): the agent's files may hold secrets."""
    top = state_dir()
    chain = [folder, *folder.parents]
    inside = top in chain
    for level in reversed(chain[: chain.index(top) + 1] if inside else [folder]):
        level.mkdir(parents=True, exist_ok=True, mode=0o700)
        if level.stat().st_mode & 0o777 != 0o700:
            os.chmod(level, 0o700)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the first byte (no umask window), in
    a 0700 folder."""
    private_dirs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def write_readable(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` with mode 0644 (files a bottle's agent reads through a
    mount, whatever its uid; they hold nothing secret), replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    import tempfile  # only when writing: `ls` and the poller never do

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        os.write(fd, data.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_prompt(agent: str, prompt: str) -> Path:
    """Write ``prompt`` to ``agent``'s prompt file (mode 0600, even when empty: it is
    always copied in) and return its path; every backend's ``prepare`` does this."""
    path = agent_state_dir(agent) / PROMPT_FILE
    write_private(path, prompt.encode())
    return path


def plan_file(agent: str) -> Path:
    """Where the plan of ``agent``'s last launch is recorded."""
    return agent_state_dir(agent) / PLAN_FILE


def save_plan(plan: BottlePlan) -> None:
    """Record ``plan`` as the last launch of its agent (mode 0600: it holds the env);
    every backend's ``launch`` does this once the bottle is up and provisioned."""
    write_private(plan_file(plan.agent), plan.to_json().encode())


def saved_plan(agent: str) -> BottlePlan | None:
    """The plan recorded by ``agent``'s last launch; None when there is none, or it cannot
    be read back as a plan."""
    from backends.bottle_plan import BottlePlan  # launch and attach need it, `ls` does not

    try:
        return BottlePlan.from_dict(json.loads(plan_file(agent).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def egress_dir(agent: str) -> Path:
    """Host directory mounted into the sidecar only: policy, credential, CA, log."""
    return agent_state_dir(agent) / EGRESS_DIR


def egress_log(agent: str) -> Path:
    """The agent's egress log (one JSON line per decision, written by its sidecar)."""
    return egress_dir(agent) / EGRESS_LOG


def usage_log(agent: str) -> Path:
    """The agent's usage log (one JSON line per API response, written by its sidecar)."""
    return agent_path(agent, agent_files.EGRESS_USAGE_LOG)


def budget_file(agent: str) -> Path:
    """The agent's budget for its sidecar (``backends.egress.ledger.Budget``)."""
    return agent_path(agent, agent_files.EGRESS_BUDGET)


def status_dir(agent: str) -> Path:
    """Where ``agent``'s status hooks write (mounted at ``claude.GUEST_STATUS_DIR``)."""
    return agent_state_dir(agent) / STATUS_DIR


def ensure_status_dir(agent: str, uid: int) -> Path:
    """Create ``agent``'s status directory, writable by the bottle's user ``uid``; returns it.

    The state dir around it stays 0700 (it holds the plan and credentials), so nothing else
    on the host reaches the status dir. Inside, the directory is 0700 and owned by ``uid``
    when the host user may give it away (root), 0700 as is when the host user is ``uid``,
    and 0777 otherwise (the 0700 parent still closes it to other host users).
    """
    path = status_dir(agent)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.mkdir(exist_ok=True, mode=0o700)
    me = os.geteuid()
    if me == uid:
        os.chmod(path, 0o700)
    elif me == 0:
        os.chown(path, uid, uid)
        os.chmod(path, 0o700)
    else:
        os.chmod(path, 0o777)
    return path


@contextmanager
def agent_lock(agent: str, waiting: Callable[[], None] | None = None) -> Iterator[bool]:
    """Hold ``agent``'s launch lock (``LAUNCH_LOCK``, an ``flock``) for the block: one
    bottle-dash at a time launches, starts or removes an agent's bottle, across processes
    and threads (each call opens the file anew). When another holds it, ``waiting`` is
    called once and this waits for it; yields whether it had to wait (the bottle's state
    has changed meanwhile: look again)."""
    import fcntl

    from backends.agent_files import LAUNCH_LOCK

    path = agent_path(agent, LAUNCH_LOCK)
    private_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        waited = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            if waiting is not None:
                waiting()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield waited
    finally:
        os.close(fd)  # releases the lock
