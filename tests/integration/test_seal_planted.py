"""What an agent can leave for the host, tried for real: in a docker bottle and in a shim
machine the agent attacks the operator's ``.git`` (a directory, and the ``.git`` FILE of a
worktree) and tries every setuid/setgid trick, as uid 1000 and as root (a root-owned
workspace); then attacks planted in a workspace are shown to be real (the host's own
git runs them) and caught by the workspace check, in a table.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from backends import workspace
from backends.base import AgentSpec
from backends.egress.spec import EgressSpec
from backends.probes import planted
from backends.registry import get_backend
from tests.support import agent_name

UNSEALED = EgressSpec(sealed=False)


def git_repo(ws: Path, owner: int) -> None:
    """A real repository (``git init``) in ``ws``, owned by ``owner``."""
    ws.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    subprocess.run(["git", "-C", str(ws), "config", "core.bare", "false"], check=True)
    for path in (ws, *ws.rglob("*")):
        os.chown(path, owner, owner, follow_symlinks=False)


def attack_lines(bottle: Any, script: str, user: str) -> list[str]:
    done = bottle.exec(script, user=user, timeout=120)
    return [ln.strip() for ln in done.stdout.splitlines() if ln.strip()]


def launched(backend_name: str, name: str, ws: Path, image: str) -> Any:
    backend = get_backend(backend_name)
    spec = AgentSpec(name=name, backend=backend_name, image=image, workspace=ws, egress=UNSEALED)
    plan = backend.prepare(spec)
    return backend, backend.launch(plan), plan


def check_bottle(backend_name: str, image: str, tmp_path: Path, owner: int) -> dict[str, Any]:
    """Launch a bottle on a git workspace owned by ``owner``, run the agent's attacks,
    and return what went through; the bottle is removed after."""
    ws = tmp_path / f"ws{owner}"
    git_repo(ws, owner)
    name = agent_name(f"plant-{backend_name[:1]}{owner}")
    backend, bottle, plan = launched(backend_name, name, ws, image)
    try:
        assert plan.uid == owner
        git = attack_lines(bottle, planted.GIT_ATTACKS, plan.user)
        setid = attack_lines(bottle, planted.SETUID_TRICKS, plan.user)
        host_view = workspace.findings(ws)
        return {"git": git, "setid": setid, "host": host_view, "ws": ws, "plan": plan}
    finally:
        backend.remove(name, volumes=True)


@pytest.mark.docker
@pytest.mark.parametrize("owner", [1000, 0])
def test_docker_agent_cannot_touch_git_or_set_bits(
    test_image: str, tmp_path: Path, owner: int
) -> None:
    got = check_bottle("docker", test_image, tmp_path, owner)
    print(got["git"], got["setid"], sep="\n")
    assert "done" in got["git"] and not [g for g in got["git"] if g.startswith("HIT")]
    assert "done" in got["setid"] and not [s for s in got["setid"] if s.startswith("SET")]
    # nothing of it reached the host: the repository is intact and no file has a bit
    assert (got["ws"] / ".git" / "HEAD").read_text().startswith("ref: ")
    assert not [f for f in got["host"] if "setuid" in f or "setgid" in f], got["host"]
    if owner == 0:
        assert any("runs as root" in w for w in got["plan"].extra["warnings"])


@pytest.mark.docker
def test_docker_git_file_of_a_worktree_is_read_only(test_image: str, tmp_path: Path) -> None:
    main = tmp_path / "main"
    git_repo(main, 0)
    subprocess.run(
        ["git", "-C", str(main), "-c", "user.email=t@t", "-c", "user.name=t", "commit",
         "-q", "--allow-empty", "-m", "first"], check=True,
    )  # fmt: skip
    wt = tmp_path / "wt"
    subprocess.run(["git", "-C", str(main), "worktree", "add", "-q", str(wt)], check=True)
    for path in (wt, *wt.rglob("*")):
        os.chown(path, 1000, 1000, follow_symlinks=False)
    before = (wt / ".git").read_text()
    name = agent_name("plant-wt")
    backend, bottle, plan = launched("docker", name, wt, test_image)
    try:
        assert plan.extra["read_only_in_workspace"] == [".git"]
        lines = attack_lines(bottle, planted.GIT_ATTACKS, plan.user)
        assert "done" in lines and not [ln for ln in lines if ln.startswith("HIT")], lines
        # the agent's error is git's own read-only error, not a silent success
        err = bottle.exec("echo 'gitdir: /tmp' > /workspace/.git", timeout=60)
        assert err.returncode != 0 and "Read-only" in err.stderr, err
    finally:
        backend.remove(name, volumes=True)
    assert (wt / ".git").read_text() == before


@pytest.mark.shim
def test_shim_agent_cannot_touch_git_and_bits_are_cleared(
    standin: str,
    tmp_path: Path,
) -> None:
    """A VM has its own kernel: no host seccomp, so the bits stick in the workspace; the
    host's workspace check flags and clears them. The .git directory is read-only."""
    got = check_bottle("smolmachines", standin, tmp_path, 1000)
    print(got["git"], got["setid"], sep="\n")
    assert "done" in got["git"] and not [g for g in got["git"] if g.startswith("HIT")]
    stuck = [s for s in got["setid"] if s.startswith("SET") and s.endswith("/workspace")]
    assert stuck, got["setid"]  # what the seccomp profile prevents on docker
    ws = got["ws"]
    flagged = [f for f in got["host"] if planted.MARK in f]
    assert len(flagged) >= len(stuck), (flagged, stuck)
    workspace.record_baseline("shim-agent", ws / "nothing-here")  # empty baseline
    cleared = workspace.gained("shim-agent", ws)
    assert [c for c in cleared if c.endswith("bits cleared by bottle-dash")], cleared
    assert not [f for f in workspace.findings(ws) if "setuid" in f or "setgid" in f]


