"""The repository copy's keys under Pilot: c (changes), f (fetch), m (merge), p (pull
request). An agent with no copy is told so, with no modal; with a copy, f/m/p ask first
(ConfirmWork): `n` changes nothing, `y` runs the action in the agent's worker and its
outcome (here a failure: the recorded repository does not exist) shows on the agent."""

from __future__ import annotations

import json
from typing import Any

from backends import paths
from backends.agent_files import COPY_RECORD
from bottle_dash.ui.screens.modals import ConfirmWork
from tests.ui.dashkit import build, screen_text, settle, spec


async def select(pilot: Any, name: str) -> None:
    table = pilot.app.screen.query_one("#agents")
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()


async def test_keys_without_a_copy_say_so(tmp_path: Any) -> None:
    dash = build(tmp_path, [spec("alpha")])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await select(pilot, "alpha")
        for key in ("c", "f", "m", "p"):
            await pilot.press(key)
            await settle(pilot)
            assert not isinstance(pilot.app.screen, ConfirmWork), key
        said = [n.message for n in pilot.app._notifications]
        assert said.count("alpha has no repository copy (set repo, then up)") == 4


async def test_fetch_asks_then_runs_and_reports(tmp_path: Any) -> None:
    missing = tmp_path / "no-such-repo"
    record = {"path": str(missing), "base": None, "base_oid": "a" * 40, "branch": "bottle/alpha"}
    paths.write_private(paths.agent_path("alpha", COPY_RECORD), json.dumps(record).encode())
    dash = build(tmp_path, [spec("alpha")])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await select(pilot, "alpha")
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ConfirmWork)
        assert "Fetch branch bottle/alpha of alpha" in screen_text(pilot.app)
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(pilot.app.screen, ConfirmWork)
        assert "fetch failed" not in screen_text(pilot.app)
        await pilot.press("m")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        text = screen_text(pilot.app)
        assert "merge failed" in text and "bottle/alpha" in text
