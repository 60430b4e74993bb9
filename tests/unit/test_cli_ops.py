"""``bottle_dash.ops`` (what the CLI and the dashboard both do) against in-memory backends."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from backend import FakeBackend

from backends.base import (
    GUEST_PROMPT,
    RUNNING,
    STOPPED,
    AgentSpec,
    BottleNotFound,
    Problem,
)
from backends.paths import agent_state_dir
from bottle_dash import service as ops
from bottle_dash.config import Config
from bottle_dash.status import Status


def config_of(*specs: AgentSpec) -> Config:
    return Config(path=Path("/cfg/config.toml"), exists=True, agents={s.name: s for s in specs})


@pytest.fixture
def docker() -> FakeBackend:
    return FakeBackend("docker")


@pytest.fixture
def smol() -> FakeBackend:
    return FakeBackend("smolmachines")


def test_list_merges_defined_and_orphans_with_one_call_per_backend(
    docker: FakeBackend, smol: FakeBackend
) -> None:
    docker.add("web", RUNNING)
    docker.add("gone", STOPPED)
    smol.add("old-vm", RUNNING)
    cfg = config_of(AgentSpec("web", image="web:1"), AgentSpec("api", image="api:1"))
    rows, problems = ops.list_agents(cfg, {"docker": docker, "smolmachines": smol})
    assert problems == []
    got = [(r.name, r.backend, r.state, r.defined, r.bottle) for r in rows]
    assert got == [
        ("web", "docker", "running", True, "bottle-web"),
        ("api", "docker", "not created", True, "bottle-api"),
        ("gone", "docker", "stopped", False, "bottle-gone"),
        ("old-vm", "smolmachines", "running", False, "bottle-old-vm"),
    ]
    assert rows[1].image == "api:1" and rows[1].info is None and rows[1].created == ""
    assert rows[2].spec is None and rows[2].info is not None
    assert len(docker.called("list_bottles")) == 1
    assert len(smol.called("list_bottles")) == 1


def test_row_to_dict_is_json(docker: FakeBackend, tmp_path: Path) -> None:
    docker.add("web")
    cfg = config_of(AgentSpec("web", workspace=tmp_path), AgentSpec("api"))
    rows, _ = ops.list_agents(cfg, {"docker": docker})
    data = json.loads(json.dumps([r.to_dict() for r in rows]))
    assert data[0] == {
        "name": "web",
        "backend": "docker",
        "bottle": "bottle-web",
        "state": "running",
        "image": "fake-image:1",
        "created": "2026-01-01T10:00:00Z",
        "defined": True,
        "workspace": str(tmp_path),
        "id": "id-web",
        "status": None,  # list_agents looks at no status; `ls` and the dashboard do
        "status_since": None,
    }
    assert data[1]["created"] is None and data[1]["state"] == "not created"
    rows[0].status = Status("waiting", "permission prompt", 1767225600.0)
    assert rows[0].to_dict()["status"] == "waiting"
    assert rows[0].to_dict()["status_since"] == "2026-01-01T00:00:00+00:00"


def test_unavailable_backend_is_a_problem_and_the_rest_still_list(
    docker: FakeBackend, smol: FakeBackend
) -> None:
    docker.unavailable = "Docker engine not answering"
    smol.add("vm", RUNNING)
    cfg = config_of(AgentSpec("web"), AgentSpec("vm", backend="smolmachines"))
    rows, problems = ops.list_agents(cfg, {"docker": docker, "smolmachines": smol})
    assert problems == [
        Problem("docker", "Docker engine not answering", "start the fake engine", fatal=True)
    ]
    assert [(r.name, r.state) for r in rows] == [("web", ops.UNKNOWN), ("vm", RUNNING)]


def test_unused_backend_down_is_not_fatal(docker: FakeBackend, smol: FakeBackend) -> None:
    smol.unavailable = "smolvm missing"
    _, problems = ops.list_agents(
        config_of(AgentSpec("web")), {"docker": docker, "smolmachines": smol}
    )
    assert [(p.component, p.fatal) for p in problems] == [("smolmachines", False)]


def test_bottle_on_another_backend_keeps_names_unique(
    docker: FakeBackend, smol: FakeBackend
) -> None:
    smol.add("web", RUNNING)
    cfg = config_of(AgentSpec("web", backend="docker"))
    rows, problems = ops.list_agents(cfg, {"docker": docker, "smolmachines": smol})
    assert [(r.name, r.backend, r.state) for r in rows] == [("web", "docker", "not created")]
    assert len(problems) == 1 and not problems[0].fatal
    assert "defined for docker but has a bottle on smolmachines" in problems[0].what


def test_up_launches_then_is_a_noop_then_starts(docker: FakeBackend) -> None:
    backends = {"docker": docker}
    spec = AgentSpec("web", prompt="hi", claude_args=("--x",))
    steps: list[str] = []
    bottle, what = ops.up(spec, steps.append, backends)
    assert what == ops.LAUNCHED and bottle.name == "bottle-web"
    assert "creating bottle" in steps
    saved = ops.saved_plan("web")
    assert saved is not None and saved.claude_args == [
        "--append-system-prompt-file",
        GUEST_PROMPT,
        "--x",
    ]
    assert (agent_state_dir("web") / "plan.json").stat().st_mode & 0o777 == 0o600

    _, what = ops.up(spec, steps.append, backends)
    assert what == ops.ALREADY_RUNNING
    assert len(docker.called("launch")) == 1

    ops.down("web", "docker", backends)
    assert docker.state("web") == STOPPED
    _, what = ops.up(spec, steps.append, backends)
    assert what == ops.STARTED
    assert docker.called("start") == [("start", "web")]
    assert len(docker.called("launch")) == 1


def test_attach_argv_wraps_the_bottle_argv(docker: FakeBackend) -> None:
    docker.add("web")
    spec = AgentSpec("web", prompt="p", claude_args=("--model", "a b"))
    argv = ops.attach_argv(spec, backends={"docker": docker})
    assert argv[:3] == ["fake-exec", "-t", "bottle-web"]
    args = ["--append-system-prompt-file", GUEST_PROMPT, "--model", "a b"]
    assert argv[3:5] == ["sh", "-c"]
    assert shlex.split(argv[5]) == ["claude", "--continue", *args, "||", "claude", *args]
    fresh = ops.attach_argv(spec, fresh=True, tty=False, backends={"docker": docker})
    assert fresh == ["fake-exec", "bottle-web", "claude", *args]


def test_attach_argv_of_an_orphan_uses_the_saved_plan(docker: FakeBackend) -> None:
    backends = {"docker": docker}
    ops.up(AgentSpec("old", claude_args=("--saved",)), backends=backends)
    rows, _ = ops.list_agents(config_of(), backends)
    (row,) = rows
    assert not row.defined
    argv = ops.attach_argv(row, fresh=True, backends=backends)
    assert argv == ["fake-exec", "-t", "bottle-old", "claude", "--saved"]
    # Without a saved plan claude gets no arguments.
    (agent_state_dir("old") / "plan.json").unlink()
    assert ops.attach_argv(row, fresh=True, backends=backends)[-1] == "claude"


def test_attach_argv_without_a_bottle(docker: FakeBackend) -> None:
    with pytest.raises(BottleNotFound):
        ops.attach_argv(AgentSpec("web"), backends={"docker": docker})


def test_remove_with_volumes_drops_host_state(docker: FakeBackend) -> None:
    backends = {"docker": docker}
    ops.up(AgentSpec("web"), backends=backends)
    assert agent_state_dir("web").exists()
    ops.remove("web", "docker", False, backends)
    assert agent_state_dir("web").exists()
    ops.up(AgentSpec("web"), backends=backends)
    ops.remove("web", "docker", True, backends)
    assert docker.called("remove") == [("remove", "web", False), ("remove", "web", True)]
    assert not agent_state_dir("web").exists()


def test_start_and_exec_argv_for_orphans(docker: FakeBackend) -> None:
    backends = {"docker": docker}
    docker.add("old", STOPPED)
    assert ops.start("old", "docker", backends) == ops.STARTED
    assert ops.start("old", "docker", backends) == ops.ALREADY_RUNNING
    with pytest.raises(BottleNotFound):
        ops.start("nobody", "docker", backends)
    assert ops.exec_argv("old", "docker", ["id"], backends=backends) == [
        "fake-exec",
        "bottle-old",
        "id",
    ]


def test_doctor_marks_what_is_needed(docker: FakeBackend, smol: FakeBackend) -> None:
    smol.problems = [Problem("smolmachines", "no KVM", "enable it")]
    checks = {
        c.component: c
        for c in ops.doctor(config_of(AgentSpec("web")), {"docker": docker, "smolmachines": smol})
    }
    assert checks["docker"].needed and checks["docker"].ok and checks["docker"].found == "ready"
    assert not checks["smolmachines"].needed and not checks["smolmachines"].ok
    assert checks["tmux"].needed
    # With no agents the default backend is the needed one.
    assert ops.backends_needed(None) == {"docker"}
    assert ops.backends_needed(config_of(AgentSpec("v", backend="smolmachines"))) == {
        "smolmachines"
    }


def test_unknown_backend_name(docker: FakeBackend) -> None:
    from backends.base import UnknownBackend

    with pytest.raises(UnknownBackend) as info:
        ops.backend_for("nope")
    assert "docker" in (info.value.fix or "")


def test_nearest() -> None:
    assert ops.nearest("webap", ["webapp", "api"]) == "webapp"
    assert ops.nearest("zzz", ["webapp"]) is None
