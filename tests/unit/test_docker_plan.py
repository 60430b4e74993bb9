"""The docker backend's pure parts: the plan, the archives, the build stream, the messages
for an engine that is not there. No Docker engine is needed."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from backends import paths
from backends.base import (
    AgentSpec,
    BackendError,
    BackendUnavailable,
    LaunchError,
    ProvisionError,
    is_slug,
)
from backends.bottle_plan import BottlePlan
from backends.docker import engine
from backends.docker.archive import file_tar, path_tar
from backends.docker.backend import DockerBackend
from backends.docker.image import follow_build
from backends.docker.plan import SECCOMP_OPT
from backends.egress.plan import guest_env
from backends.registry import get_backend
from tests.support import start_keepalive

NASTY = "line 1 \"q\" 'q' $(id) `x`\nline 2 ünï ✓\n"


def test_prepare_resolves_names_labels_limits_and_writes_prompt(tmp_path: Path) -> None:
    skill = tmp_path / "my-skill"
    skill.mkdir()
    spec = AgentSpec(
        name="alpha",
        image="img:1",
        workspace=tmp_path,
        prompt=NASTY,
        skills=(skill,),
        env={"B": "2", "A": "1"},
        memory=512 * 1024**2,
    )
    plan = DockerBackend().prepare(spec)
    assert plan.bottle == "bottle-alpha"
    assert plan.network == "bottle-alpha-net"
    assert plan.home_volume == "bottle-alpha-home"
    assert plan.labels["bottle-dash.agent"] == "alpha"
    assert plan.labels["bottle-dash.backend"] == "docker"
    assert plan.workspace == str(tmp_path.resolve())
    assert [k for k in plan.env if k in spec.env] == ["A", "B"]
    # Beside the agent's env, a sealed plan's env is the egress env (proxy, CA, telemetry).
    assert set(plan.env) - set(spec.env) == set(guest_env("p", "c", "", ""))
    assert plan.skills == [(str(skill.resolve()), "/home/node/.claude/skills/my-skill")]
    assert plan.memory == 512 * 1024**2
    assert plan.pids == 512  # the README's default
    assert plan.cpus and plan.cpus > 0
    assert plan.prompt_guest == "/home/node/.bottle-dash/prompt.md"
    prompt = Path(plan.prompt_host)
    assert prompt == paths.agent_state_dir("alpha") / "prompt.md"
    assert prompt.read_bytes() == NASTY.encode()
    assert stat.S_IMODE(prompt.stat().st_mode) == 0o600
    # The plan round-trips through JSON (attach reads it back).
    again = BottlePlan.from_dict(json.loads(plan.to_json()))
    assert again == plan


def test_prepare_defaults_and_empty_prompt_file_still_written() -> None:
    plan = DockerBackend().prepare(AgentSpec(name="beta"))
    assert plan.memory == 4 * 1024**3
    assert plan.workspace is None
    assert not plan.prompt_nonempty
    assert Path(plan.prompt_host).read_bytes() == b""


@pytest.mark.parametrize(("host_cpus", "cpus"), [(1, 1.0), (2, 2.0), (16, 2.0), (None, 1.0)])
def test_default_limits_are_the_readme_numbers(
    monkeypatch: pytest.MonkeyPatch, host_cpus: int | None, cpus: float
) -> None:
    """README: "defaults 512 pids, 4 GiB, 2 cpus" (fewer cpus on a smaller host). The
    numbers are the contract, so they are stated here, not read from the code."""
    monkeypatch.setattr("os.cpu_count", lambda: host_cpus)
    plan = DockerBackend().prepare(AgentSpec(name="beta"))
    assert (plan.pids, plan.memory, plan.cpus) == (512, 4 * 1024**3, cpus)


def test_agent_limits_override_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    plan = DockerBackend().prepare(AgentSpec(name="beta", cpus=3.5, memory=1024, pids=64))
    assert (plan.pids, plan.memory, plan.cpus) == (64, 1024, 3.5)


@pytest.mark.parametrize("backend", ["docker", "smolmachines"])
@pytest.mark.parametrize("name", ["team/web", "a/b", "web/"])
def test_a_name_with_a_slash_is_refused_before_any_host_state(backend: str, name: str) -> None:
    """A slash would nest the agent's host state folder and make an invalid bottle name."""
    assert not is_slug(name)
    with pytest.raises(BackendError, match="slug|not a valid agent name") as err:
        get_backend(backend).prepare(AgentSpec(name=name, backend=backend))
    assert err.value.agent == name
    assert not (paths.state_dir() / "agents").exists()


