"""Run the probes against one live bottle, and keep the last result per agent.

``run_suite`` never raises for a probe that breaks: a probe that cannot run is a failure
with the error as evidence (a seal that cannot be shown is not a seal). The last result
is recorded in the agent's state dir (``seal.json``, 0600) for the dashboard and ``ls``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from backends import paths
from backends.base import BackendError, BottleBackend
from backends.probes import credential, host, network
from backends.probes.base import FAIL, NOT_APPLICABLE, PASS, Probe, Result, Target, clip

SEAL_FILE = "seal.json"
ALL: tuple[Probe, ...] = (*host.PROBES, *credential.PROBES, *network.PROBES)

#: Seal states for the dashboard badge.
SEALED = "sealed"
NOT_CHECKED = "not checked"


def probes(names: Sequence[str] | None = None) -> list[Probe]:
    """The probes called ``names`` (every probe when None), in suite order."""
    if not names:
        return list(ALL)
    unknown = [n for n in names if n not in {p.name for p in ALL}]
    if unknown:
        raise BackendError(
            f"unknown probe {unknown[0]!r}", fix="one of: " + ", ".join(p.name for p in ALL)
        )
    return [p for p in ALL if p.name in names]


def target(backend: BottleBackend, agent: str) -> Target:
    """Everything the probes look at for ``agent``: bottle handle, recorded plan, facts."""
    bottle = backend.attach(agent)
    return Target(
        agent=agent,
        backend=backend.name,
        bottle=bottle,
        plan=paths.saved_plan(agent),
        facts=backend.probe_facts(agent),
    )


def run_probe(probe: Probe, where: Target) -> Result:
    """One probe on one bottle; a crash is a failure, with the error as evidence."""
    if where.backend not in probe.backends:
        return Result(probe.name, probe.group, NOT_APPLICABLE, probe.why_not)
    try:
        outcome, evidence = probe.check(where)
    except Exception as exc:  # a probe that cannot show its seal reports, never crashes
        outcome, evidence = FAIL, f"the probe could not run: {clip(str(exc))}"
    return Result(probe.name, probe.group, outcome, evidence, probe.fix if outcome == FAIL else "")


@dataclass
class SuiteRun:
    """The outcome of one suite run on one agent's bottle."""

    agent: str
    backend: str
    results: list[Result] = field(default_factory=list)
    finished: float = 0.0

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.outcome == FAIL]

    @property
    def seal(self) -> str:
        """``sealed``, or ``n failing``."""
        bad = len(self.failures)
        return SEALED if not bad else f"{bad} failing"

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
            results=[Result.from_dict(r) for r in data.get("results") or []],
            finished=float(data.get("finished") or 0),
        )


def run_suite(
    backend: BottleBackend,
    agent: str,
    names: Sequence[str] | None = None,
    *,
    on_result: Callable[[Result], None] | None = None,
    record: bool = True,
) -> SuiteRun:
    """Run the probes (all, or ``names``) on ``agent``'s live bottle; record the run when
    it was the whole suite. Raises ``BottleNotFound`` when there is no bottle."""
    chosen = probes(names)
    where = target(backend, agent)
    run = SuiteRun(agent, backend.name)
    for probe in chosen:
        result = run_probe(probe, where)
        run.results.append(result)
        if on_result:
            on_result(result)
    run.finished = time.time()
    if record and not names:
        paths.write_private(seal_file(agent), json.dumps(run.to_dict()).encode())
    return run


def seal_file(agent: str) -> Path:
    """Where the last whole-suite run of ``agent`` is recorded."""
    return paths.agent_state_dir(agent) / SEAL_FILE


def last_run(agent: str) -> SuiteRun | None:
    """The last recorded whole-suite run of ``agent`` (None when never checked)."""
    try:
        return SuiteRun.from_dict(json.loads(seal_file(agent).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
    "PASS",
    "FAIL",
    "NOT_APPLICABLE",
    "Result",
    "SuiteRun",
    "run_suite",
    "last_run",
    "seal_of",
]
