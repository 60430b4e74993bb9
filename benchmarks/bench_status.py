"""What agent status costs per poll tick, against the one ``tmux list-panes`` the tick
already makes. Prints figures; asserts nothing about time.

Per tick, status adds no subprocess: for each running agent one status-file read
(lstat, open with O_NOFOLLOW|O_NONBLOCK, fstat, read, close) and the pure combiner; the
pane title rides on the existing ``list-panes``. This measures that work for N agents
with real status files in a temporary state dir, and, as the baseline from the same run,
one ``list-panes -a`` on an isolated tmux server holding N tagged panes (the work the tick
did before status, minus the backend listing).

Usage: ``.venv/bin/python benchmarks/bench_status.py [--agents 20 100] [--ticks 200]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]


def per_tick(fn: object, ticks: int) -> tuple[float, float]:
    """(minimum, median) seconds of ``fn()`` over ``ticks`` calls. On a busy host the
    median includes time the process was not scheduled; the minimum is the work itself."""
    samples = []
    for _ in range(ticks):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - t0)
    return min(samples), statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--ticks", type=int, default=200)
    args = parser.parse_args()
    tmux = shutil.which("tmux")
    state = tempfile.mkdtemp(prefix="bench-status-")
    os.environ["XDG_STATE_HOME"] = state

    from backends import paths
    from backends.claude import STATUS_FILE
    from backends.status_file import read_status
    from bottle_dash.status import StatusTracker, agent_statuses
    from bottle_dash.tmux import PaneInfo, parse_panes

    words = ["working", "permission", "idle", "question", "error"]
    try:
        for n in args.agents:
            names = [f"agent-{i}" for i in range(n)]
            for i, name in enumerate(names):
                (paths.ensure_status_dir(name, os.geteuid()) / STATUS_FILE).write_text(
                    words[i % len(words)]
                )
            rows = [SimpleNamespace(name=name, state="running") for name in names]
            titles = ["\u2802 Claude Code", "\u2733 Claude Code", ""]
            panes = {
                name: PaneInfo(f"%{i}", name, False, "@1", 100 + i, titles[i % 3])
                for i, name in enumerate(names)
            }

            def status_tick(
                rows: list[SimpleNamespace] = rows,
                panes: dict[str, PaneInfo] = panes,
                tracker: StatusTracker = StatusTracker(),  # noqa: B008 (one per agent count)
            ) -> None:
                now = time.time()
                tracker.update(agent_statuses(rows, panes, read_status, now), now)

            lines = [
                f"%{i}\t{name}\t0\t@1\t{100 + i}\t\u2802 Claude Code"
                for i, name in enumerate(names)
            ]
            parse, _ = per_tick(lambda lines=lines: parse_panes(lines), args.ticks)
            status, status_median = per_tick(status_tick, args.ticks)
            print(
                f"{n} agents: status per tick {status * 1e6:.0f} us min, "
                f"{status_median * 1e6:.0f} us median ({status / n * 1e6:.1f} us per agent; "
                f"parsing list-panes with titles: {parse * 1e6:.0f} us), no subprocess"
            )
            if tmux is None:
                print("  baseline skipped: tmux not installed")
                continue
            sock = f"bench-status-{uuid.uuid4().hex[:8]}"
            base = [tmux, "-L", sock]
            subprocess.run(
                [*base, "new-session", "-d", "-x", "200", "-y", "50", "sleep 600"], check=True
            )
            try:
                for name in names:
                    subprocess.run(
                        [
                            *base,
                            "new-window",
                            "-d",
                            "sleep 600",
                            ";",
                            "set-option",
                            "-p",
                            "@bottle-agent",
                            name,
                        ],
                        check=True,
                    )
                fmt = (
                    "#{pane_id}\t#{@bottle-agent}\t#{pane_dead}\t#{window_id}\t#{pane_pid}"
                    "\t#{pane_title}"
                )
                listing, _ = per_tick(
                    lambda base=base, fmt=fmt: subprocess.run(
                        [*base, "list-panes", "-a", "-F", fmt], capture_output=True, check=True
                    ),
                    max(20, args.ticks // 10),
                )
            finally:
                subprocess.run([*base, "kill-server"], check=False, capture_output=True)
            print(
                f"  baseline: one list-panes -a (the tick's existing tmux call) "
                f"{listing * 1e3:.2f} ms min; status / list-panes = {status / listing:.2f}"
            )
    finally:
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
