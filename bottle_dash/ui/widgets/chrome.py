"""The screen's chrome: header counts, backend problems, the empty state, the progress
line and the keys bar."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.text import Text
from textual.widgets import Static

from backends.base import Problem
from bottle_dash.ui.actions import footer_keys
from bottle_dash.ui.themes import STATE_VARIABLE, STATUS_VARIABLE


class Redrawn(Static):
    """A ``Static`` that redraws only when what it shows changed.

    A poll every 2 s hands every widget the same values most of the time; re-rendering
    them anyway was a good part of the dashboard's idle CPU. ``changed(key)`` compares
    what is to be shown (and the theme, whose colours are in the rendered text) with the
    last time.
    """

    _shown_key: object = None

    def changed(self, *key: object) -> bool:
        """True (and remembered) when ``key`` differs from the last one shown."""
        full = (self.app.theme, key)
        if full == self._shown_key:
            return False
        self._shown_key = full
        return True


class CountsHeader(Redrawn):
    """``bottle-dash  3 running  1 stopped  2 not created`` — counts per state."""

    DEFAULT_CSS = """
    CountsHeader {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def show(
        self,
        counts: Mapping[str, int],
        undefined: int = 0,
        note: str = "",
        statuses: Mapping[str, int] | None = None,
        cost: str = "",
    ) -> None:
        """Render the counts (every state, zeros included, so the header never jumps), then
        how many agents wait, work and idle (``statuses``, those above zero), then what
        the agents spent today (``cost``, when any did)."""
        statuses = statuses or {}
        if not self.changed(
            sorted(counts.items()), undefined, note, sorted(statuses.items()), cost
        ):
            return
        colours = self.app.theme_variables
        text = Text("bottle-dash", style="bold")
        for state, variable in STATE_VARIABLE.items():
            text.append("   ")
            text.append(f"{counts.get(state, 0)} {state}", style=colours.get(variable))
        for state, count in sorted(counts.items()):
            if state not in STATE_VARIABLE and count:  # e.g. "unknown": its backend did not answer
                text.append(f"   {count} {state}", style=colours.get("state-undefined"))
        if undefined:
            text.append("   ")
            text.append(f"{undefined} undefined", style=colours.get("state-undefined"))
        if note:
            text.append(f"   {note}", style="dim")
        if statuses:
            # Only the statuses some agent has, waiting first: the header has no room for
            # zeros beside the states.
            shown = [(st, statuses.get(st, 0)) for st in ("waiting", "working", "idle")]
            shown = [(st, n) for st, n in shown if n]
            if shown:
                text.append("  │")
            for status, count in shown:
                style = colours.get(STATUS_VARIABLE[status], "")
                if status == "waiting":
                    style = f"bold reverse {style}"
                text.append(" ")
                text.append(f"{count} {status}", style=style)
        if cost:
            text.append(f"  │ {cost}", style="bold")
        self.update(text, layout=False)  # one line, always: no layout pass for it


class ProblemsPanel(Redrawn):
    """Backend problems (Docker not answering, smolvm missing), each with its fix."""

    DEFAULT_CSS = """
    ProblemsPanel {
        height: auto;
        max-height: 8;
        border: round $error;
        border-title-color: $error;
        padding: 0 1;
        display: none;
        &.-shown { display: block; }
    }
    """

    def on_mount(self) -> None:
        self.border_title = "problems"

    def show(self, problems: Sequence[Problem]) -> None:
        """List ``problems``; hidden when there are none."""
        if not self.changed(list(problems)):
            return
        self.set_class(bool(problems), "-shown")
        text = Text()
        for i, problem in enumerate(problems):
            if i:
                text.append("\n")
            text.append(f"{problem.component}: ", style="bold")
            text.append(problem.what)
            text.append("\n  fix: ", style="dim")
            text.append(problem.fix)
        self.update(text)


class EmptyState(Redrawn):
    """Shown instead of the table when no agent is defined and no bottle was found."""

    DEFAULT_CSS = """
    EmptyState {
        height: 1fr;
        content-align: center middle;
        text-align: center;
        color: $text-muted;
        display: none;
        &.-shown { display: block; }
    }
    """

    def show(self, config_path: Path | None) -> None:
        """Say where the config file is and how to add the first agent."""
        if not self.changed(config_path):
            return
        where = str(config_path) if config_path else "(no config file found)"
        text = Text()
        text.append("No agents yet.\n\n", style="bold")
        text.append("Agents are defined in\n")
        text.append(where + "\n\n", style="bold")
        text.append("Add an [agents.NAME] table there (NAME is the agent's name;\n")
        text.append("keys such as workspace, image, prompt),\n")
        text.append("or press ")
        text.append("n", style="bold reverse")
        text.append(" to add one here.")
        self.update(text)


class ProgressLine(Static):
    """One line: progress of long actions and the outcome of the last one."""

    DEFAULT_CSS = """
    ProgressLine {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    """


#: (key, label) shown in the keys bar, in the order an operator reaches for them (each
#: action's ``footer`` place in the registry).
MAIN_KEYS: tuple[tuple[str, str], ...] = tuple(footer_keys())


#: How to get back to the dashboard from an agent's pane (tmux's own keys; the pane's
#: border says it with the operator's actual prefix, ``bottle_dash.layout``).
BACK_HINT = ("ctrl+b ;", "from a pane: back here  (ctrl+b z: unzoom)")


def pack_keys(keys: Sequence[tuple[str, str]], width: int) -> list[list[tuple[str, str]]]:
    """``keys`` in lines no wider than ``width``, never cutting a key from its label."""
    lines: list[list[tuple[str, str]]] = [[]]
    used = 0
    for key, label in keys:
        size = len(key) + len(label) + 3  # " key label "
        if lines[-1] and used + size > width:
            lines.append([])
            used = 0
        lines[-1].append((key, label))
        used += size
    return lines


class KeysBar(Static):
    """The footer: the main screen's keys, on as many lines as the width needs (a key
    cut off is a key the operator never learns), and the way back from an agent pane.

    Textual's ``Footer`` recomposes a widget per key whenever bindings change, which cost
    more than the rest of the first paint; these keys are fixed, so text does.
    """

    DEFAULT_CSS = """
    KeysBar {
        height: auto;
        max-height: 4;
        background: $footer-background;
        color: $footer-description-foreground;
    }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._draw)

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        key_style = self.app.theme_variables.get("footer-key-foreground", "bold")
        width = self.size.width or self.app.size.width
        text = Text(no_wrap=True, overflow="ellipsis")
        for n, line in enumerate(pack_keys((*MAIN_KEYS, BACK_HINT), width)):
            if n:
                text.append("\n")
            for key, label in line:
                text.append(f" {key}", style=f"bold {key_style}")
                text.append(f" {label} ")
        self.update(text)
