"""Shim tier: the smolmachines backend end to end against the stand-in smolvm.

launch (create, start, provision), exec as node and root, the prompt and skills in the
guest, listing, stop/start with the home kept, remove, and rollback of a failed launch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import psutil
import pytest

from backends.base import (
    GUEST_PROMPT,
    RUNNING,
    STOPPED,
    AgentSpec,
    BackendError,
    BottleNotFound,
    LaunchError,
    ProvisionError,
)
from backends.claude import GUEST_STATUS_DIR, STATUS_FILE
from backends.egress.spec import EgressSpec
from backends.paths import agent_state_dir
from backends.registry import get_backend
from backends.smolmachines import images
from backends.status_file import UNREADABLE, read_status_file
from tests.fakes.smolvm_support import STANDIN_PREFIX, standin_machines
from tests.support import agent_name

pytestmark = pytest.mark.shim

#: These tests drive the machine itself; the sealed path is test_smol_egress.py's.
UNSEALED = EgressSpec(sealed=False)

PROMPT = "You are 'careful'.\nSpend $0 on \"clouds\" and `backticks`;\n\ttabs and  spaces\n"


def make_skills(root: Path) -> list[Path]:
    review = root / "review"
    (review / "scripts").mkdir(parents=True)
    (review / "SKILL.md").write_text("# review\nit's $fine\n")
    (review / "scripts" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (review / "scripts" / "run.sh").chmod(0o755)
    other = root / "other skill"
    other.mkdir()
    (other / "SKILL.md").write_text("other\n")
    return [review, other]


def container_exists(machine: str) -> bool:
    done = subprocess.run(
        ["docker", "inspect", STANDIN_PREFIX + machine], capture_output=True, check=False
    )
    return done.returncode == 0


def test_lifecycle(standin: str, tmp_path: Path) -> None:
    backend = get_backend("smolmachines")
    name = agent_name("life")
    spec = AgentSpec(
        name=name,
        backend="smolmachines",
        egress=UNSEALED,
        image=standin,
        prompt=PROMPT,
        skills=tuple(make_skills(tmp_path / "skills")),
        env={"GREETING": "hello 'you' $USER\nbye", "API_TOKEN": "s3cret"},
    )
    plan = backend.prepare(spec)
    steps: list[str] = []
    bottle = backend.launch(plan, steps.append)
    assert steps[-1] == "ready" and any("provisioning" in s for s in steps)
    saved = json.loads((agent_state_dir(name) / "plan.json").read_text())
    assert saved["bottle"] == f"bottle-{name}" and saved["backend"] == "smolmachines"

    # exec: node by default (uid 1000, its HOME and USER, the agent's env), root on request
    done = bottle.exec('id -u; echo "$HOME|$USER"; printf %s "$GREETING"')
    assert done.ok, done.stderr
    uid, home, greeting = done.stdout.split("\n", 2)
    assert (uid, home) == ("1000", "/home/node|node")
    assert greeting == spec.env["GREETING"]
    assert bottle.exec("id -u", user="root").stdout.strip() == "0"
    assert bottle.exec("exit 3").returncode == 3

    # provisioning: the home is node's, the prompt byte for byte, 0600, node's; skills
    stat = bottle.exec(f"stat -c '%a %U' {GUEST_PROMPT}; stat -c %U /home/node", user="root")
    assert stat.stdout.split("\n")[:2] == ["600 node", "node"]
    assert bottle.exec(f"cat {GUEST_PROMPT}", user="root").stdout == PROMPT
    skills = bottle.exec(
        "cd ~/.claude/skills && find . -type f | sort && stat -c %U review review/scripts/run.sh"
        " 'other skill/SKILL.md' && cat review/SKILL.md && test -x review/scripts/run.sh"
    )
    assert skills.ok, skills.stderr
    assert skills.stdout.split("\n")[:3] == [
        "./other skill/SKILL.md",
        "./review/SKILL.md",
        "./review/scripts/run.sh",
    ]
    assert skills.stdout.split("\n")[3:6] == ["node", "node", "node"]
    assert "it's $fine" in skills.stdout

    # listing: one call, by label, with the VMM (here: the container's init) pid
    [info] = [b for b in backend.list_bottles() if b.agent == name]
    assert (info.backend, info.bottle, info.state) == ("smolmachines", f"bottle-{name}", RUNNING)
    assert info.host_pid and psutil.pid_exists(info.host_pid)
    assert info.labels["bottle-dash.version"]

    # attach: a handle that carries the guest env again
    again = backend.bottle(name)
    assert again.exec('printf %s "$GREETING"').stdout == spec.env["GREETING"]

    # stop/start: the VM's disk keeps the home
    bottle.exec("echo kept > ~/.claude/mark")
    backend.stop(name)
    [info] = [b for b in backend.list_bottles() if b.agent == name]
    assert info.state == STOPPED and info.host_pid is None
    backend.start(name)
    assert backend.bottle(name).exec("cat ~/.claude/mark").stdout.strip() == "kept"
    # The machine's workload output is what `logs` shows (pid 1 is root's in the VM).
    backend.bottle(name).exec("echo machine-log-marker > /proc/1/fd/1", user="root")
    assert "machine-log-marker" in backend.logs(name)

    # a second launch of the same agent is refused, and leaves the first one alone
    with pytest.raises(LaunchError, match="already exists"):
        backend.launch(plan)
    assert container_exists(f"bottle-{name}")

    # remove: refuses without volumes (the disk is the home), deletes with them
    with pytest.raises(BackendError, match="--volumes"):
        backend.remove(name)
    assert container_exists(f"bottle-{name}")
    backend.remove(name, volumes=True)
    assert not container_exists(f"bottle-{name}")
    assert all(b.agent != name for b in backend.list_bottles())
    with pytest.raises(BottleNotFound):
        backend.bottle(name)


def test_agent_writes_to_the_workspace(standin: str, tmp_path: Path) -> None:
    """The workspace is mounted writable: what the agent writes there lands on the host.
    The workspace is owned by uid 1000, the guest's node, like a checkout of a uid-1000
    operator."""
    backend = get_backend("smolmachines")
    name = agent_name("ws")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.chown(workspace, 1000, 1000)
    bottle = backend.launch(
        backend.prepare(
            AgentSpec(
                name=name,
                backend="smolmachines",
                egress=UNSEALED,
                image=standin,
                workspace=workspace,
            )
        )
    )
    try:
        done = bottle.exec("cd /workspace && echo from the agent > made && mkdir dir")
        assert done.ok, done.stderr
        assert (workspace / "made").read_text() == "from the agent\n"
        assert (workspace / "dir").is_dir()
    finally:
        backend.remove(name, volumes=True)


def test_failed_provision_leaves_no_machine(standin: str, tmp_path: Path) -> None:
    backend = get_backend("smolmachines")
    name = agent_name("rollback")
    [skill, _] = make_skills(tmp_path / "skills")
    plan = backend.prepare(
        AgentSpec(
            name=name, backend="smolmachines", egress=UNSEALED, image=standin, skills=(skill,)
        )
    )
    shutil.rmtree(skill)  # gone between plan and launch: provisioning fails
    with pytest.raises(ProvisionError, match="review"):
        backend.launch(plan)
    assert not container_exists(f"bottle-{name}")
    assert all(m["name"] != f"bottle-{name}" for m in standin_machines())
    assert all(b.agent != name for b in backend.list_bottles())
    assert not (agent_state_dir(name) / "plan.json").exists()


def test_failed_create_raises_launch_error(standin: str) -> None:
    backend = get_backend("smolmachines")
    name = agent_name("noimage")
    plan = backend.prepare(
        AgentSpec(
            name=name, backend="smolmachines", egress=UNSEALED, image="no-such-image-anywhere:1"
        )
    )
    with pytest.raises(LaunchError):
        backend.launch(plan)
    assert not container_exists(f"bottle-{name}")


def test_launch_from_cached_pack(standin: str) -> None:
    backend = get_backend("smolmachines")
    pack = backend.pack_image(standin)
    assert pack == images.pack_output(standin).with_suffix(".smolmachine") and pack.is_file()
    name = agent_name("pack")
    bottle = backend.launch(
        backend.prepare(
            AgentSpec(name=name, backend="smolmachines", egress=UNSEALED, image=standin)
        )
    )
    [record] = [m for m in standin_machines() if m["name"] == f"bottle-{name}"]
    assert record["image"] == str(pack)  # created --from the pack, not from Docker
    assert bottle.exec("id -un").stdout.strip() == "node"
    backend.remove(name, volumes=True)


def test_launch_from_docker_image_uses_cached_archive(standin: str) -> None:
    backend = get_backend("smolmachines")
    name = agent_name("archive")
    backend.launch(
        backend.prepare(
            AgentSpec(name=name, backend="smolmachines", egress=UNSEALED, image=standin)
        )
    )
    [record] = [m for m in standin_machines() if m["name"] == f"bottle-{name}"]
    assert record["image"].endswith(".tar") and Path(record["image"]).is_file()
    backend.remove(name, volumes=True)


def test_preflight_with_standin(standin: str) -> None:
    backend = get_backend("smolmachines")
    assert backend.version() and "smolvm" in str(backend.version())
    cpuinfo = Path("/proc/cpuinfo").read_text()
    problems = backend.preflight()
    if "vmx" not in cpuinfo and "svm" not in cpuinfo:
        assert any("cannot boot" in p.what and "bottle-dash-standin" in p.what for p in problems)


def test_status_hooks_write_through_the_volume(standin: str, tmp_path: Path) -> None:
    """The status dir is the machine's `--volume`: a hook run as the agent writes the
    word there, the host reads it; a symlink the agent leaves reads as nothing."""
    backend = get_backend("smolmachines")
    name = agent_name("status")
    plan = backend.prepare(
        AgentSpec(name=name, backend="smolmachines", egress=UNSEALED, image=standin)
    )
    bottle = backend.launch(plan)
    try:
        settings = json.loads(plan.claude_args[plan.claude_args.index("--settings") + 1])
        (entry,) = settings["hooks"]["Stop"]
        done = bottle.exec(entry["hooks"][0]["command"])
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        assert plan.status_dir is not None
        status_file = Path(plan.status_dir) / STATUS_FILE
        reading = read_status_file(status_file)
        assert reading is not None and reading.word == "idle"
        assert bottle.exec(f"ln -sf /etc/passwd {GUEST_STATUS_DIR}/{STATUS_FILE}").ok
        reading = read_status_file(status_file)
        assert reading is not None and reading.word == UNREADABLE
    finally:
        backend.remove(name, volumes=True)
