"""The agent works in its workspace whatever uid owns it, and what it writes belongs to that
owner on the host: checked with ``stat`` from the host side, for a workspace owned by uid
1000 (the image's node), by another uid (1234), and by root (the operator being root).

The agent is reached the ways an operator reaches it: ``bottle-dash exec`` without
``--user``, and claude (the stand-in) through ``bottle-dash attach`` in a real terminal.
Both backends: docker, and smolmachines against the stand-in smolvm (shim tier).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import PtySession, write_config
from cli_run import bd
from conftest import agent_name

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
    """Attach in a real terminal (the pane's argv: resume fallback included), have the
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

    # 3. Claude's home is the agent's, and --continue survives down/up.
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
