"""Asking for an agent's new budget (``$``): one line of input, checked as the config
checks it (``backends.egress.ledger.parse_budget``) before it closes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label

from backends.egress.ledger import budget_text, parse_budget
from bottle_dash.ui.screens.modals import Confirm


class BudgetScreen(Confirm["str | None"]):
    """Dismisses with the budget's words (``40/day``), or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, agent: str, current: str) -> None:
        super().__init__()
        self.agent = agent
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"budget: {self.agent}"
            now = f"now {self.current}" if self.current else "none now"
            yield Label(f"USD per day, per week, or in total ({now}): 40/day, 100/week, 500")
            yield Input(value=self.current, placeholder="40/day", id="budget-input")
            yield Label("", id="budget-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            words = budget_text(*parse_budget(event.value))
        except ValueError as exc:
            self.query_one("#budget-error", Label).update(str(exc))
            return
        self.dismiss(words)

    def action_cancel(self) -> None:
        self.dismiss(None)
