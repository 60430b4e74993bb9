"""The docker backend against a real Docker engine and the offline test image.

One hardened bottle is launched per module for the read-only checks (hardening, limits,
exec, prompt, skills); lifecycle and failure tests make their own. Every agent is named
``t<run>-...`` so the conftest sweep removes leftovers; each test removes what it made.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pty
import select
import shutil
import socket
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from backends import registry, run
from backends.base import (
    LABEL_AGENT,
    RUNNING,
    STOPPED,
    AgentSpec,
    BackendError,
    BackendUnavailable,
    BottleNotFound,
    ImageNotFound,
    LaunchError,
    ProvisionError,
)
from backends.claude import GUEST_STATUS_DIR, status_settings_arg
from backends.docker import engine
from backends.docker.backend import DockerBackend
from backends.docker.bottle import DockerBottle
from backends.docker.image import AGENT_IMAGE_DIR, build_agent_image
from backends.egress.plan import SKIP_PERMISSIONS
from backends.holder import held_argv
from backends.status_file import RELAYED_FILE, read_status_file
from tests.support import agent_name

pytestmark = pytest.mark.docker

NASTY_PROMPT = (
    "You are \"agent\" 'one'.\n$(touch /tmp/pwned) `id` ${HOME} \\ backslash\n"
    "ünïcødé ✓ 日本語\n\ttab; rm -rf / | cat &\n\nlast line without newline"
)
NASTY_ARG = "a b \"c\" 'd' $(id) `x`\nnewline ✓"
MIB = 1024**2


def labelled(agent: str) -> dict[str, list[str]]:
    """Every container, network and volume carrying ``bottle-dash.agent=<agent>``."""
    api = DockerBackend().engine.api()
    filters = {"label": f"{LABEL_AGENT}={agent}"}
    return {
        "containers": [c["Id"] for c in api.containers(all=True, filters=filters)],
        "networks": [n["Name"] for n in api.networks(filters=filters)],
        "volumes": [v["Name"] for v in (api.volumes(filters=filters) or {}).get("Volumes") or []],
    }


def nothing_left(agent: str) -> bool:
    return not any(labelled(agent).values())


@pytest.fixture
def backend() -> Iterator[DockerBackend]:
    made = DockerBackend()
    yield made
    made.engine.forget()


@pytest.fixture(scope="module")
def shared(test_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One launched bottle with a nasty prompt, two skills, env and tight limits."""
    base = tmp_path_factory.mktemp("shared")
    with pytest.MonkeyPatch.context() as mp:
        # Module scope runs outside the per-test isolation: pin the state dir ourselves.
        mp.setenv("XDG_STATE_HOME", str(base / "state"))
        skills = base / "skills"
        (skills / "review" / "refs").mkdir(parents=True)
        (skills / "review" / "SKILL.md").write_text("# Review\nbe kind ✓\n")
        (skills / "review" / "refs" / "notes.txt").write_text("nested\n")
        (skills / "deploy").mkdir()
        (skills / "deploy" / "SKILL.md").write_text("# Deploy\n")
        workspace = base / "ws"
        workspace.mkdir()
        (workspace / "README").write_text("host file\n")
        # Owned by uid 1000, as an operator whose uid is the image's node would have it:
        # the agent runs as its workspace's owner (test_workspace_owner covers the others).
        os.chown(workspace, 1000, 1000)
        name = agent_name("hard")
        backend = DockerBackend()
        spec = AgentSpec(
            name=name,
            image=test_image,
            workspace=workspace,
            prompt=NASTY_PROMPT,
            skills=(skills / "review", skills / "deploy"),
            env={"STANDIN_ENV": NASTY_ARG, "PLAIN": "1"},
            claude_args=("--verbose",),
            cpus=1.0,
            memory=256 * MIB,
            pids=128,
        )
        plan = backend.prepare(spec)
        steps: list[str] = []
        bottle = backend.launch(plan, steps.append)
        try:
            yield {
                "backend": backend,
                "bottle": bottle,
                "plan": plan,
                "spec": spec,
                "steps": steps,
                "state": base / "state",
            }
        finally:
            backend.remove(name, volumes=True)


def sh(bottle: DockerBottle, script: str, user: str = "node") -> str:
    done = bottle.exec(script, user=user)
    assert done.ok, done
    return done.stdout


