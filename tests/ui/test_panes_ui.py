"""The keys around agent panes: the focus after the new-agent form, the zoom key, and
the footer that keeps every key and the way back from a pane (FakeBackend +
FakePaneHost; the layout itself is tested on a real tmux in
tests/integration/test_tmux_layout.py)."""

from __future__ import annotations

from pathlib import Path

from bottle_dash.config import load_config
from bottle_dash.ui.widgets.agents_table import AgentsTable
from bottle_dash.ui.widgets.chrome import MAIN_KEYS, pack_keys
from tests.ui.dashkit import build, press_on, screen_text, settle, spec, until


async def test_enter_works_at_once_after_the_first_agent_is_saved(tmp_path: Path) -> None:
    start = tmp_path / "proj"
    start.mkdir()
    dash = build(tmp_path, [], start_dir=start)
    # The config as the file says, as in the real dashboard: the saved agent appears.
    dash.app.poller.load_config = lambda: load_config(tmp_path / "config.toml")
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "No agents yet" in screen_text(pilot.app)
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot)
        await until(pilot, lambda: dash.main.table.row_count == 1)
        # The table has the focus without Tab: enter reaches it.
        assert isinstance(pilot.app.focused, AgentsTable)
        await pilot.press("enter")
        await settle(pilot)
        await until(pilot, lambda: any(c[0] == "split" for c in dash.panes.actions()))
        assert dash.panes.actions()[0][:2] == ("split", "proj")


async def test_z_zooms_the_live_pane_and_says_when_there_is_none(tmp_path: Path) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "alpha", "z")
        assert dash.panes.actions() == [("zoom", "%1")]
        await press_on(pilot, dash, "gamma", "z")
        assert dash.panes.actions() == [("zoom", "%1")]
        notes = [n.message for n in pilot.app._notifications]
        assert "gamma has no live pane: enter opens one" in notes


async def test_the_footer_keeps_every_key_and_the_way_back(tmp_path: Path) -> None:
    dash = build(tmp_path, [spec("alpha")])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        text = screen_text(pilot.app)
        for key, label in MAIN_KEYS:
            assert f"{key} {label}" in text, label
        assert "ctrl+b ; from a pane: back here" in text


def test_pack_keys_never_cuts_a_key_from_its_label() -> None:
    keys = [("a", "alpha"), ("b", "beta"), ("c", "gamma")]
    assert pack_keys(keys, 20) == [[("a", "alpha"), ("b", "beta")], [("c", "gamma")]]
    assert pack_keys(keys, 5) == [[k] for k in keys]


async def test_n_started_in_bottle_dashs_own_checkout_prefills_no_workspace(
    tmp_path: Path,
) -> None:
    checkout = Path(__file__).resolve().parents[2]  # where `make run` starts
    dash = build(tmp_path, [], start_dir=checkout)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "NAME is the agent's name" in screen_text(pilot.app)
        await pilot.press("n")
        await pilot.pause()
        form = pilot.app.screen
        assert form.query_one("#f-workspace").value == ""
        assert form.query_one("#f-name").value == ""
