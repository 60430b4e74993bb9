"""What the egress sidecar costs, against the same work without it, in one run.

Needs a Docker engine; uses the offline test image, the sidecar image and temporary XDG
dirs (the operator's own agents and bottles are never touched).

0. The meter's own cost, in process: per chunk of a streamed answer, and for the
   ``message_start`` chunk (the meter made, the event parsed).
1. Time to first streamed token, through the sidecar against straight to the upstream,
   30 runs each, medians and the ratio (goal: <= 1.1x + 5 ms). The sidecar listens on the
   bottle's network only, which has no host address: the clocks run in two client
   containers (the sidecar image's python), one on the bottle's network (through the
   sidecar's proxy), one on the outer network (direct):
   - https, warm: a second request on an open TLS connection (what claude does: it keeps
     its connection to the API); through the sidecar that is CONNECT, TLS with the
     bottle's CA, the request, the sidecar's own TLS to the upstream;
   - https, new connection: the same with the handshakes in the figure;
   - a Messages API stream (``POST /v1/messages`` to the stand-in API of
     tests/fakes/anthropic_api.py, the agent's ``api_base``): the answers the sidecar
     meters, to the first ``content_block_delta``, warm and new connection;
   - plain http (the proxy's request path alone).
   For "before" figures, run this file from a checkout before metering (it says so).
2. ``up`` of a sealed agent (sidecar, two networks, CA, policy) against ``up`` of the same
   agent unsealed (one network, no sidecar), alternately, 3 runs each: medians and ratio.

Prints figures; asserts nothing about time. Everything it creates is removed at the end.
Usage: ``.venv/bin/python benchmarks/bench_egress.py``
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import REPO, ms, scratch

TTFT_RUNS = 30
UP_RUNS = 3
HOST = "bench.egress.invalid"
#: The agent's api_base: the stand-in Messages API (metered by the sidecar).
API = "api.bench.invalid"
API_PORT = 8443
MESSAGE = json.dumps(
    {"model": "claude-sonnet-4-5-20250929", "stream": True, "max_tokens": 64,
     "messages": [{"role": "user", "content": "bench " * 200}]}
)  # fmt: skip
API_REQUEST = (
    f"POST /v1/messages HTTP/1.1\r\nHost: {API}:{API_PORT}\r\n"
    f"content-type: application/json\r\ncontent-length: {len(MESSAGE)}\r\n\r\n{MESSAGE}"
).encode()


def first_token(addr: tuple[str, int], target: str) -> float:
    """Seconds from connect to the first ``data:`` line of ``GET target``."""
    start = time.perf_counter()
    with socket.create_connection(addr, timeout=30) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        _read_event(conn)
        return time.perf_counter() - start


def _read_event(conn: socket.socket, got: bytes = b"", mark: bytes = b"data: token 0") -> bytes:
    """Read ``conn`` until the first token event (``mark``)."""
    while mark not in got:
        chunk = conn.recv(4096)
        if not chunk:
            raise RuntimeError(f"closed before the first token: {got[:200]!r}")
        got += chunk
    return got


def tls_first_token(
    addr: tuple[str, int], trust: Path, *, via_proxy: bool, warm: bool, api: bool = False
) -> float:
    """Seconds to the first ``data:`` line of ``GET /stream`` over HTTPS (through the
    proxy with CONNECT when ``via_proxy``); ``warm``: of a second request on the same
    connection, the first one read to its end before the clock starts. ``api``: a
    Messages API stream of the stand-in instead, to its first text delta."""
    context = ssl.create_default_context(cafile=str(trust))
    request = f"GET /stream?keep HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    target, mark = f"{HOST}:443", b"data: token 0"
    if api:
        request, target, mark = API_REQUEST, f"{API}:{API_PORT}", b"content_block_delta"
    name = target.rsplit(":", 1)[0]
    start = time.perf_counter()
    with socket.create_connection(addr, timeout=30) as raw:
        if via_proxy:
            raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = raw.recv(4096)
                if not chunk:
                    raise RuntimeError(f"CONNECT refused: {reply!r}")
                reply += chunk
            if not reply.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"CONNECT refused: {reply[:200]!r}")
        with context.wrap_socket(raw, server_hostname=name) as conn:
            if warm:
                conn.sendall(request)
                got = b""
                while not got.endswith(b"0\r\n\r\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        raise RuntimeError(f"closed mid-answer: {got[-200:]!r}")
                    got += chunk
                start = time.perf_counter()
            conn.sendall(request)
            _read_event(conn, mark=mark)
            return time.perf_counter() - start


def report(title: str, via: list[float], straight: list[float]) -> None:
    mv, md = statistics.median(via), statistics.median(straight)
    budget = 1.1 * md + 0.005
    print(f"time to first streamed token, {title} (median of {len(via)})")
    print(f"  through the sidecar  {ms(mv)}")
    print(f"  direct               {ms(md)}")
    print(
        f"  ratio {mv / md:.2f}x; goal <= 1.1x + 5 ms = {ms(budget).strip()}: "
        + ("met" if mv <= budget else "NOT met")
    )


def measure(
    box: str, kind: str, addr: tuple[str, int], trust: str, via_proxy: bool, warm: bool
) -> list[float]:
    """``TTFT_RUNS`` timings (seconds) taken in the container ``box`` (``measure_here``),
    after one untimed run that warms the path."""
    argv = [
        "docker", "exec", box, "python3", "/bench/bench_egress.py", "--measure", kind,
        addr[0], str(addr[1]), trust, str(int(via_proxy)), str(int(warm)), str(TTFT_RUNS + 1),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode:
        raise RuntimeError(f"{kind} in {box}: {done.stderr.strip()[-600:]}")
    return list(json.loads(done.stdout))[1:]


def measure_here(argv: list[str]) -> int:
    """In a client container: time ``kind`` requests ``runs`` times, print the seconds."""
    kind, host, port, trust, via, warm, runs = argv
    addr, via_proxy, hot = (host, int(port)), via == "1", warm == "1"
    times = []
    for _ in range(int(runs)):
        if kind == "http":
            times.append(first_token(addr, f"http://{HOST}/stream" if via_proxy else "/stream"))
        else:
            path = Path(trust)
            times.append(
                tls_first_token(addr, path, via_proxy=via_proxy, warm=hot, api=kind == "api")
            )
    print(json.dumps(times))
    return 0


def meter_cost() -> None:
    """What the sidecar's meter adds to each chunk of a streamed answer, in process (the
    stand-in's events of a 4000-character answer): the figure the chunk waits for."""
    try:
        from backends.egress.meter import ResponseMeter
    except ImportError:
        print("meter: none in this checkout (before metering)")
        return
    from tests.fakes import anthropic_api

    body = {"model": "claude-sonnet-4-5-20250929", "messages": [{"role": "user", "content": "x"}]}
    events = anthropic_api.sse_events(body, [anthropic_api.Rule("x", "y" * 4000)])
    chunks = [f"event: {e}\ndata: {json.dumps(d)}\n\n".encode() for e, d in events]
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        meter = ResponseMeter(
            path="/v1/messages", status=200, content_type="text/event-stream", encoding=""
        )
        for chunk in chunks:
            meter.feed(chunk)
    per_chunk = (time.perf_counter() - start) / runs / len(chunks)
    start = time.perf_counter()
    for _ in range(runs * 10):
        ResponseMeter(
            path="/v1/messages", status=200, content_type="text/event-stream", encoding=""
        ).feed(chunks[0])
    first = (time.perf_counter() - start) / (runs * 10)
    print(f"meter, in process ({len(chunks)} chunks a stream, median host load)")
    print(f"  per chunk            {per_chunk * 1e6:7.1f} us")
    print(f"  message_start chunk  {first * 1e6:7.1f} us (meter made, event parsed)")


