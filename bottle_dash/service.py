"""What the CLI and the dashboard do to agents, written once so both do the same thing.

Every function is a blocking call (the dashboard runs them in thread workers) and imports
neither Textual nor libtmux. Backends are looked up by name in ``backends`` when a mapping
is given (tests and the dashboard inject fakes) and in ``backends.registry`` otherwise.
"""

from __future__ import annotations

import difflib
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backends import registry
from backends.base import (
    GUEST_USER,
    NOT_CREATED,
    RUNNING,
    AgentSpec,
    BackendError,
    BackendUnavailable,
    Bottle,
    BottleBackend,
    BottleInfo,
    BottleNotFound,
    BottlePlan,
    Problem,
    ProgressFn,
    _no_progress,
    bottle_name,
)
from backends.claude import resume_fallback
from backends.paths import agent_state_dir, saved_plan
from backends.run import run
from bottle_dash.config import Config
from bottle_dash.status import Status

Backends = Mapping[str, BottleBackend]

#: What ``up`` did.
ALREADY_RUNNING = "already running"
STARTED = "started"
LAUNCHED = "launched"

#: State of a defined agent whose backend could not be listed (not "not created": we
#: do not know).
UNKNOWN = "unknown"

#: The backend agents get when the config says nothing (and the starter config uses).
DEFAULT_BACKEND = AgentSpec.backend


@dataclass
class AgentRow:
    """One line of ``ls`` and of the dashboard's table: a defined agent, its bottle, or both.

    ``defined`` is False for a labelled bottle whose agent is no longer in the config; such
    a row has no ``spec``. ``info`` is None while the agent has no bottle. ``state`` is
    ``running``, ``stopped``, ``not created``, or ``unknown`` when its backend did not answer.
    """

    name: str
    backend: str
    bottle: str
    state: str
    image: str
    created: str
    defined: bool
    spec: AgentSpec | None = None
    info: BottleInfo | None = None
    #: What the agent is doing, when something looked (``ls`` and the dashboard do).
    status: Status | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (``ls --json``)."""
        since = self.status.since if self.status else None
        return {
            "name": self.name,
            "backend": self.backend,
            "bottle": self.bottle,
            "state": self.state,
            "image": self.image,
            "created": self.created or None,
            "defined": self.defined,
            "workspace": str(self.spec.workspace) if self.spec and self.spec.workspace else None,
            "id": self.info.ident if self.info and self.info.ident else None,
            "status": self.status.status if self.status else None,
            "status_since": (
                datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
                if since is not None
                else None
            ),
        }


@dataclass
class Check:
    """One component ``doctor`` looked at: what is there, what is missing, whether needed."""

    component: str
    needed: bool
    found: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No fatal problem."""
        return not any(p.fatal for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "needed": self.needed,
            "ok": self.ok,
            "found": self.found,
            "problems": [{"what": p.what, "fix": p.fix, "fatal": p.fatal} for p in self.problems],
        }


# --------------------------------------------------------------------------- backends


def backend_for(name: str, backends: Backends | None = None) -> BottleBackend:
    """The backend called ``name``: from ``backends`` when given, else the registry.

    Raises ``UnknownBackend``, or ``BackendUnavailable`` when its module cannot be imported
    (an optional dependency missing), never ``ImportError``.
    """
    if backends and name in backends:
        return backends[name]
    try:
        return registry.get_backend(name)
    except ImportError as exc:
        extra = "[smolvm]" if name == "smolmachines" else ""
        raise BackendUnavailable(
            f"the {name} backend cannot be loaded: {exc}",
            fix=f"reinstall bottle-dash with its dependencies: pip install 'bottle-dash{extra}'",
        ) from exc


def _problem(component: str, exc: BackendError, *, fatal: bool) -> Problem:
    return Problem(component, exc.message, exc.fix or "", fatal=fatal)


# --------------------------------------------------------------------------- listing


