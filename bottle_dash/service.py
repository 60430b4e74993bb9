"""``AgentService``: every operation the CLI and the dashboard share, written once.

One service is built at start-up and injected: ``cli`` builds it for a command, the
dashboard builds it in ``session`` and hands it to the poller and the screens. Every
method is a blocking call (the dashboard runs them in thread workers); this module imports
neither Textual nor libtmux (``PaneHost`` is a protocol; the dashboard passes a real one).

Backends are found one way, ``AgentService.backend``: the injected mapping when one was
given (tests inject fakes), else ``backends.registry``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from backends import registry, workspace
from backends.base import (
    DEFAULT_BACKEND,
    DEFAULT_IMAGE,
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
    Problem,
    ProgressFn,
    UnknownBackend,
    _no_progress,
    bottle_name,
)
from backends.claude import resume_fallback
from backends.egress.plan import (
    SIDECAR_DOWN,
    allow_live,
    configured_egress,
    egress_log,
    permission_mode,
)
from backends.egress.policy import parse_rule
from backends.images.reference import is_local_path
from backends.paths import agent_state_dir
from backends.plan import check_name
from backends.probes import record
from backends.probes.result import Result
from backends.run import run
from bottle_dash.config import Config
from bottle_dash.status import Status

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan
    from backends.egress.log import HostSummary
    from bottle_dash.tmux import PaneHost

#: What ``up`` did.
ALREADY_RUNNING = "already running"
STARTED = "started"
LAUNCHED = "launched"

#: State of a defined agent whose backend could not be listed (not "not created": we
#: do not know).
UNKNOWN = "unknown"

#: Seconds between the dashboard's listings of a backend no agent uses (listed only to
#: find bottles left behind; a ``machine ls`` is a subprocess).
IDLE_BACKEND_EVERY = 30.0

#: The backend agents get when the config says nothing (and the starter config uses).


class AgentRow(NamedTuple):
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
    #: The agent runs (or would run) as uid 0: its workspace belongs to root.
    runs_as_root: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (``ls --json``)."""
        since = self.status.since if self.status else None
        seal, failures = self.seal_state()
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
            "egress": self.egress,
            "permissions": self.permissions,
            "seal": seal,
            "seal_failures": [
                {"probe": r.probe, "evidence": r.evidence, "fix": r.fix} for r in failures
            ],
            "workspace_warnings": self.workspace_warnings(),
            "runs_as_root": self.runs_as_root,
        }

    @property
    def egress(self) -> str:
        """``sealed``, ``sidecar down`` (no egress at all), ``unsealed``, or ``""`` when
        unknown: the bottle's own state when it exists, else what the config makes."""
        if self.info is not None and self.info.egress:
            return self.info.egress
        return configured_egress(self.spec) if self.spec is not None else ""

    @property
    def permissions(self) -> str:
        """Claude's permission mode: ``skip`` (unattended), ``ask``, or ``""`` unknown."""
        return permission_mode(self.spec) if self.spec is not None else ""

    def seal_state(self) -> tuple[str, list[Result]]:
        """The seal badge and the failing probes (each with its fix) from one look at the
        record: the escape probes' last run on this very bottle. ``("", [])`` when the
        bottle does not run; ``not checked`` when no run checked it."""
        if self.state != RUNNING:
            return "", []
        run = record.current_run(self.name, self.created)
        return (run.seal, run.failures) if run else (record.NOT_CHECKED, [])

    @property
    def seal(self) -> str:
        """The seal badge of a running bottle: ``sealed``, ``n failing`` or ``not checked``;
        empty when it does not run."""
        return self.seal_state()[0]

    @property
    def seal_failures(self) -> list[Result]:
        """The failing probes of the last run on this bottle, each with its fix."""
        return self.seal_state()[1]

    def workspace_warnings(self) -> list[str]:
        """What the workspace gained since the first ``up`` that would run or resolve on
        the host: executable git hooks, git settings that run commands, symlinks out."""
        if self.spec is None or self.spec.workspace is None or self.info is None:
            return []
        folder = Path(self.spec.workspace).expanduser()
        return workspace.gained(self.name, folder) if folder.is_dir() else []


class Check:
    """One component ``doctor`` looked at: what is there, what is missing, whether needed.
    Filled in as the looking goes (``found``, ``problems``)."""

    def __init__(
        self, component: str, needed: bool, found: str = "", problems: list[Problem] | None = None
    ) -> None:
        self.component = component
        self.needed = needed
        self.found = found
        self.problems: list[Problem] = problems if problems is not None else []

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


