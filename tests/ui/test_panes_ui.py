"""The keys around agent panes: the focus after the new-agent form, the zoom key, and
the footer that keeps every key and the way back from a pane (FakeBackend +
FakePaneHost; the layout itself is tested on a real tmux in
tests/integration/test_tmux_layout.py)."""

from __future__ import annotations

from pathlib import Path

from dashkit import build, screen_text, settle, spec
from test_actions import press_on

from bottle_dash.ui.widgets.status import MAIN_KEYS, pack_keys


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
