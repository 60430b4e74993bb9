"""Commands that run something in an agent's bottle in this terminal and exit with its
status: ``attach`` (claude, resuming the last conversation) and ``exec`` (any command)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from backends.base import GUEST_USER, RUNNING
from bottle_dash.cli.context import PROG, Context, UsageError
from bottle_dash.cli.output import is_tty, progress_err, say
from bottle_dash.cli.parser import agent_subparser

if TYPE_CHECKING:
    from bottle_dash.cli.parser import Subparsers


def create_attach_subparser(sub: Subparsers) -> None:
    """``attach NAME [--fresh]``."""
    p = agent_subparser(
        sub,
        "attach",
        help="attach this terminal to the agent's claude (started when none runs)",
        description="Attach this terminal to the claude that runs in the agent's bottle "
        "(its session holder: a dashboard pane showing it stays attached too), or start "
        "one when none runs, resuming the agent's pinned session (claude --resume ID, else "
        "--session-id ID). Launches the bottle first when it is not running. Exits with "
        "claude's exit status when claude ends; closing the terminal only detaches.",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="end the claude that runs and start a new conversation (a new session id)",
    )


def command_attach(ctx: Context) -> int:
    """Run claude in the bottle (launched or started first when needed)."""
    from backends.run import foreground

    row = ctx.target(ctx.args.name)
    if row.state != RUNNING:
        verb = "launching" if row.spec is not None else "starting"
        say(f"{row.name} is {row.state}; {verb} it first", sys.stderr)
    argv = ctx.service.attach_argv(row, fresh=ctx.args.fresh, tty=is_tty(), progress=progress_err)
    return foreground(argv)


def create_exec_subparser(sub: Subparsers) -> None:
    """``exec [--user USER] NAME -- CMD [ARG ...]``."""
    p = agent_subparser(
        sub,
        "exec",
        help="run a command in an agent's bottle",
        description="Run CMD in the agent's running bottle (as node unless --user) and exit "
        "with its status. Put -- before CMD.",
        usage=f"{PROG} exec [-h] [--user USER] NAME -- CMD [ARG ...]",
    )
    p.add_argument(
        "--user", "-u", default=GUEST_USER, help=f"user in the bottle (default {GUEST_USER})"
    )
    p.add_argument("cmd", nargs="*", metavar="CMD", help="the command and its arguments")


def command_exec(ctx: Context) -> int:
    """Run the command in the agent's running bottle."""
    from backends.run import foreground

    cmd = list(ctx.args.cmd)
    if not cmd:
        raise UsageError(
            "exec needs a command to run", f"{PROG} exec {ctx.args.name} -- CMD [ARG ...]"
        )
    row = ctx.target(ctx.args.name)
    if row.state != RUNNING:
        raise UsageError(
            f"{row.name}'s bottle is {row.state}, not running",
            f"{PROG} up {row.name}",
        )
    argv = ctx.service.exec_argv(row, cmd, user=ctx.args.user, tty=is_tty())
    return foreground(argv)
