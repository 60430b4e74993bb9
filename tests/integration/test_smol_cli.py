"""Shim tier: the same ``bottle-dash`` CLI as for docker, with an agent whose
``backend = "smolmachines"``, driving the stand-in smolvm (machines are containers).

up (twice, and after down), exec as node and root, ls --json, down, rm (refused without
--volumes: the VM's disk is the home), rm --volumes, and attach in a real terminal whose
size reaches claude through pty_resize.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fakes.cli_run import bd
from tests.fakes.smolvm_support import standin_machines
from tests.integration.cli_helpers import attach_once, write_config
from tests.support import agent_name

pytestmark = pytest.mark.shim


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stdout


def row(env: dict[str, str], name: str) -> dict[str, object]:
    rows = json.loads(ok(bd("ls", "--json", env=env)))
    [found] = [r for r in rows if r["name"] == name]
    return found


def test_cli_lifecycle(standin: str, tmp_path: Path) -> None:
    name = agent_name("cli")
    config = tmp_path / "config.toml"
    write_config(
        config,
        {
            name: {
                "backend": "smolmachines",
                "sealed": False,
                "image": standin,
                "prompt": "hi 'there' $HOME",
            }
        },
    )
    env = {"BOTTLE_DASH_CONFIG": str(config)}
    try:
        first = ok(bd("up", name, env=env))
        assert f"{name}: bottle bottle-{name} launched" in first
        assert "already running; nothing to do" in ok(bd("up", name, env=env))
        assert any(m["name"] == f"bottle-{name}" for m in standin_machines())

        assert ok(bd("exec", name, "--", "id", "-u", env=env)).strip() == "1000"
        assert ok(bd("exec", name, "--user", "root", "--", "id", "-u", env=env)).strip() == "0"
        tricky = "a b $(id) 'q' \"d\"\nnext"
        out = ok(bd("exec", name, "--", "sh", "-c", 'printf %s "$1"', "_", tricky, env=env))
        assert out == tricky
        prompt = ok(bd("exec", name, "--", "cat", "/home/node/.bottle-dash/prompt.md", env=env))
        assert prompt == "hi 'there' $HOME"
        failed = bd("exec", name, "--", "sh", "-c", "exit 9", env=env)
        assert failed.returncode == 9

        found = row(env, name)
        assert (found["backend"], found["bottle"], found["state"]) == (
            "smolmachines",
            f"bottle-{name}",
            "running",
        )

        ok(bd("exec", name, "--", "sh", "-c", "echo kept > ~/mark", env=env))
        ok(bd("down", name, env=env))
        assert row(env, name)["state"] == "stopped"
        assert "started" in ok(bd("up", name, env=env))
        assert ok(bd("exec", name, "--", "cat", "/home/node/mark", env=env)) == "kept\n"

        refused = bd("rm", name, env=env)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert "--volumes" in refused.stderr
        assert row(env, name)["state"] == "running"

        ok(bd("rm", "--volumes", name, env=env))
        assert row(env, name)["state"] == "not created"
        assert all(m["name"] != f"bottle-{name}" for m in standin_machines())
    finally:
        bd("rm", "--volumes", name, env=env)


def test_cli_attach_sees_the_terminal_size(standin: str, tmp_path: Path) -> None:
    name = agent_name("cliatt")
    config = tmp_path / "config.toml"
    write_config(config, {name: {"backend": "smolmachines", "sealed": False, "image": standin}})
    env = {"BOTTLE_DASH_CONFIG": str(config)}
    try:
        ok(bd("up", name, env=env))
        first = attach_once(name, env=env)
        assert first.status == 0, first.output
        assert "STANDIN-CLAUDE start uid=1000" in first.output
        assert "fresh conversation" in first.output
        # Without the wrapper the guest PTY would stay at 0x0 (see test_smol_pane.py).
        assert "size=30x100" in first.output
        second = attach_once(name, env=env)
        assert "continued conversation turn=2" in second.output
        assert "uid=0" not in second.output
    finally:
        bd("rm", "--volumes", name, env=env)
