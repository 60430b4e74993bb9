"""The details panel: the selected agent's definition, bottle, last error and pane preview."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import RenderableType
from rich.text import Text

from bottle_dash.ui.widgets.agent_cells import human_bytes, human_tokens, usd
from bottle_dash.ui.widgets.chrome import Redrawn

#: Failing probes listed in the panel; the rest are one ``bottle-dash probe NAME`` away.
SHOWN_FAILURES = 2
#: Lines of the panel without a seal (border included); the seal's lines come on top.
HEIGHT = 11
#: Cells of the label column ("last error" is the longest label).
LABEL = 10


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


#: Models listed with their tokens in the panel (the most used today first).
SHOWN_MODELS = 2


def cost_lines(spend: Any | None) -> int:
    """Lines the cost takes in the panel: cost, then budget and a line per model (up to
    ``SHOWN_MODELS``); none without usage or budget."""
    if spend is None or not (spend.requests or spend.budget_words):
        return 0
    return 1 + (1 if spend.budget_words else 0) + min(len(spend.by_model), SHOWN_MODELS)


def cost_facts(spend: Any) -> list[tuple[str, Text | str]]:
    """The panel's lines of a ``backends.egress.spend.Spend``: cost today, this week and
    since creation, the burn rate of the last 15 minutes; the budget; tokens by model."""
    cost = (
        f"{usd(spend.cost_today)} today, {usd(spend.cost_week)} week, "
        f"{usd(spend.cost_total)} total; {usd(spend.burn_per_hour)}/h last 15m"
    )
    line = Text(cost)
    if spend.budget.factor is None:
        line = Text('? (price = "none": tokens only)')
    elif spend.unknown_models:
        line.append(f"  ? not priced: {', '.join(spend.unknown_models)}", style="dim")
    facts: list[tuple[str, Text | str]] = [("cost", line)]
    if spend.budget_words:
        used = spend.budget_used or 0.0
        style = "bold red" if used >= 1 else ("yellow" if used >= 0.8 else "")
        words = f"{spend.budget_words}: ${spend.budget_spent:.2f} spent ({used:.0%})"
        if used >= 1:
            words += f"; new requests refused (raise: $ or bottle-dash budget {spend.agent})"
        facts.append(("budget", Text(words, style=style)))

    def today(item: tuple[str, dict[str, dict[str, int]]]) -> int:
        return sum(item[1].get("today", {}).get(k, 0) for k in ("input", "output"))

    for model, periods in sorted(spend.by_model.items(), key=today, reverse=True)[:SHOWN_MODELS]:
        parts = []
        for period in ("today", "week", "total"):
            t = periods.get(period, {})
            cache = sum(t.get(k, 0) for k in ("cache_read", "cache_write_5m", "cache_write_1h"))
            parts.append(
                f"{period} {human_tokens(t.get('input', 0))} in "
                f"{human_tokens(t.get('output', 0))} out {human_tokens(cache)} cache"
            )
        facts.append(("tokens", Text(f"{model}: " + "; ".join(parts))))
    return facts


def fact_lines(facts: Sequence[tuple[str, Text | str]], width: int) -> list[Text]:
    """One line per fact: the label (bold, in 10 cells), a space, the value cut with an
    ellipsis at ``width``. Plain Text lines: a rich Table grid laid out the same (measured,
    then rendered cell by cell) cost about twice the CPU on every cursor move."""
    lines = []
    for label, value in facts:
        line = Text(no_wrap=True)
        line.append(label.ljust(LABEL + 1), style="bold")
        cell = value if isinstance(value, Text) else Text(value)  # show() made it: cut in place
        cell.truncate(max(width - LABEL - 1, 0), overflow="ellipsis")
        line.append_text(cell)
        lines.append(line)
    return lines


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
    #: What ``show`` was last given, to show again at a new width.
    _last: tuple[Any, dict[str, Any]] | None = None

    def reserve(self, lines: int) -> None:
        """Keep room for ``lines`` seal lines whichever agent is shown: the main screen
        gives the most any listed agent needs, so the panel keeps its height (and the
        screen its layout) while the cursor moves."""
        self._reserved = lines

    def on_mount(self) -> None:
        self.border_title = "details"

    def on_resize(self) -> None:
        """Cut the values again to the new width."""
        if self._last is not None:
            self.show(self._last[0], **self._last[1])

    def show(
        self,
        row: Any | None,
        *,
        pane: str = "",
        error: str | None = None,
        preview: Sequence[str] | None = None,
        status: str = "",
        seal: tuple[str, Sequence[Any]] | None = None,
        spend: Any | None = None,
    ) -> None:
        """Render ``row`` (an ``AgentRow``) or a hint when nothing is selected; nothing
        is redrawn when all of it is as last shown (the width included: values are cut
        to it)."""
        given = {
            "pane": pane,
            "error": error,
            "preview": preview,
            "status": status,
            "seal": seal,
            "spend": spend,
        }
        self._last = (row, given)
        width = max(self.content_size.width, 1)
        if not self.changed(row, pane, error, list(preview or ()), status, seal, spend, width):
            return
        if row is None:
            self._draw(Text("Select an agent to see its details.", style="dim"), self._at_least(0))
            return
        spec = row.spec
        extra = 0
        facts: list[tuple[str, Text | str]] = []
        if status:
            facts.append(("status", Text(status)))
        facts.append(("image", row.image or "-"))
        facts.append(("workspace", str(spec.workspace) if spec and spec.workspace else "-"))
        if getattr(row, "runs_as_root", False):
            why = "uid 0: the workspace is root's (allow_root = false refuses)"
            facts.append(("runs as", Text(why, style="bold yellow")))
            extra += 1
        facts.append(("limits", limits_text(spec)))
        facts.append(("bottle", f"{row.bottle} ({row.backend}, {row.state})"))
        if seal is not None:  # the seal badge, then each failing probe with its fix
            badge, failures = seal
            facts.append(("seal", Text(badge, style="bold red" if failures else "")))
            extra += 1 + min(len(failures), SHOWN_FAILURES)
            for failure in failures[:SHOWN_FAILURES]:
                line = Text(f"{failure.probe}", style="red")
                facts.append(("", line.append(f"  fix: {failure.fix}", style="")))
            if len(failures) > SHOWN_FAILURES:
                more = len(failures) - SHOWN_FAILURES
                facts.append(("", Text(f"{more} more: bottle-dash probe {row.name}", style="dim")))
                extra += 1
        if cost_lines(spend):
            facts += cost_facts(spend)
            extra += cost_lines(spend)
        if not row.defined:
            facts.append(("config", Text("not defined: bottle found by its labels", "yellow")))
        if row.created:
            facts.append(("created", row.created))
        facts.append(("pane", pane or "none"))
        facts.append(("last error", Text(error, style="red") if error else "-"))
        if not preview:
            self._draw(Text("\n").join(fact_lines(facts, width)), self._at_least(extra))
            return
        # The preview sits beside the facts so both fit in a 30-line terminal: two halves
        # two cells apart, as a two-column grid would lay them out.
        left = (width + 1) // 2 - 2
        right = width - (width + 1) // 2
        shown = [Text("pane preview", style="dim")] + [Text(p) for p in preview[-7:]]
        rows = fact_lines(facts, left)
        lines = []
        for index in range(max(len(rows), len(shown))):
            line = rows[index] if index < len(rows) else Text()
            line.pad_right(left - line.cell_len)
            line.append("  ")
            if index < len(shown):
                shown[index].truncate(right, overflow="ellipsis")
                line.append_text(shown[index])
            lines.append(line)
        self._draw(Text("\n").join(lines), self._at_least(extra))

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
