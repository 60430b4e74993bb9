"""The real Claude Code, in the real agent image, in a real tmux pane the dashboard opened,
in a SEALED bottle, talking to the project's stand-in Anthropic API
(tests/fakes/anthropic_api.py) over HTTPS through the egress sidecar. The stand-in is
"the outside": a container on the sidecar's outer network, its certificate signed by a CA
made here and handed to the sidecar as ``upstream_ca`` (nothing leaves the machine). The
real credential is configured as ``credential = "file:..."``: the stand-in must receive
it, the bottle must hold only its placeholder.

One agent, one conversation, in order: claude opens at its prompt with no onboarding,
login, API-key or trust dialog; a typed prompt gets the stand-in's answer; the agent's
prompt reaches the API inside the system prompt and its ``claude_args`` arrive (the
model); closing the pane and pressing enter resumes the same conversation; ``R`` starts a
fresh one.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import libtmux
import pytest

from backends import run
from backends.egress import plan as egress
from backends.probes import suite
from backends.probes.base import NOT_APPLICABLE, PASS
from bottle_dash import config as configmod
from bottle_dash.service import AgentService, make_row
from tests.fakes.anthropic_api import Recorded, Rule
from tests.fakes.anthropic_container import PORT, StandInContainer
from tests.fakes.cli_run import bd
from tests.integration.claude_procs import PS_SCRIPT, claude_pids
from tests.integration.dashboard_tmux import Session, dashboard_session, wait_for
from tests.integration.egress_world import API as API_HOST
from tests.integration.egress_world import grant_outer_range, make_upstream_certs
from tests.support import RUN_ID, agent_name

# The first run on a machine builds the agent and stand-in images (minutes, once).
pytestmark = [pytest.mark.claude, pytest.mark.timeout(1800)]

#: What marks claude's input line when it waits for a prompt.
PROMPT_MARK = "\u276f"  # ❯
#: Text of the dialogs the seeded ~/.claude.json (and, with --dangerously-skip-permissions,
#: ~/.claude/settings.json) must skip.
DIALOGS = (
    "Bypass Permissions mode",
    "Do you trust the files",
    "Select login method",
    "Choose the text style",
    "Do you want to use this API key",
    "Welcome to Claude Code",
    "Security notes",
)
API_KEY = "sk-ant-api03-standin-" + "k" * 40 + "-last20charsXYZ01234"


class Agent:
    def __init__(self, session: Session, api: StandInContainer, name: str, mark: str):
        self.session, self.api, self.name, self.mark = session, api, name, mark

    def status(self) -> str:
        """The agent's status as ``bottle-dash ls --json`` tells it (its status file and
        its pane on the dashboard's tmux server)."""
        server = self.session.server
        socket = server.cmd("display-message", "-p", "#{socket_path}").stdout[0]
        env = {**self.session.env, "TMUX": f"{socket},0,0"}
        done = bd("ls", "--json", env=env)
        rows = [r for r in json.loads(done.stdout) if r["name"] == self.name]
        assert rows, done.stdout + done.stderr
        return str(rows[0]["status"])

    def statuses_until(self, final: str, timeout: float, what: str) -> list[str]:
        """Poll ``status`` until it reads ``final``; the distinct statuses seen, in order."""
        seen: list[str] = []

        def reached() -> bool:
            now = self.status()
            if not seen or seen[-1] != now:
                seen.append(now)
            return now == final

        wait_for(reached, timeout, what)
        return seen

    def type_and_enter(self, pane: str, text: str) -> None:
        server = self.session.server
        server.cmd("send-keys", "-t", pane, "-l", text)
        wait_for(lambda: text in self.session.capture(pane), 30, f"{text!r} typed")
        server.cmd("send-keys", "-t", pane, "Enter")

    def pane(self) -> str:
        found = wait_for(
            lambda: self.session.agent_panes().get(self.name), 120, "a tagged agent pane"
        )
        assert isinstance(found, tuple)
        return str(found[0])

    def at_prompt(self, pane: str) -> str:
        def ready() -> str:
            shown = self.session.capture(pane)
            lines = [line.strip() for line in shown.splitlines()]
            return shown if any(line.startswith(PROMPT_MARK) for line in lines) else ""

        shown = wait_for(ready, 120, "claude's prompt")
        assert isinstance(shown, str)
        return shown

    def say(self, pane: str, text: str) -> Recorded:
        """Type ``text`` at claude's prompt, press enter, wait for the stand-in's answer."""
        self.type_and_enter(pane, text)
        wait_for(
            lambda: f"stand-in answer: {text}" in self.session.capture(pane),
            120,
            f"the stand-in's answer to {text!r}",
        )
        asked = [m for m in self.api.messages() if m.last_user_text == text]
        assert asked, f"the stand-in recorded no request for {text!r}"
        return asked[-1]


