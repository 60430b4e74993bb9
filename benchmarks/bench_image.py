"""What the agent image costs: a first offline build (only when this machine has none)
and a cached one, against ``docker image inspect`` (the engine's own answer that an
image exists) in the same run; then the real Claude Code's start in the image
(``claude --version`` through ``docker run``) against ``true`` in the same image.

The cached build is what every test run and every ``bottle-dash image build --offline``
on a machine that has the image pays: hashing the inputs, one lock, one inspect, one tag.

Needs root, debootstrap, npm and a Docker engine. Uses temporary XDG dirs; never removes
an image (the agent image is the operator's too). Prints figures; asserts nothing.
Usage: ``.venv/bin/python benchmarks/bench_image.py``
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

RUNS = 5


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> int:
    if shutil.which("docker") is None:
        print("bench_image: needs the docker CLI and a running engine", file=sys.stderr)
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="bench-image-"))
    for var in ("XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        os.environ[var] = str(scratch / var.lower())

    from backends.images import agent, rootfs

    spec = agent.AGENT_SPEC
    problems = rootfs.missing_tools(spec)
    if problems:
        print("bench_image: " + "; ".join(fix for _, fix in problems), file=sys.stderr)
        return 1
    tag = rootfs.image_tag(spec)
    print(f"agent image {tag} (Claude Code {agent.CLAUDE_CODE_VERSION})")
    if not rootfs.image_exists(tag):
        start = time.perf_counter()
        rootfs.ensure_image(spec)
        first = time.perf_counter() - start
        print(f"first build (debootstrap, npm, docker import): {first:7.1f} s")
    else:
        print("first build: not measured (this machine has the image already)")

    cached, inspect = [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        rootfs.ensure_image(spec)
        cached.append(time.perf_counter() - start)
        inspect.append(timed(["docker", "image", "inspect", tag]))
    c, i = statistics.median(cached), statistics.median(inspect)
    print(f"cached build (in process), median of {RUNS}: {c * 1000:7.1f} ms")
    print(f"docker image inspect,      median of {RUNS}: {i * 1000:7.1f} ms   ratio {c / i:.2f}x")

    base = ["docker", "run", "--rm", "--network", "none", tag]
    claude, true = [], []
    for _ in range(RUNS):
        claude.append(timed([*base, "claude", "--version"]))
        true.append(timed([*base, "true"]))
    c, t = statistics.median(claude), statistics.median(true)
    print(f"docker run claude --version, median of {RUNS}: {c * 1000:7.1f} ms")
    print(f"docker run true,             median of {RUNS}: {t * 1000:7.1f} ms   ratio {c / t:.2f}x")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
