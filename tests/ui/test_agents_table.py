"""The agents table on its own, in a minimal app (no backend, no poller)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from bottle_dash.ui.widgets.agents_table import AgentCells, AgentsTable


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield AgentsTable(id="agents")


def cells(status: str, pane: str) -> AgentCells:
    return AgentCells("solo", True, "docker", "running", "", pane, "1m", None, None, status)


def row_line(app: TableApp) -> str:
    table = app.query_one(AgentsTable)
    return "".join(seg.text for seg in table.render_line(1))


async def test_a_cell_that_grows_past_its_column_is_shown_whole() -> None:
    # Columns size to their content; an updated cell longer than any before it must
    # widen its column, not show cut off ("dea" for "dead", "stopp" for "stopped").
    app = TableApp()
    async with app.run_test(size=(160, 10)) as pilot:
        table = app.query_one(AgentsTable)
        table.sync([cells("idle", "-")])
        await pilot.pause()
        assert "idle" in row_line(app)
        table.sync([cells("waiting: permission prompt", "dead")])
        await pilot.pause()
        line = row_line(app)
        assert "waiting: permission prompt" in line and " dead " in line, line
