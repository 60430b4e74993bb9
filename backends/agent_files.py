"""Every per-agent file: what it holds, who writes it, and how it reaches the agent's bottle
or its egress sidecar. ``backends.paths`` says where each is on the host.

Each agent has a state folder, ``$XDG_STATE_HOME/bottle-dash/agents/<slug>/`` (0700).
``AGENT_FILES`` names every file in it, and the operator's own paths a bottle gets (the
workspace, the skills), each with its ways in (``Reach``):

- ``BIND``: the engine mounts the host path into the bottle (docker: a bind ``Mount``;
  smolvm: ``-v``); ``bottle_binds`` lists them for both backends;
- ``COPY``: copied into the bottle at provisioning (docker: the engine's archive API;
  smolvm: ``cp_in``), owned by the agent;
- ``EXEC_ENV``: read on the host by ``docker exec --env-file`` at each exec: the bottle
  gets the variables, never the file;
- ``SIDECAR``: in the egress folder, which is bind-mounted into the sidecar only
  (``sidecar_binds``), never into the bottle;
- ``VOLUME``: not a host path at all: an engine volume, filled once through the archive
  API (the repository copy, ``backends.repo_copy``), mounted into the bottle;
- no reach at all: the file stays on the host.

A new per-agent file (a repository copy, a git credential for the sidecar, a usage log)
is an entry here with one of these ways; where no host path can be mounted (a remote
engine, Kubernetes) a backend changes how it carries out a way, not this table.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, NamedTuple

from backends.claude import CLAUDE_SETTINGS
from backends.egress import ledger
from backends.egress import policy as pol
from backends.guest import (
    GUEST_CA,
    GUEST_CLAUDE_JSON,
    GUEST_HOME,
    GUEST_PROMPT,
    GUEST_SKILLS,
    GUEST_STATUS_DIR,
    GUEST_WORKSPACE,
)

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

#: The ways a per-agent file reaches a bottle or its sidecar (see the module docstring).
BIND = "bind mount into the bottle"
COPY = "copied into the bottle at provisioning"
EXEC_ENV = "read by each exec on the host"
SIDECAR = "mounted into the sidecar only"
VOLUME = "an engine volume mounted into the bottle, filled through the archive API"

DOCKER = "docker"
SMOLMACHINES = "smolmachines"
KUBERNETES = "kubernetes"
BOTH = (DOCKER, SMOLMACHINES)

#: How each way is carried out on Kubernetes, where a pod can mount no host path: the
#: routes stay those of the table, the means are the API's (``backends.kubernetes``).
KUBE_WAYS = {
    BIND: "the workspace: copied into the pod's workspace PersistentVolumeClaim through "
    "the exec API at the first launch (the account files and the status folder are not "
    "used: the pod runs as the image's node, a sealed bottle's status goes to its sidecar)",
    COPY: "copied into the agent container through the exec API (a tar on stdin)",
    EXEC_ENV: "a Secret the agent container's environment comes from (envFrom)",
    SIDECAR: "a Secret mounted into the egress container only, copied there into an "
    "emptyDir the sidecar alone writes (its log stays in the pod)",
}


class Reach(NamedTuple):
    """One way a per-agent file reaches a bottle or its sidecar: the route and where the
    file appears there (a guest path, a path in the sidecar; "" for ``EXEC_ENV``)."""

    route: str
    target: str = ""
    read_only: bool = False


class AgentFile(NamedTuple):
    """One per-agent host file (or folder) and how it reaches a bottle or its sidecar."""

    #: Relative to the agent's state folder ("" for an operator's path: ``config_key``).
    path: str
    #: What it holds.
    holds: str
    #: Who writes it: ``host`` (bottle-dash), ``sidecar`` or ``bottle``.
    writer: str = "host"
    #: How it reaches a bottle or its sidecar; () when it stays on the host.
    reaches: tuple[Reach, ...] = ()
    #: Its mode on the host (a folder's too); None where it is the operator's.
    mode: int | None = 0o600
    #: The backends whose bottles have it.
    backends: tuple[str, ...] = BOTH
    #: For an operator's path: the config key that names it.
    config_key: str = ""

    @property
    def name(self) -> str:
        """The file's own name (the last part of ``path``)."""
        return PurePosixPath(self.path).name


#: The agent's prompt as its last ``prepare`` wrote it (mode 0600), copied into the bottle.
PROMPT_FILE = "prompt.md"
#: The plan of an agent's last launch, in its state dir (mode 0600: it holds the env).
PLAN_FILE = "plan.json"
#: The agent's status directory in its state dir: the only host directory mounted
#: writable into the bottle besides the workspace (claude's hooks write one word there).
STATUS_DIR = "status"
#: The agent's egress folder, mounted into its sidecar only, and the sidecar's log in it.
EGRESS_DIR = "egress"
EGRESS_LOG = pol.LOG_FILE

