"""A sealed docker bottle's networks and egress sidecar.

- ``bottle-<slug>-net``: the bottle's only network, ``internal`` with
  ``inhibit_ipv4`` (no route out, no address on the host's side);
- ``bottle-<slug>-out``: an ordinary bridge, the sidecar's way to the world;
- ``bottle-<slug>-egress``: the sidecar container on both, running mitmdump with the
  broker addon as the host operator's uid, every capability dropped, read-only root.
  It mounts the agent's egress directory (policy, credential, CA, log) at ``/egress``
  and the addon's folder read-only; nothing of either is mounted into the bottle.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from typing import TYPE_CHECKING, Any

from backends import ownership
from backends.base import GUEST_HOME, LABEL_AGENT, LaunchError, ProgressFn
from backends.docker.archive import file_tar
from backends.docker.bottle import put_archive
from backends.docker.engine import errors
from backends.docker.network import SEALED_OPTIONS, create_network
from backends.docker.plan import CAP_DROP, SECURITY_OPT, STOP_TIMEOUT
from backends.egress import plan as egress
from backends.egress.image import ADDON, ADDON_DIR, ADDON_HOST_DIR, ensure_sidecar_image
from backends.egress.policy import SIDECAR_DIR

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

SIDECAR_MEMORY = 256 * 1024**2
SIDECAR_PIDS = 128
#: What mitmdump prints once its proxy listens.
READY_TEXT = b"proxy listening"
#: mitmproxy imports for seconds; on a loaded host for tens of them.
READY_TIMEOUT = 120.0


def _quietly(fn: Any, *args: Any, **kwargs: Any) -> None:
    with suppress(Exception):
        fn(*args, **kwargs)


#: What a sidecar was made with: a sidecar of another revision (its command, mounts or
#: options changed since) is made again at the next ``up``.
REVISION_LABEL = "bottle-dash.sidecar-revision"
#: 2: listens on the bottle-side address only (``launch.py``), raw TCP relaying off;
#: 3: HTTP/1.1 only.
REVISION = "3"


def sidecar_labels(plan: BottlePlan) -> dict[str, str]:
    return {**plan.labels, egress.ROLE_LABEL: egress.ROLE_EGRESS, REVISION_LABEL: REVISION}


def subnets(api: Any, network: str) -> list[str]:
    """The subnets of engine network ``network`` (its IPAM config)."""
    info = api.inspect_network(network)
    configs = (info.get("IPAM") or {}).get("Config") or []
    return [str(c["Subnet"]) for c in configs if c.get("Subnet")]


def ensure_network(api: Any, plan: BottlePlan, name: str, undo: ExitStack, *, sealed: bool) -> None:
    """Create network ``name`` unless it exists (and is ours); a sealed bottle's network
    must be internal: one made by an earlier, unsealed launch is refused."""
    try:
        info = api.inspect_network(name)
    except errors.NotFound:
        ident = create_network(
            api,
            name,
            plan.labels,
            agent=plan.agent,
            internal=sealed,
            options=SEALED_OPTIONS if sealed else None,
        )
        undo.callback(_quietly, api.remove_network, ident)
        return
    if (info.get("Labels") or {}).get(LABEL_AGENT) != plan.agent:
        raise LaunchError(
            f"a network named {name} exists that bottle-dash did not create",
            fix=f"remove it (`docker network rm {name}`)",
            agent=plan.agent,
        )
    if not ownership.is_mine(info.get("Labels")):  # never join another operator's network
        raise ownership.foreign(
            plan.agent, f"network {name}", (info.get("Labels") or {}).get(ownership.LABEL_OWNER)
        )
    if sealed and not info.get("Internal"):
        raise LaunchError(
            f"network {name} of agent {plan.agent} is not sealed (made by an unsealed launch)",
            fix=f"bottle-dash rm {plan.agent}, then bottle-dash up {plan.agent}",
            agent=plan.agent,
        )


def sidecar_state(api: Any, agent: str) -> str | None:
    """``running``, ``stopped``, ``outdated`` (made by an earlier revision: to be made
    again), or None when there is no sidecar."""
    try:
        info = api.inspect_container(egress.sidecar_name(agent))
    except errors.NotFound:
        return None
    labels = (info.get("Config") or {}).get("Labels") or {}
    if not ownership.is_mine(labels):  # never take another operator's sidecar for ours
        raise ownership.foreign(
            agent, f"egress sidecar {egress.sidecar_name(agent)}", labels.get(ownership.LABEL_OWNER)
        )
    if labels.get(REVISION_LABEL) != REVISION:
        return "outdated"
    state = info.get("State") or {}
    return "running" if state.get("Running") and not state.get("Paused") else "stopped"


def check_sidecar_owner(api: Any, agent: str) -> None:
    """A container that bears the sidecar's name must be this agent's sidecar (not, say,
    the bottle of an agent named ``<agent>-egress`` from another config)."""
    name = egress.sidecar_name(agent)
    try:
        labels = api.inspect_container(name).get("Config", {}).get("Labels") or {}
    except errors.NotFound:
        return
    if labels.get(LABEL_AGENT) != agent or labels.get(egress.ROLE_LABEL) != egress.ROLE_EGRESS:
        other = labels.get(LABEL_AGENT)
        whose = f"the bottle of agent {other!r}" if other else "not made by bottle-dash"
        raise LaunchError(
            f"the egress sidecar of agent {agent} would be {name}, but a container of that "
            f"name exists that is not its sidecar ({whose})",
            fix=f"rename agent {other!r} so its name does not end in '-egress' and remove its "
            f"bottle (bottle-dash rm {other})"
            if other
            else f"remove or rename that container (`docker rm -f {name}`)",
            agent=agent,
        )


def _create(api: Any, plan: BottlePlan, image: str) -> str:
    from docker.types import Mount

    info = plan.extra["egress"]
    host_config = api.create_host_config(
        mounts=[
            Mount(target=SIDECAR_DIR, source=info["dir"], type="bind"),
            Mount(target=ADDON_DIR, source=str(ADDON_HOST_DIR), type="bind", read_only=True),
        ],
        network_mode=info["networks"]["internal"],
        cap_drop=list(CAP_DROP),
        security_opt=list(SECURITY_OPT),
        read_only=True,
        tmpfs={"/tmp": "rw,nosuid,nodev,size=64m"},
        pids_limit=SIDECAR_PIDS,
        mem_limit=SIDECAR_MEMORY,
        memswap_limit=SIDECAR_MEMORY,
        restart_policy={"Name": "unless-stopped"},
    )
    created = api.create_container(
        image,
        name=info["sidecar"],
        hostname=info["sidecar"],
        command=egress.mitmdump_argv(plan, ADDON),
        user=f"{os.getuid()}:{os.getgid()}",
        working_dir="/tmp",
        environment={"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"},
        labels=sidecar_labels(plan),
        host_config=host_config,
        stop_timeout=STOP_TIMEOUT,
    )
    return str(created["Id"])


def wait_ready(api: Any, ident: str, agent: str, since: int = 0) -> None:
    """Wait until mitmdump says it listens; ``LaunchError`` with its output when it dies."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        out = api.logs(ident, stdout=True, stderr=True, since=since)
        if READY_TEXT in out:
            return
        state = api.inspect_container(ident).get("State") or {}
        if not state.get("Running") or time.monotonic() > deadline:
            tail = out.decode(errors="replace").strip().splitlines()[-3:]
            raise LaunchError(
                f"the egress sidecar of agent {agent} did not start: " + " | ".join(tail),
                fix=f"docker logs {egress.sidecar_name(agent)}",
                agent=agent,
            )
        time.sleep(0.1)


