"""A sealed smolmachines bottle: the egress sidecar reached through smolvm's host-side
network relay.

The sidecar is the same container and image as a docker bottle's
(``backends.egress.sidecar``): ``bottle-<slug>-egress`` on ``bottle-<slug>-net`` and the
ordinary ``bottle-<slug>-out``, on the local docker engine (a machine has no engine of its
own: ``host_engine``). It comes up first; the machine is then created with
``--allow-cidr <sidecar-ip>/32`` and ``--dns <sidecar-ip>`` and nothing else, so the
sidecar's proxy is its only way out and no DNS query leaves for the host's resolver. The
guest env (proxy variables aimed at that address, the CA trio, the placeholder, telemetry
off) is ``backends.egress.plan``'s. Everything the smolmachines backend does with the
sidecar goes through here: it imports nothing of ``backends.docker``.

Why ``bottle-<slug>-net`` differs from a docker bottle's: smolvm never puts the VM on a
Docker network. With an egress policy it uses its virtio-net backend, whose gateway opens
every allowed connection as an ordinary socket of the smolvm process on the host (libkrun's
TSI, the other backend, also connects from the host). So the host must route to the
sidecar's address: the network is ``internal`` (nothing on it is forwarded out) but keeps
the host's gateway address, where a docker bottle's network has ``inhibit_ipv4``. Only the
sidecar sits on it; the machine's ``/32`` keeps it off the gateway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from contextlib import ExitStack, suppress
from typing import TYPE_CHECKING, Any

from backends.base import LABEL_AGENT, LABEL_BACKEND, AgentSpec, LaunchError, ProgressFn
from backends.docker.engine import Engine, api_message, errors
from backends.egress import plan as egress

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

# The sidecar and its networks are imported where used: listing (`ls`) reads only which
# sidecars run.

#: Said in ``plan`` until ``up`` learns the sidecar's address.
AT_UP = "<sidecar address>/32"


def seal(plan: BottlePlan, agent: AgentSpec) -> None:
    """Add the egress part to a smolmachines ``plan`` (sealed unless configured not)."""
    egress.seal_plan(plan, agent)
    if egress.is_sealed(plan):
        plan.extra["egress"]["allow_cidr"] = AT_UP
        # The host keeps its gateway address on the sidecar's network (module docstring).
        plan.extra["egress"]["host_address"] = True


def seal_up(plan: BottlePlan, undo: ExitStack, progress: ProgressFn) -> Callable[[], None]:
    """Bring the sidecar up (undo steps on ``undo``), aim the guest's proxy at its
    address and allow the machine that address only. Returns the wait for the proxy."""
    from backends.egress import sidecar  # here: `ls` lists machines without it
    from backends.egress.networks import ensure_relay_network

    try:
        api = host_engine().api()
        ensure_relay_network(api, plan, undo)
        ready = sidecar.bring_up(api, plan, undo, progress)
        address = sidecar.address(api, plan)
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


#: The local engine: a machine's sidecar runs there (the machine has no engine of its own).
_ENGINE = Engine()


def host_engine() -> Engine:
    """The engine the sidecars of smolvm machines run on: the local one."""
    return _ENGINE


def sidecars_running(agents: Iterable[str]) -> set[str]:
    """The agents among ``agents`` whose sidecar runs (not paused), from one read-only
    listing by container name (no SDK client), not an inspect per machine on every
    tick; a sidecar stopped, paused or gone, or no engine answering: not running (no
    egress, fail closed)."""
    names = {"/" + egress.sidecar_name(agent): agent for agent in agents}
    if not names:
        return set()
    # The name filter is a regular expression matched anywhere in a name: anchored.
    filters = {"name": [f"^{re.escape(name)}$" for name in names]}
    try:
        rows = host_engine().get("/containers/json", {"all": "1", "filters": json.dumps(filters)})
    except Exception:  # no engine: no machine has a way out
        return set()
    running: set[str] = set()
    for row in rows if isinstance(rows, list) else []:
        if row.get("State") != "running":
            continue
        running.update(names[n] for n in row.get("Names") or [] if n in names)
    return running


def sidecar_facts(agent: str) -> dict[str, Any]:
    """The engine's record of the agent's sidecar ({} when there is none or no engine)."""
    try:
        found = host_engine().get(f"/containers/{egress.sidecar_name(agent)}/json")
    except Exception:  # a probe's fact, never a failure of its caller
        return {}
    return found if isinstance(found, dict) else {}


def start_sidecar(agent: str) -> None:
    """Start the agent's stopped sidecar (a machine never runs without its egress)."""
    from backends.egress import sidecar

    sidecar.start(host_engine().api(), agent)


def repair_sidecar(plan: BottlePlan, progress: ProgressFn) -> None:
    """Bring the sidecar of a sealed machine back as ``up`` found it: started when it was
    stopped, made again when it died or was removed (its policy and credential written
    again, so allowlist edits apply). ``LaunchError`` when it came back at an address the
    machine does not allow (its ``--allow-cidr`` is fixed at create)."""
    from backends.egress import sidecar  # here: `ls` lists machines without it
    from backends.egress.networks import ensure_relay_network

    allowed = str(plan.extra["egress"].get("allow_cidr") or "")
    try:
        api = host_engine().api()
        with ExitStack() as undo:
            ensure_relay_network(api, plan, undo)
            sidecar.bring_up(api, plan, undo, progress)()
            address = sidecar.address(api, plan)
            undo.pop_all()
    except errors.DockerException as exc:
        raise LaunchError(
            f"bringing back the egress sidecar of agent {plan.agent} failed: {api_message(exc)}",
            agent=plan.agent,
        ) from exc
    if f"{address}/32" != allowed:
        raise LaunchError(
            f"the egress sidecar of agent {plan.agent} came back at {address}, but the "
            f"machine may reach only {allowed}",
            fix=f"bottle-dash rm --volumes {plan.agent}, then bottle-dash up {plan.agent}",
            agent=plan.agent,
        )


def stop_sidecar(agent: str) -> None:
    """Stop the agent's sidecar if it runs."""
    from backends.egress import sidecar

    with suppress(errors.DockerException):
        sidecar.stop(host_engine().api(), agent)


def remove_sidecar(agent: str) -> bool:
    """Remove the agent's sidecar container and networks; True when something went."""
    api = host_engine().api()
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
