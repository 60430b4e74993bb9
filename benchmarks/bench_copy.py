"""The repository copy on a big generated repository: what the first ``up`` costs, what a
change summary costs, and whether summaries being computed hold up the UI's event loop.
Prints figures and ratios against baselines measured in the same run; asserts nothing.

1. A repository of ``--files`` files (default 100,000, in folders of 500) is generated and
   committed on the host. The copy's making (``backends.repo_copy.make_clone`` + the tar
   into the volume + the bottle's launch, i.e. the first ``up``) against a plain
   ``git clone --no-local`` of the same repository.
2. One change summary (``service.copies.summary``, run in the bottle) after the agent
   commits a change, then one with nothing changed (the fingerprint short-cut), against a
   bare ``docker exec BOTTLE git status --porcelain`` (what the dirty flag alone costs).
3. Event-loop lag of a Textual app (a key press and the repaint it causes wait for this
   loop) with ``ChangeWatcher`` computing summaries without pause in its threads,
   against the same app with none: the worst and the 99th percentile of the delay of a
   10 ms timer over ``--seconds``. Goal: a keystroke reaches the screen in under 50 ms.

Needs Docker (the offline test image is built if missing). Usage:
``.venv/bin/python benchmarks/bench_copy.py [--files 100000] [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import REPO, ms, scratch, timed

sys.path[:0] = [str(REPO)]

GIT_ID = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]


def generate(repo: Path, files: int) -> None:
    """``files`` small text files in folders of 500, committed."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    for index in range(files):
        folder = repo / f"d{index // 500:04d}"
        if index % 500 == 0:
            folder.mkdir()
        (folder / f"f{index:06d}.txt").write_text(f"line one of {index}\nline two\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", *GIT_ID, "-C", str(repo), "commit", "-qm", "generated"], check=True)


def loop_lag(seconds: float, busy: bool, watcher: object, rows: list[object]) -> list[float]:
    """Delays (s) of a 10 ms timer in a running Textual app, ``busy``: summaries computed
    meanwhile without pause."""
    from textual.app import App
    from textual.widgets import Static

    lags: list[float] = []

    class Probe(App[None]):
        def compose(self):  # type: ignore[no-untyped-def]
            yield Static("x")

        async def on_mount(self) -> None:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                if busy:
                    watcher.apply(rows, frozenset(r.name for r in rows))  # type: ignore[attr-defined]
                start = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - start - 0.01)
            self.exit()

    asyncio.run(Probe().run_async(headless=True, size=(80, 24)))
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    folder = scratch("bench-copy-")
    name = f"bench-copy-{uuid.uuid4().hex[:6]}"
    try:
        from tests.fakes.image import ensure_image  # tests/fakes: the offline test image

        image = ensure_image()
        repo = folder / "repo"
        print(f"generating {args.files} files...", flush=True)
        gen = timed(lambda: generate(repo, args.files))
        print(f"generated and committed in {gen:.1f} s")

        clone = timed(
            lambda: subprocess.run(
                ["git", "clone", "-q", "--no-local", str(repo), str(folder / "baseline")],
                check=True,
            )
        )
        config = folder / "config.toml"
        config.write_text(f'[agents.{name}]\nimage = "{image}"\nrepo = "{repo}"\nsealed = false\n')
        import os

        os.environ["BOTTLE_DASH_CONFIG"] = str(config)
        from bottle_dash.config import load_config
        from bottle_dash.service import AgentService, copies

        service = AgentService()
        spec = load_config(config).agents[name]
        up = timed(lambda: service.up(spec))
        print(
            f"1. first up with the copy  {ms(up)}  vs git clone --no-local {ms(clone)}"
            f"  ratio {up / clone:.2f}x"
        )

        backend = service.backend("docker")
        bottle = backend.bottle(name)
        bottle.exec(
            "echo change >> d0000/f000000.txt && git -c user.name=a -c user.email=a@b "
            "commit -qam change",
            timeout=600,
        )
        first = copies.summary(backend, name)
        full = timed(lambda: copies.summary(backend, name))
        same = timed(lambda: copies.summary(backend, name, first))
        status = timed(lambda: bottle.exec("cd /workspace && git status --porcelain", timeout=600))
        print(
            f"2. summary (counts)        {ms(full)}  unchanged {ms(same)}  "
            f"vs git status alone {ms(status)}  ratio {full / status:.2f}x / {same / status:.2f}x"
        )
        print(f"   {first.to_dict()}")

        watcher = copies.ChangeWatcher(service.backend, every=0.0)
        rows = [service.row_of(spec)]
        quiet = loop_lag(args.seconds, False, watcher, rows)
        busy = loop_lag(args.seconds, True, watcher, rows)
        watcher.wait_idle(120)

        def p99(values: list[float]) -> float:
            return statistics.quantiles(values, n=100)[98] if len(values) > 2 else max(values)

        print(
            f"3. event-loop lag, summaries running: worst {ms(max(busy))} p99 {ms(p99(busy))}"
            f"  vs none: worst {ms(max(quiet))} p99 {ms(p99(quiet))}  (goal: under 50 ms)"
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "bottle_dash", "rm", "--volumes", "--force", name],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
