"""Metering through a real sidecar: a sealed docker bottle's mitmdump and broker addon
between a client on the bottle's network and the stand-in Messages API
(tests/fakes/anthropic_api.py, served over TLS as the agent's ``api_base`` on the
sidecar's outer network). The usage log gets the exact token counts the stand-in
reported; a spent budget refuses the next request before it leaves, and a raised budget
lets it go, without a restart; the usage log survives a restart of the sidecar.

    [client] --bottle-<a>-net--> [sidecar] --bottle-<a>-out--> [stand-in: api.egress.invalid:8443]

Every container and network is made here and labelled with the run's agent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends import paths, run
from backends.base import LABEL_AGENT, AgentSpec
from backends.docker.backend import DockerBackend
from backends.egress import ledger
from backends.egress import plan as egress
from backends.egress.spec import EgressSpec
from tests.fakes.cli_run import bd
from tests.fakes.egress_upstream import make_certs
from tests.integration.egress_world import API, TOKEN, client, grant_outer_range, start_client
from tests.integration.egress_world import remove as remove_containers
from tests.support import FAKES, agent_name

pytestmark = pytest.mark.docker

PORT = 8443
MODEL = "claude-sonnet-4-5-20250929"
CACHED = {
    "input_tokens": 21,
    "output_tokens": 432,
    "cache_creation_input_tokens": 1000,
    "cache_creation": {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400},
    "cache_read_input_tokens": 9000,
}


def standin_call(name: str, path: str, body: Any = None) -> Any:
    """A call to the stand-in's own control API, from inside its container."""
    script = (
        "import json, ssl, sys, urllib.request\n"
        "data = sys.argv[2].encode() if len(sys.argv) > 2 else None\n"
        f"url = 'https://127.0.0.1:{PORT}' + sys.argv[1]\n"
        "req = urllib.request.Request(url, data=data, method='POST' if data else 'GET')\n"
        "ctx = ssl._create_unverified_context()\n"
        "print(urllib.request.urlopen(req, timeout=10, context=ctx).read().decode())\n"
    )
    argv = ["docker", "exec", name, "python3", "-c", script, path]
    done = run.run([*argv, json.dumps(body)] if body is not None else argv, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def start_standin(agent: str, image: str, certs: Path) -> str:
    name = f"{agent}-api"
    run.run(
        [
            "docker", "run", "-d", "--name", name, "--label", f"{LABEL_AGENT}={agent}",
            "--network", egress.outer_network_name(agent), "--network-alias", API,
            "-v", f"{FAKES}:/fakes:ro", "-v", f"{certs.parent}:/certs:ro",
            image, "python3", "-u", "/fakes/anthropic_api.py", "--listen", f"0.0.0.0:{PORT}",
            "--tls-cert", "/certs/server.pem", "--tls-key", "/certs/server.key",
        ],
        check=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while "stand-in Anthropic API" not in run.run(["docker", "logs", name]).stdout:
        assert time.monotonic() < deadline, "the stand-in API did not start"
        time.sleep(0.2)
    return name


@pytest.fixture(scope="module")
def world(
    test_image: str, egress_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    mp = pytest.MonkeyPatch()
    state = tmp_path_factory.mktemp("metering-state")
    mp.setenv("XDG_STATE_HOME", str(state))
    mp.setenv("BOTTLE_TEST_TOKEN", TOKEN)
    certs = make_certs(tmp_path_factory.mktemp("api-certs"), (API,))
    agent = agent_name("meter")
    spec = AgentSpec(
        name=agent,
        image=test_image,
        egress=EgressSpec(
            credential="env:BOTTLE_TEST_TOKEN",
            api_base=f"https://{API}:{PORT}",
            upstream_ca=certs,
        ),
    )
    backend = DockerBackend()
    plan = backend.prepare(spec)
    backend.launch(plan, lambda _: None)
    api = start_standin(agent, egress_image, certs)
    grant_outer_range(agent)
    attacker = start_client(agent, egress_image)
    info = plan.extra["egress"]
    yield {
        "agent": agent,
        "api": api,
        "client": attacker,
        "state": state,
        "placeholder": plan.env[info["credential"]["var"]],
    }
    remove_containers(api, attacker)
    backend.remove(agent, volumes=True)
    mp.undo()


@pytest.fixture(autouse=True)
def _module_state(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(world["state"]))


def post(world: dict[str, Any], path: str, body: dict[str, Any]) -> str:
    """``POST path`` through the sidecar as the bottle sends it; the raw reply."""
    data = json.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {API}:{PORT}\r\nx-api-key: {world['placeholder']}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(data)}\r\n"
        "connection: close\r\n\r\n"
    )
    proxy = f"{egress.sidecar_name(world['agent'])}:8080"
    target = f"{API}:{PORT}"
    got = client(
        world["client"], "tls", proxy, target, API, (head + data).encode().hex(), "/tmp/ca.pem"
    )
    assert got["connect"].startswith("HTTP/1.1 200"), got
    return str(got.get("reply", ""))


def usage(agent: str) -> list[dict[str, Any]]:
    path = paths.usage_log(agent)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def ask(text: str, *, stream: bool = True, model: str = MODEL) -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}


