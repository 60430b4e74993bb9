"""The one home of every per-agent file (``backends.agent_files``): each file the backends
write for an agent is named there with the way it reaches the bottle or its sidecar, and
the modules that read or write one use the table's names."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from backends import agent_files as af
from backends import paths, status_file, workspace
from backends.base import AgentSpec
from backends.claude import STATUS_FILE
from backends.docker import plan as docker_plan
from backends.docker.backend import DockerBackend
from backends.docker.bottle import DockerBottle
from backends.egress import credential, folder, sidecar
from backends.egress import policy as pol
from backends.egress.spec import EgressSpec
from backends.guest import GUEST_CA, GUEST_PROMPT, GUEST_STATUS_DIR, GUEST_WORKSPACE
from backends.probes import record

OAUTH = "sk-ant-oat01-" + "a" * 40


def test_every_entry_is_named_once_and_says_how_it_reaches_a_bottle() -> None:
    in_state = [e.path for e in af.AGENT_FILES if e.path]
    assert len(in_state) == len(set(in_state))
    routes = {af.BIND, af.COPY, af.EXEC_ENV, af.SIDECAR, af.VOLUME}
    for entry in af.AGENT_FILES:
        assert bool(entry.path) != bool(entry.config_key), entry
        assert entry.holds and entry.writer in ("host", "sidecar", "bottle"), entry
        assert set(entry.backends) <= {af.DOCKER, af.SMOLMACHINES, af.KUBERNETES}, entry
        for reach in entry.reaches:
            assert reach.route in routes, entry
            if reach.route == af.EXEC_ENV:
                assert reach.target == "", entry
            else:
                assert reach.target.startswith("/"), entry
            if reach.route == af.SIDECAR:
                # Only through the egress folder, which only the sidecar mounts.
                assert reach.target.startswith(pol.SIDECAR_DIR), entry
                assert entry.path.split("/")[0] == af.EGRESS_DIR, entry
    # Nothing in the egress folder reaches the bottle but the CA's certificate.
    into_bottle = {
        e.path
        for e in af.AGENT_FILES
        if e.path.startswith(af.EGRESS_DIR) and any(r.route != af.SIDECAR for r in e.reaches)
    }
    assert into_bottle == {af.EGRESS_CA_CERT.path}
    assert af.target(af.EGRESS_CA_CERT, af.COPY) == GUEST_CA
    assert af.target(af.PROMPT, af.COPY) == GUEST_PROMPT


def test_the_modules_that_use_a_file_use_its_entrys_name() -> None:
    # The sidecar's own modules cannot import the project: their names are the table's.
    assert af.EGRESS_POLICY.name == pol.POLICY_FILE
    assert af.EGRESS_CREDENTIAL.name == pol.CREDENTIAL_FILE
    assert af.EGRESS_CA.name == pol.CA_FILE
    assert af.EGRESS_CA_CERT.name == pol.CA_CERT_FILE
    assert af.EGRESS_LOG_FILE.name == pol.LOG_FILE
    assert af.EGRESS_STATUS.name == pol.STATUS_FILE == status_file.RELAYED_FILE
    assert af.EGRESS_UPSTREAM_CA.name == folder.UPSTREAM_CA_FILE
    assert af.EGRESS_PLACEHOLDER.name == credential.PLACEHOLDER_FILE
    assert af.SEAL_RECORD.path == record.SEAL_FILE
    assert af.WORKSPACE_BASELINE.path == workspace.BASELINE_FILE
    assert af.WORKSPACE_CLEARED.path == workspace.CLEARED_FILE
    assert (af.PASSWD.path, af.GROUP.path) == (docker_plan.PASSWD_FILE, docker_plan.GROUP_FILE)
    assert paths.plan_file("a1") == paths.agent_path("a1", af.PLAN)
    assert paths.egress_dir("a1") == paths.agent_path("a1", af.EGRESS)
    assert paths.egress_log("a1") == paths.agent_path("a1", af.EGRESS_LOG_FILE)
    assert paths.status_dir("a1") == paths.agent_path("a1", af.STATUS)
    assert status_file.status_file("a1") == str(paths.status_dir("a1") / STATUS_FILE)
    assert status_file.relayed_status_file("a1") == str(paths.agent_path("a1", af.EGRESS_STATUS))
    with pytest.raises(ValueError, match="workspace"):
        paths.agent_path("a1", af.WORKSPACE)


def test_bottle_binds_are_the_bind_entries_in_mount_order(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    plan = DockerBackend().prepare(
        AgentSpec(name="a1", workspace=tmp_path, egress=EgressSpec(sealed=False))
    )
    binds = af.bottle_binds(plan)
    state = paths.agent_state_dir("a1")
    assert binds == [
        af.Bind(str(state / "passwd"), "/etc/passwd", read_only=True),
        af.Bind(str(state / "group"), "/etc/group", read_only=True),
        af.Bind(str(tmp_path), GUEST_WORKSPACE),
        af.Bind(f"{tmp_path}/.git", f"{GUEST_WORKSPACE}/.git", read_only=True),
        af.Bind(str(state / "status"), GUEST_STATUS_DIR),
    ]
    # Every bind's target is one the table names.
    named = {r.target for e in af.AGENT_FILES for r in e.reaches if r.route == af.BIND}
    assert {b.target for b in binds} - named == {f"{GUEST_WORKSPACE}/.git"}


def test_a_sealed_bottle_binds_no_status_folder_and_its_sidecar_the_egress_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", OAUTH)
    plan = DockerBackend().prepare(AgentSpec(name="a1"))
    assert GUEST_STATUS_DIR not in {b.target for b in af.bottle_binds(plan)}
    assert af.sidecar_binds(plan) == [af.Bind(str(paths.egress_dir("a1")), pol.SIDECAR_DIR)]


def test_every_file_a_sealed_docker_launch_writes_on_the_host_is_in_the_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # What prepare, the sidecar's files and a pane's exec write (the engine's part, the
    # account files and the plan's record, is written the same way: named entries).
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", OAUTH)
    (tmp_path / "ca.pem").write_text("x")
    spec = AgentSpec(name="a1", egress=EgressSpec(upstream_ca=tmp_path / "ca.pem"))
    plan = DockerBackend().prepare(spec)
    folder.write_sidecar_files(plan, internal=["10.0.0.0/28"])
    paths.save_plan(plan)
    DockerBottle(engine=None, agent="a1", env=plan.env).env_file()  # type: ignore[arg-type]
    state = paths.agent_state_dir("a1")
    written = {
        str(PurePosixPath(os.path.relpath(Path(d) / n, state)))
        for d, dirs, files in os.walk(state)
        for n in [*dirs, *files]
    }
    named = {e.path for e in af.AGENT_FILES if e.path}
    assert written - named == set()
    assert {"prompt.md", "plan.json", "exec.env", "egress/credential"} <= written
    assert af.EGRESS_UPSTREAM_CA.path in written
    # ... and the sidecar's command names its upstream CA where the table says.
    argv = sidecar.mitmdump_argv(plan)
    upstream = af.target(af.EGRESS_UPSTREAM_CA, af.SIDECAR)
    assert f"ssl_verify_upstream_trusted_ca={upstream}" in argv
