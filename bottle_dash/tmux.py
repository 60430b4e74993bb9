"""Agents' panes in tmux: the only module that imports libtmux.

The app talks to tmux through the small ``PaneHost`` protocol, so UI tests use a fake
(tests/fakes/panehost.py) and ``TmuxPaneHost`` is tested against a real tmux server on an
isolated socket. Each agent's pane is tagged with the pane user option
``@bottle-agent <name>``, which is how panes are found again after a dashboard restart.

Every command that a pane runs is handed to tmux as ``shlex.join(argv)``: tmux gives that
string to a shell, so every piece is quoted and nothing is joined by hand.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from bottle_dash.layout import SPOT_FORMAT, Spot, bring, read_spots, split_on_stage

if TYPE_CHECKING:
    import libtmux

#: Pane user option that names the agent whose claude runs in the pane.
TAG = "@bottle-agent"
#: The session ``bottle-dash`` creates when started outside tmux.
SESSION = "bottle-dash"

#: ``pane_title`` comes last: claude sets it (a spinner while busy, ✳ when idle), so it is
#: the agent's text; tmux strips control characters from titles, and the split below
#: stops before it anyway.
_FIELDS = ("pane_id", TAG, "pane_dead", "window_id", "pane_pid", "pane_title")
_FORMAT = "\t".join("#{" + f + "}" for f in _FIELDS)


class TmuxError(Exception):
    """A tmux command failed; the message is tmux's own."""


class PaneInfo(NamedTuple):
    """One tagged pane as a single ``list-panes -a`` call sees it."""

    pane_id: str
    agent: str
    dead: bool
    window_id: str = ""
    pid: int | None = None
    #: The pane title claude set (``bottle_dash.status`` reads it); text from the agent.
    title: str = ""


class PaneHost(Protocol):
    """Where agents' panes live. Every method is a blocking call: run it in a worker."""

    def panes(self) -> dict[str, PaneInfo]:
        """Every tagged pane by agent name, from one tmux call."""
        ...

    def split(self, agent: str, argv: Sequence[str]) -> str:
        """Split a new pane from the dashboard's window running ``argv``; returns its id."""
        ...

    def respawn(self, pane_id: str, argv: Sequence[str]) -> None:
        """Restart ``pane_id`` with ``argv`` (``respawn-pane -k``)."""
        ...

    def focus(self, pane_id: str) -> None:
        """Bring ``pane_id`` (and its window) to the front."""
        ...

    def zoom(self, pane_id: str) -> None:
        """Bring ``pane_id`` to the front, zoomed to its whole window."""
        ...

    def close(self, pane_id: str) -> None:
        """Kill ``pane_id`` (its agent's bottle was removed); gone already is fine."""
        ...

    def capture(self, pane_id: str, lines: int = 10) -> list[str]:
        """The last ``lines`` non-blank lines shown in ``pane_id``."""
        ...

    def message(self, text: str) -> None:
        """Show ``text`` in the status line of the operator's tmux client, for a while."""
        ...


def parse_panes(lines: Sequence[str]) -> dict[str, PaneInfo]:
    """Parse ``list-panes -a -F`` output in ``_FORMAT``; untagged panes are skipped.

    When two panes carry the same tag (an operator may copy one), a live pane wins over a
    dead one. A line without the title (the format before titles were read) has title "".
    """
    found: dict[str, PaneInfo] = {}
    for line in lines:
        parts = line.split("\t", len(_FIELDS) - 1)
        if len(parts) == len(_FIELDS) - 1:
            parts.append("")
        if len(parts) != len(_FIELDS) or not parts[1]:
            continue
        pane_id, agent, dead, window_id, pid, title = parts
        info = PaneInfo(
            pane_id=pane_id,
            agent=agent,
            dead=dead == "1",
            window_id=window_id,
            pid=int(pid) if pid.isdigit() else None,
            title=title,
        )
        old = found.get(agent)
        if old is None or (old.dead and not info.dead):
            found[agent] = info
    return found


def socket_path_from_env(env: dict[str, str] | None = None) -> str | None:
    """The server socket of the tmux we run inside (``$TMUX`` is ``path,pid,session``)."""
    value = (env if env is not None else os.environ).get("TMUX", "")
    return value.split(",", 1)[0] or None


def list_panes() -> dict[str, PaneInfo]:
    """Every tagged pane on the tmux server the dashboard uses (``$TMUX``'s, else the
    default one), from one ``list-panes -a`` run directly: for the CLI, which pays for
    every import at start-up (libtmux is not needed for one read). No tmux binary or no
    server means no panes."""
    from backends.base import BackendUnavailable
    from backends.run import run

    socket = socket_path_from_env()
    argv = ["tmux", *(["-S", socket] if socket else []), "list-panes", "-a", "-F", _FORMAT]
    try:
        done = run(argv, timeout=10)
    except BackendUnavailable:  # no tmux on PATH
        return {}
    return parse_panes(done.stdout.splitlines()) if done.ok else {}


def close_agent_pane(agent: str) -> None:
    """Kill ``agent``'s pane on the dashboard's tmux server, if it has one (the CLI's
    ``rm``, which has no pane host: a removed bottle leaves no dead pane behind)."""
    from backends.run import run

    pane = list_panes().get(agent)  # no tmux on PATH: no panes
    if pane is None:
        return
    socket = socket_path_from_env()
    run(["tmux", *(["-S", socket] if socket else []), "kill-pane", "-t", pane.pane_id])


