"""The command palette's agent commands (``ctrl+p``): the same actions as the keys.

They come from the action registry (``bottle_dash.ui.actions``): each action with a
palette title, run on its owner (the calling screen, or the app). An action that needs
a selected agent is offered only while one is selected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from bottle_dash.ui.actions import SCREEN, palette_actions


class AgentCommands(Provider):
    """Offers each command whose action the calling screen (or the app) has."""

    def _commands(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        for action in palette_actions():
            target: object = self.screen if action.owner == SCREEN else self.app
            method = getattr(target, f"action_{action.name}", None)
            if not callable(method):
                continue
            if action.needs_agent and getattr(target, "selected", None) is None:
                continue
            yield action.title, action.summary, partial(method, *action.args)

    async def discover(self) -> Hits:
        for title, help_text, method in self._commands():
            yield DiscoveryHit(title, method, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, method in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), method, help=help_text)
