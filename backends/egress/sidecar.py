"""A sealed bottle's egress sidecar: a container on a docker engine, for both backends.

``bottle-<slug>-egress`` sits on the bottle-side network ``bottle-<slug>-net`` and on
``bottle-<slug>-out`` (``backends.egress.networks``) and runs mitmdump with the broker
addon as the host operator's uid, every capability dropped, read-only root. It mounts the
agent's egress folder (policy, credential, CA, log: ``backends.egress.folder``) at
``policy.SIDECAR_DIR`` and the addon's folder read-only; nothing of either is mounted into
the bottle.

The engine is the caller's: every function takes ``api``, the engine's SDK client. A
docker bottle passes its backend's own engine (the sidecar must sit on the engine its
bottle runs on); a smolvm machine has none, and ``backends.egress.relay`` gives it the
local one. The engine layer (``backends.docker.engine``: connection, errors) is the only
part of the docker backend this package uses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from backends import ownership
from backends.agent_files import EGRESS_UPSTREAM_CA, SIDECAR, sidecar_binds, target
from backends.base import LABEL_AGENT, LaunchError, ProgressFn
from backends.docker.engine import errors, quietly
from backends.egress import plan as egress
from backends.egress import policy as pol
from backends.egress.folder import write_sidecar_files
from backends.egress.image import ADDON, ADDON_DIR, ADDON_HOST_DIR, ensure_sidecar_image
from backends.egress.networks import ensure_network, subnets

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

SIDECAR_MEMORY = 256 * 1024**2
SIDECAR_PIDS = 128
#: What mitmdump prints once its proxy listens.
READY_TEXT = b"proxy listening"
#: mitmproxy imports for seconds; on a loaded host for tens of them.
READY_TIMEOUT = 120.0
#: The sidecar's hardening, as every bottle's (``backends.docker.plan``): no capability,
#: no new privileges; ``docker stop`` waits this long after SIGTERM.
CAP_DROP = ("ALL",)
SECURITY_OPT = ("no-new-privileges",)
STOP_TIMEOUT = 5
#: What a sidecar was made with: a sidecar of another revision (its command, mounts or
#: options changed since) is made again at the next ``up``.
REVISION_LABEL = "bottle-dash.sidecar-revision"
#: 2: listens on the bottle-side address only (``launch.py``), raw TCP relaying off;
#: 3: HTTP/1.1 only; 4: meters API responses (usage log, budget).
REVISION = "4"


#: The sidecar image's public roots (Debian's ca-certificates, one hashed file each).
SYSTEM_CA_DIR = "/etc/ssl/certs"
#: Replaced by the sidecar's launcher with its address on the bottle-side network.
LISTEN_MARK = "{listen}"
#: The sidecar's command, run from the addon's folder: ``launch.py`` finds the sidecar's
#: address on the bottle's network (``policy.json``'s ``internal``) and runs mitmdump
#: listening there only.
LAUNCHER = "launch.py"


def sidecar_labels(plan: BottlePlan) -> dict[str, str]:
    """The bottle's labels, and the sidecar's role and revision."""
    return {**plan.labels, egress.ROLE_LABEL: egress.ROLE_EGRESS, REVISION_LABEL: REVISION}


def mitmdump_argv(plan: BottlePlan, addon: str = ADDON) -> list[str]:
    """The sidecar's command: the launcher, then mitmdump with the broker addon listening on
    the bottle-side address only, lazy upstream connections (nothing is dialled before
    every check has passed), no raw TCP relaying (a tunnel's bytes are TLS the sidecar
    reads, or HTTP), HTTP/1.1 only (HTTP/2 adds a request target in ``:path`` and bodies
    of no announced size; every client the agent image holds speaks HTTP/1.1) and quiet
    output."""
    argv = [
        "python3",
        str(PurePosixPath(addon).parent / LAUNCHER),
        "python3",
        "-c",
        "from mitmproxy.tools.main import mitmdump; mitmdump()",
        "--mode",
        f"regular@{LISTEN_MARK}:{pol.PROXY_PORT}",
        "--set",
        f"confdir={pol.SIDECAR_DIR}",
        "--set",
        "connection_strategy=lazy",
        "--set",
        "rawtcp=false",
        "--set",
        "http2=false",
        "--set",
        "flow_detail=0",
        "-s",
        addon,
    ]
    if (plan.extra.get("egress") or {}).get("upstream_ca"):
        # mitmproxy trusts this file *instead of* its public roots; the image's hashed
        # system roots keep public hosts (the API, github.com) verified beside it.
        upstream = target(EGRESS_UPSTREAM_CA, SIDECAR)
        argv += ["--set", f"ssl_verify_upstream_trusted_ca={upstream}"]
        argv += ["--set", f"ssl_verify_upstream_trusted_confdir={SYSTEM_CA_DIR}"]
    return argv


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
    """Create the sidecar container of ``plan`` from ``image`` (not started)."""
    from docker.types import Mount

    info = plan.extra["egress"]
    host_config = api.create_host_config(
        mounts=[
            *(Mount(target=b.target, source=b.source, type="bind") for b in sidecar_binds(plan)),
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
        command=mitmdump_argv(plan, ADDON),
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
    write_sidecar_files(plan, internal=subnets(api, info["networks"]["internal"]))
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
        undo.callback(quietly, api.remove_container, ident, force=True)
        api.connect_container_to_network(ident, info["networks"]["outer"])
    else:
        ident = info["sidecar"]
    progress("starting the egress sidecar")
    api.start(ident)

    def ready() -> None:
        progress("waiting for the egress proxy")
        wait_ready(api, ident, plan.agent, since=since)

    return ready


def address(api: Any, plan: BottlePlan) -> str:
    """The sidecar's IPv4 address on the bottle's internal network."""
    info = plan.extra["egress"]
    nets = (api.inspect_container(info["sidecar"]).get("NetworkSettings") or {}).get("Networks")
    found = str(((nets or {}).get(info["networks"]["internal"]) or {}).get("IPAddress") or "")
    if not found:
        raise LaunchError(
            f"the egress sidecar of agent {plan.agent} has no address on "
            f"{info['networks']['internal']}",
            fix=f"bottle-dash rm --volumes {plan.agent}, then bottle-dash up {plan.agent}",
            agent=plan.agent,
        )
    return found


def start(api: Any, agent: str) -> None:
    """Start the agent's sidecar when it is stopped (a bottle never runs without it)."""
    if sidecar_state(api, agent) == "stopped":
        api.start(egress.sidecar_name(agent))


def stop(api: Any, agent: str) -> None:
    """Stop the agent's sidecar when it runs."""
    if sidecar_state(api, agent) == "running":
        api.stop(egress.sidecar_name(agent), timeout=STOP_TIMEOUT)