def list_agents(
    config: Config, backends: Backends | None = None
) -> tuple[list[AgentRow], list[Problem]]:
    """Every defined agent and every labelled bottle, with one ``list_bottles`` per backend.

    Backends listed: the injected ones, else every registered one (so bottles of agents
    removed from the config are found too). A backend that cannot answer becomes a
    ``Problem`` and the others still list; the problem is fatal when the backend is needed
    (``backends_needed``: used by a defined agent, or the default one when none is
    defined), and its agents' state is ``UNKNOWN``. Defined agents come first in config
    order, then bottles whose agent is no longer defined (``defined=False``), by name. A
    defined agent's row shows its bottle on its own backend; a bottle of the same name on
    another backend is reported as a problem (rows are unique by name: the dashboard keys
    its table by it).
    """
    in_use = backends_needed(config)
    found: dict[str, dict[str, BottleInfo]] = {}
    problems: list[Problem] = []
    failed: set[str] = set()
    for name in list(backends) if backends else registry.names():
        try:
            infos = backend_for(name, backends).list_bottles()
        except BackendError as exc:
            problems.append(_problem(name, exc, fatal=name in in_use))
            failed.add(name)
            continue
        found[name] = {info.agent: info for info in infos}

    rows: list[AgentRow] = []
    for name, spec in config.agents.items():
        info = found.get(spec.backend, {}).pop(name, None)
        row = make_row(name, spec.backend, spec, info)
        if spec.backend in failed:
            row.state = UNKNOWN
        rows.append(row)
    orphans: list[AgentRow] = []
    for backend, left in found.items():
        for agent, info in left.items():
            owner = config.agents.get(agent)
            if owner is not None:
                problems.append(
                    Problem(
                        backend,
                        f"agent {agent!r} is defined for {owner.backend} but has a bottle on "
                        f"{backend} ({info.bottle}, {info.state})",
                        f"set the agent's backend back to {backend!r} and run bottle-dash rm "
                        f"{agent}, or remove {info.bottle} with the {backend} tools",
                        fatal=False,
                    )
                )
                continue
            orphans.append(make_row(agent, backend, None, info))
    rows += sorted(orphans, key=lambda r: (r.name, r.backend))
    return rows, problems


def make_row(name: str, backend: str, spec: AgentSpec | None, info: BottleInfo | None) -> AgentRow:
    """The row for an agent (``spec``, None when no longer defined) and its bottle (``info``,
    None when it has none)."""
    return AgentRow(
        name=name,
        backend=info.backend if info else backend,
        bottle=info.bottle if info else bottle_name(name),
        state=info.state if info else NOT_CREATED,
        image=info.image if info and info.image else (spec.image if spec else ""),
        created=info.created if info else "",
        defined=spec is not None,
        spec=spec,
        info=info,
    )


def find_bottle(name: str, backend: str, backends: Backends | None = None) -> BottleInfo | None:
    """The bottle of agent ``name`` on ``backend`` (one listing call), or None."""
    for info in backend_for(backend, backends).list_bottles():
        if info.agent == name:
            return info
    return None


# --------------------------------------------------------------------------- bottles


def plan(spec: AgentSpec, backends: Backends | None = None) -> BottlePlan:
    """The dry run: everything ``up`` would do for ``spec`` (writes only the prompt file)."""
    return backend_for(spec.backend, backends).prepare(spec)


def up(
    spec: AgentSpec,
    progress: ProgressFn = _no_progress,
    backends: Backends | None = None,
) -> tuple[Bottle, str]:
    """Make the agent's bottle run: a no-op when it runs, a start when it is stopped,
    otherwise prepare and launch it (the backend's launch records the plan, which
    ``saved_plan`` reads back). Returns the bottle and ``ALREADY_RUNNING``, ``STARTED`` or
    ``LAUNCHED``.

    A stopped bottle is started as it was launched; a changed definition takes effect
    after ``remove`` and ``up`` (its home volume may be kept).
    """
    backend = backend_for(spec.backend, backends)
    info = find_bottle(spec.name, spec.backend, backends)
    if info is not None and info.state == RUNNING:
        return backend.attach(spec.name), ALREADY_RUNNING
    if info is not None:
        progress(f"starting bottle {info.bottle}")
        backend.start(spec.name)
        return backend.attach(spec.name), STARTED
    progress(f"preparing the plan for {spec.name}")
    the_plan = backend.prepare(spec)
    return backend.launch(the_plan, progress), LAUNCHED


def start(name: str, backend: str, backends: Backends | None = None) -> str:
    """Start an existing bottle by agent name (also for agents no longer defined).

    Returns ``ALREADY_RUNNING`` or ``STARTED``; raises ``BottleNotFound`` when there is none.
    """
    info = find_bottle(name, backend, backends)
    if info is None:
        raise BottleNotFound(
            f"agent {name!r} has no bottle on {backend}",
            fix=f"define it in the config and run bottle-dash up {name}",
            agent=name,
        )
    if info.state == RUNNING:
        return ALREADY_RUNNING
    backend_for(backend, backends).start(name)
    return STARTED


def down(name: str, backend: str, backends: Backends | None = None) -> None:
    """Stop the agent's bottle; its home survives for the next ``up``."""
    backend_for(backend, backends).stop(name)


