"""The git identity an agent commits as: its ``git_user`` ("Name <email>"), else the
operator's own (``user.name``/``user.email`` of their git config), handed to the bottle
as ``GIT_AUTHOR_*``/``GIT_COMMITTER_*`` in its environment.

The environment, not a ``~/.gitconfig`` in the home: it needs no provisioning, works on
every backend, and the agent cannot lose it by editing a file; a variable the agent's own
``env`` sets wins. Without either, git in the bottle guesses ``node@bottle-x.(none)`` and
refuses to commit, as it would anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

#: The config key.
GIT_USER_KEY = "git_user"
#: The variables git reads the identity from, with the half of it each holds.
IDENTITY_VARS = {
    "GIT_AUTHOR_NAME": 0,
    "GIT_AUTHOR_EMAIL": 1,
    "GIT_COMMITTER_NAME": 0,
    "GIT_COMMITTER_EMAIL": 1,
}
_USER = re.compile(r"^([^<>\n]*[^<>\s])\s*<([^<>\s]+@[^<>\s]+)>$")


def parse_git_user(text: str) -> tuple[str, str]:
    """(name, email) from ``"Name <email>"``; ``ValueError`` says what is wrong."""
    match = _USER.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not `Name <email>`")
    return match.group(1).strip(), match.group(2)


def operator_identity(
    run: Callable[[list[str]], tuple[int, str]] | None = None,
) -> tuple[str, str] | None:
    """The operator's (name, email) from their git config (system and global, read from
    their home so no repository's config is read), or None when git or either is
    missing."""
    if run is None:
        run = _git
    code, out = run(["git", "config", "--get-regexp", r"^user\.(name|email)$"])
    if code != 0:
        return None
    found: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        found[key.lower()] = value.strip()  # the last one wins, as in git
    name, email = found.get("user.name", ""), found.get("user.email", "")
    return (name, email) if name and email else None


def _git(argv: list[str]) -> tuple[int, str]:
    from backends.base import BackendUnavailable
    from backends.run import run

    try:
        done = run(argv, timeout=10, cwd=str(Path.home()))
    except BackendUnavailable:  # no git on the host
        return 1, ""
    return done.returncode, done.stdout


def identity_env(
    git_user: str,
    env: Mapping[str, str],
    operator: Callable[[], tuple[str, str] | None] = operator_identity,
) -> dict[str, str]:
    """The identity variables ``env`` does not set already: from ``git_user`` when set
    (already validated), else from the operator's git config; {} when there is none."""
    missing = [var for var in IDENTITY_VARS if var not in env]
    if not missing:
        return {}
    identity = parse_git_user(git_user) if git_user else operator()
    if identity is None:
        return {}
    return {var: identity[IDENTITY_VARS[var]] for var in missing}
