"""Shim tier, in real tmux panes: claude started through ``claude_argv`` sees the pane's
size (and every resize) because of pty_resize.py; without the wrapper it stays at 0x0.

The machine is a container run by the stand-in smolvm (tests/fakes/smolvm), whose
``exec -t`` PTY starts at 0x0 and never hears a resize, like smolvm's.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterator

import pytest

from backends.base import AgentSpec
from backends.egress.spec import EgressSpec
from backends.holder import held_argv
from backends.registry import get_backend
from backends.smolmachines.bottle import PTY_RESIZE, SmolBottle
from backends.smolmachines.pty_resize import ONESHOT_ENV
from tests.fakes.smolvm_support import Tmux
from tests.integration.claude_procs import PS_SCRIPT, claude_pids
from tests.support import agent_name, wait_for

pytestmark = pytest.mark.shim

#: These tests drive the machine itself; the sealed path is test_smol_egress.py's.
UNSEALED = EgressSpec(sealed=False)

#: How long a size may take to reach the guest before the test gives up. A bound on
#: arrival, not a speed check (tests never assert on wall time; benchmarks/bench_resize.py
#: measures how fast a resize propagates): a wrapper that never syncs still fails, and a
#: loaded machine no longer does. Measured from the moment the pane shows claude started.
WITHIN = 20.0


@pytest.fixture
def bottle(standin: str) -> Iterator[SmolBottle]:
    backend = get_backend("smolmachines")
    spec = AgentSpec(
        name=agent_name("pane"),
        backend="smolmachines",
        egress=UNSEALED,
        image=standin,
        env={"STANDIN_ENV": "x y"},
    )
    launched = backend.launch(backend.prepare(spec))
    assert isinstance(launched, SmolBottle)
    yield launched
    backend.remove(spec.name, volumes=True)


def size_line(rows: int, cols: int) -> str:
    return rf"STANDIN-CLAUDE (resized )?size={rows}x{cols}\b"


def started_at(tmux: Tmux, pane: str) -> float:
    tmux.wait_for(pane, r"STANDIN-CLAUDE start uid=")
    return time.monotonic()


def wait_within(tmux: Tmux, pane: str, pattern: str, since: float) -> None:
    remaining = since + WITHIN - time.monotonic()
    regex = re.compile(pattern)
    wait_for(
        lambda: regex.search(tmux.capture(pane)),
        max(remaining, 0.0),
        f"{pattern!r} within {WITHIN}s",
        interval=0.01,
        shown=lambda: tmux.capture(pane),
    )


@pytest.mark.parametrize("channel", ["persistent", "one-shot"])
def test_claude_sees_pane_size_and_resizes(
    bottle: SmolBottle,
    tmux: Tmux,
    channel: str,
) -> None:
    argv = bottle.claude_argv([])
    assert argv[1] == PTY_RESIZE
    if channel == "one-shot":  # one `machine exec` per size, as ARCHITECTURE.md first had it
        argv = ["env", f"{ONESHOT_ENV}=1", *argv]
    tmux("new-session", "-d", "-s", "main", "-x", "200", "-y", "50", "-c", "/", "sleep 600")
    pane = tmux(
        "split-window", "-d", "-h", "-P", "-F", "#{pane_id}", "-t", "main", "-c", "/",
        shlex.join(argv),
    ).strip()  # fmt: skip
    t0 = started_at(tmux, pane)
    assert tmux.value(pane, "#{pane_current_path}") == "/"
    rows, cols = tmux.size(pane)
    wait_within(tmux, pane, size_line(rows, cols), t0)
    assert "STANDIN-CLAUDE start uid=1000 user=node home=/home/node" in tmux.capture(pane)
    assert "STANDIN-CLAUDE env STANDIN_ENV=x y" in tmux.capture(pane)

    for width in (60, 80):
        tmux("resize-pane", "-t", pane, "-x", str(width))
        new_rows, new_cols = tmux.size(pane)
        assert new_cols == width
        t_resize = time.monotonic()
        wait_within(tmux, pane, rf"STANDIN-CLAUDE resized size={new_rows}x{new_cols}\b", t_resize)

    tmux("send-keys", "-t", pane, "exit", "Enter")
    tmux.wait_for(pane, r"STANDIN-CLAUDE bye")


def test_without_wrapper_the_guest_stays_at_0x0(bottle: SmolBottle, tmux: Tmux) -> None:
    argv = bottle.claude_argv([])
    bare = argv[argv.index("--") + 1 :]  # the same smolvm argv, minus the wrapper
    assert bare[1:3] == ["machine", "exec"] and "-t" in bare
    pane = tmux.new_pane(bare)
    tmux.wait_for(pane, r"STANDIN-CLAUDE size=0x0")
    tmux("resize-window", "-t", pane, "-x", "120", "-y", "40")
    assert tmux.size(pane) == (40, 120)
    # The stand-in claude re-reads its size after each line it reads (and reports any
    # change): once "got two" shows, the size check after "one" has run, and a resize
    # would have been reported, without sleeping on a guess.
    for word in ("one", "two"):
        tmux("send-keys", "-t", pane, word, "Enter")
        tmux.wait_for(pane, rf"STANDIN-CLAUDE got {word}")
    text = tmux.capture(pane)
    assert "resized" not in text, text
    tmux("send-keys", "-t", pane, "exit", "Enter")
    tmux.wait_for(pane, r"STANDIN-CLAUDE bye")


def test_held_claude_keeps_uid_switch(bottle: SmolBottle, tmux: Tmux) -> None:
    argv = held_argv(bottle.claude_argv([]), 0)
    assert argv[1] == PTY_RESIZE
    # First run: no transcript in the VM's home, so claude starts with a pinned id, once.
    pane = tmux.new_pane(argv)
    tmux.wait_for(pane, r"STANDIN-CLAUDE fresh conversation")
    text = tmux.capture(pane)
    assert "no conversation to continue" not in text
    starts = re.findall(r"STANDIN-CLAUDE start uid=(\d+)", text)
    assert starts == ["1000"], text
    rows, cols = tmux.size(pane)
    tmux.wait_for(pane, size_line(rows, cols), seconds=5)
    tmux("send-keys", "-t", pane, "exit", "Enter")
    tmux.wait_for(pane, r"STANDIN-CLAUDE bye")
    # Second run: the conversation in the VM's home is continued, still as uid 1000.
    pane2 = tmux.new_pane(argv)
    tmux.wait_for(pane2, r"STANDIN-CLAUDE continued conversation turn=2")
    assert re.findall(r"STANDIN-CLAUDE start uid=(\d+)", tmux.capture(pane2)) == ["1000"]
    tmux("send-keys", "-t", pane2, "exit", "Enter")
    tmux.wait_for(pane2, r"STANDIN-CLAUDE bye")


def one_claude(bottle: SmolBottle) -> int:
    """The pid of the one claude in the machine (fails when there are none or two)."""
    done = bottle.exec(PS_SCRIPT, user="root")
    pids = claude_pids(done.stdout)
    assert len(pids) == 1, done.stdout
    return pids[0]


@pytest.mark.xfail(
    strict=False,
    reason="open defect (#23 note): through the stand-in smolvm, the held claude sometimes "
    "ends with the pane (seen under load: gone before or right after kill-pane); the "
    "docker backend's same test holds (test_one_claude_docker)",
)
def test_closed_pane_and_dead_server_detach_and_enter_finds_the_same_claude(
    bottle: SmolBottle,
    tmux: Tmux,
) -> None:
    argv = held_argv(bottle.claude_argv([]), 0)
    pane = tmux.new_pane(argv)
    found = tmux.wait_for(pane, r"STANDIN-CLAUDE session=(\S+) pid=(\d+)")
    session = found.group(1)
    # Mid-turn: the operator asked for work, then the pane is closed under it.
    tmux("send-keys", "-t", pane, "work long task", "Enter")
    tmux("send-keys", "-t", pane, "mid turn", "Enter")
    tmux.wait_for(pane, r"STANDIN-CLAUDE got mid turn")
    pid = one_claude(bottle)
    tmux("kill-pane", "-t", pane)
    # Detached, not killed: the same claude runs on, alone.
    assert one_claude(bottle) == pid
    again = tmux.new_pane(argv)
    # Attached once claude redraws (SIGWINCH from the holder); keys typed before that
    # land in the terminal before the holder's client has set it raw, and are dropped.
    tmux.wait_for(again, r"STANDIN-CLAUDE redraw size=")
    tmux("send-keys", "-t", again, "hello again", "Enter")
    tmux.wait_for(again, r"STANDIN-CLAUDE got hello again")
    assert one_claude(bottle) == pid
    assert "fresh conversation" not in tmux.capture(again)
    # The whole tmux server dies: still detached; a new server's pane re-attaches.
    tmux("kill-server")
    assert one_claude(bottle) == pid
    third = tmux.new_pane(argv)
    tmux.wait_for(third, r"STANDIN-CLAUDE redraw size=")
    tmux("send-keys", "-t", third, "still there", "Enter")
    tmux.wait_for(third, r"STANDIN-CLAUDE got still there")
    assert one_claude(bottle) == pid
    # Fresh (R) ends that claude first and pins a new session.
    fresh = tmux.new_pane(held_argv(bottle.claude_argv([]), 0, fresh=True))
    new = tmux.wait_for(fresh, r"STANDIN-CLAUDE session=(\S+) pid=(\d+)")
    assert new.group(1) != session
    assert one_claude(bottle) == int(new.group(2)) != pid
    tmux("send-keys", "-t", fresh, "exit", "Enter")
    tmux.wait_for(fresh, r"STANDIN-CLAUDE bye")
    wait_for(lambda: not claude_pids(bottle.exec(PS_SCRIPT, user="root").stdout), 20, "no claude")


def test_exit_status_reaches_the_pane(bottle: SmolBottle, tmux: Tmux) -> None:
    argv = bottle.exec_argv(["sh", "-c", "exit 5"], tty=True)
    # The pane's shell reports the status (tmux 3.3 sometimes leaves a process that
    # exits this fast unreaped, so #{pane_dead_status} cannot be relied upon).
    pane = tmux.new_pane(["sh", "-c", f'{shlex.join(argv)}; echo "pane-exit=$?"'])
    tmux.wait_for(pane, r"pane-exit=5\b")