class TmuxPaneHost:
    """``PaneHost`` on a real tmux server.

    ``server`` defaults to the server of the tmux the dashboard runs in (``$TMUX``) and
    ``dashboard_pane`` to ``$TMUX_PANE``: that pane's window holds the dashboard and one
    agent pane (the stage); the others are parked (``bottle_dash.layout``).
    """

    def __init__(
        self, server: libtmux.Server | None = None, dashboard_pane: str | None = None
    ) -> None:
        if server is None:
            # Imported here, not at the top: the first paint need not wait for libtmux.
            import libtmux

            server = libtmux.Server(socket_path=socket_path_from_env())
        self.server = server
        self.dashboard_pane = dashboard_pane or os.environ.get("TMUX_PANE") or None

    def _cmd(self, *args: Any) -> list[str]:
        proc = self.server.cmd(*args)
        if proc.returncode not in (0, None) or (proc.stderr and not proc.stdout):
            raise TmuxError(" ".join(proc.stderr) or f"tmux {args[0]} failed")
        return list(proc.stdout)

    def panes(self) -> dict[str, PaneInfo]:
        """Every tagged pane by agent name (one ``list-panes -a`` call)."""
        proc = self.server.cmd("list-panes", "-a", "-F", _FORMAT)
        if proc.returncode not in (0, None):
            # No server yet (nothing split so far) is a normal state: no panes.
            return {}
        return parse_panes(proc.stdout)

    def _spots(self) -> list[Spot]:
        proc = self.server.cmd("list-panes", "-a", "-F", SPOT_FORMAT)
        return read_spots(proc.stdout) if proc.returncode in (0, None) else []

    def split(self, agent: str, argv: Sequence[str]) -> str:
        """Open the agent's pane on the stage beside the dashboard (parking the agent pane
        staged there, ``bottle_dash.layout``), tagged and titled."""
        target = ["-t", self.dashboard_pane] if self.dashboard_pane else []
        split = ["split-window", "-h", *target, "-P", "-F", "#{pane_id}", shlex.join(list(argv))]
        # One command sequence (one tmux client, which is most of the cost): the options
        # reach the new pane (the sequence's current target) before tmux can notice its
        # process exiting. remain-on-exit keeps a pane whose claude exited (dead), so the
        # next attach respawns it in place.
        options = [
            "set-option", "-p", "remain-on-exit", "on",
            ";", "set-option", "-p", TAG, agent,
            ";", "select-pane", "-T", agent,
        ]  # fmt: skip
        if not self.dashboard_pane:
            out = self._cmd(*split, ";", *options)
            return out[0].strip()
        out = self._cmd(*split_on_stage(self._spots(), self.dashboard_pane, split, options))
        return out[0].strip()

    def respawn(self, pane_id: str, argv: Sequence[str]) -> None:
        """``respawn-pane -k`` with ``argv``; the tag and title stay on the pane."""
        self._cmd("respawn-pane", "-k", "-t", pane_id, shlex.join(list(argv)))

    def focus(self, pane_id: str) -> None:
        """Bring the pane to the stage beside the dashboard when it is parked (swapping
        the staged one out), then select its window and the pane (``layout.bring``)."""
        if not self.dashboard_pane:
            self._cmd("select-window", "-t", pane_id, ";", "select-pane", "-t", pane_id)
            return
        self._cmd(*bring(self._spots(), self.dashboard_pane, pane_id))

    def zoom(self, pane_id: str) -> None:
        """Bring the pane (``focus``) and zoom it to the whole window (``prefix z`` in
        the pane, or ``resize-pane -Z``, unzooms)."""
        self.focus(pane_id)
        self._cmd("resize-pane", "-Z", "-t", pane_id)

    def close(self, pane_id: str) -> None:
        """``kill-pane``; a pane already gone is not an error."""
        self.server.cmd("kill-pane", "-t", pane_id)

    def capture(self, pane_id: str, lines: int = 10) -> list[str]:
        """Last ``lines`` non-blank lines of what the pane shows (``capture-pane -p``)."""
        proc = self.server.cmd("capture-pane", "-p", "-J", "-t", pane_id)
        if proc.returncode not in (0, None):
            return []
        shown = [line.rstrip() for line in proc.stdout]
        while shown and not shown[-1]:
            shown.pop()
        return shown[-lines:]

    def message(self, text: str, seconds: float = 5) -> None:
        """``display-message`` on the client showing the dashboard; ``#`` is doubled so
        tmux expands no format in ``text``."""
        target = ["-t", self.dashboard_pane] if self.dashboard_pane else []
        delay = ["-d", str(int(seconds * 1000))]
        self._cmd("display-message", *target, *delay, text.replace("#", "##"))


# ----------------------------------------------------------------------- start-up


def session_argv(tmux: str, dashboard_argv: Sequence[str], session: str = SESSION) -> list[str]:
    """argv that attaches to the ``bottle-dash`` session, creating it to run the dashboard.

    ``new-session -A`` attaches when the session exists and creates it otherwise, so a
    second ``bottle-dash`` outside tmux re-attaches to the running dashboard.
    """
    return [tmux, "new-session", "-A", "-s", session, shlex.join(list(dashboard_argv))]
