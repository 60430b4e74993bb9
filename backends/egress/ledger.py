"""The usage log and what it adds up to: tokens and cost per model, per period, and the
agent's budget.

The sidecar appends one JSON line per API response to ``USAGE_FILE`` in the agent's
egress folder (``meter.ResponseMeter.record``: time, model, token counts, ids; never a
prompt or a response's text), rotated at ``USAGE_MAX_BYTES`` into ``usage.log.1`` like
the egress log. So that the total since the agent's creation survives a rotation, a new
file begins with a *carry* line: ``{"ts": ..., "carry": {model: {kind: n, "requests": n}}}``,
the totals of everything before it. Reading the two files in order, a carry line replaces
the totals so far.

The budget is ``BUDGET_FILE`` (JSON, written by the host): the limit in USD, its period
(``day``, ``week``: since local midnight / Monday, ``total``), the host's UTC offset (the
sidecar's clock is UTC) and the price factor (``prices.parse_price``). The sidecar reads it
again when it changes: a budget raised on the host applies to the next request.

Stdlib only: it runs in the sidecar beside ``addon.py`` (imported there as ``ledger``), and
on the host (``backends.egress.ledger``) for the dashboard and ``bottle-dash usage``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

try:  # on the host: a module of the package backends.egress
    from backends.egress import prices
except ImportError:  # in the sidecar: beside this file, imported as a top-level module
    import prices  # type: ignore[no-redef]

USAGE_FILE = "usage.log"
BUDGET_FILE = "budget.json"
#: The usage log's rotation size (one older file is kept, as for the egress log).
USAGE_MAX_BYTES = 16 * 1024**2
PERIODS = ("day", "week", "total")
#: Usage is summed in buckets of this many seconds (every UTC offset in use is a multiple).
BUCKET = 900
#: Buckets are kept this long (a week from Monday, and a margin).
KEEP_SECONDS = 9 * 86400
#: The burn rate is the spend of this many last seconds.
BURN_SECONDS = 900
KINDS = prices.KINDS
Tokens = dict[str, int]

_BUDGET = re.compile(r"^\s*\$?\s*(\d+(?:\.\d+)?)\s*(?:/\s*(day|week|total))?\s*$", re.I)


def parse_budget(text: str) -> tuple[float, str]:
    """``"20/day"``, ``"100/week"``, ``"500"`` (total) -> (USD, period); ValueError else."""
    found = _BUDGET.match(str(text))
    if not found or float(found.group(1)) <= 0:
        raise ValueError(
            f"budget {text!r} is not USD per period: write '20/day', '100/week' or '500' (total)"
        )
    return float(found.group(1)), (found.group(2) or "total").lower()


def budget_text(usd: float, period: str) -> str:
    """The config's words for a budget: ``20/day``, ``500``."""
    amount = f"{usd:g}"
    return amount if period == "total" else f"{amount}/{period}"


