"""Shared test set-up: isolation from the operator's own config and tmux, tier marking,
the sweep of this run's bottles, and a per-tier count at the end of the run. The
components a tier needs (Docker engine, images, tmux, the stand-in smolvm, the cluster)
are fixtures of tests/integration/conftest.py; helpers are in tests/support.py.

Tiers (see README "Tests"): unit, ui, tmux, docker, shim, probes, claude, remote,
kubernetes, smolvm. A test's
tier is its directory (tests/unit, tests/ui) or the marker its module sets (integration
tests). In CI (CI=true) a tier whose component cannot start fails the run instead of
skipping; only the smolvm tier (real microVMs, needs hardware virtualization) may skip,
and says why.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import IN_CI, REPO, RUN_ID, docker_problem, stop_keepalives

TIERS = (
    "unit",
    "ui",
    "tmux",
    "docker",
    "shim",
    "probes",
    "claude",
    "remote",
    "kubernetes",
    "smolvm",
)
#: Tiers that must run (not skip) in CI.
REQUIRED_IN_CI = (
    "unit",
    "ui",
    "tmux",
    "docker",
    "shim",
    "probes",
    "claude",
    "remote",
    "kubernetes",
)


def tier_of(item: pytest.Item) -> str:
    for tier in TIERS:
        if item.get_closest_marker(tier):
            return tier
    parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
    return parts[0] if parts and parts[0] in ("unit", "ui") else "unit"


#: nodeid -> tier, from collection. Not from a report's keywords: those hold the names of
#: every parent node, the checkout's folder among them (a checkout named "probes" would
#: put every test in that tier).
_tier_of_test: dict[str, str] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item)
        _tier_of_test[item.nodeid] = tier
        if not item.get_closest_marker(tier):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def _isolate(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Never read the operator's config or state, never touch their tmux server."""
    base = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = base / var.lower()
        path.mkdir()
        monkeypatch.setenv(var, str(path))
    monkeypatch.delenv("BOTTLE_DASH_CONFIG", raising=False)
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("TMUX_PANE", raising=False)
    monkeypatch.setenv("SHELL", "/bin/sh")
    # Nor their git identity (an agent's default ``git_user``): git reads no config.
    empty = base / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    from backends import ownership, registry

    registry.reset()
    # Owner "no config" between tests too: a module-scoped bottle is made before this
    # fixture runs for its first test, and must carry the owner its tests act as.
    ownership.use_config(None)
    yield
    ownership.use_config(None)


@pytest.fixture(scope="session", autouse=True)
def _sweep_run_bottles() -> Iterator[None]:
    """Remove every labelled resource this run created (names start with t<RUN_ID>)."""
    yield
    if shutil.which("docker") is None or docker_problem():
        return
    prefix = f"t{RUN_ID}-"
    for kind in ("container", "network", "volume"):
        listing = subprocess.run(
            ["docker", kind, "ls", "-q", "--filter", "label=bottle-dash.agent"]
            + (["-a"] if kind == "container" else []),
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        for ident in listing:
            agent = subprocess.run(
                [
                    "docker",
                    kind,
                    "inspect",
                    "--format",
                    '{{ index .Labels "bottle-dash.agent" }}'
                    if kind != "container"
                    else '{{ index .Config.Labels "bottle-dash.agent" }}',
                    ident,
                ],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            if agent.startswith(prefix):
                rm = ["docker", kind, "rm"] + (["-f", "-v"] if kind == "container" else [])
                subprocess.run([*rm, ident], capture_output=True, check=False)


# ----------------------------------------------------------------------- tier counts

_counts: dict[str, Counter[str]] = {t: Counter() for t in TIERS}
_skip_reasons: dict[str, set[str]] = {t: set() for t in TIERS}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tier = _tier_of_test.get(report.nodeid) or next(
        (t for t in TIERS if t in report.keywords), "unit"
    )
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _counts[tier][report.outcome] += 1
        if report.skipped and isinstance(report.longrepr, tuple):
            _skip_reasons[tier].add(str(report.longrepr[2]))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    tr = terminalreporter
    tr.section("tests run per tier")
    for tier in TIERS:
        c = _counts[tier]
        line = (
            f"tier {tier:10s} {c['passed']:4d} passed, "
            f"{c['failed']:3d} failed, {c['skipped']:3d} skipped"
        )
        tr.write_line(line)
        for reason in sorted(_skip_reasons[tier])[:3]:
            tr.write_line(f"    skipped because: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_keepalives()
    if not IN_CI or exitstatus != 0:
        return
    ran_all = not session.config.getoption("-k") and not session.config.getoption("-m")
    missing = [t for t in REQUIRED_IN_CI if _counts[t]["passed"] == 0]
    if ran_all and missing:
        print(f"\nCI: tiers that ran no test: {', '.join(missing)}", file=sys.stderr)
        session.exitstatus = 1
