"""``bottle-dash`` without a command: the dashboard (``bottle_dash.session``)."""

from __future__ import annotations

import gc

from bottle_dash.cli.context import PROG, Context, UsageError


def command_dashboard(ctx: Context) -> int:
    """Check the config, then run the dashboard until it quits; its exit status."""
    try:
        from bottle_dash.session import run_dashboard as run
    except ImportError as exc:
        raise UsageError(
            f"the dashboard is not available in this install ({exc})",
            f"use the commands meanwhile: {PROG} --help",
        ) from exc
    # Load the config first so a broken file is reported here, plainly, before the UI starts.
    ctx.config  # noqa: B018
    # The console script runs commands with the garbage collector off (bottle_dash.__main__);
    # the dashboard runs for hours and creates cycles (widgets, workers): collect them.
    gc.enable()
    return int(run(config_path=ctx.config_path, no_tmux=ctx.args.no_tmux, theme=ctx.args.theme))
