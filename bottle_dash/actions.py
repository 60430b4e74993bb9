"""The dashboard's agent actions as blocking calls for thread workers.

Each one does what the CLI does, through the same ``ops`` functions, and then the pane
work: focus a live pane, respawn a dead one (``respawn-pane -k``), or split a new one.
Without a pane host (``--no-tmux``) attaching returns the argv for the foreground instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backends.base import NOT_CREATED, RUNNING, BackendError, BottleBackend, ProgressFn
from bottle_dash.tmux import PaneHost


class ActionError(Exception):
    """An action cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class Attached:
    """How an attach ended: ``how`` is focused, respawned, split or foreground."""

    how: str
    argv: list[str]
    pane_id: str | None = None


class Actions:
    """Agent actions for one dashboard: the ``ops`` module, the backends, the pane host."""

    def __init__(
        self,
        pane_host: PaneHost | None,
        backends: Mapping[str, BottleBackend] | None = None,
        ops: Any = None,
    ) -> None:
        if ops is None:
            # Imported late: ops imports the backends, which a test may replace first.
            ops = importlib.import_module("bottle_dash.service")
        self.ops = ops
        self.pane_host = pane_host
        self.backends = backends

    # ------------------------------------------------------------------ bottles

    def up(self, row: Any, progress: ProgressFn) -> str:
        """Create or start the agent's bottle (``bottle-dash up``); returns what was done."""
        if row.spec is None:
            # A bottle whose agent left the config can still be started (not launched).
            if row.state == NOT_CREATED:
                raise ActionError(f"{row.name} is not defined in the config")
            if row.state == RUNNING:
                return str(self.ops.ALREADY_RUNNING)
            progress(f"starting bottle {row.bottle}")
            return str(self.ops.start(row.name, row.backend, backends=self.backends))
        _bottle, what = self.ops.up(row.spec, progress, backends=self.backends)
        return str(what)

    def stop(self, row: Any) -> None:
        """Stop the agent's bottle (``bottle-dash down``)."""
        self.ops.down(row.name, row.backend, backends=self.backends)

    def remove(self, row: Any, *, volumes: bool) -> None:
        """Remove the agent's bottle, and its home volume when ``volumes``."""
        self.ops.remove(row.name, row.backend, volumes, backends=self.backends)

    def logs(self, row: Any, tail: int = 200) -> str:
        """The bottle's own output (``bottle-dash logs``)."""
        return str(self.ops.logs(row.name, row.backend, tail, backends=self.backends))

    # ------------------------------------------------------------------ panes

    def attach(self, row: Any, progress: ProgressFn, *, fresh: bool = False) -> Attached:
        """Launch when needed, then focus, respawn or split the agent's pane.

        With ``fresh`` (R) claude starts a new conversation: a pane that exists is
        respawned with the plain argv even when it is alive.
        """
        if row.state != RUNNING:
            progress(f"starting {row.name}")
            self.up(row, progress)
        argv = list(self.ops.attach_argv(row.spec or row, fresh=fresh, backends=self.backends))
        if self.pane_host is None:
            return Attached("foreground", argv)
        pane = self.pane_host.panes().get(row.name)
        if pane is None:
            progress(f"opening a pane for {row.name}")
            return Attached("split", argv, self.pane_host.split(row.name, argv))
        if pane.dead or fresh:
            self.pane_host.respawn(pane.pane_id, argv)
            self.pane_host.focus(pane.pane_id)
            return Attached("respawned", argv, pane.pane_id)
        self.pane_host.focus(pane.pane_id)
        return Attached("focused", argv, pane.pane_id)


def describe(exc: BaseException) -> str:
    """One line (plus the fix) for an action's failure."""
    if isinstance(exc, BackendError):
        return str(exc).replace("\n", " ")
    return str(exc) or type(exc).__name__
