"""What the probes read of a bottle's recorded plan: its sealed-egress settings, as
strings, empty where the bottle has none."""

from __future__ import annotations

from typing import Any

import pytest

from backends.base import AgentSpec
from backends.egress.spec import EgressSpec
from backends.probes.base import Target, egress_value, sealed
from backends.registry import get_backend


def target(spec: AgentSpec) -> Target:
    plan = get_backend("docker").prepare(spec)
    bottle: Any = None  # the probes' plan readers never touch the bottle
    return Target(spec.name, "docker", bottle, plan)


def test_a_sealed_plan_gives_its_sidecar_proxy_api_and_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROBE_TOKEN", "sk-ant-api03-" + "x" * 40)
    t = target(AgentSpec(name="probe-a", egress=EgressSpec(credential="env:PROBE_TOKEN")))
    assert sealed(t)
    assert egress_value(t, "sidecar") == "bottle-probe-a-egress"
    assert egress_value(t, "proxy").startswith("http://bottle-probe-a-egress:")
    assert egress_value(t, "api") == "api.anthropic.com:443"
    assert egress_value(t, "credential", "source") == "env:PROBE_TOKEN"
    assert egress_value(t, "credential", "var") == "ANTHROPIC_API_KEY"
    assert egress_value(t, "credential", "nothing") == ""
    assert egress_value(t, "sidecar", "var") == ""  # not a table


def test_an_unsealed_plan_or_none_gives_empty_strings() -> None:
    t = target(AgentSpec(name="probe-b", egress=EgressSpec(sealed=False)))
    assert not sealed(t)
    assert egress_value(t, "sidecar") == ""
    assert egress_value(t, "credential", "var") == ""
    bottle: Any = None
    assert egress_value(Target("probe-c", "docker", bottle, None), "proxy") == ""
