"""``bottle-dash doctor``: each backend, each agent image and tmux, what is missing and
the exact fix."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from backends.base import Problem
from bottle_dash.cli.context import EXIT_CONFIG, EXIT_OK, EXIT_UNAVAILABLE, PROG, Context
from bottle_dash.cli.output import error, say
from bottle_dash.config import Config, ConfigError

if TYPE_CHECKING:
    from bottle_dash.cli.parser import Subparsers


def create_doctor_subparser(sub: Subparsers) -> None:
    """``doctor [--json]``."""
    p = sub.add_parser(
        "doctor",
        help="check each backend, each agent image and tmux, and say how to fix what is missing",
        description="Check each backend (with what its engine enforces: user namespace, disk "
        "budget), each agent image (with its Claude Code version) and tmux: what is there, "
        "what is missing and the exact fix. Exits 4 when a component that is needed (used by "
        "a defined agent, or tmux) is missing.",
    )
    p.add_argument("--json", action="store_true", help="print the checks as JSON")


def command_doctor(ctx: Context) -> int:
    """Print every check (a broken config is one of them); exit 3 when only the config
    failed, 4 when a needed component is missing."""
    from bottle_dash.service import Check

    config_check = Check("config", needed=True)
    loaded: Config | None = None
    try:
        loaded = ctx.config
        agents = len(loaded.agents)
        config_check.found = (
            f"{ctx.config_path} ({agents} agent{'s' if agents != 1 else ''})"
            if loaded.exists
            else f"no file at {ctx.config_path}"
        )
        if not loaded.exists:
            config_check.problems.append(
                Problem(
                    "config",
                    f"no config file at {ctx.config_path}",
                    f"run {PROG} init",
                    fatal=False,
                )
            )
    except ConfigError as exc:
        config_check.problems.append(Problem("config", exc.headline, exc.fix or ""))
    checks = [config_check, *ctx.service.doctor(loaded)]
    failed = [c for c in checks if c.needed and not c.ok]
    if ctx.args.json:
        say(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        for check in checks:
            mark = "ok" if check.ok else ("MISSING" if check.needed else "missing")
            need = "" if check.needed else " (not used by any agent)"
            say(f"{check.component:13s} {mark}{need}" + (f": {check.found}" if check.found else ""))
            for problem in check.problems:
                say(f"    {'problem' if problem.fatal else 'note'}: {problem.what}")
                if problem.fix:
                    say(f"    fix: {problem.fix}")
    if failed:
        names = ", ".join(c.component for c in failed)
        error(f"needed components are missing: {names}", "apply the fixes printed above")
        return EXIT_CONFIG if failed == [config_check] else EXIT_UNAVAILABLE
    return EXIT_OK
