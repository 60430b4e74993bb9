"""The docker CLI command lines bottle-dash hands to a terminal, as pure values.

Attaching runs ``docker exec`` in a tmux pane (or the foreground) rather than through the
SDK: the CLI owns the terminal, raw mode and window-size forwarding, which the SDK does
not do. Nothing here runs anything; tests check these lists item by item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backends.base import CLAUDE, GUEST_USER, GUEST_WORKSPACE

DOCKER = "docker"


def fits_env_file(value: str) -> bool:
    """Whether docker's ``--env-file`` can carry ``value`` verbatim (one line per variable,
    taken literally after the first ``=``: only line breaks cannot be written)."""
    return "\n" not in value and "\r" not in value


def env_file_text(env: Mapping[str, str]) -> str:
    """The ``--env-file`` body for ``env``: ``K=V`` lines, sorted, of the values that fit."""
    return "".join(f"{key}={env[key]}\n" for key in sorted(env) if fits_env_file(env[key]))


def env_flags(env: Mapping[str, str], env_file: str | None = None) -> list[str]:
    """``--env-file FILE`` then ``-e K=V`` for what the file cannot carry, in sorted key
    order (stable argv, stable tests). Without a file every variable is a ``-e K=V``.

    Values in a file stay out of the host's process list and tmux's pane command, where
    anyone on the host could read an API key.
    """
    flags: list[str] = ["--env-file", env_file] if env_file else []
    for key in sorted(env):
        if env_file and fits_env_file(env[key]):
            continue
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
    env_file: str | None = None,
    home: str | None = None,
) -> list[str]:
    """``docker exec [-i|-it] -u USER -w DIR [--env-file F] -e K=V... [-e HOME=H] CONTAINER
    ARGV...``.

    ``interactive`` keeps stdin open (``-i``), which a foreground command needs; a captured
    run must not take it, or it would read the dashboard's own stdin. ``tty`` (``-t``)
    implies ``interactive``. ``home`` is set unless ``env`` sets ``HOME``: the engine
    derives ``HOME`` from the image's own ``/etc/passwd``, where a numeric ``USER`` that
    is not the image's has none (the agent runs as its workspace owner's uid:gid).
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
        *env_flags(env or {}, env_file),
        *(["-e", f"HOME={home}"] if home and "HOME" not in (env or {}) else []),
        container,
        *argv,
    ]


def claude_exec_argv(
    container: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    tty: bool = True,
    env_file: str | None = None,
    user: str = GUEST_USER,
    home: str | None = None,
) -> list[str]:
    """``docker exec -it -u USER -w /workspace [--env-file F] -e K=V... [-e HOME=H] CONTAINER
    claude ARGS...`` (``USER`` is the agent's ``uid:gid`` in a bottle handle's argv).

    The last ``len(args) + 1`` items are ``["claude", *args]``, which the resume fallback
    relies on to split by index.
    """
    return exec_argv(
        container,
        [CLAUDE, *args],
        user=user,
        env=env,
        interactive=True,
        tty=tty,
        env_file=env_file,
        home=home,
    )
