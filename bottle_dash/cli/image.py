"""``bottle-dash image build``: the agent image, from its Dockerfile or assembled offline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.base import DEFAULT_IMAGE
from bottle_dash.cli.context import EXIT_OK, PROG, Context, UsageError
from bottle_dash.cli.output import progress, say
from bottle_dash.cli.parser import Parser

if TYPE_CHECKING:
    from bottle_dash.cli.parser import Subparsers


def create_image_subparser(sub: Subparsers) -> None:
    """``image build [--tag TAG] [--offline | --dockerfile] [--rebuild]``."""
    p = sub.add_parser(
        "image",
        help="manage the agent image",
        description="Manage the Docker agent image.",
    )
    image_sub = p.add_subparsers(dest="image_command", metavar="ACTION", parser_class=Parser)
    p = image_sub.add_parser(
        "build",
        help="build the agent image (Node, git, Claude Code from npm)",
        description="Build the agent image, showing progress: from its Dockerfile when the "
        "base image can be pulled, else assembled offline from Debian packages and npm "
        "(needs root and debootstrap). Either way it installs the pinned Claude Code and "
        "records its version in the label bottle-dash.claude-code.",
    )
    p.add_argument("--tag", default=DEFAULT_IMAGE, help=f"image tag (default {DEFAULT_IMAGE})")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--offline",
        action="store_true",
        help="assemble offline without trying a registry (cached by a hash of its inputs)",
    )
    how.add_argument(
        "--dockerfile", action="store_true", help="build from the Dockerfile only (no fallback)"
    )
    p.add_argument(
        "--rebuild", action="store_true", help="assemble again even when the cached one exists"
    )
    p.add_argument(
        "--seal",
        action="store_true",
        help="build the kubernetes backend's seal image instead (iptables for the pod's init "
        "container; assembled offline, tagged by a hash of its inputs); push it where the "
        "cluster's nodes pull from",
    )


def command_image(ctx: Context) -> int:
    """Build the agent image through the service, showing progress."""
    if ctx.args.image_command != "build":
        raise UsageError("image needs an action", f"{PROG} image build [--tag TAG]")
    a = ctx.args
    if a.seal:
        from backends.kubernetes.image import ensure_seal_image

        say("building the kubernetes seal image")
        say(f"built {ensure_seal_image(progress)}")
        return EXIT_OK
    offline = True if a.offline else (False if a.dockerfile else None)
    say(f"building {a.tag}")
    ctx.service.build_image(a.tag, progress, offline=offline, rebuild=a.rebuild)
    say(f"built {a.tag}")
    return EXIT_OK
