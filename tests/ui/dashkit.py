"""Helpers that build the dashboard on fakes: FakeBackend, FakePaneHost, a fixed config
and a frozen clock, so Pilot tests and snapshots see the same data every run; and what
the dashboard shows (its screen as text, the notifications it raised)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backends import paths
from backends.base import NOT_CREATED, RUNNING, STOPPED, AgentSpec, Problem
from backends.claude import STATUS_FILE
from backends.paths import save_plan
from bottle_dash.config import Config
from bottle_dash.ui.app import BottleDashApp, make_app
from bottle_dash.ui.poller import Usage
from tests.fakes.backend import FakeBackend
from tests.fakes.panehost import FakePaneHost

NOW = datetime(2026, 1, 1, 12, 34, tzinfo=UTC)
THEMES_DIR = Path(__file__).resolve().parents[2] / "themes"
THEMES = sorted(p.stem for p in THEMES_DIR.glob("*.toml"))


def make_config(
    path: Path, agents: dict[str, AgentSpec], notify_command: tuple[str, ...] = ()
) -> Config:
    return Config(path=path, exists=True, agents=agents, notify_command=notify_command)


class FixedUsage:
    """psutil figures frozen per host pid (snapshots must not drift)."""

    def tree(self, pid: int) -> Usage | None:
        return Usage(cpu=12.5, memory=256 * 1024 * 1024)

    def begin(self) -> None:
        pass

    def sweep(self) -> None:
        pass


@dataclass
class Dash:
    """One dashboard on fakes, and the fakes to assert on."""

    app: BottleDashApp
    backend: FakeBackend
    panes: FakePaneHost
    config: Any
    extra: dict[str, FakeBackend] = field(default_factory=dict)
    #: Every notification's message, in order (``record_notifications``).
    notes: list[str] = field(default_factory=list)

    @property
    def main(self) -> Any:
        from bottle_dash.ui.screens.main import MainScreen

        return next(s for s in self.app.screen_stack if isinstance(s, MainScreen))

    def rows(self) -> dict[str, Any]:
        return dict(self.main.query_one("#agents").rows_by_name())


def write_status(agent: str, word: str, mtime: float) -> None:
    """What the agent's status hook writes, with its time (real files in the state dir)."""
    path = paths.ensure_status_dir(agent, os.geteuid()) / STATUS_FILE
    path.write_text(word)
    os.utime(path, (mtime, mtime))


def spec(name: str, backend: str = "docker", **kw: Any) -> AgentSpec:
    return AgentSpec(
        name=name,
        backend=backend,
        image=kw.pop("image", "agent-image:1"),
        workspace=kw.pop("workspace", Path(f"/srv/{name}")),
        **kw,
    )


def build(
    tmp_path: Path,
    agents: list[AgentSpec] | None = None,
    *,
    everything: bool = False,
    problem: bool = False,
    theme: str = "bottle-dark",
    pane_host: bool = True,
    config_path: Path | None = None,
    notify_command: tuple[str, ...] = (),
    **kw: Any,
) -> Dash:
    """A dashboard; ``everything`` puts agents in every state, with panes and a preview."""
    backend = FakeBackend("docker", host_pid=1)
    panes = FakePaneHost()
    backends: dict[str, FakeBackend] = {"docker": backend}
    agents = list(agents or [])
    if everything:
        agents = [
            spec("alpha", cpus=2.0, memory=4 * 1024**3, pids=512, prompt="be kind"),
            spec("beta"),
            spec("gamma"),
        ]
        for launched in agents[:2]:  # launched earlier, which recorded their plans
            save_plan(backend.prepare(launched))
        backend.calls.clear()
        backend.add("alpha", RUNNING)
        backend.add("beta", STOPPED)
        backend.add("orphan", RUNNING)
        panes.add(
            "alpha",
            lines=["STANDIN-CLAUDE start uid=1000", "STANDIN-CLAUDE fresh conversation turn=1"],
            title="\u2802 Claude Code",
        )
        panes.add("beta", dead=True)
        write_status("alpha", "working", NOW.timestamp() - 300)
        write_status("orphan", "permission", NOW.timestamp() - 125)
    if problem:
        smol = FakeBackend("smolmachines")
        smol.unavailable = "smolvm is not installed"
        smol.problems = [
            Problem("smolmachines", "smolvm CLI not found", "pip install 'bottle-dash[smolvm]'")
        ]
        backends["smolmachines"] = smol
        agents.append(spec("vm-agent", backend="smolmachines"))
    config_path = config_path or tmp_path / "config.toml"
    config = make_config(config_path, {a.name: a for a in agents}, notify_command)
    app = make_app(
        load_config=lambda: config,
        pane_host=panes if pane_host else None,
        backends=backends,
        config_path=config_path,
        theme=theme,
        refresh_interval=3600,  # tests poll on demand; no tick may land mid-assertion
        now=lambda: NOW,
        **kw,
    )
    app.poller.usage = FixedUsage()  # type: ignore[assignment]
    dash = Dash(app, backend, panes, config, notes=record_notifications(app))
    dash.extra = {k: v for k, v in backends.items() if k != "docker"}
    return dash


def record_notifications(app: BottleDashApp) -> list[str]:
    """A list that gets the message of every notification ``app`` raises from now on.

    Through ``App.notify``, the public call every toast goes through (a screen's or a
    widget's ``notify`` calls the app's); the call goes on to Textual unchanged.
    """
    seen: list[str] = []
    notify = app.notify

    def recording(message: str, *args: Any, **kw: Any) -> None:
        seen.append(str(message))
        notify(message, *args, **kw)

    app.notify = recording  # type: ignore[method-assign]
    return seen


def screen_text(app: Any) -> str:
    """What the terminal shows, as plain text: the render ``App.export_screenshot`` makes,
    taken as the text of its recording console instead of as SVG."""
    from unittest import mock

    from rich.console import Console

    def as_text(console: Console, **_: Any) -> str:
        return console.export_text()

    with mock.patch.object(Console, "export_svg", as_text):
        return str(app.export_screenshot())


async def settle(pilot: Any) -> None:
    """Wait for every worker (polls, actions) and the messages they posted. A worker that
    failed is not raised here: the app shows its error, which the test asserts on."""
    for _ in range(4):
        workers = list(pilot.app.workers)
        await asyncio.gather(*(w.wait() for w in workers), return_exceptions=True)
        await pilot.pause()


async def until(pilot: Any, check: Any, seconds: float = 20.0) -> None:
    """Let the app run until ``check()`` holds (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.01)


async def search_palette(pilot: Any, query: str, shown: str) -> None:
    """Open the command palette, type ``query`` and wait until ``shown`` is listed (the
    palette searches asynchronously)."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*query)
    await until(pilot, lambda: shown in screen_text(pilot.app))


async def select(pilot: Any, dash: Any, name: str) -> None:
    table = dash.main.query_one("#agents")
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()
    assert table.selected_agent == name


async def press_on(pilot: Any, dash: Any, name: str, *keys: str) -> None:
    """Select ``name``'s row, press ``keys``, and wait for what they started."""
    await select(pilot, dash, name)
    await pilot.press(*keys)
    await settle(pilot)


__all__ = [
    "NOT_CREATED",
    "THEMES",
    "build",
    "press_on",
    "screen_text",
    "search_palette",
    "select",
    "settle",
    "spec",
    "until",
]