@pytest.fixture
def agent(
    request: pytest.FixtureRequest,
    server: libtmux.Server,
    agent_image: str,
    standin_api_image: str,
    tmp_path: Path,
) -> Iterator[Agent]:
    """A sealed agent; ``skip_permissions`` is the fixture's parameter (default: unset,
    so on, the bottle being sealed)."""
    skip: bool | None = getattr(request, "param", None)
    # Without --dangerously-skip-permissions, Claude Code 2.1.332 opened in the bottle
    # showing "auto mode on" and finished the turn of an `echo` Bash call without asking:
    # the test asks for the mode that asks the operator.
    ask = ', "--permission-mode", "default"' if skip is False else ""
    name = agent_name("claude")
    mark = uuid.uuid4().hex[:8]
    workspace = tmp_path / "work"
    workspace.mkdir()
    api_name = f"{name}-api"
    certs = make_upstream_certs(tmp_path / "certs")
    certs.parent.chmod(0o755)  # the stand-in runs as nobody
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY + "\n")
    key_file.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(
        f"[agents.{name}]\n"
        'backend = "docker"\n'
        f'image = "{agent_image}"\n'
        f'workspace = "{workspace}"\n'
        f'prompt = "You are agent PROMPT-{mark}."\n'
        f'claude_args = ["--model", "claude-standin-{mark}"{ask}]\n'
        "sealed = true\n"
        f'credential = "file:{key_file}"\n'
        f'api_base = "https://{API_HOST}:{PORT}"\n'
        f'upstream_ca = "{certs}"\n'
        + ("" if skip is None else f"skip_permissions = {str(skip).lower()}\n")
    )
    spec = configmod.load_config(config).agents[name]
    # The bottle first (its sidecar's outer network exists then), the stand-in on that
    # network after; claude starts only when the dashboard opens its pane.
    AgentService().up(spec)
    api = StandInContainer(
        standin_api_image,
        api_name,
        egress.outer_network_name(name),
        RUN_ID,
        alias=API_HOST,
        tls=certs.parent,
    )
    grant_outer_range(name)  # the stand-in's private range, as `bottle-dash allow` would
    try:
        with dashboard_session(server, config) as session:
            yield Agent(session, api, name, mark)
    finally:
        api.remove()
        with contextlib.suppress(Exception):  # the run's sweep removes it otherwise
            AgentService().remove(make_row(name, "docker", None, None), volumes=True)


def assert_bottle_holds_only_the_placeholder(name: str) -> None:
    """The real credential is nowhere in the bottle: not in its environment (the
    container's, or that of any process), nor in a file claude or provisioning wrote."""
    bottle = f"bottle-{name}"
    inspected = run.run(["docker", "inspect", bottle], check=True).stdout
    assert API_KEY not in inspected
    held = [v for v in json.loads(inspected)[0]["Config"]["Env"] if v.startswith("ANTHROPIC_API")]
    assert held and all(API_KEY not in v for v in held), held
    script = (
        'cat /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n" | grep -c -F -- "$0"; '
        'grep -rlF -- "$0" /home/node /workspace /tmp /etc 2>/dev/null; echo done'
    )
    done = run.run(["docker", "exec", "-u", "0", bottle, "sh", "-c", script, API_KEY], timeout=60)
    assert done.stdout.split() == ["0", "done"], done.stdout + done.stderr


