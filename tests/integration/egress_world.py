""" "The outside world" of a sealed bottle in the egress tests, and an attacker beside it.

- the upstream: one container of the sidecar image running ``tests/fakes/egress_upstream.py``
  on the sidecar's outer network, answering for ``api.egress.invalid`` and
  ``other.egress.invalid`` (network aliases; names under ``.invalid`` resolve only through
  the engine's DNS there) on 80 and 443 (its certificate from a CA the agent's
  ``upstream_ca`` hands to the sidecar). It logs one line per request it receives: what
  reached the outside. The outer network is private, so the agent's allowlist names its
  range (``bottle-dash allow``'s path: the policy the running sidecar reads);
- the client: a container on the bottle's own network, running
  ``tests/fakes/proxy_client.py``: a turned agent's view of the sidecar, with a TLS and an
  HTTP/2 client the busybox test image does not have.

Every container here is labelled with the test's agent, so the run's sweep removes it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from backends import run
from backends.base import LABEL_AGENT
from backends.egress import plan as egress
from backends.egress.policy import CA_CERT_FILE
from tests.fakes.egress_upstream import make_certs
from tests.support import FAKES

API = "api.egress.invalid"
OTHER = "other.egress.invalid"
TOKEN = "sk-ant-oat01-" + "R3al" * 20 + "-xyzAA"


def make_upstream_certs(where: Path, names: tuple[str, ...] = (API, OTHER)) -> Path:
    """A CA and a server certificate for ``names`` (default API and OTHER); returns the CA
    certificate."""
    return make_certs(where, names)


def log_lines(agent: str) -> list[dict[str, Any]]:
    """The sidecar's decision log of ``agent``, one dict a line (none yet: empty)."""
    try:
        text = egress.egress_log(agent).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def container_ip(name: str, network: str) -> str:
    out = run.run(
        ["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", name],
        check=True,
    ).stdout
    return str(json.loads(out)[network]["IPAddress"])


def network_subnet(network: str) -> str:
    out = run.run(["docker", "network", "inspect", network], check=True).stdout
    return str(json.loads(out)[0]["IPAM"]["Config"][0]["Subnet"])


def wait_upstream(name: str) -> None:
    """Wait until the test upstream container ``name`` listens."""
    deadline = time.monotonic() + 30
    while b"upstream listening" not in (
        subprocess.run(["docker", "logs", name], capture_output=True, check=False).stdout
    ):
        assert time.monotonic() < deadline, "the test upstream did not start"
        time.sleep(0.2)


def start_upstream(agent: str, image: str, certs: Path | None = None) -> str:
    """The upstream on the agent's outer network, its range allowed; returns its name."""
    name = f"{agent}-upstream"
    mounts = ["-v", f"{FAKES}:/fakes:ro"]
    if certs is not None:
        mounts += ["-v", f"{certs.parent}:/certs:ro"]
    run.run(
        [
            "docker", "run", "-d", "--name", name, "--label", f"{LABEL_AGENT}={agent}",
            "--network", egress.outer_network_name(agent),
            "--network-alias", API, "--network-alias", OTHER,
            *mounts, image, "python3", "-u", "/fakes/egress_upstream.py",
        ],
        check=True,
    )  # fmt: skip
    wait_upstream(name)
    grant_outer_range(agent)
    return name


def grant_outer_range(agent: str) -> str:
    """Allow the outer network's (private) range, as `bottle-dash allow` would."""
    subnet = network_subnet(egress.outer_network_name(agent))
    assert egress.allow_live(agent, subnet), "the agent has no sealed bottle"
    return subnet


def seen(upstream: str) -> list[dict[str, Any]]:
    """What reached the upstream: one record per request."""
    out = subprocess.run(["docker", "logs", upstream], capture_output=True, text=True).stdout
    return [json.loads(ln) for ln in out.splitlines() if ln.startswith('{"seen"')]


def start_client(agent: str, image: str, network: str | None = None) -> str:
    """A container on the bottle's own network holding ``proxy_client.py`` and the
    bottle's CA certificate (``/tmp/ca.pem``); returns its name."""
    name = f"{agent}-client"
    run.run(
        [
            "docker", "run", "-d", "--name", name, "--label", f"{LABEL_AGENT}={agent}",
            "--network", network or f"bottle-{agent}-net", "-v", f"{FAKES}:/fakes:ro",
            image, "python3", "-c", "import time; time.sleep(100000)",
        ],
        check=True,
    )  # fmt: skip
    ca = egress.egress_dir(agent) / CA_CERT_FILE
    run.run(["docker", "cp", str(ca), f"{name}:/tmp/ca.pem"], check=True)
    return name


def client(name: str, *args: str, timeout: float = 90) -> dict[str, Any]:
    """Run ``proxy_client.py ARGS`` in the client container; its JSON answer."""
    done = run.run(
        ["docker", "exec", name, "python3", "/fakes/proxy_client.py", *args], timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def remove(*names: str) -> None:
    for name in names:
        if name:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
