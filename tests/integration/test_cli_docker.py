"""The CLI against a real Docker engine and real bottles from the offline test image.

Every agent is named ``t<run>-<label>`` (conftest ``agent_name``) so the session sweep
removes whatever a failed test leaves; each test also removes its own bottles.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from backends.claude import status_hook_command
from tests.fakes.cli_run import bd
from tests.integration.cli_helpers import attach_once, docker_labelled, write_config
from tests.support import agent_name

pytestmark = pytest.mark.docker


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "README").write_text("workspace\n")
    # An operator whose uid is the image's node (1000): the agent runs as the owner.
    os.chown(ws, 1000, 1000)
    return ws


def make_env(tmp_path: Path, agents: dict[str, dict[str, Any]]) -> dict[str, str]:
    path = tmp_path / "config.toml"
    write_config(path, agents)
    return {"BOTTLE_DASH_CONFIG": str(path)}


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stdout


def rows_of(env: dict[str, str], names: list[str]) -> dict[str, dict[str, object]]:
    """``ls --json`` rows of these agents (other tests' bottles may exist meanwhile)."""
    rows = json.loads(ok(bd("ls", "--json", env=env)))
    for row in rows:
        assert {"name", "backend", "bottle", "state", "image", "created", "defined"} <= set(row)
    return {r["name"]: r for r in rows if r["name"] in names}


def test_up_twice_and_exec_users(
    tmp_path: Path, test_image: str, workspace: Path, cleanup: list[str]
) -> None:
    name = agent_name("up")
    cleanup.append(name)
    env = make_env(tmp_path, {name: {"image": test_image, "workspace": str(workspace)}})

    first = ok(bd("up", name, env=env))
    assert f"{name}: bottle bottle-{name} launched" in first
    assert "creating the container" in first  # progress lines
    second = ok(bd("up", name, env=env))
    assert "already running; nothing to do" in second

    assert ok(bd("exec", name, "--", "id", "-u", env=env)).strip() == "1000"
    assert ok(bd("exec", name, "--", "id", "-un", env=env)).strip() == "node"
    assert ok(bd("exec", name, "--user", "root", "--", "id", "-u", env=env)).strip() == "0"
    assert ok(bd("exec", name, "--", "cat", "/workspace/README", env=env)) == "workspace\n"
    # Arguments reach the bottle verbatim: no shell in between.
    tricky = "a b $(id) 'q' \"d\" é"
    out = ok(bd("exec", name, "--", "sh", "-c", 'printf %s "$1"', "_", tricky, env=env))
    assert out == tricky
    # The command's exit status is the CLI's.
    assert bd("exec", name, "--", "sh", "-c", "exit 7", env=env).returncode == 7

    # Status: what a hook in the (sealed) bottle says goes through its sidecar; `ls`
    # reports it.
    row = rows_of(env, [name])[name]
    assert (row["status"], row["status_since"]) == ("exited", None)  # no claude ran yet
    ok(bd("exec", name, "--", "sh", "-c", status_hook_command("permission"), env=env))
    deadline = time.monotonic() + 20  # busybox nc leaves before the sidecar has answered
    while (row := rows_of(env, [name])[name])["status"] != "waiting":
        assert time.monotonic() < deadline, row
        time.sleep(0.2)
    assert isinstance(row["status_since"], str) and row["status_since"].endswith("+00:00")


def test_ls_states_orphan_and_rm_volumes(
    tmp_path: Path, test_image: str, cleanup: list[str]
) -> None:
    a, b = agent_name("ls-a"), agent_name("ls-b")
    cleanup += [a, b]
    env = make_env(tmp_path, {a: {"image": test_image}, b: {"image": test_image}})

    def states() -> dict[str, tuple[object, object]]:
        return {n: (r["state"], r["defined"]) for n, r in rows_of(env, [a, b]).items()}

    def exists(name: str) -> bool:
        return bool(docker_labelled(name)["container"])

    assert states() == {a: ("not created", True), b: ("not created", True)}
    ok(bd("up", a, env=env))
    ok(bd("up", b, env=env))
    assert states() == {a: ("running", True), b: ("running", True)}
    row = rows_of(env, [a])[a]
    assert row["bottle"] == f"bottle-{a}" and row["backend"] == "docker"
    assert row["image"] == test_image and row["created"]

    ok(bd("down", a, env=env))
    assert states() == {a: ("stopped", True), b: ("running", True)}
    assert exists(a)

    out = ok(bd("rm", b, env=env))
    assert "home volume kept" in out
    assert states() == {a: ("stopped", True), b: ("not created", True)}
    assert not exists(b)
    assert docker_labelled(b)["volume"]  # the home survives a plain rm

    # Agent a leaves the config: its bottle is still listed, marked as not defined.
    write_config(Path(env["BOTTLE_DASH_CONFIG"]), {b: {"image": test_image}})
    assert states() == {a: ("stopped", False), b: ("not created", True)}
    table = ok(bd("ls", env=env))
    assert f"{a} (not defined)" in table
    # An orphan can still be started (not launched), exec'd into and stopped by name.
    assert "started" in ok(bd("up", a, env=env))
    assert states() == {a: ("running", False), b: ("not created", True)}
    assert ok(bd("exec", a, "--", "id", "-u", env=env)).strip() == "1000"
    ok(bd("down", a, env=env))
    assert states() == {a: ("stopped", False), b: ("not created", True)}

    ok(bd("rm", "--volumes", a, env=env))
    ok(bd("rm", "--volumes", b, env=env))
    assert states() == {b: ("not created", True)}
    for name in (a, b):
        assert docker_labelled(name) == {"container": [], "volume": [], "network": []}


def test_attach_in_a_real_terminal_resumes(
    tmp_path: Path, test_image: str, workspace: Path, cleanup: list[str]
) -> None:
    name = agent_name("attach")
    cleanup.append(name)
    env = make_env(
        tmp_path,
        {name: {"image": test_image, "workspace": str(workspace), "prompt": "Be brief."}},
    )

    # Not running yet: attach launches it first, then claude starts with a new pinned
    # session (no conversation yet), in the bottle's session holder.
    first = attach_once(name, env=env)
    assert first.status == 0, first.output
    assert "launching it first" in first.output
    assert "STANDIN-CLAUDE fresh conversation turn=1" in first.output
    assert "(stdin is not a terminal)" not in first.output  # a real terminal
    # claude --session-id ID --dangerously-skip-permissions --settings HOOKS
    # --append-system-prompt-file ...
    assert "STANDIN-CLAUDE arg1=--session-id" in first.output
    assert "arg4=--settings" in first.output
    assert "arg6=--append-system-prompt-file" in first.output
    session = re.search(r"STANDIN-CLAUDE arg2=(\S+)", first.output)
    assert session is not None

    second = attach_once(name, env=env)
    assert "launching" not in second.output
    assert "STANDIN-CLAUDE continued conversation turn=2" in second.output
    assert "STANDIN-CLAUDE arg1=--resume" in second.output
    assert f"STANDIN-CLAUDE arg2={session.group(1)}" in second.output

    # The home volume keeps the conversation across a stop and a start.
    ok(bd("down", name, env=env))
    ok(bd("up", name, env=env))
    third = attach_once(name, env=env)
    assert "STANDIN-CLAUDE continued conversation turn=3" in third.output

    fresh = attach_once(name, "--fresh", env=env)
    assert "STANDIN-CLAUDE fresh conversation turn=1" in fresh.output
    assert "STANDIN-CLAUDE arg1=--session-id" in fresh.output
    assert f"STANDIN-CLAUDE arg2={session.group(1)}" not in fresh.output  # a new pin

    # A stopped bottle is started by attach, and still continues.
    ok(bd("down", name, env=env))
    fourth = attach_once(name, env=env)
    assert "is stopped; launching it first" in fourth.output
    assert "STANDIN-CLAUDE continued conversation turn=2" in fourth.output

    ok(bd("rm", "--volumes", name, env=env))


def test_attach_returns_claudes_status(tmp_path: Path, test_image: str, cleanup: list[str]) -> None:
    name = agent_name("status")
    cleanup.append(name)
    env = make_env(tmp_path, {name: {"image": test_image}})
    ok(bd("up", name, env=env))
    # Without a terminal the stand-in exits at once; its status comes back through attach.
    done = bd("attach", name, env=env)
    assert done.returncode == 0, done.stderr
    assert "STANDIN-CLAUDE fresh conversation turn=1" in done.stdout
    as_node = bd("exec", name, "--", "rm", "/usr/local/bin/claude", env=env)
    assert as_node.returncode == 1
    # node may not write there, and nobody may: the root is read-only.
    assert "Permission denied" in as_node.stderr or "Read-only file system" in as_node.stderr
    as_root = bd("exec", name, "--user", "root", "--", "rm", "/usr/local/bin/claude", env=env)
    assert as_root.returncode == 1 and "Read-only file system" in as_root.stderr
    knob = "mkdir -p ~/.claude/standin && echo 42 > ~/.claude/standin/exit-status"
    ok(bd("exec", name, "--", "sh", "-c", knob, env=env))
    failed = bd("attach", name, env=env)
    assert failed.returncode == 42  # claude's own status


def test_attach_to_a_running_bottle_after_its_workspace_is_gone(
    tmp_path: Path, test_image: str, cleanup: list[str]
) -> None:
    # Through the service, as the dashboard attaches (it keeps the last config that
    # loaded; the CLI refuses a config whose workspace is missing before any command).
    from backends.base import AgentSpec, ProvisionError
    from bottle_dash.service import AgentService

    name = agent_name("nows")
    cleanup.append(name)
    ws = tmp_path / "soon-gone"
    ws.mkdir()
    spec = AgentSpec(name=name, image=test_image, workspace=ws, prompt="p")
    service = AgentService()
    service.up(spec)
    # Gone from where the config says; the bind mount follows the moved directory (a
    # deleted one would leave docker exec no working directory at all).
    ws.rename(tmp_path / "moved-away")
    with pytest.raises(ProvisionError, match="is not a directory"):
        service.plan(spec)  # preparing again would fail on the workspace
    # attach reads the plan recorded at launch: no workspace check, the same claude args
    argv = service.attach_argv(service.row_of(spec), tty=False)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "STANDIN-CLAUDE fresh conversation turn=1" in done.stdout
    assert "--append-system-prompt-file" in done.stdout


def test_missing_image_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, docker_engine: None, cleanup: list[str]
) -> None:
    name = agent_name("noimage")
    cleanup.append(name)
    env = make_env(tmp_path, {name: {"image": "bottle-dash-no-such-image:never"}})
    done = bd("up", name, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("bottle-dash: error: ") == 1
    assert "bottle-dash-no-such-image:never" in done.stderr
    assert "\nfix: " in done.stderr
    assert docker_labelled(name) == {"container": [], "volume": [], "network": []}


def test_missing_skill_fails_naming_it_and_leaves_nothing(
    tmp_path: Path, test_image: str, cleanup: list[str]
) -> None:
    name = agent_name("noskill")
    cleanup.append(name)
    (tmp_path / "skills" / "review").mkdir(parents=True)
    skills = [str(tmp_path / "skills" / "review"), "skills/absent-skill"]
    env = make_env(tmp_path, {name: {"image": test_image, "skills": skills}})
    done = bd("up", name, env=env)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "absent-skill" in done.stderr and "\nfix: " in done.stderr
    assert docker_labelled(name) == {"container": [], "volume": [], "network": []}


def test_no_bottle_errors(tmp_path: Path, test_image: str) -> None:
    name = agent_name("nobottle")
    env = make_env(tmp_path, {name: {"image": test_image}})
    gone = bd("rm", name, env=env)
    assert gone.returncode == 1 and "Traceback" not in gone.stderr
    assert gone.stderr.startswith(f"bottle-dash: error: no bottle for agent {name}")
    assert "\nfix: " in gone.stderr
    stopped = bd("exec", name, "--", "id", env=env)
    assert stopped.returncode == 2
    assert (
        "not created, not running" in stopped.stderr
        and f"fix: bottle-dash up {name}" in stopped.stderr
    )
    assert "nothing to stop" in ok(bd("down", name, env=env))


def test_plan_json_is_the_dry_run(tmp_path: Path, test_image: str, workspace: Path) -> None:
    name = agent_name("plan")
    env = make_env(tmp_path, {name: {"image": test_image, "workspace": str(workspace)}})
    plan = json.loads(ok(bd("plan", name, "--json", env=env)))
    assert plan["bottle"] == f"bottle-{name}"
    assert plan["workspace"] == str(workspace)
    assert plan["labels"]["bottle-dash.agent"] == name
    assert docker_labelled(name) == {"container": [], "volume": [], "network": []}


def test_doctor_shows_each_agent_image_and_its_claude_code(tmp_path: Path, test_image: str) -> None:
    missing = f"bottle-dash-test-none:{agent_name('img')}"
    env = make_env(
        tmp_path,
        {agent_name("has"): {"image": test_image}, agent_name("lacks"): {"image": missing}},
    )
    done = bd("doctor", "--json", env=env)
    checks = {c["component"]: c for c in json.loads(done.stdout)}
    have = checks[f"image {test_image}"]
    assert have["ok"] and have["needed"]
    assert have["found"] == "Claude Code (version not recorded)"  # the test image has no label
    lacks = checks[f"image {missing}"]
    assert not lacks["ok"] and lacks["needed"]
    assert "not in the Docker engine" in lacks["problems"][0]["what"]
    assert "bottle-dash image build" in lacks["problems"][0]["fix"]
    assert done.returncode == 4  # a needed image is missing
    default = checks["image bottle-dash-agent:latest"]
    assert not default["needed"]  # no agent runs it
