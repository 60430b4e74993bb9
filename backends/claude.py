"""Claude's command line inside a bottle: its arguments and the resume fallback."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def has_prompt(prompt: str) -> bool:
    """Whether a prompt counts as non-empty: whitespace alone adds nothing to the system
    prompt, so it gets no ``--append-system-prompt-file`` (same rule for every backend)."""
    return bool(prompt.strip())


def claude_args(prompt_guest: str, prompt_nonempty: bool, extra: Sequence[str]) -> list[str]:
    """Arguments for ``claude``: the system-prompt file exactly when the prompt is non-empty,
    then the agent's own ``claude_args``."""
    args: list[str] = []
    if prompt_nonempty:
        args += ["--append-system-prompt-file", prompt_guest]
    args += list(extra)
    return args


def resume_fallback(argv: Sequence[str], n_args: int, *, fresh: bool = False) -> list[str]:
    """Wrap a backend's ``claude_argv`` so that claude resumes the last conversation.

    ``argv`` is what ``Bottle.claude_argv(args)`` returned and ``n_args == len(args)``.
    The claude executable sits at index ``len(argv) - n_args - 1``: the split is by index,
    never by searching for a "claude" token (an agent name or argument may contain one).
    Everything before it (the exec framing, the uid switch, the resize wrapper) is kept, and
    the rest becomes ``sh -c 'claude --continue ARGS || claude ARGS'`` with every piece
    shell-quoted. With ``fresh`` the argv is returned unchanged (no ``--continue``).
    """
    argv = list(argv)
    index = len(argv) - n_args - 1
    if n_args < 0 or index < 0:
        raise ValueError(f"argv has no claude executable at index {index}: {argv!r}")
    if fresh:
        return argv
    prefix, claude, args = argv[:index], argv[index], argv[index + 1 :]
    plain = shlex.join([claude, *args])
    resumed = shlex.join([claude, "--continue", *args])
    return [*prefix, "sh", "-c", f"{resumed} || {plain}"]
