"""The docker bottle's plan: names, limits and guest layout resolved from an agent,
before anything touches the engine (the last launched plan is kept by ``paths.save_plan``).
The egress part is ``backends.egress.plan.seal_plan``'s, the read-only parts of a git
workspace ``backends.plan.git_read_only``'s (both backends share them)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from backends import paths
from backends.agent_files import GROUP, PASSWD
from backends.base import (
    GUEST_HOME,
    AgentSpec,
    bottle_name,
)
from backends.docker import seccomp
from backends.egress.plan import network_name, seal_plan
from backends.plan import git_notes, git_read_only, shared_plan

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
#: The seccomp profile's place in ``security_opt`` (the plan shows this, create sends the
#: profile's JSON: ``backends.docker.seccomp``).
SECCOMP_OPT = "seccomp=<bottle-dash profile: see extra.seccomp>"
IMAGE_FIX = "build it with `bottle-dash image build`, or `docker pull` / `docker load` it"


def image_fix(image: str) -> str:
    """How to get a missing ``image``: the agent image (``bottle-dash-agent``, any tag) is
    built, with its tag when not the default; any other image is the operator's own."""
    repository, _, tag = image.partition(":")
    if repository == "bottle-dash-agent" and "@" not in image:
        if tag in ("", "latest"):
            return IMAGE_FIX
        return f"build it with `bottle-dash image build --tag {image}`, or `docker load` it"
    return (
        f"{image} is not an image bottle-dash builds: `docker pull {image}` or "
        f"`docker load` it, or change `image` in the agent's config"
    )


#: Where the home volume is mounted: /home, so that /home/node is a directory inside the
#: volume whose owner provisioning can set through an archive (the engine cannot change
#: the owner of a mount point, and a bottle without capabilities cannot chown).
HOME_MOUNT = "/home"
#: On the home volume: where it is mounted. Volumes made before it was /home lack it and
#: stay mounted at /home/node (their files sit at the volume's top).
LABEL_HOME_MOUNT = "bottle-dash.home-mount"
#: The generated account files (the agent's uid:gid as ``node``), mounted read-only.
PASSWD_FILE = PASSWD.path
GROUP_FILE = GROUP.path


def home_volume_name(agent: str) -> str:
    """The volume holding ``/home/node``."""
    return bottle_name(agent, "-home")


def prepare_plan(agent: AgentSpec, backend: str) -> BottlePlan:
    """Resolve the plan of ``agent`` and write its prompt file (mode 0600) to
    ``paths.agent_state_dir(agent)/prompt.md``. Talks to no engine.

    The checks (name, workspace, skills, env) are ``backends.plan.shared_plan``'s. Limits
    the agent leaves unset: ``pids`` 512, ``memory`` 4 GiB, ``cpus`` 2 (or the host's CPU
    count when smaller).
    """
    cpus = agent.cpus if agent.cpus is not None else min(DEFAULT_CPUS, float(os.cpu_count() or 1))
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
            "passwd": str(paths.agent_path(agent.name, PASSWD)),
            "group": str(paths.agent_path(agent.name, GROUP)),
            "source": str(agent.source) if agent.source else None,
        },
    )
    seal_plan(plan, agent)
    plan.extra["read_only_in_workspace"] = git_read_only(plan.workspace)
    plan.extra["warnings"] = [
        *plan.extra.get("warnings", []),
        *git_notes(plan.workspace, agent.name),
    ]
    return plan
