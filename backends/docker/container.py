"""The bottle's container: found (read-only, by name and labels), created with its
hardening, mounts and limits, and checked against its workspace's owner before a start.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends import ownership
from backends.agent_files import bottle_binds
from backends.base import (
    GUEST_WORKSPACE,
    LABEL_AGENT,
    BottleNotFound,
    LaunchError,
    bottle_name,
)
from backends.docker.engine import Engine, EngineNotFound, errors

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan


def inspect(api: Any, container: str) -> dict[str, Any] | None:
    """The inspected ``container`` (SDK client ``api``), or None when there is none."""
    try:
        return dict(api.inspect_container(container))
    except errors.NotFound:
        return None


def ours(engine: Engine, agent: str) -> dict[str, Any]:
    """The inspected container of ``agent`` (one read-only call), or ``BottleNotFound``."""
    try:
        info: dict[str, Any] | None = engine.get(
            f"/containers/{urllib.parse.quote(bottle_name(agent))}/json"
        )
    except EngineNotFound:
        info = None
    labels = ((info or {}).get("Config") or {}).get("Labels") or {}
    if info is None or labels.get(LABEL_AGENT) != agent:
        raise BottleNotFound(
            f"no bottle for agent {agent}", fix=f"bottle-dash up {agent}", agent=agent
        )
    if not ownership.is_mine(labels):
        raise ownership.foreign(
            agent, f"bottle {bottle_name(agent)}", labels.get(ownership.LABEL_OWNER)
        )
    return info


def create(api: Any, plan: BottlePlan, home_mount: str) -> str:
    """Create the container of ``plan`` (not started) with the home volume at
    ``home_mount`` and the host paths ``agent_files.bottle_binds`` names; returns its id."""
    from docker.types import Mount

    from backends.docker import seccomp
    from backends.docker.plan import CAP_DROP, KEEPALIVE, SECURITY_OPT, STOP_TIMEOUT, TMPFS

    mounts = [Mount(target=home_mount, source=plan.home_volume, type="volume")]
    if plan.extra.get("repo"):
        # The agent's repository copy (backends.docker.copy), made before the container.
        mounts.append(
            Mount(target=GUEST_WORKSPACE, source=plan.extra["repo"]["volume"], type="volume")
        )
    for bind in bottle_binds(plan):
        mounts.append(
            Mount(target=bind.target, source=bind.source, type="bind", read_only=bind.read_only)
        )
    host_config = api.create_host_config(
        mounts=mounts,
        network_mode=plan.network,
        cap_drop=list(CAP_DROP),
        read_only=bool(plan.extra.get("read_only_root", True)),
        tmpfs=dict(plan.extra.get("tmpfs") or TMPFS),
        # The profile's text, as the docker CLI sends a --security-opt seccomp=FILE.
        security_opt=[*SECURITY_OPT, f"seccomp={seccomp.profile_text()}"],
        pids_limit=plan.pids,
        mem_limit=plan.memory,
        # No swap beyond the limit: a runaway agent hits its limit instead of
        # dragging the host into swap (docker's default allows twice the limit).
        memswap_limit=plan.memory,
        nano_cpus=int(round(plan.cpus * 1e9)) if plan.cpus else None,
    )
    created = api.create_container(
        plan.image,
        name=plan.bottle,
        hostname=plan.bottle,
        entrypoint=list(KEEPALIVE),
        command=[],
        user=f"{plan.uid}:{plan.gid}",
        working_dir=GUEST_WORKSPACE,
        environment=dict(plan.env),
        labels=dict(plan.labels),
        host_config=host_config,
        stop_timeout=STOP_TIMEOUT,
    )
    return str(created["Id"])


def check_user(info: dict[str, Any], agent: str) -> None:
    """Refuse to start a bottle whose agent would run as someone other than its
    workspace's owner (a bottle made before bottles ran as the owner, or a workspace
    that changed hands since): it could not write there, or would leave files owned by
    the wrong uid. The fix recreates the container; its home volume is kept."""
    from backends.agent_user import agent_user
    from backends.docker.accounts import user_ids

    source = next(
        (
            str(m.get("Source"))
            for m in info.get("Mounts") or []
            if m.get("Destination") == GUEST_WORKSPACE
            and m.get("Source")
            and m.get("Type", "bind") == "bind"
        ),
        None,
    )
    if source is None or not Path(source).is_dir():
        return
    want = agent_user(source)
    have = user_ids(info)
    if have != (want.uid, want.gid):
        raise LaunchError(
            f"the bottle of agent {agent} runs the agent as uid {have[0]}:{have[1]}, but "
            f"its workspace {source} belongs to {want.uid}:{want.gid}, so the agent "
            "could not write there as its owner",
            fix=f"recreate the bottle: `bottle-dash rm {agent}` then `bottle-dash up "
            f"{agent}` (rm without --volumes keeps the home, and with it the conversations)",
            agent=agent,
        )


def sealed_network(api: Any, plan: BottlePlan) -> bool:
    """Whether the bottle's network is a sealed (internal) one."""
    try:
        return bool(api.inspect_network(plan.network).get("Internal"))
    except errors.NotFound:
        return False


def _text(data: Any) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)


def bottle_logs(engine: Engine, info: dict[str, Any], agent: str, tail: int = 200) -> str:
    """The ``l`` screen's text for a docker bottle: its state (since when, restarts, the
    last exit, an OOM kill), its main process's output (``sleep infinity`` writes none:
    claude runs in the pane), and the last ``tail`` lines of its egress sidecar (each
    request the broker allowed or denied, and its own errors)."""
    from backends.egress.plan import sidecar_name

    state = info.get("State") or {}
    lines = [f"== bottle {bottle_name(agent)}: {state.get('Status', 'unknown')} =="]
    lines.append(f"started at {state.get('StartedAt', '?')}, created {info.get('Created', '?')}")
    if state.get("ExitCode") and not str(state.get("FinishedAt", "")).startswith("0001"):
        lines.append(f"last exit: code {state.get('ExitCode')} at {state.get('FinishedAt')}")
    if state.get("OOMKilled"):
        lines.append("killed for memory (OOM): raise `memory` in its config")
    if state.get("Error"):
        lines.append(f"engine error: {state['Error']}")
    with engine.translating() as api:
        own = _text(api.logs(info["Id"], stdout=True, stderr=True, tail=tail)).rstrip()
        lines += ["", "== its main process ==", own or "(no output: claude runs in the pane)"]
        sidecar = inspect(api, sidecar_name(agent))
        if sidecar is None:
            lines += ["", f"== egress sidecar {sidecar_name(agent)}: none (unsealed) =="]
        else:
            status = (sidecar.get("State") or {}).get("Status", "unknown")
            out = _text(api.logs(sidecar["Id"], stdout=True, stderr=True, tail=tail)).rstrip()
            lines += [
                "",
                f"== egress sidecar {sidecar_name(agent)}: {status}, last {tail} lines ==",
            ]
            lines.append(out or "(no output yet)")
    return "\n".join(lines) + "\n"
