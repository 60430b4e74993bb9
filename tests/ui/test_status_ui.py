"""Agent status in the dashboard: the table, details, header, the attention sort, alerts
once per change to waiting (toast, bell, tmux message, notify_command) and the keys that
jump to the next waiting or idle agent. The pane host is the labelled fake; the status
files are real files in the (isolated) state dir, read by the real reader."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from backends.base import RUNNING
from tests.ui.dashkit import NOW, build, screen_text, settle, spec, write_status

pytestmark = pytest.mark.ui

BUSY = "\u2802 Claude Code"
IDLE_TITLE = "\u2733 Claude Code"
T = NOW.timestamp()


def three(tmp_path: Path, notify_command: tuple[str, ...] = ()) -> Any:
    """alpha working, beta idle, gamma working; each with a live pane titled by claude."""
    dash = build(
        tmp_path, [spec("alpha"), spec("beta"), spec("gamma")], notify_command=notify_command
    )
    for name, word, title in (
        ("alpha", "working", BUSY),
        ("beta", "idle", IDLE_TITLE),
        ("gamma", "working", BUSY),
    ):
        dash.backend.add(name, RUNNING)
        dash.panes.add(name, title=title)
        write_status(name, word, T - 60)
    return dash


def status_cell(dash: Any, name: str) -> tuple[str, str]:
    cells = dash.rows()[name]
    return cells.status, cells.status_for


async def repoll(pilot: Any, dash: Any) -> None:
    dash.main.poll_now()
    await settle(pilot)


async def test_table_header_and_details_show_status(tmp_path: Path) -> None:
    dash = three(tmp_path)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert status_cell(dash, "alpha") == ("working", "1m")
        assert status_cell(dash, "beta") == ("idle", "1m")
        text = screen_text(pilot.app)
        assert "2 working" in text and "1 idle" in text and "waiting" not in text
        assert "working: turn in progress, for 1m" in text  # details of the selected alpha


async def test_alerts_once_per_change_to_waiting(tmp_path: Path) -> None:
    out = tmp_path / "notified.jsonl"
    script = tmp_path / "notify.py"
    script.write_text(
        f"import json, sys\nopen({str(out)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    dash = three(tmp_path, notify_command=(sys.executable, str(script)))
    bells: list[int] = []
    async with dash.app.run_test(size=(100, 30)) as pilot:
        pilot.app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        await settle(pilot)
        assert bells == [] and not out.exists()  # nothing waited when the dashboard started

        write_status("gamma", "permission", T)
        dash.panes.set_title("gamma", IDLE_TITLE)  # measured: a permission prompt shows ✳
        await repoll(pilot, dash)
        assert status_cell(dash, "gamma") == ("waiting", "<1m")
        assert "gamma is waiting: permission prompt" in dash.notes
        assert bells == [1]
        assert ("message", "bottle-dash: gamma is waiting (permission prompt)") in dash.panes.calls
        assert [json.loads(line) for line in out.read_text().splitlines()] == [
            ["gamma", "permission prompt"]
        ]
        assert "1 waiting" in screen_text(pilot.app)

        # Still waiting (claude's Notification hook rewrote the file): no second alert.
        write_status("gamma", "permission", T + 6)
        await repoll(pilot, dash)
        assert bells == [1] and len(out.read_text().splitlines()) == 1

        # Approved, working again, then a question: a new change, a new alert.
        write_status("gamma", "working", T + 10)
        dash.panes.set_title("gamma", BUSY)
        await repoll(pilot, dash)
        assert status_cell(dash, "gamma")[0] == "working"
        write_status("gamma", "question", T + 20)
        dash.panes.set_title("gamma", IDLE_TITLE)
        await repoll(pilot, dash)
        assert bells == [1, 1]
        assert json.loads(out.read_text().splitlines()[-1]) == ["gamma", "question"]


async def test_a_failing_notify_command_is_shown_not_raised(tmp_path: Path) -> None:
    dash = three(tmp_path, notify_command=(str(tmp_path / "no-such-notifier"),))
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        write_status("alpha", "question", T)
        await repoll(pilot, dash)
        assert any("no-such-notifier" in toast for toast in dash.notes)
        assert status_cell(dash, "alpha")[0] == "waiting"


async def test_esc_interrupt_reads_idle_once_the_title_settles(tmp_path: Path) -> None:
    dash = three(tmp_path)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        dash.panes.set_title("alpha", IDLE_TITLE)  # Esc: no hook, the file still says working
        await repoll(pilot, dash)
        assert status_cell(dash, "alpha")[0] == "idle"
        assert "idle: interrupted" in screen_text(pilot.app)


async def test_w_and_i_jump_to_the_next_waiting_and_idle_agent(tmp_path: Path) -> None:
    dash = three(tmp_path)
    write_status("alpha", "permission", T)
    write_status("gamma", "question", T)
    dash.panes.set_title("alpha", IDLE_TITLE)
    dash.panes.set_title("gamma", IDLE_TITLE)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        table = dash.main.query_one("#agents")
        assert table.selected_agent == "alpha"
        await pilot.press("w")
        await settle(pilot)
        assert table.selected_agent == "gamma"  # the next one after the cursor
        gamma = dash.panes.pane_map["gamma"].pane_id
        assert dash.panes.actions()[-1] == ("focus", gamma)
        await pilot.press("w")
        await settle(pilot)
        assert table.selected_agent == "alpha"  # wraps around
        await pilot.press("i")
        await settle(pilot)
        assert table.selected_agent == "beta"
        assert dash.panes.actions()[-1] == ("focus", dash.panes.pane_map["beta"].pane_id)


async def test_w_with_nobody_waiting_says_so(tmp_path: Path) -> None:
    dash = three(tmp_path)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        assert "no agent is waiting" in dash.notes
        assert dash.main.query_one("#agents").selected_agent == "alpha"


async def test_attention_sort_puts_the_longest_waiting_first(tmp_path: Path) -> None:
    dash = three(tmp_path)
    write_status("gamma", "permission", T - 30)
    write_status("beta", "question", T - 90)
    dash.panes.set_title("gamma", IDLE_TITLE)  # a waiting prompt shows ✳
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        table = dash.main.query_one("#agents")
        while table.sort_column != "status":
            await pilot.press("o")
        await settle(pilot)
        order = [str(row.key.value) for row in table.ordered_rows]
        assert order == ["beta", "gamma", "alpha"]


async def test_nothing_an_agent_writes_is_markup(tmp_path: Path) -> None:
    dash = build(tmp_path, [spec("alpha")])
    dash.backend.add("alpha", RUNNING)
    dash.panes.add("alpha", title="\u2733 [bold red]x[/] [link=file:///etc/passwd]y[/link]")
    write_status("alpha", "[b]waiting[/b]", T)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        # The garbage file is unknown; the title still reads as claude's idle glyph.
        assert status_cell(dash, "alpha")[0] == "idle"
        text = screen_text(pilot.app)
        assert "passwd" not in text and "[b]" not in text
