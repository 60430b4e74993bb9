"""The details panel: the selected agent's definition, bottle, last error and pane preview."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from bottle_dash.ui.widgets.agents_table import human_bytes
from bottle_dash.ui.widgets.status import Redrawn

#: Failing probes listed in the panel; the rest are one ``bottle-dash probe NAME`` away.
SHOWN_FAILURES = 2
#: Lines of the panel without a seal (border included); the seal's lines come on top.
HEIGHT = 11


def limits_text(spec: Any) -> str:
    """``cpus 2, memory 4.0G, pids 512`` from an ``AgentSpec`` (``-`` without one); limits
    the agent leaves unset are the backend's defaults, and say so."""
    if spec is None:
        return "-"
    parts = []
    if spec.cpus is not None:
        parts.append(f"cpus {spec.cpus:g}")
    if spec.memory is not None:
        parts.append(f"memory {human_bytes(spec.memory)}")
    if spec.pids is not None:
        parts.append(f"pids {spec.pids}")
    if not parts:
        return "backend defaults"
    if len(parts) < 3:  # what the agent leaves unset is not unlimited: the backend picks it
        parts.append("rest: backend defaults")
    return ", ".join(parts)


def seal_lines(seal: tuple[str, Sequence[Any]] | None) -> int:
    """Lines the seal takes in the panel: the badge, up to ``SHOWN_FAILURES`` failing
    probes and a line for the rest (none when the bottle does not run)."""
    if seal is None:
        return 0
    failures = len(seal[1])
    return 1 + min(failures, SHOWN_FAILURES) + (1 if failures > SHOWN_FAILURES else 0)


class AgentDetails(Redrawn):
    """Shows one agent; the main screen calls ``show`` with what the last poll found."""

    DEFAULT_CSS = """
    AgentDetails {
        height: 11;  /* HEIGHT */
        border: round $panel;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    """

    _height = HEIGHT  # as DEFAULT_CSS sets it
    #: Seal lines kept free whichever agent is shown (``reserve``).
    _reserved = 0

    def reserve(self, lines: int) -> None:
        """Keep room for ``lines`` seal lines whichever agent is shown: the main screen
        gives the most any listed agent needs, so the panel keeps its height (and the
        screen its layout) while the cursor moves."""
        self._reserved = lines

    def on_mount(self) -> None:
        self.border_title = "details"

    def show(
        self,
        row: Any | None,
        *,
        pane: str = "",
        error: str | None = None,
        preview: Sequence[str] | None = None,
        status: str = "",
        seal: tuple[str, Sequence[Any]] | None = None,
    ) -> None:
        """Render ``row`` (an ``AgentRow``) or a hint when nothing is selected; nothing
        is redrawn when all of it is as last shown."""
        if not self.changed(row, pane, error, list(preview or ()), status, seal):
            return
        if row is None:
            self._draw(Text("Select an agent to see its details.", style="dim"), self._at_least(0))
            return
        spec = row.spec
        extra = 0
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True, min_width=10)
        grid.add_column(overflow="ellipsis", no_wrap=True)
        if status:
            grid.add_row("status", Text(status))
        grid.add_row("image", row.image or "-")
        grid.add_row("workspace", str(spec.workspace) if spec and spec.workspace else "-")
        grid.add_row("limits", limits_text(spec))
        grid.add_row("bottle", f"{row.bottle} ({row.backend}, {row.state})")
        if seal is not None:  # the seal badge, then each failing probe with its fix
            badge, failures = seal
            grid.add_row("seal", Text(badge, style="bold red" if failures else ""))
            extra = 1 + min(len(failures), SHOWN_FAILURES)
            for failure in failures[:SHOWN_FAILURES]:
                line = Text(f"{failure.probe}", style="red")
                grid.add_row("", line.append(f"  fix: {failure.fix}", style=""))
            if len(failures) > SHOWN_FAILURES:
                more = len(failures) - SHOWN_FAILURES
                grid.add_row("", Text(f"{more} more: bottle-dash probe {row.name}", style="dim"))
                extra += 1
        if not row.defined:
            grid.add_row("config", Text("not defined: bottle found by its labels", "yellow"))
        if row.created:
            grid.add_row("created", row.created)
        grid.add_row("pane", pane or "none")
        grid.add_row("last error", Text(error, style="red") if error else "-")
        if not preview:
            self._draw(grid, self._at_least(extra))
            return
        # The preview sits beside the facts so both fit in a 30-line terminal.
        lines = Text("\n".join(preview[-7:]), no_wrap=True, overflow="ellipsis")
        side = Table.grid(expand=True, padding=(0, 2))
        side.add_column(ratio=1)
        side.add_column(ratio=1)
        side.add_row(grid, Group(Text("pane preview", style="dim"), lines))
        self._draw(side, self._at_least(extra))

    def _at_least(self, extra: int) -> int:
        return HEIGHT + max(extra, self._reserved)

    def _draw(self, content: RenderableType, height: int) -> None:
        """Show ``content``; the screen's layout is redone only when the panel's height
        changes (a cursor move to an agent with as many seal lines redraws this panel
        alone: a layout pass re-renders every widget on the screen)."""
        resize = self._height != height
        if resize:
            self._height = height
            self.styles.height = height
        self.update(content, layout=resize)
