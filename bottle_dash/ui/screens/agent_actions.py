"""The main screen's actions: what each key does to the selected agent, and what the
screen shows when it is done.

Each action is in the registry (``bottle_dash.ui.actions``: its keys and help); here is
its ``action_<name>``. Nothing blocks: the work runs in the workers (``ui.workers``), and
the outcome comes back as a message handled below.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import SuspendNotSupported
from textual.widgets import DataTable, Input

from backends.base import NOT_CREATED, RUNNING, BackendError, ImageNotFound
from backends.probes.record import NOT_CHECKED
from bottle_dash.service import AgentRow, AgentService, can_build_image, describe
from bottle_dash.tmux import PaneInfo
from bottle_dash.ui.messages import (
    ActionDone,
    ActionProgress,
    EgressLoaded,
    ImageMissing,
    LogsLoaded,
    ProbesDone,
    RunInForeground,
)
from bottle_dash.ui.screens.main_view import MainView

if TYPE_CHECKING:
    from bottle_dash.ui.screens.modals import RemoveChoice
    from bottle_dash.ui.screens.new_agent import NewAgent

# The modal screens are imported when first opened: their widgets (Select, Checkbox,
# Button) are not needed for the first paint.

#: Labels shown in the state column while an action runs.
BUSY = {
    "attach": "attaching",
    "restart": "restarting",
    "up": "starting",
    "stop": "stopping",
    "remove": "removing",
    "build": "building the image",
    "fetch": "fetching its branch",
    "merge": "merging its branch",
    "pr": "pushing and opening a pull request",
}

#: Agent actions, by name: ``body(service, row, progress)``. Those that stop on a missing
#: image (``ImageNotFound``) go on with the same body once the image is built.
BODIES: dict[str, Callable[[AgentService, AgentRow, Callable[[str], None]], Any]] = {
    "attach": lambda service, row, progress: service.attach(row, progress),
    "restart": lambda service, row, progress: service.attach(row, progress, fresh=True),
    "up": lambda service, row, progress: service.up(row, progress)[1],
}

#: Actions after which the bottle may be new: the escape probes run in the background.
LAUNCHING = ("attach", "restart", "up", "build")


class AgentActions(MainView):
    """The keys' actions on the main view (``MainScreen`` binds them)."""

    # ------------------------------------------------------------------ starting

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
        self.dash_workers.start_action(action, row, body)
        self.set_status(f"{row.name}: {self.busy[row.name]}…")
        self.refresh_view()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_attach()

    # ------------------------------------------------------------------ outcomes

    def on_action_progress(self, message: ActionProgress) -> None:
        self.set_status(f"{message.agent}: {message.step}")

    def on_action_done(self, message: ActionDone) -> None:
        self.busy.pop(message.agent, None)
        if message.error:
            self.errors[message.agent] = message.error
            self.set_status(f"{message.agent}: {message.action} failed: {message.error}")
            self.notify(message.error, title=f"{message.action} failed", severity="error")
            self._offer_build(message)
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

    def _offer_build(self, message: ActionDone) -> None:
        """An action stopped on a missing agent image that can be built: offer it."""
        row = self.row(message.agent)
        if (
            isinstance(message.failure, ImageNotFound)
            and message.action in BODIES
            and row is not None
            and can_build_image(row.image)
        ):
            self.post_message(ImageMissing(message.agent, message.action, row.image))

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
        self.dash_workers.run_probes(row)

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

    def on_image_missing(self, message: ImageMissing) -> None:
        """Offer to build the missing agent image; yes builds it (streaming its progress
        to the status line, in the action's thread worker), then does the action again."""

        def chosen(build: bool | None) -> None:
            row = self.row(message.agent)
            if not build or row is None or row.name in self.busy:
                return
            again = BODIES[message.action]

            def body(progress: Callable[[str], None]) -> Any:
                self.service.build_image(message.image, progress)
                return again(self.service, row, progress)

            self.start_action("build", row, body)

        from bottle_dash.ui.screens.modals import ConfirmBuild

        self.app.push_screen(ConfirmBuild(message.agent, message.image), chosen)

    # ------------------------------------------------------------------ the keys

    def action_attach(self) -> None:
        """enter: launch if needed, then focus, respawn or open the agent's pane."""
        self._act("attach", BODIES["attach"])

    def action_zoom(self) -> None:
        """z: the agent's live pane, brought beside the dashboard and zoomed."""
        row = self.selected
        if row is None:
            return
        pane = self.result.panes.get(row.name)
        if pane is None or pane.dead:
            self.notify(f"{row.name} has no live pane: enter opens one", timeout=3)
            return
        self.dash_workers.focus_pane(pane.pane_id, zoom=True)

    def action_restart(self) -> None:
        """R: restart claude in the agent's pane with a fresh conversation."""
        self._act("restart", BODIES["restart"])

    def action_up(self) -> None:
        """u: create or start the bottle without attaching."""
        self._act("up", BODIES["up"])

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
                self.dash_workers.save_agent(agent.name, agent.table)  # file I/O: a worker

        from bottle_dash.ui.screens.new_agent import NewAgentScreen

        self.app.push_screen(
            NewAgentScreen(
                self.ctx.validate_agent, self.service.backend_names(), self.ctx.new_agent_values()
            ),
            chosen,
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
        self.dash_workers.fetch_logs(row)

    def on_logs_loaded(self, message: LogsLoaded) -> None:
        from bottle_dash.ui.screens.modals import LogsScreen

        self.set_status("")
        self.app.push_screen(LogsScreen(message.agent, message.text))

    def action_egress(self) -> None:
        """e: the agent's egress log; a denied host can be added to its allowlist."""
        row = self.selected
        if row is None:
            return
        self.dash_workers.fetch_egress(row)

    def on_egress_loaded(self, message: EgressLoaded) -> None:
        from bottle_dash.ui.screens.egress import EgressScreen

        row = self.row(message.agent)
        note = message.error
        if row is not None and row.egress != "sealed" and not note:
            note = f"{row.name} is {row.egress or 'not sealed'}: nothing is filtered"

        def chosen(rule: str | None) -> None:
            if rule and row is not None:
                self.dash_workers.allow_host(row, rule, self.set_status)

        self.app.push_screen(EgressScreen(message.agent, message.hosts, note), chosen)

    def action_budget(self) -> None:
        """$: ask for the agent's new budget; set in the config and its running sidecar."""
        from bottle_dash.ui.screens.budget import BudgetScreen

        row = self.selected
        if row is None or row.spec is None:
            return
        current = row.spec.egress.budget

        def chosen(budget: str | None) -> None:
            if budget and row is not None:
                self.dash_workers.set_budget(row, budget, self.set_status)

        self.app.push_screen(BudgetScreen(row.name, current), chosen)

    def action_next_status(self, status: str) -> None:
        """w / i: the next agent (after the cursor, wrapping) that is waiting / idle; its
        pane, when it has a live one, is brought to the front."""
        table = self.table
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
        if pane is not None and not pane.dead:
            self.dash_workers.focus_pane(pane.pane_id)

    def action_filter(self) -> None:
        """/: show the filter box."""
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.focus()

    def action_clear_filter(self) -> None:
        """escape: clear and hide the filter."""
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("-shown")
        self.filter_text = ""
        self.refresh_view()
        self.table.focus()
