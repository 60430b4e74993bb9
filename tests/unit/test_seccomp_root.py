"""The docker bottle's seccomp profile (what it allows and refuses), the root agent in the
plan and the config key that refuses it, and the probe's reading of a profile."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from backends.base import AgentSpec, LaunchError
from backends.docker import seccomp
from backends.docker.plan import git_read_only, prepare_plan
from backends.plan import plan_warnings
from backends.probes.host import seccomp_summary
from bottle_dash import config as configmod

#: A profile shaped like Moby's default: one big allow rule, conditional rules after.
BASE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "syscalls": [
        {
            "names": ["read", "chmod", "fchmod", "fchmodat", "open", "openat", "openat2",
                      "creat", "mkdir", "mkdirat", "mknod", "mknodat", "io_uring_setup",
                      "io_uring_enter", "io_uring_register", "write"],
            "action": "SCMP_ACT_ALLOW",
            "args": [],
        },
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
    ],
}  # fmt: skip


def rules_for(profile: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in profile["syscalls"] if name in r["names"]]


def allowed(profile: dict[str, Any], name: str, args: dict[int, int]) -> bool:
    """What the kernel would decide for ``name(args)`` under ``profile`` (first match of
    any rule naming it; each rule's conditions all hold; default: refused)."""
    for rule in rules_for(profile, name):
        ok = True
        for cond in rule.get("args") or []:
            value = args.get(cond["index"], 0)
            if cond["op"] == "SCMP_CMP_MASKED_EQ":
                ok &= (value & cond["value"]) == cond["valueTwo"]
            elif cond["op"] == "SCMP_CMP_EQ":
                ok &= value == cond["value"]
        if ok:
            return rule["action"] == "SCMP_ACT_ALLOW"
    return False


def test_setuid_and_setgid_modes_are_refused_and_plain_ones_allowed() -> None:
    profile = seccomp.harden(BASE)
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    for name, index in seccomp.MODE_ARG.items():
        assert not any(not r.get("args") and r["action"] == "SCMP_ACT_ALLOW"
                       for r in rules_for(profile, name)), name  # fmt: skip
        for mode in (0o4755, 0o2755, 0o6755, 0o4000, 0o104755):
            flags = {seccomp.FLAGS_ARG[name]: 0o100} if name in seccomp.FLAGS_ARG else {}
            assert not allowed(profile, name, {index: mode, **flags}), (name, oct(mode))
        for mode in (0o755, 0o644, 0o1777, 0o100644, 0):
            assert allowed(profile, name, {index: mode}), (name, oct(mode))
    # open/openat read the mode only when creating: garbage there is not a refusal
    assert allowed(profile, "open", {1: 0o2, 2: 0o4755})
    assert allowed(profile, "openat", {2: 0o2, 3: 0o6000})
    assert not allowed(profile, "openat", {2: 0o20000000 | 0o200000, 3: 0o4755})  # O_TMPFILE
    # the rest of the base is kept as it was
    assert allowed(profile, "read", {}) and allowed(profile, "write", {})
    assert allowed(profile, "personality", {0: 8}) and not allowed(profile, "personality", {0: 1})
    assert BASE["syscalls"][0]["names"][1] == "chmod"  # the base is not changed


def test_openat2_and_io_uring_answer_enosys() -> None:
    profile = seccomp.harden(BASE)
    for name in ("openat2", "io_uring_setup", "io_uring_enter", "io_uring_register"):
        (rule,) = rules_for(profile, name)
        assert rule["action"] == "SCMP_ACT_ERRNO" and rule["errnoRet"] == 38, name


def test_a_file_that_is_not_a_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="no rule allows chmod"):
        seccomp.harden({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})


def test_the_base_is_found_where_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = tmp_path / "default.json"
    named.write_text(json.dumps(BASE))
    monkeypatch.setenv(seccomp.ENV_BASE, str(named))
    assert seccomp.base_path() == named
    text = seccomp.profile_text()
    assert json.loads(text) == seccomp.harden(BASE)
    assert seccomp.plan_entry()["base"] == str(named)
    named.write_text("{}")
    with pytest.raises(LaunchError) as err:
        seccomp.profile_text()
    assert seccomp.DEB_PACKAGE in str(err.value.fix)


def test_the_probe_reads_a_profile() -> None:
    good = "seccomp=" + json.dumps(seccomp.harden(BASE))
    assert seccomp_summary(["no-new-privileges", good]).startswith("setuid/setgid modes refused")
    assert "default profile" in seccomp_summary(["no-new-privileges"])
    loose = "seccomp=" + json.dumps(BASE)
    assert seccomp_summary([loose]).startswith("a profile that lets chmod")


# ----------------------------------------------------------------- root agent


def test_a_root_workspace_is_said_in_the_plan(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs a root-owned folder")
    os.chown(tmp_path, 0, 0)
    plan = prepare_plan(AgentSpec(name="a1", workspace=tmp_path), "docker")
    assert plan.uid == 0
    (warning,) = plan_warnings(plan)
    assert "runs as root (uid 0)" in warning and "allow_root = false" in warning
    os.chown(tmp_path, 1000, 1000)
    assert plan_warnings(prepare_plan(AgentSpec(name="a1", workspace=tmp_path), "docker")) == []


def test_allow_root_false_refuses_with_file_agent_key_and_fix(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs a root-owned folder")
    os.chown(tmp_path, 0, 0)
    source = tmp_path / "config.toml"
    with pytest.raises(LaunchError) as err:
        prepare_plan(AgentSpec(name="a1", workspace=tmp_path, allow_root=False, source=source),
                     "docker")  # fmt: skip
    text = str(err.value)
    assert str(source) in text and "agent a1" in text and "allow_root = false" in text
    assert "chown" in str(err.value.fix) and "allow_root = true" in str(err.value.fix)


def test_allow_root_in_the_config(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text("[defaults]\nallow_root = false\n[agents.a]\n[agents.b]\nallow_root = true\n")
    agents = configmod.load_config(file).agents
    assert agents["a"].allow_root is False and agents["b"].allow_root is True
    file.write_text('[agents.a]\nallow_root = "no"\n')
    with pytest.raises(configmod.ConfigError) as err:
        configmod.load_config(file)
    text = str(err.value)
    assert "allow_root" in text and "line 2" in text and "true or false" in text


def test_git_paths_of_a_git_file_and_a_symlink(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "real").mkdir(parents=True)
    (ws / "shared").mkdir()
    (ws / ".git").write_text("gitdir: real\n")
    (ws / "real" / "commondir").write_text("../shared\n")
    assert git_read_only(str(ws)) == [".git", "real", "shared"]
    (ws / ".git").write_text("gitdir: /outside/.git/worktrees/w\n")
    assert git_read_only(str(ws)) == [".git"]
    (ws / ".git").unlink()
    (ws / ".git").symlink_to(ws / "real")
    assert git_read_only(str(ws)) == []
    plan = prepare_plan(AgentSpec(name="a1", workspace=ws), "docker")
    assert any("is a symlink" in w for w in plan_warnings(plan))
