"""What agents spent, for the dashboard: each defined agent's ``Spend`` (its usage log,
read again only when it changed) and the budget alerts (one at 80 %, one at 100 % of a
budget, per period), raised through the status alerts' channels.

Runs in the poller's thread: it reads files."""

from __future__ import annotations

from collections.abc import Iterable

from backends.egress.spend import Spend, agent_spend
from bottle_dash.status import Change

#: The budget shares that raise an alert, highest first, with their words.
LEVELS = (
    (1.0, "has spent its budget: new API requests are refused"),
    (0.8, "has spent 80% of its budget"),
)


def spends(agents: Iterable[str]) -> dict[str, Spend]:
    """Each agent's ``Spend`` (an agent whose log cannot be read has none)."""
    found: dict[str, Spend] = {}
    for agent in agents:
        try:
            found[agent] = agent_spend(agent)
        except (OSError, ValueError):
            continue
    return found


class BudgetWatch:
    """Raises each budget alert once: per agent, per budget and period, per level."""

    def __init__(self) -> None:
        #: agent -> (its budget's words, the level last raised)
        self.raised: dict[str, tuple[str, float]] = {}

    def update(self, found: dict[str, Spend]) -> list[Change]:
        """The alerts due since the last call."""
        alerts: list[Change] = []
        for agent, spend in found.items():
            used = spend.budget_used
            if used is None:
                self.raised.pop(agent, None)
                continue
            words = spend.budget_words
            last_words, last_level = self.raised.get(agent, (words, 0.0))
            if last_words != words or used < last_level:
                last_level = 0.0  # a new budget, or a new day or week: alerts again
            level = next(((lv, what) for lv, what in LEVELS if used >= lv), None)
            if level is not None and level[0] > last_level:
                reason = f"{level[1]} ({words}, ${spend.budget_spent:.2f} spent)"
                alerts.append(Change(agent, reason))
                last_level = level[0]
            self.raised[agent] = (words, last_level)
        return alerts
