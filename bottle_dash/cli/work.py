"""Bringing an agent's work home: ``fetch``, ``merge`` and ``pr``, each asking before it
changes the host repository (``--yes`` answers for scripts; no terminal and no ``--yes``:
nothing changes)."""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING

from bottle_dash.cli.context import EXIT_FAILED, EXIT_OK, Context
from bottle_dash.cli.output import say
from bottle_dash.cli.parser import agent_subparser

if TYPE_CHECKING:
    from bottle_dash.cli.parser import Subparsers


def _yes_flag(p: object) -> None:
    p.add_argument(  # type: ignore[attr-defined]
        "--yes", "-y", action="store_true", help="do it without asking (for scripts)"
    )


def _confirm(ctx: Context, question: str) -> bool:
    """``--yes``, or the operator's yes on a terminal (no terminal: no)."""
    if ctx.args.yes:
        return True
    if not sys.stdin.isatty():
        say(f"{question}: not confirmed (no terminal); pass --yes", sys.stderr)
        return False
    try:
        answer = input(f"{question}? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _record(ctx: Context) -> dict[str, object]:
    from bottle_dash.service import copies

    row = ctx.target(ctx.args.name)
    return copies._need(row.name)


def create_fetch_subparser(sub: Subparsers) -> None:
    """``fetch NAME [--yes]``."""
    p = agent_subparser(
        sub,
        "fetch",
        help="bring an agent's commits into the host repository as its branch",
        description="Fetch the agent's branch from its copy into the host repository (repo) "
        "as the same branch. git-upload-pack runs in the bottle; git on the host only "
        "receives and checks the objects (transfer.fsckObjects): nothing of the copy's "
        "config or attributes is read or run on the host.",
    )
    _yes_flag(p)


def command_fetch(ctx: Context) -> int:
    """Fetch the agent's branch into the host repository."""
    from bottle_dash.service import copies

    row = ctx.target(ctx.args.name)
    rec = _record(ctx)
    if not _confirm(ctx, f"fetch branch {rec['branch']} of {row.name} into {rec['path']}"):
        return EXIT_FAILED
    repo, branch, oid = copies.fetch(ctx.service.backend(row.backend), row.name)
    say(f"{row.name}: branch {branch} is {oid[:12]} in {repo}")
    return EXIT_OK


def create_merge_subparser(sub: Subparsers) -> None:
    """``merge NAME [--yes]``."""
    p = agent_subparser(
        sub,
        "merge",
        help="merge an agent's fetched branch into the host repository's current branch",
        description="Merge the agent's branch (fetch it first) into the branch checked out "
        "in the host repository. Refuses while the host's work tree has uncommitted changes.",
    )
    _yes_flag(p)


def command_merge(ctx: Context) -> int:
    """Merge the agent's branch into the host's current branch."""
    from bottle_dash.service import copies

    row = ctx.target(ctx.args.name)
    rec = _record(ctx)
    if not _confirm(ctx, f"merge {rec['branch']} into the current branch of {rec['path']}"):
        return EXIT_FAILED
    repo, out = copies.merge(row.name)
    say(f"{row.name}: merged {rec['branch']} in {repo}" + (f"\n{out}" if out else ""))
    return EXIT_OK


def create_pr_subparser(sub: Subparsers) -> None:
    """``pr NAME [--remote R] [--yes]``."""
    p = agent_subparser(
        sub,
        "pr",
        help="push an agent's branch with your own remote and open a pull request",
        description="Push the agent's fetched branch to REMOTE of the host repository with "
        "your own git credentials, then open a pull request with `gh pr create` when gh is "
        "installed (else print the command to run).",
    )
    p.add_argument("--remote", default="origin", help="the host repository's remote (origin)")
    _yes_flag(p)


def command_pr(ctx: Context) -> int:
    """Push the agent's branch and open a pull request."""
    from backends import run
    from bottle_dash.service import copies

    row = ctx.target(ctx.args.name)
    rec = _record(ctx)
    push, gh = copies.pr_argv(row.name, ctx.args.remote)
    if not _confirm(ctx, f"push {rec['branch']} to {ctx.args.remote} of {rec['path']}"):
        return EXIT_FAILED
    if run.foreground(push):
        return EXIT_FAILED
    if run.which("gh") is None:
        where = shlex.quote(str(rec["path"]))
        say(f"gh is not installed; open the pull request with:\n  cd {where} && {shlex.join(gh)}")
        return EXIT_OK
    from backends.repo_copy import clean_env

    done = run.run(
        gh, env={**clean_env(), "GH_PROMPT_DISABLED": "1"}, cwd=str(rec["path"]), timeout=300
    )
    say((done.stdout + done.stderr).strip())
    return EXIT_OK if done.ok else EXIT_FAILED


def create_diff_subparser(sub: Subparsers) -> None:
    """``diff NAME [--stat] [--json]``."""
    p = agent_subparser(
        sub,
        "diff",
        help="what an agent changed in its repository copy",
        description="The agent's changes since base, read in its bottle (never by git on "
        "the host): committed (base..HEAD), uncommitted (work tree against HEAD) and "
        "untracked files, each with its +/- lines, then each file's patch.",
    )
    p.add_argument("--stat", action="store_true", help="only the changed files and their counts")
    p.add_argument("--json", action="store_true", help="JSON: the files (and patches)")


def command_diff(ctx: Context) -> int:
    """Print the agent's changes."""
    import json

    from backends.copy_diff import UNTRACKED
    from bottle_dash.service import copies

    row = ctx.target(ctx.args.name)
    found = copies.diff(ctx.service.backend(row.backend), row.name, stat=ctx.args.stat)
    if ctx.args.json:
        say(json.dumps(found.to_dict(), indent=2))
        return EXIT_OK
    say(f"{row.name}: branch {found.branch} against {found.base}")
    if not found.files:
        say("no changes")
    for f in found.files:
        counts = (
            "bin"
            if f.binary
            else ("" if f.part == UNTRACKED else f"+{f.insertions} -{f.deletions}")
        )
        say(f"  {f.part:11s} {counts:>12s}  {f.path}")
    if not ctx.args.stat:
        for f in found.files:
            patch = found.patches.get((f.part, f.path))
            if patch:
                sys.stdout.write(f"\n# {f.part}: {f.path}\n{patch}")
    return EXIT_OK