def test_plan_shows_the_hardening_and_where_the_agent_came_from(tmp_path: Path) -> None:
    source = tmp_path / "config.toml"
    plan = DockerBackend().prepare(AgentSpec(name="beta", source=source))
    assert plan.extra["cap_drop"] == ["ALL"]
    assert plan.extra["security_opt"] == ["no-new-privileges", SECCOMP_OPT]
    assert "setuid/setgid" in plan.extra["seccomp"]["profile"]
    assert plan.extra["home"] == "/home/node"
    assert plan.extra["home_mount"] == "/home"
    state = paths.agent_state_dir("beta")
    assert (plan.extra["passwd"], plan.extra["group"]) == (
        str(state / "passwd"), str(state / "group"),
    )  # fmt: skip
    assert plan.extra["source"] == str(source)
    # Sealed by default: unattended first, then the status hooks.
    assert plan.claude_args[:2] == ["--dangerously-skip-permissions", "--settings"]
    assert DockerBackend().prepare(AgentSpec(name="gamma")).extra["source"] is None


def test_keepalive_exits_0_at_once_on_sigterm() -> None:
    """The container's main process ends on `docker stop`'s SIGTERM (run here by the
    host's sh), so stopping never waits out the timeout."""
    proc = start_keepalive(DockerBackend().prepare(AgentSpec(name="beta")).extra["command"])
    proc.terminate()
    assert proc.wait(timeout=10) == 0


def prepare_error(tmp_path: Path, **fields: Any) -> str:
    spec = AgentSpec(**{"name": "alpha", "source": tmp_path / "config.toml", **fields})
    with pytest.raises(LaunchError) as err:
        DockerBackend().prepare(spec)
    assert err.value.agent == spec.name
    return str(err.value)


def test_prepare_errors_name_the_agent_its_config_and_the_fix(tmp_path: Path) -> None:
    src = tmp_path / "config.toml"
    with pytest.raises(LaunchError) as err:  # an agent from no config file
        DockerBackend().prepare(AgentSpec(name="Bad"))
    assert err.value.message == "agent name 'Bad' is not a slug"
    assert prepare_error(tmp_path, name="Bad") == (
        f"agent name 'Bad' (from {src}) is not a slug\n"
        "  fix: use lower-case letters, digits and '-', at most 40 characters"
    )
    ws = tmp_path / "gone"
    assert prepare_error(tmp_path, workspace=ws) == (
        f"workspace {ws} of agent alpha (from {src}) is not a directory\n"
        f"  fix: create it (`mkdir -p {ws}`) or change `workspace`"
    )
    assert prepare_error(tmp_path, skills=(ws,)) == (
        f"skill {ws} of agent alpha (from {src}) is not a directory\n"
        "  fix: create it or remove it from `skills`"
    )
    assert prepare_error(tmp_path, skills=(Path("/"),)) == (
        f"skill / of agent alpha (from {src}) has no directory name\n"
        "  fix: point `skills` at a skill's own directory"
    )
    (tmp_path / "a" / "review").mkdir(parents=True)
    (tmp_path / "b" / "review").mkdir(parents=True)
    twins = (tmp_path / "a" / "review", tmp_path / "b" / "review")
    assert prepare_error(tmp_path, skills=twins) == (
        f"two skills of agent alpha (from {src}) are both named 'review'\n"
        "  fix: rename one of the directories"
    )


@pytest.mark.parametrize("key", ["", "A=B", "A\0B"])
def test_prepare_refuses_env_keys_that_are_not_variable_names(tmp_path: Path, key: str) -> None:
    src = tmp_path / "config.toml"
    text = prepare_error(tmp_path, env={key: "v", "OK": "1"})
    assert text == (
        f"env key {key!r} of agent alpha (from {src}) is not a variable name\n"
        "  fix: use letters, digits and '_' in `env` keys"
    )


