"""Start-up choices (in tmux, into tmux, --no-tmux, no tmux at all) and the theme loader."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from backends.base import BackendUnavailable, Problem
from bottle_dash import session
from bottle_dash.ui import themes
from tests.ui.dashkit import build, settle


def test_outside_tmux_without_tmux_says_so_and_offers_no_tmux(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(session.shutil, "which", lambda name: None)
    assert session.run_dashboard(config_path=None, no_tmux=False, theme=None) == 2
    err = capsys.readouterr().err
    assert "tmux is not installed" in err and "bottle-dash --no-tmux" in err


def test_outside_tmux_starts_or_reattaches_the_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(session.shutil, "which", lambda name: "/usr/bin/tmux")
    monkeypatch.setattr(session, "foreground", lambda argv: ran.append(argv) or 0)
    config = tmp_path / "my config.toml"
    assert session.run_dashboard(config_path=config, no_tmux=False, theme="bottle-light") == 0
    dashboard = [
        sys.executable,
        "-m",
        "bottle_dash",
        "--config",
        str(config),
        "--theme",
        "bottle-light",
    ]
    assert ran == [
        ["/usr/bin/tmux", "new-session", "-A", "-s", "bottle-dash", shlex.join(dashboard)]
    ]


def test_inside_tmux_or_no_tmux_runs_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(session, "run_in_place", lambda **kw: calls.append(kw) or 0)
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    assert session.run_dashboard(config_path=None, no_tmux=False, theme=None) == 0
    monkeypatch.delenv("TMUX")
    assert session.run_dashboard(config_path=None, no_tmux=True, theme=None) == 0
    assert [c["no_tmux"] for c in calls] == [False, True]


def test_broken_theme_file_is_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text('name = "good"\nprimary = "#112233"\n')
    (tmp_path / "bad-colour.toml").write_text('name = "bad"\nprimary = "not a colour"\n')
    (tmp_path / "bad-toml.toml").write_text("name = \n")
    (tmp_path / "bad-key.toml").write_text('name = "k"\nprimary = "#fff"\nsparkle = 1\n')
    loaded, failed = themes.load_themes([tmp_path])
    assert [t.name for t in loaded] == ["good"]
    reasons = {f.path.name: f.reason for f in failed}
    assert set(reasons) == {"bad-colour.toml", "bad-toml.toml", "bad-key.toml"}
    assert "unknown keys: sparkle" in reasons["bad-key.toml"]
    assert "'primary'" in reasons["bad-colour.toml"]


def test_shipped_themes_have_a_dark_and_a_light_one() -> None:
    loaded, failed = themes.load_themes([themes.shipped_dir()])
    assert failed == []
    assert {t.dark for t in loaded} == {True, False}
    for theme in loaded:
        assert set(themes.STATE_VARIABLES) <= set(theme.variables)


async def test_app_reports_a_broken_theme_and_keeps_going(tmp_path: Path) -> None:
    folder = tmp_path / "themes"
    folder.mkdir()
    (folder / "broken.toml").write_text("name = \n")
    dash = build(tmp_path, everything=True, theme_dirs=[themes.shipped_dir(), folder])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert pilot.app.theme == "bottle-dark"
        assert any("broken.toml" in m for m in dash.notes)


async def test_theme_option_wins_and_unknown_falls_back(tmp_path: Path) -> None:
    dash = build(tmp_path, everything=True, theme="bottle-light")
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert pilot.app.theme == "bottle-light"
    dash = build(tmp_path, everything=True, theme="no-such-theme")
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert pilot.app.theme == "bottle-dark"


def test_a_backend_whose_preflight_raises_shows_message_and_fix_once(tmp_path: Path) -> None:
    dash = build(tmp_path)

    def down() -> list[Problem]:
        raise BackendUnavailable("engine not answering", fix="start the engine")

    dash.backend.preflight = down  # type: ignore[method-assign]
    [problem] = dash.app.service.preflight(dash.config)
    assert problem.what == "backend unavailable: engine not answering"
    assert problem.fix == "start the engine"
