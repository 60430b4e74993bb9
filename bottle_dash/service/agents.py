"""``AgentService``: every operation the CLI and the dashboard share, written once.

One service is built at start-up and injected: ``cli`` builds it for a command, the
dashboard builds it in ``session`` and hands it to the poller and the screens. Every
method is a blocking call (the dashboard runs them in thread workers); this package imports
neither Textual nor libtmux (``PaneHost`` is a protocol; the dashboard passes a real one).

Backends are found one way, ``AgentService.backend``: the injected mapping when one was
given (tests inject fakes), else ``backends.registry``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from backends import registry, workspace
from backends.base import (
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
    no_progress,
)
from backends.egress.plan import EGRESS_SIDECAR_DOWN
from backends.holder import held_argv
from backends.paths import agent_lock, agent_state_dir
from backends.plan import check_name
from bottle_dash.config import Config
from bottle_dash.service.doctor import Check, doctor_checks, preflight_problems
from bottle_dash.service.images import build_agent_image
from bottle_dash.service.listing import Listings, agent_rows, backends_needed
from bottle_dash.service.readings import make_row, root_workspace
from bottle_dash.service.rows import (
    ALREADY_RUNNING,
    LAUNCHED,
    STARTED,
    AgentRow,
    Attached,
)

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan
    from backends.probes import record
    from bottle_dash.tmux import PaneHost


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
        self.listings = Listings(self.backend_names, self.backend, idle_backend_every)
        self._attach_locks: dict[str, threading.Lock] = {}
        self._attach_locks_guard = threading.Lock()

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
            extra = {"smolmachines": "[smolvm]", "kubernetes": "[kubernetes]"}.get(name, "")
            raise BackendUnavailable(
                f"the {name} backend cannot be loaded: {exc}",
                fix="reinstall bottle-dash with its dependencies: "
                f"pip install 'bottle-dash{extra}'",
            ) from exc

    # ------------------------------------------------------------------ listing

    def list_agents(self, config: Config) -> tuple[list[AgentRow], list[Problem]]:
        """Every defined agent and every labelled bottle, with one ``list_bottles`` per backend.

        Every known backend is listed (so bottles of agents removed from the config are
        found too), all at once; a backend no agent uses may answer from a recent listing
        (``idle_backend_every``). A backend that cannot answer becomes a ``Problem`` and
        the others still list (``listing.agent_rows`` says how rows and problems are made).
        """
        return agent_rows(config, self.listings.list_all(backends_needed(config)))

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
        """The dry run: everything ``up`` would do for ``spec``. Preparing writes the
        agent's host files (prompt copy, status folder…); for an agent that had none, they
        are removed again, so a plan leaves nothing behind."""
        state = agent_state_dir(spec.name)
        existed = state.exists()
        try:
            return self.backend(spec.backend).prepare(spec)
        finally:
            if not existed:
                import shutil

                shutil.rmtree(state, ignore_errors=True)

    def up(
        self, target: AgentRow | AgentSpec, progress: ProgressFn = no_progress
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

                root_agent(spec, str(Path(str(spec.workspace or spec.repo)).expanduser()), 0)
        name = target.name

        def waiting() -> None:
            progress(f"{name} is already being launched by another bottle-dash; waiting for it")

        # One launch per agent at a time (two `up`s, an `up` and an `rm`, two enters): the
        # second waits, then finds the bottle as the first left it.
        with agent_lock(name, waiting) as waited:
            # Another launch just finished: the row is stale, look again (one listing).
            if waited and isinstance(target, AgentRow):
                target = self._fresh_row(target)
            return self._up_locked(target, progress)

    def _up_locked(self, target: AgentRow | AgentSpec, progress: ProgressFn) -> tuple[Bottle, str]:
        row = self.row_of(target) if isinstance(target, AgentSpec) else target
        if row.state not in (RUNNING, NOT_CREATED) and row.info is None:
            # unknown: the listing failed; ask again (raises when it still cannot answer)
            row = make_row(row.name, row.backend, row.spec, self.find_bottle(row.name, row.backend))
        backend = self.backend(row.backend)
        if row.state != RUNNING:
            # Started or launched now: no claude runs in it, whatever a hook said before.
            from backends.status_file import forget_status

            forget_status(row.name)
        if row.state == RUNNING and row.egress != EGRESS_SIDECAR_DOWN:
            if row.info is not None:  # as the listing saw it (smolmachines: no `machine ls`)
                return backend.bottle_from(row.info), ALREADY_RUNNING
            return backend.bottle(row.name), ALREADY_RUNNING
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
        bottle = backend.launch(the_plan, progress)
        repo = the_plan.extra.get("repo") or {}
        if repo.get("made") and repo.get("setup"):
            from bottle_dash.service.copies import run_setup

            run_setup(bottle, row.name, list(repo["setup"]), progress)
        return bottle, LAUNCHED

    def probe(self, row: AgentRow, only: Sequence[str] | None = None) -> record.SuiteRun:
        """Run the escape probes (all, or ``only``) against ``row``'s running bottle; the
        whole suite's run is recorded for the seal badge (``record.seal_of``)."""
        from backends.probes import suite  # every probe: only when probing

        return suite.run_suite(self.backend(row.backend), row.name, only)

    def ensure_running(
        self, target: AgentRow | AgentSpec, progress: ProgressFn = no_progress
    ) -> Bottle:
        """The agent's bottle, running: launched, started, or as it is (see ``up``)."""
        return self.up(target, progress)[0]

    def stop(self, row: AgentRow) -> None:
        """Stop the agent's bottle; its home survives for the next ``up``."""
        with agent_lock(row.name):
            self.backend(row.backend).stop(row.name)

    def remove(self, row: AgentRow, *, volumes: bool = False, force: bool = False) -> None:
        """Remove the agent's bottle and network; with ``volumes`` also its home (conversations
        included), its repository copy and its host state directory (prompt copy, last plan).
        A copy holding commits the host repository lacks, or uncommitted changes, is not
        removed (``copies.WorkWouldBeLost``, naming them) unless ``force``. An ``up`` of the
        agent under way is waited for, so nothing it makes is left behind."""
        backend = self.backend(row.backend)
        with agent_lock(row.name):
            if volumes and not force:
                from bottle_dash.service.copies import refuse_loss

                refuse_loss(backend, row.name)
            backend.remove(row.name, volumes=volumes)
        self._close_pane(row.name)
        if volumes:
            import shutil  # here, as in the checks below: `ls` needs none of it

            shutil.rmtree(agent_state_dir(row.name), ignore_errors=True)

    def _close_pane(self, agent: str) -> None:
        """The removed bottle's pane goes too (it would stay dead: remain-on-exit)."""
        host = self.pane_host
        try:
            if host is None:
                from bottle_dash.tmux import close_agent_pane

                close_agent_pane(agent)
                return
            pane = host.panes().get(agent)
            if pane is not None:
                host.close(pane.pane_id)
        except Exception:  # tmux gone: nothing to tidy, and the removal itself succeeded
            pass

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
        progress: ProgressFn = no_progress,
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
        return held_argv(bottle.claude_argv(args, tty=tty), len(args), fresh=fresh, tty=tty), what

    def exec_argv(
        self, row: AgentRow, argv: Sequence[str], *, user: str = GUEST_USER, tty: bool = False
    ) -> list[str]:
        """Host argv that runs ``argv`` in the agent's bottle as ``user`` (node by default)."""
        return self.backend(row.backend).bottle(row.name).exec_argv(argv, user=user, tty=tty)

    def attach(
        self, row: AgentRow, progress: ProgressFn = no_progress, *, fresh: bool = False
    ) -> Attached:
        """Make the bottle run, then focus the agent's live pane, respawn its dead one, or
        split a new one. With ``fresh`` (R) claude starts a new conversation: a pane that
        exists is respawned with the plain argv even when it is alive. Without a pane host
        the result is ``foreground``: the caller runs ``argv`` on its terminal.

        One attach per agent at a time in this process: ``enter`` pressed twice quickly
        opens one pane (the second finds the first's pane and focuses it)."""
        lock = self._attach_lock(row.name)
        if not lock.acquire(blocking=False):
            lock.acquire()
            # The attach we waited for launched, started or opened a pane: look again.
            row = self._fresh_row(row)
        try:
            return self._attach(row, progress, fresh=fresh)
        finally:
            lock.release()

    def _fresh_row(self, row: AgentRow) -> AgentRow:
        if row.spec is not None:
            return self.row_of(row.spec)
        return make_row(row.name, row.backend, None, self.find_bottle(row.name, row.backend))

    def _attach_lock(self, agent: str) -> threading.Lock:
        with self._attach_locks_guard:
            return self._attach_locks.setdefault(agent, threading.Lock())

    def _attach(self, row: AgentRow, progress: ProgressFn, *, fresh: bool) -> Attached:
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
        progress: ProgressFn = no_progress,
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
        return build_agent_image(image, progress, offline=offline, rebuild=rebuild)

    # ------------------------------------------------------------------ doctor

    def preflight(self, config: Config | None) -> list[Problem]:
        """The preflight problems of the backends ``config``'s agents use
        (``backends_needed``); a backend that cannot be loaded is one problem with its fix.
        Never raises a ``BackendError``."""
        return preflight_problems(self.backend, config)

    def doctor(self, config: Config | None) -> list[Check]:
        """Each backend's preflight, each agent image and tmux: what is there and what is
        missing, with fixes (``doctor_checks``)."""
        return doctor_checks(self.backend_names(), self.backend, config)
