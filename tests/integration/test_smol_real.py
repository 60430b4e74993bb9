"""smolvm tier: the same launch/exec/attach checks against the real smolvm CLI booting real
microVMs. Runs only where hardware virtualization exists (vmx/svm in /proc/cpuinfo and a
usable /dev/kvm on Linux, Apple silicon on macOS); anywhere else every test is skipped
with the reason, the one tier allowed to skip in CI.
"""

from __future__ import annotations

import platform
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import agent_name
from smolvm_support import Tmux, tmux  # noqa: F401

from backends.base import GUEST_PROMPT, AgentSpec
from backends.registry import get_backend
from backends.smolmachines import smolvm as cli
from backends.smolmachines.backend import host_problems, kvm_state
from backends.smolmachines.bottle import SmolBottle

pytestmark = pytest.mark.smolvm


def _why_no_vms() -> str | None:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    problems = host_problems(platform.system(), platform.machine(), cpuinfo, kvm_state())
    if problems:
        return "no hardware virtualization for microVMs: " + "; ".join(p.what for p in problems)
    return None


@pytest.fixture
def real_smolvm(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """The real CLI (never the stand-in), on a host that can boot VMs; else skip.

    The host is checked before Docker is asked for the test image (``docker save`` gives
    the VM its root filesystem), so a host without VMs skips for that reason alone."""
    reason = _why_no_vms()
    if reason:
        pytest.skip(reason)
    test_image: str = request.getfixturevalue("test_image")
    monkeypatch.delenv(cli.ENV_OVERRIDE, raising=False)
    from backends import registry

    registry.reset()
    path = cli.find_smolvm()
    if path is None or "fakes" in path:
        pytest.skip("the real smolvm CLI is not installed (pip install 'bottle-dash[smolvm]')")
    return test_image


@pytest.fixture
def bottle(real_smolvm: str) -> Iterator[SmolBottle]:
    backend = get_backend("smolmachines")
    name = agent_name("real")
    spec = AgentSpec(
        name=name, backend="smolmachines", image=real_smolvm, prompt="be 'brief'\n$x\n"
    )
    launched = backend.launch(backend.prepare(spec))
    assert isinstance(launched, SmolBottle)
    yield launched
    backend.remove(name, volumes=True)


def test_launch_exec_provision(bottle: SmolBottle) -> None:
    assert bottle.exec("id -u").stdout.strip() == "1000"
    assert bottle.exec("id -u", user="root").stdout.strip() == "0"
    stat = bottle.exec(f"stat -c '%a %U' {GUEST_PROMPT}", user="root")
    assert stat.stdout.strip() == "600 node"
    assert bottle.exec(f"cat {GUEST_PROMPT}").stdout == "be 'brief'\n$x\n"
    [info] = [b for b in get_backend("smolmachines").list_bottles() if b.bottle == bottle.name]
    assert info.state == "running"


def test_attach_in_a_pane_sees_the_size(bottle: SmolBottle, tmux: Tmux) -> None:  # noqa: F811
    again = get_backend("smolmachines").attach(bottle.agent)
    pane = tmux.new_pane(again.claude_argv([]))
    tmux.wait_for(pane, r"STANDIN-CLAUDE start uid=1000", seconds=60)
    rows, cols = tmux.size(pane)
    tmux.wait_for(pane, rf"size={rows}x{cols}\b", seconds=5)
    tmux("resize-window", "-t", pane, "-x", "90", "-y", "25")
    rows, cols = tmux.size(pane)
    tmux.wait_for(pane, rf"resized size={rows}x{cols}\b", seconds=5)
    tmux("send-keys", "-t", pane, "exit", "Enter")
    tmux.wait_for(pane, "STANDIN-CLAUDE bye")
    assert shlex.join(again.claude_argv([])).count("pty_resize.py") == 1
