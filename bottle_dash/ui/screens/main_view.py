"""The main screen's layout and view: the widgets, and the last poll applied to them.

No I/O runs here: polls, previews and alerts are thread workers (``ui.workers``) that
post typed messages (``bottle_dash.ui.messages``); this part shows what they found.
Moving the cursor does no I/O and no layout pass: the details come from the last poll,
and the preview of the row the cursor rests on is captured ``PREVIEW_DELAY`` later.
The agent actions are ``agent_actions.AgentActions``, built on this view.
"""

from __future__ import annotations

from datetime import datetime

from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Input
from textual.worker import Worker

from backends.base import RUNNING, Problem
from bottle_dash.service import AgentRow, AgentService
from bottle_dash.status import DETACHED, Change
from bottle_dash.ui.context import DashContext
from bottle_dash.ui.messages import PollDone, PreflightDone, PreviewCaptured, WorkerFailed
from bottle_dash.ui.poller import PollResult
from bottle_dash.ui.widgets.agent_cells import (
    AgentCells,
    cost_cell,
    human_age,
    human_duration,
    started_at,
    usd,
)
from bottle_dash.ui.widgets.agents_table import AgentsTable
from bottle_dash.ui.widgets.chrome import (
    CountsHeader,
    EmptyState,
    KeysBar,
    ProblemsPanel,
    ProgressLine,
)
from bottle_dash.ui.widgets.details import AgentDetails, cost_lines, seal_lines
from bottle_dash.ui.workers import DashWorkers

#: Seconds the cursor rests on a row before its pane preview is captured.
PREVIEW_DELAY = 0.1