def ip_on(container: str, network: str) -> str:
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", container],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return str(json.loads(out)[network]["IPAddress"])


def main() -> int:
    folder = scratch("bench-egress-")
    from backends.base import LABEL_AGENT, AgentSpec
    from backends.docker.backend import DockerBackend
    from backends.egress import plan as egress
    from backends.egress.image import ensure_sidecar_image
    from backends.egress.policy import CA_CERT_FILE
    from backends.egress.spec import EgressSpec
    from tests.fakes import image
    from tests.fakes.egress_upstream import make_certs

    meter_cost()
    sidecar_image = ensure_sidecar_image(print)
    test_image = image.ensure_image()
    run_id = uuid.uuid4().hex[:6]
    backend = DockerBackend()
    agent = f"bench-{run_id}"
    upstream = f"{agent}-upstream"
    made: list[str] = [agent]
    made_boxes: list[str] = []
    try:
        upstream_ca = make_certs(folder / "certs", [HOST, API])
        spec = AgentSpec(
            name=agent,
            image=test_image,
            egress=EgressSpec(
                allow=(f"{HOST}:80", HOST),
                upstream_ca=upstream_ca,
                credential="none",
                api_base=f"https://{API}:{API_PORT}",
            ),
        )
        backend.launch(backend.prepare(spec))
        outer = egress.outer_network_name(agent)
        subprocess.run(
            [
                "docker", "run", "-d", "--name", upstream, "--label", f"{LABEL_AGENT}={agent}",
                "--network", outer, "--network-alias", HOST,
                "-v", f"{REPO / 'tests' / 'fakes'}:/fakes:ro",
                "-v", f"{upstream_ca.parent}:/certs:ro",
                sidecar_image, "python3", "-u", "/fakes/egress_upstream.py",
            ],
            check=True, capture_output=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while (
            b"upstream listening"
            not in subprocess.run(
                ["docker", "logs", upstream], capture_output=True, check=False
            ).stdout
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the upstream did not start")
            time.sleep(0.2)
        subprocess.run(
            [
                "docker", "run", "-d", "--name", f"{upstream}-api",
                "--label", f"{LABEL_AGENT}={agent}", "--network", outer, "--network-alias", API,
                "-v", f"{REPO / 'tests' / 'fakes'}:/fakes:ro",
                "-v", f"{upstream_ca.parent}:/certs:ro",
                sidecar_image, "python3", "-u", "/fakes/anthropic_api.py",
                "--listen", f"0.0.0.0:{API_PORT}",
                "--tls-cert", "/certs/server.pem", "--tls-key", "/certs/server.key",
            ],
            check=True, capture_output=True,
        )  # fmt: skip
        # The sidecar listens on the bottle's network only, which has no host address: the
        # clocks run in two client containers, one there (through the sidecar), one on the
        # outer network (direct), each timing its own requests.
        via_box, direct_box = f"{agent}-via", f"{agent}-direct"
        made_boxes.extend([via_box, direct_box])
        for box, network in ((via_box, f"bottle-{agent}-net"), (direct_box, outer)):
            subprocess.run(
                [
                    "docker", "run", "-d", "--name", box, "--label", f"{LABEL_AGENT}={agent}",
                    "--network", network, "-v", f"{REPO / 'benchmarks'}:/bench:ro",
                    "-v", f"{upstream_ca.parent}:/certs:ro", sidecar_image,
                    "python3", "-c", "import time; time.sleep(100000)",
                ],
                check=True, capture_output=True,
            )  # fmt: skip
        # The outer network's range is private: allowed as `bottle-dash allow` would.
        subnet = subprocess.run(
            ["docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", outer],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        egress.allow_live(agent, subnet)
        bottle_ca = egress.egress_dir(agent) / CA_CERT_FILE
        subprocess.run(["docker", "cp", str(bottle_ca), f"{via_box}:/tmp/ca.pem"], check=True)
        proxy = (ip_on(egress.sidecar_name(agent), f"bottle-{agent}-net"), 8080)
        ways = {
            "https": ((ip_on(upstream, outer), 443), "/certs/ca.pem"),
            "api": ((ip_on(f"{upstream}-api", outer), API_PORT), "/certs/ca.pem"),
            "http": ((ip_on(upstream, outer), 80), ""),
        }
        for kind, title in (("https", "https"), ("api", "Messages API stream (metered)")):
            for warm in (True, False):
                direct, trust = ways[kind]
                via = measure(via_box, kind, proxy, "/tmp/ca.pem", True, warm)
                straight = measure(direct_box, kind, direct, trust, False, warm)
                way = "warm connection" if warm else "new connection"
                report(f"{title}, {way}", via, straight)
        usage = egress.egress_dir(agent) / "usage.log"
        lines = usage.read_text().splitlines() if usage.exists() else []
        print(f"  usage log: {len(lines)} lines (none before metering)")
        via = measure(via_box, "http", proxy, "", True, False)
        straight = measure(direct_box, "http", ways["http"][0], "", False, False)
        report("plain http", via, straight)

        sealed_t, open_t = [], []
        for i in range(UP_RUNS):
            for sealed, sink in ((True, sealed_t), (False, open_t)):
                name = f"bench-{run_id}-{'s' if sealed else 'o'}{i}"
                made.append(name)
                spec = AgentSpec(name=name, image=test_image, egress=EgressSpec(sealed=sealed))
                plan = backend.prepare(spec)
                start = time.perf_counter()
                backend.launch(plan)
                sink.append(time.perf_counter() - start)
                backend.remove(name, volumes=True)
        a, b = statistics.median(sealed_t), statistics.median(open_t)
        print(f"up (median of {UP_RUNS}, image and sidecar image already built)")
        print(f"  sealed (sidecar)     {ms(a)}")
        print(f"  unsealed             {ms(b)}")
        print(f"  ratio {a / b:.2f}x")
    finally:
        subprocess.run(
            ["docker", "rm", "-f", upstream, f"{upstream}-api", *made_boxes],
            capture_output=True, check=False,
        )  # fmt: skip
        for name in made:
            with contextlib.suppress(Exception):  # already removed: nothing left to do
                backend.remove(name, volumes=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        sys.exit(measure_here(sys.argv[2:]))
    sys.exit(main())
