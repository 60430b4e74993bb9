"""The seal badge: after a launch the escape probes run in the background; the table
shows sealed / n failing / not checked and the details list each failure with its fix.

The fake backend's bottle answers every probe's command with nothing, so every probe that
needs an answer fails: the badge and the details must say so (never "sealed")."""

from __future__ import annotations

import json
from typing import Any

from backends.base import RUNNING
from backends.probes import suite
from tests.ui.dashkit import build, press_on, screen_text, settle


async def test_launch_runs_the_probes_and_shows_the_seal(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert dash.rows()["gamma"].seal == ""  # no bottle, no badge
        await press_on(pilot, dash, "gamma", "u")
        await settle(pilot)
        assert dash.rows()["gamma"].state == RUNNING
        run = suite.last_run("gamma")
        assert run is not None and run.failures, "the probes ran on the new bottle"
        badge = f"{len(run.failures)} failing"
        assert dash.rows()["gamma"].seal == badge
        text = screen_text(pilot.app)
        assert badge in text
        assert f"fix: {run.failures[0].fix}"[:40] in text
        assert any(c[0] == "exec" and c[1] == "gamma" for c in dash.backend.calls)


async def test_running_bottle_not_probed_since_it_was_made_is_not_checked(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    # A run recorded before the bottle was created belongs to an earlier bottle.
    stale = suite.SuiteRun("alpha", "docker", (), finished=1.0)
    suite.seal_file("alpha").parent.mkdir(parents=True, exist_ok=True)
    suite.seal_file("alpha").write_text(json.dumps(stale.to_dict()))
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert dash.rows()["alpha"].state == RUNNING
        assert dash.rows()["alpha"].seal == suite.NOT_CHECKED


async def test_probes_can_be_turned_off(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True, probe_after_up=False)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "gamma", "u")
        await settle(pilot)
        assert suite.last_run("gamma") is None
        assert dash.rows()["gamma"].seal == suite.NOT_CHECKED


async def test_details_say_when_the_agent_runs_as_root(tmp_path: Any) -> None:
    import os

    import pytest

    from tests.ui.dashkit import spec

    if os.geteuid() != 0:
        pytest.skip("needs a root-owned folder")
    ws = tmp_path / "ws"
    ws.mkdir()
    os.chown(ws, 0, 0)
    dash = build(tmp_path, [spec("rooty", workspace=ws)])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        text = screen_text(pilot.app)
        assert "runs as" in text and "uid 0: the workspace is root's" in text
        os.chown(ws, 1000, 1000)
    dash = build(tmp_path, [spec("rooty", workspace=ws)])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "runs as" not in screen_text(pilot.app)
