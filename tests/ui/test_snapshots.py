"""Snapshots at 100x30 of every screen that matters, in every theme under themes/.

Data is fixed (FakeBackend, FakePaneHost, frozen clock and psutil figures), and polling
ticks are an hour apart, so a snapshot never drifts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ui.dashkit import THEMES, build, settle

SIZE = (100, 30)
#: Shown by the empty state: fixed, unlike tmp_path.
CONFIG = Path("/home/operator/.config/bottle-dash/config.toml")


async def _confirm(pilot: Any) -> None:
    await settle(pilot)
    table = pilot.app.screen.query_one("#agents")
    table.move_cursor(row=table.get_row_index("beta"))
    await pilot.press("d")
    await settle(pilot)


async def _help(pilot: Any) -> None:
    await settle(pilot)
    await pilot.press("question_mark")
    await settle(pilot)


def snapshot(snap_compare: Any, tmp_path: Any, run_before: Any, **kw: Any) -> bool:
    """Compare the dashboard ``build(tmp_path, **kw)`` makes, at ``SIZE``, after ``run_before``."""
    dash = build(tmp_path, **kw)
    return bool(snap_compare(dash.app, terminal_size=SIZE, run_before=run_before))


@pytest.mark.parametrize("theme", THEMES)
def test_main_screen_every_state(snap_compare: Any, tmp_path: Any, theme: str) -> None:
    assert snapshot(snap_compare, tmp_path, settle, everything=True, theme=theme)


@pytest.mark.parametrize("theme", THEMES)
def test_empty_state(snap_compare: Any, tmp_path: Any, theme: str) -> None:
    assert snapshot(snap_compare, tmp_path, settle, agents=[], theme=theme, config_path=CONFIG)


@pytest.mark.parametrize("theme", THEMES)
def test_confirm_remove_modal(snap_compare: Any, tmp_path: Any, theme: str) -> None:
    assert snapshot(snap_compare, tmp_path, _confirm, everything=True, theme=theme)


@pytest.mark.parametrize("theme", THEMES)
def test_help(snap_compare: Any, tmp_path: Any, theme: str) -> None:
    assert snapshot(snap_compare, tmp_path, _help, everything=True, theme=theme)


@pytest.mark.parametrize("theme", THEMES)
def test_backend_problem(snap_compare: Any, tmp_path: Any, theme: str) -> None:
    assert snapshot(snap_compare, tmp_path, settle, everything=True, problem=True, theme=theme)