def test_prepare_missing_skill_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope-skill"
    with pytest.raises(ProvisionError, match="nope-skill") as err:
        DockerBackend().prepare(AgentSpec(name="alpha", skills=(missing,)))
    assert "alpha" in str(err.value)


def test_prepare_rejects_missing_workspace_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="gone"):
        DockerBackend().prepare(AgentSpec(name="alpha", workspace=tmp_path / "gone"))
    with pytest.raises(LaunchError, match="slug"):
        DockerBackend().prepare(AgentSpec(name="Not A Slug"))


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_file_tar_sets_owner_and_modes() -> None:
    data = file_tar(
        ".bottle-dash/prompt.md", b"x", mode=0o600, uid=1000, gid=1000,
        parents=[(".bottle-dash", 0o700)],
    )  # fmt: skip
    members = _members(data)
    assert list(members) == [".bottle-dash", ".bottle-dash/prompt.md"]
    assert members[".bottle-dash"].isdir() and members[".bottle-dash"].mode == 0o700
    assert members[".bottle-dash/prompt.md"].mode == 0o600
    assert {(m.uid, m.gid) for m in members.values()} == {(1000, 1000)}


def test_path_tar_directory_owner_and_top_mode(tmp_path: Path) -> None:
    src = tmp_path / "skill"
    (src / "sub").mkdir(parents=True)
    (src / "SKILL.md").write_text("hello")
    (src / "sub" / "run.sh").write_text("#!/bin/sh\n")
    (src / "sub" / "run.sh").chmod(0o755)
    (src / "link").symlink_to("SKILL.md")
    members = _members(path_tar(src, "skill", uid=1000, gid=1000, mode=0o750))
    assert set(members) == {
        "skill",
        "skill/SKILL.md",
        "skill/sub",
        "skill/sub/run.sh",
        "skill/link",
    }
    assert members["skill"].mode == 0o750
    assert members["skill/sub/run.sh"].mode == 0o755
    assert members["skill/link"].issym()
    assert {m.uid for m in members.values()} == {1000}


def test_follow_build_streams_lines_and_reports_the_last_error() -> None:
    lines: list[str] = []
    stream = [
        {"stream": "Step 1/2 : FROM x\n"},
        {"status": "Downloading", "id": "abc", "progressDetail": {"current": 5}},
        {"status": "Pull complete", "id": "abc", "progressDetail": {}},
        {"stream": " ---> 123\nStep 2/2 : RUN false\n"},
        {"error": "first\nThe command '/bin/sh -c false' returned a non-zero code: 1"},
    ]
    with pytest.raises(BackendError, match="returned a non-zero code: 1") as err:
        follow_build(stream, lines.append, tag="t:1")
    assert "t:1" in str(err.value)
    assert lines[:4] == [
        "Step 1/2 : FROM x",
        "abc: Pull complete",
        " ---> 123",
        "Step 2/2 : RUN false",
    ]
    ok = follow_build(
        [{"aux": {"ID": "sha256:1"}}, {"stream": "Successfully built 1\n"}], lines.append
    )
    assert ok == "sha256:1"


def test_unavailable_names_docker_host_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    err = engine.unavailable(ConnectionError(FileNotFoundError(2, "No such file or directory")))
    assert isinstance(err, BackendUnavailable)
    assert "unix:///var/run/docker.sock" in err.message
    assert "No such file or directory" in err.message
    assert err.fix and "systemctl start docker" in err.fix and "DOCKER_HOST" in err.fix
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")
    err = engine.unavailable(ConnectionError(PermissionError(13, "Permission denied")))
    assert "DOCKER_HOST=tcp://10.0.0.1:2375" in err.message
    assert err.fix and "docker group" not in err.message and "usermod" in err.fix


