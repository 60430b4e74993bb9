"""Status end to end without the real claude: a real docker bottle, a real tmux pane, the
stand-in claude (tests/fakes/claude) replaying Claude Code's titles and running the hooks
of the ``--settings`` the plan generated, through the real status mount; the poll's
``list-panes`` and the host-side reader feed the real combiner."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libtmux
import pytest

from backends.base import AgentSpec
from backends.docker.backend import DockerBackend
from backends.status_file import RELAYED_FILE, read_status_file
from bottle_dash.status import EXITED, IDLE, WAITING, WORKING, Signals, Status, combine
from bottle_dash.tmux import TmuxPaneHost
from tests.support import agent_name, wait_for

pytestmark = pytest.mark.docker

#: A short title lag keeps the Esc case quick; the rule is the same as the default's.
LAG = 1.5


@pytest.fixture(scope="module")
def bottle(test_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("status")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", str(base / "state"))
        backend = DockerBackend()
        name = agent_name("status")
        plan = backend.prepare(AgentSpec(name=name, image=test_image))
        handle = backend.launch(plan)
        try:
            yield {"plan": plan, "bottle": handle}
        finally:
            backend.remove(name, volumes=True)


@pytest.fixture
def host(server: libtmux.Server) -> Iterator[TmuxPaneHost]:
    session = server.new_session("dash", window_command="sleep 600", x=160, y=40)
    dashboard = session.active_window.active_pane
    assert dashboard is not None and dashboard.pane_id
    try:
        yield TmuxPaneHost(server, dashboard.pane_id)
    finally:
        if server.is_alive():
            server.kill()


class Pane:
    """One agent pane running the stand-in claude, observed the way the poll does."""

    def __init__(self, host: TmuxPaneHost, bottle: dict[str, Any], env: dict[str, str]) -> None:
        plan = bottle["plan"]
        self.host, self.agent = host, plan.agent
        # A sealed bottle's hooks reach the host through its sidecar (``egress/status``).
        assert plan.status_dir is None
        self.status_file = Path(plan.extra["egress"]["dir"]) / RELAYED_FILE
        self.status_file.unlink(missing_ok=True)
        extra = [f"{k}={v}" for k, v in env.items()]
        argv = bottle["bottle"].exec_argv(["env", *extra, "claude", *plan.claude_args], tty=True)
        self.pane_id = host.split(self.agent, argv)
        wait_for(lambda: self.shown("STANDIN-CLAUDE size="), 30, "claude started", shown=self.text)

    def text(self) -> str:
        return "\n".join(self.host.capture(self.pane_id, lines=200))

    def shown(self, text: str) -> bool:
        return text in self.text()

    def send(self, line: str, *, then: str) -> None:
        """Type ``line`` and wait until the pane shows ``then`` (claude ran the hooks)."""
        before = self.text().count(then)
        self.host.server.cmd("send-keys", "-t", self.pane_id, "-l", line)
        self.host.server.cmd("send-keys", "-t", self.pane_id, "Enter")
        wait_for(lambda: self.text().count(then) > before, 15, then, shown=self.text)

    def title(self) -> str:
        return self.host.panes()[self.agent].title

    def status(self) -> Status:
        pane = self.host.panes()[self.agent]
        signals = Signals(
            running=True,
            pane=True,
            pane_dead=pane.dead,
            title=pane.title,
            hook=read_status_file(self.status_file),
        )
        return combine(signals, time.time(), lag=LAG)

    def becomes(self, status: str, reason: str = "") -> Status:
        def check() -> Status | None:
            now = self.status()
            return now if now.status == status and reason in now.reason else None

        got = wait_for(check, 15, f"{status} ({reason})", shown=lambda: repr(self.status()))
        assert isinstance(got, Status)
        return got


def test_a_session_through_every_status(host: TmuxPaneHost, bottle: dict[str, Any]) -> None:
    pane = Pane(host, bottle, {"STANDIN_NOTIFY_DELAY": "1"})
    pane.becomes(IDLE, "turn finished")  # SessionStart wrote idle, the title shows ✳
    assert pane.title() == "\u2733 Claude Code"

    pane.send("work fix the tests", then="hook UserPromptSubmit")
    pane.becomes(WORKING, "turn in progress")
    wait_for(lambda: pane.title() == "\u2810 Claude Code", 5, "the spinner's second frame")

    pane.send("ask", then="hook PermissionRequest")
    pane.becomes(WAITING, "permission prompt")
    asked = read_status_file(pane.status_file)
    wait_for(lambda: pane.shown("hook Notification permission_prompt"), 10, "the notification")
    notified = read_status_file(pane.status_file)  # the Notification hook rewrote the file
    assert asked and notified and notified.word == "permission" and notified.mtime > asked.mtime
    assert pane.status().status == WAITING
    pane.send("approve", then="hook PostToolUse")
    pane.becomes(WORKING)
    pane.send("done", then="hook Stop")
    pane.becomes(IDLE, "turn finished")
    pane.send("idle", then="hook Notification idle_prompt")
    reading = read_status_file(pane.status_file)
    assert reading is not None and reading.word == "idle"

    # Esc: no hook fires, the file still says working, the title wins after its lag.
    pane.send("work again", then="hook UserPromptSubmit")
    pane.becomes(WORKING)
    pane.send("esc", then="STANDIN-CLAUDE interrupted")
    reading = read_status_file(pane.status_file)
    assert reading is not None and reading.word == "working"
    pane.becomes(IDLE, "interrupted")

    pane.send("question", then="hook PreToolUse AskUserQuestion")
    pane.becomes(WAITING, "question")
    pane.send("answer", then="hook PostToolUse AskUserQuestion")
    pane.becomes(WORKING)
    pane.send("fail", then="hook StopFailure")
    pane.becomes(IDLE, "API error")

    assert "printed" not in pane.text()  # the hooks printed nothing into claude's context
    pane.send("exit", then="STANDIN-CLAUDE bye")
    pane.becomes(EXITED, "session ended")  # the SessionEnd word, the pane dead or not
    reading = read_status_file(pane.status_file)
    assert reading is not None and reading.word == "exited"


def test_titles_off_leaves_the_hooks(host: TmuxPaneHost, bottle: dict[str, Any]) -> None:
    pane = Pane(host, bottle, {"CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1"})
    pane.send("work", then="hook UserPromptSubmit")
    pane.becomes(WORKING, "turn in progress")
    assert pane.title() == pane.agent  # the name the pane was given, not claude's
    pane.send("ask", then="hook PermissionRequest")
    pane.becomes(WAITING, "permission prompt")
    pane.send("exit", then="STANDIN-CLAUDE bye")


def test_newer_spinner_glyphs_and_a_bottle_without_hooks(
    host: TmuxPaneHost, bottle: dict[str, Any]
) -> None:
    pane = Pane(host, bottle, {"STANDIN_SPINNER": "circle"})
    pane.status_file.unlink()  # like a bottle created before status: the title alone
    pane.status_file.mkdir()  # and the file can never be written again
    try:
        pane.send("work", then="hook UserPromptSubmit")
        wait_for(lambda: pane.title()[:1] in "\u25d0\u25d1\u25d2\u25d3", 5, "a circle glyph")
        pane.becomes(WORKING, "title")
        pane.send("done", then="hook Stop")
        pane.becomes(IDLE, "title")
        pane.send("exit", then="STANDIN-CLAUDE bye")
    finally:
        shutil.rmtree(pane.status_file)
