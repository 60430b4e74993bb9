"""The poller's pieces that touch the host: the config cache, the seal records and the
steadied figures (the process trees' CPU and memory: tests/unit/test_process_usage.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bottle_dash.session import cached_loader


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
    from backends.base import AgentSpec
    from bottle_dash import config as config_module
    from bottle_dash.service import AgentService
    from bottle_dash.ui.poller import Poller
    from tests.fakes.backend import FakeBackend

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

    from bottle_dash.ui.widgets.agent_cells import AgentCells, steady

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
    from backends.base import RUNNING, STOPPED
    from backends.probes import record
    from tests.ui.dashkit import build, spec

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
