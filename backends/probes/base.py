"""The probe vocabulary: a ``Probe`` checks one seal of one bottle and returns a ``Result``.

A probe reads host-side facts (the engine's view of the bottle: ``BottleBackend.probe_facts``)
and runs shell snippets in the bottle (``Bottle.exec``). It never sends anything outside
the bottle's own network: network probes prove what they can by route and configuration,
and talk only to the bottle's own sidecar, its own network's gateway and names under
``.invalid``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backends.base import Bottle, Completed
from backends.probes.result import (
    CREDENTIAL,
    FAIL,
    GROUPS,
    HOST,
    NETWORK,
    NOT_APPLICABLE,
    OUTCOMES,
    PASS,
    Result,
)

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

# The verdict's names, here too: each probe module imports its vocabulary from one place.
__all__ = [
    "CREDENTIAL",
    "FAIL",
    "GROUPS",
    "HOST",
    "NETWORK",
    "NOT_APPLICABLE",
    "OUTCOMES",
    "PASS",
    "Check",
    "Probe",
    "Result",
    "Target",
    "clip",
    "egress_of",
    "egress_value",
    "sealed",
    "verdict",
]


@dataclass
class Target:
    """What a probe looks at: the bottle, its recorded plan and the engine's facts."""

    agent: str
    backend: str
    bottle: Bottle
    plan: BottlePlan | None
    facts: dict[str, Any] = field(default_factory=dict)

    def run(self, script: str, *, user: str | None = None, timeout: float = 60) -> Completed:
        """``script`` in the bottle as ``user`` (the plan's agent user by default)."""
        who = user or (self.plan.user if self.plan else "node")
        return self.bottle.exec(script, user=who, timeout=timeout)


def egress_of(t: Target) -> dict[str, Any]:
    """The plan's sealed-egress part (empty for a bottle launched without one)."""
    return dict((t.plan.extra.get("egress") if t.plan else None) or {})


def egress_value(t: Target, key: str, field: str = "") -> str:
    """One setting of the plan's sealed-egress part as a string: ``key`` (``sidecar``,
    ``proxy``, ``api``), or ``field`` of the table ``key`` (``credential``, ``var``);
    empty when the plan has none."""
    value = egress_of(t).get(key)
    if field:
        value = value.get(field) if isinstance(value, Mapping) else None
    return str(value or "")


def sealed(t: Target) -> bool:
    """Whether the bottle was launched sealed, with an egress sidecar."""
    egress = egress_of(t)
    return bool(egress.get("sealed") and egress.get("sidecar"))


#: A check returns (outcome, evidence); the suite adds the probe's name, group and fix.
Check = Callable[[Target], tuple[str, str]]


@dataclass(frozen=True)
class Probe:
    """One escape probe: ``check`` runs on the backends named in ``backends``; on any other
    backend the probe is not applicable (with ``why_not`` as evidence)."""

    name: str
    group: str
    summary: str
    fix: str
    check: Check
    backends: tuple[str, ...] = ("docker", "smolmachines")
    why_not: str = "not a seal of this backend"


def verdict(ok: bool, evidence: str) -> tuple[str, str]:
    """``(PASS, evidence)`` when ``ok``, else ``(FAIL, evidence)``."""
    return (PASS if ok else FAIL, evidence)


def clip(text: str, limit: int = 300) -> str:
    """One line of evidence from command output (whitespace folded, cut at ``limit``)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
