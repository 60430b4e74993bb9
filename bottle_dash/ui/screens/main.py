"""The main screen: the agents table, details, problems, and every agent action.

Its parts: the layout and the view of the last poll (``main_view.MainView``), the keys'
actions (``agent_actions.AgentActions``), and the thread workers that do their I/O
(``ui.workers.DashWorkers``); its keys come from the action registry
(``ui.actions``). I/O never runs in the screen: polls and actions are thread workers that
post typed messages, and a worker that raises is reported by one handler.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import BindingType

from bottle_dash.ui.actions import SCREEN, bindings
from bottle_dash.ui.screens.work_actions import WorkActions


class MainScreen(WorkActions):
    """Every agent, its bottle and its pane; the keys act on the selected agent."""

    DEFAULT_CSS = """
    MainScreen #filter { display: none; height: 3; border: round $accent; }
    MainScreen #filter.-shown { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = list(bindings(SCREEN))
