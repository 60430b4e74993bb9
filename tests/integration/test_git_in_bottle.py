"""git in a real docker bottle: the agent commits as its ``git_user`` (or the operator's
identity), and in a plain git workspace, whose .git is read-only to the agent, ``up``
says so and points at ``repo =``.

Agents are named ``t<run>-<label>`` (conftest ``agent_name``); each test removes its own
bottles, and the session sweep whatever a failed one leaves.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.cli_run import bd
from tests.integration.cli_helpers import write_config
from tests.support import agent_name

pytestmark = pytest.mark.docker

COMMIT = (
    "cd /workspace && git init -q 2>&1; git commit -q --allow-empty -m first 2>&1 && "
    "git log -1 --format='%an <%ae> | %cn <%ce>'"
)


def workspace(tmp_path: Path, label: str) -> Path:
    ws = tmp_path / label
    ws.mkdir()
    os.chown(ws, 1000, 1000)  # the agent runs as the workspace's owner (node)
    return ws


def config(tmp_path: Path, agents: dict[str, dict[str, Any]]) -> dict[str, str]:
    path = tmp_path / "config.toml"
    write_config(path, agents)
    return {"BOTTLE_DASH_CONFIG": str(path)}


def run_ok(*args: str, env: dict[str, str]) -> str:
    done = bd(*args, env=env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout + done.stderr


def test_the_agent_commits_as_its_git_user(
    tmp_path: Path, test_image: str, cleanup: list[str]
) -> None:
    name = agent_name("gitid")
    cleanup.append(name)
    ws = workspace(tmp_path, "ws")
    agent = {
        "image": test_image,
        "workspace": str(ws),
        "git_user": "Ada Lovelace <ada@example.org>",
    }
    env = config(tmp_path, {name: agent})
    run_ok("up", name, env=env)
    out = run_ok("exec", name, "--", "sh", "-c", COMMIT, env=env)
    assert "Ada Lovelace <ada@example.org> | Ada Lovelace <ada@example.org>" in out
    # The commit is the agent's, in its workspace, as the host sees it.
    log = subprocess.run(
        ["git", "-c", f"safe.directory={ws}", "-C", str(ws), "log", "-1", "--format=%ae"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert log.stdout.strip() == "ada@example.org"


def test_without_git_user_the_operators_identity_is_used(
    tmp_path: Path, test_image: str, cleanup: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gitconfig = tmp_path / "operator-gitconfig"
    gitconfig.write_text("[user]\n\tname = Op Erator\n\temail = op@host.example\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))  # the operator's ~/.gitconfig
    name = agent_name("gitop")
    cleanup.append(name)
    ws = workspace(tmp_path, "ws")
    env = config(tmp_path, {name: {"image": test_image, "workspace": str(ws)}})
    env["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    run_ok("up", name, env=env)
    out = run_ok("exec", name, "--", "sh", "-c", COMMIT, env=env)
    assert "Op Erator <op@host.example> | Op Erator <op@host.example>" in out


def test_a_plain_git_workspace_is_read_only_and_up_points_at_repo(
    tmp_path: Path, test_image: str, cleanup: list[str]
) -> None:
    name = agent_name("gitro")
    cleanup.append(name)
    ws = workspace(tmp_path, "repo")
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    subprocess.run(["chown", "-R", "1000:1000", str(ws)], check=True)
    agent = {"image": test_image, "workspace": str(ws), "git_user": "Ada <ada@example.org>"}
    env = config(tmp_path, {name: agent})
    said = run_ok("up", name, env=env)
    assert "read-only in the bottle" in said and f'repo = "{ws}"' in said
    done = bd("exec", name, "--", "sh", "-c", COMMIT, env=env)
    assert done.returncode != 0
    assert "Read-only file system" in done.stdout + done.stderr