PROMPT = AgentFile(
    PROMPT_FILE,
    "the agent's prompt as its last plan wrote it (empty too: a stale one never lingers)",
    reaches=(Reach(COPY, GUEST_PROMPT),),
)
PLAN = AgentFile(PLAN_FILE, "the plan of the last launch, read back by attach (holds the env)")
EXEC_ENV_FILE = AgentFile(
    "exec.env",
    "the agent's env for `docker exec --env-file`: its values stay out of every argv",
    reaches=(Reach(EXEC_ENV),),
    backends=(DOCKER,),
)
PASSWD = AgentFile(
    "passwd",
    "the image's /etc/passwd with `node` as the agent's uid:gid",
    reaches=(Reach(BIND, "/etc/passwd", read_only=True),),
    mode=0o644,
    backends=(DOCKER,),
)
GROUP = AgentFile(
    "group",
    "the image's /etc/group with the agent's gid",
    reaches=(Reach(BIND, "/etc/group", read_only=True),),
    mode=0o644,
    backends=(DOCKER,),
)
STATUS = AgentFile(
    STATUS_DIR,
    "an unsealed bottle's status folder: its hooks write their word to `state` in it "
    "(hostile input: backends.status_file); a sealed bottle gets none",
    writer="bottle",
    reaches=(Reach(BIND, GUEST_STATUS_DIR),),
    mode=0o700,
)
EGRESS = AgentFile(
    EGRESS_DIR,
    "the sidecar's folder: what the host writes for it and what it keeps",
    reaches=(Reach(SIDECAR, pol.SIDECAR_DIR),),
    mode=0o700,
)


def _in_egress(
    name: str, holds: str, *, writer: str = "host", copy_to: str = "", mode: int = 0o600
) -> AgentFile:
    """An entry in the egress folder: it reaches the sidecar with the folder (and the
    bottle too, copied to ``copy_to``, when given)."""
    reaches: tuple[Reach, ...] = (Reach(SIDECAR, f"{pol.SIDECAR_DIR}/{name}"),)
    if copy_to:
        reaches += (Reach(COPY, copy_to),)
    return AgentFile(f"{EGRESS_DIR}/{name}", holds, writer, reaches, mode)


EGRESS_POLICY = _in_egress(
    pol.POLICY_FILE, "the sidecar's policy: allowlist, API host, placeholder, its networks"
)
EGRESS_CREDENTIAL = _in_egress(pol.CREDENTIAL_FILE, "the real credential the sidecar swaps in")
EGRESS_PLACEHOLDER = _in_egress(
    "placeholder",
    "the bottle's stand-in for the credential (reaches the bottle in its env, not as a file)",
)
EGRESS_CA = _in_egress(pol.CA_FILE, "the per-bottle CA's key and certificate (mitmproxy's)")
EGRESS_CA_CERT = _in_egress(
    pol.CA_CERT_FILE,
    "the per-bottle CA's certificate alone: the bottle's trust",
    copy_to=GUEST_CA,
    mode=0o644,
)
EGRESS_UPSTREAM_CA = _in_egress(
    "upstream-ca.pem", "the CAs of `upstream_ca` the sidecar trusts upstream"
)
EGRESS_LOG_FILE = _in_egress(
    pol.LOG_FILE, "one JSON line per decision; rotated into egress.log.1", writer="sidecar"
)
EGRESS_USAGE_LOG = _in_egress(
    ledger.USAGE_FILE,
    "one JSON line per API response: time, model, token counts, ids (never a prompt or "
    "an answer); rotated into usage.log.1, each new file opening with the totals before it",
    writer="sidecar",
)
EGRESS_BUDGET = _in_egress(
    ledger.BUDGET_FILE, "the agent's budget and price factor, read again by the sidecar live"
)
EGRESS_STATUS = _in_egress(
    pol.STATUS_FILE, "a sealed bottle's status word, kept by its sidecar", writer="sidecar"
)
SEAL_RECORD = AgentFile("seal.json", "the last escape probe run's results (the seal badge)")
LAUNCH_LOCK = AgentFile(
    "launch.lock", "held while one bottle-dash launches, starts or removes the agent's bottle"
)
WORKSPACE_BASELINE = AgentFile(
    "workspace-baseline.json", "what the workspace check found at the first up"
)
WORKSPACE_CLEARED = AgentFile(
    "workspace-cleared.json", "the setuid/setgid bits the workspace check cleared"
)
SEED_CLAUDE_JSON = AgentFile(
    "seed-.claude.json",
    "~/.claude.json as provisioning merged it, staged for the copy into the machine",
    reaches=(Reach(COPY, GUEST_CLAUDE_JSON),),
    backends=(SMOLMACHINES, KUBERNETES),
)
SEED_SETTINGS = AgentFile(
    "seed-settings.json",
    "~/.claude/settings.json as provisioning merged it, staged for the copy",
    reaches=(Reach(COPY, f"{GUEST_HOME}/{CLAUDE_SETTINGS}"),),
    backends=(SMOLMACHINES, KUBERNETES),
)
WORKSPACE = AgentFile(
    "",
    "the operator's workspace; its `.git` (and a worktree's git folder) mounted read-only over it",
    writer="bottle",
    reaches=(Reach(BIND, GUEST_WORKSPACE),),
    mode=None,
    config_key="workspace",
)
COPY_RECORD = AgentFile(
    "copy.json", "the repository, base commit and branch the agent's copy was made from"
)
SETUP_LOG = AgentFile(
    "setup.log", "the output of the agent's `setup` commands, run in the bottle at the first up"
)
SETUP_RESULT = AgentFile(
    "setup.json", "how `setup` ended: ok, or the command that failed, its exit and last lines"
)
REPO_COPY = AgentFile(
    "",
    "the agent's own copy of the operator's repository (`repo`), on its branch; made on "
    "the host by bottle-dash's git, never a path of the host repository",
    writer="bottle",
    # docker: an engine volume; smolmachines: the machine's own disk, filled by cp_in
    reaches=(Reach(VOLUME, GUEST_WORKSPACE), Reach(COPY, GUEST_WORKSPACE)),
    mode=None,
    config_key="repo",
)
SKILLS = AgentFile(
    "",
    "the operator's skill folders, one per skill",
    reaches=(Reach(COPY, GUEST_SKILLS),),
    mode=None,
    config_key="skills",
)

