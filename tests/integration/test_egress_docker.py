"""Sealed docker bottles against a real engine: the network, the sidecar's real mitmdump
and broker addon, and a test upstream as "the outside".

Topology (every network and container here is made by this module, through the backend
or directly, and labelled with the run's agent so the sweep removes it):

    [bottle] [client] --bottle-<a>-net (internal, no host address)--> [sidecar]
        --bottle-<a>-out--> [upstream: api.egress.invalid, other.egress.invalid]

The upstream answers on 80 and 443 (its certificate is signed by a CA made here, which
the agent's ``upstream_ca`` hands to the sidecar); its private range is allowed
(``egress_world``). Names under ``.invalid`` resolve only through the engine's DNS on the
outer network; nothing leaves the host. The client is an attacker on the bottle's own
network with a TLS and an HTTP/2 client.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from backends import paths, run
from backends.base import AgentSpec, LaunchError
from backends.docker.backend import DockerBackend
from backends.egress import plan as egress
from backends.egress.spec import EgressSpec
from backends.probes import suite
from backends.probes.base import PASS
from tests.integration.egress_world import (
    API,
    OTHER,
    TOKEN,
    client,
    container_ip,
    log_lines,
    make_upstream_certs,
    start_client,
    start_upstream,
)
from tests.integration.egress_world import remove as remove_containers
from tests.integration.egress_world import wait_upstream as wait_upstream
from tests.support import agent_name

pytestmark = pytest.mark.docker


def in_bottle(bottle: str, script: str, timeout: float = 30) -> str:
    done = run.run(["docker", "exec", bottle, "sh", "-c", script], timeout=timeout)
    return done.stdout + done.stderr


def proxy_request(agent: str, request: str) -> str:
    """Send one raw HTTP request (``\\r\\n`` escapes for printf) to the sidecar's proxy
    from inside the bottle of ``agent``."""
    script = f'printf "{request}" | {{ cat; sleep 3; }} | nc {egress.sidecar_name(agent)} 8080'
    return in_bottle(f"bottle-{agent}", script)


def proxy_get(
    agent: str, target: str, host: str | None = None, *headers: str, scheme: str = "http"
) -> str:
    """``GET <scheme>://<target>`` through the proxy (``Host: host``, default the target)."""
    lines = [f"GET {scheme}://{target} HTTP/1.1", f"Host: {host or target.split('/')[0]}"]
    lines += headers
    return proxy_request(agent, "".join(f"{line}\\r\\n" for line in lines) + "\\r\\n")