class Attached(NamedTuple):
    """How an attach ended: ``how`` is focused, respawned, split or foreground (no pane
    host: the caller runs ``argv`` on its terminal)."""

    how: str
    argv: list[str]
    pane_id: str | None = None
    #: What ``up`` did to the bottle first: ALREADY_RUNNING, STARTED or LAUNCHED.
    up: str = ""


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
        runs_as_root=root_workspace(spec),
    )


def root_workspace(spec: AgentSpec | None) -> bool:
    """Whether ``spec``'s agent runs as uid 0: it runs as its workspace's owner
    (``backends.owner``), and that is root (one ``stat``; False when it cannot be read)."""
    if spec is None or spec.workspace is None:
        return False
    try:
        return os.stat(os.path.expanduser(spec.workspace)).st_uid == 0
    except OSError:
        return False


def egress_summary(name: str) -> list[HostSummary]:
    """The agent's egress log: allowed and denied hosts, with counts and the last time."""
    from backends.egress.log import read_summary  # here: only `egress` reads the log

    return read_summary(egress_log(name))


def allow_host(config_path: str | Path, name: str, host: str) -> tuple[AgentSpec, bool]:
    """Add ``host`` to the agent's ``egress_allow`` in the config file; also to its running
    sidecar's policy when it has one. Returns the agent and whether it applied live."""
    from bottle_dash.config import allow_host as add

    spec = add(config_path, name, host)
    live = allow_live(name, str(parse_rule(host)))
    return spec, live


def backends_needed(config: Config | None) -> set[str]:
    """Backends the defined agents use; the default backend when none are defined."""
    if config is None or not config.agents:
        return {DEFAULT_BACKEND}
    return {spec.backend for spec in config.agents.values()}


def nearest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to ``name`` (for "did you mean"), or None."""
    import difflib  # only for an unknown name

    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return close[0] if close else None


def describe(exc: BaseException) -> str:
    """One line (plus the fix) for an operation's failure."""
    if isinstance(exc, BackendError):
        return str(exc).replace("\n", " ")
    return str(exc) or type(exc).__name__


def _problem(component: str, exc: BackendError, *, fatal: bool) -> Problem:
    return Problem(component, exc.message, exc.fix or "", fatal=fatal)


def claude_args_of(bottle: Bottle) -> list[str]:
    """claude's arguments for ``bottle``: those of the plan recorded at its launch (none
    when no plan was recorded)."""
    return list(bottle.plan.claude_args) if bottle.plan is not None else []


