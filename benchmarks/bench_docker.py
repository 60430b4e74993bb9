"""What the docker backend costs the operator, against the docker CLI in the same run.

Needs a Docker engine; uses the offline test image (tests/fakes/image.py), a temporary
config (``BOTTLE_DASH_CONFIG``) and temporary XDG dirs, so the operator's own agents,
state and bottles are never touched.

1. ``bottle-dash ls --json`` with 30 running bottles against
   ``docker ps --filter label=bottle-dash.agent``, alternately, 10 runs each: medians and
   the ratio (goal: within 3x). Also the backend's own ``list_bottles()`` in process,
   which is the part bottle-dash controls (the rest is Python start-up and imports).
2. ``bottle-dash up`` of one new agent against a bare ``docker run -d`` of the same image,
   alternately, 5 runs each: medians and the ratio (goal: within 3x).

Prints figures; asserts nothing about time. Everything it creates is removed at the end.
Usage: ``.venv/bin/python benchmarks/bench_docker.py``
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import uuid
from pathlib import Path

from common import ms, scratch, timed

BOTTLES = 30
LS_RUNS = 10
UP_RUNS = 5
BENCH_LABEL = "bottle-dash.bench"


def main() -> int:
    if shutil.which("docker") is None:
        print("bench_docker: needs the docker CLI and a running engine", file=sys.stderr)
        return 1
    cli = shutil.which("bottle-dash", path=str(Path(sys.executable).parent)) or shutil.which(
        "bottle-dash"
    )
    if cli is None:
        print("bench_docker: bottle-dash is not installed in this venv", file=sys.stderr)
        return 1
    folder = scratch("bench-docker-")  # never the operator's own config and state
    os.environ["BOTTLE_DASH_CONFIG"] = str(folder / "config.toml")
    os.environ.pop("TMUX", None)
    # Measure the CLI as installed (pip writes bytecode at install): compile once into a
    # scratch cache instead of on every call, and leave the source tree untouched.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")

    from backends import run
    from backends.registry import get_backend
    from bottle_dash import config as configmod
    from tests.fakes import image  # tests/fakes/image.py

    tag = image.ensure_image()
    run_id = uuid.uuid4().hex[:6]
    listed = [f"bench-{run_id}-{i:02d}" for i in range(BOTTLES)]
    upped = [f"bench-{run_id}-up{i}" for i in range(UP_RUNS)]
    lines = ["[defaults]", 'backend = "docker"', f'image = "{tag}"', ""]
    for name in listed + upped:
        lines += [f"[agents.{name}]", 'prompt = "benchmark agent"', ""]
    Path(os.environ["BOTTLE_DASH_CONFIG"]).write_text("\n".join(lines))
    # Loading the config makes its identity this process's owner label: bottles launched
    # without it belong to no config, and `ls` of this config rightly shows none of them.
    specs = configmod.load_config(Path(os.environ["BOTTLE_DASH_CONFIG"])).agents

    backend = get_backend("docker")
    try:
        print(f"bench_docker: launching {BOTTLES} bottles from {tag} ...", flush=True)
        for name in listed:
            backend.launch(backend.prepare(specs[name]))

        # -- 1. listing
        ls_argv = [cli, "ls", "--json"]
        ps_argv = ["docker", "ps", "--filter", "label=bottle-dash.agent"]
        check = run.run(ls_argv, timeout=60, check=True)
        rows = [r for r in json.loads(check.stdout) if r["name"] in listed]
        assert len(rows) == BOTTLES and {r["state"] for r in rows} == {"running"}, rows
        run.run(ps_argv, timeout=60, check=True)  # warm both (page cache, engine)
        ls_times: list[float] = []
        ps_times: list[float] = []
        api_times: list[float] = []
        for _ in range(LS_RUNS):
            ls_times.append(timed(lambda: run.run(ls_argv, timeout=60, check=True)))
            ps_times.append(timed(lambda: run.run(ps_argv, timeout=60, check=True)))
            api_times.append(timed(backend.list_bottles))
        ls_med, ps_med = statistics.median(ls_times), statistics.median(ps_times)
        api_med = statistics.median(api_times)
        print(f"\n1. listing {BOTTLES} bottles, median of {LS_RUNS}:")
        print(f"   bottle-dash ls --json                      {ms(ls_med)}")
        print(f"   docker ps --filter label=bottle-dash.agent {ms(ps_med)}")
        print(f"   ratio ls/ps: {ls_med / ps_med:.2f}x (goal <= 3x)")
        print(f"   in process: DockerBackend.list_bottles()   {ms(api_med)}")
        # Where the CLI's time goes: the interpreter, the CLI's imports, the docker SDK's.
        floors = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import bottle_dash.cli'": [sys.executable, "-c", "import bottle_dash.cli"],
            "python -c 'import docker'": [sys.executable, "-c", "import docker"],
        }
        for label, argv in floors.items():
            took = statistics.median(
                timed(lambda a=argv: run.run(a, timeout=60, check=True)) for _ in range(5)
            )
            print(f"   start-up floor: {label:36s} {ms(took)}")

        # -- 2. up of one bottle
        up_times: list[float] = []
        run_times: list[float] = []
        bare = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
        for i, name in enumerate(upped):
            up_times.append(timed(lambda n=name: run.run([cli, "up", n], timeout=120, check=True)))
            run_argv = ["docker", "run", "-d", "--label", f"{BENCH_LABEL}={run_id}"]
            run_argv += ["--name", f"bench-{run_id}-bare{i}", tag, *bare]
            run_times.append(timed(lambda a=run_argv: run.run(a, timeout=120, check=True)))
        up_med, run_med = statistics.median(up_times), statistics.median(run_times)
        print(f"\n2. one bottle up, median of {UP_RUNS}:")
        print(f"   bottle-dash up NAME (network, volume, container, start, provision) {ms(up_med)}")
        print(f"   docker run -d IMAGE                                               {ms(run_med)}")
        print(f"   ratio up/run: {up_med / run_med:.2f}x (goal <= 3x)")
        return 0
    finally:
        print("\nbench_docker: cleaning up ...", flush=True)
        for name in listed + upped:
            try:
                backend.remove(name, volumes=True)
            except Exception as exc:  # already gone (never created) is fine here
                if "no bottle" not in str(exc):
                    print(f"   cleanup of {name}: {exc}", file=sys.stderr)
        bare_ids = run.run(
            ["docker", "ps", "-aq", "--filter", f"label={BENCH_LABEL}={run_id}"], timeout=60
        ).stdout.split()
        if bare_ids:
            run.run(["docker", "rm", "-f", *bare_ids], timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
