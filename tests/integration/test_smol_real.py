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

from backends.base import GUEST_PROMPT, AgentSpec, BackendError, LaunchError
from backends.registry import get_backend
from backends.run import run
from backends.smolmachines import images, pty_resize
from backends.smolmachines import smolvm as cli
from backends.smolmachines.bottle import SmolBottle
from backends.smolmachines.preflight import host_problems, kvm_state
from tests.fakes.smolvm_support import Tmux
from tests.support import agent_name

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


def test_attach_in_a_pane_sees_the_size(bottle: SmolBottle, tmux: Tmux) -> None:
    again = get_backend("smolmachines").bottle(bottle.agent)
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


@pytest.fixture
def real_cli_no_vms(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> str:
    """The real CLI on a host that can NOT boot VMs (the checks above cover the others),
    with smolvm's own state in a temporary XDG_DATA_HOME."""
    if _why_no_vms() is None:
        pytest.skip("this host boots microVMs: the launch tests above run instead")
    monkeypatch.delenv(cli.ENV_OVERRIDE, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "smolvm-data"))
    from backends import registry

    registry.reset()
    path = cli.find_smolvm()
    if path is None:
        pytest.skip("the real smolvm CLI is not installed (pip install 'bottle-dash[smolvm]')")
    test_image: str = request.getfixturevalue("test_image")
    return test_image


def test_real_cli_accepts_our_grammar_and_a_failed_start_leaves_nothing(
    real_cli_no_vms: str,
) -> None:
    """Without VMs the real CLI still parses every argv we build: create (labels, user,
    workdir, net, workload, from a ``docker save`` archive), ls --json, delete. The start
    fails with the KVM error, and the launch removes the machine it created."""
    backend = get_backend("smolmachines")
    name = agent_name("realcli")
    plan = backend.prepare(AgentSpec(name=name, backend="smolmachines", image=real_cli_no_vms))
    with pytest.raises(LaunchError, match="machine start failed") as failed:
        backend.launch(plan)
    assert "\x1b[" not in str(failed.value)  # colour codes are stripped
    assert all(b.agent != name for b in backend.list_bottles())

    # create alone (no start) shows up in the listing by its labels, then deletes
    source = images.materialize(images.ImageSource(**plan.extra["source"]))
    done = run(backend.create_argv(plan, source), timeout=300)
    assert done.ok, done.stderr
    [info] = [b for b in backend.list_bottles() if b.agent == name]
    assert (info.bottle, info.state, info.host_pid) == (f"bottle-{name}", "stopped", None)
    assert info.labels["bottle-dash.backend"] == "smolmachines"
    # exec, cp and the resize side channels parse; they fail only because it is not running
    smolvm = backend.smolvm()
    bottle = SmolBottle(smolvm, f"bottle-{name}", name, {"K": "it's $x\nnext"})
    for argv in (
        bottle.claude_argv(["-p", "hi there"], tty=False),
        bottle.exec_argv(["id"], user="root"),
        cli.cp_argv(smolvm, str(plan.prompt_host), f"bottle-{name}", GUEST_PROMPT, mode=0o600),
        cli.side_channel_argv(smolvm, f"bottle-{name}", 80, 24),
        pty_resize.channel_argv(smolvm, f"bottle-{name}"),
    ):
        done = run(argv, timeout=60)
        assert done.returncode != 0
        assert "not running" in done.stderr, (argv, done.stderr)
    with pytest.raises(BackendError, match="--volumes"):
        backend.remove(name)
    backend.remove(name, volumes=True)
    assert all(b.agent != name for b in backend.list_bottles())
