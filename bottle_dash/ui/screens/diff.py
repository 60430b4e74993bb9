"""The diff view of one agent's copy: its changed files (committed, uncommitted and
untracked told apart, each with +/- lines) and the selected file's patch with diff syntax
colours, scrollable; ``/`` searches (keeps the files whose path or patch holds the text).
The changes were read in the bottle by a worker (``service.copies.diff``): this screen
only shows them."""

from __future__ import annotations

from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from bottle_dash.ui.screens.modals import Panel

#: How each part is shown in the file list.
PART_STYLE = {"committed": "green", "uncommitted": "yellow", "untracked": "magenta"}


class DiffScreen(Panel[None]):
    """Shows a ``service.copies.CopyDiff``."""

    DEFAULT_CSS = """
    DiffScreen Horizontal { height: 1fr; }
    DiffScreen #diff-files { width: 45%; height: 1fr; }
    DiffScreen #diff-patch { width: 55%; height: 1fr; border-left: solid $panel; }
    DiffScreen #diff-search { display: none; height: 3; border: round $accent; }
    DiffScreen #diff-search.-shown { display: block; }
    """
    BINDINGS = [
        Binding("escape,q,c", "close", "Close"),
        Binding("slash", "search", "Search"),
    ]

    def __init__(self, diff: Any) -> None:
        super().__init__()
        self.diff = diff
        self.query_text = ""
        #: Row key -> (part, path), for the files listed now.
        self.keys: dict[str, tuple[str, str]] = {}

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = (
                f"changes: {self.diff.agent} ({self.diff.branch} against {self.diff.base})"
            )
            box.border_subtitle = "↑↓: file · /: search · pgup/pgdn on the patch · esc: close"
            yield Input(placeholder="search paths and patches", id="diff-search")
            with Horizontal():
                yield DataTable(cursor_type="row", id="diff-files")
                with VerticalScroll(id="diff-patch"):
                    yield Static(id="diff-text")

    def on_mount(self) -> None:
        table: DataTable[Text | str] = self.query_one("#diff-files", DataTable)
        table.add_column("part", key="part")
        table.add_column("+/-", key="counts")
        table.add_column("file", key="file")
        self._fill()
        table.focus()

    def _matches(self, part: str, path: str) -> bool:
        if not self.query_text:
            return True
        needle = self.query_text.lower()
        return needle in path.lower() or needle in self.diff.patches.get((part, path), "").lower()

    def _fill(self) -> None:
        table: DataTable[Text | str] = self.query_one("#diff-files", DataTable)
        table.clear()
        self.keys = {}
        for index, f in enumerate(self.diff.files):
            if not self._matches(f.part, f.path):
                continue
            key = str(index)
            self.keys[key] = (f.part, f.path)
            if f.binary:
                counts = Text("bin", style="dim")
            elif f.part == "untracked":
                counts = Text("new", style="dim")
            else:
                counts = Text.assemble(
                    (f"+{f.insertions}", "green"), " ", (f"-{f.deletions}", "red")
                )
            table.add_row(
                Text(f.part, style=PART_STYLE.get(f.part, "")), counts, Text(f.path), key=key
            )
        if not self.keys:
            empty = "no changes" if not self.query_text else f"nothing matches {self.query_text!r}"
            self._show_patch(Text(empty, style="dim"))
        else:
            self._show_file(next(iter(self.keys)))

    def _show_file(self, key: str) -> None:
        part, path = self.keys[key]
        patch = self.diff.patches.get((part, path), "")
        if not patch:
            what = "untracked: not in git yet" if part == "untracked" else "no patch"
            self._show_patch(Text(f"{path}: {what}", style="dim"))
            return
        self._show_patch(Syntax(patch, "diff", theme="ansi_dark", word_wrap=False))

    def _show_patch(self, content: Any) -> None:
        self.query_one("#diff-text", Static).update(content)
        self.query_one("#diff-patch", VerticalScroll).scroll_home(animate=False)

    @on(DataTable.RowHighlighted, "#diff-files")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key in self.keys:
            self._show_file(key)

    def action_search(self) -> None:
        box = self.query_one("#diff-search", Input)
        box.add_class("-shown")
        box.focus()

    @on(Input.Submitted, "#diff-search")
    def _searched(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip()
        self._fill()
        self.query_one("#diff-files", DataTable).focus()

    def action_close(self) -> None:
        box = self.query_one("#diff-search", Input)
        if box.has_focus:
            box.remove_class("-shown")
            self.query_one("#diff-files", DataTable).focus()
            return
        self.dismiss(None)
