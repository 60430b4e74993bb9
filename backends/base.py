"""The backend contract: what every kind of bottle offers, with no UI or tmux in sight.

Vocabulary (shared with the app and the docs):

- agent: a definition from the config file (``AgentSpec``).
- bottle: the running sandbox of one agent (a container or a microVM, plus its volumes
  and network). It outlives the dashboard and is found again by its labels.
- backend: ``docker`` or ``smolmachines``; each prepares, launches, lists, stops and
  removes its bottles.
- plan: everything a launch will do, resolved before anything is done (``BottlePlan``).

The errors live in ``backends.errors`` and the guest layout in ``backends.guest``; both
are re-exported here. This module imports nothing from Textual, libtmux or
``bottle_dash``: the dependency runs ``bottle_dash -> backends`` only (checked by
tests/unit/test_layering.py).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from backends import ownership
from backends.egress.spec import EgressSpec
from backends.errors import (
    BackendError,
    BackendUnavailable,
    BottleNotFound,
    CommandFailed,
    ImageNotFound,
    LaunchError,
    ProvisionError,
    UnknownBackend,
)
from backends.guest import (
    GUEST_CLAUDE_JSON,
    GUEST_HOME,
    GUEST_PROMPT,
    GUEST_SKILLS,
    GUEST_UID,
    GUEST_USER,
    GUEST_WORKSPACE,
)

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

# The errors (``backends.errors``) and the guest layout (``backends.guest``) are part of
# the contract too: re-exported here, where every caller has always found them.
__all__ = [
    "BOTTLE_PREFIX",
    "CLAUDE",
    "DEFAULT_BACKEND",
    "DEFAULT_IMAGE",
    "GUEST_CLAUDE_JSON",
    "GUEST_HOME",
    "GUEST_PROMPT",
    "GUEST_SKILLS",
    "GUEST_UID",
    "GUEST_USER",
    "GUEST_WORKSPACE",
    "LABEL_AGENT",
    "LABEL_BACKEND",
    "LABEL_VERSION",
    "NOT_CREATED",
    "NO_ENTRIES",
    "RUNNING",
    "SIDECAR_SUFFIX",
    "SLUG_MAX",
    "SLUG_RE",
    "STOPPED",
    "VERSION",
    "AgentSpec",
    "BackendError",
    "BackendUnavailable",
    "Bottle",
    "BottleBackend",
    "BottleInfo",
    "BottleNotFound",
    "CommandFailed",
    "Completed",
    "ImageNotFound",
    "LaunchError",
    "Problem",
    "ProgressFn",
    "ProvisionError",
    "UnknownBackend",
    "no_progress",
    "bottle_labels",
    "bottle_name",
    "is_slug",
    "sidecar_collision",
    "skill_dest",
]

VERSION = "0.1.0"

#: Agent names are slugs; the bottle name is derived from them.
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SLUG_MAX = 40
BOTTLE_PREFIX = "bottle-"

LABEL_AGENT = "bottle-dash.agent"
LABEL_BACKEND = "bottle-dash.backend"
LABEL_VERSION = "bottle-dash.version"

CLAUDE = "claude"

# Bottle states as shown in `ls` and the dashboard.
RUNNING = "running"
STOPPED = "stopped"
NOT_CREATED = "not created"

ProgressFn = Callable[[str], None]


def no_progress(step: str) -> None:
    """Default progress sink: launches report steps; callers may ignore them."""


# --------------------------------------------------------------------------- values

# The values every command handles are NamedTuples, not dataclasses: on Python 3.11
# `import dataclasses` costs ~15 ms and each frozen dataclass ~1 ms more at import (its
# methods are compiled from source), which every short command such as `ls` pays.

#: An agent's backend and image when neither the agent nor ``[defaults]`` names one.
DEFAULT_BACKEND = "docker"
DEFAULT_IMAGE = "bottle-dash-agent:latest"

#: The default of a mapping field: empty, shared and read-only.
NO_ENTRIES: Mapping[str, str] = MappingProxyType({})


class Problem(NamedTuple):
    """Something a backend (or tmux) needs that is missing, with the exact fix."""

    component: str
    what: str
    fix: str
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.component}: {self.what}\n  fix: {self.fix}"


class Completed(NamedTuple):
    """The outcome of one command run in a bottle or on the host."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class AgentSpec(NamedTuple):
    """One agent as the config file defines it, already validated.

    ``memory`` is in bytes; ``skills`` are host directories; ``source`` is the config
    file the agent came from (for error messages). ``allow_root`` False refuses to run
    the agent as uid 0 (a root-owned workspace; config key ``allow_root``).
    """

    name: str
    backend: str = DEFAULT_BACKEND
    image: str = DEFAULT_IMAGE
    workspace: Path | None = None
    #: A host git repository: the agent works in its own copy of it (``backends.repo_copy``)
    #: on ``branch`` (default ``bottle/<name>``), started from ``base`` (default: HEAD).
    repo: Path | None = None
    base: str | None = None
    branch: str | None = None
    #: With ``repo``: commands run in the bottle (``sh -c``, in /workspace) after its copy
    #: is made at the first ``up``, and host repository files copied into it (ignored).
    setup: tuple[str, ...] = ()
    copy: tuple[str, ...] = ()
    prompt: str = ""
    skills: tuple[Path, ...] = ()
    env: Mapping[str, str] = NO_ENTRIES
    claude_args: tuple[str, ...] = ()
    cpus: float | None = None
    memory: int | None = None
    pids: int | None = None
    source: Path | None = None
    egress: EgressSpec = EgressSpec()
    allow_root: bool = True
    #: ``"Name <email>"`` the agent commits as ("": the operator's git identity).
    git_user: str = ""