# ----------------------------------------------------------------------- hardening


def test_launch_reports_its_steps(shared: dict[str, Any]) -> None:
    steps = shared["steps"]
    for step in ("creating the network", "creating the container", "copying the prompt"):
        assert step in steps
    assert steps[-1] == "running"


def test_bottle_is_hardened(shared: dict[str, Any]) -> None:
    bottle = shared["bottle"]
    assert sh(bottle, "id -u").strip() == "1000"
    status = sh(bottle, "cat /proc/1/status")
    assert "CapEff:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status
    own = sh(bottle, "cat /proc/self/status")
    assert "CapEff:\t0000000000000000" in own and "NoNewPrivs:\t1" in own
    # No Docker socket anywhere it would usually be.
    assert bottle.exec("test -e /var/run/docker.sock || test -e /run/docker.sock").returncode == 1


def test_limits_and_mounts_in_the_engine(shared: dict[str, Any]) -> None:
    backend, plan = shared["backend"], shared["plan"]
    info = backend.engine.api().inspect_container(plan.bottle)
    host = info["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    # no-new-privileges, and the seccomp profile that refuses setuid/setgid modes.
    assert host["SecurityOpt"][0] == "no-new-privileges" and len(host["SecurityOpt"]) == 2
    assert host["SecurityOpt"][1].startswith("seccomp=")
    assert host["PidsLimit"] == 128
    assert host["Memory"] == 256 * MIB
    assert host["MemorySwap"] == 256 * MIB
    assert host["NanoCpus"] == 1_000_000_000
    assert not host.get("Privileged")
    assert info["Config"]["User"] == "1000:1000"
    assert info["Config"]["WorkingDir"] == "/workspace"
    assert list(info["NetworkSettings"]["Networks"]) == [plan.network]
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    # A sealed bottle has no status mount: its hooks send their word to the sidecar.
    assert set(mounts) == {"/home", "/workspace", "/etc/passwd", "/etc/group"}
    assert mounts["/home"]["Type"] == "volume"
    assert mounts["/home"]["Name"] == plan.home_volume
    assert mounts["/workspace"]["Source"] == plan.workspace
    # The agent's account files: generated on the host, read-only in the bottle.
    for target in ("/etc/passwd", "/etc/group"):
        assert mounts[target]["Type"] == "bind" and mounts[target]["RW"] is False
    assert mounts["/etc/passwd"]["Source"] == plan.extra["passwd"]
    assert not any("docker.sock" in (m.get("Source") or "") for m in info["Mounts"])
    for key, value in plan.labels.items():
        assert info["Config"]["Labels"][key] == value
    api = backend.engine.api()
    assert api.inspect_network(plan.network)["Labels"] == plan.labels
    assert api.inspect_volume(plan.home_volume)["Labels"] == {
        **plan.labels,
        "bottle-dash.home-mount": "/home",  # read back at the next launch (a contract)
    }


def test_status_hooks_reach_the_host_through_the_sidecar(shared: dict[str, Any]) -> None:
    """A sealed bottle's hook sends its word to the sidecar, which keeps it for the host;
    the bottle itself has no status folder to write (nothing of it lands on the host)."""
    bottle, plan = shared["bottle"], shared["plan"]
    assert plan.status_dir is None
    settings = json.loads(plan.claude_args[plan.claude_args.index("--settings") + 1])
    (entry,) = settings["hooks"]["PermissionRequest"]
    done = bottle.exec(entry["hooks"][0]["command"])  # as the agent user, like claude would
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    # The plan's egress folder: this module's bottle lives in the module's own state dir.
    relayed = Path(plan.extra["egress"]["dir"]) / RELAYED_FILE
    deadline = time.monotonic() + 20
    while (reading := read_status_file(relayed)) is None or reading.word != "permission":
        assert time.monotonic() < deadline, reading
        time.sleep(0.1)
    missing = bottle.exec(f"ls -A {GUEST_STATUS_DIR} || echo none")
    assert missing.stdout.strip().endswith("none"), missing


def test_exec_default_user_is_node_and_root_works(shared: dict[str, Any]) -> None:
    bottle = shared["bottle"]
    assert sh(bottle, "id -un; id -u; pwd").split() == ["node", "1000", "/workspace"]
    assert sh(bottle, "id -u", user="root").strip() == "0"
    assert sh(bottle, "cat README").strip() == "host file"
    failed = bottle.exec("echo out; echo err >&2; exit 7")
    assert (failed.returncode, failed.stdout, failed.stderr) == (7, "out\n", "err\n")


def test_bottles_do_not_reach_each_other(
    shared: dict[str, Any], backend: DockerBackend, test_image: str
) -> None:
    bottle, plan = shared["bottle"], shared["plan"]
    api = backend.engine.api()
    networks = api.inspect_container(plan.bottle)["NetworkSettings"]["Networks"]
    address = networks[plan.network]["IPAddress"]
    name = agent_name("neighbour")
    other = backend.launch(backend.prepare(AgentSpec(name=name, image=test_image)))
    try:
        sh(bottle, "(echo hello | nc -l -p 8080 >/dev/null 2>&1 &); sleep 0.2")
        blocked = other.exec(f"echo x | nc -w 1 {address} 8080")
        assert "hello" not in blocked.stdout
        # The listener is up: the bottle itself reaches it.
        assert "hello" in sh(bottle, f"echo x | nc -w 2 {address} 8080")
    finally:
        backend.remove(name, volumes=True)


# ----------------------------------------------------------------------- provisioning


def test_prompt_in_guest_is_byte_identical_private_and_node_owned(shared: dict[str, Any]) -> None:
    bottle, plan = shared["bottle"], shared["plan"]
    want = NASTY_PROMPT.encode()
    assert Path(plan.prompt_host).read_bytes() == want
    digest = sh(bottle, f"sha256sum {plan.prompt_guest}").split()[0]
    assert digest == hashlib.sha256(want).hexdigest()
    assert sh(bottle, f"cat {plan.prompt_guest}") == NASTY_PROMPT
    assert sh(bottle, f"stat -c '%a %u %U' {plan.prompt_guest}").split() == ["600", "1000", "node"]


def test_skills_are_present_with_content(shared: dict[str, Any]) -> None:
    bottle = shared["bottle"]
    skills = "/home/node/.claude/skills"
    assert sh(bottle, f"cat {skills}/review/SKILL.md") == "# Review\nbe kind ✓\n"
    assert sh(bottle, f"cat {skills}/review/refs/notes.txt") == "nested\n"
    assert sh(bottle, f"cat {skills}/deploy/SKILL.md") == "# Deploy\n"
    owners = sh(bottle, f"find {skills} -exec stat -c '%u' {{}} +").split()
    assert set(owners) == {"1000"}


def test_cp_in_files_and_directories_with_owner_and_mode(
    shared: dict[str, Any], tmp_path: Path
) -> None:
    bottle = shared["bottle"]
    src = tmp_path / "notes ✓.txt"
    src.write_bytes(NASTY_PROMPT.encode())
    bottle.cp_in(src, "/home/node/new dir/deeper/notes.txt", mode=0o640)
    target = "'/home/node/new dir/deeper/notes.txt'"
    assert sh(bottle, f"cat {target}") == NASTY_PROMPT
    assert sh(bottle, f"stat -c '%a %U' {target} '/home/node/new dir'").split() == [
        *["640", "node"],
        *["755", "node"],
    ]
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "b.txt").write_text("b\n")
    bottle.cp_in(tree, "/tmp/tree", user="root")
    assert sh(
        bottle, "cat /tmp/tree/a/b.txt; stat -c '%u' /tmp/tree /tmp/tree/a/b.txt"
    ).split() == [*["b", "0", "0"]]
    with pytest.raises(BackendError, match="does not exist"):
        bottle.cp_in(tmp_path / "missing", "/tmp/x")