def remove(
    name: str, backend: str, volumes: bool = False, backends: Backends | None = None
) -> None:
    """Remove the agent's bottle and network; with ``volumes`` also its home (conversations
    included) and its host state directory (prompt copy, last plan)."""
    backend_for(backend, backends).remove(name, volumes=volumes)
    if volumes:
        shutil.rmtree(agent_state_dir(name), ignore_errors=True)


def logs(name: str, backend: str, tail: int = 200, backends: Backends | None = None) -> str:
    """The last lines of the bottle's own output."""
    return backend_for(backend, backends).logs(name, tail=tail)


# --------------------------------------------------------------------------- claude


def claude_args_for(target: AgentSpec | AgentRow, backends: Backends | None = None) -> list[str]:
    """The arguments claude gets for an agent: from its plan when it is defined (so the
    system-prompt flag follows the current prompt), else from the last launch's saved plan
    (none when there is no saved plan)."""
    spec = target if isinstance(target, AgentSpec) else target.spec
    if spec is not None:
        return list(plan(spec, backends).claude_args)
    saved = saved_plan(target.name)
    return list(saved.claude_args) if saved else []


def attach_argv(
    target: AgentSpec | AgentRow,
    *,
    fresh: bool = False,
    tty: bool = True,
    backends: Backends | None = None,
) -> list[str]:
    """The host argv that runs the agent's claude in its (existing) bottle, resuming the
    last conversation when there is one (``resume_fallback``); ``fresh`` starts a new one.

    ``target`` is a spec or a row (a row of an agent no longer defined uses the saved plan).
    Raises ``BottleNotFound`` when the bottle does not exist.
    """
    name, backend = target.name, target.backend
    args = claude_args_for(target, backends)
    bottle = backend_for(backend, backends).attach(name)
    return resume_fallback(bottle.claude_argv(args, tty=tty), len(args), fresh=fresh)


def exec_argv(
    name: str,
    backend: str,
    argv: Sequence[str],
    *,
    user: str = GUEST_USER,
    tty: bool = False,
    backends: Backends | None = None,
) -> list[str]:
    """Host argv that runs ``argv`` in the agent's bottle as ``user`` (node by default)."""
    return backend_for(backend, backends).attach(name).exec_argv(argv, user=user, tty=tty)


# --------------------------------------------------------------------------- doctor


def backends_needed(config: Config | None) -> set[str]:
    """Backends the defined agents use; the default backend when none are defined."""
    if config is None or not config.agents:
        return {DEFAULT_BACKEND}
    return {spec.backend for spec in config.agents.values()}


def doctor(config: Config | None, backends: Backends | None = None) -> list[Check]:
    """Each backend's preflight and tmux: what is there and what is missing, with fixes.

    A component is ``needed`` when a defined agent uses it (tmux always: the dashboard runs
    in it unless ``--no-tmux``).
    """
    needed = backends_needed(config)
    checks: list[Check] = []
    names = list(backends) if backends else registry.names()
    for name in names:
        check = Check(name, needed=name in needed)
        try:
            backend = backend_for(name, backends)
            check.problems = list(backend.preflight())
            version = getattr(backend, "version", None)
            if callable(version):
                try:
                    check.found = str(version() or "")
                except Exception:  # a version probe is a nicety, never a failure
                    check.found = ""
        except BackendError as exc:
            check.problems = [_problem(name, exc, fatal=True)]
        if not check.found and check.ok:
            check.found = "ready"
        checks.append(check)
    checks.append(tmux_check())
    return checks


def tmux_check() -> Check:
    """Is the tmux binary there (the dashboard runs in a tmux session)?"""
    check = Check("tmux", needed=True)
    path = shutil.which("tmux")
    if path is None:
        check.problems.append(
            Problem(
                "tmux",
                "tmux is not installed (the dashboard runs in a tmux session)",
                "apt-get install -y tmux (or run bottle-dash --no-tmux)",
            )
        )
        return check
    try:
        done = run([path, "-V"], timeout=10)
        check.found = f"{done.stdout.strip() or 'tmux'} at {path}"
    except BackendError as exc:
        check.problems.append(_problem("tmux", exc, fatal=True))
    return check


def nearest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to ``name`` (for "did you mean"), or None."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return close[0] if close else None


__all__ = [
    "ALREADY_RUNNING",
    "LAUNCHED",
    "STARTED",
    "UNKNOWN",
    "AgentRow",
    "Check",
    "attach_argv",
    "backend_for",
    "claude_args_for",
    "doctor",
    "down",
    "exec_argv",
    "find_bottle",
    "list_agents",
    "logs",
    "make_row",
    "nearest",
    "plan",
    "remove",
    "saved_plan",
    "start",
    "up",
]
