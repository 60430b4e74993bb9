"""Cost in the dashboard: the cost column, the details' cost, budget and tokens lines, the
header's total, the budget alerts (once at 80 %, once at 100 %) and the ``$`` key that
raises a budget in the config and the sidecar's budget file. The usage log is written by
the sidecar's own writer (``metering.Metering``) into the (isolated) state dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backends import paths
from backends.base import RUNNING
from backends.egress import ledger
from backends.egress.folder import write_budget
from backends.egress.metering import Metering
from tests.ui.dashkit import build, screen_text, settle, spec

pytestmark = pytest.mark.ui

SONNET = "claude-sonnet-4-5-20250929"


def spend(agent: str, usage: dict[str, int], model: str = SONNET) -> None:
    directory = paths.egress_dir(agent)
    directory.mkdir(parents=True, exist_ok=True)
    meter = Metering(directory)
    reading = meter.start(
        path="/v1/messages", status=200, headers={"content-type": "application/json"}
    )
    reading.feed(json.dumps({"model": model, "usage": usage}).encode())
    meter.finish(reading, complete=True, request=None)


def toasts(pilot: Any) -> list[str]:
    return [str(n.message) for n in pilot.app._notifications]


async def repoll(pilot: Any, dash: Any) -> None:
    dash.main.poll_now()
    await settle(pilot)


async def test_cost_column_details_header_and_alerts(tmp_path: Path) -> None:
    dash = build(tmp_path, [spec("alpha"), spec("beta")])
    dash.backend.add("alpha", RUNNING)
    spend("alpha", {"input_tokens": 1_000_000, "output_tokens": 100_000})  # $4.50
    write_budget("alpha", "5/day", "")
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        cells = dash.rows()
        assert (cells["alpha"].cost, cells["alpha"].budget) == ("$4.50", "near")
        assert cells["beta"].cost == ""
        text = screen_text(pilot.app)
        assert "$4.50 today" in text  # the header's total
        assert "$4.50 today, $4.50 week, $4.50 total; $18.0/h last 15m" in text
        assert "$5/day: $4.50 spent (90%)" in text
        assert f"{SONNET}: today 1.0M in 100k out" in text
        assert [t for t in toasts(pilot) if "budget" in t] == [
            "alpha has spent 80% of its budget ($5/day, $4.50 spent)"
        ]
        await repoll(pilot, dash)
        assert len([t for t in toasts(pilot) if "budget" in t]) == 1  # once per level
        spend("alpha", {"input_tokens": 200_000})  # $0.60 more: $5.10
        await repoll(pilot, dash)
        assert dash.rows()["alpha"].cost == "budget"
        assert any("has spent its budget" in t for t in toasts(pilot))
        assert "new requests refused" in screen_text(pilot.app)


async def test_an_unknown_model_shows_its_tokens_and_a_question_mark(tmp_path: Path) -> None:
    dash = build(tmp_path, [spec("alpha")])
    spend("alpha", {"input_tokens": 1_000_000}, model="claude-stand-in")
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert dash.rows()["alpha"].cost == "?"
        text = screen_text(pilot.app)
        assert "claude-stand-in: today 1.0M in" in text
        assert "? not priced: claude-stand-in" in text


async def test_the_dollar_key_raises_the_budget_live(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[agents.alpha]\nbudget = "1/day"\n')
    dash = build(tmp_path, [spec("alpha")], config_path=config)
    spend("alpha", {"input_tokens": 1_000_000})
    write_budget("alpha", "1/day", "")
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert dash.rows()["alpha"].cost == "budget"
        await pilot.press("dollar_sign")
        await settle(pilot)
        box = pilot.app.screen.query_one("#budget-input")
        box.value = "40/month"
        await pilot.press("enter")
        await settle(pilot)
        assert "20/day" in str(pilot.app.screen.query_one("#budget-error").render())
        box.value = "40/day"
        await pilot.press("enter")
        await settle(pilot)
        await settle(pilot)
        assert 'budget = "40/day"' in config.read_text()
        written = ledger.Budget.from_json(paths.budget_file("alpha").read_text())
        assert (written.limit_usd, written.period) == (40.0, "day")
        assert "alpha: budget = 40/day (applied now)" in screen_text(pilot.app)
