"""``l`` / ``bottle-dash logs`` on a real sealed docker bottle: its state, its (silent)
main process and its egress sidecar's lines, never "(no output)" alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes.cli_run import bd
from tests.integration.cli_helpers import write_config
from tests.support import agent_name

pytestmark = pytest.mark.docker


def test_logs_show_the_state_and_the_sidecar(
    tmp_path: Path, test_image: str, cleanup: list[str]
) -> None:
    name = agent_name("logs")
    cleanup.append(name)
    ws = tmp_path / "ws"
    ws.mkdir()
    os.chown(ws, 1000, 1000)
    config = tmp_path / "config.toml"
    write_config(config, {name: {"image": test_image, "workspace": str(ws)}})
    env = {"BOTTLE_DASH_CONFIG": str(config)}
    before = bd("logs", name, env=env)
    assert before.returncode == 0 and "has no bottle yet" in before.stdout
    assert bd("up", name, env=env).returncode == 0
    done = bd("logs", name, "--tail", "50", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"== bottle bottle-{name}: running ==" in out
    assert "(no output: claude runs in the pane)" in out
    assert f"== egress sidecar bottle-{name}-egress: running, last 50 lines ==" in out
    sidecar = out.split("== egress sidecar", 1)[1].splitlines()[1:]
    assert any(line.strip() and "no output" not in line for line in sidecar), out
