"""The validators of the cost keys of an agent's table (``price``, ``budget``), in
``schema.AGENT_SCHEMA``: the words stored are the sidecar's (``backends.egress.ledger``).

``c`` is the ``schema.Check`` located at the key (duck-typed here: this module is imported
by the schema)."""

from __future__ import annotations

from typing import Any

from backends.egress.ledger import budget_text, parse_budget
from backends.egress.prices import parse_price
from bottle_dash.config.locate import type_name

PRICE_FIX = 'price = "none" (the gateway\'s usage has no known price) or a factor, e.g. 0.8'
BUDGET_FIX = 'e.g. budget = "20/day", "100/week" or "500" (USD)'


def price_key(value: Any, c: Any, agent: Any) -> str:
    """``price``: "none" or a factor of the price table (as text, e.g. "0.8")."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise c.error(f'must be "none" or a number, not {type_name(value)}', PRICE_FIX)
    try:
        factor = parse_price(value)
    except ValueError:
        raise c.error(f'{value!r} is neither "none" nor a factor of 0 or more', PRICE_FIX) from None
    return "none" if factor is None else f"{factor:g}"


def budget_key(value: Any, c: Any, agent: Any) -> str:
    """``budget``: USD per day or week, or in total ("20/day", "100/week", "500")."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise c.error(f"must be a string, not {type_name(value)}", BUDGET_FIX)
    try:
        return budget_text(*parse_budget(str(value)))
    except ValueError as exc:
        raise c.error(str(exc), BUDGET_FIX) from None