class AgentService:
    """What can be done to agents: list, plan, up, attach, stop, remove, logs, doctor.

    ``backends`` maps names to backends (tests inject fakes; None means the registry's).
    ``pane_host`` is where the dashboard's agent panes live (None: the CLI, or
    ``--no-tmux``, where attaching means running claude on this terminal).
    ``idle_backend_every``: a backend no defined agent uses is listed at most this often
    (seconds; 0 lists it every time), since it is listed only to find bottles left behind.
    """

    def __init__(
        self,
        backends: Mapping[str, BottleBackend] | None = None,
        pane_host: PaneHost | None = None,
        *,
        idle_backend_every: float = 0.0,
    ) -> None:
        self.injected: Mapping[str, BottleBackend] = backends if backends is not None else {}
        self.pane_host = pane_host
        self.idle_backend_every = idle_backend_every
        self._listed: dict[str, tuple[float, list[BottleInfo]]] = {}

    # ------------------------------------------------------------------ backends

    def backend_names(self) -> list[str]:
        """Every backend this service knows: the injected ones, else the registered ones."""
        return list(self.injected) if self.injected else registry.names()

    def backend(self, name: str) -> BottleBackend:
        """The backend called ``name``: the one way to find a backend.

        Raises ``UnknownBackend``, or ``BackendUnavailable`` when its module cannot be
        imported (an optional dependency missing), never ``ImportError``.
        """
        if self.injected:
            if name not in self.injected:
                known = ", ".join(self.injected)
                raise UnknownBackend(f"unknown backend {name!r}", fix=f"use one of: {known}")
            return self.injected[name]
        try:
            return registry.get_backend(name)
        except ImportError as exc:
            extra = "[smolvm]" if name == "smolmachines" else ""
            raise BackendUnavailable(
                f"the {name} backend cannot be loaded: {exc}",
                fix="reinstall bottle-dash with its dependencies: "
                f"pip install 'bottle-dash{extra}'",
            ) from exc

    # ------------------------------------------------------------------ listing

    def _remembered(self, name: str, in_use: set[str]) -> bool:
        """Whether backend ``name`` may answer from its last listing (no agent uses it)."""
        return name not in in_use and self.idle_backend_every > 0

    def _due(self, name: str, in_use: set[str]) -> bool:
        """Whether ``_list`` asks the backend itself (else it answers from memory)."""
        if not self._remembered(name, in_use):
            return True
        at = self._listed.get(name, (float("-inf"), []))[0]
        return time.monotonic() - at >= self.idle_backend_every

    def _list(self, name: str, in_use: set[str]) -> list[BottleInfo]:
        """``list_bottles`` of ``name``; an unused backend answers from a recent listing."""
        if not self._due(name, in_use):
            return self._listed[name][1]
        now = time.monotonic()
        listed = self.backend(name).list_bottles()  # raises: the problem shows each time
        if self._remembered(name, in_use):
            self._listed[name] = (now, listed)
        return listed

    def _list_all(self, in_use: set[str]) -> dict[str, list[BottleInfo] | BackendError]:
        """Every backend's listing (or why it failed), by name in ``backend_names`` order.

        The backends answer at once, each in its own thread: a ``machine ls`` subprocess
        and a Docker socket call then cost the longer of the two, not their sum.
        """
        names = self.backend_names()
        out: dict[str, list[BottleInfo] | BaseException] = {}

        def one(name: str) -> None:
            try:
                out[name] = self._list(name, in_use)
            except Exception as exc:  # carried to the caller's thread, raised there if a bug
                out[name] = exc

        # A thread only for a second backend that is asked (one answering from memory
        # costs less than the thread's start, on every tick).
        asked = [n for n in names if self._due(n, in_use)]
        threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in asked[1:]]
        for thread in threads:
            thread.start()
        for name in names:
            if name not in asked[1:]:
                one(name)
        for thread in threads:
            thread.join()
        listed: dict[str, list[BottleInfo] | BackendError] = {}
        for name in names:
            result = out[name]
            if isinstance(result, BaseException) and not isinstance(result, BackendError):
                raise result
            listed[name] = result
        return listed

    def list_agents(self, config: Config) -> tuple[list[AgentRow], list[Problem]]:
        """Every defined agent and every labelled bottle, with one ``list_bottles`` per backend.

        Every known backend is listed (so bottles of agents removed from the config are
        found too). A backend that cannot answer becomes a ``Problem`` and the others
        still list; the problem is fatal when the backend is needed (``backends_needed``),
        and its agents' state is ``UNKNOWN``. Defined agents come first in config order,
        then bottles whose agent is no longer defined (``defined=False``), by name. A
        defined agent's row shows its bottle on its own backend; a bottle of the same name
        on another backend is reported as a problem (rows are unique by name: the
        dashboard keys its table by it).
        """
        in_use = backends_needed(config)
        found: dict[str, dict[str, BottleInfo]] = {}
        problems: list[Problem] = []
        failed: set[str] = set()
        for name, infos in self._list_all(in_use).items():
            if isinstance(infos, BackendError):
                problems.append(_problem(name, infos, fatal=name in in_use))
                failed.add(name)
                continue
            found[name] = {info.agent: info for info in infos}

        rows: list[AgentRow] = []
        for name, spec in config.agents.items():
            info = found.get(spec.backend, {}).pop(name, None)
            row = make_row(name, spec.backend, spec, info)
            rows.append(row._replace(state=UNKNOWN) if spec.backend in failed else row)
        orphans: list[AgentRow] = []
        for backend, left in found.items():
            for agent, info in left.items():
                owner = config.agents.get(agent)
                if owner is not None:
                    problems.append(
                        Problem(
                            backend,
                            f"agent {agent!r} is defined for {owner.backend} but has a bottle "
                            f"on {backend} ({info.bottle}, {info.state})",
                            f"set the agent's backend back to {backend!r} and run bottle-dash "
                            f"rm {agent}, or remove {info.bottle} with the {backend} tools",
                            fatal=False,
                        )
                    )
                    continue
                orphans.append(make_row(agent, backend, None, info))
        rows += sorted(orphans, key=lambda r: (r.name, r.backend))
        return rows, problems

    def find_bottle(self, name: str, backend: str) -> BottleInfo | None:
        """The bottle of agent ``name`` on ``backend`` (one listing call), or None."""
        for info in self.backend(backend).list_bottles():
            if info.agent == name:
                return info
        return None

    def row_of(self, spec: AgentSpec) -> AgentRow:
        """The row of a defined agent, its bottle found with one listing of its backend."""
        return make_row(spec.name, spec.backend, spec, self.find_bottle(spec.name, spec.backend))

    def host_pid(self, row: AgentRow) -> int | None:
        """The host process carrying the row's bottle's CPU and memory (None if unknown)."""
        if row.info is None:
            return None
        try:
            return self.backend(row.backend).host_pid(row.info)
        except BackendError:
            return None

    # ------------------------------------------------------------------ bottles

    def plan(self, spec: AgentSpec) -> BottlePlan:
        """The dry run: everything ``up`` would do for ``spec`` (writes only the prompt file)."""
        return self.backend(spec.backend).prepare(spec)

    def up(
        self, target: AgentRow | AgentSpec, progress: ProgressFn = _no_progress
    ) -> tuple[Bottle, str]:
        """Make the agent's bottle run and return it with what was done: ``ALREADY_RUNNING``
        (its handle, from the plan recorded at launch), ``STARTED`` (a stopped bottle, as it
        was launched) or ``LAUNCHED`` (prepared and launched; the launch records the plan).

        This is the one place that tells defined, undefined, stopped and running apart. A
        row is trusted as its listing saw it; a spec is looked up with one listing of its
        backend. A row whose state is unknown is looked up again. A changed definition
        takes effect after ``remove`` and ``up`` (its home volume may be kept).
        """
        spec = target if isinstance(target, AgentSpec) else target.spec
        if spec is not None:
            # Before any lookup: a name like another agent's sidecar finds that sidecar.
            check_name(spec)
            if not spec.allow_root and root_workspace(spec):
                # A stopped bottle is started without a new plan: refuse it here too.
                from backends.plan import root_agent

                root_agent(spec, str(Path(str(spec.workspace)).expanduser()), 0)
        row = self.row_of(target) if isinstance(target, AgentSpec) else target
        if row.state not in (RUNNING, NOT_CREATED) and row.info is None:
            # unknown: the listing failed; ask again (raises when it still cannot answer)
            row = make_row(row.name, row.backend, row.spec, self.find_bottle(row.name, row.backend))
        backend = self.backend(row.backend)
        if row.state == RUNNING and row.egress != SIDECAR_DOWN:
            if row.info is not None:  # as the listing saw it (smolmachines: no `machine ls`)
                return backend.handle(row.info), ALREADY_RUNNING
            return backend.attach(row.name), ALREADY_RUNNING
        if row.state == RUNNING:
            # Running without its egress (fail closed): the backend's start brings the
            # sidecar back and leaves the running bottle as it is.
            progress(f"repairing the egress sidecar of {row.name}")
            return backend.start(row.name), STARTED
        if row.state != NOT_CREATED:
            progress(f"starting bottle {row.bottle}")
            return backend.start(row.name), STARTED
        if row.spec is None:
            raise BottleNotFound(
                f"agent {row.name!r} is not defined in the config and has no bottle",
                fix=f"define [agents.{row.name}] in the config and run bottle-dash up {row.name}",
                agent=row.name,
            )
        progress(f"preparing the plan for {row.name}")
        the_plan = backend.prepare(row.spec)
        if row.spec.workspace is not None:  # what the workspace held before the agent ran
            workspace.record_baseline(row.name, Path(row.spec.workspace).expanduser())
        return backend.launch(the_plan, progress), LAUNCHED

    def probe(self, row: AgentRow, only: Sequence[str] | None = None) -> record.SuiteRun:
        """Run the escape probes (all, or ``only``) against ``row``'s running bottle; the
        whole suite's run is recorded for the seal badge (``record.seal_of``)."""
        from backends.probes import suite  # every probe: only when probing

        return suite.run_suite(self.backend(row.backend), row.name, only)

    def ensure_running(
        self, target: AgentRow | AgentSpec, progress: ProgressFn = _no_progress
    ) -> Bottle:
        """The agent's bottle, running: launched, started, or as it is (see ``up``)."""
        return self.up(target, progress)[0]

    def stop(self, row: AgentRow) -> None:
        """Stop the agent's bottle; its home survives for the next ``up``."""
        self.backend(row.backend).stop(row.name)

    def remove(self, row: AgentRow, *, volumes: bool = False) -> None:
        """Remove the agent's bottle and network; with ``volumes`` also its home (conversations
        included) and its host state directory (prompt copy, last plan)."""
        self.backend(row.backend).remove(row.name, volumes=volumes)
        if volumes:
            import shutil  # here, as in the checks below: `ls` needs none of it

            shutil.rmtree(agent_state_dir(row.name), ignore_errors=True)

    def logs(self, row: AgentRow, tail: int = 200) -> str:
        """The last lines of the bottle's own output."""
        return self.backend(row.backend).logs(row.name, tail=tail)

    # ------------------------------------------------------------------ claude

    def attach_argv(
        self,
        target: AgentRow | AgentSpec,
        *,
        fresh: bool = False,
        tty: bool = True,
        progress: ProgressFn = _no_progress,
    ) -> list[str]:
        """The host argv that runs the agent's claude in its bottle (launched or started
        first when needed), resuming the last conversation when there is one
        (``resume_fallback``); ``fresh`` starts a new one. claude's arguments are those of
        the plan recorded at launch: attaching never prepares again."""
        return self._attach_argv(target, fresh=fresh, tty=tty, progress=progress)[0]

    def _attach_argv(
        self, target: AgentRow | AgentSpec, *, fresh: bool, tty: bool, progress: ProgressFn
    ) -> tuple[list[str], str]:
        bottle, what = self.up(target, progress)
        args = claude_args_of(bottle)
        return resume_fallback(bottle.claude_argv(args, tty=tty), len(args), fresh=fresh), what

    def exec_argv(
        self, row: AgentRow, argv: Sequence[str], *, user: str = GUEST_USER, tty: bool = False
    ) -> list[str]:
        """Host argv that runs ``argv`` in the agent's bottle as ``user`` (node by default)."""
        return self.backend(row.backend).attach(row.name).exec_argv(argv, user=user, tty=tty)

    def attach(
        self, row: AgentRow, progress: ProgressFn = _no_progress, *, fresh: bool = False
    ) -> Attached:
        """Make the bottle run, then focus the agent's live pane, respawn its dead one, or
        split a new one. With ``fresh`` (R) claude starts a new conversation: a pane that
        exists is respawned with the plain argv even when it is alive. Without a pane host
        the result is ``foreground``: the caller runs ``argv`` on its terminal."""
        if row.state != RUNNING:
            progress(f"starting {row.name}")
        host = self.pane_host
        if host is None:
            argv, what = self._attach_argv(row, fresh=fresh, tty=True, progress=progress)
            return Attached("foreground", argv, up=what)
        if row.state == RUNNING:
            # Running: the tmux lookup of its pane runs beside the bottle's (both mostly
            # wait on another process); a launch or start first looks after it.
            from concurrent.futures import ThreadPoolExecutor  # the dashboard's path only

            with ThreadPoolExecutor(1) as pool:
                panes = pool.submit(host.panes)
                argv, what = self._attach_argv(row, fresh=fresh, tty=True, progress=progress)
                pane = panes.result().get(row.name)
        else:
            argv, what = self._attach_argv(row, fresh=fresh, tty=True, progress=progress)
            pane = host.panes().get(row.name)
        if pane is None:
            progress(f"opening a pane for {row.name}")
            return Attached("split", argv, host.split(row.name, argv), up=what)
        if pane.dead or fresh:
            host.respawn(pane.pane_id, argv)
            host.focus(pane.pane_id)
            return Attached("respawned", argv, pane.pane_id, up=what)
        host.focus(pane.pane_id)
        return Attached("focused", argv, pane.pane_id, up=what)

    # ------------------------------------------------------------------ images

    def build_image(
        self,
        image: str = DEFAULT_IMAGE,
        progress: ProgressFn = _no_progress,
        *,
        offline: bool | None = None,
        rebuild: bool = False,
    ) -> str:
        """Build the agent image as ``image``, the one way every caller builds it
        (``bottle-dash image build``, ``init``, the dashboard's offer): from the Dockerfile
        when its base can be pulled, else assembled offline; progress streamed.
        ``offline=True`` only assembles, ``offline=False`` only uses the Dockerfile;
        ``rebuild`` assembles again even when the cached image exists. Returns ``image``;
        raises ``BackendUnavailable`` when the docker backend cannot be loaded."""
        try:
            from backends.docker.image import build_or_assemble
        except ImportError as exc:
            raise BackendUnavailable(
                f"the docker backend cannot be loaded: {exc}",
                fix="reinstall bottle-dash with its dependencies",
            ) from exc
        return build_or_assemble(image, progress, offline=offline, rebuild=rebuild)

    # ------------------------------------------------------------------ doctor

    def preflight(self, config: Config | None) -> list[Problem]:
        """The preflight problems of the backends ``config``'s agents use
        (``backends_needed``); a backend that cannot be loaded is one problem with its fix.
        Never raises a ``BackendError``."""
        problems: list[Problem] = []
        for name in sorted(backends_needed(config)):
            try:
                problems += self.backend(name).preflight()
            except BackendError as exc:
                # the message alone: the fix has its own field (str(exc) carries it too)
                problems.append(
                    Problem(
                        name,
                        f"backend unavailable: {exc.message}",
                        exc.fix or "see the backend's documentation",
                    )
                )
        return problems

    def doctor(self, config: Config | None) -> list[Check]:
        """Each backend's preflight and tmux: what is there and what is missing, with fixes.

        A component is ``needed`` when a defined agent uses it (tmux always: the dashboard
        runs in it unless ``--no-tmux``).
        """
        needed = backends_needed(config)
        checks: list[Check] = []
        for name in self.backend_names():
            check = Check(name, needed=name in needed)
            try:
                backend = self.backend(name)
                check.problems = list(backend.preflight())
                if check.ok:
                    check.problems += backend.hardening()
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
        checks.extend(image_checks(config))
        checks.append(tmux_check())
        return checks