def test_missing_sdk_is_a_preflight_problem_with_the_pip_fix() -> None:
    # A fresh interpreter where `import docker` fails: the backend still imports, and
    # says what is missing and how to install it instead of raising ImportError.
    code = (
        "import sys; sys.modules['docker'] = None\n"
        "from backends.docker.backend import DockerBackend\n"
        "from backends.base import BackendUnavailable\n"
        "b = DockerBackend()\n"
        "[p] = b.preflight(); print(p.what); print(p.fix)\n"
        "try:\n    b.engine.api()\nexcept BackendUnavailable as e:\n    print(e.fix)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "Docker SDK is not importable" in lines[0]
    assert "pip install 'docker>=7.1,<8'" in lines[1]
    assert "pip install" in lines[2]


def test_importing_the_backend_does_not_import_the_sdk() -> None:
    # `bottle-dash ls` only reads; importing docker-py (~100 ms) is kept for writes.
    code = (
        "import sys\n"
        "import backends.docker.backend\n"
        "print(sorted(m for m in ('docker', 'requests', 'urllib3') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_prepare_refuses_a_skill_without_a_name() -> None:
    with pytest.raises(ProvisionError, match="no directory name"):
        DockerBackend().prepare(AgentSpec(name="alpha", skills=(Path("/"),)))


def test_agent_dockerfile_ships_inside_the_wheel() -> None:
    # hatch puts whole package directories in the wheel: the Dockerfile must live inside
    # one (checked for real with `pip wheel .` when this was written; this guards moves).
    import tomllib

    import backends
    from backends.docker.image import AGENT_IMAGE_DIR

    repo = Path(__file__).resolve().parents[2]
    config = tomllib.loads((repo / "pyproject.toml").read_text())
    packages = config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert "backends" in packages
    assert (AGENT_IMAGE_DIR / "Dockerfile").is_file()
    assert AGENT_IMAGE_DIR.is_relative_to(Path(backends.__file__).resolve().parent)
    text = (AGENT_IMAGE_DIR / "Dockerfile").read_text()
    for needed in (
        "FROM node:",
        "git",
        "ca-certificates",
        "util-linux",
        "@anthropic-ai/claude-code",
    ):
        assert needed in text
    assert "USER node" in text and "WORKDIR /workspace" in text


def test_a_sealed_plan_names_both_networks_and_the_sidecar_image() -> None:
    from backends.egress.image import sidecar_tag
    from backends.egress.spec import EgressSpec

    sealed = get_backend("docker").prepare(AgentSpec(name="sealed-a", egress=EgressSpec()))
    info = sealed.extra["egress"]
    assert info["sealed"] is True
    assert info["networks"] == {"internal": "bottle-sealed-a-net", "outer": "bottle-sealed-a-out"}
    assert info["image"] == sidecar_tag()
    assert info["image"].startswith("bottle-dash-egress")

    unsealed = get_backend("docker").prepare(
        AgentSpec(name="open-a", egress=EgressSpec(sealed=False))
    )
    assert unsealed.extra["egress"]["sealed"] is False
    assert "image" not in unsealed.extra["egress"]


def test_an_agent_that_asks_runs_claude_in_the_default_permission_mode() -> None:
    from backends.egress.spec import EgressSpec

    backend = get_backend("docker")
    asks = backend.prepare(
        AgentSpec(name="asks-a", egress=EgressSpec(sealed=False, skip_permissions=False))
    )
    assert asks.claude_args[:2] == ["--permission-mode", "default"]
    assert "--dangerously-skip-permissions" not in asks.claude_args

    skips = backend.prepare(AgentSpec(name="skips-a", egress=EgressSpec()))
    assert skips.claude_args[0] == "--dangerously-skip-permissions"
    assert "--permission-mode" not in skips.claude_args

    # A permission mode the agent's claude_args name wins.
    own = backend.prepare(
        AgentSpec(
            name="own-a",
            claude_args=("--permission-mode=plan",),
            egress=EgressSpec(sealed=False, skip_permissions=False),
        )
    )
    assert own.claude_args.count("--permission-mode") == 0
    assert "--permission-mode=plan" in own.claude_args


def test_the_missing_image_fix_names_the_image() -> None:
    from backends.docker.plan import IMAGE_FIX, image_fix

    assert image_fix("bottle-dash-agent:latest") == IMAGE_FIX
    assert "image build --tag bottle-dash-agent:mine" in image_fix("bottle-dash-agent:mine")
    custom = image_fix("registry.example/team/agent:3")
    assert "not an image bottle-dash builds" in custom and "image build" not in custom
    assert "docker pull registry.example/team/agent:3" in custom