def test_streams_and_answers_are_metered_exactly(world: dict[str, Any]) -> None:
    agent = world["agent"]
    standin_call(world["api"], "/_stand-in/usage", {"usage": CACHED})
    before = len(usage(agent))
    reply = post(world, "/v1/messages", ask("hello"))
    assert "event: message_start" in reply and "stand-in answer:" in reply
    assert '"output_tokens": 432' in reply  # the stream reached the client as sent
    post(world, "/v1/messages", ask("again", stream=False))
    post(world, "/v1/messages", ask("odd", model="claude-stand-in"))
    post(world, "/v1/messages/count_tokens", ask("count", stream=False))
    streamed, answered, unknown, counted = usage(agent)[before:]
    want = [21, 432, 600, 400, 9000]
    assert [streamed[k] for k in ledger.KINDS] == want
    assert streamed["stream"] is True and streamed["complete"] is True
    assert streamed["model"] == MODEL and streamed["request_id"].startswith("req_")
    assert [answered[k] for k in ledger.KINDS] == want and answered["stream"] is False
    assert unknown["model"] == "claude-stand-in"
    assert counted["path"] == "/v1/messages/count_tokens" and counted["input"] == 0
    log = paths.usage_log(agent)
    assert log.stat().st_mode & 0o777 == 0o600
    assert "hello" not in log.read_text() and "stand-in answer" not in log.read_text()
    # ls --json says what the log says: every token of today, and no cost (the unknown
    # model's share has no price).
    config = world["state"] / "config.toml"
    config.write_text(f"[agents.{agent}]\n")
    done = bd("ls", "--json", env={"BOTTLE_DASH_CONFIG": str(config)})
    (row,) = [r for r in json.loads(done.stdout) if r["name"] == agent]
    lines = usage(agent)
    assert row["tokens_today"] == sum(ln[k] for ln in lines for k in ledger.KINDS)
    assert row["cost_today_usd"] is None


def test_a_cut_off_stream_records_what_it_carried(world: dict[str, Any]) -> None:
    agent = world["agent"]
    standin_call(world["api"], "/_stand-in/usage", {"usage": CACHED, "cut_after": 3})
    before = len(usage(agent))
    try:
        reply = post(world, "/v1/messages", ask("cut"))
    finally:
        standin_call(world["api"], "/_stand-in/usage", {"usage": CACHED})
    assert "event: message_start" in reply and "message_stop" not in reply
    deadline = time.monotonic() + 30
    while len(usage(agent)) == before:
        assert time.monotonic() < deadline, "no usage line for the cut-off stream"
        time.sleep(0.2)
    (line,) = usage(agent)[before:]
    assert line["complete"] is False and line["input"] == 21 and line["cache_read"] == 9000


def test_a_spent_budget_refuses_until_raised_and_survives_a_restart(
    world: dict[str, Any],
) -> None:
    agent, api = world["agent"], world["api"]
    # $3 of sonnet input per answer
    standin_call(api, "/_stand-in/usage", {"usage": {"input_tokens": 1_000_000}})
    budget = paths.budget_file(agent)
    paths.write_private(budget, ledger.Budget(0.01, "day").to_json().encode())
    post(world, "/v1/messages", ask("spend"))
    sent = len(standin_call(api, "/_stand-in/requests"))
    refused = post(world, "/v1/messages", ask("refused"))
    assert refused.startswith("HTTP/1.1 429"), refused[:200]
    assert "rate_limit_error" in refused and f"agent {agent} has spent $" in refused
    run.run(["docker", "restart", "-t", "1", egress.sidecar_name(agent)], check=True)
    time.sleep(1)
    deadline = time.monotonic() + 40
    again = ""
    while not again.startswith("HTTP/1.1 429") and time.monotonic() < deadline:
        time.sleep(1)  # mitmdump starts again, reading the usage log back
        try:
            again = post(world, "/v1/messages", ask("still refused"))
        except AssertionError:  # not listening yet (its name comes back with it)
            continue
    logs = run.run(["docker", "logs", "--tail", "30", egress.sidecar_name(agent)])
    state = run.run(["docker", "inspect", "-f", "{{.State.Status}}", egress.sidecar_name(agent)])
    assert again.startswith("HTTP/1.1 429"), (again[:200], logs.stdout, logs.stderr, state.stdout)
    assert len(standin_call(api, "/_stand-in/requests")) == sent  # nothing reached it
    paths.write_private(budget, ledger.Budget(1000.0, "day").to_json().encode())
    passed = post(world, "/v1/messages", ask("raised"))
    assert passed.startswith("HTTP/1.1 200") and "stand-in answer:" in passed