def test_real_claude_in_a_dashboard_pane_talks_resumes_and_starts_fresh(agent: Agent) -> None:
    s = agent.session
    s.start_dashboard(first=True)
    wait_for(lambda: "running" in s.row(agent.name), 60, "the dashboard to list the agent")

    # enter: a pane opens on claude's prompt, with no first-run dialog on the way.
    s.keys("Enter")
    pane = agent.pane()
    shown = agent.at_prompt(pane)
    for dialog in DIALOGS:
        assert dialog not in shown, f"claude showed {dialog!r}:\n{shown}"

    first = agent.say(pane, f"hello-{agent.mark}")
    assert f"PROMPT-{agent.mark}" in first.system  # the agent's prompt file
    assert first.body["model"] == f"claude-standin-{agent.mark}"  # claude_args
    # The sidecar swapped the bottle's placeholder for the real credential on the way out.
    assert first.headers["x-api-key"] == API_KEY
    assert_bottle_holds_only_the_placeholder(agent.name)
    assert first.body["stream"] is True

    # Close the pane: claude runs on, detached, alone; enter re-attaches that same claude.
    (pid,) = claudes_in(agent.name)
    s.server.cmd("kill-pane", "-t", pane)
    wait_for(lambda: agent.name not in s.agent_panes(), 30, "the pane to close")
    assert claudes_in(agent.name) == [pid]
    s.keys("Enter")
    pane = agent.pane()
    agent.at_prompt(pane)
    assert claudes_in(agent.name) == [pid]
    resumed = agent.say(pane, f"again-{agent.mark}")
    history = str(resumed.body["messages"])
    assert f"hello-{agent.mark}" in history, "enter did not resume the conversation"

    # R: claude starts fresh in its pane; the earlier turns are gone from the request.
    s.server.cmd("select-pane", "-t", s.dashboard)
    s.keys("R")
    wait_for(lambda: f"again-{agent.mark}" not in s.capture(agent.pane()), 60, "a fresh claude")
    pane = agent.pane()
    agent.at_prompt(pane)
    fresh = agent.say(pane, f"fresh-{agent.mark}")
    history = str(fresh.body["messages"])
    assert f"hello-{agent.mark}" not in history and f"again-{agent.mark}" not in history
    (new,) = claudes_in(agent.name)  # R ended the old claude first
    assert new != pid


def claudes_in(agent: str) -> list[int]:
    """The claude processes in the agent's bottle, from its own ``ps``."""
    done = run.run(["docker", "exec", "-u", "0", f"bottle-{agent}", "sh", "-c", PS_SCRIPT])
    return claude_pids(done.stdout)


#: Probes that do not apply to this sealed bottle of the real image, and why (the reason
#: is in the probe's evidence): anything else must pass.
REAL_IMAGE_NOT_APPLICABLE = {
    "disk-budget": "cannot",  # overlay2 on extfs here: the engine cannot size a volume
    "placeholder-refused": "besides the API",  # the allowlist is the API only
    "git-read-only": "not a git repository",  # the workspace is a plain folder
}


