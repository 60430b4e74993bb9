"""First run: n starts from this directory and the default image; enter on an agent
whose image is missing offers to build it, shows the build's progress, then attaches.

The backend and pane host are the labelled fakes of tests/fakes; the image build is a
stand-in (a real one takes minutes: the claude tier and bench_image build for real)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from backends.base import DEFAULT_IMAGE, ImageNotFound
from tests.ui.dashkit import build, press_on, screen_text, settle, spec, until

DEFAULT = DEFAULT_IMAGE


async def test_n_prefills_a_first_agent_from_the_start_directory(tmp_path: Path) -> None:
    start = tmp_path / "My Project"
    start.mkdir()
    dash = build(tmp_path, [], start_dir=start)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "No agents yet" in screen_text(pilot.app)
        await pilot.press("n")
        await pilot.pause()
        form = pilot.app.screen
        assert form.query_one("#f-name").value == "my-project"
        assert form.query_one("#f-workspace").value == str(start)
        assert form.query_one("#f-image").value == DEFAULT
        await pilot.press("ctrl+s")
        await settle(pilot)
        text = (tmp_path / "config.toml").read_text()
        assert "[agents.my-project]" in text and str(start) in text


async def test_n_for_a_second_agent_prefills_only_the_image(tmp_path: Path) -> None:
    dash = build(tmp_path, [spec("alpha")], start_dir=tmp_path)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        form = pilot.app.screen
        assert form.query_one("#f-name").value == ""
        assert form.query_one("#f-workspace").value == ""
        assert form.query_one("#f-image").value == DEFAULT


async def test_the_form_refuses_a_malformed_image(tmp_path: Path) -> None:
    dash = build(tmp_path, [], start_dir=tmp_path)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        pilot.app.screen.query_one(
            "#f-image"
        ).value = "bottle-accept:latest/tmp/my projectBe brief."
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "whitespace" in screen_text(pilot.app)
        assert not (tmp_path / "config.toml").exists()


def _missing_image(dash: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The fake backend refuses to launch until the stand-in build ran; the stand-in
    streams two build lines, as the real build does."""
    dash.backend.fail["launch"] = ImageNotFound(f"image {DEFAULT} of agent web is not there")
    built: list[str] = []

    def fake_build(image: str, progress: Any) -> str:
        for step in ("[debootstrap] I: Retrieving gcc-12-base", "[npm] added 2 packages"):
            progress(step)
        built.append(image)
        dash.backend.fail.pop("launch")
        return image

    monkeypatch.setattr(dash.app.service, "build_image", fake_build)
    return built


async def test_enter_on_a_missing_image_offers_to_build_then_attaches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dash = build(tmp_path, [spec("web", image=DEFAULT)])
    built = _missing_image(dash, monkeypatch)
    progress: list[str] = []
    async with dash.app.run_test(size=(100, 30)) as pilot:
        main = dash.main
        original = main.set_status
        monkeypatch.setattr(
            main, "set_status", lambda text: (progress.append(text), original(text))
        )
        await settle(pilot)
        await press_on(pilot, dash, "web", "enter")
        await until(pilot, lambda: "is not built" in screen_text(pilot.app))
        assert built == [] and dash.panes.actions() == []
        await pilot.press("y")
        await until(pilot, lambda: dash.panes.actions() != [])
        await settle(pilot)
        assert built == [DEFAULT]
        assert any("[npm] added 2 packages" in p for p in progress)  # the build's progress
        assert dash.panes.actions()[0][0] == "split"
        assert dash.backend.called("launch") == [("launch", "web"), ("launch", "web")]


async def test_declining_the_build_leaves_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dash = build(tmp_path, [spec("web", image=DEFAULT)])
    built = _missing_image(dash, monkeypatch)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "web", "enter")
        await until(pilot, lambda: "is not built" in screen_text(pilot.app))
        await pilot.press("n")
        await settle(pilot)
        assert built == [] and dash.panes.actions() == []
        assert "attach failed" in screen_text(pilot.app)


async def test_a_missing_image_it_cannot_build_is_only_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dash = build(tmp_path, [spec("web", image="someone/else:1")])
    built = _missing_image(dash, monkeypatch)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "web", "enter")
        await settle(pilot)
        assert "is not built" not in screen_text(pilot.app)
        assert "attach failed" in screen_text(pilot.app)
        assert built == []


async def test_the_ui_answers_while_the_image_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build runs in a thread worker: while it is under way the table shows it and
    its progress shows and keys still work (the help opens and closes); then the agent attaches."""
    dash = build(tmp_path, [spec("web", image=DEFAULT)])
    dash.backend.fail["launch"] = ImageNotFound(f"image {DEFAULT} of agent web is not there")
    started, release = threading.Event(), threading.Event()

    def slow_build(image: str, progress: Any) -> str:
        progress("[npm] added 2 packages")
        started.set()
        assert release.wait(20), "the test never released the build"
        dash.backend.fail.pop("launch")
        return image

    monkeypatch.setattr(dash.app.service, "build_image", slow_build)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "web", "enter")
        await until(pilot, lambda: "is not built" in screen_text(pilot.app))
        await pilot.press("y")
        await until(pilot, started.is_set)
        await until(pilot, lambda: "[npm] added 2 packages" in screen_text(pilot.app))
        assert dash.main.busy == {"web": "building the image"}
        await pilot.press("question_mark")
        await until(pilot, lambda: "bottle-dash keys" in screen_text(pilot.app))
        await pilot.press("escape")
        await until(pilot, lambda: "bottle-dash keys" not in screen_text(pilot.app))
        assert dash.panes.actions() == []
        release.set()
        await until(pilot, lambda: dash.panes.actions() != [])
        await settle(pilot)
        assert dash.panes.actions()[0][0] == "split"
