"""A bottle's life from the command line: ``plan`` (what ``up`` would do), ``up``,
``down`` and ``rm``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from backends.base import NOT_CREATED
from bottle_dash.cli.context import EXIT_OK, PROG, Context
from bottle_dash.cli.output import progress, say
from bottle_dash.cli.parser import agent_subparser

if TYPE_CHECKING:
    from bottle_dash.cli.parser import Subparsers


def create_plan_subparser(sub: Subparsers) -> None:
    """``plan NAME [--json]``."""
    p = agent_subparser(
        sub,
        "plan",
        help="print what `up` would do for an agent (dry run)",
        description="Resolve and print an agent's launch plan (names, labels, volumes, "
        "network, env, limits, prompt, skills, claude arguments) without launching. Writes "
        "only the agent's prompt file on the host.",
    )
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def command_plan(ctx: Context) -> int:
    """Print the agent's launch plan: its warnings, its egress, then every field."""
    from backends.egress.plan import describe as egress_describe
    from backends.plan import plan_warnings

    the_plan = ctx.service.plan(ctx.spec(ctx.args.name))
    if ctx.args.json:
        say(the_plan.to_json())
        return EXIT_OK
    data = the_plan.to_dict()
    rows = [row for key, value in data.items() for row in fold(key, value)]
    width = max(len(k) for k, _ in rows)
    for line in plan_warnings(the_plan):
        say(f"{'WARNING':{width}s}  {line}")
    for line in egress_describe(the_plan):
        say(f"{'egress':{width}s}  {line}")
    repo = the_plan.extra.get("repo")
    if repo:
        base = repo["base"] or "HEAD"
        say(
            f"{'repo':{width}s}  {repo['path']}: its own copy on branch {repo['branch']}, "
            f"from {base} ({repo['base_oid'][:12]} now; an existing copy keeps its own), "
            + (
                "on the machine's disk at /workspace"
                if the_plan.backend == "smolmachines"
                else f"in volume {repo['volume']} at /workspace"
            )
        )
    for key, text in rows:
        say(f"{key:{width}s}  {text}")
    return EXIT_OK


#: A plan value longer than this is summarised (``--json`` prints everything whole).
LONG = 160


def fold(key: str, value: object) -> list[tuple[str, str]]:
    """(key, text) lines for one plan field, readable on a terminal: a table one line per
    key (``extra.seccomp``), a long list one line per item (``claude_args[3]``), and a
    long value (the status hooks' settings JSON) summarised."""
    if isinstance(value, dict) and value:
        return [row for k, v in value.items() for row in fold(f"{key}.{k}", v)]
    if isinstance(value, list) and len(json.dumps(value)) > LONG:
        return [row for i, v in enumerate(value) for row in fold(f"{key}[{i}]", v)]
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if len(text) <= LONG:
        return [(key, text)]
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        what = f"JSON object with {', '.join(sorted(parsed))}"
    else:
        what = text[:60].rstrip() + "…"
    return [(key, f"{what} ({len(text)} characters; `plan --json` prints it whole)")]


def create_up_subparser(sub: Subparsers) -> None:
    """``up NAME``."""
    agent_subparser(
        sub,
        "up",
        help="create and start an agent's bottle (no-op when it runs)",
        description="Launch the agent's bottle (create, start, provision), or start it when "
        "it is stopped. When it is already running, says so and does nothing. A bottle whose "
        "agent is no longer defined can be started, not launched.",
    )


def command_up(ctx: Context) -> int:
    """Launch or start the agent's bottle, showing progress; say so when it runs."""
    from bottle_dash.service import ALREADY_RUNNING

    row = ctx.target(ctx.args.name)
    if row.spec is None:
        # A bottle whose agent left the config can still be started, not launched.
        _bottle, what = ctx.service.up(row, progress)
        say(f"{row.name} (not defined): bottle {row.bottle} {what}")
        return EXIT_OK
    spec = row.spec
    say(f"up {spec.name} ({spec.backend}, image {spec.image})")
    bottle, what = ctx.service.up(row, progress)
    if what == ALREADY_RUNNING:
        say(f"{spec.name}: bottle {bottle.name} is already running; nothing to do")
    else:
        say(f"{spec.name}: bottle {bottle.name} {what}")
    if bottle.plan is not None:
        from backends.plan import plan_warnings

        for line in plan_warnings(bottle.plan):
            say(f"{PROG}: warning: {spec.name}: {line}", sys.stderr)
    return EXIT_OK


def create_down_subparser(sub: Subparsers) -> None:
    """``down NAME``."""
    agent_subparser(
        sub,
        "down",
        help="stop an agent's bottle (its home is kept)",
        description="Stop the agent's bottle. Its home (and claude's conversations) is kept "
        "for the next up or attach.",
    )


def command_down(ctx: Context) -> int:
    """Stop the agent's bottle (none: nothing to do)."""
    row = ctx.target(ctx.args.name)
    if row.state == NOT_CREATED:
        say(f"{row.name} has no bottle; nothing to stop")
        return EXIT_OK
    ctx.service.stop(row)
    say(f"{row.name}: bottle {row.bottle} stopped")
    return EXIT_OK


def create_rm_subparser(sub: Subparsers) -> None:
    """``rm NAME [--volumes]``."""
    p = agent_subparser(
        sub,
        "rm",
        help="remove an agent's bottle",
        description="Remove the agent's bottle and its network. With --volumes also its home "
        "volume (claude's conversations), its repository copy (repo) and its host state "
        "(prompt copy, last plan). --volumes refuses while the copy holds commits not "
        "fetched into the host repository or uncommitted changes, and says which; --force "
        "discards them.",
    )
    p.add_argument(
        "--volumes",
        action="store_true",
        help="also delete the home volume, the repository copy and host state",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="with --volumes: discard a copy's unfetched commits and uncommitted changes",
    )


def command_rm(ctx: Context) -> int:
    """Remove the agent's bottle (and with ``--volumes`` its home and host state)."""
    row = ctx.target(ctx.args.name)
    ctx.service.remove(row, volumes=ctx.args.volumes, force=ctx.args.force)
    kept = (
        ""
        if ctx.args.volumes
        else " (home volume kept, and any repository copy; --volumes deletes them)"
    )
    say(f"{row.name}: bottle {row.bottle} removed{kept}")
    return EXIT_OK


def create_logs_subparser(sub: Subparsers) -> None:
    """``logs NAME [--tail N]``."""
    p = agent_subparser(
        sub,
        "logs",
        help="what the dashboard's l shows: the bottle's state and output, its sidecar's",
        description="Print the bottle's state (since when, restarts, last exit, an OOM "
        "kill), its main process's output, and (docker) the last lines of its egress "
        "sidecar: what the dashboard's `l` shows.",
    )
    p.add_argument("--tail", type=int, default=200, metavar="N", help="lines of each (200)")


def command_logs(ctx: Context) -> int:
    """Print the agent's bottle logs."""
    row = ctx.target(ctx.args.name)
    if row.state == NOT_CREATED:
        say(f"{row.name} has no bottle yet: nothing has run (`{PROG} up {row.name}`)")
        return EXIT_OK
    say(ctx.service.logs(row, tail=ctx.args.tail).rstrip())
    return EXIT_OK