class BottleInfo(NamedTuple):
    """One bottle as a backend's listing sees it (from one cheap call)."""

    agent: str
    backend: str
    bottle: str
    state: str
    image: str
    created: str
    #: Engine id (container id, machine name) — stable while the bottle exists.
    ident: str = ""
    #: Host process whose tree carries the bottle's CPU and memory, when known cheaply.
    host_pid: int | None = None
    labels: Mapping[str, str] = NO_ENTRIES
    #: Sealed egress: "sealed" (sidecar running), "sidecar down" (no egress: fail
    #: closed), "unsealed" (configured without egress control), "" (not known).
    egress: str = ""
    #: When the running bottle last started (ISO 8601; "" unknown or not running): a
    #: bottle stopped and started again is as old as its last start, not its creation.
    started: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = self._asdict()
        data["labels"] = dict(self.labels)
        return data


# --------------------------------------------------------------------------- names


def is_slug(name: str) -> bool:
    """True when ``name`` is a valid agent name."""
    return len(name) <= SLUG_MAX and bool(SLUG_RE.match(name))


def bottle_name(agent: str, suffix: str = "") -> str:
    """The container or machine name of an agent's bottle; with ``suffix`` (``-net``,
    ``-home``, ``SIDECAR_SUFFIX``, ``-out``), the name of one of the bottle's own
    resources, so every name an agent's bottle uses is made here."""
    return f"{BOTTLE_PREFIX}{agent}{suffix}"


#: The egress sidecar of agent ``a`` is the container ``bottle-a-egress``.
SIDECAR_SUFFIX = "-egress"


def sidecar_collision(agent: str) -> tuple[str, str] | None:
    """``(message, fix)`` when the bottle of ``agent`` would bear the name of another
    agent's egress sidecar (its name ends in ``-egress``); None when it is free."""
    if not agent.endswith(SIDECAR_SUFFIX):
        return None
    owner = agent[: -len(SIDECAR_SUFFIX)]
    return (
        f"agent name {agent!r} ends in {SIDECAR_SUFFIX!r}: its bottle would be "
        f"{bottle_name(agent)}, the name of the egress sidecar of an agent {owner!r}",
        f"rename the agent (e.g. 'egress-{owner}'); names ending in {SIDECAR_SUFFIX!r} are "
        "kept for egress sidecars",
    )


def bottle_labels(agent: str, backend: str) -> dict[str, str]:
    """The labels put on every resource of a bottle; listing is by these, and by the
    owner label (``backends.agent_usership``): host user and config identity."""
    return {
        LABEL_AGENT: agent,
        LABEL_BACKEND: backend,
        LABEL_VERSION: VERSION,
        ownership.LABEL_OWNER: ownership.current(),
    }


def skill_dest(skill: Path) -> str:
    """Guest directory of a skill: ``~/.claude/skills/<dir name>``."""
    return f"{GUEST_SKILLS}/{skill.name}"


# --------------------------------------------------------------------------- contract


