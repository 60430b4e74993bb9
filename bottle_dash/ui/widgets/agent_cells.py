"""What one row of the agents table shows (``AgentCells``), and the words and figures it
shows them in: sizes, ages, durations, the steadied CPU and memory figures, and the
attention sort's key. Pure: no Textual, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bottle_dash.status import STATUSES


@dataclass(frozen=True)
class AgentCells:
    """What one row shows; values compare equal when nothing changed."""

    name: str
    defined: bool
    backend: str
    state: str
    busy: str
    pane: str
    uptime: str
    cpu: float | None
    memory: int | None
    #: ``bottle_dash.status`` word and how long it has been so (``human_duration``).
    status: str = ""
    status_for: str = ""
    #: When it became so (seconds since the epoch), for the attention sort.
    status_since: float | None = None
    #: ``sealed``, ``sidecar down``, ``unsealed`` (or empty); claude's permission mode.
    egress: str = ""
    perms: str = ""
    #: The escape probes' badge: ``sealed``, ``n failing``, ``not checked`` (or empty).
    seal: str = ""
    #: Cost today (``usd``), or ``budget`` once the budget is spent; ``budget`` the
    #: share of it spent (``budget_level``: "", "near" from 80 %, "spent").
    cost: str = ""
    budget: str = ""


def usd(value: float | None) -> str:
    """``$0.42``, ``$12.3``, ``$123``; ``?`` for no price."""
    if value is None:
        return "?"
    if value < 10:
        return f"${value:.2f}"
    return f"${value:.1f}" if value < 100 else f"${value:.0f}"


def human_tokens(count: int) -> str:
    """``950``, ``12k``, ``1.2M``."""
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.0f}k"
    return f"{count / 1_000_000:.1f}M"


def cost_cell(spend: object | None) -> tuple[str, str]:
    """The cost column's text and budget level of a ``backends.egress.spend.Spend``:
    ``("$1.20", "")``, ``("$17.0", "near")``, ``("budget", "spent")``; a ``?`` follows a
    cost when some usage has no price. Empty without usage or budget."""
    if spend is None:
        return "", ""
    used = getattr(spend, "budget_used", None)
    if used is not None and used >= 1:
        return "budget", "spent"
    level = "near" if used is not None and used >= 0.8 else ""
    if not getattr(spend, "requests", 0):
        return ("$0.00", level) if used is not None else ("", "")
    cost = getattr(spend, "cost_today", None)
    text = usd(cost)
    if getattr(spend, "unpriced", None) and text != "?":
        text = text + "?" if cost else "?"  # nothing priced: the tokens are in the details
    return text, level


def human_bytes(value: int | None) -> str:
    """``1536`` -> ``1.5K``; ``None`` -> empty."""
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return ""


def parse_created(created: str) -> datetime | None:
    """A backend's creation time (ISO 8601, maybe with nanoseconds or ``Z``) or None."""
    text = created.strip().replace("Z", "+00:00")
    if not text:
        return None
    if "." in text:  # trim sub-microsecond digits that fromisoformat refuses
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        text = head + "." + digits[:6] + rest[len(digits) :]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def human_age(created: str, now: datetime, *, nearest: bool = False) -> str:
    """``3d 4h`` / ``2h 5m`` / ``4m`` since ``created``; empty when unknown. ``nearest``
    rounds to the nearest minute: ``now`` is the dashboard's whole minute (every row
    turns at once), which alone would show an age up to a minute short."""
    when = parse_created(created)
    if when is None:
        return ""
    seconds = (now - when).total_seconds() + (30 if nearest else 0)
    return human_duration(seconds, under_a_minute="0m")


def started_at(row: Any) -> str:
    """When the row's bottle last started (its creation when the backend does not say)."""
    info = getattr(row, "info", None)
    return (getattr(info, "started", "") or "") or row.created


def human_duration(seconds: float | None, under_a_minute: str = "<1m") -> str:
    """``<1m`` / ``4m`` / ``2h 5m`` / ``3d 4h``; empty when unknown. Whole minutes only, so a
    row's text changes at most once a minute and idle ticks redraw nothing."""
    if seconds is None:
        return ""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else under_a_minute


#: A CPU or memory figure moves on screen only when it moved this much (percentage
#: points; a share of the figure shown): an idle bottle's figures jitter from tick to
#: tick, and any changed cell makes the table render all its visible cells again.
CPU_STEP = 0.5
MEMORY_STEP = 0.02


def steady(shown: AgentCells, new: AgentCells) -> AgentCells:
    """``new`` with the CPU and memory figures of ``shown`` kept while they moved less
    than ``CPU_STEP`` / ``MEMORY_STEP`` (a figure that appears or goes always shows)."""
    cpu, memory = new.cpu, new.memory
    if cpu is not None and shown.cpu is not None and abs(cpu - shown.cpu) < CPU_STEP:
        cpu = shown.cpu
    if (
        memory is not None
        and shown.memory is not None
        and abs(memory - shown.memory) < shown.memory * MEMORY_STEP
    ):
        memory = shown.memory
    if (cpu, memory) == (new.cpu, new.memory):
        return new
    return replace(new, cpu=cpu, memory=memory)


def attention_key(cells: AgentCells) -> tuple[int, float, str]:
    """Sort key of the attention sort: status order, then the longest in it first."""
    rank = STATUSES.index(cells.status) if cells.status in STATUSES else len(STATUSES)
    return (rank, cells.status_since or float("inf"), cells.name)
