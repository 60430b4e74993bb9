"""Resize propagation and start-up cost of pty_resize.py, in the shim tier.

Needs Docker and tmux; runs the smolmachines backend against the stand-in smolvm
(tests/fakes/smolvm), launches one bottle, and in a real tmux pane (isolated server):

1. resizes the claude pane 20 times and times each resize from ``tmux resize-pane`` to the
   guest program printing the new size (p50, p95; goal: p95 under 150 ms), once with the
   wrapper's persistent side channel and once with one exec per resize (the baseline);
2. starts claude through ``claude_argv`` and through the same argv without the wrapper,
   alternately, and times each from pane creation to claude's first line (the wrapper's
   cost on attach start-up), plus, with the wrapper, to the right size in the guest.

Prints figures; asserts nothing about time. Usage: ``.venv/bin/python benchmarks/bench_resize.py``
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

RESIZES = 20
STARTS = 5
POLL = 0.005
#: tmux's pane resize timer (server-client.c: 250 ms) plus a margin.
TMUX_RESIZE_HOLD = 0.3


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    if shutil.which("docker") is None or shutil.which("tmux") is None:
        print("bench_resize: needs docker and tmux", file=sys.stderr)
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="bench-resize-"))
    # Never touch the operator's own state, cache or tmux server.
    for var in ("XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        os.environ[var] = str(scratch / var.lower())
    os.environ.pop("TMUX", None)
    from backends.base import AgentSpec
    from backends.registry import get_backend
    from tests.fakes import image  # tests/fakes/image.py
    from tests.fakes.smolvm_support import Tmux, standin_launcher
    from tests.support import wait_for

    os.environ["BOTTLE_DASH_SMOLVM"] = str(standin_launcher())
    tag = image.ensure_image()
    backend = get_backend("smolmachines")
    agent = f"bench-{uuid.uuid4().hex[:6]}"
    bottle = backend.launch(backend.prepare(AgentSpec(name=agent, image=tag)))
    tmux = Tmux(shutil.which("tmux") or "tmux")
    try:
        argv = bottle.claude_argv([])
        bare = argv[argv.index("--") + 1 :]
        tmux("new-session", "-d", "-s", "bench", "-x", "220", "-y", "50", "-c", "/", "sleep 3600")

        def split(cmd: list[str]) -> str:
            return tmux(
                "split-window", "-d", "-h", "-P", "-F", "#{pane_id}", "-t", "bench", "-c", "/",
                shlex.join(cmd),
            ).strip()  # fmt: skip

        def count(pane: str, pattern: str) -> int:
            return len(re.findall(pattern, tmux.capture(pane)))

        # -- 1. resize propagation: the persistent side channel, then one-shot execs
        latencies: dict[str, list[float]] = {}
        for mode, cmd in (
            ("persistent channel", argv),
            ("one-shot exec", ["env", "BOTTLE_DASH_RESIZE_ONESHOT=1", *argv]),
        ):
            pane = split(cmd)
            rows, cols = tmux.size(pane)
            tmux.wait_for(pane, rf"size={rows}x{cols}\b", seconds=30)
            latencies[mode] = []
            for i in range(RESIZES):
                width = 70 + (i % 2) * 10 + i  # a new width every time
                # tmux (3.x) holds a pane resize back until 250 ms after the last one it
                # applied; waiting that out makes t0 the moment the pane gets SIGWINCH.
                time.sleep(TMUX_RESIZE_HOLD)
                t0 = time.monotonic()
                tmux("resize-pane", "-t", pane, "-x", str(width))
                new_rows, new_cols = tmux.size(pane)
                pattern = rf"resized size={new_rows}x{new_cols}\b"
                wait_for(
                    lambda p=pane, s=pattern: count(p, s) >= 1, 10, interval=POLL, what=pattern
                )
                latencies[mode].append((time.monotonic() - t0) * 1000)
            tmux("send-keys", "-t", pane, "exit", "Enter")
            tmux.wait_for(pane, "STANDIN-CLAUDE bye")
            tmux("kill-pane", "-t", pane)

        # -- 2. start-up: wrapper vs the same argv without it, alternately
        starts: dict[str, list[float]] = {"wrapped": [], "bare": [], "wrapped, sized": []}
        for _ in range(STARTS):
            for kind, cmd in (("wrapped", argv), ("bare", bare)):
                t0 = time.monotonic()
                pane = split(cmd)
                tmux.wait_for(pane, r"STANDIN-CLAUDE start", seconds=30)
                starts[kind].append((time.monotonic() - t0) * 1000)
                if kind == "wrapped":
                    r, c = tmux.size(pane)
                    sized = rf"size={r}x{c}\b"
                    wait_for(lambda p=pane, s=sized: count(p, s), 10, interval=POLL, what=sized)
                    starts["wrapped, sized"].append((time.monotonic() - t0) * 1000)
                tmux("send-keys", "-t", pane, "exit", "Enter")
                tmux.wait_for(pane, "STANDIN-CLAUDE bye")
                tmux("kill-pane", "-t", pane)
    finally:
        tmux.kill()
        backend.remove(agent, volumes=True)
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"resize propagation over {RESIZES} resizes (resize-pane -> new size in the guest):")
    for mode, values in latencies.items():
        p50, p95 = statistics.median(values), pct(values, 0.95)
        goal = "met" if p95 < 150 else "NOT met"
        print(
            f"  {mode:19s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   max {max(values):7.1f} ms"
            f"   (goal p95 < 150 ms: {goal})"
        )
    bare_ms = statistics.median(starts["bare"])
    wrapped_ms = statistics.median(starts["wrapped"])
    print(f"attach start-up, median of {STARTS} (pane created -> claude's first line):")
    print(f"  without wrapper {bare_ms:7.1f} ms")
    print(
        f"  with wrapper    {wrapped_ms:7.1f} ms   (x{wrapped_ms / bare_ms:.2f}, "
        f"{wrapped_ms - bare_ms:+.1f} ms)"
    )
    print(
        f"  with wrapper, to the pane's size in the guest "
        f"{statistics.median(starts['wrapped, sized']):7.1f} ms"
        " (without the wrapper: never)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
