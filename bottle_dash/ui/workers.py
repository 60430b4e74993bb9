"""The main screen's thread workers, apart from the screen (dolphie's WorkerManager).

Every blocking call of the dashboard runs here, in a thread worker that reports with a
typed message (``bottle_dash.ui.messages``). The rules live in one place: the next poll is
scheduled only after the last one finished (two asked at once make one follow-up), and
polling pauses while a modal screen is up; an agent's actions run one at a time
(group ``action-<agent>``); a worker that fails is turned into a message for the screen
(``report``), never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.worker import Worker, WorkerState

from backends.base import Problem
from bottle_dash.service import (
    ALREADY_RUNNING,
    AgentRow,
    Attached,
    allow_host,
    describe,
    egress_summary,
)
from bottle_dash.status import Change
from bottle_dash.ui.messages import (
    ActionDone,
    ActionProgress,
    EgressLoaded,
    LogsLoaded,
    PollDone,
    PreflightDone,
    PreviewCaptured,
    ProbesDone,
    RunInForeground,
    WorkerFailed,
)
from bottle_dash.ui.poller import PollResult

if TYPE_CHECKING:
    from textual.message import Message
    from textual.screen import Screen
    from textual.timer import Timer

    from bottle_dash.ui.context import DashContext

#: Worker group of an agent's actions: ``action-<agent>`` (one action at a time each).
ACTION_GROUP = "action-"
#: Worker group of the poll.
POLL_GROUP = "poll"


class DashWorkers:
    """Starts the thread workers of ``screen`` and keeps their rules (above).

    ``selected`` names the agent under the cursor when a poll starts (its pane preview
    is captured with the poll).
    """

    def __init__(
        self, screen: Screen[Any], ctx: DashContext, selected: Callable[[], str | None]
    ) -> None:
        self.screen = screen
        self.ctx = ctx
        self.selected = selected
        #: Polls finished so far.
        self.polls = 0
        #: A poll runs now.
        self.polling = False
        #: A poll was asked for while one ran: it follows that one.
        self.poll_again = False
        self._timer: Timer | None = None

    def run(
        self, work: Callable[[], Any], *, group: str, name: str, exclusive: bool = False
    ) -> None:
        """Run ``work`` in a thread worker of ``group`` (``exclusive``: a newer one
        cancels the running one); a failure reaches ``report``."""
        self.screen.run_worker(
            work,
            thread=True,
            group=group,
            name=name,
            exclusive=exclusive,
            exit_on_error=False,
        )

    # ------------------------------------------------------------------ polling

    def poll_now(self) -> None:
        """Start a poll unless one runs (then one more follows it) or a modal is open."""
        if self.polling:
            self.poll_again = True
            return
        if self.screen.app.screen is not self.screen:
            self.schedule()  # paused while a modal is up; look again next tick
            return
        self.polling = True
        self.run(partial(self._poll, self.selected()), group=POLL_GROUP, name=POLL_GROUP)

    def _poll(self, selected: str | None) -> None:
        self.screen.post_message(PollDone(self.ctx.poller.poll(selected)))

    def schedule(self) -> None:
        """The next poll, one refresh interval from now."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.screen.set_timer(self.ctx.refresh_interval, self.poll_now)

    def poll_finished(self) -> None:
        """A poll's result arrived: count it; ``next_poll`` once it is shown."""
        self.polling = False
        self.polls += 1

    def next_poll(self) -> None:
        """After a poll was shown: the poll asked for meanwhile, else the next tick."""
        if self.poll_again:
            self.poll_again = False
            self.poll_now()
        else:
            self.schedule()

    # ------------------------------------------------------------------ agents

    def start_action(self, action: str, row: AgentRow, body: Callable[..., Any]) -> None:
        """Run ``body(progress)`` for ``row`` in the agent's action group; its outcome
        comes back as ``ActionDone`` (or ``RunInForeground`` without tmux)."""
        self.run(
            partial(self._action, action, row, body),
            group=f"{ACTION_GROUP}{row.name}",
            name=action,
        )

    def _action(self, action: str, row: AgentRow, body: Callable[..., Any]) -> None:
        def progress(step: str) -> None:
            self.screen.post_message(ActionProgress(row.name, action, step))

        outcome = body(progress)  # raising: ``report`` shows it on the agent
        pane_id = ""
        if isinstance(outcome, Attached) and outcome.how == "foreground":
            # Its ActionDone comes from the foreground run, once claude exited or failed to
            # start: one posted here too could land after that one's error and hide it.
            self.screen.post_message(RunInForeground(row.name, outcome.argv, action))
            return
        if isinstance(outcome, Attached):
            detail = f"pane {outcome.pane_id} {outcome.how}"
            if outcome.up == ALREADY_RUNNING:
                pane_id = outcome.pane_id or ""  # the bottle was left as it was
        else:
            detail = str(outcome or "done")
        self.screen.post_message(ActionDone(row.name, action, detail=detail, pane_id=pane_id))

    def run_probes(self, row: AgentRow) -> None:
        """The escape probes on ``row``'s bottle; the outcome comes back as ``ProbesDone``
        (a failure: the badge stays "not checked")."""
        self.run(
            partial(self._probes, row),
            group=f"probe-{row.name}",
            name=f"escape probes of {row.name}",
            exclusive=True,
        )

    def _probes(self, row: AgentRow) -> None:
        self.screen.post_message(ProbesDone(row.name, self.ctx.service.probe(row).seal))

    def run_preflight(self) -> None:
        """Each backend's preflight (Docker answering, smolvm installed): ``PreflightDone``."""
        config = self.ctx.poller.last_config
        work = partial(self._post, lambda: PreflightDone(self.ctx.service.preflight(config)))
        self.run(work, group="preflight", name="run_preflight")

    def send_alert(self, change: Change, command: tuple[str, ...]) -> None:
        """The alert's tmux message and ``notify_command`` (``service.notify``); a command
        that failed is said on the agent."""
        self.run(partial(self._alert, change, command), group="alerts", name="send_alert")

    def _alert(self, change: Change, command: tuple[str, ...]) -> None:
        error = self.ctx.notifier.send(change.agent, change.reason, command)
        if error:
            self.screen.post_message(ActionDone(change.agent, "notify_command", error=error))

    def focus_pane(self, pane_id: str, *, zoom: bool = False) -> None:
        """Bring the pane to the front, zoomed with ``zoom`` (the newest asked wins)."""
        host = self.ctx.pane_host
        if host is not None:
            work = partial(host.zoom if zoom else host.focus, pane_id)
            self.run(work, group="focus", name="focus_pane", exclusive=True)

    def capture_preview(self, agent: str, pane_id: str) -> None:
        """The agent's pane, captured now rather than at the next tick: ``PreviewCaptured``."""
        host = self.ctx.pane_host
        if host is not None:
            work = partial(self._post, lambda: PreviewCaptured(agent, host.capture(pane_id)))
            self.run(work, group="preview", name="capture_preview", exclusive=True)

    def fetch_logs(self, row: AgentRow) -> None:
        """The bottle's own output: ``LogsLoaded``."""
        work = partial(self._post, lambda: LogsLoaded(row.name, self.ctx.service.logs(row)))
        self.run(work, group="logs", name="fetch_logs", exclusive=True)

    def fetch_egress(self, row: AgentRow) -> None:
        """The agent's egress log summary: ``EgressLoaded`` (with the reason it could not be
        read, if so)."""
        self.run(partial(self._egress, row), group="egress", name="fetch_egress", exclusive=True)

    def _egress(self, row: AgentRow) -> None:
        try:
            self.screen.post_message(EgressLoaded(row.name, egress_summary(row.name)))
        except Exception as exc:
            self.screen.post_message(EgressLoaded(row.name, [], f"cannot read: {describe(exc)}"))

    def allow_host(self, row: AgentRow, rule: str, said: Callable[[str], None]) -> None:
        """Add ``rule`` to the agent's ``egress_allow`` (and its running sidecar's policy);
        ``said`` shows the outcome on the screen."""
        self.run(
            partial(self._allow, row, rule, said), group="allow", name="allow_host", exclusive=True
        )

    def _allow(self, row: AgentRow, rule: str, said: Callable[[str], None]) -> None:
        try:
            _spec, live = allow_host(self.ctx.config_file(), row.name, rule)
        except Exception as exc:
            self.screen.app.call_from_thread(said, f"{row.name}: allow: {describe(exc)}")
            return
        when = "applied now" if live else "applies at the next up"
        self.screen.app.call_from_thread(said, f"{row.name}: {rule} added to egress_allow ({when})")

    def set_budget(self, row: AgentRow, budget: str, said: Callable[[str], None]) -> None:
        """Set the agent's ``budget`` (config and running sidecar); ``said`` shows the
        outcome on the screen."""
        self.run(
            partial(self._budget, row, budget, said), group="budget", name="set_budget",
            exclusive=True,
        )  # fmt: skip

    def _budget(self, row: AgentRow, budget: str, said: Callable[[str], None]) -> None:
        from bottle_dash.service import set_budget

        try:
            spec, live = set_budget(self.ctx.config_file(), row.name, budget)
        except Exception as exc:
            self.screen.app.call_from_thread(said, f"{row.name}: budget: {describe(exc)}")
            return
        when = "applied now" if live else "applies at the next up"
        self.screen.app.call_from_thread(
            said, f"{row.name}: budget = {spec.egress.budget} ({when})"
        )
        self.screen.app.call_from_thread(self.poll_now)

    def save_agent(self, name: str, table: Mapping[str, Any]) -> None:
        """Append a validated agent to the config file (in the agent's action group)."""
        self.run(partial(self._save, name, table), group=f"{ACTION_GROUP}{name}", name="new")

    def _save(self, name: str, table: Mapping[str, Any]) -> None:
        self.ctx.save_agent(name, table)
        self.screen.post_message(ActionDone(name, "new", detail="saved to the config"))

    def _post(self, message: Callable[[], Message]) -> None:
        self.screen.post_message(message())

    # ------------------------------------------------------------------ failures

    def report(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker is reported: on its agent for actions
        (``ActionDone`` carrying the exception), as a problem for a poll (polling goes
        on), as ``WorkerFailed`` otherwise."""
        worker = event.worker
        if event.state != WorkerState.ERROR or worker.error is None:
            return
        error = describe(worker.error)
        if worker.group == POLL_GROUP:
            problem = Problem("dashboard", f"poll failed: {error}", "")
            self.screen.post_message(PollDone(PollResult(problems=[problem])))
        elif worker.group.startswith(ACTION_GROUP):
            agent = worker.group.removeprefix(ACTION_GROUP)
            self.screen.post_message(
                ActionDone(agent, worker.name, error=error, failure=worker.error)
            )
        else:
            self.screen.post_message(WorkerFailed(worker.name, error))
