"""Run the probes against one live bottle, and keep the last result per agent.

``run_suite`` never raises for a probe that breaks: a probe that cannot run is a failure
with the error as evidence (a seal that cannot be shown is not a seal). The last result
is recorded in the agent's state dir (``seal.json``, 0600) for the dashboard and ``ls``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from backends import paths
from backends.base import BackendError, BottleBackend
from backends.probes import broker, credential, host, network, planted
from backends.probes.base import FAIL, NOT_APPLICABLE, PASS, Probe, Result, Target, clip
from backends.probes.record import (
    NOT_CHECKED,
    SEAL_FILE,
    SEAL_VERIFIED,
    SuiteRun,
    current_run,
    last_run,
    seal_file,
    seal_of,
)

ALL: tuple[Probe, ...] = (
    *host.PROBES,
    *planted.PROBES,
    *credential.PROBES,
    *network.PROBES,
    *broker.PROBES,
)


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
    bottle = backend.bottle(agent)
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
    if not any(backend.name in p.backends for p in chosen):
        # Every probe "not applicable" would read as a seal shown: say it is not checked.
        raise BackendError(
            f"no escape probe covers {backend.name} bottles yet: the seal of agent {agent} "
            "cannot be shown here",
            fix="the kubernetes test tier proves the pod's seal from inside it "
            "(tests/integration/test_kube_backend.py)"
            if backend.name == "kubernetes"
            else None,
            agent=agent,
        )
    where = target(backend, agent)
    results = []
    for probe in chosen:
        result = run_probe(probe, where)
        results.append(result)
        if on_result:
            on_result(result)
    run = SuiteRun(agent, backend.name, tuple(results), time.time())
    if record and not names:
        paths.write_private(seal_file(agent), json.dumps(run.to_dict()).encode())
    return run


__all__ = [
    "PASS",
    "FAIL",
    "NOT_APPLICABLE",
    "Result",
    "SuiteRun",
    "run_suite",
    "last_run",
    "seal_of",
    "current_run",
    "seal_file",
    "SEAL_FILE",
    "SEAL_VERIFIED",
    "NOT_CHECKED",
]