def bring_up(
    api: Any, plan: BottlePlan, undo: ExitStack, progress: ProgressFn
) -> Callable[[], None]:
    """Networks, sidecar files, sidecar image and container, started; repairs a sidecar
    that is missing or stopped. Registers undo steps on ``undo`` for what it created.
    Returns the wait for the proxy to listen (mitmproxy takes seconds to import: the
    caller creates the bottle meanwhile, and waits before anything runs in it)."""
    info = plan.extra["egress"]
    progress("creating the network")
    ensure_network(api, plan, info["networks"]["internal"], undo, sealed=True)
    ensure_network(api, plan, info["networks"]["outer"], undo, sealed=False)
    progress("writing the egress policy and credential")
    egress.write_sidecar_files(plan, internal=subnets(api, info["networks"]["internal"]))
    check_sidecar_owner(api, plan.agent)
    state = sidecar_state(api, plan.agent)
    if state == "running":
        return lambda: None
    if state == "outdated":
        progress("replacing the egress sidecar (made by an earlier bottle-dash)")
        api.remove_container(info["sidecar"], force=True)
        state = None
    since = int(time.time())
    if state is None:
        progress("checking the egress image")
        image = ensure_sidecar_image(progress)
        progress("creating the egress sidecar")
        ident = _create(api, plan, image)
        undo.callback(_quietly, api.remove_container, ident, force=True)
        api.connect_container_to_network(ident, info["networks"]["outer"])
    else:
        ident = info["sidecar"]
    progress("starting the egress sidecar")
    api.start(ident)

    def ready() -> None:
        progress("waiting for the egress proxy")
        wait_ready(api, ident, plan.agent, since=since)

    return ready


def provision_ca(api: Any, plan: BottlePlan) -> None:
    """Copy the bottle's CA certificate (never its key) to ``egress.GUEST_CA``."""
    from pathlib import Path, PurePosixPath

    cert = Path(plan.extra["egress"]["dir"]) / "mitmproxy-ca-cert.pem"
    rel = PurePosixPath(egress.GUEST_CA).relative_to(GUEST_HOME)
    parents = [(str(p), 0o700) for p in reversed(rel.parents) if str(p) != "."]
    data = file_tar(
        str(rel), cert.read_bytes(), mode=0o644, uid=plan.uid, gid=plan.gid, parents=parents
    )
    put_archive(api, plan.bottle, GUEST_HOME, data)
