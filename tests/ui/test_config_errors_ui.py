"""A config with bad agents: the dashboard lists the good ones and shows every bad one
with its fix (Pilot on the fakes, the config a real file)."""

from __future__ import annotations

from pathlib import Path

from bottle_dash.config import load_config
from tests.ui.dashkit import build, screen_text, settle


async def test_bad_agents_are_each_shown_and_the_good_ones_listed(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[agents.good]\n[agents.bad1]\ncpus = "many"\n[agents.bad2]\nbakend = 1\n')
    dash = build(tmp_path, [])
    dash.app.poller.load_config = lambda: load_config(path)
    async with dash.app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert dash.main.table.row_count == 1 and dash.main.table.selected_agent == "good"
        problems = [p.what for p in dash.main.result.problems if p.component == "config"]
        assert len(problems) == 2
        assert "agent 'bad1'" in problems[0] and "agent 'bad2'" in problems[1]
        assert "bad1" in screen_text(pilot.app)
