"""The poller's pieces that touch the host: psutil process trees and the config cache."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bottle_dash.session import cached_loader
from bottle_dash.ui.poller import ProcessUsage


def with_children(argv: list[str], children: int) -> subprocess.Popen[bytes]:
    """Start ``argv`` and wait (10 s at most) until it has ``children`` children."""
    proc = subprocess.Popen(argv)
    deadline = time.monotonic() + 10
    while len(psutil.Process(proc.pid).children()) < children:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


def test_process_tree_usage_sums_the_descendants() -> None:
    proc = with_children(["sh", "-c", "sleep 30 & sleep 30 & wait"], 2)
    try:
        usage = ProcessUsage()
        usage.begin()
        figures = usage.tree(proc.pid)
        assert figures is not None
        expected = sum(
            p.memory_info().rss
            for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children()]
        )
        assert figures.memory == expected
        assert usage._descendants(proc.pid) and len(usage._descendants(proc.pid)) == 2
    finally:
        proc.kill()
        proc.wait()
    usage.begin()
    assert usage.tree(proc.pid) is None
    usage.sweep()
    usage.sweep()
    assert usage._procs == {}


def test_process_tree_cpu_is_the_share_of_a_core_since_the_last_tick() -> None:
    # A busy child and an idle one under one parent: only the busy one adds CPU, and the
    # first sight of a process reads 0 % (nothing to compare with yet).
    code = "import subprocess, sys; subprocess.Popen(['sleep', '30']); exec('while True: pass')"
    proc = with_children([sys.executable, "-c", code], 1)
    deadline = time.monotonic() + 30
    try:
        usage = ProcessUsage()
        usage.begin()
        first = usage.tree(proc.pid)
        assert first is not None and first.cpu == 0.0
        busy_before = sum(psutil.Process(proc.pid).cpu_times()[:2])
        while sum(psutil.Process(proc.pid).cpu_times()[:2]) - busy_before < 0.05:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        usage.begin()
        second = usage.tree(proc.pid)
        assert second is not None and second.cpu > 0.0
        assert len(usage._descendants(proc.pid)) == 1  # the sleep
    finally:
        for child in psutil.Process(proc.pid).children():
            child.kill()
        proc.kill()
        proc.wait()


def test_config_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("a")
    reads: list[str] = []

    def load(p: Path) -> str:
        reads.append(p.read_text())
        return reads[-1]

    loader = cached_loader(path, load)
    assert loader() == "a" and loader() == "a"
    assert reads == ["a"]
    path.write_text("bb")
    assert loader() == "bb"
    assert reads == ["a", "bb"]


def test_a_config_broken_while_running_is_shown_and_the_last_good_one_kept(
    tmp_path: Path,
) -> None:
    from fakes.backend import FakeBackend

    from backends.base import AgentSpec
    from bottle_dash import config as config_module
    from bottle_dash.service import AgentService
    from bottle_dash.ui.poller import Poller

    path = tmp_path / "config.toml"
    path.write_text('[agents.web]\nimage = "img"\n')
    backend = FakeBackend()
    service = AgentService({"docker": backend})
    poller = Poller(cached_loader(path, config_module.load_config), service, None)
    first = poller.poll()
    assert [r.name for r in first.rows] == ["web"] and first.problems == []
    assert isinstance(poller.last_config.agents["web"], AgentSpec)

    path.write_text('[agents.web]\nimage = "img"\nbogus = 1\n')
    broken = poller.poll()
    assert [r.name for r in broken.rows] == ["web"]  # the last good config still lists
    [problem] = [p for p in broken.problems if p.component == "config"]
    assert "key 'bogus'" in problem.what and str(path) in problem.what
    assert problem.fix.startswith("use one of: backend")
    assert broken.config_error and "bogus" in broken.config_error


def test_cpu_and_memory_cells_move_only_past_a_step() -> None:
    from dataclasses import replace

    from bottle_dash.ui.widgets.agents_table import AgentCells, steady

    shown = AgentCells("a", True, "docker", "running", "", "live", "1m", 0.2, 100 * 2**20)
    jitter = replace(shown, cpu=0.6, memory=101 * 2**20)
    assert steady(shown, jitter) == shown  # an idle bottle's noise redraws nothing
    moved = replace(shown, cpu=0.8, memory=110 * 2**20)
    assert steady(shown, moved) == moved
    assert steady(shown, replace(jitter, uptime="2m")) == replace(shown, uptime="2m")
    gone = replace(shown, cpu=None, memory=None)
    assert steady(shown, gone) == gone


def test_a_tick_looks_at_each_running_bottles_seal_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The badge and the failing probes come from one look at the record, not one each.
    from dashkit import build, spec

    from backends.base import RUNNING, STOPPED
    from backends.probes import record

    agents = [spec(f"agent-{i}") for i in range(4)]
    dash = build(tmp_path, agents)
    for agent in agents[:3]:
        dash.backend.add(agent.name, RUNNING)
    dash.backend.add("agent-3", STOPPED)
    looked: list[str] = []
    real = record.last_run
    monkeypatch.setattr(record, "last_run", lambda agent: looked.append(agent) or real(agent))
    result = dash.app.poller.poll()
    assert sorted(looked) == ["agent-0", "agent-1", "agent-2"]
    assert result.seals == {f"agent-{i}": (record.NOT_CHECKED, []) for i in range(3)}
