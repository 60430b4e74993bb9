"""The agent works in its workspace whatever uid owns it, and what it writes belongs to that
owner on the host: checked with ``stat`` from the host side, for a workspace owned by uid
1000 (the image's node), by another uid (1234), and by root (the operator being root).

The agent is reached the ways an operator reaches it: ``bottle-dash exec`` without
``--user``, and claude (the stand-in) through ``bottle-dash attach`` in a real terminal.
Both backends: docker, and smolmachines against the stand-in smolvm (shim tier).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.base import AgentSpec, LaunchError, ProvisionError
from backends.docker.backend import DockerBackend
from backends.docker.plan import KEEPALIVE
from tests.fakes.cli_run import bd
from tests.integration.cli_helpers import PtySession, write_config
from tests.support import agent_name

OWNERS = [1000, 1234, 0]

#: What the agent does in /workspace: create, change and delete files and folders, then
#: git init/add/commit/status. Run as one `sh -c` through `bottle-dash exec` (no --user).
AGENT_WORK = r"""
set -e
cd /workspace
echo new > made.txt
mkdir -p folder/inner && echo deep > folder/inner/deep.txt
echo changed >> seed.txt
rm gone.txt
mkdir trash && rmdir trash
git init -q repo
cd repo
echo code > main.py
git add main.py
git -c user.name=agent -c user.email=agent@bottle.invalid commit -q -m first
echo more >> main.py
git status --porcelain
"""


def _owners(root: Path) -> dict[str, str]:
    """``uid:gid`` of every path under ``root``, from the host's ``stat``."""
    argv = ["find", str(root), "-exec", "stat", "-c", "%u:%g %n", "{}", "+"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    owners: dict[str, str] = {}
    for line in out.splitlines():
        ids, _, path = line.partition(" ")
        owners[path] = ids
    return owners


def _as_host_user(uid: int, cwd: Path, script: str) -> subprocess.CompletedProcess[str]:
    """``sh -c script`` on the host as ``uid`` (no sudo, no capability): the operator. It
    starts in ``cwd`` (pytest's private tmp dirs above it are not the operator's)."""
    argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    if uid != 0:
        argv += ["--inh-caps=-all", "--bounding-set=-all"]
    return subprocess.run(
        [*argv, "--", "sh", "-c", script], cwd=cwd, capture_output=True, text=True
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stdout


@pytest.fixture
def rm_after() -> Iterator[list[tuple[str, dict[str, str]]]]:
    made: list[tuple[str, dict[str, str]]] = []
    yield made
    for name, env in made:
        bd("rm", "--volumes", name, env=env)


def _workspace(tmp_path: Path, owner: int) -> Path:
    """``tmp_path/my project`` owned by ``owner`` (mode 755, like a fresh ``mkdir``), with
    two files of the owner's in it."""
    ws = tmp_path / "my project"
    ws.mkdir()
    for name in ("seed.txt", "gone.txt"):
        (ws / name).write_text("from the operator\n")
        os.chown(ws / name, owner, owner)
    os.chown(ws, owner, owner)
    ws.chmod(0o755)
    return ws


def _claude_writes(name: str, env: dict[str, str], path: str) -> str:
    """Attach in a real terminal (the pane's argv: session holder included), have the
    stand-in claude write ``path``, and return what the terminal showed."""
    session = PtySession("attach", name, env=env)
    try:
        session.expect("STANDIN-CLAUDE size=")
        session.send(f"write {path}\n")
        session.expect(f"STANDIN-CLAUDE wrote {path}")
        session.send("exit\n")
        session.expect("STANDIN-CLAUDE bye")
    finally:
        done = session.finish()
    assert done.status == 0, done.output
    return done.output


def check_agent_owns_its_work(tmp_path: Path, name: str, agent: dict[str, str], owner: int) -> None:
    """Everything the issue asks, for one backend and one owner."""
    ws = _workspace(tmp_path, owner)
    config = tmp_path / "config.toml"
    write_config(config, {name: {**agent, "workspace": str(ws)}})
    env = {"BOTTLE_DASH_CONFIG": str(config)}

    plan = json.loads(_ok(bd("plan", name, "--json", env=env)))
    assert (plan["uid"], plan["gid"]) == (owner, owner)
    assert str(ws) in plan["uid_reason"]
    _ok(bd("up", name, env=env))

    # 1. The agent (exec without --user) is the workspace's owner, and can work there.
    ids = _ok(bd("exec", name, "--", "id", "-u", env=env)).strip()
    assert ids == str(owner)
    status = _ok(bd("exec", name, "--", "sh", "-c", AGENT_WORK, env=env))
    assert status.split() == ["M", "main.py"]
    log = _ok(bd("exec", name, "--", "git", "-C", "/workspace/repo", "log", "--oneline", env=env))
    assert log.strip().endswith("first")
    # No safe.directory override anywhere git would read it (repo, user, system).
    found = bd(
        "exec",
        name,
        "--",
        "sh",
        "-c",
        "cd /workspace/repo && git config --get-all safe.directory",
        env=env,
    )
    assert found.returncode == 1 and not found.stdout, found
    assert "safe.directory" not in (ws / "repo" / ".git" / "config").read_text()

    # 2. On the host, everything in the workspace belongs to its owner (host `stat`).
    owners = _owners(ws)
    assert owners[str(ws / "made.txt")] == f"{owner}:{owner}"
    assert owners[str(ws / "repo" / ".git" / "HEAD")] == f"{owner}:{owner}"
    assert {ids for ids in owners.values()} == {f"{owner}:{owner}"}, owners
    assert not (ws / "gone.txt").exists()
    assert (ws / "seed.txt").read_text() == "from the operator\nchanged\n"
    # ...and the operator (that uid, no sudo) edits and deletes what the agent made.
    _ok(_as_host_user(owner, ws, "echo edited >> made.txt && rm -r folder repo"))
    assert sorted(os.listdir(ws)) == ["made.txt", "seed.txt"]

    # Claude in a real terminal writes as the same owner, and its conversation starts.
    first = _claude_writes(name, env, "/workspace/by-claude.txt")
    assert f"STANDIN-CLAUDE start uid={owner} " in first
    assert "STANDIN-CLAUDE fresh conversation turn=1" in first
    assert _owners(ws)[str(ws / "by-claude.txt")] == f"{owner}:{owner}"

    # 3. Claude's home is the agent's, and its pinned session survives down/up.
    home = _ok(bd("exec", name, "--", "sh", "-c", "stat -c %u:%g $HOME; echo $HOME", env=env))
    assert home.split() == [f"{owner}:{owner}", "/home/node"]
    _ok(bd("down", name, env=env))
    _ok(bd("up", name, env=env))
    again = _claude_writes(name, env, "/workspace/again.txt")
    assert "STANDIN-CLAUDE continued conversation turn=2" in again
    assert _owners(ws)[str(ws / "again.txt")] == f"{owner}:{owner}"


@pytest.mark.docker
@pytest.mark.parametrize("owner", OWNERS)
def test_docker_agent_owns_its_work(
    tmp_path: Path,
    test_image: str,
    owner: int,
    rm_after: list[tuple[str, dict[str, str]]],
) -> None:
    name = agent_name(f"own-{owner}")
    rm_after.append((name, {"BOTTLE_DASH_CONFIG": str(tmp_path / "config.toml")}))
    check_agent_owns_its_work(tmp_path, name, {"image": test_image}, owner)

    # The hardening holds for every owner, root included: no capability, NoNewPrivs.
    env = {"BOTTLE_DASH_CONFIG": str(tmp_path / "config.toml")}
    status = _ok(bd("exec", name, "--", "cat", "/proc/self/status", env=env))
    assert "CapEff:\t0000000000000000" in status and "CapBnd:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status


@pytest.mark.shim
@pytest.mark.parametrize("owner", OWNERS)
def test_smolmachines_agent_owns_its_work(
    tmp_path: Path,
    standin: str,
    owner: int,
    rm_after: list[tuple[str, dict[str, str]]],
) -> None:
    name = agent_name(f"smol-own-{owner}")
    env = {"BOTTLE_DASH_CONFIG": str(tmp_path / "config.toml")}
    rm_after.append((name, env))
    check_agent_owns_its_work(tmp_path, name, {"backend": "smolmachines", "image": standin}, owner)

    # No capability for the agent in the VM; as uid 0 none can come back either.
    status = _ok(bd("exec", name, "--", "cat", "/proc/self/status", env=env))
    assert "CapEff:\t0000000000000000" in status
    if owner == 0:
        assert "CapBnd:\t0000000000000000" in status and "NoNewPrivs:\t1" in status


def _legacy_bottle(backend: DockerBackend, plan: Any) -> None:
    """A bottle as bottle-dash made it before agents ran as their workspace's owner: user
    ``node``, the home volume (no mount label) at /home/node, no account files mounted."""
    from docker.types import Mount

    from backends.egress.networks import create_network

    api = backend.engine.api()
    # Through the backend's own create_network: beside many bottles the engine's default
    # address pools run out, and it then picks a free range of its own (the raw SDK call
    # failed there: "all predefined address pools have been fully subnetted").
    create_network(api, plan.network, plan.labels, agent=plan.agent)
    api.create_volume(plan.home_volume, labels=plan.labels)
    mounts = [
        Mount(target="/home/node", source=plan.home_volume, type="volume"),
        Mount(target="/workspace", source=plan.workspace, type="bind"),
    ]
    host = api.create_host_config(
        mounts=mounts,
        network_mode=plan.network,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
    )
    api.create_container(
        plan.image,
        name=plan.bottle,
        entrypoint=list(KEEPALIVE),
        user="node",
        working_dir="/workspace",
        labels=plan.labels,
        host_config=host,
    )


@pytest.mark.docker
def test_docker_bottle_made_before_keeps_working_or_says_how_to_move_on(
    tmp_path: Path, test_image: str
) -> None:
    backend = DockerBackend()
    ws = _workspace(tmp_path, 1000)
    name = agent_name("legacy")
    plan = backend.prepare(AgentSpec(name=name, image=test_image, workspace=ws))
    _legacy_bottle(backend, plan)
    try:
        # Workspace of uid 1000: the old bottle starts and works as it did.
        backend.start(name)
        bottle = backend.bottle(name)
        done = bottle.exec("id -u; echo old > /workspace/old.txt; mkdir -p ~/.claude/standin")
        assert done.ok and done.stdout.split() == ["1000"], done
        assert bottle.exec("echo 1 > ~/.claude/standin/conversation").ok
        assert _owners(ws)[str(ws / "old.txt")] == "1000:1000"
        backend.stop(name)

        # The workspace changes hands: the old bottle refuses to start, and says how on.
        os.chown(ws, 1234, 1234)
        with pytest.raises(LaunchError) as refused:
            backend.start(name)
        assert "1000:1000" in refused.value.message and "1234:1234" in refused.value.message
        assert refused.value.fix and f"bottle-dash rm {name}" in refused.value.fix

        # Following the fix: rm (the home is kept) and up. New bottles have a read-only
        # root, where the engine cannot re-own a home kept at /home/node (it unpacks only
        # into volumes, and the home is the volume's root): the launch says so, with the
        # way on, and leaves nothing behind.
        backend.remove(name)
        with pytest.raises(ProvisionError) as stuck:
            backend.launch(backend.prepare(AgentSpec(name=name, image=test_image, workspace=ws)))
        assert "1234:1234" in stuck.value.message
        assert stuck.value.fix and f"bottle-dash rm --volumes {name}" in stuck.value.fix
        assert f"chown -R 1000:1000 {ws}" in stuck.value.fix
        # Its first way: a new home (mounted at /home), owned by the agent's uid.
        backend.remove(name, volumes=True)
        bottle = backend.launch(
            backend.prepare(AgentSpec(name=name, image=test_image, workspace=ws))
        )
        done = bottle.exec("id -u; stat -c %u ~; echo new > /workspace/new.txt")
        assert done.ok and done.stdout.split() == ["1234", "1234"], done
        assert _owners(ws)[str(ws / "new.txt")] == "1234:1234"
    finally:
        with contextlib.suppress(Exception):
            backend.remove(name, volumes=True)


@pytest.mark.shim
def test_smolmachines_machine_follows_its_workspace_owner_on_start(
    tmp_path: Path,
    standin: str,
    rm_after: list[tuple[str, dict[str, str]]],
) -> None:
    """A machine made while node was uid 1000 (every machine made before this, or one
    whose workspace changed hands) is put right as root in the VM when it starts."""
    name = agent_name("smol-moved")
    ws = _workspace(tmp_path, 1000)
    config = tmp_path / "config.toml"
    write_config(
        config, {name: {"backend": "smolmachines", "image": standin, "workspace": str(ws)}}
    )
    env = {"BOTTLE_DASH_CONFIG": str(config)}
    rm_after.append((name, env))
    _ok(bd("up", name, env=env))
    _ok(bd("exec", name, "--", "sh", "-c", "echo kept > ~/mark", env=env))
    _ok(bd("down", name, env=env))
    os.chown(ws, 1234, 1234)
    _ok(bd("up", name, env=env))
    out = _ok(bd("exec", name, "--", "sh", "-c", "id -u; stat -c %u ~/mark; cat ~/mark", env=env))
    assert out.split() == ["1234", "1234", "kept"]
    _ok(bd("exec", name, "--", "touch", "/workspace/after-move", env=env))
    assert _owners(ws)[str(ws / "after-move")] == "1234:1234"
