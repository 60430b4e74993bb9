"""The main screen: the agents table, details, problems, and every agent action.

I/O never runs here: polls and actions are thread workers that post typed messages
(``bottle_dash.ui.messages``); a worker that raises is reported by one handler
(``on_worker_state_changed``). Polling reschedules itself after each completed poll, so
polls never overlap, and it pauses while a modal screen is open. The screen's
collaborators come in ``__init__`` (a ``DashContext``), never from the app object.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Input
from textual.worker import Worker, WorkerState

from backends.base import NOT_CREATED, RUNNING, BackendError, ImageNotFound, Problem
from backends.probes.record import NOT_CHECKED
from backends.run import run
from bottle_dash.service import (
    ALREADY_RUNNING,
    AgentRow,
    AgentService,
    Attached,
    allow_host,
    can_build_image,
    describe,
    egress_summary,
)
from bottle_dash.status import Change
from bottle_dash.tmux import PaneInfo
from bottle_dash.ui.actions import SCREEN, bindings
from bottle_dash.ui.context import DashContext
from bottle_dash.ui.messages import (
    ActionDone,
    ActionProgress,
    EgressLoaded,
    ImageMissing,
    LogsLoaded,
    PollDone,
    PreflightDone,
    PreviewCaptured,
    ProbesDone,
    RunInForeground,
)
from bottle_dash.ui.poller import PollResult
from bottle_dash.ui.widgets.agent_cells import AgentCells, human_age, human_duration
from bottle_dash.ui.widgets.agents_table import AgentsTable
from bottle_dash.ui.widgets.details import AgentDetails, seal_lines
from bottle_dash.ui.widgets.status import (
    CountsHeader,
    EmptyState,
    KeysBar,
    ProblemsPanel,
    StatusLine,
)

if TYPE_CHECKING:
    from bottle_dash.ui.screens.modals import RemoveChoice
    from bottle_dash.ui.screens.new_agent import NewAgent

# The modal screens are imported when first opened: their widgets (Select, Checkbox,
# Button) are not needed for the first paint.

#: Worker group of an agent's actions: ``action-<agent>`` (one action at a time each).
ACTION_GROUP = "action-"

#: Labels shown in the state column while an action runs.
BUSY = {
    "attach": "attaching",
    "restart": "restarting",
    "up": "starting",
    "stop": "stopping",
    "remove": "removing",
    "build": "building the image",
}

#: Agent actions, by name: ``body(service, row, progress)``. Those that stop on a missing
#: image (``ImageNotFound``) go on with the same body once the image is built.
ACTIONS: dict[str, Callable[[AgentService, AgentRow, Callable[[str], None]], Any]] = {
    "attach": lambda service, row, progress: service.attach(row, progress),
    "restart": lambda service, row, progress: service.attach(row, progress, fresh=True),
    "up": lambda service, row, progress: service.up(row, progress)[1],
}


#: Seconds the cursor rests on a row before its pane preview is captured.
PREVIEW_DELAY = 0.1

#: Actions after which the bottle may be new: the escape probes run in the background.
LAUNCHING = ("attach", "restart", "up", "build")


class MainScreen(Screen[None]):
    """Every agent, its bottle and its pane; the keys act on the selected agent."""

    DEFAULT_CSS = """
    MainScreen #filter { display: none; height: 3; border: round $accent; }
    MainScreen #filter.-shown { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = list(bindings(SCREEN))  # the registry's

    def __init__(self, context: DashContext) -> None:
        super().__init__()
        self.ctx = context
        self.service: AgentService = context.service
        self.result = PollResult()
        self.preflight: list[Problem] = []
        self.busy: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.filter_text = ""
        self.polls = 0
        self._polling = False
        self._poll_again = False
        self._timer: Timer | None = None
        self._preview_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield CountsHeader(id="counts")
        yield ProblemsPanel(id="problems")
        yield Input(placeholder="filter agents by name", id="filter")
        yield EmptyState(id="empty")
        yield AgentsTable(on_cursor=self._show_details, id="agents")
        yield AgentDetails(id="details")
        yield StatusLine(id="status", markup=False)  # build lines say [npm], [apt]…
        yield KeysBar(id="keys")

    def on_mount(self) -> None:
        self.query_one(CountsHeader).show({})
        self.query_one(AgentDetails).show(None)
        self.query_one(AgentsTable).focus()
        self.poll_now()

    # ------------------------------------------------------------------ polling

    def poll_now(self) -> None:
        """Start a poll unless one runs (then one more follows it) or a modal is open."""
        if self._polling:
            self._poll_again = True
            return
        if self.app.screen is not self:
            self._schedule()  # paused while a modal is up; look again next tick
            return
        self._polling = True
        selected = self.query_one(AgentsTable).selected_agent
        self.run_worker(
            partial(self._poll_worker, selected),
            thread=True,
            group="poll",
            name="poll",
            exit_on_error=False,
        )

    def _poll_worker(self, selected: str | None) -> None:
        self.post_message(PollDone(self.ctx.poller.poll(selected)))

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.ctx.refresh_interval, self.poll_now)

    def on_poll_done(self, message: PollDone) -> None:
        self._polling = False
        self.polls += 1
        self.result = message.result
        self.refresh_view()
        for change in message.result.alerts:
            self.alert(change)
        if self.polls == 1:
            self.run_preflight()  # after the first poll: the table comes first
        if self._poll_again:
            self._poll_again = False
            self.poll_now()
        else:
            self._schedule()

    def on_screen_resume(self) -> None:
        # A modal closed: catch up at once instead of waiting for the next tick.
        if self.polls:
            self.poll_now()

    @work(thread=True, group="preflight", exit_on_error=False)
    def run_preflight(self) -> None:
        """Each backend's preflight (Docker answering, smolvm installed), once at start."""
        self.post_message(PreflightDone(self.service.preflight(self.ctx.poller.last_config)))

    def on_preflight_done(self, message: PreflightDone) -> None:
        self.preflight = message.problems
        self.refresh_view()

    # ------------------------------------------------------------------ alerts

    def alert(self, change: Change) -> None:
        """An agent started waiting: a toast, a bell on the operator's terminal (which may
        notify while they look elsewhere), a tmux message on their client, and the
        config's ``notify_command`` (the last two in a worker: they run commands)."""
        text = f"{change.agent} is waiting: {change.reason}"
        # markup=False: a toast renders nothing from outside as markup.
        self.notify(text, title="needs you", severity="warning", timeout=10, markup=False)
        self.app.bell()
        config = self.ctx.poller.last_config
        command = tuple(getattr(config, "notify_command", ()) or ())
        self.send_alert(change, command)

    @work(thread=True, group="alerts", exit_on_error=False)
    def send_alert(self, change: Change, command: tuple[str, ...]) -> None:
        host = self.ctx.pane_host
        if host is not None:
            # A failed message is no failure: the toast and the bell already told them.
            with suppress(Exception):
                host.message(f"bottle-dash: {change.agent} is waiting ({change.reason})")
        if not command:
            return
        # Never a shell: the agent's name and the reason are two more arguments.
        argv = [*command, change.agent, change.reason]
        try:
            done = run(argv, timeout=30)
            problem = None if done.ok else f"exit {done.returncode}: {done.stderr.strip()[:200]}"
        except BackendError as exc:
            problem = exc.message
        if problem:
            self.post_message(
                ActionDone(change.agent, "notify_command", error=f"{argv[0]}: {problem}")
            )

    def action_next_status(self, status: str) -> None:
        """w / i: the next agent (after the cursor, wrapping) that is waiting / idle; its
        pane, when it has a live one, is brought to the front."""
        table = self.query_one(AgentsTable)
        names = [str(row.key.value) for row in table.ordered_rows]
        statuses = self.result.statuses
        matching = {n for n in names if n in statuses and statuses[n].status == status}
        if not matching:
            self.notify(f"no agent is {status}", timeout=2)
            return
        current = table.selected_agent
        start = names.index(current) + 1 if current in names else 0
        ordered = names[start:] + names[:start]
        target = next(n for n in ordered if n in matching)
        table.move_cursor(row=names.index(target), animate=False)
        pane = self.result.panes.get(target)
        if pane is not None and not pane.dead and self.ctx.pane_host is not None:
            self.focus_pane(pane.pane_id)

    @work(thread=True, group="focus", exclusive=True, exit_on_error=False)
    def focus_pane(self, pane_id: str) -> None:
        host = self.ctx.pane_host
        if host is not None:
            host.focus(pane_id)

    # ------------------------------------------------------------------ view

    def row(self, name: str | None) -> AgentRow | None:
        """The last poll's row for ``name``."""
        return next((r for r in self.result.rows if r.name == name), None)

    @property
    def selected(self) -> AgentRow | None:
        return self.row(self.query_one(AgentsTable).selected_agent)

    def _cells(self, row: AgentRow, now: datetime) -> AgentCells:
        pane = self.result.panes.get(row.name)
        usage = self.result.usage.get(row.name)
        status = self.result.statuses.get(row.name)
        # How long a stopped bottle has had no claude says nothing: only running ones.
        since = status.since if status and row.state == RUNNING else None
        return AgentCells(
            name=row.name,
            defined=bool(row.defined),
            backend=row.backend,
            state=row.state,
            busy=self.busy.get(row.name, ""),
            pane="" if pane is None else ("dead" if pane.dead else "live"),
            uptime=human_age(row.created, now) if row.state == RUNNING else "",
            cpu=usage.cpu if usage and row.state == RUNNING else None,
            memory=usage.memory if usage and row.state == RUNNING else None,
            status=status.status if status else "",
            status_for=human_duration(now.timestamp() - since) if since is not None else "",
            status_since=since,
            egress=row.egress,
            perms=row.permissions,
            seal=self.result.seals.get(row.name, ("", []))[0],
        )

    def refresh_view(self, force: bool = False) -> None:
        """Apply the last poll to every widget (the table is diffed, never cleared).

        ``force`` re-renders unchanged cells too (a new theme changes their colours).
        """
        rows = self.result.rows
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.state] = counts.get(row.state, 0) + 1
        statuses: dict[str, int] = {}
        for status in self.result.statuses.values():
            statuses[status.status] = statuses.get(status.status, 0) + 1
        undefined = sum(1 for r in rows if not r.defined)
        note = f"filter: {self.filter_text}" if self.filter_text else ""
        self.query_one(CountsHeader).show(counts, undefined, note, statuses=statuses)
        seen = {(p.component, p.what) for p in self.result.problems}
        problems = self.result.problems + [
            p for p in self.preflight if (p.component, p.what) not in seen
        ]
        self.query_one(ProblemsPanel).show(problems)
        table = self.query_one(AgentsTable)
        empty = self.query_one(EmptyState)
        no_agents = not rows and self.polls > 0
        empty.set_class(no_agents, "-shown")
        table.display = not no_agents
        self.query_one(AgentDetails).display = not no_agents
        if no_agents:
            empty.show(self.result.config_path or self.ctx.config_path)
        # Whole minutes: ages and "for" times show minutes, and each row's would turn at
        # its own second; counted from the minute, they all turn at once, and the table
        # (which renders every visible cell again for any changed one) redraws once a
        # minute instead of on most ticks.
        now = self.ctx.now().replace(second=0, microsecond=0)
        shown = [r for r in rows if self.filter_text in r.name]
        table.sync([self._cells(r, now) for r in shown], force=force)
        seals = self.result.seals
        self.query_one(AgentDetails).reserve(
            max((seal_lines(seals.get(r.name)) for r in shown), default=0)
        )
        self._show_details()

    def _show_details(self) -> None:
        row = self.selected
        details = self.query_one(AgentDetails)
        if row is None:
            details.show(None)
            return
        pane = self.result.panes.get(row.name)
        preview = self._preview_of(row.name)
        pane_text = "" if pane is None else f"{pane.pane_id} ({'dead' if pane.dead else 'live'})"
        details.show(
            row,
            pane=pane_text,
            error=self.errors.get(row.name),
            preview=preview,
            status=self._status_line(row.name),
            seal=self.result.seals.get(row.name),
        )

    def _status_line(self, name: str) -> str:
        """``waiting: permission prompt, for 4m`` for the details panel."""
        status = self.result.statuses.get(name)
        if status is None:
            return ""
        text = status.status + (f": {status.reason}" if status.reason else "")
        if status.since is not None:
            age = human_duration(self.ctx.now().timestamp() - status.since)
            text += f", for {age}" if age != "<1m" else ", for under a minute"
        return text

    def _preview_of(self, name: str) -> list[str] | None:
        """The captured lines of ``name``'s pane, when the last capture was of it."""
        preview = self.result.preview
        return preview[1] if preview and preview[0] == name else None

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        # The move itself does no I/O: the details come from the last poll. The new row's
        # pane preview is captured once the cursor rests (a held key captures nothing per
        # row, and the capture's subprocess never delays the redraw of the move). The
        # table already showed the details when its cursor moved (``on_cursor``), in the
        # same frame; this call redraws nothing then.
        self._show_details()
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(PREVIEW_DELAY, self._capture_selected)

    def _capture_selected(self) -> None:
        self._preview_timer = None
        row = self.selected
        pane = self.result.panes.get(row.name) if row is not None else None
        have = row is not None and self._preview_of(row.name) is not None
        if pane is not None and not have and self.ctx.pane_host is not None:
            self.capture_preview(pane.agent, pane.pane_id)

    @work(thread=True, group="preview", exclusive=True, exit_on_error=False)
    def capture_preview(self, agent: str, pane_id: str) -> None:
        """The selected agent's pane, at once rather than at the next tick."""
        host = self.ctx.pane_host
        if host is not None:
            self.post_message(PreviewCaptured(agent, host.capture(pane_id)))

    def on_preview_captured(self, message: PreviewCaptured) -> None:
        self.result.preview = (message.agent, message.lines)
        self._show_details()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_attach()

    def set_status(self, text: str) -> None:
        """One line under the details: progress and outcomes."""
        self.query_one(StatusLine).update(text, layout=False)  # one line: no layout pass

    # ------------------------------------------------------------------ actions

    def _target(self, no_bottle: str = "") -> AgentRow | None:
        """The selected row, if an action may start on it: one is selected, it is not
        busy, and (when ``no_bottle`` says why not) it has a bottle."""
        row = self.selected
        if row is None:
            self.notify("No agent selected", severity="warning", timeout=3)
            return None
        if row.name in self.busy:
            self.notify(f"{row.name} is busy: {self.busy[row.name]}", timeout=3)
            return None
        if no_bottle and row.state == NOT_CREATED:
            self.notify(f"{row.name} {no_bottle}", timeout=3)
            return None
        return row

    def _act(self, action: str, body: Callable[..., Any], no_bottle: str = "") -> None:
        """Start ``body(service, row, progress)`` on the selected row (see ``_target``)."""
        row = self._target(no_bottle)
        if row is not None:
            self.start_action(action, row, partial(body, self.service, row))

    def start_action(self, action: str, row: AgentRow, body: Callable[..., Any]) -> None:
        """Run ``body(progress)`` for ``row`` in a thread worker; the UI stays responsive."""
        self.busy[row.name] = BUSY.get(action, action)
        self.errors.pop(row.name, None)
        # The worker first: the operator waits on it, not on the redraw.
        self.run_worker(
            partial(self._action_worker, action, row, body),
            thread=True,
            group=f"{ACTION_GROUP}{row.name}",
            name=action,
            exit_on_error=False,
        )
        self.set_status(f"{row.name}: {self.busy[row.name]}…")
        self.refresh_view()

    def _action_worker(self, action: str, row: AgentRow, body: Callable[..., Any]) -> None:
        def progress(step: str) -> None:
            self.post_message(ActionProgress(row.name, action, step))

        outcome = body(progress)  # raising: on_worker_state_changed shows it on the agent
        pane_id = ""
        if isinstance(outcome, Attached) and outcome.how == "foreground":
            # Its ActionDone comes from the foreground run, once claude exited or failed to
            # start: one posted here too could land after that one's error and hide it.
            self.post_message(RunInForeground(row.name, outcome.argv, action))
            return
        if isinstance(outcome, Attached):
            detail = f"pane {outcome.pane_id} {outcome.how}"
            if outcome.up == ALREADY_RUNNING:
                pane_id = outcome.pane_id or ""  # the bottle was left as it was
        else:
            detail = str(outcome or "done")
        self.post_message(ActionDone(row.name, action, detail=detail, pane_id=pane_id))

    def on_action_progress(self, message: ActionProgress) -> None:
        self.set_status(f"{message.agent}: {message.step}")

    def on_action_done(self, message: ActionDone) -> None:
        self.busy.pop(message.agent, None)
        if message.error:
            self.errors[message.agent] = message.error
            self.set_status(f"{message.agent}: {message.action} failed: {message.error}")
            self.notify(message.error, title=f"{message.action} failed", severity="error")
        else:
            self.set_status(f"{message.agent}: {message.action}: {message.detail}")
            if message.action in LAUNCHING:
                self.run_probes(message.agent)
        if message.pane_id:
            # An attach that changed no bottle changed only the agent's pane: shown from
            # here, and no poll now, whose docker and tmux calls would take the CPU from
            # claude starting in that pane (the next tick sees the pane as tmux has it).
            self.result.panes[message.agent] = PaneInfo(message.pane_id, message.agent, False)
            self.refresh_view()
            return
        self.refresh_view()
        self.poll_now()

    def run_probes(self, agent: str) -> None:
        """The escape probes on ``agent``'s bottle in a thread worker, after it came up;
        the seal badge shows the outcome at the next poll. Skipped when the last run
        checked this very bottle already (an attach to a running, checked bottle)."""
        row = self.row(agent)
        if row is None or not self.ctx.probe_after_up:
            return
        seal = self.result.seals.get(agent, ("", []))[0]
        if seal and seal != NOT_CHECKED and row.state == RUNNING:
            return
        self.run_worker(
            partial(self._probe_worker, row),
            thread=True,
            group=f"probe-{agent}",
            name=f"escape probes of {agent}",
            exclusive=True,
            exit_on_error=False,
        )

    def _probe_worker(self, row: AgentRow) -> None:
        # raising: on_worker_state_changed shows it; the badge stays "not checked"
        self.post_message(ProbesDone(row.name, self.service.probe(row).seal))

    def on_probes_done(self, message: ProbesDone) -> None:
        # The badge shows the outcome; the status line keeps the action's own result.
        self.poll_now()

    def on_run_in_foreground(self, message: RunInForeground) -> None:
        """--no-tmux: hand the terminal to claude and take it back when it exits."""
        try:
            try:
                with self.app.suspend():
                    self.ctx.run_foreground(message.argv)
            except SuspendNotSupported:
                # Headless (tests) and Windows cannot suspend: run it without the handover.
                self.ctx.run_foreground(message.argv)
        except BackendError as exc:  # a missing exec binary: said on the agent, no crash
            self.post_message(ActionDone(message.agent, message.action, error=describe(exc)))
            return
        done = "claude ran in the foreground"
        self.post_message(ActionDone(message.agent, message.action, detail=done))

    # ------------------------------------------------------------------ worker errors

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker's error is shown: on its agent for actions, as
        a problem for a poll (polling goes on), as a notification otherwise."""
        worker = event.worker
        if event.state != WorkerState.ERROR or worker.error is None:
            return
        error = describe(worker.error)
        if worker.group == "poll":
            problem = Problem("dashboard", f"poll failed: {error}", "")
            self.post_message(PollDone(PollResult(problems=[problem])))
        elif worker.group.startswith(ACTION_GROUP):
            agent = worker.group.removeprefix(ACTION_GROUP)
            self.post_message(ActionDone(agent, worker.name, error=error))
            row = self.row(agent)
            if (
                isinstance(worker.error, ImageNotFound)
                and worker.name in ACTIONS
                and row is not None
                and can_build_image(row.image)
            ):
                self.post_message(ImageMissing(agent, worker.name, row.image))
        else:
            self.set_status(f"{worker.name} failed: {error}")
            self.notify(error, title=f"{worker.name} failed", severity="error")

    def on_image_missing(self, message: ImageMissing) -> None:
        """Offer to build the missing agent image; yes builds it (streaming its progress
        to the status line, in the action's thread worker), then does the action again."""

        def chosen(build: bool | None) -> None:
            row = self.row(message.agent)
            if not build or row is None or row.name in self.busy:
                return
            again = ACTIONS[message.action]

            def body(progress: Callable[[str], None]) -> Any:
                self.service.build_image(message.image, progress)
                return again(self.service, row, progress)

            self.start_action("build", row, body)

        from bottle_dash.ui.screens.modals import ConfirmBuild

        self.app.push_screen(ConfirmBuild(message.agent, message.image), chosen)

    def action_attach(self) -> None:
        """enter: launch if needed, then focus, respawn or open the agent's pane."""
        self._act("attach", ACTIONS["attach"])

    def action_restart(self) -> None:
        """R: restart claude in the agent's pane with a fresh conversation."""
        self._act("restart", ACTIONS["restart"])

    def action_up(self) -> None:
        """u: create or start the bottle without attaching."""
        self._act("up", ACTIONS["up"])

    def action_stop(self) -> None:
        """s: stop the bottle."""
        self._act(
            "stop",
            lambda service, row, progress: service.stop(row),
            no_bottle="has no bottle to stop",
        )

    def action_remove(self) -> None:
        """d: ask, then remove the bottle (and its volumes when chosen)."""
        row = self._target(no_bottle="has no bottle to remove")
        if row is None:
            return

        def chosen(choice: RemoveChoice | None) -> None:
            if choice is None:
                return
            self.start_action(
                "remove", row, lambda progress: self.service.remove(row, volumes=choice.volumes)
            )

        from bottle_dash.ui.screens.modals import ConfirmRemove

        self.app.push_screen(ConfirmRemove(row.name, row.bottle), chosen)

    def action_new_agent(self) -> None:
        """n: the new-agent form; a valid agent is appended to the config file."""

        def chosen(agent: NewAgent | None) -> None:
            if agent is not None:
                self.save_agent(agent)

        from bottle_dash.ui.screens.new_agent import NewAgentScreen

        self.app.push_screen(
            NewAgentScreen(
                self.ctx.validate_agent, self.service.backend_names(), self.ctx.new_agent_values()
            ),
            chosen,
        )

    def save_agent(self, agent: NewAgent) -> None:
        """Append the agent to the config file (a worker: it is file I/O)."""

        def save() -> None:
            self.ctx.save_agent(agent.name, agent.table)
            self.post_message(ActionDone(agent.name, "new", detail="saved to the config"))

        self.run_worker(
            save, thread=True, group=f"{ACTION_GROUP}{agent.name}", name="new", exit_on_error=False
        )

    def action_logs(self) -> None:
        """l: the bottle's own output."""
        row = self.selected
        if row is None:
            return
        if row.state == NOT_CREATED:
            self.notify(f"{row.name} has no bottle yet", timeout=3)
            return
        self.set_status(f"{row.name}: fetching logs…")
        self.fetch_logs(row)

    @work(thread=True, group="logs", exclusive=True, exit_on_error=False)
    def fetch_logs(self, row: AgentRow) -> None:
        self.post_message(LogsLoaded(row.name, self.service.logs(row)))

    def on_logs_loaded(self, message: LogsLoaded) -> None:
        from bottle_dash.ui.screens.modals import LogsScreen

        self.set_status("")
        self.app.push_screen(LogsScreen(message.agent, message.text))

    def action_egress(self) -> None:
        """e: the agent's egress log; a denied host can be added to its allowlist."""
        row = self.selected
        if row is None:
            return
        self.fetch_egress(row)

    @work(thread=True, group="egress", exclusive=True, exit_on_error=False)
    def fetch_egress(self, row: Any) -> None:
        try:
            self.post_message(EgressLoaded(row.name, egress_summary(row.name)))
        except Exception as exc:
            self.post_message(EgressLoaded(row.name, [], f"cannot read: {describe(exc)}"))

    def on_egress_loaded(self, message: EgressLoaded) -> None:
        from bottle_dash.ui.screens.egress import EgressScreen

        row = next((r for r in self.result.rows if r.name == message.agent), None)
        note = message.error
        if row is not None and row.egress != "sealed" and not note:
            note = f"{row.name} is {row.egress or 'not sealed'}: nothing is filtered"

        def chosen(rule: str | None) -> None:
            if rule and row is not None:
                self.allow_host(row, rule)

        self.app.push_screen(EgressScreen(message.agent, message.hosts, note), chosen)

    @work(thread=True, group="allow", exclusive=True, exit_on_error=False)
    def allow_host(self, row: Any, rule: str) -> None:
        try:
            _spec, live = allow_host(self.ctx.config_file(), row.name, rule)
        except Exception as exc:
            self.app.call_from_thread(self.set_status, f"{row.name}: allow: {describe(exc)}")
            return
        when = "applied now" if live else "applies at the next up"
        self.app.call_from_thread(
            self.set_status, f"{row.name}: {rule} added to egress_allow ({when})"
        )

    def action_filter(self) -> None:
        """/: show the filter box."""
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.refresh_view()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(AgentsTable).focus()

    def action_clear_filter(self) -> None:
        """escape: clear and hide the filter."""
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("-shown")
        self.filter_text = ""
        self.refresh_view()
        self.query_one(AgentsTable).focus()
