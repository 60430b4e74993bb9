"""Rows of the kubernetes listing from one list of pods and one of claims (pure: the
API's objects in, ``BottleInfo`` out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backends import ownership
from backends.base import LABEL_AGENT, RUNNING, STOPPED, BottleInfo, bottle_name
from backends.egress import plan as egress
from backends.kubernetes.names import (
    AGENT_CONTAINER,
    EGRESS_CONTAINER,
    exact_labels,
    home_claim_name,
)
from backends.kubernetes.settings import NAME

#: A pod that exists but whose agent container does not run yet (or any more).
STARTING = "starting"
STOPPING = "stopping"


def _running(pod: Any, container: str) -> bool:
    for cs in pod.status.container_statuses or []:
        if cs.name == container:
            return bool(cs.state and cs.state.running)
    return False


def pod_state(pod: Any) -> str:
    """``running`` (the agent container runs), ``stopping`` (being deleted), ``starting``
    (pending, or its containers not all up), ``stopped`` (failed or ended)."""
    if pod.metadata.deletion_timestamp is not None:
        return STOPPING
    phase = pod.status.phase if pod.status else None
    if phase == "Running" and _running(pod, AGENT_CONTAINER):
        return RUNNING
    if phase in ("Failed", "Succeeded"):
        return STOPPED
    return STARTING


def egress_of(labels: dict[str, str], pod: Any | None) -> str:
    """Sealed with its sidecar container running, ``sidecar down``, or unsealed."""
    if labels.get(egress.SEALED_LABEL) != "true":
        return egress.EGRESS_UNSEALED
    if pod is not None and _running(pod, EGRESS_CONTAINER):
        return egress.EGRESS_SEALED
    return egress.EGRESS_SIDECAR_DOWN


def _iso(stamp: Any) -> str:
    return stamp.isoformat(timespec="seconds") if stamp is not None else ""


def infos(pods: Sequence[Any], claims: Sequence[Any]) -> list[BottleInfo]:
    """One row per agent: its pod when there is one, else its home claim (``stopped``)."""
    out: dict[str, BottleInfo] = {}
    for pod in pods:
        labels = exact_labels(pod.metadata)
        agent = labels.get(LABEL_AGENT)
        if not agent or not ownership.is_mine(labels) or pod.metadata.name != bottle_name(agent):
            continue
        image = next((c.image for c in pod.spec.containers if c.name == AGENT_CONTAINER), "")
        out[agent] = BottleInfo(
            agent=agent,
            backend=NAME,
            bottle=pod.metadata.name,
            state=pod_state(pod),
            image=image,
            created=_iso(pod.metadata.creation_timestamp),
            ident=str(pod.metadata.uid or ""),
            labels=labels,
            egress=egress_of(labels, pod),
        )
    for claim in claims:
        labels = exact_labels(claim.metadata)
        agent = labels.get(LABEL_AGENT)
        if (
            not agent
            or agent in out
            or not ownership.is_mine(labels)
            or claim.metadata.name != home_claim_name(agent)
        ):
            continue
        out[agent] = BottleInfo(
            agent=agent,
            backend=NAME,
            bottle=bottle_name(agent),
            state=STOPPED,
            image="",
            created=_iso(claim.metadata.creation_timestamp),
            ident=str(claim.metadata.uid or ""),
            labels=labels,
            egress=egress_of(labels, None),
        )
    return [out[a] for a in sorted(out)]
