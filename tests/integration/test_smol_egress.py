"""Shim tier: a sealed smolmachines bottle against the stand-in smolvm, which enforces
``--allow-cidr`` (the machine joins only the internal network of the allowed address).

    [machine] --bottle-<a>-net (internal, no host address)--> [sidecar] --bottle-<a>-out-->
    [upstream: other.egress.invalid]

Every container and network here is made by this test (through the backend or directly)
and labelled with the run's agent; names under ``.invalid`` resolve only through the
engine's DNS on the outer network.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from backends import run
from backends.base import LABEL_AGENT, AgentSpec
from backends.egress import plan as egress
from backends.egress.spec import EgressSpec
from backends.registry import get_backend
from backends.smolmachines.bottle import SmolBottle
from tests.fakes.smolvm_support import standin_machines
from tests.integration.egress_world import container_ip, start_upstream
from tests.support import agent_name

pytestmark = pytest.mark.shim

OTHER = "other.egress.invalid"


def machine_nets(bottle: str) -> list[str]:
    out = run.run(
        ["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}",
         f"smolvm-standin-{bottle}"], check=True,
    ).stdout  # fmt: skip
    return sorted(json.loads(out))


def nc(bottle: SmolBottle, target: str, port: int, request: str = "") -> str:
    """One raw request (``\\r\\n`` escapes for printf) to ``target:port`` from the guest;
    ``nc -w 3`` gives up on an address it cannot reach."""
    script = f'printf "{request}" | {{ cat; sleep 2; }} | nc -w 3 "$1" "$2"; echo "rc=$?"'
    done = bottle.exec(f"set -- {target} {port}; {script}", timeout=60)
    return done.stdout + done.stderr


def test_sealed_machine_reaches_only_its_sidecar(
    standin: str,
    egress_image: str,
    tmp_path: Path,
) -> None:
    backend = get_backend("smolmachines")
    agent = agent_name("seal")
    spec = AgentSpec(
        name=agent,
        backend="smolmachines",
        image=standin,
        egress=EgressSpec(allow=(f"{OTHER}:80",), credential="none"),
    )
    steps: list[str] = []
    plan = backend.prepare(spec)
    upstream = ""
    try:
        bottle = backend.launch(plan, steps.append)
        assert isinstance(bottle, SmolBottle)
        sidecar_ip = container_ip(egress.sidecar_name(agent), f"bottle-{agent}-net")
        # Sidecar first; the machine is created with its address and nothing else.
        assert steps.index("starting the egress sidecar") < steps.index(
            f"creating machine bottle-{agent}"
        )
        assert plan.extra["egress"]["allow_cidr"] == f"{sidecar_ip}/32"
        assert machine_nets(plan.bottle) == [f"bottle-{agent}-net"]
        # The guest env of every exec: proxy at the sidecar's address, CA, telemetry off.
        env = bottle.exec("env", timeout=60).stdout
        assert f"HTTPS_PROXY=http://{sidecar_ip}:8080" in env
        assert f"http_proxy=http://{sidecar_ip}:8080" in env
        assert f"SSL_CERT_FILE={egress.GUEST_CA}" in env
        assert "DISABLE_TELEMETRY=1" in env
        cert = (Path(plan.extra["egress"]["dir"]) / "mitmproxy-ca-cert.pem").read_text()
        assert bottle.exec(f"cat {egress.GUEST_CA}").stdout == cert
        [info] = [b for b in backend.list_bottles() if b.agent == agent]
        assert info.egress == egress.EGRESS_SEALED

        upstream = start_upstream(agent, egress_image)
        upstream_ip = container_ip(upstream, f"bottle-{agent}-out")
        get = f"GET http://{OTHER}/echo HTTP/1.1\\r\\nHost: {OTHER}\\r\\n\\r\\n"
        # The upstream directly, by address: not reachable from the machine.
        direct = nc(bottle, upstream_ip, 80, get)
        assert "HTTP/1.1" not in direct and "rc=0" not in direct, direct
        # The host holds the gateway of the sidecar's network (smolvm relays from the
        # host), yet a host service on it is out of the machine's reach: only the /32.
        net = json.loads(
            run.run(["docker", "network", "inspect", f"bottle-{agent}-net"], check=True).stdout
        )[0]
        assert net["Internal"] is True
        assert net["Options"].get("com.docker.network.bridge.inhibit_ipv4") != "true"
        gateway = net["IPAM"]["Config"][0]["Gateway"]
        with socket.create_server(("0.0.0.0", 0)) as listener:
            port = listener.getsockname()[1]
            assert "rc=0" not in nc(bottle, gateway, port), "host service reached"
        # Through the proxy: allowed when allowlisted, 403 otherwise.
        allowed = nc(bottle, sidecar_ip, 8080, get)
        assert allowed.startswith("HTTP/1.1 200"), allowed
        bad = "denied.egress.invalid"
        denied_req = f"GET http://{bad}/x HTTP/1.1\\r\\nHost: {bad}\\r\\n\\r\\n"
        denied = nc(bottle, sidecar_ip, 8080, denied_req)
        assert denied.startswith("HTTP/1.1 403"), denied
        assert "denied.egress.invalid:80" in denied
    finally:
        if upstream:
            run.run(["docker", "rm", "-f", upstream])
        backend.remove(agent, volumes=True)
    # rm took the sidecar and its networks with the machine.
    left = run.run(
        ["docker", "ps", "-a", "-q", "--filter", f"label={LABEL_AGENT}={agent}"], check=True
    ).stdout.strip()
    nets = run.run(
        ["docker", "network", "ls", "-q", "--filter", f"label={LABEL_AGENT}={agent}"], check=True
    ).stdout.strip()
    assert (left, nets) == ("", "")
    assert not any(m["name"] == plan.bottle for m in standin_machines())


def test_standin_refuses_an_address_it_cannot_confine(standin: str) -> None:
    """``--allow-cidr`` of an address on a network that is not internal (or of nobody)
    is refused: the stand-in never silently hands a machine the whole network."""
    from tests.fakes.smolvm_support import standin_launcher

    done = run.run(
        [str(standin_launcher()), "machine", "create", "--name", f"bottle-{agent_name('nocidr')}",
         "--image", standin, "--allow-cidr", "192.0.2.1/32"],
        timeout=60,
    )  # fmt: skip
    assert not done.ok and "no container on this host has that address" in done.stderr


def test_up_repairs_a_dead_sidecar_and_the_guest_is_provisioned(
    standin: str,
    egress_image: str,
    tmp_path: Path,
) -> None:
    """Through the CLI: `up` of a sealed machine seeds claude's settings for skipping
    permissions, mounts .git/hooks read-only; with its sidecar removed the machine is
    listed SIDECAR DOWN and reaches nothing; `up` brings the sidecar back and the proxy's
    probe passes again."""
    from tests.fakes.cli_run import bd
    from tests.integration.cli_helpers import write_config

    name = agent_name("repair")
    workspace = tmp_path / "ws"
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    for path in (workspace, *workspace.rglob("*")):
        os.chown(path, 1000, 1000)
    config = tmp_path / "config.toml"
    write_config(
        config,
        {
            name: {
                "backend": "smolmachines",
                "image": standin,
                "workspace": str(workspace),
                "credential": "none",
                "egress_allow": [f"{OTHER}:80"],
            }
        },
    )
    env = {"BOTTLE_DASH_CONFIG": str(config)}

    def ls_row() -> dict[str, Any]:
        rows = json.loads(bd("ls", "--json", env=env).stdout)
        return dict(next(r for r in rows if r["name"] == name))

    def egress_of() -> str:
        return str(ls_row()["egress"])

    def guest(script: str, user: str = "node") -> str:
        done = bd("exec", name, "--user", user, "--", "sh", "-c", script, env=env)
        return done.stdout + done.stderr

    try:
        up = bd("up", name, env=env, timeout=600)
        assert up.returncode == 0, up.stderr
        # Skip-permissions seeding, as in a docker bottle (IS_SANDBOX rides on every exec).
        settings = json.loads(guest("cat ~/.claude/settings.json"))
        assert settings == {"skipDangerousModePermissionPrompt": True}
        assert guest("stat -c '%a %u' ~/.claude ~/.claude/settings.json").split() == [
            "700", "1000", "600", "1000",
        ]  # fmt: skip
        assert "IS_SANDBOX=1" in guest("env")
        # Every exec has no_new_privs, the agent's and root's.
        assert guest("grep NoNewPrivs /proc/self/status").split() == ["NoNewPrivs:", "1"]
        assert guest("grep NoNewPrivs /proc/self/status", "root").split()[-1] == "1"
        # .git is read-only in the machine (hooks and config alike); the workspace is not.
        planted = guest(": > /workspace/.git/hooks/post-checkout && echo PLANTED")
        assert "PLANTED" not in planted and "Read-only" in planted, planted
        config_write = guest("printf '[core]\\n\\thooksPath = /tmp/h\\n' >> /workspace/.git/config")
        assert "Read-only" in config_write, config_write
        assert "WROTE" in guest(": > /workspace/note && echo WROTE")
        assert not (workspace / ".git" / "hooks" / "post-checkout").exists()
        assert "hooksPath" not in (workspace / ".git" / "config").read_text()
        # What the mounts cannot stop is what the dashboard warns about: a symlink that
        # leaves the workspace.
        assert ls_row()["workspace_warnings"] == []
        guest("ln -s /etc/passwd /workspace/link")
        warnings = ls_row()["workspace_warnings"]
        assert any(w.startswith("symlink link leaves the workspace") for w in warnings), warnings

        run.run(["docker", "rm", "-f", egress.sidecar_name(name)], check=True)
        assert egress_of() == egress.EGRESS_SIDECAR_DOWN
        probe = bd("probe", name, "--only", "proxy-denies-host", env=env)
        assert probe.returncode == 1 and probe.stdout.startswith("fail"), probe.stdout

        again = bd("up", name, env=env, timeout=600)
        assert again.returncode == 0, again.stderr
        assert egress_of() == egress.EGRESS_SEALED
        probe = bd("probe", name, "--only", "proxy-denies-host", env=env)
        assert probe.returncode == 0 and probe.stdout.startswith("pass"), probe.stdout
    finally:
        bd("rm", "--volumes", name, env=env)
