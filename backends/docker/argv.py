"""The docker CLI command lines bottle-dash hands to a terminal, as pure values.

Attaching runs ``docker exec`` in a tmux pane (or the foreground) rather than through the
SDK: the CLI owns the terminal, raw mode and window-size forwarding, which the SDK does
not do. Nothing here runs anything; tests check these lists item by item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backends.base import CLAUDE, GUEST_USER, GUEST_WORKSPACE

DOCKER = "docker"


def env_flags(env: Mapping[str, str]) -> list[str]:
    """``-e K=V`` pairs in sorted key order (stable argv, stable tests)."""
    flags: list[str] = []
    for key in sorted(env):
        flags += ["-e", f"{key}={env[key]}"]
    return flags


def exec_argv(
    container: str,
    argv: Sequence[str],
    *,
    user: str = GUEST_USER,
    workdir: str = GUEST_WORKSPACE,
    env: Mapping[str, str] | None = None,
    interactive: bool = True,
    tty: bool = False,
) -> list[str]:
    """``docker exec [-i|-it] -u USER -w DIR -e K=V... CONTAINER ARGV...``.

    ``interactive`` keeps stdin open (``-i``), which a foreground command needs; a captured
    run must not take it, or it would read the dashboard's own stdin. ``tty`` (``-t``)
    implies ``interactive``.
    """
    flags: list[str] = []
    if tty:
        flags.append("-it")
    elif interactive:
        flags.append("-i")
    return [
        DOCKER,
        "exec",
        *flags,
        "-u",
        user,
        "-w",
        workdir,
        *env_flags(env or {}),
        container,
        *argv,
    ]


def claude_exec_argv(
    container: str, args: Sequence[str], *, env: Mapping[str, str] | None = None, tty: bool = True
) -> list[str]:
    """``docker exec -it -u node -w /workspace -e K=V... CONTAINER claude ARGS...``.

    The last ``len(args) + 1`` items are ``["claude", *args]``, which the resume fallback
    relies on to split by index.
    """
    return exec_argv(
        container, [CLAUDE, *args], user=GUEST_USER, env=env, interactive=True, tty=tty
    )
