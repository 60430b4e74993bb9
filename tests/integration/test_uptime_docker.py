"""Uptime counts from the bottle's last start (real docker): a bottle stopped and started
again (the dashboard's ``s`` then ``u``) is as old as that start, not its creation."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from backends import ownership
from backends.docker.backend import DockerBackend
from bottle_dash.ui.widgets.agent_cells import human_age, parse_created
from tests.fakes.cli_run import bd
from tests.integration.cli_helpers import write_config
from tests.support import agent_name

pytestmark = pytest.mark.docker


def info_of(backend: DockerBackend, name: str):  # type: ignore[no-untyped-def]
    return next(b for b in backend.list_bottles() if b.agent == name)


def test_uptime_restarts_with_the_bottle(
    tmp_path: Path, test_image: str, cleanup: list[str]
) -> None:
    name = agent_name("uptime")
    cleanup.append(name)
    ws = tmp_path / "ws"
    ws.mkdir()
    os.chown(ws, 1000, 1000)
    config = tmp_path / "config.toml"
    write_config(config, {name: {"image": test_image, "workspace": str(ws), "sealed": False}})
    env = {"BOTTLE_DASH_CONFIG": str(config)}
    assert bd("up", name, env=env).returncode == 0
    ownership.use_config(config)  # this process lists the bottles of this config
    backend = DockerBackend()
    first = info_of(backend, name)
    started = parse_created(first.started)
    assert started is not None and started >= parse_created(first.created)  # type: ignore[operator]
    assert bd("down", name, env=env).returncode == 0
    assert info_of(backend, name).started == ""  # stopped: no uptime
    assert bd("up", name, env=env).returncode == 0
    again = info_of(backend, name)
    restarted = parse_created(again.started)
    assert again.created == first.created and restarted is not None and restarted > started
    # Shown from that start: an hour after it reads 1h 0m whatever the creation time.
    assert human_age(again.started, restarted + timedelta(hours=1), nearest=True) == "1h 0m"
