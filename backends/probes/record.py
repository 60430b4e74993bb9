"""The record of the last whole-suite probe run per agent (``seal.json``, 0600), and the
seal badge read from it.

Apart from ``suite`` (which runs the probes and imports all of them): ``ls`` and the
dashboard read the badge of every running bottle, and need none of the probes for that.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from backends import paths
from backends.probes.result import FAIL, Result

SEAL_FILE = "seal.json"

#: Seal states for the dashboard badge.
SEAL_VERIFIED = "sealed"
NOT_CHECKED = "not checked"

#: agent -> ((mtime_ns, size, inode) of its seal file, the run read from it)
_cache: dict[str, tuple[tuple[int, int, int], SuiteRun | None]] = {}
_lock = threading.Lock()


class SuiteRun(NamedTuple):
    """The outcome of one suite run on one agent's bottle."""

    agent: str
    backend: str
    results: tuple[Result, ...] = ()
    finished: float = 0.0

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.outcome == FAIL]

    @property
    def seal(self) -> str:
        """``sealed``, or ``n failing``."""
        bad = len(self.failures)
        return SEAL_VERIFIED if not bad else f"{bad} failing"

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "backend": self.backend,
            "seal": self.seal,
            "finished": self.finished,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteRun:
        return cls(
            agent=str(data["agent"]),
            backend=str(data["backend"]),
            results=tuple(Result.from_dict(r) for r in data.get("results") or []),
            finished=float(data.get("finished") or 0),
        )


def seal_file(agent: str) -> Path:
    """Where the last whole-suite run of ``agent`` is recorded."""
    return paths.agent_state_dir(agent) / SEAL_FILE


def last_run(agent: str) -> SuiteRun | None:
    """The last recorded whole-suite run of ``agent`` (None when never checked).

    Read again only when the file changed (mtime, size, inode): the dashboard asks for
    every running bottle on every tick, and the record changes once per probe run.
    """
    path = paths.agent_file(agent, SEAL_FILE)  # ``seal_file``, remembered
    try:
        st = os.stat(path)
    except OSError:
        _cache.pop(agent, None)
        return None
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _cache.get(agent)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        text = Path(path).read_text(encoding="utf-8")  # only when it changed
        run: SuiteRun | None = SuiteRun.from_dict(json.loads(text))
    except (OSError, ValueError, KeyError, TypeError):
        run = None
    with _lock:
        _cache[agent] = (key, run)
    return run


def current_run(agent: str, created: str = "") -> SuiteRun | None:
    """The last whole-suite run of ``agent`` when it checked the bottle that exists now
    (it finished after ``created``, the bottle's ISO creation time); else None."""
    run = last_run(agent)
    if run is None:
        return None
    try:
        born = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() if created else 0
    except ValueError:
        born = 0
    return run if run.finished >= born else None


def seal_of(agent: str, created: str = "") -> str:
    """The badge text: ``sealed``, ``n failing`` or ``not checked``."""
    run = current_run(agent, created)
    return run.seal if run else NOT_CHECKED


__all__ = [
    "NOT_CHECKED",
    "SEAL_VERIFIED",
    "SEAL_FILE",
    "SuiteRun",
    "current_run",
    "last_run",
    "seal_file",
    "seal_of",
]
