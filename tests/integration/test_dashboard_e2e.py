"""End to end: the dashboard in a real tmux session, a real Docker bottle from the offline
test image, driven by ``send-keys`` and read by ``capture-pane`` (every wait has a deadline).

enter on a stopped agent launches it and a new pane shows the stand-in claude started
fresh; after the pane's process is killed, enter respawns it and the stand-in reports the
conversation continued; s stops it and the table shows it stopped; quitting and
restarting the dashboard finds the pane again by its tag.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import libtmux
import pytest
import waiting
from conftest import agent_name

from bottle_dash import config as configmod
from bottle_dash.service import AgentService, make_row
from bottle_dash.tmux import TAG

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


#: The session under test, so a timeout can show what the dashboard showed.
CURRENT: list[Session] = []


def wait_for(check: Callable[[], object], seconds: float, what: str) -> object:
    """``waiting.wait_for``, and a timeout shows what the dashboard showed."""
    return waiting.wait_for(check, seconds, what, interval=0.1, shown=_dashboard_shown)


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
        waiting.wait_for(
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
def dashboard_session(config: Path, socket: str, **env: str) -> Iterator[Session]:
    """A ``Session`` on a new tmux server (socket ``bd-<socket>-<random>``) whose dashboard
    reads ``config`` and this run's XDG dirs (plus ``env``); the server is killed after."""
    server = libtmux.Server(socket_name=f"bd-{socket}-{uuid.uuid4().hex[:8]}")
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


@pytest.fixture
def session(tmux_bin: str, tmp_path: Path, test_image: str) -> Iterator[Session]:
    name = agent_name("e2e")
    config = tmp_path / "config.toml"
    config.write_text(f'[agents.{name}]\nbackend = "docker"\nimage = "{test_image}"\n')
    try:
        with dashboard_session(config, "e2e", AGENT=name) as s:
            yield s
    finally:
        with contextlib.suppress(Exception):  # the run's sweep removes it otherwise
            AgentService().remove(make_row(name, "docker", None, None), volumes=True)


def test_dashboard_drives_a_real_bottle_in_tmux(session: Session) -> None:
    agent = session.env["AGENT"]
    spec = configmod.load_config(Path(session.env["BOTTLE_DASH_CONFIG"])).agents[agent]
    # A stopped agent: its bottle exists (launched once) and is stopped.
    service = AgentService()
    service.up(spec)
    service.stop(service.row_of(spec))

    session.start_dashboard(first=True)
    wait_for(lambda: "stopped" in session.row(agent), 60, "the dashboard to list the agent")

    # enter: start the bottle, split a tagged pane, claude starts fresh.
    session.keys("Enter")
    panes = wait_for(lambda: session.agent_panes().get(agent), 90, "a tagged agent pane")
    assert isinstance(panes, tuple)
    pane_id = panes[0]
    wait_for(
        lambda: "STANDIN-CLAUDE fresh conversation turn=1" in session.capture(pane_id),
        60,
        "the stand-in claude to start fresh",
    )
    # The pane was titled with the agent's name; claude (here the stand-in, replaying
    # Claude Code's OSC 0) then titles it, and the poll reads that for the agent's status.
    wait_for(
        lambda: (
            session.server.cmd("display", "-p", "-t", pane_id, "#{pane_title}").stdout
            == ["\u2733 Claude Code"]
        ),
        30,
        "claude's idle title",
    )
    wait_for(lambda: "live" in session.row(agent), 30, "the table to show the live pane")
    wait_for(lambda: "idle" in session.row(agent), 30, "the table to show claude idle")

    # Kill the pane's process: the pane stays, dead, but claude runs on in the bottle's
    # session holder: the table says detached (still idle); enter respawns the pane in
    # place on the same claude (it redraws: no new conversation).
    os.kill(session.agent_panes()[agent][2], signal.SIGKILL)
    wait_for(lambda: session.agent_panes()[agent][1], 30, "the pane to be dead")
    wait_for(lambda: "detached" in session.row(agent), 30, "the table to show it detached")
    assert "idle" in session.row(agent)
    session.keys("Enter")
    wait_for(
        lambda: "STANDIN-CLAUDE redraw" in session.capture(pane_id),
        60,
        "the same claude to redraw in the respawned pane",
    )
    assert "conversation turn" not in session.capture(pane_id)  # nothing started again
    assert session.agent_panes()[agent][0] == pane_id  # respawned in place, not split
    wait_for(lambda: "live" in session.row(agent), 30, "the table to show the live pane")

    # s: stop the bottle; the table shows it stopped.
    session.keys("s")
    wait_for(lambda: "stopped" in session.row(agent), 60, "the table to show stopped")

    # q: quit; bottles and panes stay. A new dashboard finds the pane by its tag.
    session.keys("q")
    wait_for(
        lambda: session.dashboard not in [p.split()[0] for p in session.server.cmd(
            "list-panes", "-a", "-F", "#{pane_id}").stdout],
        30,
        "the dashboard to quit",
    )  # fmt: skip
    assert agent in session.agent_panes()
    session.start_dashboard(first=False)
    wait_for(
        lambda: "stopped" in session.row(agent) and "dead" in session.row(agent),
        60,
        "the restarted dashboard to find the pane again",
    )
    session.keys("Enter")  # starts the bottle and respawns the same pane once more
    # The stop ended claude; the new one resumes the pinned session (its second start).
    wait_for(
        lambda: "STANDIN-CLAUDE continued conversation turn=2" in session.capture(pane_id),
        90,
        "the pane found again to be respawned",
    )
    assert list(session.agent_panes()) == [agent]


def test_no_tmux_hands_the_terminal_to_claude_and_takes_it_back(session: Session) -> None:
    agent = session.env["AGENT"]
    spec = configmod.load_config(Path(session.env["BOTTLE_DASH_CONFIG"])).agents[agent]
    AgentService().up(spec)
    session.start_dashboard(True, "--no-tmux")
    wait_for(lambda: "running" in session.row(agent), 60, "the dashboard to list the agent")
    session.keys("Enter")  # App.suspend(): claude runs in this very pane
    wait_for(
        lambda: "STANDIN-CLAUDE fresh conversation turn=1" in session.capture(session.dashboard),
        60,
        "claude in the foreground",
    )
    assert session.agent_panes() == {}  # no pane was split
    session.server.cmd("send-keys", "-t", session.dashboard, "exit", "Enter")
    wait_for(
        lambda: "attach: claude ran in the foreground" in session.capture(session.dashboard),
        60,
        "the dashboard to take the terminal back",
    )
