"""Rules of the app's modules, checked on their source: tmux.py is the only libtmux
importer, only ui/ imports Textual, widgets import nothing that does I/O (no service,
registry, tmux, subprocess), and no import circle runs through bottle_dash."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "bottle_dash"


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_tmux_py_imports_libtmux() -> None:
    importers = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if any(n.split(".")[0] == "libtmux" for n in imported(p))
    }
    assert importers == {"tmux.py"}


def test_widgets_do_no_io() -> None:
    banned = (
        "bottle_dash.service",
        "backends.registry",
        "bottle_dash.tmux",
        "subprocess",
        "libtmux",
    )
    for path in (PACKAGE / "ui" / "widgets").rglob("*.py"):
        bad = sorted(n for n in imported(path) if n.startswith(banned))
        assert bad == [], f"{path.name} imports {bad}"


DASHBOARD = (
    "process_usage.py",
    "session.py",
    "tmux.py",
    "ui/actions.py",
    "ui/app.py",
    "ui/commands.py",
    "ui/context.py",
    "ui/poller.py",
    "ui/messages.py",
    "ui/themes.py",
    "ui/workers.py",
)


def test_every_dashboard_module_starts_with_future_annotations() -> None:
    paths = [PACKAGE / n for n in DASHBOARD]
    paths += [
        *(PACKAGE / "service").rglob("*.py"),
        *(PACKAGE / "ui" / "screens").rglob("*.py"),
        *(PACKAGE / "ui" / "widgets").rglob("*.py"),
    ]
    for path in paths:
        tree = ast.parse(path.read_text())
        if not tree.body:
            continue
        body = tree.body[1:] if isinstance(tree.body[0], ast.Expr) else tree.body
        if path.name in ("__init__.py", "__main__.py") and not any(
            isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in body
        ):
            continue  # package markers owned by the skeleton
        first = body[0]
        assert isinstance(first, ast.ImportFrom) and first.module == "__future__", path


def test_only_ui_imports_textual() -> None:
    # The CLI and the service run without Textual; the dashboard is the ui/ package.
    importers = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if any(n.split(".")[0] == "textual" for n in imported(p))
    }
    assert importers, "no module imports Textual: the check looks in the wrong place"
    outside = sorted(p for p in importers if not p.startswith("ui/"))
    assert outside == []


# The import-circle check over both packages is tests/unit/test_layering.py.
