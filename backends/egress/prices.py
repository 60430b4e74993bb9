"""The one price table: USD per million tokens, per model family and token kind.

Taken on ``PRICES_DATE`` from ``PRICES_SOURCE`` (Anthropic's published list prices for the
Messages API; long-context (>200k input) surcharges and batch discounts are not applied).
To update the prices, edit ``PRICES`` and the date here: the sidecar (budgets) and the
host (the cost column, details, ``usage``) both read this table, and usage is stored as
tokens, so past usage is priced again with the new table.

A model no family matches has no price: its cost is ``None`` (shown as ``?``, with
``unknown_reason``). An ``api_base`` gateway may price differently: ``price = "none"``
(no cost shown, no budget can be reached) or a factor (``"0.8"``) applied to this table.

Stdlib only: it runs in the sidecar beside ``addon.py`` (imported there as ``prices``)
and on the host as ``backends.egress.prices``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PRICES_DATE = "2025-11-24"
PRICES_SOURCE = "https://docs.claude.com/en/docs/about-claude/pricing"

#: The token kinds a usage record counts, in the order the table lists their prices.
KINDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")

#: Model family (a prefix of the model's name) -> USD per million tokens of each of KINDS.
PRICES: dict[str, tuple[float, float, float, float, float]] = {
    "claude-opus-4-5": (5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-opus-4-1": (15.0, 75.0, 18.75, 30.0, 1.50),
    "claude-opus-4": (15.0, 75.0, 18.75, 30.0, 1.50),
    "claude-sonnet-4-5": (3.0, 15.0, 3.75, 6.0, 0.30),
    "claude-sonnet-4": (3.0, 15.0, 3.75, 6.0, 0.30),
    "claude-3-7-sonnet": (3.0, 15.0, 3.75, 6.0, 0.30),
    "claude-3-5-sonnet": (3.0, 15.0, 3.75, 6.0, 0.30),
    "claude-haiku-4-5": (1.0, 5.0, 1.25, 2.0, 0.10),
    "claude-3-5-haiku": (0.80, 4.0, 1.0, 1.6, 0.08),
    "claude-3-haiku": (0.25, 1.25, 0.30, 0.50, 0.03),
    "claude-3-opus": (15.0, 75.0, 18.75, 30.0, 1.50),
}

#: ``price`` when the gateway's usage costs nothing that bottle-dash can tell.
NO_PRICE = "none"


#: What may follow a family's name in a model's: nothing, a date, an alias, a gateway's
#: version (``-20250929``, ``-latest``, ``@20251001``, ``-20250929-v1:0``). Anything else
#: (``claude-opus-4-6``) is another model, priced nowhere here rather than wrongly.
_SUFFIX = re.compile(r"^(?:$|-20\d{6}|-latest$|@|\[)")


def family(model: str) -> str | None:
    """The price table's family of ``model`` (the longest whose name it starts with, then
    a date or nothing), None when none matches. A gateway's prefix (``anthropic/``,
    ``us.anthropic.``) is skipped."""
    name = model.strip().lower()
    at = name.find("claude-")
    if at < 0:
        return None
    name = name[at:]
    found = [f for f in PRICES if name.startswith(f) and _SUFFIX.match(name[len(f) :])]
    return max(found, key=len) if found else None


def unknown_reason(model: str) -> str:
    """Why ``model`` has no cost."""
    return (
        f"model {model or '(none)'!r} is not in the price table "
        f"(backends/egress/prices.py, {PRICES_DATE})"
    )


def parse_price(value: object) -> float | None:
    """A ``price`` setting as a factor: 1.0 when unset, None for ``"none"``. ValueError when
    it is neither (a number of 0 or more, or "none")."""
    if value is None or value == "":
        return 1.0
    if isinstance(value, str) and value.strip().lower() == NO_PRICE:
        return None
    factor = float(value)  # type: ignore[arg-type]
    if not factor >= 0 or factor == float("inf"):
        raise ValueError(f"price must be 'none' or a factor of 0 or more, not {value!r}")
    return factor


def cost(model: str, tokens: Mapping[str, int], factor: float | None = 1.0) -> float | None:
    """USD for ``tokens`` (by kind, of KINDS) of ``model``; None when the model is unknown
    or the price is ``none`` (``factor`` None)."""
    if factor is None:
        return None
    fam = family(model)
    if fam is None:
        return None
    rates = PRICES[fam]
    usd = sum(rate * int(tokens.get(kind, 0) or 0) for kind, rate in zip(KINDS, rates, strict=True))
    return usd * factor / 1e6
