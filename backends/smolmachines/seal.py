"""A sealed smolmachines bottle: the docker backend's egress sidecar, reached over TSI.

The sidecar is the same container, image and networks as a docker bottle's
(``backends.docker.sidecar``): ``bottle-<slug>-egress`` on the internal
``bottle-<slug>-net`` and the ordinary ``bottle-<slug>-out``. It comes up first; the
machine is then created with ``--allow-cidr <sidecar-ip>/32`` and nothing else, so the
sidecar's proxy is its only way out. The guest env (proxy variables aimed at that
address, the CA trio, the placeholder, telemetry off) is ``backends.egress.plan``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, suppress
from typing import Any

from backends.base import LABEL_AGENT, LABEL_BACKEND, AgentSpec, BottlePlan, LaunchError, ProgressFn
from backends.docker.engine import Engine, api_message, errors
from backends.docker.plan import seal_plan
from backends.egress import plan as egress

#: Said in ``plan`` until ``up`` learns the sidecar's address.
AT_UP = "<sidecar address>/32"


def seal(plan: BottlePlan, agent: AgentSpec) -> None:
    """Add the egress part to a smolmachines ``plan`` (sealed unless configured not)."""
    seal_plan(plan, agent)
    if egress.is_sealed(plan):
        plan.extra["egress"]["allow_cidr"] = AT_UP


def sidecar_address(api: Any, plan: BottlePlan) -> str:
    """The sidecar's IPv4 address on the bottle's internal network."""
    info = plan.extra["egress"]
    nets = (api.inspect_container(info["sidecar"]).get("NetworkSettings") or {}).get("Networks")
    address = str(((nets or {}).get(info["networks"]["internal"]) or {}).get("IPAddress") or "")
    if not address:
        raise LaunchError(
            f"the egress sidecar of agent {plan.agent} has no address on "
            f"{info['networks']['internal']}",
            fix=f"bottle-dash rm --volumes {plan.agent}, then bottle-dash up {plan.agent}",
            agent=plan.agent,
        )
    return address


def seal_up(plan: BottlePlan, undo: ExitStack, progress: ProgressFn) -> Callable[[], None]:
    """Bring the sidecar up (undo steps on ``undo``), aim the guest's proxy at its
    address and allow the machine that address only. Returns the wait for the proxy."""
    from backends.docker import sidecar  # here: `ls` lists machines without it

    try:
        api = _ENGINE.api()
        ready = sidecar.bring_up(api, plan, undo, progress)
        address = sidecar_address(api, plan)
    except errors.DockerException as exc:
        raise LaunchError(
            f"bringing up the egress sidecar of agent {plan.agent} failed: {api_message(exc)}",
            agent=plan.agent,
        ) from exc
    egress.point_proxy(plan, address)
    plan.extra["egress"]["allow_cidr"] = f"{address}/32"
    return ready


def _filters(agent: str) -> dict[str, list[str]]:
    return {"label": [f"{LABEL_AGENT}={agent}", f"{LABEL_BACKEND}=smolmachines"]}


_ENGINE = Engine()


def sidecar_running(agent: str) -> bool:
    """Whether the agent's sidecar runs (one read-only inspect, no SDK client); False
    when it is stopped, gone, or no engine answers: no egress, fail closed."""
    try:
        info = _ENGINE.get(f"/containers/{egress.sidecar_name(agent)}/json")
    except Exception:  # gone, or no engine: the bottle has no way out
        return False
    state = info.get("State") or {}
    return bool(state.get("Running")) and not state.get("Paused")


def start_sidecar(agent: str) -> None:
    """Start the agent's stopped sidecar (a machine never runs without its egress)."""
    from backends.docker import sidecar

    api = _ENGINE.api()
    if sidecar.sidecar_state(api, agent) == "stopped":
        api.start(egress.sidecar_name(agent))


def stop_sidecar(agent: str) -> None:
    """Stop the agent's sidecar if it runs."""
    from backends.docker import sidecar

    with suppress(errors.DockerException):
        api = _ENGINE.api()
        if sidecar.sidecar_state(api, agent) == "running":
            api.stop(egress.sidecar_name(agent), timeout=5)


def remove_sidecar(agent: str) -> bool:
    """Remove the agent's sidecar container and networks; True when something went."""
    api = _ENGINE.api()
    removed = False
    try:
        for row in api.containers(all=True, filters=_filters(agent)):
            api.remove_container(row["Id"], force=True)
            removed = True
        for net in api.networks(filters=_filters(agent)):
            api.remove_network(net["Id"])
            removed = True
    except errors.DockerException as exc:
        raise LaunchError(
            f"removing the egress sidecar of agent {agent} failed: {api_message(exc)}",
            agent=agent,
        ) from exc
    return removed
