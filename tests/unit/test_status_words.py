"""Status words say what a bottle that does not run is: stopped, no bottle yet, or unknown
(its backend did not answer), never "exited"; a stopped sealed bottle's egress is sealed."""

from __future__ import annotations

from backends.base import NOT_CREATED, RUNNING, STOPPED, AgentSpec, BottleInfo
from bottle_dash.service import make_row
from bottle_dash.service.rows import STATE_UNKNOWN as UNKNOWN_STATE
from bottle_dash.status import agent_statuses


def info(state: str, egress: str) -> BottleInfo:
    return BottleInfo(
        "a", "docker", "bottle-a", state, "img", "2026-01-01T00:00:00Z", egress=egress
    )


def test_rows_that_do_not_run_say_what_they_are() -> None:
    spec = AgentSpec("a")
    rows = [
        make_row("a", "docker", spec, None)._replace(name="new"),
        make_row("a", "docker", spec, info(STOPPED, "sidecar down"))._replace(name="off"),
        make_row("a", "docker", spec, None)._replace(name="down", state=UNKNOWN_STATE),
    ]
    assert [r.state for r in rows] == [NOT_CREATED, STOPPED, UNKNOWN_STATE]
    got = agent_statuses(rows, {}, lambda name: None, now=0.0)
    assert {k: (v.status, v.reason) for k, v in got.items()} == {
        "new": ("no bottle", "no bottle yet"),
        "off": ("stopped", "bottle stopped"),
        "down": ("unknown", "its backend did not answer"),
    }


def test_a_stopped_bottle_is_sealed_a_running_one_without_sidecar_is_not() -> None:
    spec = AgentSpec("a")
    assert make_row("a", "docker", spec, info(STOPPED, "sidecar down")).egress == "sealed"
    assert make_row("a", "docker", spec, info(RUNNING, "sidecar down")).egress == "sidecar down"
