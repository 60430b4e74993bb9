"""The docker bottle's plan: names, limits and guest layout resolved from an agent,
before anything touches the engine (the last launched plan is kept by ``paths.save_plan``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from backends import paths
from backends.base import (
    GUEST_HOME,
    AgentSpec,
    bottle_name,
)
from backends.egress import plan as egress
from backends.plan import shared_plan

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

#: Limits used when the agent sets none. Generous for one agent session (claude plus
#: node, git and a test run) yet small enough that a runaway agent cannot starve the host.
DEFAULT_PIDS = 512
DEFAULT_MEMORY = 4 * 1024**3
DEFAULT_CPUS = 2.0
#: Seconds ``stop`` waits after SIGTERM; the keep-alive exits at once on TERM.
STOP_TIMEOUT = 5
#: The container's main process: it only keeps the bottle up, and exits on SIGTERM at
#: once (as PID 1 a shell ignores TERM unless it traps it, and `docker stop` would wait).
KEEPALIVE = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
#: The hardening every container gets; the dry run shows these same lists.
CAP_DROP = ("ALL",)
SECURITY_OPT = ("no-new-privileges",)
#: The root filesystem is read-only; these are the only writable places outside the home
#: volume and the workspace, each a size-limited tmpfs (its pages count against the
#: memory limit). exec is allowed: build tools run binaries from /tmp.
TMPFS = {
    "/tmp": "rw,nosuid,nodev,exec,size=512m,mode=1777",
    "/var/tmp": "rw,nosuid,nodev,exec,size=64m,mode=1777",
}
#: Paths of a git workspace mounted read-only in the bottle: a hook or a
#: ``core.hooksPath``/``core.fsmonitor`` setting planted there would run on the host the
#: next time the operator runs git in the workspace.
GIT_READ_ONLY = (".git/hooks", ".git/config")
IMAGE_FIX = "build it with `bottle-dash image build`, or `docker pull` / `docker load` it"
#: Where the home volume is mounted: /home, so that /home/node is a directory inside the
#: volume whose owner provisioning can set through an archive (the engine cannot change
#: the owner of a mount point, and a bottle without capabilities cannot chown).
HOME_MOUNT = "/home"
#: On the home volume: where it is mounted. Volumes made before it was /home lack it and
#: stay mounted at /home/node (their files sit at the volume's top).
LABEL_HOME_MOUNT = "bottle-dash.home-mount"
#: The generated account files (the agent's uid:gid as ``node``), mounted read-only.
PASSWD_FILE = "passwd"
GROUP_FILE = "group"


def network_name(agent: str) -> str:
    """The per-bottle network (for a sealed bottle, internal: its sidecar's other network,
    ``egress.outer_network_name``, is the only way out)."""
    return bottle_name(agent, "-net")


def home_volume_name(agent: str) -> str:
    """The volume holding ``/home/node``."""
    return bottle_name(agent, "-home")


def git_read_only(workspace: str | None) -> list[str]:
    """The workspace paths to mount read-only (``GIT_READ_ONLY``) that exist; a ``.git``
    folder without ``hooks`` gets an empty one first, so the agent cannot create it."""
    if not workspace:
        return []
    git = Path(workspace) / ".git"
    if not git.is_dir() or git.is_symlink():
        return []
    hooks = git / "hooks"
    if not hooks.exists():
        hooks.mkdir()
    found = []
    for rel in GIT_READ_ONLY:
        path = Path(workspace) / rel
        if path.exists() and not path.is_symlink():
            found.append(rel)
    return found


def prepare_plan(agent: AgentSpec, backend: str) -> BottlePlan:
    """Resolve the plan of ``agent`` and write its prompt file (mode 0600) to
    ``paths.agent_state_dir(agent)/prompt.md``. Talks to no engine.

    The checks (name, workspace, skills, env) are ``backends.plan.shared_plan``'s. Limits
    the agent leaves unset: ``pids`` 512, ``memory`` 4 GiB, ``cpus`` 2 (or the host's CPU
    count when smaller).
    """
    cpus = agent.cpus if agent.cpus is not None else min(DEFAULT_CPUS, float(os.cpu_count() or 1))
    state = paths.agent_state_dir(agent.name)
    plan = shared_plan(
        agent,
        backend,
        cpus=cpus,
        memory=agent.memory if agent.memory is not None else DEFAULT_MEMORY,
        pids=agent.pids if agent.pids is not None else DEFAULT_PIDS,
        network=network_name(agent.name),
        home_volume=home_volume_name(agent.name),
        extra={
            "cap_drop": list(CAP_DROP),
            "read_only_root": True,
            "tmpfs": dict(TMPFS),
            "security_opt": list(SECURITY_OPT),
            "command": list(KEEPALIVE),
            "home": GUEST_HOME,
            "home_mount": HOME_MOUNT,
            "passwd": str(state / PASSWD_FILE),
            "group": str(state / GROUP_FILE),
            "source": str(agent.source) if agent.source else None,
        },
    )
    seal_plan(plan, agent)
    plan.extra["read_only_in_workspace"] = git_read_only(plan.workspace)
    return plan


def seal_plan(plan: BottlePlan, agent: AgentSpec) -> None:
    """The egress part of ``plan`` (unless configured unsealed): the sidecar container
    and networks of both backends, reached by name until a backend learns its address."""
    egress.apply(
        plan,
        agent,
        proxy_host=egress.sidecar_name(agent.name),
        networks={
            "internal": network_name(agent.name),
            "outer": egress.outer_network_name(agent.name),
        },
    )
    if egress.is_sealed(plan):
        # Here, not at the top: the image builder (tempfile, locks) is not for `ls`.
        from backends.egress.image import sidecar_tag

        plan.extra["egress"]["image"] = sidecar_tag()
