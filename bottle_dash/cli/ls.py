"""``bottle-dash ls``: the agents and their bottles, as a table or JSON.

``ls`` is run often (by operators and scripts) and its start is mostly imports: this
module imports no other command's module, and what only a running command needs is
imported in its body.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from backends.base import BackendError
from bottle_dash.cli.context import EXIT_CONFIG, EXIT_OK, EXIT_UNAVAILABLE, PROG, Context
from bottle_dash.cli.output import error, print_table, say

if TYPE_CHECKING:
    from bottle_dash.cli.parser import Subparsers
    from bottle_dash.service import AgentRow
    from bottle_dash.tmux import PaneInfo


def create_ls_subparser(sub: Subparsers) -> None:
    """``ls [--json]``."""
    p = sub.add_parser(
        "ls",
        help="list agents and their bottles",
        description="List defined agents and labelled bottles, with state (running, "
        "stopped, not created). Bottles whose agent is no longer defined are marked.",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of objects (name, backend, bottle, state, image, created, "
        "defined, workspace, id, status, status_since, egress, permissions, seal, "
        "seal_failures, workspace_warnings, runs_as_root)",
    )


def command_ls(ctx: Context) -> int:
    """List every agent and bottle; exit 4 when a backend that is needed did not answer
    (the rows it could not see are still printed)."""
    from bottle_dash.config import ConfigErrors

    bad_agents = False
    try:
        config = ctx.config  # a broken file stops here, before anything runs
    except ConfigErrors as exc:  # bad agents: each said, the good ones still listed
        if not exc.partial.agents:
            raise  # nothing good to list: the config error alone, no backend asked
        for each in exc.errors:
            error(each.headline, each.fix or f"edit {each.path}")
        config, bad_agents = exc.partial, True
    panes = panes_meanwhile()
    rows, problems = ctx.service.list_agents(config)
    rows = add_statuses(rows, panes())
    fatal = [p for p in problems if p.fatal]
    for problem in fatal:
        error(f"{problem.component}: {problem.what}", problem.fix)
    for problem in problems:
        if not problem.fatal:  # a backend no agent uses, a stray bottle: a line, not a failure
            say(f"{PROG}: note: {problem.component}: {problem.what}", sys.stderr)
    if ctx.args.json:
        from bottle_dash.service import inspected  # the seal and workspace: read for JSON
        from bottle_dash.service.copies import with_changes

        rows = with_changes(ctx.service.backend, rows)
        say(json.dumps([inspected(r).to_dict() for r in rows], indent=2))
        return _exit(fatal, bad_agents)
    if not config.exists:
        say(f"{PROG}: no config file at {ctx.config_path} (create one: {PROG} init)", sys.stderr)
    if not rows:
        say("no agents defined" + ("" if fatal else " and no bottles found"))
        return _exit(fatal, bad_agents)
    header = (
        "NAME", "BACKEND", "STATE", "EGRESS", "PERMS", "BOTTLE", "IMAGE", "CREATED", "STATUS"
    )  # fmt: skip
    table = []
    for r in rows:
        name = r.name if r.defined else f"{r.name} (not defined)"
        status = r.status.label if r.status else "-"
        egress = r.egress.upper() if r.egress in ("unsealed", "sidecar down") else r.egress
        table.append(
            (
                name,
                r.backend,
                r.state,
                egress or "-",
                r.permissions or "-",
                r.bottle,
                r.image,
                r.created or "-",
                status,
            )
        )
    print_table(header, table)
    return _exit(fatal, bad_agents)


def _exit(fatal: object, bad_agents: bool) -> int:
    """3 when an agent's table is bad (the config is the operator's first fix), else 4
    when a needed backend did not answer."""
    if bad_agents:
        return EXIT_CONFIG
    return EXIT_UNAVAILABLE if fatal else EXIT_OK


def panes_meanwhile() -> Callable[[], dict[str, PaneInfo]]:
    """Start reading the panes of the tmux server the dashboard uses (one ``list-panes``:
    ``$TMUX``'s server, else the default one) in a thread, and return the function that
    waits for them: ``ls`` lists the backends meanwhile. No tmux, or a tmux that did not
    answer in time, means no panes (the status files still tell)."""
    import threading

    from bottle_dash.tmux import list_panes

    found: dict[str, PaneInfo] = {}
    failed: list[Exception] = []

    def read() -> None:
        try:
            found.update(list_panes())
        except BackendError:
            pass
        except Exception as exc:  # raised in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()

    def wait() -> dict[str, PaneInfo]:
        thread.join()
        if failed:
            raise failed[0]
        return found

    return wait


def add_statuses(rows: Sequence[AgentRow], panes: Mapping[str, PaneInfo]) -> list[AgentRow]:
    """The rows with their status from the status file and the pane (``panes``, by agent),
    as the dashboard would see them now."""
    import time

    from backends.status_file import read_status
    from bottle_dash.status import agent_statuses

    statuses = agent_statuses(rows, panes, read_status, time.time())
    return [row._replace(status=statuses.get(row.name)) for row in rows]
