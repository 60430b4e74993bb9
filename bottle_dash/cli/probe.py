"""``bottle-dash probe``: the escape probes against an agent's running bottle."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from backends.base import RUNNING
from bottle_dash.cli.context import EXIT_FAILED, EXIT_OK, PROG, Context, UsageError
from bottle_dash.cli.output import say
from bottle_dash.cli.parser import agent_subparser

if TYPE_CHECKING:
    from bottle_dash.cli.parser import Subparsers


def create_probe_subparser(sub: Subparsers) -> None:
    """``probe NAME [--json] [--only PROBE ...]``."""
    p = agent_subparser(
        sub,
        "probe",
        help="run the escape probes against an agent's running bottle",
        description="Run the escape probes (host, credential, network) against the agent's "
        "running bottle and print pass / fail / n/a with the evidence, and the fix for each "
        "failure. Nothing is sent outside the bottle's own network. The whole suite's result "
        "is kept for the dashboard's seal badge and `ls --json`. Exits 1 when a probe fails.",
    )
    p.add_argument("--json", action="store_true", help="print the run as JSON")
    p.add_argument(
        "--only", action="append", metavar="PROBE", help="run this probe only (repeatable)"
    )


def command_probe(ctx: Context) -> int:
    """Run the probes and print each outcome with its evidence; exit 1 when one failed."""
    row = ctx.target(ctx.args.name)
    if row.state != RUNNING:
        raise UsageError(
            f"{row.name}'s bottle is {row.state}, not running", f"{PROG} up {row.name}"
        )
    run = ctx.service.probe(row, ctx.args.only or None)
    if ctx.args.json:
        say(json.dumps(run.to_dict(), indent=2))
        return EXIT_FAILED if run.failures else EXIT_OK
    for result in run.results:
        say(f"{result.outcome:4s}  {result.group:10s}  {result.probe:24s}  {result.evidence}")
        if result.fix:
            say(f"{'':4s}  {'':10s}  {'':24s}  fix: {result.fix}")
    say(f"{row.name}: {run.seal}")
    return EXIT_FAILED if run.failures else EXIT_OK
