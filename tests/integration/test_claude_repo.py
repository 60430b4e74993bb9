"""The real Claude Code on its own branch: an agent with ``repo`` (not ``workspace``), in
a sealed bottle of the real agent image, asked (through the project's stand-in Anthropic
API, which answers with a Bash tool call) to edit a file and commit it. The commit lands
on the agent's branch in its copy, ``bottle-dash diff`` shows it, and the host repository
is untouched until ``fetch``."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import libtmux
import pytest

from backends.egress import plan as egress
from bottle_dash import config as configmod
from bottle_dash.service import AgentService, make_row
from tests.fakes.anthropic_api import Rule
from tests.fakes.anthropic_container import PORT, StandInContainer
from tests.fakes.cli_run import bd
from tests.integration.dashboard_tmux import dashboard_session, wait_for
from tests.integration.egress_world import API as API_HOST
from tests.integration.egress_world import grant_outer_range, make_upstream_certs
from tests.integration.test_claude_real import API_KEY, Agent
from tests.support import RUN_ID, agent_name

pytestmark = [pytest.mark.claude, pytest.mark.timeout(1800)]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def repo_agent(
    server: libtmux.Server, agent_image: str, standin_api_image: str, tmp_path: Path
) -> Iterator[tuple[Agent, Path, Path]]:
    name = agent_name("claude-repo")
    mark = uuid.uuid4().hex[:8]
    repo = tmp_path / "repo"
    repo.mkdir()
    ident = ["-c", "user.name=op", "-c", "user.email=op@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README").write_text("host\n")
    subprocess.run(["git", "-C", str(repo), "add", "README"], check=True)
    subprocess.run(["git", *ident, "-C", str(repo), "commit", "-qm", "first"], check=True)
    subprocess.run(["chown", "-R", "1000:1000", str(repo)], check=True)
    certs = make_upstream_certs(tmp_path / "certs")
    certs.parent.chmod(0o755)
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY + "\n")
    key_file.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(
        f"[agents.{name}]\n"
        f'image = "{agent_image}"\n'
        f'repo = "{repo}"\n'
        f'claude_args = ["--model", "claude-standin-{mark}"]\n'
        f'credential = "file:{key_file}"\n'
        f'api_base = "https://{API_HOST}:{PORT}"\n'
        f'upstream_ca = "{certs}"\n'
    )
    spec = configmod.load_config(config).agents[name]
    AgentService().up(spec)
    api = StandInContainer(
        standin_api_image,
        f"{name}-api",
        egress.outer_network_name(name),
        RUN_ID,
        alias=API_HOST,
        tls=certs.parent,
    )
    grant_outer_range(name)
    try:
        with dashboard_session(server, config) as session:
            yield Agent(session, api, name, mark), repo, config
    finally:
        api.remove()
        with contextlib.suppress(Exception):
            AgentService().remove(make_row(name, "docker", None, None), volumes=True, force=True)


def test_real_claude_commits_on_its_branch_and_diff_shows_it(
    repo_agent: tuple[Agent, Path, Path],
) -> None:
    agent, repo, config = repo_agent
    s = agent.session
    command = (
        f"echo 'made by claude {agent.mark}' > claude.txt && git add claude.txt && "
        "git -c user.name=claude -c user.email=claude@example.invalid commit -qm 'claude edit'"
    )
    agent.api.set_rules(
        [Rule(f"commit-{agent.mark}", tool="Bash", tool_input={"command": command})]
    )
    s.start_dashboard(first=True)
    # The header counts it (the table row can be out of view when the dashboard is drawn
    # short; enter acts on the one agent either way).
    wait_for(lambda: "1 running" in s.capture(s.dashboard), 60, "the dashboard to count it")
    s.keys("Enter")
    pane = agent.pane()
    agent.at_prompt(pane)
    agent.type_and_enter(pane, f"commit-{agent.mark}")
    env = {"BOTTLE_DASH_CONFIG": str(config)}

    def committed() -> dict[str, object] | None:
        done = bd("diff", agent.name, "--json", env={**s.env, **env})
        if done.returncode != 0:
            return None
        files = json.loads(done.stdout)["files"]
        return next((f for f in files if f["path"] == "claude.txt"), None)

    found = wait_for(committed, 180, "claude's commit in its copy")
    assert isinstance(found, dict) and found["part"] == "committed"
    assert f"+made by claude {agent.mark}" in str(found["patch"])
    # On the agent's branch, in its copy; the host repository has only its own branch.
    assert git(repo, "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]
    assert not (repo / "claude.txt").exists()
    assert bd("fetch", agent.name, "--yes", env={**s.env, **env}).returncode == 0
    assert git(repo, "log", "--format=%s", "-1", f"bottle/{agent.name}").strip() == "claude edit"
