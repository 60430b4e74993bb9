"""The agents table: a keyed ``DataTable`` diffed in place on every poll.

Rows are keyed by agent name. A refresh removes gone keys, ``update_cell``s changed
values and ``add_row``s new agents, so the cursor, the sort and the scroll position
survive (the table is never cleared).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.binding import BindingType
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from backends.base import NOT_CREATED
from bottle_dash.status import STATUS_UNKNOWN
from bottle_dash.ui.actions import TABLE, bindings
from bottle_dash.ui.themes import STATE_VARIABLE, STATUS_VARIABLE
from bottle_dash.ui.widgets.agent_cells import (
    AgentCells,
    attention_key,
    human_bytes,
    steady,
)

#: (column key, label)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "agent"),
    ("status", "status"),
    ("backend", "backend"),
    ("state", "state"),
    ("egress", "egress"),
    ("perms", "perms"),
    ("pane", "pane"),
    ("uptime", "uptime"),
    ("cpu", "CPU %"),
    ("memory", "memory"),
    ("cost", "cost"),
)
#: After the sorted column's label (the status sort: waiting first, longest on top).
SORT_MARK = " ▼"
#: ``status`` is the attention sort: waiting first (longest waiting on top), then idle,
#: working, unknown, exited.
SORTABLE = ("name", "state", "backend", "cpu", "memory", "status")


def egress_text(egress: str) -> Text:
    """Sealed plainly; no egress control (or a dead sidecar) in capitals, bold: never
    shown as if it were sealed."""
    if egress in ("unsealed", "sidecar down"):
        return Text(egress.upper(), style="bold")
    return Text(egress)


def seal_text(seal: str, colours: Mapping[str, str]) -> Text:
    """The seal badge as a mark after a running bottle's state, short so the table fits
    100 columns (the details panel spells it out): ``✓`` sealed in the success colour,
    ``3✗`` (failing probes) bold in the error colour, ``?`` not checked, dim."""
    if seal == "sealed":
        return Text(" ✓", style=colours.get("success", ""))
    if seal.endswith("failing"):
        count = seal.removesuffix("failing").strip()
        return Text(f" {count}✗", style="bold " + colours.get("error", ""))
    return Text(" ?" if seal else "", style="dim")


class AgentsTable(DataTable[Text | str]):
    """Every agent, defined or found; ``sync`` applies a poll's rows in place."""

    DEFAULT_CSS = """
    AgentsTable {
        height: 1fr;
        border: round $panel;
        &:focus { border: round $primary; }
    }
    """
    # enter selects the row (DataTable's own binding), which the main screen turns into
    # attach; the table's own actions come from the registry.
    BINDINGS: ClassVar[list[BindingType]] = list(bindings(TABLE))

    def __init__(self, on_cursor: Callable[[], None] | None = None, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self._on_cursor = on_cursor
        self._cells: dict[str, AgentCells] = {}
        self._shown: dict[str, dict[str, Text | str]] = {}
        self.sort_column: str | None = None
        #: Cells (row -> columns) ``sync`` wrote without ``update_cell`` (``_forget_rendered``).
        self._touched: dict[str, set[str]] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            # Text, not a str: a str label is parsed as markup, and that first parse loads
            # rich's emoji table (26 ms of the first paint) for plain words.
            self.add_column(Text(label), key=key)

    def watch_cursor_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        """Repaint the cursor's rows, then call ``on_cursor`` at once when the row changed.

        ``RowHighlighted`` reaches the screen a message hop later, after the screen has
        painted the moved cursor: the details then waited for the next frame (1 to 2 frame
        periods, ~25 ms of a key's ~50 ms). Called here, the details change in the same
        frame as the cursor.
        """
        super().watch_cursor_coordinate(old, new)
        if old.row != new.row and self._on_cursor is not None:
            self._on_cursor()

    @property
    def selected_agent(self) -> str | None:
        """Name of the agent under the cursor."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def _state_text(self, cells: AgentCells) -> Text:
        colours = self.app.theme_variables
        if cells.busy:
            return Text(cells.busy + "…", style=colours.get("state-busy", ""))
        variable = STATE_VARIABLE.get(cells.state, STATE_VARIABLE[NOT_CREATED])
        text = Text(cells.state, style=colours.get(variable, ""))
        return text.append_text(seal_text(cells.seal, colours))

    def _status_text(self, cells: AgentCells) -> Text:
        if not cells.status:
            return Text("")
        variable = STATUS_VARIABLE.get(cells.status, STATUS_VARIABLE[STATUS_UNKNOWN])
        style = self.app.theme_variables.get(variable, "")
        if cells.status == "waiting":
            style = f"bold {style}"
        text = Text(cells.status, style=style)
        if cells.status_for:
            text.append(f" {cells.status_for}", style="dim")
        return text

    def render_cells(self, cells: AgentCells) -> dict[str, Text | str]:
        """The cells of one row, coloured by the current theme."""
        name = Text(cells.name)
        if not cells.defined:
            name.append(" (undefined)", style=self.app.theme_variables.get("state-undefined", ""))
        # Every cell a Text: DataTable parses a str as markup (rich's emoji table loads on
        # the first parse), and a cell's text is never markup.
        return {
            "name": name,
            "status": self._status_text(cells),
            "backend": Text(cells.backend),
            "state": self._state_text(cells),
            "egress": egress_text(cells.egress),
            "perms": Text(cells.perms),
            "pane": Text(cells.pane),
            "uptime": Text(cells.uptime),
            "cpu": Text("" if cells.cpu is None else f"{cells.cpu:.1f}", justify="right"),
            "memory": Text(human_bytes(cells.memory), justify="right"),
            "cost": self._cost_text(cells),
        }

    def _cost_text(self, cells: AgentCells) -> Text:
        """Today's cost; ``budget`` (bold, the error colour) once the budget is spent, the
        warning colour from 80 % of it."""
        colours = self.app.theme_variables
        if cells.budget == "spent":
            return Text(cells.cost, style="bold " + colours.get("error", ""), justify="right")
        style = colours.get("warning", "") if cells.budget == "near" else ""
        return Text(cells.cost, style=style, justify="right")

    def sync(self, rows: Sequence[AgentCells], force: bool = False) -> None:
        """Make the table show ``rows`` (in that order for new ones) without clearing it."""
        selected = self.selected_agent
        wanted = {cells.name: cells for cells in rows}
        for name in [n for n in self._cells if n not in wanted]:
            self.remove_row(name)
            del self._cells[name]
            del self._shown[name]
        moved = False  # a row added or a value the sort reads changed: only then
        self._touched = {}
        for cells in rows:
            old = self._cells.get(cells.name)
            if old is not None and not force:
                cells = steady(old, cells)
            updated = self._put(cells, force)
            moved = moved or (bool(updated) and self._moves_order(old, cells, updated))
            self._cells[cells.name] = cells
        self._forget_rendered(self._touched)
        if moved:
            # Not on every tick: a sort redraws the whole table even when nothing moved,
            # and a CPU figure that moved says nothing of an order by name or state.
            self._apply_sort()
        if selected in self._cells:
            self.move_cursor(row=self.get_row_index(selected), animate=False, scroll=False)

    def _moves_order(self, old: AgentCells | None, new: AgentCells, updated: set[str]) -> bool:
        """Whether the row's place in the current sort may have changed: it is new, or
        the value the sort reads (the sort column's cell; the attention sort's key) did."""
        if self.sort_column is None:
            return False
        if old is None:
            return True
        if self.sort_column == "status":
            return attention_key(old) != attention_key(new)
        return self.sort_column in updated

    def _put(self, cells: AgentCells, force: bool) -> set[str]:
        """Add the row of ``cells``, or update its cells whose text changed (all of them
        with ``force``); the columns added or updated (none: nothing changed)."""
        old = self._cells.get(cells.name)
        if old is None:
            rendered = self.render_cells(cells)
            self.add_row(*(rendered[k] for k, _ in COLUMNS), key=cells.name)
            self._shown[cells.name] = rendered
            return {key for key, _ in COLUMNS}
        if old == cells and not force:
            return set()
        # Only the cells whose text changed: CPU figures move every tick, and a redraw per
        # unchanged cell was most of the dashboard's idle work.
        rendered = self.render_cells(cells)
        shown = self._shown[cells.name]
        updated = [key for key, _ in COLUMNS if force or rendered[key] != shown[key]]
        for key in updated:
            value = rendered[key]
            width = value.cell_len if isinstance(value, Text) else cell_len(value)
            # A column only grows when asked to (update_width); without it a cell that got
            # longer than every earlier one ("stopped" where "dead" was) shows cut off.
            # Asked only then: it costs a layout pass, which a CPU figure must not.
            grows = width > self.columns[ColumnKey(key)].content_width
            self.set_cell(cells.name, key, value, grows=grows, force=force)
            shown[key] = value
        return set(updated)

    def set_cell(
        self, name: str, key: str, value: Text | str, *, grows: bool, force: bool = False
    ) -> None:
        """Write one cell: through ``update_cell`` when its column must widen (or every
        cell is drawn again anyway), else straight into the row, whose cached rendering
        ``sync`` then drops (``_forget_rendered``)."""
        if grows or force:
            self.update_cell(name, key, value, update_width=grows)
        else:
            self._data[RowKey(name)][ColumnKey(key)] = value
            self._touched.setdefault(name, set()).add(key)

    def _forget_rendered(self, touched: Mapping[str, set[str]]) -> None:
        """Drop the cached rendering of the cells ``touched`` (row -> columns) and of
        their rows' lines only, and repaint those rows.

        ``update_cell`` counts an update, which is part of every cached cell's key: one
        changed CPU figure made the table render each visible cell again (most of the
        idle dashboard's work with many bottles). A cell whose text changed but not its
        column's width is written here instead, and only it and its row's joined lines
        go; the row's other cells and the other rows come from the cache.
        """
        if not touched:
            return
        keys = {RowKey(name) for name in touched}
        changed = {(RowKey(name), ColumnKey(col)) for name, cols in touched.items() for col in cols}
        # An LRUCache has keys() but is not iterable itself.
        cells = self._cell_render_cache
        for cell in [k for k in cells.keys() if (k[0], k[1]) in changed]:  # noqa: SIM118
            cells.discard(cell)
        rows = self._row_render_cache
        for row in [k for k in rows.keys() if k[0] in keys]:  # noqa: SIM118
            rows.discard(row)
        renderables = self._row_renderable_cache
        for count, index in list(renderables.keys()):
            if self._row_locations.get_key(index) in keys:
                renderables.discard((count, index))
        # The rows' lines (y counts the header, as the line cache's key does), and only
        # their regions repainted: a whole-table refresh joined and styled every visible
        # line again each time one figure moved (most of an idle tick with 100 bottles).
        spans: list[tuple[int, int]] = []
        y = self.header_height if self.show_header else 0
        for ordered in self.ordered_rows:
            if ordered.key in keys:
                spans.append((y, ordered.height))
            y += ordered.height
        dirty = {line for top, height in spans for line in range(top, top + height)}
        lines = self._line_cache
        for line in [k for k in lines.keys() if k[0] in dirty]:  # noqa: SIM118
            lines.discard(line)
        width = max(self.size.width, self.virtual_size.width)
        for top, height in spans:
            self._refresh_region(Region(0, top, width, height))

    def _sort_key(self, value: object) -> object:
        if isinstance(value, Text):
            value = value.plain
        text = str(value)
        try:
            return (0, float(text.rstrip("BKMG%")), text)
        except ValueError:
            return (1, 0.0, text)

    def _apply_sort(self) -> None:
        assert self.sort_column
        if self.sort_column == "status":
            # By the row's agent (the name cell's first word), not by the status text.
            cells = self._cells
            self.sort("name", key=lambda name: attention_key(cells[str(name).split(" ")[0]]))
            return
        self.sort(self.sort_column, key=self._sort_key)

    def action_cycle_sort(self) -> None:
        """Sort by the next sortable column (then back to the order agents were added)."""
        order = [None, *SORTABLE]
        self.sort_column = order[(order.index(self.sort_column) + 1) % len(order)]
        selected = self.selected_agent
        if self.sort_column:
            self._apply_sort()
        else:
            self.sort("name", key=self._sort_key)
        if selected:
            self.move_cursor(row=self.get_row_index(selected), animate=False)
        self._mark_sort()
        self.notify(f"sorted by {self.sort_column or 'name'}", timeout=2)

    def _mark_sort(self) -> None:
        """The sorted column's header carries ``SORT_MARK`` (the others none)."""
        for key, label in COLUMNS:
            column = self.columns.get(ColumnKey(key))
            if column is not None:
                mark = SORT_MARK if key == self.sort_column else ""
                column.label = Text(label + mark)
        self._require_update_dimensions = True
        self.refresh()

    def rows_by_name(self) -> Mapping[str, AgentCells]:
        """What each row currently shows (for tests and the details panel)."""
        return dict(self._cells)
