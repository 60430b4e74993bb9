"""What the remote tier's engine costs (tests/fakes/remote_engine.py): its image's first
build, its start, and a docker call over SSH with and without ControlMaster, against the
same call on the local engine in the same run.

1. The first build of the engine image happens once per machine; the fixture records
   how long it took (``timings.json`` beside its keys), and this prints that record.
2. Start: a private instance (same image) from nothing to answering over ssh, and the
   ``stop()``/``start()`` round (sshd down and up again); the instance is removed after.
3. ``docker -H ssh://… ps``: median of several calls with a warm ControlMaster, and
   with a fresh SSH connection per call (the config without ControlMaster), against a
   local ``docker ps``; ``ssh NAME true`` both ways; docker-py's ``ping()`` on one
   client, on a new client per call, and on the local engine. docker-py's
   ``use_ssh_client`` makes a new connection pool, so a new ``ssh`` process and a new
   ``docker system dial-stdio`` on the engine, for every request.
4. The alternative: the engine's socket forwarded to a local unix socket through the
   ControlMaster (``ssh -O forward -L``), used by docker-py and the CLI as a local
   socket (docker-py pools its connections there).

Needs root, debootstrap and a Docker engine (the image is built when missing).
Prints figures; asserts nothing. Usage: ``.venv/bin/python benchmarks/bench_remote_engine.py
[--calls 15]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from common import ms, timed


def median_of(calls: int, fn: Callable[[], object]) -> float:
    fn()  # warm: the first call may start the ControlMaster or fill a cache
    return statistics.median(timed(fn) for _ in range(calls))


def run(argv: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, capture_output=True, check=True, env=env, timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=15)
    args = parser.parse_args()
    from tests.fakes import remote_engine

    missing = remote_engine.missing_tools()
    if missing:
        print("bench_remote_engine: " + "; ".join(missing), file=sys.stderr)
        return 1

    engine = remote_engine.ensure_remote_engine(lambda line: print("  " + line))
    build = engine.recorded_timings().get("image_build")
    print(
        "1. engine image, first build on this machine:",
        f"{build:.1f} s" if build else "not recorded",
    )

    private = remote_engine.RemoteEngine(f"bottle-dash-remote-bench-{uuid.uuid4().hex[:6]}")
    try:
        started = time.perf_counter()
        private.ensure()
        took = time.perf_counter() - started
        print(f"2. start of a new instance (create, dockerd, sshd, first ssh): {took:.2f} s")
        down = timed(private.stop)
        up = timed(private.start)
        print(f"   stop(): {ms(down)}   start() until docker answers over ssh: {ms(up)}")
    finally:
        private.teardown()

    local_env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    local_ps = median_of(args.calls, lambda: run(["docker", "ps"], local_env))
    mux_ps = median_of(
        args.calls, lambda: run(["docker", "-H", engine.url, "ps"], engine.environ())
    )
    nomux_env = engine.environ(mux=False)
    nomux_ps = median_of(args.calls, lambda: run(["docker", "-H", engine.url, "ps"], nomux_env))
    ssh_mux = median_of(args.calls, lambda: run(engine.ssh_argv("true")))
    ssh_nomux = median_of(args.calls, lambda: run(engine.ssh_argv("true", mux=False)))
    print(f"3. ssh NAME true, median of {args.calls}:")
    print(f"   ControlMaster warm             {ms(ssh_mux)}")
    print(f"   no ControlMaster               {ms(ssh_nomux)}")
    print(f"   docker ps, median of {args.calls}:")
    print(f"   local engine                   {ms(local_ps)}")
    print(f"   over ssh, ControlMaster warm   {ms(mux_ps)}   {mux_ps / local_ps:5.2f}x local")
    print(f"   over ssh, no ControlMaster     {ms(nomux_ps)}   {nomux_ps / local_ps:5.2f}x local")

    import docker

    os.environ["PATH"] = engine.env()["PATH"]
    client = engine.sdk_client()
    local = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    sdk_warm = median_of(args.calls, client.ping)

    def fresh_ping() -> None:
        fresh = engine.sdk_client()
        fresh.ping()
        fresh.close()

    sdk_fresh = median_of(args.calls, fresh_ping)
    sdk_local = median_of(args.calls, local.ping)
    client.close()
    with tempfile.TemporaryDirectory(prefix="bdr-") as folder:
        sock = Path(folder) / "docker.sock"
        url = engine.forward_socket(sock)
        try:
            forwarded = docker.DockerClient(base_url=url)
            sdk_fwd = median_of(args.calls, forwarded.ping)
            fwd_ps = median_of(args.calls, lambda: run(["docker", "-H", url, "ps"], local_env))
            forwarded.close()
        finally:
            engine.cancel_forward(sock)
    local.close()
    print(f"   docker-py ping(), local        {ms(sdk_local)}")
    print(f"   docker-py ping(), one client   {ms(sdk_warm)}   {sdk_warm / sdk_local:5.2f}x local")
    print(f"   docker-py new client + ping()  {ms(sdk_fresh)}   (a version call, then ping)")
    print("4. the engine's socket forwarded over the ControlMaster (ssh -O forward -L):")
    print(f"   docker-py ping()               {ms(sdk_fwd)}   {sdk_fwd / sdk_local:5.2f}x local")
    print(f"   docker -H unix://… ps          {ms(fwd_ps)}   {fwd_ps / local_ps:5.2f}x local")
    return 0


if __name__ == "__main__":
    sys.exit(main())
