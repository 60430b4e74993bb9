"""An agent's egress from the command line: ``egress`` (what its sidecar allowed and
denied) and ``allow`` (a host added to its allowlist)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bottle_dash.cli.context import EXIT_OK, PROG, Context, UsageError
from bottle_dash.cli.output import print_table, say
from bottle_dash.cli.parser import agent_subparser

if TYPE_CHECKING:
    from backends.egress.log import HostSummary
    from bottle_dash.cli.parser import Subparsers


def create_egress_subparser(sub: Subparsers) -> None:
    """``egress NAME [--json]``."""
    p = agent_subparser(
        sub,
        "egress",
        help="an agent's egress log: allowed and denied hosts",
        description="Summarize the agent's egress log (one JSON line per decision of its "
        "sidecar): each host:port with how often it was allowed and denied, the last time, "
        "and the last reason it was denied.",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list (host, port, rule, allowed, denied, last, last_reason)",
    )


def command_egress(ctx: Context) -> int:
    """Print the agent's egress by host, its own apart from the probes' traffic."""
    ctx.target(ctx.args.name)  # an unknown agent is a usage error
    from bottle_dash.service import egress_summary

    hosts = egress_summary(ctx.args.name)
    if ctx.args.json:
        say(json.dumps([h.to_dict() for h in hosts], indent=2))
        return EXIT_OK
    if not hosts:
        say(f"{ctx.args.name}: no egress recorded yet")
        return EXIT_OK
    agent = [h for h in hosts if not h.probe]
    probes = [h for h in hosts if h.probe]
    if agent or not probes:
        _egress_table(agent)
    else:
        say(f"{ctx.args.name}: no egress of the agent's recorded yet")
    if probes:
        say("")
        say("probe traffic (`bottle-dash probe`; answered by the sidecar, never sent upstream):")
        _egress_table(probes)
    return EXIT_OK


def _egress_table(hosts: Sequence[HostSummary]) -> None:
    print_table(
        ("HOST", "ALLOWED", "DENIED", "LAST", "LAST DENIAL"),
        [(h.rule, str(h.allowed), str(h.denied), h.last or "-", h.last_reason) for h in hosts],
    )


def create_allow_subparser(sub: Subparsers) -> None:
    """``allow NAME HOST``."""
    p = agent_subparser(
        sub,
        "allow",
        help="add a host to an agent's egress allowlist",
        description="Add HOST (github.com, *.npmjs.org, host:80) to egress_allow of the "
        "agent in the config file (the rest of the file is kept as written). A running "
        "sidecar applies it at once; otherwise the next up does.",
    )
    p.add_argument("host", help="host, *.domain or host:port")


def command_allow(ctx: Context) -> int:
    """Add the host to the agent's ``egress_allow`` in the config file (and to its running
    sidecar)."""
    if ctx.args.name not in ctx.config.agents:
        raise UsageError(f"no agent named {ctx.args.name!r} in {ctx.config_path}", f"{PROG} ls")
    from bottle_dash.service import allow_host

    spec, live = allow_host(ctx.config_path, ctx.args.name, ctx.args.host)
    when = "applied to the running sidecar" if live else f"applies at the next `{PROG} up`"
    say(f"{spec.name}: egress_allow = {list(spec.egress.allow)} ({when})")
    return EXIT_OK
