"""Shim tier: metering and budgets for a sealed smolmachines bottle (the stand-in smolvm).
Its sidecar is the same broker as a docker bottle's (tests/integration/
test_metering_docker.py): a request to the stand-in Messages API (its ``api_base``)
through the sidecar lands in the agent's usage log with the stand-in's token counts, and
the budget its ``up`` wrote refuses the next one.

    [client] --bottle-<a>-net--> [sidecar] --bottle-<a>-out--> [stand-in API]

Every container and network is made here and labelled with the run's agent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backends import paths
from backends.base import AgentSpec
from backends.egress import ledger
from backends.egress.spec import EgressSpec
from backends.registry import get_backend
from tests.fakes.egress_upstream import make_certs
from tests.integration.egress_world import API, TOKEN, grant_outer_range, start_client
from tests.integration.egress_world import remove as remove_containers
from tests.integration.test_metering_docker import (
    MODEL,
    PORT,
    ask,
    post,
    standin_call,
    start_standin,
    usage,
)
from tests.support import agent_name

pytestmark = pytest.mark.shim


def test_a_smol_bottles_sidecar_meters_and_enforces_its_budget(
    standin: str,
    egress_image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOTTLE_TEST_TOKEN", TOKEN)
    backend = get_backend("smolmachines")
    agent = agent_name("smeter")
    certs = make_certs(tmp_path / "certs", (API,))
    spec = AgentSpec(
        name=agent,
        backend="smolmachines",
        image=standin,
        egress=EgressSpec(
            credential="env:BOTTLE_TEST_TOKEN",
            api_base=f"https://{API}:{PORT}",
            upstream_ca=certs,
            budget="2/day",
        ),
    )
    plan = backend.prepare(spec)
    api = attacker = ""
    try:
        backend.launch(plan, lambda _: None)
        written = ledger.Budget.from_json(paths.budget_file(agent).read_text())
        assert (written.limit_usd, written.period) == (2.0, "day")  # up wrote it
        api = start_standin(agent, egress_image, certs)
        grant_outer_range(agent)
        attacker = start_client(agent, egress_image)
        info = plan.extra["egress"]
        world: dict[str, Any] = {
            "agent": agent,
            "client": attacker,
            "placeholder": plan.env[info["credential"]["var"]],
        }
        standin_call(api, "/_stand-in/usage", {"usage": {"input_tokens": 1_000_000}})
        reply = post(world, "/v1/messages", ask("smol"))
        assert reply.startswith("HTTP/1.1 200"), reply[:200]
        (line,) = usage(agent)
        assert (line["model"], line["input"], line["complete"]) == (MODEL, 1_000_000, True)
        refused = post(world, "/v1/messages", ask("over"))  # $3 of a $2/day budget
        assert refused.startswith("HTTP/1.1 429") and "budget of $2/day" in refused
    finally:
        remove_containers(api, attacker)
        backend.remove(agent, volumes=True)
