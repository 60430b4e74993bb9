"""A budget reached, as the real Claude Code shows it: the real agent image in a sealed
bottle, in a dashboard pane, against the stand-in API through the egress sidecar (as
tests/integration/test_claude_real.py). The sidecar meters each answer; once the agent's
spend reaches its budget it answers the next Messages request itself (429,
``rate_limit_error``, ``x-should-retry: false``): claude shows the budget's message in
its pane, the stand-in receives nothing more, and ``bottle-dash budget`` raises the
budget without a restart.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import libtmux
import pytest

from backends import paths
from backends.egress import plan as egress
from bottle_dash import config as configmod
from bottle_dash.service import AgentService, make_row
from tests.fakes.anthropic_container import PORT, StandInContainer
from tests.fakes.cli_run import bd
from tests.integration.dashboard_tmux import dashboard_session, wait_for
from tests.integration.egress_world import API as API_HOST
from tests.integration.egress_world import grant_outer_range, make_upstream_certs
from tests.integration.test_claude_real import Agent
from tests.support import RUN_ID, agent_name

pytestmark = [pytest.mark.claude, pytest.mark.timeout(1800)]

MODEL = "claude-sonnet-4-5-20250929"
API_KEY = "sk-ant-api03-standin-" + "b" * 40 + "-last20charsXYZ01234"


@pytest.fixture
def agent(
    server: libtmux.Server, agent_image: str, standin_api_image: str, tmp_path: Path
) -> Iterator[Agent]:
    name = agent_name("budget")
    mark = uuid.uuid4().hex[:8]
    workspace = tmp_path / "work"
    workspace.mkdir()
    certs = make_upstream_certs(tmp_path / "certs")
    certs.parent.chmod(0o755)  # the stand-in runs as nobody
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY + "\n")
    key_file.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(
        f"[agents.{name}]\n"
        f'image = "{agent_image}"\n'
        f'workspace = "{workspace}"\n'
        f'claude_args = ["--model", "{MODEL}"]\n'
        f'credential = "file:{key_file}"\n'
        f'api_base = "https://{API_HOST}:{PORT}"\n'
        f'upstream_ca = "{certs}"\n'
        'budget = "2/day"\n'
    )
    spec = configmod.load_config(config).agents[name]
    AgentService().up(spec)
    api = StandInContainer(
        standin_api_image, f"{name}-api", egress.outer_network_name(name), RUN_ID,
        alias=API_HOST, tls=certs.parent,
    )  # fmt: skip
    grant_outer_range(name)
    try:
        with dashboard_session(server, config) as session:
            yield Agent(session, api, name, mark)
    finally:
        api.remove()
        with contextlib.suppress(Exception):
            AgentService().remove(make_row(name, "docker", None, None), volumes=True)


def test_a_spent_budget_is_shown_in_claudes_pane_and_raised_live(agent: Agent) -> None:
    s = agent.session
    s.start_dashboard(first=True)
    # The header counts it (the table row can be out of view when the dashboard is drawn
    # short; enter acts on the one agent either way).
    wait_for(lambda: "1 running" in s.capture(s.dashboard), 60, "the dashboard to count it")
    s.keys("Enter")
    pane = agent.pane()
    agent.at_prompt(pane)
    agent.say(pane, f"cheap-{agent.mark}")  # a few thousand tokens: under $2
    agent.api.set_usage({"input_tokens": 1_000_000})  # $3 of sonnet input per answer
    agent.say(pane, f"dear-{agent.mark}")  # still under the budget when it was asked
    lines = [json.loads(ln) for ln in paths.usage_log(agent.name).read_text().splitlines()]
    assert any(ln["input"] == 1_000_000 and ln["model"] == MODEL for ln in lines), lines
    asked = len(agent.api.requests())

    refused = f"refused-{agent.mark}"
    agent.type_and_enter(pane, refused)
    shown = wait_for(
        lambda: (lambda text: text if "has spent $" in text else "")(s.capture(pane)),
        180,
        "claude to show the budget's message",
    )
    print("claude showed, once the budget was spent:\n" + str(shown))
    # claude wraps its message at the pane's width: compare with the line breaks and the
    # box's indentation folded away.
    flat = " ".join(str(shown).split())
    assert "budget of $2/day" in flat, flat
    assert len(agent.api.requests()) == asked  # nothing reached the API
    assert not [m for m in agent.api.messages() if m.last_user_text == refused]

    done = bd("budget", agent.name, "100/day", env=s.env)
    assert done.returncode == 0 and "applied to its sidecar" in done.stdout, done.stderr
    agent.api.set_usage({})
    agent.at_prompt(pane)
    agent.say(pane, f"raised-{agent.mark}")