def can_build_image(image: str) -> bool:
    """Whether ``image`` is one ``AgentService.build_image`` knows how to make: the agent
    image (``bottle-dash-agent`` with any tag, not a digest)."""
    return image.split(":", 1)[0] == DEFAULT_IMAGE.split(":", 1)[0] and "@" not in image


def images_needed(config: Config | None) -> list[str]:
    """Engine images the agents run (a smolmachines path or pack is not one), the default
    agent image first; the default alone when no agent is defined."""
    refs = [DEFAULT_IMAGE]
    for spec in config.agents.values() if config else ():
        if spec.image not in refs and not is_local_path(spec.image):
            refs.append(spec.image)
    return refs


def image_checks(config: Config | None) -> list[Check]:
    """Is each agent image in the Docker engine, and which Claude Code does it carry (the
    image label)? A missing one says how to build it."""
    import shutil

    if shutil.which("docker") is None:
        return []
    from backends.images.agent import image_state

    used = {spec.image for spec in config.agents.values()} if config and config.agents else set()
    checks = []
    for ref in images_needed(config):
        check = Check(f"image {ref}", needed=ref in used)
        state = image_state(ref)
        if state.error:
            check.found = "unknown"
            check.problems.append(
                Problem(
                    "image",
                    f"cannot inspect {ref}: {state.error}",
                    "check `docker info`",
                    fatal=False,
                )
            )
        elif state.exists:
            check.found = f"Claude Code {state.claude_code or '(version not recorded)'}"
        elif ref == DEFAULT_IMAGE:
            check.problems.append(
                Problem("image", f"the agent image {ref} is not built", "bottle-dash image build")
            )
        else:
            check.problems.append(
                Problem(
                    "image",
                    f"image {ref} is not in the Docker engine",
                    f"build or load it (docker build -t {ref} … / docker load), or use the "
                    f"default {DEFAULT_IMAGE} (bottle-dash image build)",
                )
            )
        checks.append(check)
    return checks


def tmux_check() -> Check:
    """Is the tmux binary there (the dashboard runs in a tmux session)?"""
    import shutil

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


__all__ = [
    "ALREADY_RUNNING",
    "LAUNCHED",
    "STARTED",
    "UNKNOWN",
    "AgentRow",
    "AgentService",
    "Attached",
    "Check",
    "backends_needed",
    "claude_args_of",
    "describe",
    "make_row",
    "nearest",
]
