"""What an agent spent, read on the host from its usage log (``ledger``: the log's lines,
``prices``: the one price table): tokens by model, cost today / this week / since
creation, the burn rate of the last 15 minutes, the budget and how much of it is used,
and one row per day for ``bottle-dash usage``.

"Today" starts at local midnight, "this week" at Monday's. A summary is remembered per
agent until its log changes (mtime and size of both files): the dashboard asks on every
refresh, off its UI thread.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from backends import paths
from backends.egress import ledger, prices

Tokens = dict[str, int]


def local_offset(now: float) -> int:
    """The host's offset from UTC at ``now``, in minutes."""
    offset = datetime.fromtimestamp(now).astimezone().utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def tokens_sum(tokens: Tokens) -> int:
    """Every kind of tokens of ``tokens`` together."""
    return sum(tokens.get(k, 0) for k in ledger.KINDS)


def current_budget(agent: str) -> ledger.Budget:
    """What ``agent``'s budget file says now (no limit when there is none)."""
    try:
        text = paths.budget_file(agent).read_text(encoding="utf-8")
    except OSError:
        text = ""
    return ledger.Budget.from_json(text)


class Spend:
    """One agent's usage and cost (USD; None: no price for some of it, see ``unpriced``).
    A plain class (``ls`` does without dataclasses)."""

    def __init__(self, agent: str, budget: ledger.Budget | None = None) -> None:
        self.agent = agent
        #: model -> {"today": tokens by kind, "week": ..., "total": ...}
        self.by_model: dict[str, dict[str, Tokens]] = {}
        self.cost_today: float | None = 0.0
        self.cost_week: float | None = 0.0
        self.cost_total: float | None = 0.0
        self.tokens_today = 0
        #: USD per hour over the last ``ledger.BURN_SECONDS``.
        self.burn_per_hour: float | None = 0.0
        #: Why some usage has no cost (unknown models, ``price = "none"``).
        self.unpriced: list[str] = []
        #: The models not in the price table.
        self.unknown_models: list[str] = []
        self.budget = budget or ledger.Budget()
        #: USD spent in the budget's period.
        self.budget_spent = 0.0
        self.requests = 0
        #: The ``unread`` notes of the log's last lines that could not be read fully.
        self.unread: list[str] = []

    @property
    def budget_used(self) -> float | None:
        """The budget's share spent (1.0 = all of it), None without a budget."""
        if self.budget.limit_usd is None or self.budget.factor is None:
            return None
        return self.budget_spent / self.budget.limit_usd

    @property
    def budget_words(self) -> str:
        """``$20/day``, or "" without a budget."""
        if self.budget.limit_usd is None:
            return ""
        return "$" + ledger.budget_text(self.budget.limit_usd, self.budget.period)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "cost_today_usd": _round(self.cost_today),
            "cost_week_usd": _round(self.cost_week),
            "cost_total_usd": _round(self.cost_total),
            "tokens_today": self.tokens_today,
            "burn_usd_per_hour": _round(self.burn_per_hour),
            "requests": self.requests,
            "unpriced": self.unpriced,
            "budget": self.budget_words.lstrip("$"),
            "budget_spent_usd": _round(self.budget_spent),
            "by_model": self.by_model,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _records(lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _cost(by_model: dict[str, Tokens], factor: float | None) -> tuple[float | None, list[str]]:
    usd, unknown = ledger.cost_of(by_model, factor)
    used = any(tokens_sum(t) for t in by_model.values())
    return (None if factor is None and used else usd), unknown


def summarize(
    agent: str, lines: list[str] | list[dict[str, Any]], budget: ledger.Budget, now: float
) -> Spend:
    """The ``Spend`` of ``agent``'s usage log ``lines`` (the older file's first; or their
    records, already parsed)."""
    records = [r for r in lines if isinstance(r, dict)] or _records(
        [r for r in lines if isinstance(r, str)]
    )
    book = ledger.Ledger()
    for record in records:
        book.add_line(record, now)
    offset = local_offset(now)
    spend = Spend(agent, budget=budget)
    periods = {
        "today": book.since(ledger.period_start("day", now, offset)),
        "week": book.since(ledger.period_start("week", now, offset)),
        "total": book.total,
    }
    unknown: set[str] = set()
    for name, by_model in periods.items():
        for model, tokens in by_model.items():
            spend.by_model.setdefault(model, {})[name] = tokens
        usd, missing = _cost(by_model, budget.factor)
        unknown.update(missing)
        setattr(spend, f"cost_{name}", usd)
    spend.tokens_today = sum(tokens_sum(t) for t in periods["today"].values())
    spend.requests = sum(t.get("requests", 0) for t in book.total.values())
    recent: dict[str, Tokens] = {}
    for record in records:
        when = ledger.parse_ts(record.get("ts"))
        if "carry" not in record and when is not None and when >= now - ledger.BURN_SECONDS:
            ledger.add(recent, str(record.get("model") or "?"), ledger.tokens_of(record))
        if record.get("unread"):
            spend.unread = [*spend.unread[-4:], str(record["unread"])[:200]]
    burn, _ = _cost(recent, budget.factor)
    spend.burn_per_hour = None if burn is None else burn * 3600 / ledger.BURN_SECONDS
    if budget.factor is None:
        spend.unpriced = ['price = "none": this agent\'s usage has no price']
    spend.unknown_models = sorted(unknown)
    spend.unpriced += [prices.unknown_reason(m) for m in sorted(unknown)]
    if budget.limit_usd is not None:
        start = ledger.period_start(budget.period, now, offset)
        spend.budget_spent = ledger.cost_of(book.since(start), budget.factor)[0]
    return spend


def daily(
    lines: list[str], factor: float | None, since: float | None = None
) -> list[dict[str, Any]]:
    """One row per local day (from ``since``, epoch seconds): tokens by kind, requests,
    cost (None when some of it has no price), the models."""
    days: dict[str, dict[str, Tokens]] = {}
    for record in _records(lines):
        when = ledger.parse_ts(record.get("ts"))
        if "carry" in record or when is None or (since is not None and when < since):
            continue
        day = datetime.fromtimestamp(when).strftime("%Y-%m-%d")
        ledger.add(
            days.setdefault(day, {}), str(record.get("model") or "?"), ledger.tokens_of(record)
        )
    rows = []
    for day in sorted(days):
        by_model = days[day]
        usd, unknown = _cost(by_model, factor)
        row: dict[str, Any] = {"date": day}
        for kind in (*ledger.KINDS, "requests"):
            row[kind] = sum(t.get(kind, 0) for t in by_model.values())
        row["cost_usd"] = None if usd is None or unknown else round(usd, 4)
        row["models"] = sorted(by_model)
        rows.append(row)
    return rows


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def log_lines(agent: str) -> list[str]:
    """The lines of ``agent``'s usage log, the older file's first."""
    from backends.egress.sidecar_files import read_lines

    return read_lines(paths.usage_log(agent))


#: agent -> (stamps of the log files and budget, the minute, its Spend)
_CACHE: dict[str, tuple[tuple[Any, ...], Spend]] = {}
#: agent -> (stamps of the log files, their parsed lines): parsing is the costly part, and
#: it is done again only when the log changed (the summary, every minute).
_PARSED: dict[str, tuple[tuple[Any, ...], list[dict[str, Any]]]] = {}


def agent_spend(agent: str, now: float | None = None) -> Spend:
    """``agent``'s ``Spend``, read again only when its log or budget changed (or a new
    minute began: the periods and the burn rate move)."""
    now = time.time() if now is None else now
    log = paths.usage_log(agent)
    budget_file = paths.budget_file(agent)
    key = (
        _stamp(log.with_name(log.name + ".1")),
        _stamp(log),
        _stamp(budget_file),
        int(now // 60),
        str(paths.agent_state_dir(agent)),
    )
    cached = _CACHE.get(agent)
    if cached is not None and cached[0] == key:
        return cached[1]
    parsed = _PARSED.get(agent)
    if parsed is None or parsed[0] != key[:2] + key[4:]:
        parsed = (key[:2] + key[4:], _records(log_lines(agent)))
        _PARSED[agent] = parsed
    spend = summarize(agent, parsed[1], current_budget(agent), now)
    _CACHE[agent] = (key, spend)
    return spend