def test_claude_argv_reaches_the_standin_verbatim(shared: dict[str, Any]) -> None:
    bottle, plan = shared["bottle"], shared["plan"]
    args = [*plan.claude_args, NASTY_ARG]
    done = run.run(bottle.claude_argv(args, tty=False), timeout=60)
    assert done.ok, done
    lines = done.stdout.splitlines()
    start = [line for line in lines if line.startswith("STANDIN-CLAUDE start ")]
    assert start and "uid=1000" in start[0] and "cwd=/workspace" in start[0]
    assert f"STANDIN-CLAUDE argc={len(args)}" in lines
    # Sealed (the default), so claude runs unattended: that flag comes first.
    assert f"STANDIN-CLAUDE arg1={SKIP_PERMISSIONS}" in lines
    assert "STANDIN-CLAUDE arg2=--settings" in lines
    assert f"STANDIN-CLAUDE arg3={status_settings_arg()}" in lines  # the hooks, verbatim
    assert "STANDIN-CLAUDE arg4=--append-system-prompt-file" in lines
    assert f"STANDIN-CLAUDE arg5={plan.prompt_guest}" in lines
    assert "STANDIN-CLAUDE arg6=--verbose" in lines
    # The nasty argument arrived as one argument, byte for byte (it spans two lines).
    assert f"STANDIN-CLAUDE arg7={NASTY_ARG}" in done.stdout
    assert f"STANDIN-CLAUDE env STANDIN_ENV={NASTY_ARG}" in done.stdout


