"""The diff screen under Pilot: the files of each part told apart with their counts, the
selected file's patch shown in colour, moving the cursor shows another, `/` searches
paths and patches, esc closes the search then the screen; and a snapshot."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.widgets import DataTable, Static

from backends.copy_diff import FileChange
from bottle_dash.service.copies import CopyDiff
from bottle_dash.ui.screens.diff import DiffScreen

PATCH_A = (
    "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1,2 @@\n x = 1\n+y = 2\n"
)
PATCH_R = "diff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-old\n+needle\n"

DIFF = CopyDiff(
    agent="web",
    branch="bottle/web",
    base="main",
    files=[
        FileChange("committed", "app.py", 1, 0),
        FileChange("uncommitted", "README", 1, 1),
        FileChange("untracked", "notes.txt", 0, 0),
    ],
    patches={("committed", "app.py"): PATCH_A, ("uncommitted", "README"): PATCH_R},
)


class Host(App[None]):
    def on_mount(self) -> None:
        self.push_screen(DiffScreen(DIFF))


def shown(app: Any) -> str:
    static = app.screen.query_one("#diff-text", Static)
    content = static.renderable if hasattr(static, "renderable") else static.content
    return str(getattr(content, "code", content))


async def test_files_patch_search_and_close() -> None:
    app = Host()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#diff-files", DataTable)
        assert table.row_count == 3
        parts = [str(table.get_row_at(i)[0]) for i in range(3)]
        assert parts == ["committed", "uncommitted", "untracked"]
        assert str(table.get_row_at(1)[1]) == "+1 -1"
        assert "+y = 2" in shown(app)
        await pilot.press("down")
        await pilot.pause()
        assert "+needle" in shown(app)
        await pilot.press("down")
        await pilot.pause()
        assert "untracked" in shown(app)
        # Search: the text is in README's patch only.
        await pilot.press("slash", *"needle", "enter")
        await pilot.pause()
        assert table.row_count == 1 and str(table.get_row_at(0)[2]) == "README"
        await pilot.press("slash", *"nothing-like-it", "enter")
        await pilot.pause()
        assert table.row_count == 0 and "nothing matches" in shown(app)
        await pilot.press("escape")  # the table has the focus: closes the screen
        await pilot.pause()
        assert not isinstance(app.screen, DiffScreen)


def test_diff_screen_snapshot(snap_compare: Any) -> None:
    assert snap_compare(Host(), terminal_size=(100, 30))