def test_the_real_image_is_sealed_every_probe_passes(agent: Agent, tmp_path: Path) -> None:
    """The escape probes the dashboard runs after attaching, on a sealed bottle of the
    real agent image (Debian, node, no nc): the badge says sealed (✓, never "n failing"),
    and the recorded run has every probe pass, or not apply for the reason above."""
    expected_na = dict(REAL_IMAGE_NOT_APPLICABLE)
    if (tmp_path / "work").stat().st_uid == 0:
        # The agent runs as its workspace's owner: root here (tests run as root in CI),
        # with every capability dropped; the probe says so instead of passing.
        expected_na["non-root"] = "is owned by root"
    s = agent.session
    s.start_dashboard(first=True)
    wait_for(lambda: "running" in s.row(agent.name), 60, "the dashboard to list the agent")
    s.keys("Enter")
    agent.at_prompt(agent.pane())

    def checked() -> str:
        line = s.row(agent.name)
        return line if ("✓" in line or "✗" in line) else ""

    line = str(wait_for(checked, 300, "the seal badge after the probes"))
    last = suite.last_run(agent.name)
    assert last is not None, line
    shown = "\n".join(f"{r.outcome:4s} {r.probe:22s} {r.evidence}" for r in last.results)
    print(shown)
    assert "running ✓" in line and "✗" not in line, f"{line}\n{shown}"
    assert {r.probe for r in last.results} == {p.name for p in suite.ALL}
    got = {r.probe: r for r in last.results}
    assert not last.failures, shown
    not_applicable = {k for k, r in got.items() if r.outcome == NOT_APPLICABLE}
    assert not_applicable == set(expected_na), shown
    for probe, reason in expected_na.items():
        assert reason in got[probe].evidence, got[probe]
    assert all(r.outcome == PASS for k, r in got.items() if k not in not_applicable), shown
    assert bd("ls", "--json", env=s.env).stdout.count('"seal": "sealed"') == 1


def test_status_goes_working_then_idle_over_a_turn(agent: Agent) -> None:
    """Status as the service reads it (the real claude's hooks and pane): a turn whose
    Bash tool runs a while (no approval: the sealed bottle skips permissions) shows
    ``working``, then ``idle`` when the turn ends."""
    s = agent.session
    agent.api.set_rules(
        [Rule(f"slow-{agent.mark}", tool="Bash", tool_input={"command": "sleep 8"})]
    )
    s.start_dashboard(first=True)
    wait_for(lambda: "running" in s.row(agent.name), 60, "the dashboard to list the agent")
    s.keys("Enter")
    pane = agent.pane()
    agent.at_prompt(pane)
    wait_for(lambda: agent.status() == "idle", 60, "idle at the prompt")
    agent.type_and_enter(pane, f"slow-{agent.mark}")
    wait_for(lambda: agent.status() == "working", 60, "working during the turn")
    seen = agent.statuses_until("idle", 120, "idle after the turn")
    assert seen[0] == "working" and seen[-1] == "idle", seen
    assert "waiting" not in seen, seen
    assert any(m.body and "tool_result" in str(m.body["messages"]) for m in agent.api.messages())


@pytest.mark.parametrize("agent", [False], indirect=True, ids=["skip_permissions=false"])
def test_status_is_waiting_while_a_tool_call_needs_approval(agent: Agent) -> None:
    """With ``skip_permissions = false`` a Bash call asks the operator: the service reads
    ``waiting``; approving it lets the turn finish, ``idle``."""
    s = agent.session
    agent.api.set_rules(
        [
            Rule(
                f"ask-{agent.mark}",
                tool="Bash",
                tool_input={
                    "command": f"touch approved-{agent.mark} && echo approved-{agent.mark}"
                },
            )
        ]
    )
    s.start_dashboard(first=True)
    wait_for(lambda: "running" in s.row(agent.name), 60, "the dashboard to list the agent")
    s.keys("Enter")
    pane = agent.pane()
    shown = agent.at_prompt(pane)
    assert "Bypass Permissions" not in shown
    agent.type_and_enter(pane, f"ask-{agent.mark}")
    wait_for(lambda: agent.status() == "waiting", 120, "waiting for approval")
    # The PermissionRequest hook fires before claude draws its dialog: wait for the text.
    wait_for(lambda: "Do you want to proceed?" in s.capture(pane), 30, "the approval dialog")

    def approved() -> bool:
        # Enter is the default answer, Yes. The dialog can be drawn before it takes keys,
        # so Enter is pressed again while the dialog is still up.
        shown = s.capture(pane)
        if f"tool result: approved-{agent.mark}" in shown:
            return True
        if "Do you want to proceed?" in shown:
            s.server.cmd("send-keys", "-t", pane, "Enter")
            time.sleep(2)
        return False

    wait_for(approved, 120, "the approved command's result")
    wait_for(lambda: agent.status() == "idle", 120, "idle after the approved turn")
