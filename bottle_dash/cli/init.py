"""``bottle-dash init``: a starter config with a first agent for this directory, and the
agent image built when it is missing (asked on a terminal)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from backends.base import DEFAULT_IMAGE, is_slug
from bottle_dash.cli.context import EXIT_OK, PROG, Context, UsageError
from bottle_dash.cli.output import progress, say
from bottle_dash.config.starter import first_agent_values, write_starter

if TYPE_CHECKING:
    from bottle_dash.cli.parser import Subparsers


def create_init_subparser(sub: Subparsers) -> None:
    """``init [--name NAME] [--workspace DIR] [--build | --no-build]``."""
    p = sub.add_parser(
        "init",
        help="write a starter config with a first agent for this directory (never overwrites)",
        description="Write a commented starter config to the config path, with a first agent "
        "that works in the current directory (workspace = this directory, image = the "
        "default agent image), and print that path. Refuses to overwrite an existing file. "
        "When the agent image is not built, offers to build it (on a terminal), showing "
        "progress; --build builds without asking, --no-build never does.",
    )
    p.add_argument("--name", help="the first agent's name (default: this directory's name)")
    p.add_argument("--workspace", help="its workspace (default: the current directory)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--build", action="store_true", help="build a missing agent image")
    how.add_argument("--no-build", action="store_true", help="never build the agent image")


def command_init(ctx: Context) -> int:
    """Write the starter config (never over an existing file), print its path, and offer
    to build the agent image."""
    a = ctx.args
    workspace = Path(a.workspace).expanduser().absolute() if a.workspace else Path.cwd()
    name = a.name or first_agent_values(workspace, {}, {})["name"]
    if not is_slug(name):
        raise UsageError(
            f"{name!r} is not an agent name",
            "use lower-case letters, digits and '-' (at most 40), e.g. --name my-agent",
        )
    if not workspace.is_dir():
        raise UsageError(f"workspace {workspace} is not a directory", "create it first")
    path = write_starter(ctx.config_path, name=name, workspace=workspace)
    say(str(path))
    say(f"wrote a starter config with agent {name} (workspace {workspace})", sys.stderr)
    from backends.images.agent import image_state

    image = DEFAULT_IMAGE
    state = image_state(image)
    missing = not state.exists and not state.error and not a.no_build
    if missing and (a.build or _ask(f"the agent image {image} is not built; build it now? [Y/n] ")):
        ctx.service.build_image(image, progress)
        say(f"built {image}", sys.stderr)
    if not image_state(image).exists:
        say(f"build the agent image with: {PROG} image build", sys.stderr)
    say(f"next: {PROG} attach {name}   (or start {PROG} and press enter)", sys.stderr)
    return EXIT_OK


def _ask(question: str) -> bool:
    """A yes/no question on the terminal (no terminal: no)."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("", "y", "yes")
