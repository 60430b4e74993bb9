"""The ``bottle-dash`` command line.

``bottle-dash [--config PATH] [--theme NAME] [--no-tmux] [-v] [COMMAND ...]``: without a
command it runs the dashboard; the commands do what the dashboard's keys do, through the
same ``bottle_dash.service.AgentService``.

Every failure is printed as ``bottle-dash: error: <message>`` and a ``fix:`` line on
stderr, never as a traceback. The config is loaded and checked before any command touches
a bottle, so a bad config changes nothing.

Exit codes:
    0    success
    1    an operation failed (launch, missing bottle or image, a command in the bottle)
    2    usage error: bad arguments, unknown agent name, dashboard not installed
    3    config error (the message names the file, line, agent and key)
    4    a backend is unavailable (Docker not answering, smolvm missing); for ``doctor``:
         a needed component is missing
    130  interrupted (Ctrl-C)
    ``attach`` and ``exec`` return the exit status of what they ran in the bottle.

This module only wires the commands: each lives in the module of its group (``OWNERS``),
which owns its ``create_<command>_subparser`` and ``command_<command>``, and is imported
only when that command is parsed or run: ``ls`` is run often, and its start is mostly
imports.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from types import ModuleType

from backends.base import BackendError, BackendUnavailable
from bottle_dash.cli.context import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    PROG,
    Context,
    UsageError,
)
from bottle_dash.cli.output import error
from bottle_dash.cli.parser import Parser, create_root_parser
from bottle_dash.config import ConfigError

#: Every command, in ``--help``'s order, and the module of this package that owns it.
OWNERS = {
    "init": "init",
    "add": "add",
    "doctor": "doctor",
    "plan": "bottle",
    "up": "bottle",
    "probe": "probe",
    "ls": "ls",
    "attach": "foreground",
    "exec": "foreground",
    "down": "bottle",
    "rm": "bottle",
    "fetch": "work",
    "merge": "work",
    "pr": "work",
    "diff": "work",
    "logs": "bottle",
    "egress": "egress",
    "allow": "egress",
    "usage": "usage",
    "budget": "usage",
    "image": "image",
}


def owner(command: str) -> ModuleType:
    """The module that owns ``command`` (imported now, if it was not)."""
    return import_module(f"{__name__}.{OWNERS[command]}")


def _runner(command: str) -> Callable[[Context], int]:
    def run(ctx: Context) -> int:
        handler: Callable[[Context], int] = getattr(owner(command), f"command_{command}")
        return handler(ctx)

    run.__name__ = run.__qualname__ = f"command_{command}"
    return run


#: What ``main`` runs for each command (each imports its module when it runs).
COMMANDS: dict[str, Callable[[Context], int]] = {command: _runner(command) for command in OWNERS}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full argument parser (also what ``--help`` prints); with ``only``, the same
    parser with that one subcommand (``command_word`` says when it parses alike), built
    without importing the other commands' modules."""
    parser = create_root_parser()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in OWNERS:
        if only is None or command == only:
            getattr(owner(command), f"create_{command}_subparser")(sub)
    return parser


#: Global options: those followed by a value, and flags (``command_word`` skips them).
_VALUE_OPTIONS = ("--config", "--theme")
_FLAG_OPTIONS = ("--no-tmux", "-v", "--verbose")


def command_word(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs, when only global options spelled out in full come
    before it: then the parser of that one subcommand (``build_parser(only=...)``) parses
    ``argv`` as the full one does, and the others need not be built (``ls`` is run often).
    None otherwise (no command, ``-h``, an abbreviated option, an unknown word)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUE_OPTIONS:
            i += 2
        elif arg in _FLAG_OPTIONS or arg.startswith(tuple(f"{o}=" for o in _VALUE_OPTIONS)):
            i += 1
        elif arg.startswith("-"):
            return None
        else:
            return arg if arg in COMMANDS else None
    return None


def _parse(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; for ``exec``, everything after the first ``--`` is the command.

    (argparse does not pass a ``--`` through a subcommand to a positional list, so the
    command is split off first and given back after parsing.)
    """
    parser = build_parser(only=command_word(argv[: argv.index("--")] if "--" in argv else argv))
    if "--" in argv:
        cut = argv.index("--")
        args = parser.parse_args(argv[:cut])
        if args.command == "exec":
            args.cmd = [*args.cmd, *argv[cut + 1 :]]
            return args
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bottle-dash`` console script; returns the exit status."""
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    if args.verbose:
        import logging  # here: without -v nothing logs (`ls` is run often)

        # Our loggers only: the docker SDK's and urllib3's debug output would drown them.
        logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(name)s: %(message)s")
        for name in ("bottle_dash", "backends"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        ctx = Context(args)
        if args.command is None:
            from bottle_dash.cli.dashboard import command_dashboard

            return command_dashboard(ctx)
        return COMMANDS[args.command](ctx)
    except ConfigError as exc:
        for each in getattr(exc, "errors", None) or [exc]:  # ConfigErrors: every bad agent
            error(each.headline, each.fix or f"edit {each.path}")
        return EXIT_CONFIG
    except UsageError as exc:
        error(exc.message, exc.fix)
        return EXIT_USAGE
    except BackendUnavailable as exc:
        error(exc.message, exc.fix)
        return EXIT_UNAVAILABLE
    except BackendError as exc:
        error(exc.message, exc.fix)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        # Host-side file problems (state dir not writable, ...): a message, not a traceback.
        error(str(exc), "check the path and its permissions")
        return EXIT_FAILED
    except Exception as exc:
        # A bug: still one clear line by default; -v shows where it happened.
        if args.verbose:
            import logging

            logging.getLogger(PROG).exception("internal error")
        error(
            f"internal error: {type(exc).__name__}: {exc}",
            f"rerun with {PROG} -v to see where, and report it",
        )
        return EXIT_FAILED


__all__ = ["COMMANDS", "build_parser", "command_word", "main"]
