"""CPU and memory of real host process trees (``bottle_dash.process_usage``): the
figures the dashboard shows for each bottle, read from ``/proc``."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from bottle_dash.process_usage import ProcessUsage


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
        assert usage.descendants(proc.pid) and len(usage.descendants(proc.pid)) == 2
    finally:
        proc.kill()
        proc.wait()
    usage.begin()
    assert usage.tree(proc.pid) is None
    usage.sweep()
    usage.sweep()
    assert usage.remembered == frozenset()


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
        assert len(usage.descendants(proc.pid)) == 1  # the sleep
    finally:
        for child in psutil.Process(proc.pid).children():
            child.kill()
        proc.kill()
        proc.wait()
