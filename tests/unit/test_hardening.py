"""Hardening that needs no engine: owner labels, private file modes, the engine facts
doctor reports, the workspace paths mounted read-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from backends import ownership, paths
from backends.base import AgentSpec, bottle_labels
from backends.docker import hardening
from backends.docker.plan import TMPFS, git_read_only, prepare_plan
from bottle_dash import config as configmod

INFO_PLAIN = {
    "SecurityOptions": ["name=seccomp,profile=default"],
    "Driver": "overlay2",
    "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_owner_is_host_uid_and_config(tmp_path: Path) -> None:
    ownership.use_config(None)
    bare = ownership.current()
    assert bare == f"uid{os.getuid()}:none"
    ownership.use_config(tmp_path / "a.toml")
    first = ownership.current()
    ownership.use_config(tmp_path / "b.toml")
    assert ownership.current() != first and ownership.current().startswith(f"uid{os.getuid()}:")
    labels = bottle_labels("a1", "docker")
    assert labels[ownership.LABEL_OWNER] == ownership.current()
    assert ownership.is_mine(labels)
    assert not ownership.is_mine({**labels, ownership.LABEL_OWNER: first})
    assert not ownership.is_mine({k: v for k, v in labels.items() if k != ownership.LABEL_OWNER})
    err = ownership.foreign("a1", "bottle bottle-a1", first)
    assert "a1" in err.message and first in err.message and err.fix


def test_load_config_sets_the_owner(tmp_path: Path) -> None:
    ownership.use_config(None)
    configmod.load_config(tmp_path / "x.toml")
    mine = ownership.current()
    ownership.use_config(tmp_path / "x.toml")
    assert ownership.current() == mine != f"uid{os.getuid()}:none"


def test_state_files_are_private_in_private_folders(tmp_path: Path) -> None:
    top = paths.state_dir()
    assert not top.exists()
    prompt = paths.write_prompt("a1", "secret-ish")
    assert mode(prompt) == 0o600
    for folder in (prompt.parent, prompt.parent.parent, top):
        assert mode(folder) == 0o700, folder
    os.chmod(top, 0o755)  # an older bottle-dash made it with the umask: tightened again
    paths.write_private(paths.agent_state_dir("a1") / "exec.env", b"K=V\n")
    assert mode(top) == 0o700


def test_config_written_private(tmp_path: Path) -> None:
    start = configmod.write_starter()
    assert mode(start) == 0o600 and mode(start.parent) == 0o700
    other = tmp_path / "new" / "cfg.toml"
    configmod.append_agent(other, "a1", {"workspace": str(tmp_path)})
    assert mode(other) == 0o600 and mode(other.parent) == 0o700
    loose = tmp_path / "loose.toml"
    loose.write_text("")
    os.chmod(loose, 0o644)
    configmod.append_agent(loose, "a2", {"workspace": str(tmp_path)})
    assert mode(loose) == 0o600


def test_engine_facts_from_info() -> None:
    assert hardening.userns(INFO_PLAIN) is None
    assert hardening.userns({"SecurityOptions": ["name=userns"]}) == "userns-remap"
    assert hardening.userns({"SecurityOptions": ["name=rootless"]}) == "rootless"
    assert hardening.backing_filesystem(INFO_PLAIN) == "overlay2 on extfs"
    budget = hardening.disk_budget(INFO_PLAIN)
    assert budget["root"] == "read-only"
    assert budget["home"].startswith("not enforced") and "extfs" in budget["home"]
    assert budget["workspace"].startswith("not enforced")
    notes = hardening.notes(INFO_PLAIN)
    assert [n.fatal for n in notes] == [False, False]
    assert "user namespace" in notes[0].what and "userns-remap" in notes[0].fix
    assert "rootless" in notes[0].fix
    assert "disk budget" in notes[1].what and "pquota" in notes[1].fix
    remapped = {**INFO_PLAIN, "SecurityOptions": ["name=userns"]}
    assert all("user namespace" not in n.what for n in hardening.notes(remapped))


def test_plan_read_only_root_and_git_paths(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / ".git").mkdir(parents=True)
    (ws / ".git" / "config").write_text("[core]\n")
    plan = prepare_plan(AgentSpec(name="a1", workspace=ws), "docker")
    assert plan.extra["read_only_root"] is True
    assert plan.extra["tmpfs"] == TMPFS
    assert all("size=" in opts for opts in TMPFS.values())
    # the whole .git, read-only over the workspace; the plan writes nothing in it
    assert plan.extra["read_only_in_workspace"] == [".git"]
    assert not (ws / ".git" / "hooks").exists()
    assert git_read_only(str(tmp_path)) == []  # not a git workspace
    assert git_read_only(None) == []


@pytest.fixture(autouse=True)
def _no_owner_leak() -> None:
    ownership.use_config(None)


def test_workspace_findings_and_gained(tmp_path: Path) -> None:
    from backends import workspace

    ws = tmp_path / "ws"
    hooks = ws / ".git" / "hooks"
    hooks.mkdir(parents=True)
    (hooks / "pre-commit.sample").write_text("#!/bin/sh\n")
    (hooks / "pre-commit.sample").chmod(0o755)
    (ws / ".git" / "config").write_text("[core]\n\tbare = false\n")
    (ws / "inside").symlink_to(ws / ".git")
    assert workspace.findings(ws) == []
    workspace.record_baseline("a1", ws)
    hook = hooks / "post-checkout"
    hook.write_text("#!/bin/sh\ncurl evil\n")
    hook.chmod(0o755)
    (ws / ".git" / "config").write_text("[core]\n\tfsmonitor = ./x\n")
    (ws / "sub").mkdir()
    (ws / "sub" / "out").symlink_to("/etc/passwd")
    gained = workspace.gained("a1", ws)
    assert gained == [
        "executable git hook .git/hooks/post-checkout",
        "git setting core.fsmonitor in .git/config runs a command: ./x",
        "symlink sub/out leaves the workspace (/etc/passwd)",
    ]
    workspace.record_baseline("a1", ws)  # the first baseline is kept
    assert workspace.gained("a1", ws) == gained