#: Every per-agent file, in the state folder first, then the operator's paths.
AGENT_FILES: tuple[AgentFile, ...] = (
    PROMPT,
    PLAN,
    EXEC_ENV_FILE,
    PASSWD,
    GROUP,
    STATUS,
    EGRESS,
    EGRESS_POLICY,
    EGRESS_CREDENTIAL,
    EGRESS_PLACEHOLDER,
    EGRESS_CA,
    EGRESS_CA_CERT,
    EGRESS_UPSTREAM_CA,
    EGRESS_LOG_FILE,
    EGRESS_USAGE_LOG,
    EGRESS_BUDGET,
    EGRESS_STATUS,
    SEAL_RECORD,
    LAUNCH_LOCK,
    WORKSPACE_BASELINE,
    WORKSPACE_CLEARED,
    SEED_CLAUDE_JSON,
    SEED_SETTINGS,
    COPY_RECORD,
    SETUP_LOG,
    SETUP_RESULT,
    WORKSPACE,
    REPO_COPY,
    SKILLS,
)


class Bind(NamedTuple):
    """A host path the engine mounts: ``source`` at ``target``."""

    source: str
    target: str
    read_only: bool = False


def target(entry: AgentFile, route: str) -> str:
    """Where ``entry`` appears when it reaches a bottle or sidecar by ``route``."""
    return next(r.target for r in entry.reaches if r.route == route)


def bottle_binds(plan: BottlePlan) -> list[Bind]:
    """The host paths ``plan``'s bottle mounts (the ``BIND`` entries), in mount order: the
    account files (docker), the workspace, the read-only parts over it, the status folder
    (an unsealed bottle). Both backends mount exactly these (the docker home is a volume)."""
    binds = [
        Bind(str(plan.extra[key]), target(entry, BIND), read_only=True)
        for key, entry in (("passwd", PASSWD), ("group", GROUP))
        if plan.extra.get(key)
    ]
    if plan.workspace:
        top = target(WORKSPACE, BIND)
        binds.append(Bind(plan.workspace, top))
        for rel in plan.extra.get("read_only_in_workspace") or []:
            # After the workspace: mounted over its own directory, read-only.
            binds.append(Bind(f"{plan.workspace}/{rel}", f"{top}/{rel}", read_only=True))
    if plan.status_dir:
        binds.append(Bind(plan.status_dir, target(STATUS, BIND)))
    return binds


def sidecar_binds(plan: BottlePlan) -> list[Bind]:
    """The per-agent host paths ``plan``'s egress sidecar mounts: the egress folder."""
    return [Bind(str(plan.extra["egress"]["dir"]), target(EGRESS, SIDECAR))]


def sidecar_secret_files(plan: BottlePlan) -> list[tuple[str, str]]:
    """(name, host path) of the egress folder's files the host wrote for ``plan``'s
    sidecar (policy, credential, CA, upstream CAs) that exist: what a Kubernetes pod's
    egress Secret holds (``KUBE_WAYS[SIDECAR]``); the sidecar's own files stay out."""
    import os

    folder = str(plan.extra["egress"]["dir"])
    found = []
    for entry in AGENT_FILES:
        if entry.path.startswith(f"{EGRESS_DIR}/") and entry.writer == "host":
            path = os.path.join(folder, entry.name)
            if os.path.isfile(path):
                found.append((entry.name, path))
    return found