# ----------------------------------------------------------------- planted attacks


def _plant_commondir(ws: Path, cmd: str) -> None:
    evil = ws / "build" / "common"
    evil.parent.mkdir()
    subprocess.run(["cp", "-a", str(ws / ".git"), str(evil)], check=True)
    (evil / "config").write_text(f"[core]\n\trepositoryformatversion = 0\n\tfsmonitor = {cmd}\n")
    (ws / ".git" / "commondir").write_text("../build/common\n")


def _plant_git_file(ws: Path, cmd: str) -> None:
    copy = ws / "lib" / "copy"
    copy.parent.mkdir()
    subprocess.run(["cp", "-a", str(ws / ".git"), str(copy)], check=True)
    with (copy / "config").open("a") as f:
        f.write(f"[core]\n\tfsmonitor = {cmd}\n")
    os.rename(ws / ".git", ws / ".git-moved")
    (ws / ".git").write_text("gitdir: lib/copy\n")


def _plant_include(ws: Path, cmd: str) -> None:
    (ws / "docs").mkdir()
    (ws / "docs" / "style.cfg").write_text(f"[core]\n\tfsmonitor = {cmd}\n")
    with (ws / ".git" / "config").open("a") as f:
        f.write("[include]\n\tpath = ../docs/style.cfg\n")


def _plant_submodule(ws: Path, cmd: str) -> None:
    sub = ws / "vendor"
    git_repo(sub, 0)
    (ws / ".git" / "modules").mkdir()
    os.rename(sub / ".git", ws / ".git" / "modules" / "vendor")
    (sub / ".git").write_text("gitdir: ../.git/modules/vendor\n")
    with (ws / ".git" / "modules" / "vendor" / "config").open("a") as f:
        f.write(f"\tworktree = ../../../vendor\n[core]\n\tfsmonitor = {cmd}\n")


def _plant_setuid(ws: Path, cmd: str) -> None:
    (ws / "tool").write_bytes(b"#!/bin/sh\nid\n")
    os.chmod(ws / "tool", 0o4755)


ATTACKS = {
    "commondir -> own dir with core.fsmonitor": (_plant_commondir, ["status"]),
    ".git file naming a copy": (_plant_git_file, ["status"]),
    "include.path -> file with core.fsmonitor": (_plant_include, ["status"]),
    "submodule config (.git/modules) fsmonitor": (_plant_submodule, ["-C", "vendor", "status"]),
    "setuid file": (_plant_setuid, []),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_planted_attack_is_real_and_caught(attack: str, tmp_path: Path) -> None:
    """Each attack, planted as an agent on main's code could: the host's git really runs
    the planted command (so the attack is real), and the workspace check names it."""
    plant, git_args = ATTACKS[attack]
    ws = tmp_path / "ws"
    git_repo(ws, 0)
    workspace.record_baseline("victim", ws)
    ran = tmp_path / "ran"
    plant(ws, f"touch {ran}; false")
    if git_args:
        subprocess.run(["git", "-C", str(ws), *git_args], capture_output=True, check=False)
        assert ran.exists(), f"{attack}: the host's git did not run the planted command"
    caught = workspace.gained("victim", ws)
    print(f"{attack:45s} -> caught by workspace check: {caught}")
    assert caught, attack
    if attack == "setuid file":
        assert caught == ["setuid file tool (mode 4755): bits cleared by bottle-dash"]
        assert os.stat(ws / "tool").st_mode & 0o7777 == 0o755
    else:
        assert any("runs a command: touch" in c for c in caught), caught