class Budget(NamedTuple):
    """What ``BUDGET_FILE`` holds."""

    limit_usd: float | None = None
    period: str = "total"
    #: The price factor (``prices.parse_price``); None: usage has no price.
    factor: float | None = 1.0
    #: The host's offset from UTC in minutes (where its midnight is).
    utc_offset: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {"limit_usd": self.limit_usd, "period": self.period,
             "price": "none" if self.factor is None else self.factor,
             "utc_offset": self.utc_offset}, sort_keys=True,
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Budget:
        """The budget of ``text``; no limit when it is empty or unreadable."""
        try:
            data = json.loads(text) if text.strip() else {}
            limit = data.get("limit_usd")
            period = str(data.get("period") or "total")
            return cls(
                float(limit) if limit is not None and float(limit) > 0 else None,
                period if period in PERIODS else "total",
                prices.parse_price(data.get("price")),
                int(data.get("utc_offset") or 0),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()


def parse_ts(ts: Any) -> float | None:
    """Seconds since the epoch of a log line's ``ts`` (ISO 8601), None when unreadable."""
    try:
        when = datetime.fromisoformat(str(ts))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def period_start(period: str, now: float, utc_offset: int) -> float | None:
    """Where ``period`` began (epoch seconds): local midnight, Monday midnight; None for
    ``total``."""
    if period == "total":
        return None
    local = datetime.fromtimestamp(now, timezone(timedelta(minutes=utc_offset)))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        midnight -= timedelta(days=midnight.weekday())
    return midnight.timestamp()


def tokens_of(line: dict[str, Any]) -> Tokens:
    """The token counts of a usage line (0 for a kind it lacks or cannot say)."""
    out: Tokens = {}
    for kind in KINDS:
        value = line.get(kind, 0)
        out[kind] = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return out


def add(into: dict[str, Tokens], model: str, tokens: Tokens, requests: int = 1) -> None:
    """Add ``tokens`` (and ``requests``) to ``into[model]``."""
    entry = into.setdefault(model, {k: 0 for k in (*KINDS, "requests")})
    for kind in KINDS:
        entry[kind] += tokens.get(kind, 0)
    entry["requests"] += requests


def cost_of(by_model: dict[str, Tokens], factor: float | None) -> tuple[float, list[str]]:
    """USD of ``by_model``'s tokens, and the models with no price (not in the sum)."""
    usd, unknown = 0.0, []
    for model, tokens in by_model.items():
        value = prices.cost(model, tokens, factor)
        if value is None:
            if factor is not None and any(tokens.get(k) for k in KINDS):
                unknown.append(model)
        else:
            usd += value
    return usd, sorted(unknown)


class Ledger:
    """Running totals of usage lines: since creation per model, and in ``BUCKET``-second
    buckets over the last ``KEEP_SECONDS`` (for the day, week and burn rate)."""

    def __init__(self) -> None:
        self.total: dict[str, Tokens] = {}
        self.buckets: dict[int, dict[str, Tokens]] = {}
        self.version = 0
        self.latest = 0.0

    def add_line(self, line: Any, now: float | None = None) -> None:
        """Count one line of the usage log (a carry line replaces the totals)."""
        if not isinstance(line, dict):
            return
        self.version += 1
        carry = line.get("carry")
        if isinstance(carry, dict):
            self.total = {}
            for model, tokens in carry.items():
                if isinstance(tokens, dict):
                    add(self.total, str(model), tokens_of(tokens), _int(tokens.get("requests")))
            return
        model = str(line.get("model") or "?")
        tokens = tokens_of(line)
        add(self.total, model, tokens)
        when = parse_ts(line.get("ts"))
        if when is None:
            return
        self.latest = max(self.latest, when)
        if when < (now if now is not None else self.latest) - KEEP_SECONDS:
            return
        add(self.buckets.setdefault(int(when // BUCKET), {}), model, tokens)
        if len(self.buckets) > KEEP_SECONDS // BUCKET + 8:
            edge = (self.latest - KEEP_SECONDS) // BUCKET
            for key in [k for k in self.buckets if k < edge]:
                del self.buckets[key]

    def read(self, lines: Iterable[str], now: float | None = None) -> Ledger:
        """Count every readable line of ``lines`` (others are skipped)."""
        for text in lines:
            try:
                self.add_line(json.loads(text), now)
            except ValueError:
                continue
        return self

    def since(self, start: float | None) -> dict[str, Tokens]:
        """Tokens per model since ``start`` (None: since creation)."""
        if start is None:
            return self.total
        first = int(start // BUCKET)
        out: dict[str, Tokens] = {}
        for key, models in self.buckets.items():
            if key >= first:
                for model, tokens in models.items():
                    add(out, model, tokens, tokens.get("requests", 0))
        return out

    def spent(self, budget: Budget, now: float) -> float:
        """USD spent in ``budget``'s period (models with no price count nothing)."""
        start = period_start(budget.period, now, budget.utc_offset)
        return cost_of(self.since(start), budget.factor)[0]

    def carry_line(self, ts: str) -> str:
        """The line a new file begins with after a rotation."""
        return json.dumps({"ts": ts, "carry": self.total}, sort_keys=True)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
