"""The dashboard's first paint loads only what it shows.

In a fresh interpreter (as an operator starts it) the dashboard runs headless on fakes
until its first poll is on screen; then nothing may have loaded that the first paint does
not need: the escape probes (the seal badge is read from their record), psutil (the
poller reads /proc), rich's emoji table (loaded by the first markup parse: every table
cell and column label is plain Text), tar, the sidecar or the docker SDK.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.fakes.loaded_modules import REPO, leaked, run_fresh

NOT_FOR_THE_FIRST_PAINT = (
    "backends.probes.suite",
    "backends.probes.host",
    "backends.probes.network",
    "backends.egress.sidecar",
    "rich._emoji_codes",
    "psutil",
    "tarfile",
    "docker",
    "mitmproxy",
)

CODE = """
import asyncio, json, sys
from datetime import UTC, datetime
from pathlib import Path
from tests.fakes.backend import FakeBackend
from tests.fakes.panehost import FakePaneHost
from backends.base import RUNNING, STOPPED, AgentSpec
from bottle_dash.config import Config
from bottle_dash.ui.app import make_app
from bottle_dash.ui.screens.main import MainScreen

backend = FakeBackend("docker", host_pid=1)
specs = {f"agent-{i:02d}": AgentSpec(name=f"agent-{i:02d}") for i in range(12)}
for i, name in enumerate(specs):
    if i % 3:
        backend.add(name, RUNNING if i % 3 == 1 else STOPPED)
config = Config(path=Path("/nonexistent/config.toml"), exists=True, agents=specs)
app = make_app(load_config=lambda: config, pane_host=FakePaneHost(),
               backends={"docker": backend}, refresh_interval=3600,
               now=lambda: datetime(2026, 1, 1, tzinfo=UTC), remember=False)

async def main():
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(2000):
            await pilot.pause(0.01)
            if isinstance(app.screen, MainScreen) and app.screen.polls:
                break
        await pilot.pause()
        assert app.screen.polls, "no poll"

asyncio.run(main())
print(json.dumps(sorted(sys.modules)))
"""


def test_the_first_paint_loads_no_probes_psutil_emoji_or_sdk(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=str(REPO),
    )
    loaded = run_fresh(CODE, env)
    assert "bottle_dash.ui.screens.main" in loaded and "textual" in loaded
    assert leaked(loaded, NOT_FOR_THE_FIRST_PAINT) == [], "the first paint imported more"
