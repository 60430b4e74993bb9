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
import signal
from collections.abc import Iterator
from pathlib import Path

import libtmux
import pytest

from bottle_dash import config as configmod
from bottle_dash.service import AgentService, make_row
from tests.integration.dashboard_tmux import Session, dashboard_session, wait_for
from tests.support import agent_name

pytestmark = pytest.mark.docker


@pytest.fixture
def session(server: libtmux.Server, tmp_path: Path, test_image: str) -> Iterator[Session]:
    name = agent_name("e2e")
    config = tmp_path / "config.toml"
    config.write_text(f'[agents.{name}]\nbackend = "docker"\nimage = "{test_image}"\n')
    try:
        with dashboard_session(server, config, AGENT=name) as s:
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
