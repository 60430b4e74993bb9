"""One claude per agent, for real: a docker bottle of the offline test image, the dashboard's
service attaching in a real tmux server, the stand-in claude under the session holder
(dtach) in the bottle. A closed pane, a second terminal's ``attach`` and a dead tmux server
never leave two claudes, and every ``enter`` finds the same one; ``R`` ends it first.
Two ``up``s of one agent at once launch it once; an ``rm`` during an ``up`` leaves nothing."""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import libtmux
import pytest

from backends.base import NOT_CREATED, RUNNING, AgentSpec, BottleNotFound
from backends.docker.backend import DockerBackend
from backends.egress.spec import EgressSpec
from backends.status_file import read_status
from bottle_dash.service import AgentService
from bottle_dash.status import agent_statuses
from bottle_dash.tmux import TmuxPaneHost
from tests.integration.claude_procs import PS_SCRIPT, claude_pids
from tests.support import agent_name, wait_for

pytestmark = pytest.mark.docker

SESSION = re.compile(r"STANDIN-CLAUDE session=(\S+) pid=(\d+)")


def new_host() -> TmuxPaneHost:
    """A dashboard's tmux server of its own (the dashboard pane runs ``sleep``)."""
    server = libtmux.Server(socket_name=f"bd-one-{uuid.uuid4().hex[:8]}")
    session = server.new_session("dash", window_command="sleep 600", x=160, y=40)
    dashboard = session.active_window.active_pane
    assert dashboard is not None and dashboard.pane_id
    return TmuxPaneHost(server, dashboard.pane_id)


@pytest.fixture
def hosts(tmux_bin: str) -> Iterator[list[TmuxPaneHost]]:
    made: list[TmuxPaneHost] = []
    yield made
    for host in made:
        if host.server.is_alive():
            host.server.kill()


@pytest.fixture
def spec(test_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AgentSpec]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    spec = AgentSpec(name=agent_name("one"), image=test_image, egress=EgressSpec(sealed=False))
    yield spec
    with contextlib.suppress(BottleNotFound):  # the test may have removed it already
        DockerBackend().remove(spec.name, volumes=True)


def text(host: TmuxPaneHost, pane: str) -> str:
    return "\n".join(host.capture(pane, lines=200))


def claudes(service: AgentService, spec: AgentSpec) -> list[int]:
    """The claude processes in the bottle, from its own ``ps``."""
    bottle = service.backend("docker").bottle(spec.name)
    return claude_pids(bottle.exec(PS_SCRIPT, user="root").stdout)


def typed(host: TmuxPaneHost, pane: str, line: str) -> None:
    """Type ``line`` into a pane and wait until claude read it."""
    host.server.cmd("send-keys", "-t", pane, line, "Enter")
    wait_for(lambda: f"STANDIN-CLAUDE got {line}" in text(host, pane), 30, line)


def test_a_closed_pane_detaches_and_every_enter_finds_the_same_claude(
    spec: AgentSpec, hosts: list[TmuxPaneHost]
) -> None:
    hosts.append(new_host())
    host = hosts[0]
    service = AgentService(pane_host=host)
    first = service.attach(service.row_of(spec))
    assert first.how == "split" and first.pane_id
    found = wait_for(lambda: SESSION.search(text(host, first.pane_id)), 60, "claude started")
    assert isinstance(found, re.Match)
    session, pid = found.group(1), int(found.group(2))
    # Mid-turn: the operator asked for work, then the pane goes.
    host.server.cmd("send-keys", "-t", first.pane_id, "work long task", "Enter")
    typed(host, first.pane_id, "mid turn")
    assert claudes(service, spec) == [pid]
    host.server.cmd("kill-pane", "-t", first.pane_id)
    assert claudes(service, spec) == [pid]
    row = service.row_of(spec)
    status = agent_statuses([row], host.panes(), read_status, time.time())[spec.name]
    assert status.detached and status.status == "working", status

    # enter: a new pane on the same claude (it redraws; nothing starts afresh).
    second = service.attach(service.row_of(spec))
    assert second.how == "split"
    wait_for(lambda: "STANDIN-CLAUDE redraw" in text(host, second.pane_id), 30, "redraw")
    typed(host, second.pane_id, "hello again")
    assert "fresh conversation" not in text(host, second.pane_id)
    assert claudes(service, spec) == [pid]
    status = agent_statuses([row], host.panes(), read_status, time.time())[spec.name]
    assert not status.detached

    # `bottle-dash attach NAME` from another terminal while the pane is live: a second
    # client of the same claude, never a second claude.
    hosts.append(new_host())
    other = hosts[1]
    argv = AgentService().attach_argv(service.row_of(spec))
    elsewhere = other.split(spec.name, argv)
    wait_for(lambda: "STANDIN-CLAUDE redraw" in text(other, elsewhere), 30, "redraw")
    typed(other, elsewhere, "from another terminal")
    assert claudes(service, spec) == [pid]
    other.server.kill()

    # The whole tmux server dies; a new dashboard's enter re-attaches the same claude.
    host.server.kill()
    assert claudes(service, spec) == [pid]
    hosts.append(new_host())
    host = hosts[2]
    service = AgentService(pane_host=host)
    third = service.attach(service.row_of(spec))
    wait_for(lambda: "STANDIN-CLAUDE redraw" in text(host, third.pane_id), 30, "redraw")
    typed(host, third.pane_id, "still there")
    assert claudes(service, spec) == [pid]

    # R: the running claude ends first; the new one has a new pinned session.
    fresh = service.attach(service.row_of(spec), fresh=True)
    assert fresh.how == "respawned" and fresh.pane_id == third.pane_id
    new = wait_for(lambda: SESSION.search(text(host, fresh.pane_id)), 60, "fresh claude")
    assert isinstance(new, re.Match)
    assert new.group(1) != session
    assert claudes(service, spec) == [int(new.group(2))]
    assert int(new.group(2)) != pid


def test_two_ups_at_once_launch_once_and_rm_during_up_leaves_nothing(spec: AgentSpec) -> None:
    results: list[object] = []
    said: list[str] = []

    def up() -> None:
        try:
            results.append(AgentService().up(spec, said.append)[1])
        except Exception as exc:  # reported below, with the other thread's result
            results.append(exc)

    threads = [threading.Thread(target=up) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert sorted(map(str, results)) == ["already running", "launched"], results
    assert any("already being launched" in line for line in said), said
    assert AgentService().row_of(spec).state == RUNNING

    # rm while an up of it is under way: the rm waits for the up, then removes it all.
    service = AgentService()
    service.remove(service.row_of(spec), volumes=True)
    launching_now = threading.Event()

    def up_again() -> None:
        # Its first word is said under the agent's lock: the launch is under way.
        service.up(spec, lambda _line: launching_now.set())

    launching = threading.Thread(target=up_again)
    launching.start()
    assert launching_now.wait(120)
    service.remove(service.row_of(spec), volumes=True)
    launching.join(300)
    assert service.row_of(spec).state == NOT_CREATED
    left = subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", f"label=bottle-dash.agent={spec.name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    volumes = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", f"label=bottle-dash.agent={spec.name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert left == [] and volumes == [], (left, volumes)
