"""The uptime column counts from the bottle's last start, to the nearest minute (Pilot on
the fakes; the real start times are tests/integration/test_uptime_docker.py's)."""

from __future__ import annotations

from pathlib import Path

from tests.ui.dashkit import build, screen_text, settle, spec


async def test_uptime_is_since_the_last_start(tmp_path: Path) -> None:
    dash = build(tmp_path, [spec("alpha")])
    info = dash.backend.add("alpha")  # created 10:00; the clock says 12:34
    # Restarted at 12:03:40: 30m 20s ago, shown as 30m (not 2h 34m).
    dash.backend.bottles["alpha"] = info._replace(started="2026-01-01T12:03:40.123456789Z")
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        cells = dash.main.table.get_row("alpha")
        assert "30m" in [str(c).strip() for c in cells]
        assert "2h 34m" not in screen_text(pilot.app)


async def test_uptime_rounds_to_the_nearest_minute(tmp_path: Path) -> None:
    dash = build(tmp_path, [spec("alpha")])
    info = dash.backend.add("alpha")
    dash.backend.bottles["alpha"] = info._replace(started="2026-01-01T12:03:10Z")  # 30m 50s
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "31m" in [str(c).strip() for c in dash.main.table.get_row("alpha")]
