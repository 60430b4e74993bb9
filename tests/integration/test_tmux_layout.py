"""The pane layout at 20 agents on a real tmux server (isolated socket, TMUX unset).

The dashboard's window keeps the dashboard and one agent pane at full height; the other
nineteen are parked one window each in ``layout.PARKING``, still running, and ``focus``
swaps any of them onto the stage. The panes run a cheap stand-in (the layout is what is
tested, not claude).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import libtmux
import pytest

from bottle_dash.layout import PARKING
from bottle_dash.tmux import TmuxPaneHost
from tests.support import wait_for

pytestmark = pytest.mark.tmux
AGENTS = [f"agent{i:02d}" for i in range(1, 21)]
LISTING = (
    "#{session_name}\t#{window_name}\t#{@bottle-agent}\t#{pane_id}\t#{pane_width}x#{pane_height}"
)


@pytest.fixture
def host(tmux_bin: str) -> Iterator[TmuxPaneHost]:
    server = libtmux.Server(socket_name=f"bd-layout-{uuid.uuid4().hex[:8]}")
    try:
        session = server.new_session("dash", window_command="sleep 600", x=200, y=50)
        dashboard = session.active_window.active_pane
        assert dashboard is not None and dashboard.pane_id
        yield TmuxPaneHost(server, dashboard.pane_id)
    finally:
        if server.is_alive():
            server.kill()


def listing(host: TmuxPaneHost, target: list[str]) -> list[list[str]]:
    out = host.server.cmd("list-panes", *target, "-F", LISTING).stdout
    return [line.split("\t") for line in out]


def stage(host: TmuxPaneHost) -> list[list[str]]:
    """The dashboard's window: [session, window, agent, pane, size] per pane."""
    assert host.dashboard_pane
    return listing(host, ["-t", host.dashboard_pane])


def parked(host: TmuxPaneHost) -> dict[str, str]:
    """window name -> the agent whose pane is in it, for the parking session."""
    return {row[1]: row[2] for row in listing(host, ["-s", "-t", PARKING])}


def active_pane(host: TmuxPaneHost) -> str:
    return host.server.cmd("display", "-p", "-t", "dash", "#{pane_id}").stdout[0]


def test_twenty_agents_one_on_the_stage_the_others_parked(host: TmuxPaneHost) -> None:
    ids = {}
    for agent in AGENTS:
        ids[agent] = host.split(agent, ["sh", "-c", f"echo I am {agent}; exec sleep 600"])
    wait_for(lambda: len(host.panes()) == 20 and not any(p.dead for p in host.panes().values()))
    assert {a: p.pane_id for a, p in host.panes().items()} == ids

    # The dashboard and the last agent share the window, side by side at full height.
    rows = stage(host)
    assert [r[2] for r in rows] == ["", "agent20"]
    assert all(r[4].endswith("x49") for r in rows)  # full height under the border line
    assert int(rows[0][4].split("x")[0]) >= 99
    assert active_pane(host) == ids["agent20"]
    # Nineteen parked, each in a window named after it, each still running its program.
    assert parked(host) == {a: a for a in AGENTS[:19]}
    assert any("I am agent03" in line for line in host.capture(ids["agent03"], 50))
    # The border above the staged pane names its agent and the way back to the dashboard.
    border = host.server.cmd("display", "-p", "-t", ids["agent20"], "#{T:pane-border-format}")
    assert border.stdout == [" agent20 · C-b ; dashboard · C-b z zoom "]

    # enter on a parked agent: it swaps with the staged one, same pane, same program.
    host.focus(ids["agent03"])
    assert [r[2] for r in stage(host)] == ["", "agent03"]
    assert active_pane(host) == ids["agent03"]
    assert parked(host) == {a: a for a in AGENTS if a != "agent03"}
    assert any("I am agent03" in line for line in host.capture(ids["agent03"], 50))
    assert {a: p.pane_id for a, p in host.panes().items()} == ids

    # Focusing the staged agent again changes nothing.
    host.focus(ids["agent03"])
    assert [r[2] for r in stage(host)] == ["", "agent03"]

    # The zoom key: that agent's pane fills the dashboard's window.
    host.zoom(ids["agent11"])
    shown = host.server.cmd(
        "display", "-p", "-t", ids["agent11"], "#{window_zoomed_flag} #{pane_width}x#{pane_height}"
    ).stdout
    assert shown == ["1 200x49"]  # the whole window, less the border line
    assert [r[2] for r in stage(host)] == ["", "agent11"]
    assert active_pane(host) == ids["agent11"]
    # A later enter on another agent unzooms: the dashboard is back beside it.
    host.focus(ids["agent20"])
    flag = host.server.cmd("display", "-p", "-t", ids["agent20"], "#{window_zoomed_flag}")
    assert flag.stdout == ["0"]
    assert [r[2] for r in stage(host)] == ["", "agent20"]
    print("\n".join("  ".join(r) for r in listing(host, ["-a"])))  # the report's capture


def test_an_old_layout_is_tidied_on_the_next_enter(host: TmuxPaneHost) -> None:
    # Before the stage, each agent pane was split beside the dashboard.
    assert host.dashboard_pane
    ids = []
    for agent in AGENTS[:4]:
        out = host.server.cmd(
            "split-window", "-h", "-t", host.dashboard_pane, "-P", "-F", "#{pane_id}",
            "sleep 600", ";", "set-option", "-p", "@bottle-agent", agent,
        ).stdout  # fmt: skip
        ids.append(out[0])
    host.focus(ids[1])
    assert [r[2] for r in stage(host)] == ["", AGENTS[1]]
    assert parked(host) == {a: a for a in AGENTS[:4] if a != AGENTS[1]}


def test_a_pane_moved_by_the_operator_stays_where_they_put_it(host: TmuxPaneHost) -> None:
    pane_id = host.split("mine", ["sleep", "600"])
    host.server.cmd("break-pane", "-d", "-s", pane_id, "-n", "my-window")
    host.focus(pane_id)
    window = host.server.cmd("display", "-p", "-t", pane_id, "#{window_name}").stdout
    assert window == ["my-window"] and active_pane(host) == pane_id


def test_close_kills_a_parked_or_staged_pane(host: TmuxPaneHost) -> None:
    first = host.split("one", ["sleep", "600"])
    second = host.split("two", ["sleep", "600"])  # "one" is parked now
    host.close(first)
    host.close(second)
    host.close(second)  # gone already: not an error
    assert host.panes() == {}