@pytest.fixture(scope="module")
def sealed(
    test_image: str, egress_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One sealed bottle, its sidecar, the upstream on the sidecar's outer network and an
    attacker's client on the bottle's network."""
    mp = pytest.MonkeyPatch()
    state = tmp_path_factory.mktemp("egress-state")
    mp.setenv("XDG_STATE_HOME", str(state))
    mp.setenv("BOTTLE_TEST_TOKEN", TOKEN)
    certs = make_upstream_certs(tmp_path_factory.mktemp("upstream-certs"))
    agent = agent_name("sealed")
    spec = AgentSpec(
        name=agent,
        image=test_image,
        egress=EgressSpec(
            allow=(f"{OTHER}:80", OTHER),
            credential="env:BOTTLE_TEST_TOKEN",
            api_base=f"https://{API}",
            upstream_ca=certs,
        ),
    )
    backend = DockerBackend()
    steps: list[str] = []
    plan = backend.prepare(spec)
    backend.launch(plan, steps.append)
    upstream = start_upstream(agent, egress_image, certs)
    attacker = start_client(agent, egress_image)
    yield {
        "agent": agent,
        "plan": plan,
        "steps": steps,
        "upstream": upstream,
        "client": attacker,
        "state": state,
    }
    remove_containers(upstream, attacker)
    backend.remove(agent, volumes=True)
    mp.undo()


@pytest.fixture(autouse=True)
def _module_state(sealed: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The bottle's host state is the module's (the per-test isolation moves it)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(sealed["state"]))
    monkeypatch.setenv("BOTTLE_TEST_TOKEN", TOKEN)


def test_sealed_network_is_internal_without_host_address(sealed: dict[str, Any]) -> None:
    agent = sealed["agent"]
    out = run.run(
        ["docker", "network", "inspect", f"bottle-{agent}-net"],
        check=True,
    ).stdout
    net = json.loads(out)[0]
    assert net["Internal"] is True
    assert net["Options"]["com.docker.network.bridge.inhibit_ipv4"] == "true"
    bottle_nets = json.loads(
        run.run(["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}",
                 f"bottle-{agent}"], check=True).stdout
    )  # fmt: skip
    assert list(bottle_nets) == [f"bottle-{agent}-net"]
    sidecar_nets = json.loads(
        run.run(["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}",
                 egress.sidecar_name(agent)], check=True).stdout
    )  # fmt: skip
    assert sorted(sidecar_nets) == sorted([f"bottle-{agent}-net", f"bottle-{agent}-out"])
    # The sidecar came up before the bottle.
    steps = sealed["steps"]
    assert steps.index("starting the egress sidecar") < steps.index("creating the container")
    assert steps.index("waiting for the egress proxy") < steps.index("running")


def test_denied_host_gets_403_naming_host_and_key_and_a_log_line(sealed: dict[str, Any]) -> None:
    agent = sealed["agent"]
    reply = proxy_get(agent, "denied.egress.invalid/x")
    assert reply.startswith("HTTP/1.1 403"), reply
    assert "denied.egress.invalid:80" in reply and "egress_allow" in reply
    connect = "CONNECT denied.egress.invalid:443 HTTP/1.1\\r\\nHost: denied.egress.invalid:443"
    reply = proxy_request(agent, connect + "\\r\\n\\r\\n")
    assert reply.startswith("HTTP/1.1 403"), reply
    lines = log_lines(agent)
    denied = [ln for ln in lines if ln["host"] == "denied.egress.invalid"]
    assert [(ln["decision"], ln["port"], ln["check"]) for ln in denied] == [
        ("deny", 80, "request"),
        ("deny", 443, "connect"),
    ]


def test_host_header_mismatch_is_denied(sealed: dict[str, Any]) -> None:
    agent = sealed["agent"]
    reply = proxy_get(agent, f"{OTHER}/echo", "denied.egress.invalid")
    assert reply.startswith("HTTP/1.1 403"), reply
    assert "does not match" in reply


def test_allowed_host_passes_and_other_credentials_are_untouched(sealed: dict[str, Any]) -> None:
    agent = sealed["agent"]
    reply = proxy_get(agent, f"{OTHER}/echo", None, "Authorization: Bearer github-xyz")
    assert reply.startswith("HTTP/1.1 200"), reply
    echoed = json.loads(reply[reply.index("{") :])
    assert echoed["headers"]["authorization"] == "Bearer github-xyz"


def test_placeholder_is_swapped_for_the_api_only(sealed: dict[str, Any]) -> None:
    agent = sealed["agent"]
    bottle = f"bottle-{agent}"
    holder = in_bottle(bottle, 'printf %s "$CLAUDE_CODE_OAUTH_TOKEN"')
    assert holder and holder != TOKEN and len(holder) == len(TOKEN)
    assert holder.startswith("sk-ant-oat01-")
    reply = proxy_get(agent, f"{API}/echo", None, f"Authorization: Bearer {holder}", scheme="https")
    assert reply.startswith("HTTP/1.1 200"), reply
    echoed = json.loads(reply[reply.index("{") :])
    assert echoed["headers"]["authorization"] == f"Bearer {TOKEN}"
    # The same placeholder to an allowlisted host that is not the API: refused, logged.
    reply = proxy_get(agent, f"{OTHER}/echo", None, f"x-api-key: {holder}")
    assert reply.startswith("HTTP/1.1 403"), reply
    assert "placeholder" in reply
    last = [ln for ln in log_lines(agent) if ln["check"] == "placeholder"]
    assert last and last[-1]["host"] == OTHER and last[-1]["decision"] == "deny"
    # The log never holds either value.
    text = egress.egress_log(agent).read_text()
    assert TOKEN not in text and holder not in text


def test_real_credential_is_nowhere_in_the_bottle(sealed: dict[str, Any]) -> None:
    agent = sealed["agent"]
    bottle = f"bottle-{agent}"
    found = in_bottle(
        bottle,
        f"grep -rl {TOKEN[:30]} /home /workspace /tmp /etc 2>/dev/null; env; "
        "cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'",
    )
    assert TOKEN not in found
    inspect = run.run(["docker", "inspect", bottle], check=True).stdout
    assert TOKEN not in inspect
    assert TOKEN not in paths.plan_file(agent).read_text()
    assert TOKEN not in run.run(["docker", "inspect", egress.sidecar_name(agent)]).stdout
    cred = egress.egress_dir(agent) / "credential"
    assert cred.read_text() == TOKEN
    assert cred.stat().st_mode & 0o777 == 0o600


def test_sse_streams_through_the_proxy(sealed: dict[str, Any]) -> None:
    """The first event arrives before the upstream has sent the second (which it does only
    after /release): a buffering proxy would hang here, not pass slowly."""
    agent = sealed["agent"]
    proxy = f"{egress.sidecar_name(agent)}:8080"
    got = client(sealed["client"], "sse", proxy, f"http://{OTHER}/sse", f"http://{OTHER}/release")
    assert got == {"first_before_release": True, "released": True}, got


def test_no_route_out_of_the_bottle(sealed: dict[str, Any]) -> None:
    agent = sealed["agent"]
    bottle = f"bottle-{agent}"
    upstream_ip = container_ip(sealed["upstream"], egress.outer_network_name(agent))
    outer = json.loads(
        run.run(
            ["docker", "network", "inspect", egress.outer_network_name(agent)], check=True
        ).stdout
    )[0]
    gateway = outer["IPAM"]["Config"][0]["Gateway"]
    # A host service bound to 0.0.0.0, reachable through the outer network's gateway.
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        script = (
            f"for t in '{upstream_ip} 80' '{gateway} {port}' "
            f"'{egress.sidecar_name(agent)} 22' '{egress.sidecar_name(agent)} 8081'; do "
            "set -- $t; if echo | timeout 5 nc -w 3 $1 $2 >/dev/null 2>&1; then echo OPEN $t; "
            "else echo CLOSED $t; fi; done; "
            f"timeout 8 nslookup {OTHER} >/dev/null 2>&1 && echo DNS-ANSWER || echo DNS-NONE; "
            "timeout 8 nslookup outside.invalid >/dev/null 2>&1 "
            "&& echo DNS-ANSWER2 || echo DNS-NONE2"
        )
        out = in_bottle(bottle, script, timeout=90)
    finally:
        listener.close()
    assert "OPEN" not in out, out
    assert out.count("CLOSED") == 4, out
    assert "DNS-NONE" in out and "DNS-NONE2" in out, out


def test_sidecar_down_is_listed_and_up_repairs_it(sealed: dict[str, Any]) -> None:
    agent = sealed["agent"]
    backend = DockerBackend()
    run.run(["docker", "rm", "-f", egress.sidecar_name(agent)], check=True)
    info = next(i for i in backend.list_bottles() if i.agent == agent)
    assert info.egress == "sidecar down"
    recorded = paths.saved_plan(agent)  # with the upstream's range allowed since
    assert recorded is not None
    backend.launch(recorded, lambda _s: None)
    info = next(i for i in backend.list_bottles() if i.agent == agent)
    assert info.egress == "sealed"
    reply = proxy_get(agent, f"{OTHER}/echo")
    assert reply.startswith("HTTP/1.1 200"), reply


def test_unsealed_agent_is_said_so_and_a_sealed_bottle_is_not_reused(
    test_image: str, sealed: dict[str, Any]
) -> None:
    backend = DockerBackend()
    spec = AgentSpec(name=sealed["agent"], image=test_image, egress=EgressSpec(sealed=False))
    plan = backend.prepare(spec)
    assert plan.extra["egress"]["sealed"] is False
    assert "UNSEALED" in plan.extra["egress"]["warning"]
    assert egress.SKIP_PERMISSIONS not in plan.claude_args
    with pytest.raises(LaunchError, match="unsealed"):
        backend.launch(plan)


def _tls_get(sealed: dict[str, Any], target: str, sni: str, host: str) -> str:
    """``GET /echo`` with ``Host: host`` over TLS with ``sni`` in a tunnel to ``target``
    (the bottle's CA trusted, as in the bottle), from the attacker's client on the bottle's
    network; the reply, or what failed."""
    request = f"GET /echo HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    proxy = f"{egress.sidecar_name(sealed['agent'])}:8080"
    got = client(sealed["client"], "tls", proxy, target, sni, request.encode().hex(), "/tmp/ca.pem")
    if not str(got["connect"]).startswith("HTTP/1.1 200"):
        return f"tunnel refused: {got['connect']}"
    return str(got.get("error") or got["reply"])


def test_sni_must_name_the_tunnels_host(sealed: dict[str, Any]) -> None:
    """Domain fronting by SNI: a tunnel to an allowed host carrying a ClientHello for
    another name gets no handshake (refused before any certificate), whether that name is
    denied or allowed elsewhere; a tunnel to a denied host is refused at CONNECT whatever
    the SNI; the Host header inside the TLS must match too. The allowed case reaches the
    upstream, so the refusals are the checks, not a broken tunnel."""
    agent = sealed["agent"]
    ok = _tls_get(sealed, f"{OTHER}:443", OTHER, OTHER)
    assert ok.startswith("HTTP/1.1 200"), ok
    assert json.loads(ok[ok.index("{") :])["path"] == "/echo"
    for sni in ("denied.egress.invalid", API):
        fronted = _tls_get(sealed, f"{OTHER}:443", sni, OTHER)
        assert fronted.startswith("handshake failed"), (sni, fronted)
    reverse = _tls_get(sealed, "denied.egress.invalid:443", OTHER, OTHER)
    assert reverse.startswith("tunnel refused: HTTP/1.1 403"), reverse
    host_header = _tls_get(sealed, f"{OTHER}:443", OTHER, "denied.egress.invalid")
    assert host_header.startswith("HTTP/1.1 403") and "does not match" in host_header
    sni_denials = [
        ln for ln in log_lines(agent) if ln["check"] == "sni" and ln["decision"] == "deny"
    ]
    assert {ln["host"] for ln in sni_denials} == {OTHER}, sni_denials
    assert any("denied.egress.invalid" in ln["reason"] for ln in sni_denials)
    assert any(API in ln["reason"] for ln in sni_denials)


def test_domain_fronting_probe_on_the_test_image(sealed: dict[str, Any]) -> None:
    """The probe shows the same from inside the bottle (busybox nc): HTTP Host, TLS SNI
    in a tunnel to an allowed host, and the reverse; its control gets a ServerHello."""
    run_ = suite.run_suite(DockerBackend(), sealed["agent"], ["domain-fronting"])
    (result,) = run_.results
    assert result.outcome == PASS, result
    assert "SNI bottle-probe-denied.invalid" in result.evidence, result
    assert "server-hello" in result.evidence, result
