"""The command palette's agent commands (``ctrl+p``): the same actions as the keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

#: (title, help, owner, action, arguments): ``owner`` "screen" runs the calling screen's
#: ``action_<action>(*arguments)`` (the main screen's agent actions), "app" the app's.
COMMANDS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("Attach agent", "Launch if needed and open its pane", "screen", "attach", ()),
    ("Restart agent fresh", "Restart claude without --continue", "screen", "restart", ()),
    ("Up agent", "Create or start its bottle", "screen", "up", ()),
    ("Stop agent", "Stop its bottle", "screen", "stop", ()),
    ("Remove agent", "Remove its bottle (asks)", "screen", "remove", ()),
    ("New agent", "Define an agent in the config", "screen", "new_agent", ()),
    ("Logs", "The bottle's own output", "screen", "logs", ()),
    (
        "Next waiting agent",
        "Select it and bring its pane to the front",
        "screen",
        "next_status",
        ("waiting",),
    ),
    (
        "Next idle agent",
        "Select it and bring its pane to the front",
        "screen",
        "next_status",
        ("idle",),
    ),
    ("Filter agents", "Filter by name", "screen", "filter", ()),
    ("Next theme", "Cycle themes", "app", "next_theme", ()),
    ("Help", "Every key", "app", "help", ()),
)


class AgentCommands(Provider):
    """Offers each command whose action the calling screen (or the app) has."""

    def _commands(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        for title, help_text, owner, action, arguments in COMMANDS:
            target: object = self.screen if owner == "screen" else self.app
            method = getattr(target, f"action_{action}", None)
            if callable(method):
                yield title, help_text, partial(method, *arguments)

    async def discover(self) -> Hits:
        for title, help_text, method in self._commands():
            yield DiscoveryHit(title, method, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, method in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), method, help=help_text)
