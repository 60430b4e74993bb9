"""``backends.plan``: every backend checks an agent the same way, with the same errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.base import AgentSpec, BackendError, BottleBackend
from backends.docker.backend import DockerBackend
from backends.egress.plan import guest_env
from backends.smolmachines.backend import SmolmachinesBackend

BACKENDS: list[type[BottleBackend]] = [DockerBackend, SmolmachinesBackend]


def bad_agents(tmp: Path) -> dict[str, AgentSpec]:
    (tmp / "a" / "review").mkdir(parents=True)
    (tmp / "b" / "review").mkdir(parents=True)
    ok = AgentSpec(name="alpha", image="img:1", source=tmp / "config.toml")
    return {
        "name": ok._replace(name="Not A Slug"),
        "workspace": ok._replace(workspace=tmp / "gone"),
        "skill missing": ok._replace(skills=(tmp / "nope-skill",)),
        "skill without a name": ok._replace(skills=(Path("/"),)),
        "two skills, one name": ok._replace(skills=(tmp / "a" / "review", tmp / "b" / "review")),
        "env key": ok._replace(env={"A=B": "x"}),
    }


def failure(backend: type[BottleBackend], agent: AgentSpec) -> tuple[str, str, str | None]:
    with pytest.raises(BackendError) as info:
        backend().prepare(agent)
    return type(info.value).__name__, info.value.message, info.value.fix


@pytest.mark.parametrize(
    "case",
    [
        "name",
        "workspace",
        "skill missing",
        "skill without a name",
        "two skills, one name",
        "env key",
    ],  # fmt: skip
)
def test_both_backends_refuse_a_bad_agent_identically(tmp_path: Path, case: str) -> None:
    agent = bad_agents(tmp_path)[case]
    docker, smol = (failure(b, agent) for b in BACKENDS)
    assert docker == smol
    kind, message, fix = docker
    assert kind in ("LaunchError", "ProvisionError")
    assert "alpha" in message or "Not A Slug" in message
    assert str(tmp_path / "config.toml") in message  # names the file it came from
    assert fix  # and says what to do


@pytest.mark.parametrize("backend", BACKENDS)
def test_both_backends_share_the_plan_fields(tmp_path: Path, backend: type[BottleBackend]) -> None:
    skill = tmp_path / "review"
    skill.mkdir()
    agent = AgentSpec(
        name="alpha", image="img:1", workspace=tmp_path, skills=(skill,), env={"B": "2", "A": "1"},
        prompt="hi", claude_args=("--x",),
    )  # fmt: skip
    plan = backend().prepare(agent)
    assert (plan.bottle, plan.workspace, plan.skills) == (
        "bottle-alpha", str(tmp_path.resolve()), [(str(skill.resolve()),
        "/home/node/.claude/skills/review")],
    )  # fmt: skip
    # The agent's env, sorted; a sealed (docker) plan adds exactly the egress env to it.
    assert [(k, v) for k, v in plan.env.items() if k in agent.env] == [("A", "1"), ("B", "2")]
    sealed = plan.extra.get("egress", {}).get("sealed")
    sealed_env = set(guest_env("p", "c", "", "")) if sealed else set()
    assert set(plan.env) - set(agent.env) == sealed_env
    assert plan.claude_args[-1] == "--x" and plan.prompt_nonempty
