"""The ``bottle-dash`` console script and ``python -m bottle_dash``: one command line
(``bottle_dash.cli``) in a process of its own, which ends when the command does."""

from __future__ import annotations

import gc


def main() -> int:
    """Run the command line with the cyclic garbage collector off.

    A command runs for a moment and then the process exits: its modules create many
    objects and almost no cycles, yet the collector would scan them all, while they load
    and once more at exit, ~9 % of what ``ls`` (run often) executes. So it is off, and
    what exists at the end is frozen so the exit does not scan it either. The dashboard,
    which runs for hours, turns it back on (``cli.dashboard.command_dashboard``).
    """
    gc.disable()
    from bottle_dash.cli import main as run

    try:
        return run()
    finally:
        gc.freeze()


if __name__ == "__main__":
    raise SystemExit(main())
