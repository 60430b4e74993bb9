"""The command palette acts on any agent by name, not only the selected row (Pilot on
the fakes)."""

from __future__ import annotations

from pathlib import Path

from tests.ui.dashkit import build, screen_text, search_palette, select, settle


async def test_attach_by_name_selects_that_agent_and_attaches(tmp_path: Path) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await select(pilot, dash, "alpha")
        await search_palette(pilot, "attach beta", "Attach agent: beta")
        await pilot.press("enter")
        await settle(pilot)
        assert dash.main.table.selected_agent == "beta"
        assert dash.backend.called("start") == [("start", "beta")]
        assert [c[0] for c in dash.panes.actions()] == ["respawn", "focus"]


async def test_the_palette_sorts_and_stops_an_agent_that_is_not_selected(tmp_path: Path) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await select(pilot, dash, "beta")
        await search_palette(pilot, "stop alpha", "Stop agent: alpha")
        await pilot.press("enter")
        await settle(pilot)
        assert dash.backend.called("stop") == [("stop", "alpha")]
        await search_palette(pilot, "Sort agents", "By the next column")


async def test_the_sorted_column_is_marked(tmp_path: Path) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "▼" not in screen_text(pilot.app)
        await pilot.press("o")  # by name
        await pilot.pause()
        assert "agent ▼" in screen_text(pilot.app)
        await pilot.press("o")  # by state
        await pilot.pause()
        text = screen_text(pilot.app)
        assert "state ▼" in text and "agent ▼" not in text
