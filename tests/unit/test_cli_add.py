"""``bottle-dash add``: the table the n form writes, from the command line (a real
subprocess on a real config file; no engine needed)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.fakes.cli_run import bd

DEAD_DOCKER = "unix:///nonexistent/bottle-dash-test.sock"


def test_add_appends_a_validated_agent_and_keeps_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('# my agents\n[defaults]\nmemory = "2g"\n\n[agents.first]\n')
    ws = tmp_path / "ws"
    ws.mkdir()
    env = {"BOTTLE_DASH_CONFIG": str(config)}
    done = bd(
        "add", "second", "--workspace", str(ws), "--image", "my-image:2",
        "--allow", "github.com", "*.npmjs.org", "--git-user", "Ada <ada@example.org>",
        "--env", "TZ=UTC", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "added agent second" in done.stdout
    text = config.read_text()
    assert text.startswith('# my agents\n[defaults]\nmemory = "2g"\n\n[agents.first]\n')
    table = tomllib.loads(text)["agents"]["second"]
    assert table == {
        "image": "my-image:2",
        "workspace": str(ws),
        "env": {"TZ": "UTC"},
        "egress_allow": ["github.com", "*.npmjs.org"],
        "git_user": "Ada <ada@example.org>",
    }
    plan = bd("plan", "second", "--json", env={**env, "DOCKER_HOST": DEAD_DOCKER})
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["env"]["GIT_AUTHOR_EMAIL"] == "ada@example.org"


def test_add_refuses_what_the_config_would_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[agents.first]\n")
    env = {"BOTTLE_DASH_CONFIG": str(config)}
    again = bd("add", "first", env=env)
    assert again.returncode == 3 and "already defined" in again.stderr
    bad = bd("add", "third", "--allow", "https://x/", env=env)
    assert bad.returncode == 3 and "egress_allow" in bad.stderr and "fix:" in bad.stderr
    env_bad = bd("add", "third", "--env", "NOEQUALS", env=env)
    assert env_bad.returncode == 2 and "KEY=VALUE" in env_bad.stderr
    both = bd("add", "third", "--workspace", "a", "--repo", "b", env=env)
    assert both.returncode == 2
    assert config.read_text() == "[agents.first]\n"


def test_add_creates_a_missing_config(tmp_path: Path) -> None:
    config = tmp_path / "new" / "config.toml"
    done = bd("--config", str(config), "add", "solo", env={})
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(config.read_text()) == {"agents": {"solo": {}}}