class MainView(Screen[None]):
    """Every agent, its bottle and its pane, as the last poll found them.

    Polling reschedules itself after each completed poll, so polls never overlap, and it
    pauses while a modal screen is open (``dash_workers``). The screen's collaborators come in
    ``__init__`` (a ``DashContext``), never from the app object.
    """

    def __init__(self, context: DashContext) -> None:
        super().__init__()
        self.ctx = context
        self.service: AgentService = context.service
        self.result = PollResult()
        self.preflight: list[Problem] = []
        #: agent -> what its running action shows in the state column.
        self.busy: dict[str, str] = {}
        #: agent -> its last action's error (the details panel shows it).
        self.errors: dict[str, str] = {}
        self.filter_text = ""
        self.dash_workers = DashWorkers(self, context, lambda: self.table.selected_agent)
        self._preview_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield CountsHeader(id="counts")
        yield ProblemsPanel(id="problems")
        yield Input(placeholder="filter agents by name", id="filter")
        yield EmptyState(id="empty")
        yield AgentsTable(on_cursor=self._show_details, id="agents")
        yield AgentDetails(id="details")
        yield ProgressLine(id="progress", markup=False)  # build lines say [npm], [apt]…
        yield KeysBar(id="keys")

    def on_mount(self) -> None:
        self.query_one(CountsHeader).show({})
        self.query_one(AgentDetails).show(None)
        self.table.focus()
        self.poll_now()

    @property
    def table(self) -> AgentsTable:
        """The agents table."""
        return self.query_one(AgentsTable)

    # ------------------------------------------------------------------ polling

    @property
    def polls(self) -> int:
        """Polls finished so far."""
        return self.dash_workers.polls

    def poll_now(self) -> None:
        """Start a poll unless one runs (then one more follows it) or a modal is open."""
        self.dash_workers.poll_now()

    def on_poll_done(self, message: PollDone) -> None:
        self.dash_workers.poll_finished()
        self.result = message.result
        self.refresh_view()
        for change in message.result.alerts:
            self.alert(change)
        for change in message.result.budget_alerts:
            self.alert(change, title="budget")
        if self.polls == 1:
            self.dash_workers.run_preflight()  # after the first poll: the table comes first
        self.dash_workers.next_poll()

    def on_screen_resume(self) -> None:
        # A modal closed: catch up at once instead of waiting for the next tick.
        if self.polls:
            self.poll_now()

    def on_preflight_done(self, message: PreflightDone) -> None:
        self.preflight = message.problems
        self.refresh_view()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed worker is reported by the one place that knows them (``dash_workers``)."""
        self.dash_workers.report(event)

    def on_worker_failed(self, message: WorkerFailed) -> None:
        self.set_status(f"{message.name} failed: {message.error}")
        self.notify(message.error, title=f"{message.name} failed", severity="error")

    # ------------------------------------------------------------------ alerts

    def alert(self, change: Change, title: str = "") -> None:
        """An agent started waiting (or, with a ``title``, reached 80 % or 100 % of its
        budget): a toast, a bell on the operator's terminal (which may notify while they
        look elsewhere), a tmux message on their client, and the config's
        ``notify_command`` (the last two in a worker: they run commands)."""
        text = f"{change.agent} " + (change.reason if title else f"is waiting: {change.reason}")
        # markup=False: a toast renders nothing from outside as markup.
        self.notify(text, title=title or "needs you", severity="warning", timeout=10, markup=False)
        self.app.bell()
        config = self.ctx.poller.last_config
        command = tuple(getattr(config, "notify_command", ()) or ())
        self.dash_workers.send_alert(change, command)

    # ------------------------------------------------------------------ view

    def row(self, name: str | None) -> AgentRow | None:
        """The last poll's row for ``name``."""
        return next((r for r in self.result.rows if r.name == name), None)

    @property
    def selected(self) -> AgentRow | None:
        """The last poll's row of the agent under the cursor."""
        return self.row(self.table.selected_agent)

    def _cells(self, row: AgentRow, now: datetime) -> AgentCells:
        pane = self.result.panes.get(row.name)
        usage = self.result.usage.get(row.name)
        status = self.result.statuses.get(row.name)
        cost = cost_cell(self.result.spends.get(row.name))
        # How long a stopped bottle has had no claude says nothing: only running ones.
        since = status.since if status and row.state == RUNNING else None
        return AgentCells(
            name=row.name,
            defined=bool(row.defined),
            backend=row.backend,
            state=row.state,
            busy=self.busy.get(row.name, ""),
            # claude running with no live pane showing it: the pane column says so.
            pane=DETACHED
            if status is not None and status.detached
            else ("" if pane is None else ("dead" if pane.dead else "live")),
            uptime=human_age(started_at(row), now, nearest=True) if row.state == RUNNING else "",
            cpu=usage.cpu if usage and row.state == RUNNING else None,
            memory=usage.memory if usage and row.state == RUNNING else None,
            status=status.status if status else "",
            status_for=human_duration(now.timestamp() - since) if since is not None else "",
            status_since=since,
            egress=row.egress,
            perms=row.permissions,
            seal=self.result.seals.get(row.name, ("", []))[0],
            cost=cost[0],
            budget=cost[1],
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
        used = [s for s in self.result.spends.values() if s.requests]
        total = sum(s.cost_today or 0 for s in used)
        unpriced = any(s.unpriced for s in used)
        cost = "" if not used else ("?" if unpriced and not total else usd(total)) + " today"
        cost += "?" if unpriced and total else ""
        self.query_one(CountsHeader).show(counts, undefined, note, statuses=statuses, cost=cost)
        seen = {(p.component, p.what) for p in self.result.problems}
        problems = self.result.problems + [
            p for p in self.preflight if (p.component, p.what) not in seen
        ]
        self.query_one(ProblemsPanel).show(problems)
        table = self.table
        empty = self.query_one(EmptyState)
        no_agents = not rows and self.polls > 0
        empty.set_class(no_agents, "-shown")
        table.display = not no_agents
        self.query_one(AgentDetails).display = not no_agents
        if no_agents:
            empty.show(self.result.config_path or self.ctx.config_path)
        elif self.focused is None or (
            self.focused.id == "filter" and not self.focused.has_class("-shown")
        ):
            # The table was hidden (no agents) when the new-agent form closed, so the
            # focus went to the hidden filter box (or nowhere): the first agent's row
            # must take ``enter`` without a Tab first.
            table.focus()
        # Whole minutes: ages and "for" times show minutes, and each row's would turn at
        # its own second; counted from the minute, they all turn at once, and the table
        # (which renders every visible cell again for any changed one) redraws once a
        # minute instead of on most ticks.
        now = self.ctx.now().replace(second=0, microsecond=0)
        shown = [r for r in rows if self.filter_text in r.name]
        table.sync([self._cells(r, now) for r in shown], force=force)
        seals, spent = self.result.seals, self.result.spends
        self.query_one(AgentDetails).reserve(
            max(
                (seal_lines(seals.get(r.name)) + cost_lines(spent.get(r.name)) for r in shown),
                default=0,
            )
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
            spend=self.result.spends.get(row.name),
        )

    def _status_line(self, name: str) -> str:
        """``waiting: permission prompt, for 4m`` for the details panel."""
        status = self.result.statuses.get(name)
        if status is None:
            return ""
        text = status.label + (f": {status.reason}" if status.reason else "")
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
        if pane is not None and not have:
            self.dash_workers.capture_preview(pane.agent, pane.pane_id)

    def on_preview_captured(self, message: PreviewCaptured) -> None:
        self.result.preview = (message.agent, message.lines)
        self._show_details()

    def set_status(self, text: str) -> None:
        """One line under the details: progress and outcomes."""
        self.query_one(ProgressLine).update(text, layout=False)  # one line: no layout pass

    # ------------------------------------------------------------------ filter

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.refresh_view()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.table.focus()
