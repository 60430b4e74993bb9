"""``AgentService`` (what the CLI and the dashboard both do) against in-memory backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backends.base import (
    GUEST_PROMPT,
    RUNNING,
    STOPPED,
    AgentSpec,
    BottleNotFound,
    LaunchError,
    Problem,
)
from backends.holder import held_argv
from backends.paths import agent_state_dir, saved_plan
from bottle_dash import service as ops
from bottle_dash.config import Config
from bottle_dash.service import AgentService, make_row
from bottle_dash.status import Status
from tests.fakes.backend import FakeBackend


def on(*backends: FakeBackend) -> AgentService:
    return AgentService({b.name: b for b in backends})


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
    rows, problems = on(docker, smol).list_agents(cfg)
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
    rows, _ = on(docker).list_agents(cfg)
    # The listing reads no record: what the host keeps of each bottle is read for `ls --json`.
    data = json.loads(json.dumps([ops.inspected(r).to_dict() for r in rows]))
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
        "attached": None,
        # A docker agent is sealed by default, so claude skips permission prompts.
        "egress": "sealed",
        "permissions": "skip",
        "seal": "not checked",  # running, and no probe run on this bottle yet
        "seal_failures": [],
        "workspace_warnings": [],
        "runs_as_root": tmp_path.stat().st_uid == 0,  # it runs as the workspace's owner
        # No usage log yet: nothing spent, no budget.
        "cost_today_usd": 0.0,
        "cost_total_usd": 0.0,
        "tokens_today": 0,
        "budget": None,
        "budget_spent_usd": None,
    }
    assert data[1]["created"] is None and data[1]["state"] == "not created"
    waiting = rows[0]._replace(status=Status("waiting", "permission prompt", 1767225600.0))
    assert waiting.to_dict()["status"] == "waiting"
    assert waiting.to_dict()["status_since"] == "2026-01-01T00:00:00+00:00"
    assert waiting.to_dict()["attached"] is True
    detached = waiting._replace(status=waiting.status._replace(detached=True))  # type: ignore[union-attr]
    assert detached.to_dict()["attached"] is False


def test_unavailable_backend_is_a_problem_and_the_rest_still_list(
    docker: FakeBackend, smol: FakeBackend
) -> None:
    docker.unavailable = "Docker engine not answering"
    smol.add("vm", RUNNING)
    cfg = config_of(AgentSpec("web"), AgentSpec("vm", backend="smolmachines"))
    rows, problems = on(docker, smol).list_agents(cfg)
    assert problems == [
        Problem("docker", "Docker engine not answering", "start the fake engine", fatal=True)
    ]
    assert [(r.name, r.state) for r in rows] == [("web", ops.STATE_UNKNOWN), ("vm", RUNNING)]


def test_unused_backend_down_is_not_fatal(docker: FakeBackend, smol: FakeBackend) -> None:
    smol.unavailable = "smolvm missing"
    _, problems = on(docker, smol).list_agents(config_of(AgentSpec("web")))
    assert [(p.component, p.fatal) for p in problems] == [("smolmachines", False)]


def test_bottle_on_another_backend_keeps_names_unique(
    docker: FakeBackend, smol: FakeBackend
) -> None:
    smol.add("web", RUNNING)
    cfg = config_of(AgentSpec("web", backend="docker"))
    rows, problems = on(docker, smol).list_agents(cfg)
    assert [(r.name, r.backend, r.state) for r in rows] == [("web", "docker", "not created")]
    assert len(problems) == 1 and not problems[0].fatal
    assert "defined for docker but has a bottle on smolmachines" in problems[0].what


def test_up_launches_then_is_a_noop_then_starts(docker: FakeBackend) -> None:
    service = on(docker)
    spec = AgentSpec("web", prompt="hi", claude_args=("--x",))
    steps: list[str] = []
    bottle, what = service.up(spec, steps.append)
    assert what == ops.LAUNCHED and bottle.name == "bottle-web"
    assert "creating bottle" in steps
    saved = saved_plan("web")
    assert saved is not None and saved.claude_args == [
        "--append-system-prompt-file",
        GUEST_PROMPT,
        "--x",
    ]
    assert (agent_state_dir("web") / "plan.json").stat().st_mode & 0o777 == 0o600

    _, what = service.up(spec, steps.append)
    assert what == ops.ALREADY_RUNNING
    assert len(docker.called("launch")) == 1

    service.stop(service.row_of(spec))
    assert docker.state("web") == STOPPED
    _, what = service.up(spec, steps.append)
    assert what == ops.STARTED
    assert docker.called("start") == [("start", "web")]
    assert len(docker.called("launch")) == 1


def test_attach_argv_wraps_the_bottle_argv(docker: FakeBackend) -> None:
    service = on(docker)
    spec = AgentSpec("web", prompt="p", claude_args=("--model", "a b"))
    service.up(spec)
    argv = service.attach_argv(spec)
    assert argv[:3] == ["fake-exec", "-t", "bottle-web"]
    args = ["--append-system-prompt-file", GUEST_PROMPT, "--model", "a b"]
    assert argv == held_argv(["fake-exec", "-t", "bottle-web", "claude", *args], len(args))
    fresh = service.attach_argv(spec, fresh=True, tty=False)
    assert fresh == held_argv(
        ["fake-exec", "bottle-web", "claude", *args], 4, fresh=True, tty=False
    )


def test_attach_argv_of_an_orphan_uses_the_saved_plan(docker: FakeBackend) -> None:
    service = on(docker)
    service.up(AgentSpec("old", claude_args=("--saved",)))
    rows, _ = service.list_agents(config_of())
    (row,) = rows
    assert not row.defined
    argv = service.attach_argv(row, fresh=True)
    assert argv == held_argv(["fake-exec", "-t", "bottle-old", "claude", "--saved"], 1, fresh=True)
    # Without a saved plan claude gets no arguments.
    (agent_state_dir("old") / "plan.json").unlink()
    assert service.attach_argv(row, fresh=True)[-1] == "claude"


def test_attach_argv_of_an_undefined_agent_without_a_bottle(docker: FakeBackend) -> None:
    row = make_row("web", "docker", None, None)
    with pytest.raises(BottleNotFound) as info:
        on(docker).attach_argv(row)
    assert "not defined" in info.value.message and "[agents.web]" in (info.value.fix or "")
    assert not docker.called("launch")


def test_attach_to_a_running_bottle_reads_the_recorded_plan_and_never_prepares(
    docker: FakeBackend, tmp_path: Path
) -> None:
    service = on(docker)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    spec = AgentSpec("web", prompt="p", claude_args=("--x",), workspace=workspace)
    service.up(spec)
    assert len(docker.called("prepare")) == 1
    workspace.rmdir()  # attaching must not look at it again
    docker.calls.clear()
    argv = service.attach_argv(service.row_of(spec), fresh=True, tty=False)
    assert argv[-4:] == ["claude", "--append-system-prompt-file", GUEST_PROMPT, "--x"]
    assert docker.called("prepare") == []
    assert [c[0] for c in docker.calls] == ["list_bottles", "bottle"]


def test_ensure_running_on_a_stopped_row_starts_it_without_listing(docker: FakeBackend) -> None:
    service = on(docker)
    spec = AgentSpec("web", claude_args=("--x",))
    service.up(spec)
    service.stop(service.row_of(spec))
    (row,) = service.list_agents(config_of(spec))[0]
    docker.calls.clear()
    bottle = service.ensure_running(row)
    # The row's listing is trusted: start returns the handle; nothing is listed again.
    assert [c[0] for c in docker.calls] == ["start"]
    assert bottle.plan is not None and bottle.plan.claude_args == ["--x"]


def test_ensure_running_with_an_unknown_state_asks_again(docker: FakeBackend) -> None:
    service = on(docker)
    docker.add("web", STOPPED)
    row = make_row("web", "docker", AgentSpec("web"), None)._replace(state=ops.STATE_UNKNOWN)
    service.ensure_running(row)
    assert [c[0] for c in docker.calls] == ["list_bottles", "start"]


def test_remove_with_volumes_drops_host_state(docker: FakeBackend) -> None:
    service = on(docker)
    web = make_row("web", "docker", None, None)
    service.up(AgentSpec("web"))
    assert agent_state_dir("web").exists()
    service.remove(web)
    assert agent_state_dir("web").exists()
    service.up(AgentSpec("web"))
    service.remove(web, volumes=True)
    assert docker.called("remove") == [("remove", "web", False), ("remove", "web", True)]
    assert not agent_state_dir("web").exists()


def test_start_and_exec_argv_for_orphans(docker: FakeBackend) -> None:
    service = on(docker)
    docker.add("old", STOPPED)
    (old,) = service.list_agents(config_of())[0]
    assert service.up(old)[1] == ops.STARTED
    (old,) = service.list_agents(config_of())[0]
    assert service.up(old)[1] == ops.ALREADY_RUNNING
    with pytest.raises(BottleNotFound):
        service.up(make_row("nobody", "docker", None, None))
    assert service.exec_argv(old, ["id"]) == ["fake-exec", "bottle-old", "id"]


def test_doctor_marks_what_is_needed(docker: FakeBackend, smol: FakeBackend) -> None:
    smol.problems = [Problem("smolmachines", "no KVM", "enable it")]
    checks = {c.component: c for c in on(docker, smol).doctor(config_of(AgentSpec("web")))}
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
        AgentService().backend("nope")
    assert "docker" in (info.value.fix or "")
    with pytest.raises(UnknownBackend) as info:
        on(docker).backend("smolmachines")  # injected backends are the only ones
    assert info.value.fix == "use one of: docker"


def test_preflight_names_a_backend_that_cannot_answer(docker: FakeBackend) -> None:
    from backends.base import BackendUnavailable

    def down() -> list[Problem]:
        raise BackendUnavailable("engine not answering", fix="start the engine")

    docker.preflight = down  # type: ignore[method-assign]
    [problem] = on(docker).preflight(config_of(AgentSpec("web")))
    assert problem.what == "backend unavailable: engine not answering"
    assert problem.fix == "start the engine"


def test_nearest() -> None:
    assert ops.nearest("webap", ["webapp", "api"]) == "webapp"
    assert ops.nearest("zzz", ["webapp"]) is None


def test_a_backend_no_agent_uses_is_listed_less_often(
    docker: FakeBackend, smol: FakeBackend
) -> None:
    service = AgentService({"docker": docker, "smolmachines": smol}, idle_backend_every=3600)
    smol.add("left-behind", STOPPED)
    cfg = config_of(AgentSpec("web"))
    for _ in range(2):
        rows, _ = service.list_agents(cfg)
        assert [r.name for r in rows] == ["web", "left-behind"]  # from the last listing
    assert len(docker.called("list_bottles")) == 2  # in use: every time
    assert len(smol.called("list_bottles")) == 1


def test_backends_are_listed_at_once(docker: FakeBackend, smol: FakeBackend) -> None:
    import threading

    # Each listing waits for the other to have started: only concurrent listings meet.
    started = {"docker": threading.Event(), "smolmachines": threading.Event()}
    met: dict[str, bool] = {}

    def listing(backend: FakeBackend, other: str) -> Any:
        original = backend.list_bottles

        def list_bottles() -> Any:
            started[backend.name].set()
            met[backend.name] = started[other].wait(10)
            return original()

        return list_bottles

    docker.list_bottles = listing(docker, "smolmachines")  # type: ignore[method-assign]
    smol.list_bottles = listing(smol, "docker")  # type: ignore[method-assign]
    rows, problems = on(docker, smol).list_agents(config_of(AgentSpec("web")))
    assert met == {"docker": True, "smolmachines": True}
    assert [r.name for r in rows] == ["web"] and problems == []


def test_a_bug_in_a_listing_is_raised_not_hidden(docker: FakeBackend, smol: FakeBackend) -> None:
    def broken() -> Any:
        raise RuntimeError("bug")

    smol.list_bottles = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="bug"):
        on(docker, smol).list_agents(config_of())


def test_up_of_a_name_like_another_agents_sidecar_says_which_and_the_fix(
    docker: FakeBackend,
) -> None:
    """``web-egress`` would find agent web's sidecar under its bottle's name: ``up``
    refuses before it looks anything up, naming the agent, its config file and the fix."""
    spec = AgentSpec("web-egress", source=Path("/cfg/config.toml"))
    with pytest.raises(LaunchError) as info:
        on(docker).up(spec)
    err = info.value
    assert err.agent == "web-egress"
    assert "bottle-web-egress" in err.message and "/cfg/config.toml" in err.message
    assert err.fix and "rename the agent" in err.fix
    assert docker.calls == []


def test_build_image_hands_its_options_to_the_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.docker import image

    calls: list[tuple[str, bool | None, bool]] = []

    def build_or_assemble(
        tag: str, progress: Any, *, offline: bool | None = None, rebuild: bool = False
    ) -> str:
        calls.append((tag, offline, rebuild))
        progress("assembling")
        return tag

    monkeypatch.setattr(image, "build_or_assemble", build_or_assemble)
    seen: list[str] = []
    service = AgentService({})
    assert service.build_image("img:1", seen.append) == "img:1"
    assert service.build_image("img:2", seen.append, offline=True, rebuild=True) == "img:2"
    assert service.build_image("img:3", offline=False) == "img:3"
    assert calls == [("img:1", None, False), ("img:2", True, True), ("img:3", False, False)]
    assert seen == ["assembling", "assembling"]


def test_up_of_a_running_bottle_without_its_sidecar_starts_it(docker: FakeBackend) -> None:
    """A running bottle whose sidecar is down (no egress) goes to the backend's start,
    which brings the sidecar back; a running sealed one is left alone."""
    from backends.egress.plan import EGRESS_SEALED, EGRESS_SIDECAR_DOWN

    service = on(docker)
    spec = AgentSpec("web")
    service.up(spec)
    info = docker.bottles["web"]
    docker.bottles["web"] = info._replace(egress=EGRESS_SEALED)
    assert service.up(spec)[1] == ops.ALREADY_RUNNING
    docker.bottles["web"] = info._replace(egress=EGRESS_SIDECAR_DOWN)
    steps: list[str] = []
    assert service.up(spec, steps.append)[1] == ops.STARTED
    assert docker.called("start") == [("start", "web")]
    assert "repairing the egress sidecar of web" in steps


def test_attach_says_what_it_did_to_the_bottle(docker: FakeBackend) -> None:
    from tests.fakes.panehost import FakePaneHost

    panes = FakePaneHost()
    service = AgentService({"docker": docker}, pane_host=panes)
    spec = AgentSpec("web")
    launched = service.attach(service.row_of(spec))
    assert (launched.how, launched.up) == ("split", ops.LAUNCHED)
    # Running, its pane live: looked up beside the bottle's handle, then focused.
    focused = service.attach(service.row_of(spec))
    assert (focused.how, focused.up) == ("focused", ops.ALREADY_RUNNING)
    assert focused.pane_id == launched.pane_id
    service.stop(service.row_of(spec))
    started = service.attach(service.row_of(spec))
    assert (started.how, started.up) == ("focused", ops.STARTED)
    assert [c[0] for c in panes.calls] == ["panes", "split", "panes", "focus", "panes", "focus"]


def test_up_refuses_a_root_agent_when_allow_root_is_false(
    docker: FakeBackend, tmp_path: Path
) -> None:
    import os

    from backends.base import LaunchError

    if os.geteuid() != 0:
        pytest.skip("needs a root-owned folder")
    os.chown(tmp_path, 0, 0)
    docker.add("web", state="stopped")  # a stopped bottle is started without a new plan
    with pytest.raises(LaunchError) as err:
        on(docker).up(AgentSpec("web", workspace=tmp_path, allow_root=False))
    assert "allow_root = false" in str(err.value) and not docker.called("start")
    row = make_row("web", "docker", AgentSpec("web", workspace=tmp_path), None)
    assert row.runs_as_root and row.to_dict()["runs_as_root"] is True
    os.chown(tmp_path, 1000, 1000)
    assert not make_row("web", "docker", AgentSpec("web", workspace=tmp_path), None).runs_as_root
    on(docker).up(AgentSpec("web", workspace=tmp_path, allow_root=False))
    assert docker.called("start")


def test_a_row_is_a_value_and_the_service_reads_what_the_host_keeps(
    docker: FakeBackend, tmp_path: Path
) -> None:
    # The listing reads no record; `inspected` reads the seal record of this very bottle
    # and what the workspace gained since the first up (what `ls --json` prints).
    from backends import workspace
    from backends.probes import record
    from backends.probes.result import FAIL, PASS, Result

    (tmp_path / "ws").mkdir()
    workspace.record_baseline("web", tmp_path / "ws")
    (tmp_path / "ws" / ".git" / "hooks").mkdir(parents=True)
    (tmp_path / "ws" / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\n")
    (tmp_path / "ws" / ".git" / "hooks" / "pre-commit").chmod(0o755)
    failed = Result("no-route-out", "network", FAIL, "reached 10.0.0.1", fix="seal it")
    run = record.SuiteRun("web", "docker", (Result("non-root", "host", PASS, ""), failed), 2e9)
    record.seal_file("web").parent.mkdir(parents=True, exist_ok=True)
    record.seal_file("web").write_text(json.dumps(run.to_dict()))
    docker.add("web")
    rows, _ = on(docker).list_agents(config_of(AgentSpec("web", workspace=tmp_path / "ws")))
    listed = rows[0]
    assert (listed.seal, listed.seal_failures, listed.workspace_warnings) == ("", (), ())
    assert listed.to_dict()["seal"] == "" and listed.to_dict()["workspace_warnings"] == []
    assert ops.seal_state(listed) == ("1 failing", [failed])
    data = ops.inspected(listed).to_dict()
    assert data["seal"] == "1 failing"
    assert data["seal_failures"] == [
        {"probe": "no-route-out", "evidence": "reached 10.0.0.1", "fix": "seal it"}
    ]
    assert "executable git hook .git/hooks/pre-commit" in data["workspace_warnings"]
    # A bottle that does not run has no seal, whatever the record says.
    stopped = listed._replace(state=STOPPED)
    assert ops.inspected(stopped).to_dict()["seal"] == ""


# ------------------------------------------------------------------ one at a time


def test_agent_lock_makes_the_second_wait_and_says_so(tmp_path: Path) -> None:
    import threading

    from backends.paths import agent_lock

    order: list[str] = []
    said: list[str] = []
    held = threading.Event()
    release = threading.Event()

    def first() -> None:
        with agent_lock("web") as waited:
            order.append(f"first waited={waited}")
            held.set()
            release.wait(10)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(10)

    def second() -> None:
        with agent_lock("web", lambda: said.append("waiting")) as waited:
            order.append(f"second waited={waited}")

    other = threading.Thread(target=second)
    other.start()
    other.join(0.3)
    assert other.is_alive()  # still waiting for the first
    release.set()
    thread.join(10)
    other.join(10)
    assert order == ["first waited=False", "first done", "second waited=True"]
    assert said == ["waiting"]


def test_two_ups_at_once_launch_once(docker: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    service = on(docker)
    spec = AgentSpec("web")
    entered = threading.Event()
    go_on = threading.Event()
    real_launch = docker.launch

    def slow_launch(plan: Any, progress: Any = None) -> Any:
        entered.set()
        go_on.wait(10)
        return real_launch(plan)

    monkeypatch.setattr(docker, "launch", slow_launch)
    results: list[str] = []
    said: list[str] = []
    first = threading.Thread(target=lambda: results.append(service.up(spec)[1]))
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=lambda: results.append(service.up(spec, said.append)[1]))
    second.start()
    second.join(0.3)
    assert second.is_alive()
    go_on.set()
    first.join(10)
    second.join(10)
    assert sorted(results) == [ops.ALREADY_RUNNING, ops.LAUNCHED]
    assert len(docker.called("prepare")) == 1
    assert any("already being launched" in line for line in said), said


def test_enter_twice_quickly_opens_one_pane(
    docker: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from tests.fakes.panehost import FakePaneHost

    host = FakePaneHost()
    service = AgentService({"docker": docker}, pane_host=host)
    row = service.row_of(AgentSpec("web"))  # not created: both presses see that row
    entered = threading.Event()
    go_on = threading.Event()
    real_launch = docker.launch

    def slow_launch(plan: Any, progress: Any = None) -> Any:
        entered.set()
        go_on.wait(10)
        return real_launch(plan)

    monkeypatch.setattr(docker, "launch", slow_launch)
    done: list[str] = []
    first = threading.Thread(target=lambda: done.append(service.attach(row).how))
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=lambda: done.append(service.attach(row).how))
    second.start()
    second.join(0.3)
    go_on.set()
    first.join(10)
    second.join(10)
    assert sorted(done) == ["focused", "split"]
    assert [c[0] for c in host.calls].count("split") == 1
    assert len(docker.called("prepare")) == 1
