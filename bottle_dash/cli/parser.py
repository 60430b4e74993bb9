"""argparse, shaped for bottle-dash: errors as ``error:`` + ``fix:``, help as wide as the
terminal without importing shutil, the global options, and the helper for a subcommand
whose first argument is an agent's name."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bottle_dash.cli.context import EXIT_USAGE, PROG

if TYPE_CHECKING:
    from typing import TypeAlias

    #: What ``create_<command>_subparser`` adds its subcommand to.
    Subparsers: TypeAlias = argparse._SubParsersAction["Parser"]


def _help_width() -> int:
    """The width argparse's help would take (``shutil.get_terminal_size``'s columns, less
    2), found without importing shutil: argparse makes a formatter on every
    ``add_argument``, and shutil brings bz2 and lzma with it, a cost ``ls`` (run often)
    need not pay."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (ValueError, OSError):  # stdout closed, detached or not a terminal
            columns = 0
    return (columns or 80) - 2


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter with the width from ``_help_width``."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _help_width() if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``argparse.RawDescriptionHelpFormatter`` with the width from ``_help_width``."""


class Parser(argparse.ArgumentParser):
    """argparse, but its errors follow our ``error:`` + ``fix:`` shape (and its help is
    formatted by ``HelpFormatter`` unless told otherwise)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Exit 2 with ``error:`` and a ``fix:`` that points at ``--help``."""
        self.exit(
            EXIT_USAGE,
            f"{PROG}: error: {message}\nfix: see {self.prog} --help\n",
        )


def create_root_parser() -> Parser:
    """The ``bottle-dash`` parser with its global options (no subcommands yet)."""
    parser = Parser(
        prog=PROG,
        description=(
            "A cockpit for many Claude Code agents, each sealed in a bottle (a Docker "
            "container or a smolvm microVM). Without a command, runs the dashboard."
        ),
        epilog=(
            "Global options go before COMMAND. `bottle-dash COMMAND --help` describes each.\n"
            "config file: --config PATH, else $BOTTLE_DASH_CONFIG, else\n"
            "  $XDG_CONFIG_HOME/bottle-dash/config.toml (bottle-dash init writes a starter).\n"
            "exit codes: 0 ok, 1 failed, 2 usage or unknown agent, 3 config error,\n"
            "  4 backend unavailable (doctor: a needed component is missing), 130 interrupted;\n"
            "  attach and exec exit with the status of what ran in the bottle."
        ),
        formatter_class=RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, metavar="PATH", help="the config file to use (see below)"
    )
    parser.add_argument("--theme", metavar="NAME", help="dashboard theme to start with")
    parser.add_argument(
        "--no-tmux",
        action="store_true",
        help="run the dashboard in this terminal instead of a tmux session",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging to stderr (host commands run, with secrets redacted)",
    )
    return parser


def agent_subparser(sub: Subparsers, command: str, **kwargs: Any) -> Parser:
    """A subcommand whose first positional is the agent's ``name``."""
    p = sub.add_parser(command, **kwargs)
    p.add_argument("name", help="agent name")
    return p
