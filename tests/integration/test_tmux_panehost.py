"""TmuxPaneHost against a real tmux server on an isolated socket (TMUX unset by conftest).

It splits, tags, titles, focuses, respawns a dead pane, and finds tagged panes again from
a new process, as the dashboard does after a restart.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import libtmux
import pytest

from bottle_dash.tmux import TmuxPaneHost, parse_panes, session_argv, socket_path_from_env
from tests.support import wait_for

pytestmark = pytest.mark.tmux
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def host(server: libtmux.Server) -> TmuxPaneHost:
    session = server.new_session("dash", window_command="sleep 600", x=160, y=40)
    dashboard = session.active_window.active_pane
    assert dashboard is not None and dashboard.pane_id
    return TmuxPaneHost(server, dashboard.pane_id)


def shown(host: TmuxPaneHost, pane_id: str, text: str) -> bool:
    return any(text in line for line in host.capture(pane_id, lines=50))


def test_split_tags_titles_and_keeps_the_dashboard_main(host: TmuxPaneHost) -> None:
    pane_id = host.split("alpha", ["sh", "-c", "echo 'hello from alpha'; sleep 600"])
    wait_for(lambda: shown(host, pane_id, "hello from alpha"))
    panes = host.panes()
    assert set(panes) == {"alpha"}
    assert panes["alpha"].pane_id == pane_id and not panes["alpha"].dead
    out = host.server.cmd("display", "-p", "-t", pane_id, "#{pane_title} #{@bottle-agent}").stdout
    assert out == ["alpha alpha"]
    # The dashboard is the first pane of the same window, and the split one is focused.
    listing = host.server.cmd(
        "list-panes", "-t", host.dashboard_pane, "-F", "#{pane_id} #{pane_active}"
    ).stdout
    assert listing == [f"{host.dashboard_pane} 0", f"{pane_id} 1"]


def test_quoting_survives_the_shell(host: TmuxPaneHost) -> None:
    tricky = 'it\'s $HOME; `no` "way"'
    # The program stays alive: tmux may drop the output of a pane whose process exits at
    # once, before it was first read.
    pane_id = host.split("quoting", ["sh", "-c", 'printf "%s\\n" "$1"; sleep 600', "sh", tricky])
    wait_for(lambda: shown(host, pane_id, tricky))


def test_panes_carry_the_title_claude_sets(host: TmuxPaneHost) -> None:
    # What Claude Code 2.1 writes: OSC 0 with a spinner glyph, then ✳, then a cleared title.
    script = (
        "printf '\\033]0;\\342\\240\\202 fix #{pane_id} $(x)\\007'; read a;"
        "printf '\\033]0;\\342\\234\\263 done\\007'; read b;"
        "printf '\\033]0;\\007'; sleep 600"
    )
    pane_id = host.split("titled", ["sh", "-c", script])
    # Titles are the agent's text: tmux expands no #{} in them, and neither does the poll.
    wait_for(lambda: host.panes()["titled"].title == "\u2802 fix #{pane_id} $(x)")
    host.server.cmd("send-keys", "-t", pane_id, "Enter")
    wait_for(lambda: host.panes()["titled"].title == "\u2733 done")
    host.server.cmd("send-keys", "-t", pane_id, "Enter")
    wait_for(lambda: host.panes()["titled"].title == "")


def test_dead_pane_stays_and_is_respawned(host: TmuxPaneHost) -> None:
    pane_id = host.split("beta", ["sh", "-c", "echo first run; exit 3"])
    wait_for(lambda: host.panes()["beta"].dead)
    host.respawn(pane_id, ["sh", "-c", "echo second run; sleep 600"])
    wait_for(lambda: not host.panes()["beta"].dead)
    wait_for(lambda: shown(host, pane_id, "second run"))
    assert host.panes()["beta"].pane_id == pane_id  # same pane, tag kept


def test_focus_selects_the_pane_and_its_window(host: TmuxPaneHost) -> None:
    pane_id = host.split("gamma", ["sleep", "600"])
    host.server.cmd("select-pane", "-t", host.dashboard_pane)
    host.server.cmd("new-window", "-d", "sleep 600")
    host.server.cmd("select-window", "-t", ":1")
    host.focus(pane_id)
    out = host.server.cmd("display", "-p", "#{pane_id}").stdout
    assert out == [pane_id]


def test_capture_returns_last_non_blank_lines(host: TmuxPaneHost) -> None:
    pane_id = host.split(
        "delta", ["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; sleep 600"]
    )
    wait_for(lambda: shown(host, pane_id, "line5"))
    assert host.capture(pane_id, lines=2) == ["line4", "line5"]


def test_tagged_panes_found_again_from_a_new_process(host: TmuxPaneHost) -> None:
    live = host.split("epsilon", ["sleep", "600"])
    dead = host.split("zeta", ["true"])
    wait_for(lambda: host.panes()["zeta"].dead)
    socket = host.server.cmd("display", "-p", "#{socket_path}").stdout[0]
    code = (
        "import json, libtmux\n"
        "from bottle_dash.tmux import TmuxPaneHost\n"
        f"h = TmuxPaneHost(libtmux.Server(socket_path={socket!r}))\n"
        "print(json.dumps({a: [p.pane_id, p.dead] for a, p in h.panes().items()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == {"epsilon": [live, False], "zeta": [dead, True]}


def test_no_server_means_no_panes(tmux_bin: str) -> None:
    host = TmuxPaneHost(libtmux.Server(socket_name=f"bd-none-{uuid.uuid4().hex[:8]}"))
    assert host.panes() == {}


def test_parse_and_env_helpers() -> None:
    lines = ["%1\talpha\t1\t@1\t10", "%2\talpha\t0\t@1\t11", "%3\t\t0\t@1\t12", "garbage"]
    panes = parse_panes(lines)
    assert list(panes) == ["alpha"] and panes["alpha"].pane_id == "%2"  # live beats dead
    titled = parse_panes(["%4\tbeta\t0\t@1\t13\t\u2733 a\tb"])
    assert titled["beta"].title == "\u2733 a\tb"  # the title is the rest of the line
    assert socket_path_from_env({"TMUX": "/tmp/tmux-0/default,123,0"}) == "/tmp/tmux-0/default"
    assert socket_path_from_env({}) is None
    assert session_argv("tmux", ["python", "-m", "bottle_dash"]) == [
        "tmux", "new-session", "-A", "-s", "bottle-dash", "python -m bottle_dash",
    ]  # fmt: skip


def test_list_panes_without_libtmux_sees_what_the_pane_host_sees(
    host: TmuxPaneHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bottle_dash.tmux import list_panes

    pane_id = host.split("alpha", ["sh", "-c", "sleep 600"])
    wait_for(lambda: "alpha" in host.panes())
    socket = host.server.cmd("display", "-p", "#{socket_path}").stdout[0]
    monkeypatch.setenv("TMUX", f"{socket},1,0")  # as inside the dashboard's tmux
    assert list_panes() == host.panes()
    assert list_panes()["alpha"].pane_id == pane_id
    monkeypatch.setenv("TMUX", "/nonexistent/bottle-dash-socket,1,0")
    assert list_panes() == {}  # no server: no panes, no error
