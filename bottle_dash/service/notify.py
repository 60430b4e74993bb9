"""Telling the operator that an agent started waiting, outside the dashboard's screen: a
message on their tmux client and the config's ``notify_command``.

Both run commands (tmux, the operator's program), so the dashboard calls ``send`` from a
thread worker; the toast and the bell are the screen's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from typing import TYPE_CHECKING

from backends.base import BackendError
from backends.run import run

if TYPE_CHECKING:
    from bottle_dash.tmux import PaneHost


class Notifier:
    """Sends an agent's alert to the operator's tmux client (``pane_host``, None without
    tmux) and to ``notify_command``."""

    def __init__(self, pane_host: PaneHost | None) -> None:
        self.pane_host = pane_host

    def send(self, agent: str, reason: str, command: Sequence[str]) -> str | None:
        """Say that ``agent`` is waiting (``reason``): a tmux message, then ``command``
        with the agent's name and the reason appended as two arguments (never a shell).
        Returns what went wrong with ``command`` (``argv[0]: why``), None when it ran or
        there is none; a failed tmux message is no failure (the screen said it already)."""
        host = self.pane_host
        if host is not None:
            with suppress(Exception):
                host.message(f"bottle-dash: {agent} is waiting ({reason})")
        if not command:
            return None
        argv = [*command, agent, reason]
        try:
            done = run(argv, timeout=30)
            problem = None if done.ok else f"exit {done.returncode}: {done.stderr.strip()[:200]}"
        except BackendError as exc:
            problem = exc.message
        return f"{argv[0]}: {problem}" if problem else None
