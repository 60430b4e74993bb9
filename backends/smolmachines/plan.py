"""The smolmachines bottle's plan: the checks every backend shares, the machine's memory,
its image source, the egress part (``backends.egress.relay``), the read-only parts of a git
workspace; and the ``machine create`` argv a plan makes (``smolvm.create_argv``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from backends.agent_files import bottle_binds
from backends.base import GUEST_WORKSPACE, AgentSpec, BackendError
from backends.egress import relay
from backends.plan import check_name, git_notes, git_read_only, shared_plan
from backends.smolmachines import smolvm as cli

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan
    from backends.smolmachines import images

#: The repository is mounted read-only over the workspace (``-v HOST:GUEST:ro``): the
#: whole ``.git`` directory (as on docker: ``backends.plan.GIT_READ_ONLY``), so
#: the agent can neither write what the operator's git reads nor rename it (a mount point
#: cannot be). smolvm mounts directories only: a ``.git`` FILE (a worktree or submodule)
#: stays writable, ``plan`` warns of it and the workspace check watches it.
GIT_FILE_NOTE = (
    "the workspace's .git is a file (a worktree or submodule): smolvm mounts directories "
    "only, so the agent can rewrite it; the workspace check (workspace-clean) watches it"
)


#: A machine's memory when the agent sets none: docker's default (4 GiB; smolvm's own is
#: 8 GiB), but never more than half of the host's memory, so one runaway agent cannot
#: take the host's share of it. smolvm's ``--mem`` is a ceiling (touched pages only).
DEFAULT_MEMORY = 4 * 1024**3


def host_memory() -> int | None:
    """The host's physical memory in bytes (None when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def machine_memory(configured: int | None, host: int | None) -> tuple[int, str]:
    """The machine's ``--mem`` in bytes and why: the agent's ``memory`` when set, else
    ``DEFAULT_MEMORY`` capped at half of ``host`` (whole MiB)."""
    if configured is not None:
        return configured, "the agent's memory setting"
    if host and host // 2 < DEFAULT_MEMORY:
        capped = max(256, host // 2 // 2**20) * 2**20
        return capped, f"default 4 GiB, capped at half of the host's {host // 2**20} MiB"
    return DEFAULT_MEMORY, "default (4 GiB, as docker bottles)"


def prepare_plan(agent: AgentSpec, backend: str) -> BottlePlan:
    """Resolve the plan (checked like every backend's: ``backends.plan.shared_plan``)
    with its image source, and write the prompt file (0600) under the agent's state
    dir. Touches neither smolvm nor Docker."""
    from backends.smolmachines import images

    check_name(agent)  # before the image: a bad name is the first thing to say
    base = agent.source.parent if agent.source else None
    source = images.resolve(agent.image, base=base)
    memory, memory_reason = machine_memory(agent.memory, host_memory())
    plan = shared_plan(
        agent,
        backend,
        cpus=agent.cpus,
        memory=memory,
        pids=agent.pids,
        extra={
            "memory_reason": memory_reason,
            "source": source.to_dict(),
            "net": True,
            "workload": list(cli.KEEPALIVE),
            "machine_user": cli.MACHINE_USER,
            # smolvm has no per-machine pids limit; the VM's own kernel bounds it.
            "pids_limit_applied": False,
        },
    )
    relay.seal(plan, agent)
    ws = Path(plan.workspace) if plan.workspace else None
    read_only = [r for r in git_read_only(plan.workspace) if ws and (ws / r).is_dir()]
    plan.extra["read_only_in_workspace"] = read_only
    notes = git_notes(plan.workspace, agent.name)
    if ws and (ws / ".git").is_file() and not (ws / ".git").is_symlink():
        notes.append(GIT_FILE_NOTE)
        plan.extra["git_file_writable"] = True
    # No host seccomp for a VM (its own kernel): setuid/setgid files are cleared by
    # the workspace check instead.
    plan.extra["setuid_files"] = "cleared by the workspace check (no host seccomp)"
    plan.extra["warnings"] = [*plan.extra.get("warnings", []), *notes]
    return plan


def create_argv(smolvm: str, plan: BottlePlan, source: images.CreateSource) -> list[str]:
    """The ``machine create`` argv of ``plan`` from a materialized image source."""
    sealed = plan.extra.get("egress") or {}
    allow = str(sealed.get("allow_cidr") or "")
    if allow == relay.AT_UP:
        raise BackendError(f"the egress sidecar of {plan.bottle} is not up: no address to allow")
    volumes = [
        f"{b.source}:{b.target}:ro" if b.read_only else f"{b.source}:{b.target}"
        for b in bottle_binds(plan)
    ]
    return cli.create_argv(
        smolvm,
        plan.bottle,
        image=source.image,
        from_pack=source.from_pack,
        labels=plan.labels,
        # Sealed: the sidecar's address and nothing else (``--allow-cidr`` turns the
        # network on); unsealed: the whole network.
        allow_cidrs=[allow] if allow else [],
        # ... and DNS only to it (where no resolver listens): no query leaves.
        dns=allow.split("/")[0] if allow else None,
        net=not allow and bool(plan.extra.get("net", True)),
        volumes=volumes,
        workdir=GUEST_WORKSPACE,
        user=str(plan.extra.get("machine_user", cli.MACHINE_USER)),
        cpus=plan.cpus,
        memory=plan.memory,
        workload=plan.extra.get("workload", cli.KEEPALIVE),
    )
