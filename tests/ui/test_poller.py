"""The poller's pieces that touch the host: psutil process trees and the config cache."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil

from bottle_dash.session import cached_loader
from bottle_dash.ui.poller import ProcessUsage


def test_process_tree_usage_sums_the_descendants() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        deadline = time.monotonic() + 10
        while len(psutil.Process(proc.pid).children()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
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
