"""The docker bottle's plan: names, limits and guest layout resolved from an agent,
before anything touches the engine (the last launched plan is kept by ``paths.save_plan``)."""

from __future__ import annotations

import os
from pathlib import Path

from backends import paths
from backends.base import (
    GUEST_HOME,
    GUEST_PROMPT,
    GUEST_USER,
    AgentSpec,
    BottlePlan,
    LaunchError,
    ProvisionError,
    bottle_labels,
    bottle_name,
    is_slug,
    skill_dest,
)
from backends.claude import claude_args, has_prompt
from backends.owner import agent_user

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
    """The per-bottle network."""
    return f"{bottle_name(agent)}-net"


def home_volume_name(agent: str) -> str:
    """The volume holding ``/home/node``."""
    return f"{bottle_name(agent)}-home"


def prepare_plan(agent: AgentSpec, backend: str = "docker") -> BottlePlan:
    """Resolve the plan of ``agent`` and write its prompt file (mode 0600) to
    ``paths.agent_state_dir(agent)/prompt.md``. Talks to no engine.

    Limits the agent leaves unset: ``pids`` 512, ``memory`` 4 GiB, ``cpus`` 2 (or the
    host's CPU count when smaller). A skill directory or workspace that does not exist
    raises ``ProvisionError`` naming it.
    """
    where = f" (from {agent.source})" if agent.source else ""
    if not is_slug(agent.name):
        raise LaunchError(
            f"agent name {agent.name!r}{where} is not a slug",
            fix="use lower-case letters, digits and '-', at most 40 characters",
            agent=agent.name,
        )
    workspace: str | None = None
    if agent.workspace is not None:
        ws = Path(agent.workspace).expanduser().resolve()
        if not ws.is_dir():
            raise ProvisionError(
                f"workspace {ws} of agent {agent.name}{where} is not a directory",
                fix=f"create it (`mkdir -p {ws}`) or change `workspace`",
                agent=agent.name,
            )
        workspace = str(ws)
    skills: list[tuple[str, str]] = []
    for skill in agent.skills:
        src = Path(skill).expanduser().resolve()
        if not src.is_dir():
            raise ProvisionError(
                f"skill {skill} of agent {agent.name}{where} is not a directory",
                fix="create it or remove it from `skills`",
                agent=agent.name,
            )
        if not src.name:  # "/": its dest would be the skills folder itself
            raise ProvisionError(
                f"skill {skill} of agent {agent.name}{where} has no directory name",
                fix="point `skills` at a skill's own directory",
                agent=agent.name,
            )
        dest = skill_dest(src)
        if any(d == dest for _, d in skills):
            raise ProvisionError(
                f"two skills of agent {agent.name}{where} are both named {src.name!r}",
                fix="rename one of the directories",
                agent=agent.name,
            )
        skills.append((str(src), dest))
    env = {str(k): str(v) for k, v in sorted(agent.env.items())}
    for key in env:
        if not key or "=" in key or "\0" in key:
            raise LaunchError(
                f"env key {key!r} of agent {agent.name}{where} is not a variable name",
                agent=agent.name,
            )
    prompt_host = paths.write_prompt(agent.name, agent.prompt)
    nonempty = has_prompt(agent.prompt)
    cpus = agent.cpus if agent.cpus is not None else min(DEFAULT_CPUS, float(os.cpu_count() or 1))
    user = agent_user(workspace)
    state = paths.agent_state_dir(agent.name)
    return BottlePlan(
        agent=agent.name,
        backend=backend,
        bottle=bottle_name(agent.name),
        image=agent.image,
        labels=bottle_labels(agent.name, backend),
        env=env,
        workspace=workspace,
        prompt_host=str(prompt_host),
        prompt_guest=GUEST_PROMPT,
        prompt_nonempty=nonempty,
        skills=skills,
        claude_args=claude_args(GUEST_PROMPT, nonempty, agent.claude_args, status_hooks=True),
        cpus=cpus,
        memory=agent.memory if agent.memory is not None else DEFAULT_MEMORY,
        pids=agent.pids if agent.pids is not None else DEFAULT_PIDS,
        network=network_name(agent.name),
        home_volume=home_volume_name(agent.name),
        user=GUEST_USER,
        uid=user.uid,
        gid=user.gid,
        uid_reason=user.reason,
        extra={
            "cap_drop": list(CAP_DROP),
            "security_opt": list(SECURITY_OPT),
            "command": list(KEEPALIVE),
            "home": GUEST_HOME,
            "home_mount": HOME_MOUNT,
            "passwd": str(state / PASSWD_FILE),
            "group": str(state / GROUP_FILE),
            "source": str(agent.source) if agent.source else None,
        },
        status_dir=str(paths.ensure_status_dir(agent.name, user.uid)),
    )


def recorded_env(agent: str, fallback: BottlePlan | None = None) -> dict[str, str]:
    """The env of the plan the last launch recorded; the container's own env applies to
    every exec anyway, so a missing or unreadable record only drops the overrides."""
    recorded = paths.saved_plan(agent)
    if recorded is not None:
        return {str(k): str(v) for k, v in recorded.env.items()}
    return dict(fallback.env) if fallback else {}
