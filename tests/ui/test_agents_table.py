"""The agents table on its own, in a minimal app (no backend, no poller)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from bottle_dash.ui.widgets.agents_table import AgentCells, AgentsTable

T = TypeVar("T")


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


def agent(name: str, cpu: float) -> AgentCells:
    return AgentCells(name, True, "docker", "running", "", "live", "1m", cpu, 1 << 20, "idle")


async def synced(app: TableApp, pilot: Pilot[None], names: list[str]) -> AgentsTable:
    """The app's table once it shows ``names``, each at 10 % CPU."""
    table = app.query_one(AgentsTable)
    table.sync([agent(n, 10.0) for n in names])
    await pilot.pause()
    return table


def logging(calls: list[int], method: Callable[[int], T]) -> Callable[[int], T]:
    """``method``, noting each argument it is called with in ``calls``."""

    def logged(index: int) -> T:
        calls.append(index)
        return method(index)

    return logged


async def test_a_changed_cell_renders_its_row_again_and_no_other() -> None:
    # A CPU figure moves on some row most ticks; the other rows must come from the
    # table's cache, not be rendered again (that was most of the idle work).
    app = TableApp()
    async with app.run_test(size=(160, 12)) as pilot:
        names = [f"agent-{i}" for i in range(6)]
        table = await synced(app, pilot, names)
        rendered: list[str] = []
        render_cell = table._render_cell

        def counting(row_index: int, column_index: int, *args: object, **kw: object) -> object:
            key = table._row_locations.get_key(row_index)
            rendered.append(str(key.value) if key is not None else "header")
            return render_cell(row_index, column_index, *args, **kw)  # type: ignore[arg-type]

        table._render_cell = counting  # type: ignore[method-assign]
        # A cell missing from the cache fetches its row's renderables: one per cell drawn.
        drawn: list[int] = []
        table._get_row_renderables = logging(drawn, table._get_row_renderables)  # type: ignore[method-assign]
        # Nor are the other rows' lines joined and styled again: a whole-table repaint
        # per moved figure cost most of an idle tick with 100 bottles.
        painted: list[int] = []
        render_line = table.render_line
        table.render_line = logging(painted, render_line)  # type: ignore[method-assign]
        table.sync([agent(n, 55.0 if n == "agent-3" else 10.0) for n in names])
        await pilot.pause()
        assert painted and set(painted) == {4}, painted  # the header is line 0
        assert "55.0" in "".join(seg.text for seg in render_line(4))
        assert "55.0" not in "".join(seg.text for seg in render_line(3))
        assert rendered and set(rendered) == {"agent-3"}, rendered
        assert drawn == [3], drawn  # the CPU cell; the row's others come from the cache
        rendered.clear()
        painted.clear()
        table.sync([agent(n, 55.0 if n == "agent-3" else 10.0) for n in names])
        await pilot.pause()
        assert rendered == []  # nothing changed: nothing rendered
        assert painted == []


async def test_a_changed_cell_shows_in_a_scrolled_table() -> None:
    # Scrolled down, a row's lines sit elsewhere on screen than in the table: the
    # changed row is repainted where it shows, and a row off screen paints nothing.
    app = TableApp()
    async with app.run_test(size=(160, 12)) as pilot:
        names = [f"agent-{i:02d}" for i in range(30)]
        table = await synced(app, pilot, names)
        table.move_cursor(row=29, animate=False)
        await pilot.pause()
        assert table.scroll_offset.y > 0
        painted: list[int] = []
        table.render_line = logging(painted, table.render_line)  # type: ignore[method-assign]
        table.sync([agent(n, 55.0 if n in ("agent-27", "agent-02") else 10.0) for n in names])
        await pilot.pause()
        shown = {y: "".join(seg.text for seg in table.render_line(y)) for y in set(painted)}
        assert len(shown) == 1 and "agent-27" in next(iter(shown.values())), shown
        assert "55.0" in next(iter(shown.values()))


async def test_the_sort_runs_again_only_when_a_value_it_reads_changed() -> None:
    # A sort redraws the whole table: sorted by state, a moved CPU figure must not sort
    # again (nothing it reads changed), a changed state must.
    app = TableApp()
    async with app.run_test(size=(160, 12)) as pilot:
        names = [f"agent-{i}" for i in range(4)]
        table = await synced(app, pilot, names)
        table.sort_column = "state"
        sorts: list[object] = []
        sort = table.sort

        def counting(*args: Any, **kwargs: Any) -> AgentsTable:
            sorts.append(args)
            return sort(*args, **kwargs)

        table.sort = counting  # type: ignore[method-assign]
        table.sync([agent(n, 55.0 if n == "agent-0" else 10.0) for n in names])
        await pilot.pause()
        assert sorts == []
        stopped = replace(agent("agent-0", 55.0), state="stopped")
        table.sync([stopped, *(agent(n, 10.0) for n in names[1:])])
        await pilot.pause()
        assert len(sorts) == 1
        assert [str(r.key.value) for r in table.ordered_rows] == [*names[1:], "agent-0"]
