"""The command palette's agent commands (``ctrl+p``): the same actions as the keys.

They come from the action registry (``bottle_dash.ui.actions``): each action with a
palette title, run on its owner (the calling screen, its agents table, or the app). An
action on an agent is offered for the selected agent, and, when searched, for every
agent by name ("attach uxb" finds "Attach agent: uxb"): the palette selects that agent's
row, then runs the action, as the key would on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from bottle_dash.ui.actions import SCREEN, TABLE, palette_actions


def _run_on(screen: Any, agent: str, method: Callable[..., Any], *args: Any) -> None:
    """Select ``agent``'s row (clearing a filter that hides it), then run ``method``."""
    table = screen.table
    try:
        index = table.get_row_index(agent)
    except Exception:  # hidden by the filter (or gone since the palette listed it)
        clear = getattr(screen, "action_clear_filter", None)
        if clear is None:
            return
        clear()
        try:
            index = table.get_row_index(agent)
        except Exception:
            return
    table.move_cursor(row=index, animate=False)
    method(*args)


class AgentCommands(Provider):
    """Offers each command whose action the calling screen (or the app) has."""

    def _target(self, owner: str) -> object:
        if owner == SCREEN:
            return self.screen
        if owner == TABLE:
            return getattr(self.screen, "table", None)
        return self.app

    def _commands(self, every_agent: bool) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        screen: Any = self.screen
        selected = getattr(screen, "selected", None)
        result = getattr(screen, "result", None)
        names = [r.name for r in getattr(result, "rows", [])] if every_agent else []
        for action in palette_actions():
            method = getattr(self._target(action.owner), f"action_{action.name}", None)
            if not callable(method):
                continue
            if not action.needs_agent:
                yield action.title, action.summary, partial(method, *action.args)
                continue
            if selected is not None:
                yield action.title, action.summary, partial(method, *action.args)
            for name in names:
                title = f"{action.title}: {name}"
                yield title, action.summary, partial(_run_on, screen, name, method, *action.args)

    async def discover(self) -> Hits:
        for title, help_text, method in self._commands(every_agent=False):
            yield DiscoveryHit(title, method, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, method in self._commands(every_agent=True):
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), method, help=help_text)
