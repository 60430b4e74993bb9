"""``bottle-dash add``: define one more agent in the config file, as the dashboard's ``n``
form does (``config.edit.append_agent``: validated against the file's ``[defaults]``, the
rest of the file kept as written). ``init`` writes the first config; ``add`` every agent
after it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bottle_dash.cli.context import EXIT_OK, PROG, Context, UsageError
from bottle_dash.cli.output import say

if TYPE_CHECKING:
    from bottle_dash.cli.parser import Subparsers


def create_add_subparser(sub: Subparsers) -> None:
    """``add NAME [--workspace DIR | --repo DIR] [--image IMG] [--allow HOST…] …``."""
    p = sub.add_parser(
        "add",
        help="define a new agent in the config file (as the dashboard's n form does)",
        description="Append an [agents.NAME] table to the config file, validated like the "
        "file itself against its [defaults] (the rest of the file is kept as written; a "
        "missing file is created). Refuses a name already defined. Options left out are "
        "left out of the table: [defaults] apply.",
    )
    p.add_argument("name", help="the new agent's name (a-z, 0-9 and -)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workspace", metavar="DIR", help="host directory mounted at /workspace")
    where.add_argument(
        "--repo", metavar="DIR", help="a git repository the agent works on in its own copy"
    )
    p.add_argument("--image", metavar="IMG", help="the agent image")
    p.add_argument("--backend", metavar="NAME", help="docker or smolmachines")
    p.add_argument("--allow", metavar="HOST", nargs="+", default=[], help="egress_allow entries")
    p.add_argument("--prompt", help="appended to claude's system prompt")
    p.add_argument("--git-user", metavar="'NAME <EMAIL>'", help="who the agent commits as")
    p.add_argument(
        "--env", metavar="KEY=VALUE", action="append", default=[], help="an env variable"
    )


def add_table(args: Any) -> dict[str, Any]:
    """The config table the options say (paths made absolute)."""
    table: dict[str, Any] = {}
    for key in ("workspace", "repo"):
        value = getattr(args, key)
        if value:
            table[key] = str(Path(value).expanduser().absolute())
    for key in ("image", "backend", "prompt", "git_user"):
        value = getattr(args, key)
        if value:
            table[key] = value
    if args.allow:
        table["egress_allow"] = list(args.allow)
    env: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {item!r} is not KEY=VALUE", "e.g. --env TZ=UTC")
        env[key] = value
    if env:
        table["env"] = env
    return table


def command_add(ctx: Context) -> int:
    """Append the agent's table to the config file and say what was written."""
    from bottle_dash.config.edit import append_agent, render_agent

    table = add_table(ctx.args)
    spec = append_agent(ctx.config_path, ctx.args.name, table)
    say(render_agent(spec.name, table).rstrip())
    say(f"added agent {spec.name} to {ctx.config_path}")
    say(f"next: {PROG} up {spec.name}   (or press enter on it in the dashboard)")
    return EXIT_OK
