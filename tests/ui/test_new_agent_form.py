"""The n form's advanced section writes the same keys the config file takes (Pilot, on the
fakes; the file is real and read back with tomllib)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bottle_dash.ui.screens.new_agent import form_table
from tests.ui.dashkit import build, screen_text, settle, spec


async def test_the_advanced_fields_reach_the_config(tmp_path: Path) -> None:
    skill = tmp_path / "review"
    skill.mkdir()
    dash = build(tmp_path, [spec("alpha")])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        form = pilot.app.screen
        assert "advanced" in screen_text(pilot.app)
        form.query_one("#f-name").value = "adv"
        values = {
            "egress_allow": "github.com, *.npmjs.org",
            "env": "TZ=UTC 'GREETING=hello world'",
            "credential": "env:ANTHROPIC_API_KEY",
            "skills": str(skill),
            "claude_args": "--model sonnet",
            "git_user": "Ada <ada@example.org>",
        }
        for key, value in values.items():
            form.query_one(f"#f-{key}").value = value
        await pilot.press("ctrl+s")
        await settle(pilot)
        table = tomllib.loads((tmp_path / "config.toml").read_text())["agents"]["adv"]
    assert table["egress_allow"] == ["github.com", "*.npmjs.org"]
    assert table["env"] == {"TZ": "UTC", "GREETING": "hello world"}
    assert table["credential"] == "env:ANTHROPIC_API_KEY"
    assert table["skills"] == [str(skill)]
    assert table["claude_args"] == ["--model", "sonnet"]
    assert table["git_user"] == "Ada <ada@example.org>"


async def test_a_bad_advanced_value_is_refused_with_its_reason(tmp_path: Path) -> None:
    dash = build(tmp_path, [spec("alpha")])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        form = pilot.app.screen
        form.query_one("#f-name").value = "adv"
        form.query_one("#f-api_base").value = "http://plain.example"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "plain http" in str(form.query_one("#error").render())
        assert not (tmp_path / "config.toml").exists()


def test_form_table_leaves_empty_fields_out() -> None:
    assert form_table({"name": "x", "egress_allow": " ", "env": "", "skills": ""}) == {}
