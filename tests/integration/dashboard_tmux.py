"""The dashboard in a real tmux session (libtmux's isolated test server), driven by
``send-keys`` and read by ``capture-pane``: shared by the end-to-end and real-claude tests.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import libtmux

from bottle_dash.tmux import TAG
from tests import support

REPO = Path(__file__).resolve().parents[2]


#: The session under test, so a timeout can show what the dashboard showed.
CURRENT: list[Session] = []


def wait_for(check: Callable[[], object], seconds: float, what: str) -> object:
    """``tests.support.wait_for``, and a timeout shows what the dashboard showed."""
    return support.wait_for(check, seconds, what, interval=0.1, shown=_dashboard_shown)


def _dashboard_shown() -> str:
    return CURRENT[0].capture(CURRENT[0].dashboard) if CURRENT else ""


#: The dashboard's window, columns x rows.
SIZE = (220, 50)


class Session:
    """The isolated tmux server the dashboard runs in, and ways to read it."""

    def __init__(self, server: libtmux.Server, env: dict[str, str]) -> None:
        self.server = server
        self.env = env
        self.dashboard = ""

    def dashboard_argv(self) -> list[str]:
        return [sys.executable, "-m", "bottle_dash"]

    def start_dashboard(self, first: bool, *options: str) -> None:
        shell = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        command = f"env {shell} {shlex.join([*self.dashboard_argv(), *options])}"
        # The pane gets its size first, then the dashboard: a detached tmux creates a
        # window at default-size (80x24) and resizes it afterwards, and a dashboard still
        # starting on a loaded machine could miss that SIGWINCH and stay drawn at 80x24.
        placeholder = "sleep 86400"
        if first:
            session = self.server.new_session(
                "bottle-dash", window_command=placeholder, x=SIZE[0], y=SIZE[1]
            )
            self.server.cmd("set-option", "-g", "default-size", f"{SIZE[0]}x{SIZE[1]}")
            pane = session.active_window.active_pane
            assert pane is not None and pane.pane_id
            self.dashboard = pane.pane_id
        else:  # the old dashboard pane closed with the app: start a new one
            out = self.server.cmd("new-window", "-P", "-F", "#{pane_id}", placeholder)
            self.dashboard = out.stdout[0]
        size = f"{SIZE[0]}x{SIZE[1]}"
        support.wait_for(
            lambda: self.pane_size(self.dashboard) == size, 30, f"the dashboard pane at {size}"
        )
        self.server.cmd("respawn-pane", "-k", "-t", self.dashboard, command)

    def pane_size(self, pane_id: str) -> str:
        out = self.server.cmd(
            "display-message", "-p", "-t", pane_id, "#{pane_width}x#{pane_height}"
        )
        return out.stdout[0] if out.stdout else ""

    def capture(self, pane_id: str) -> str:
        return "\n".join(self.server.cmd("capture-pane", "-p", "-J", "-t", pane_id).stdout)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.server.cmd("send-keys", "-t", self.dashboard, key)

    def agent_panes(self) -> dict[str, tuple[str, bool, int]]:
        out = self.server.cmd(
            "list-panes", "-a", "-F", f"#{{{TAG}}}\t#{{pane_id}}\t#{{pane_dead}}\t#{{pane_pid}}"
        ).stdout
        found = {}
        for line in out:
            agent, pane_id, dead, pid = line.split("\t")
            if agent:
                found[agent] = (pane_id, dead == "1", int(pid or 0))
        return found

    def row(self, agent: str) -> str:
        """The dashboard's table line for ``agent`` (empty when not shown)."""
        for line in self.capture(self.dashboard).splitlines():
            if f" {agent} " in line or f"│ {agent}" in line:
                return line
        return ""


@contextlib.contextmanager
def dashboard_session(server: libtmux.Server, config: Path, **env: str) -> Iterator[Session]:
    """A ``Session`` on ``server`` (libtmux's isolated test server) whose dashboard reads
    ``config`` and this run's XDG dirs (plus ``env``); the server is killed after (before
    the caller removes the bottle its panes use)."""
    session = Session(
        server,
        {
            "BOTTLE_DASH_CONFIG": str(config),
            "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"],
            "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"],
            "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"],
            "PYTHONPATH": str(REPO),
            "TERM": "xterm-256color",
            **env,
        },
    )
    CURRENT[:] = [session]
    try:
        yield session
    finally:
        CURRENT.clear()
        if server.is_alive():
            server.kill()