def test_env_reaches_exec_through_a_private_file_not_argv(
    shared: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Env values ride in ``--env-file`` (mode 0600), byte for byte, and never appear in the
    command line a pane shows; a value with a line break is the one that stays ``-e``."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    secret = "  sk-ant 'q' \"dq\" $(id) `x` #not-a-comment a=b ünï ✓  "
    env = {"FILE_ONLY_SECRET": secret, "MULTI_LINE": "one\ntwo"}
    bottle = DockerBottle(shared["backend"].engine, shared["plan"].agent, env=env)
    argv = bottle.claude_argv([])
    assert not any(secret in item for item in argv)
    assert "--env-file" in argv and argv[9:11] == ["-e", "MULTI_LINE=one\ntwo"]
    env_file = Path(argv[argv.index("--env-file") + 1])
    assert env_file.stat().st_mode & 0o777 == 0o600
    script = 'printf "[%s]" "$FILE_ONLY_SECRET"; printf "<%s>" "$MULTI_LINE"'
    assert sh(bottle, script) == f"[{secret}]<one\ntwo>"
    assert sh(bottle, script, user="root") == f"[{secret}]<one\ntwo>"


def test_list_attach_and_host_pid(shared: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    backend, plan = shared["backend"], shared["plan"]
    mine = [i for i in backend.list_bottles() if i.agent == plan.agent]
    assert len(mine) == 1
    info = mine[0]
    assert (info.state, info.bottle, info.backend) == (RUNNING, plan.bottle, "docker")
    assert info.created and info.ident
    pid = backend.host_pid(info)
    assert pid and Path(f"/proc/{pid}").exists()
    assert backend.host_pid(info) == pid  # cached, same answer
    # Its tree holds the main process and what `docker exec` starts (claude in a pane).
    marker = f"sleep 4{os.getpid() % 1000}"
    execd = subprocess.Popen(
        shared["bottle"].exec_argv(["sh", "-c", f"exec {marker}"]), stdin=subprocess.DEVNULL
    )
    try:
        tree: list[list[str]] = []
        for _ in range(50):
            tree = [p.cmdline() for p in psutil.Process(pid).children(recursive=True)]
            if marker.split() in tree:
                break
            time.sleep(0.1)
        assert marker.split() in tree
        assert any("trap 'exit 0' TERM" in " ".join(cmd) for cmd in tree)
    finally:
        execd.kill()
        execd.wait()
    monkeypatch.setenv("XDG_STATE_HOME", str(shared["state"]))
    handle = backend.bottle(plan.agent)
    assert handle.running and handle.env == plan.env
    assert handle.claude_argv([]) == shared["bottle"].claude_argv([])
    # What the bottle's main process writes is what `logs` shows (the agent's own uid
    # owns pid 1, so it can write there).
    handle.exec("echo bottle-log-marker > /proc/1/fd/1")
    assert "bottle-log-marker" in backend.logs(plan.agent, tail=10)


def test_agent_writes_to_the_workspace(shared: dict[str, Any]) -> None:
    """The workspace is bind-mounted writable: what the agent writes lands on the host.
    The workspace is owned by uid 1000, the guest's node, like a uid-1000 operator's."""
    workspace = Path(shared["plan"].workspace)
    os.chown(workspace, 1000, 1000)
    sh(shared["bottle"], "cd /workspace && echo from the agent > made && mkdir dir")
    assert (workspace / "made").read_text() == "from the agent\n"
    assert (workspace / "dir").is_dir()


def test_listing_leaves_out_other_backends_and_other_tools(
    shared: dict[str, Any], test_image: str
) -> None:
    """Real containers of another backend (bottle-dash labels, backend smolmachines, as the
    smolvm stand-in makes them) and of another tool (no bottle-dash labels, a bottle-like
    name) are on the same engine; `list_bottles` shows neither."""
    backend, plan = shared["backend"], shared["plan"]
    api = backend.engine.api()
    smol = agent_name("smol-listed")
    other = f"bottle-{agent_name('other-tool')}"
    made = [
        api.create_container(
            test_image,
            name=f"bottle-{smol}",
            command=["true"],
            labels={
                "bottle-dash.agent": smol,
                "bottle-dash.backend": "smolmachines",
                "bottle-dash.version": "0.1.0",
            },
        )["Id"],
        api.create_container(
            test_image, name=other, command=["true"], labels={"com.example.tool": "1"}
        )["Id"],
    ]
    try:
        listed = backend.list_bottles()
        assert plan.agent in {i.agent for i in listed}
        assert not {i.ident for i in listed} & set(made)
        assert smol not in {i.agent for i in listed}
        assert other not in {i.bottle for i in listed}
        assert {i.labels["bottle-dash.backend"] for i in listed} == {"docker"}
    finally:
        for ident in made:
            api.remove_container(ident, force=True)


# ----------------------------------------------------------------------- lifecycle


def test_lifecycle_states_home_survives_and_rm_volumes_leaves_nothing(
    backend: DockerBackend, test_image: str
) -> None:
    name = agent_name("life")
    plan = backend.prepare(AgentSpec(name=name, image=test_image, prompt="p"))

    def state() -> str | None:
        found = [i.state for i in backend.list_bottles() if i.agent == name]
        assert len(found) <= 1
        return found[0] if found else None

    try:
        assert state() is None
        with pytest.raises(BottleNotFound):
            backend.bottle(name)
        bottle = backend.launch(plan)
        assert state() == RUNNING
        sh(bottle, "echo kept > ~/note")
        assert backend.launch(plan).name == bottle.name  # running: a no-op
        backend.stop(name)
        assert state() == STOPPED
        with pytest.raises(BottleNotFound, match="not running"):
            bottle.exec("true")
        assert not backend.bottle(name).running
        assert backend.host_pid(next(i for i in backend.list_bottles() if i.agent == name)) is None
        backend.start(name)
        assert state() == RUNNING
        assert sh(bottle, "cat ~/note") == "kept\n"
        backend.stop(name)
        relaunched = backend.launch(plan)  # stopped: start and provision again
        assert state() == RUNNING
        assert sh(relaunched, "cat ~/note") == "kept\n"
        backend.remove(name)
        assert state() is None
        left = labelled(name)
        assert left["containers"] == [] and left["networks"] == []
        assert left["volumes"] == [plan.home_volume]
        with pytest.raises(BottleNotFound, match="home volume"):
            backend.remove(name)
        again = backend.launch(plan)  # the kept home comes back
        assert sh(again, "cat ~/note") == "kept\n"
        backend.remove(name, volumes=True)
        assert state() is None
        assert nothing_left(name)
    finally:
        if not nothing_left(name):
            backend.remove(name, volumes=True)


def test_skill_gone_after_prepare_fails_naming_it_and_leaves_nothing(
    backend: DockerBackend, test_image: str, tmp_path: Path
) -> None:
    name = agent_name("noskill")
    skill = tmp_path / "vanishing-skill"
    skill.mkdir()
    (skill / "SKILL.md").write_text("x")
    plan = backend.prepare(AgentSpec(name=name, image=test_image, skills=(skill,)))
    shutil.rmtree(skill)
    steps: list[str] = []
    with pytest.raises(ProvisionError, match="vanishing-skill") as err:
        backend.launch(plan, steps.append)
    assert name in str(err.value)
    assert "starting the container" in steps  # it failed after the container ran
    assert nothing_left(name)


def test_failed_create_rolls_back_network_and_volume(
    backend: DockerBackend, test_image: str
) -> None:
    name = agent_name("toobig")
    plan = backend.prepare(AgentSpec(name=name, image=test_image))
    plan.cpus = float((os.cpu_count() or 1) * 64)  # the engine refuses more CPUs than exist
    with pytest.raises(LaunchError, match="creating the container") as err:
        backend.launch(plan)
    assert name in str(err.value) and "CPU" in str(err.value)
    assert nothing_left(name)


def test_missing_image_names_image_agent_and_fix(backend: DockerBackend) -> None:
    name = agent_name("noimage")
    plan = backend.prepare(AgentSpec(name=name, image="bottle-dash-no-such-image:never"))
    with pytest.raises(ImageNotFound) as err:
        backend.launch(plan)
    text = str(err.value)
    assert "bottle-dash-no-such-image:never" in text and name in text
    # A custom image: the fix names that image, not the default build (#24).
    assert "docker load" in text and "change `image`" in text
    assert "bottle-dash image build" not in text
    assert nothing_left(name)


def test_foreign_container_with_the_bottle_name_is_refused(
    backend: DockerBackend, test_image: str
) -> None:
    name = agent_name("foreign")
    plan = backend.prepare(AgentSpec(name=name, image=test_image))
    api = backend.engine.api()
    api.create_container(test_image, name=plan.bottle, command=["true"])
    try:
        with pytest.raises(LaunchError, match="did not create"):
            backend.launch(plan)
        with pytest.raises(BottleNotFound):
            backend.bottle(name)
    finally:
        api.remove_container(plan.bottle, force=True)


def test_operations_on_a_missing_bottle(backend: DockerBackend) -> None:
    name = agent_name("ghost")
    for call in (backend.bottle, backend.stop, backend.start, backend.logs, backend.remove):
        with pytest.raises(BottleNotFound, match=name):
            call(name)
    gone = DockerBottle(backend.engine, name)
    with pytest.raises(BottleNotFound):
        gone.exec("true")


# ----------------------------------------------------------------------- engine down


def test_docker_down_is_backend_unavailable_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    registry.reset()
    backend = registry.get_backend("docker")
    problems = backend.preflight()
    assert problems, "a dead engine must be reported"
    engine_problem = problems[0]
    assert "unix:///nonexistent.sock" in engine_problem.what
    assert "sudo dockerd" in engine_problem.fix and "DOCKER_HOST" in engine_problem.fix
    with pytest.raises(BackendUnavailable) as err:
        backend.list_bottles()
    assert "DOCKER_HOST=unix:///nonexistent.sock" in str(err.value)
    assert "systemctl start docker" in str(err.value)
    plan = backend.prepare(AgentSpec(name=agent_name("down")))
    for call in (
        lambda: backend.launch(plan),
        lambda: backend.bottle("x"),
        lambda: backend.stop("x"),
        lambda: backend.remove("x", volumes=True),
        lambda: build_agent_image("t:never"),
        lambda: DockerBottle(backend.engine, "x").exec("true"),  # via the docker CLI
    ):
        with pytest.raises(BackendUnavailable, match="nonexistent.sock"):
            call()


# ----------------------------------------------------------------------- image build


def test_image_build_streams_progress_and_reports_failure(test_image: str, tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "Dockerfile").write_text(f"FROM {test_image}\nRUN echo built-ok-marker\n")
    lines: list[str] = []
    tag = f"bottle-dash-build-test:{agent_name('img')}"
    api = DockerBackend().engine.api()
    try:
        image_id = build_agent_image(tag, lines.append, context=good)
        assert image_id
        assert any(line.startswith("Step 1/2") for line in lines)
        assert "built-ok-marker" in lines
        assert api.inspect_image(tag)
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "Dockerfile").write_text(f"FROM {test_image}\nRUN exit 3\n")
    with pytest.raises(BackendError, match="returned a non-zero code: 3"):
        build_agent_image(tag, lines.append, context=bad)


def test_shipped_dockerfile_build_is_attempted_and_fails_cleanly(tmp_path: Path) -> None:
    # The real base image cannot be pulled here; point FROM at a registry that can never
    # resolve (.invalid) so the attempt fails fast everywhere, online or not.
    text = (AGENT_IMAGE_DIR / "Dockerfile").read_text()
    assert "@anthropic-ai/claude-code" in text and "USER node" in text
    assert "WORKDIR /workspace" in text
    context = tmp_path / "ctx"
    shutil.copytree(AGENT_IMAGE_DIR, context)
    lines = text.splitlines()
    (context / "Dockerfile").write_text(
        "\n".join(
            "FROM bottle-dash.invalid/node:22" if line.startswith("FROM ") else line
            for line in lines
        )
    )
    seen: list[str] = []
    with pytest.raises(BackendError) as err:
        build_agent_image("bottle-dash-agent:never", seen.append, context=context)
    assert "bottle-dash.invalid" in str(err.value)
    assert seen[0].startswith("building bottle-dash-agent:never")


# ----------------------------------------------------------------------- a real terminal


def run_in_pty(argv: list[str], *, timeout: float = 30) -> str:
    """Run ``argv`` on a fresh 30x100 PTY; once the stand-in reports that size, type
    ``exit``. Returns everything the terminal showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other side closed
                    break
                if not chunk:
                    break
                out += chunk
            # Docker 20.10 sizes an exec's terminal just after it starts (the stand-in may
            # see 0x0 first, then a resize): wait for the real size before typing.
            if not sent and b"STANDIN-CLAUDE size=" in out and b"30x100" in out:
                os.write(master, b"exit\n")
                sent = True
            if proc.poll() is not None and not ready:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        os.close(master)
    return out.decode(errors="replace")


def test_held_claude_in_a_pty_continues_across_stop_and_start(
    backend: DockerBackend, test_image: str
) -> None:
    name = agent_name("pty")
    plan = backend.prepare(AgentSpec(name=name, image=test_image, prompt="hello"))
    try:
        bottle = backend.launch(plan)

        def attach() -> str:
            argv = bottle.claude_argv(plan.claude_args, tty=True)
            return run_in_pty(held_argv(argv, len(plan.claude_args)))

        first = attach()
        assert "fresh conversation turn=1" in first, first
        assert "size=30x100" in first, first  # a real terminal, sized like the host's
        second = attach()
        assert "continued conversation turn=2" in second, second
        backend.stop(name)
        backend.start(name)
        third = attach()
        assert "continued conversation turn=3" in third, third
    finally:
        backend.remove(name, volumes=True)


# ----------------------------------------------------------------------- tcp engine


class TcpToUnix:
    """A TCP port that forwards every connection to the engine's unix socket, so the
    SDK path (used for any DOCKER_HOST that is not a unix socket) runs against the real
    engine."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()


def test_a_tcp_docker_host_reads_through_the_sdk(
    shared: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = (os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock").removeprefix("unix://")
    proxy = TcpToUnix(sock)
    try:
        monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{proxy.port}")
        registry.reset()
        backend = registry.get_backend("docker")
        assert [p for p in backend.preflight() if "CLI" not in p.what] == []
        plan = shared["plan"]
        mine = [i for i in backend.list_bottles() if i.agent == plan.agent]
        assert [i.state for i in mine] == [RUNNING]
        assert backend.host_pid(mine[0])
        assert backend.bottle(plan.agent).running
        with pytest.raises(BottleNotFound):
            backend.bottle(agent_name("nobody"))
    finally:
        proxy.close()
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # nothing listens on port 1
    registry.reset()
    with pytest.raises(BackendUnavailable, match="tcp://127.0.0.1:1"):
        registry.get_backend("docker").list_bottles()


def test_a_docker_context_is_followed_like_the_cli(
    shared: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rootless Docker and Docker Desktop pick their socket with a CLI context, not
    # DOCKER_HOST: the backend must find the engine where `docker exec` (the panes) does.
    real = (os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock").removeprefix("unix://")
    alt = tmp_path / "context.sock"
    alt.symlink_to(real)
    config = tmp_path / "docker-config"
    name = "bottle-dash-test"
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    endpoint = {"Host": f"unix://{alt}", "SkipTLSVerify": False}
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}})
    )
    (config / "config.json").write_text(json.dumps({"currentContext": name}))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setenv("XDG_STATE_HOME", str(shared["state"]))
    registry.reset()
    backend = registry.get_backend("docker")
    assert engine.docker_host() == f"unix://{alt}"
    plan = shared["plan"]
    assert [i.state for i in backend.list_bottles() if i.agent == plan.agent] == [RUNNING]
    assert sh(backend.bottle(plan.agent), "id -u").strip() == "1000"  # the CLI follows too
    assert backend.engine.api().version()["ApiVersion"]  # and so does the SDK client
    alt.unlink()
    registry.reset()
    with pytest.raises(BackendUnavailable, match="docker context 'bottle-dash-test'"):
        registry.get_backend("docker").list_bottles()
