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
from backends.docker import seccomp
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
#: The part of a git workspace mounted read-only in the bottle: the whole ``.git`` (a
#: directory, or the FILE of a worktree or submodule). A hook, ``commondir``, a config or
#: a ``.git`` file naming a copy, planted there, would run on the host the next time the
#: operator runs git in the workspace; a mount point cannot be renamed or removed either
#: (EBUSY), so the agent cannot move ``.git`` aside and write its own.
GIT_READ_ONLY = (".git",)
#: The seccomp profile's place in ``security_opt`` (the plan shows this, create sends the
#: profile's JSON: ``backends.docker.seccomp``).
SECCOMP_OPT = "seccomp=<bottle-dash profile: see extra.seccomp>"
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


def _inside(root: Path, path: Path) -> str | None:
    """``path`` (symlinks resolved) relative to ``root``, when it is inside it."""
    real = Path(os.path.realpath(path))
    try:
        rel = real.relative_to(root)
    except ValueError:
        return None
    return str(rel) if str(rel) != "." else None


def git_read_only(workspace: str | None) -> list[str]:
    """The workspace paths to mount read-only: ``.git`` (directory or file, never a
    symlink: see ``git_notes``), and for a ``.git`` FILE the git directory it names and
    that directory's ``commondir`` when those lie inside the workspace (a copy git would
    read as the repository). Writes nothing."""
    if not workspace:
        return []
    root = Path(os.path.realpath(workspace))
    git = root / ".git"
    if git.is_symlink() or not (git.is_dir() or git.is_file()):
        return []
    found = [".git"]
    gitdir = git
    if git.is_file():
        try:
            first = git.read_text(encoding="utf-8", errors="replace").partition("\n")[0]
        except OSError:
            first = ""
        if first.startswith("gitdir:"):
            target = Path(first[len("gitdir:") :].strip())
            gitdir = target if target.is_absolute() else root / target
            rel = _inside(root, gitdir)
            if rel and Path(root / rel).is_dir():
                found.append(rel)
    try:
        common = (gitdir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        common = ""
    if common:
        target = Path(common) if Path(common).is_absolute() else gitdir / common
        rel = _inside(root, target)
        if rel and Path(root / rel).is_dir() and rel not in found:
            found.append(rel)
    return [p for p in found if p == ".git" or not p.startswith(".git/")]


def git_notes(workspace: str | None) -> list[str]:
    """What of the workspace's repository cannot be mounted read-only, each a warning
    line for ``plan`` (the workspace check watches it instead)."""
    if not workspace:
        return []
    git = Path(workspace) / ".git"
    if git.is_symlink():
        return [
            f"the workspace's .git is a symlink ({os.readlink(git)}): it is not mounted "
            "read-only; the workspace check (workspace-clean) watches what git reads"
        ]
    return []


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
            "security_opt": [*SECURITY_OPT, SECCOMP_OPT],
            "seccomp": seccomp.plan_entry(),
            "setuid_files": "refused by the seccomp profile (and cleared by the workspace check)",
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
    plan.extra["warnings"] = [*plan.extra.get("warnings", []), *git_notes(plan.workspace)]
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
