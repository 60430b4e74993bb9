"""What agents spend, from the command line: ``usage`` (tokens and cost per agent per day,
from each agent's usage log, which its egress sidecar writes) and ``budget`` (an agent's
budget set in the config and, at once, in its running sidecar)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bottle_dash.cli.context import EXIT_OK, PROG, Context, UsageError
from bottle_dash.cli.output import print_table, say
from bottle_dash.cli.parser import agent_subparser

if TYPE_CHECKING:
    from bottle_dash.cli.parser import Subparsers


def create_usage_subparser(sub: Subparsers) -> None:
    """``usage [NAME] [--since DATE] [--json]``."""
    p = sub.add_parser(
        "usage",
        help="tokens and cost per agent per day",
        description="One row per agent per day (local dates) from each agent's usage log, "
        "which its egress sidecar writes for every API response: input, output, "
        "cache-write and cache-read tokens, requests, and the cost from the price table "
        "(backends/egress/prices.py; '?' when a model is not in it or price = \"none\").",
    )
    p.add_argument("name", nargs="?", help="one agent (default: every defined agent)")
    p.add_argument("--since", metavar="DATE", help="from this local date on (YYYY-MM-DD)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list (agent, date, input, output, cache_write_5m, "
        "cache_write_1h, cache_read, requests, cost_usd, models)",
    )


def _since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").timestamp()
    except ValueError:
        raise UsageError(f"--since {text!r} is not a date", "write it as YYYY-MM-DD") from None


def command_usage(ctx: Context) -> int:
    """Print the rows of one agent or of every defined agent."""
    from backends import paths
    from backends.egress.prices import parse_price
    from backends.egress.spend import daily, log_lines

    since = _since(ctx.args.since)
    if ctx.args.name:
        known = ctx.args.name in ctx.config.agents or paths.usage_log(ctx.args.name).exists()
        if not known:  # no engine is asked: the usage log is on the host
            raise UsageError(f"no agent named {ctx.args.name!r} in {ctx.config_path}", f"{PROG} ls")
        names = [ctx.args.name]
    else:
        names = list(ctx.config.agents)
    rows: list[dict[str, Any]] = []
    for name in names:
        spec = ctx.config.agents.get(name)
        factor = parse_price(spec.egress.price if spec else "")
        rows += [{"agent": name, **row} for row in daily(log_lines(name), factor, since)]
    if ctx.args.json:
        say(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        say("no usage recorded yet" + (f" for {ctx.args.name}" if ctx.args.name else ""))
        return EXIT_OK
    print_table(
        ("AGENT", "DATE", "INPUT", "OUTPUT", "CACHE W", "CACHE R", "REQUESTS", "COST"),
        [
            (
                r["agent"],
                r["date"],
                str(r["input"]),
                str(r["output"]),
                str(r["cache_write_5m"] + r["cache_write_1h"]),
                str(r["cache_read"]),
                str(r["requests"]),
                "?" if r["cost_usd"] is None else f"${r['cost_usd']:.2f}",
            )
            for r in rows
        ],
    )
    return EXIT_OK


def create_budget_subparser(sub: Subparsers) -> None:
    """``budget NAME BUDGET``."""
    p = agent_subparser(
        sub,
        "budget",
        help="set an agent's budget (USD per day, per week, or in total)",
        description="Set budget of the agent in the config file (the rest of the file is "
        "kept as written) and in its sidecar's budget file: a running sidecar applies it "
        "to the next request, no restart. Once an agent's spend reaches its budget, its "
        "sidecar refuses new Messages API requests (streams in flight finish).",
    )
    p.add_argument("budget", help='USD: "40/day", "100/week" or "500" (in total)')


def command_budget(ctx: Context) -> int:
    """Set the budget in the config and the running sidecar."""
    if ctx.args.name not in ctx.config.agents:
        raise UsageError(f"no agent named {ctx.args.name!r} in {ctx.config_path}", f"{PROG} ls")
    from bottle_dash.service import set_budget

    spec, live = set_budget(ctx.config_path, ctx.args.name, ctx.args.budget)
    when = "applied to its sidecar" if live else f"applies at the next `{PROG} up`"
    say(f"{spec.name}: budget = {spec.egress.budget!r} ({when})")
    return EXIT_OK