class Bottle(ABC):
    """A handle on one existing bottle."""

    #: The container or machine name.
    name: str
    #: The agent slug it belongs to.
    agent: str
    #: The plan recorded at its launch, which attaching reads instead of preparing again
    #: (None when no plan was recorded).
    plan: BottlePlan | None = None

    @abstractmethod
    def claude_argv(self, argv: Sequence[str], *, tty: bool = True) -> list[str]:
        """The exact host argv that runs ``claude <argv...>`` in the bottle as the agent user.

        The last ``len(argv) + 1`` items are always ``["claude", *argv]``: the session
        holder (``backends.holder.held_argv``) relies on that to split by index.
        """

    @abstractmethod
    def exec(self, script: str, *, user: str = GUEST_USER, timeout: float = 120) -> Completed:
        """Run ``script`` with ``sh -c`` in the bottle as ``user``; never raises on non-zero."""

    @abstractmethod
    def wrap_argv(
        self, argv: Sequence[str], *, user: str, interactive: bool, tty: bool = False
    ) -> list[str]:
        """The backend's host argv around ``argv``: run it in the bottle as ``user`` with
        the agent's env; ``interactive`` keeps stdin open (a foreground command needs it, a
        captured one must not take the caller's), ``tty`` gives it a terminal. ``exec``,
        ``exec_argv`` and provisioning all run through it."""

    def exec_argv(
        self, argv: Sequence[str], *, user: str = GUEST_USER, tty: bool = False
    ) -> list[str]:
        """Host argv that runs ``argv`` in the bottle as ``user`` in the foreground, stdin
        open (for `bottle-dash exec`)."""
        return self.wrap_argv(argv, user=user, interactive=True, tty=tty)

    @abstractmethod
    def cp_in(
        self, src: Path, dst: str, *, mode: int | None = None, user: str = GUEST_USER
    ) -> None:
        """Copy a host file or directory to ``dst`` in the bottle, owned by ``user``."""


class BottleBackend(ABC):
    """One kind of bottle. Implementations must not import Textual, libtmux or bottle_dash."""

    name: ClassVar[str]

    @abstractmethod
    def preflight(self) -> list[Problem]:
        """What this backend needs and lacks, each with how to fix it. Never raises."""

    @abstractmethod
    def prepare(self, agent: AgentSpec) -> BottlePlan:
        """Resolve the plan for ``agent`` and write its prompt file (mode 0600)."""

    @abstractmethod
    def launch(self, plan: BottlePlan, progress: ProgressFn = no_progress) -> Bottle:
        """Create, start and provision the bottle, then record ``plan`` as its agent's last
        launch (``paths.save_plan``: ``bottle`` reads it back); on any failure remove what
        was made. The handle's ``plan`` is ``plan``."""

    @abstractmethod
    def list_bottles(self) -> list[BottleInfo]:
        """Every bottle of this backend, found by label, in one cheap call."""

    @abstractmethod
    def bottle(self, agent: str) -> Bottle:
        """A handle on the existing bottle of ``agent`` (raises ``BottleNotFound``), with
        the plan recorded at its launch as ``plan``; never prepares again."""

    def bottle_from(self, info: BottleInfo) -> Bottle:
        """A handle on the bottle ``info`` describes, as this backend's listing just saw
        it, with the plan recorded at its launch (as ``bottle``). A backend whose listing
        holds all a handle needs makes no call here; this default asks ``bottle``."""
        return self.bottle(info.agent)

    @abstractmethod
    def start(self, agent: str) -> Bottle:
        """Start a stopped bottle again (its home survives) and return its handle, as
        ``bottle`` would (so starting then looking it up costs one lookup)."""

    @abstractmethod
    def stop(self, agent: str) -> None:
        """Stop the bottle; it can be started again with its home intact."""

    @abstractmethod
    def remove(self, agent: str, *, volumes: bool = False) -> None:
        """Remove the bottle and its network; the home too when ``volumes``."""

    @abstractmethod
    def logs(self, agent: str, *, tail: int = 200) -> str:
        """The last lines of the bottle's own output."""

    def read_copy(self, agent: str, script: str, *, timeout: float = 120) -> Completed:
        """Run ``sh -c script`` as the agent over its repository copy, inside the bottle (or
        a helper like it when the bottle is stopped); never on the host. Raises
        ``BackendError`` when the backend keeps no copies or the agent has none."""
        raise BackendError(
            f"the {self.name} backend keeps no repository copies (agent {agent})",
            fix='use backend = "docker" for an agent with repo',
            agent=agent,
        )

    def host_pid(self, info: BottleInfo) -> int | None:
        """The host process that carries the bottle's resource use (None if unknown)."""
        return info.host_pid

    def probe_facts(self, agent: str) -> dict[str, Any]:
        """What the engine knows of ``agent``'s bottle, for the escape probes
        (``backends.probes``): settings, networks, mounts. Raises ``BottleNotFound``."""
        return {}

    def policy_changed(self, plan: BottlePlan) -> bool:
        """The egress policy file of ``plan``'s agent changed on the host (an allowed host
        added live). A backend whose sidecar reads that file has nothing to do; one whose
        sidecar cannot reach it carries it over. False when the running sidecar did not
        get it."""
        return True

    def fetch_egress_log(self, agent: str) -> None:
        """Bring the agent's egress log (and its rotated older file) to the host file
        ``paths.egress_log`` reads, when its sidecar writes it elsewhere; called before
        the log is read (on demand, never per tick). Default: the sidecar writes there."""
        return None

    def hardening(self) -> list[Problem]:
        """What of the hardening this backend's engine does not give (a user namespace, a
        disk budget), each as a non-fatal ``Problem`` with how to turn it on; ``doctor``
        prints them and ``plan`` records them. Never raises."""
        return []
