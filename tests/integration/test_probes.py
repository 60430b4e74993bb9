"""Probes tier: the escape probes against live bottles, on the docker backend (real
containers from the offline test image) and on the shim (the stand-in smolvm), and the
hardening they check holding after a bottle restart.

Each probe's expected outcome on each backend is in ``EXPECTED``. A probe whose seal is not
on this branch yet is expected to report ``fail`` (never pass, never skip): ``PENDING``
names them, with the seal they wait for. "After an engine restart" is shown without
restarting the shared engine: the ``rules-persisted`` probe reads the hardening from the
engine's own record of the container (which the engine re-applies on every start), and the
test restarts the container itself and runs the host probes again.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from backends import paths
from backends import workspace as workspace_baseline
from backends.base import AgentSpec
from backends.egress.spec import EgressSpec
from backends.probes import suite
from backends.probes.base import FAIL, NOT_APPLICABLE, PASS
from backends.registry import get_backend
from tests.support import FAKES, agent_name

pytestmark = pytest.mark.probes

#: A sealed docker bottle with a brokered credential, an API gateway and an allowlisted
#: test upstream: every probe passes, but the disk budget, which this engine cannot give.
DOCKER_NOT_APPLICABLE = {
    # overlay2 on extfs here: the engine cannot size the home volume or the workspace.
    "disk-budget",
}
DOCKER_EXPECTED = {
    p.name: (NOT_APPLICABLE if p.name in DOCKER_NOT_APPLICABLE else PASS) for p in suite.ALL
}
#: A sealed shim machine (sidecar, ``--allow-cidr``/``--dns`` of its address, a brokered
#: credential, an allowlisted test upstream): every probe passes, or is not applicable
#: because a VM has no such seal (each says why in its evidence).
SHIM_NOT_APPLICABLE = {
    "read-only-root",  # the VM's root is its own disk image
    "tmpfs-limited",  # the VM's /tmp is on its own disk
    "pids-limit",  # the guest kernel has its own process table
    "disk-budget",  # the home is on the VM's disk, sized by smolvm
    "rules-persisted",  # smolvm creates the machine with its settings
}
SHIM_EXPECTED = {
    p.name: (NOT_APPLICABLE if p.name in SHIM_NOT_APPLICABLE else PASS) for p in suite.ALL
}
HOST_PROBES = [p.name for p in suite.ALL if p.group == "host"]


def table(run: suite.SuiteRun) -> str:
    return "\n".join(f"{r.outcome:4s} {r.probe:24s} {r.evidence}" for r in run.results)


def check(run: suite.SuiteRun, expected: dict[str, str]) -> None:
    assert {p.name for p in suite.ALL} == set(expected), "every probe has an expectation"
    got = {r.probe: r.outcome for r in run.results}
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert not wrong, f"(got, expected): {wrong}\n{table(run)}"
    for result in run.results:
        assert result.evidence, result
        assert bool(result.fix) == (result.outcome == FAIL), result


@pytest.fixture(scope="module")
def docker_bottle(
    test_image: str, egress_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """A sealed docker bottle as `up` makes it, with a git workspace owned by uid 1000, a
    brokered credential, the API behind a gateway name served by the test upstream, and
    that upstream (``api.egress.invalid``, ``other.egress.invalid``) on its sidecar's outer
    network: the probes attack a seal that has something to guard."""
    from tests.fakes.egress_upstream import make_certs
    from tests.integration.egress_world import API, OTHER, TOKEN, remove, start_upstream

    workspace = tmp_path_factory.mktemp("ws")
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "objects" / "info").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    (workspace / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    # Writable by anyone: only the read-only mounts may stop the agent.
    for path in (workspace, *workspace.rglob("*")):
        path.chmod(0o777 if path.is_dir() else 0o666)
    # Owned by uid 1000 (the agent runs as the workspace's owner): a non-root agent.
    for path in (workspace, *workspace.rglob("*")):
        os.chown(path, 1000, 1000)
    certs = make_certs(tmp_path_factory.mktemp("certs"), (API, OTHER))
    backend = get_backend("docker")
    spec = AgentSpec(
        name=agent_name("probe-d"),
        image=test_image,
        workspace=workspace,
        memory=256 << 20,
        egress=EgressSpec(
            allow=(f"{OTHER}:80", OTHER),
            credential="env:BOTTLE_TEST_TOKEN",
            api_base=f"https://{API}",
            upstream_ca=certs,
        ),
    )
    # The plan lives in this fixture's state dir; each test points XDG_STATE_HOME there.
    state = str(tmp_path_factory.mktemp("state"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_STATE_HOME", state)
        env.setenv("BOTTLE_TEST_TOKEN", TOKEN)
        workspace_baseline.record_baseline(spec.name, workspace)  # as `up` does
        backend.launch(backend.prepare(spec))
        upstream = start_upstream(spec.name, egress_image, certs)
    yield backend, spec, state
    remove(upstream)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_STATE_HOME", state)
        backend.remove(spec.name, volumes=True)


@pytest.fixture
def docker_target(docker_bottle: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from tests.integration.egress_world import TOKEN

    backend, spec, state = docker_bottle
    monkeypatch.setenv("XDG_STATE_HOME", state)
    monkeypatch.setenv("BOTTLE_TEST_TOKEN", TOKEN)
    return backend, spec


def test_docker_suite(docker_target: Any) -> None:
    backend, spec = docker_target
    run = suite.run_suite(backend, spec.name)
    print(table(run))
    check(run, DOCKER_EXPECTED)
    # The result is kept for the dashboard badge (0600 in the 0700 state dir).
    assert suite.last_run(spec.name) is not None
    assert not run.failures and suite.seal_of(spec.name) == suite.SEAL_VERIFIED
    assert suite.seal_file(spec.name).stat().st_mode & 0o777 == 0o600


def test_docker_rules_hold_after_restarts(docker_target: Any) -> None:
    backend, spec = docker_target
    # bottle restart (down/up through the backend) ...
    backend.stop(spec.name)
    backend.start(spec.name)
    run = suite.run_suite(backend, spec.name, HOST_PROBES)
    check_subset(run, DOCKER_EXPECTED)
    # ... and a container restart by the engine itself, as after an engine restart.
    subprocess.run(["docker", "restart", "-t", "1", f"bottle-{spec.name}"], check=True)
    run = suite.run_suite(backend, spec.name, HOST_PROBES)
    check_subset(run, DOCKER_EXPECTED)


def check_subset(run: suite.SuiteRun, expected: dict[str, str]) -> None:
    got = {r.probe: r.outcome for r in run.results}
    assert got == {k: expected[k] for k in got}, table(run)
    assert set(got) == set(HOST_PROBES)


def test_probes_catch_a_weakened_bottle(docker_target: Any, test_image: str) -> None:
    """The probes fail when the hardening is missing: a container made by hand like a
    bottle but writable, with capabilities and no limits."""
    backend, spec = docker_target
    weak = agent_name("probe-weak")
    name = f"bottle-{weak}"
    labels = {
        k: v for k, v in backend.probe_facts(spec.name)["container"]["Config"]["Labels"].items()
    }
    labels["bottle-dash.agent"] = weak
    argv = ["docker", "run", "-d", "--name", name, "--user", "root"]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    argv += ["--entrypoint", "sh", test_image, "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    subprocess.run(argv, check=True, capture_output=True)
    try:
        paths.save_plan(backend.prepare(AgentSpec(name=weak, image=test_image)))
        run = suite.run_suite(backend, weak, HOST_PROBES)
        got = {r.probe: r.outcome for r in run.results}
        for probe in (
            "cap-eff-zero",
            "no-new-privs",
            "non-root",
            "read-only-root",
            "tmpfs-limited",
        ):
            assert got[probe] == FAIL, table(run)
        assert got["rules-persisted"] == FAIL and got["pids-limit"] == FAIL, table(run)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def test_probe_cli_and_ownership(test_image: str, tmp_path: Path) -> None:
    """`probe NAME --json` on a bottle made by `up`; another config (another owner) sees
    none of it and cannot act on it."""
    from tests.fakes.cli_run import bd

    name = agent_name("probe-cli")
    mine = tmp_path / "mine.toml"
    mine.write_text(f'[agents.{name}]\nimage = "{test_image}"\n')
    theirs = tmp_path / "theirs.toml"
    theirs.write_text(f'[agents.{name}]\nimage = "{test_image}"\n')
    env_mine = {"BOTTLE_DASH_CONFIG": str(mine)}
    env_theirs = {"BOTTLE_DASH_CONFIG": str(theirs)}
    try:
        assert bd("up", name, env=env_mine).returncode == 0
        done = bd("probe", name, "--json", env=env_mine)
        data = json.loads(done.stdout)
        failing = sum(r["outcome"] == FAIL for r in data["results"])
        assert done.returncode == (1 if failing else 0) and data["agent"] == name
        assert {r["probe"] for r in data["results"]} == {p.name for p in suite.ALL}
        assert data["seal"] == (f"{failing} failing" if failing else "sealed")
        assert data["seal"] == "sealed", done.stdout  # a sealed docker bottle passes all
        one = bd("probe", name, "--only", "non-root", env=env_mine)
        assert one.returncode == 0 and one.stdout.startswith("pass"), one.stdout
        # The other config: not listed, and no attach/down/rm/probe of this bottle.
        listed = json.loads(bd("ls", "--json", env=env_theirs).stdout)
        assert [r["state"] for r in listed if r["name"] == name] == ["not created"]
        assert bd("down", name, env=env_theirs).stdout.endswith("nothing to stop\n")
        assert bd("rm", name, env=env_theirs).returncode == 1
        assert bd("probe", name, env=env_theirs).returncode == 2  # not running, for them
        running = json.loads(bd("ls", "--json", env=env_mine).stdout)
        assert [r["state"] for r in running if r["name"] == name] == ["running"]
        up_theirs = bd("up", name, env=env_theirs)
        assert "belongs to someone else" in up_theirs.stderr, up_theirs.stderr
    finally:
        bd("rm", "--volumes", name, env=env_mine)


def _in_bottle(bottle: str, script: str) -> str:
    done = subprocess.run(
        ["docker", "exec", bottle, "sh", "-c", script],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


def test_fail_closed_when_the_sidecar_is_stopped(
    test_image: str, egress_image: str, tmp_path: Path
) -> None:
    """The sidecar of a live sealed bottle stopped for real: from inside the bottle the
    upstream is out of reach, through the proxy and directly, by name and by address;
    ``ls --json`` and the table say SIDECAR DOWN; ``up`` repairs it and the same request
    goes through again. The ``fail-closed`` probe, run on the live bottle, leaves the
    sidecar running (it only reads)."""
    from backends.egress import plan as egress
    from tests.fakes.cli_run import bd
    from tests.integration.egress_world import container_ip, network_subnet, wait_upstream

    name = agent_name("probe-fc")
    up_host = "upstream.probe.invalid"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[agents.{name}]\nimage = "{test_image}"\nsealed = true\negress_allow = ["{up_host}:80"]\n'
    )
    env = {"BOTTLE_DASH_CONFIG": str(config)}
    bottle, sidecar = f"bottle-{name}", egress.sidecar_name(name)
    upstream = f"{name}-upstream"
    proxied = (
        f"printf 'GET http://{up_host}/echo HTTP/1.1\\r\\nHost: {up_host}\\r\\n\\r\\n' "
        f"| {{ cat; sleep 3; }} | nc -w 5 {sidecar} 8080; echo rc=$?"
    )

    def row() -> dict[str, Any]:
        rows = json.loads(bd("ls", "--json", env=env).stdout)
        return next(r for r in rows if r["name"] == name)

    try:
        done = bd("up", name, env=env)
        assert done.returncode == 0, done.stderr
        subprocess.run(
            ["docker", "run", "-d", "--name", upstream,
             "--label", f"bottle-dash.agent={name}",
             "--network", egress.outer_network_name(name), "--network-alias", up_host,
             "-v", f"{FAKES}:/fakes:ro", egress_image, "python3", "-u",
             "/fakes/egress_upstream.py"],
            check=True, capture_output=True,
        )  # fmt: skip
        wait_upstream(upstream)
        # The upstream's private range, allowed in the config: `up` writes it again.
        subnet = network_subnet(egress.outer_network_name(name))
        assert bd("allow", name, subnet, env=env).returncode == 0
        up_ip = container_ip(upstream, egress.outer_network_name(name))
        direct = (
            f"for t in '{up_ip} 80' '{up_host} 80'; do set -- $t; "
            "if echo | timeout 5 nc -w 3 $1 $2 >/dev/null 2>&1; then echo OPEN $t; "
            "else echo CLOSED $t; fi; done"
        )
        # The control: with the sidecar up, the upstream answers through the proxy only.
        assert "HTTP/1.1 200" in _in_bottle(bottle, proxied)
        assert "OPEN" not in _in_bottle(bottle, direct)
        started = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.StartedAt}}", sidecar],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        probe = json.loads(bd("probe", name, "--only", "fail-closed", "--json", env=env).stdout)
        (result,) = probe["results"]
        assert result["outcome"] == PASS and "sidecar left running" in result["evidence"]
        after = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Running}} {{.State.StartedAt}}", sidecar],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert after == ["true", started.strip()], "the probe disturbed the sidecar"

        subprocess.run(["docker", "stop", "-t", "1", sidecar], check=True, capture_output=True)
        through = _in_bottle(bottle, proxied)
        assert "HTTP/1.1" not in through, through
        cut_off = _in_bottle(bottle, direct)
        assert cut_off.count("CLOSED") == 2 and "OPEN" not in cut_off, cut_off
        assert row()["egress"] == "sidecar down"
        table_line = [ln for ln in bd("ls", env=env).stdout.splitlines() if name in ln]
        assert table_line and "SIDECAR DOWN" in table_line[0], table_line

        repaired = bd("up", name, env=env)
        assert repaired.returncode == 0, repaired.stderr
        assert row()["egress"] == "sealed"
        assert "HTTP/1.1 200" in _in_bottle(bottle, proxied)
    finally:
        subprocess.run(["docker", "rm", "-f", upstream], capture_output=True, check=False)
        bd("rm", "--volumes", name, env=env)


SHIM_TOKEN = "sk-ant-oat01-" + "Sh1m" * 20 + "-xyzAA"
OTHER = "other.egress.invalid"


@pytest.fixture
def shim_bottle(
    standin: str,
    egress_image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """A sealed shim machine as `up` makes it, with a git workspace owned by uid 1000, a
    brokered credential, the API behind a gateway name, and the test upstream
    (``api.egress.invalid``, ``other.egress.invalid``, which echo requests) on its
    sidecar's outer network."""
    from tests.fakes.egress_upstream import make_certs
    from tests.integration.egress_world import API, start_upstream

    workspace = tmp_path / "ws"
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    for path in (workspace, *workspace.rglob("*")):
        os.chown(path, 1000, 1000)
    monkeypatch.setenv("BOTTLE_TEST_TOKEN", SHIM_TOKEN)
    certs = make_certs(tmp_path / "certs", (API, OTHER))
    backend = get_backend("smolmachines")
    spec = AgentSpec(
        name=agent_name("probe-s"),
        backend="smolmachines",
        image=standin,
        workspace=workspace,
        egress=EgressSpec(
            allow=(f"{OTHER}:80",),
            credential="env:BOTTLE_TEST_TOKEN",
            api_base=f"https://{API}",
            upstream_ca=certs,
        ),
    )
    workspace_baseline.record_baseline(spec.name, workspace)  # as `up` does
    upstream = ""
    try:
        backend.launch(backend.prepare(spec))
        upstream = start_upstream(spec.name, egress_image, certs)
        yield backend, spec
    finally:
        if upstream:
            subprocess.run(["docker", "rm", "-f", upstream], capture_output=True, check=False)
        backend.remove(spec.name, volumes=True)


def test_shim_suite(shim_bottle: Any) -> None:
    backend, spec = shim_bottle
    run = suite.run_suite(backend, spec.name)
    print(table(run))
    check(run, SHIM_EXPECTED)
    assert not run.failures and suite.seal_of(spec.name) == suite.SEAL_VERIFIED
    # The probes had something to show: the real token is set, the upstream echoed.
    assert SHIM_TOKEN not in (paths.agent_state_dir(spec.name) / paths.PLAN_FILE).read_text()
    got = {r.probe: r.evidence for r in run.results}
    assert "as a header value -> HTTP/1.1 403" in got["placeholder-refused"], got
    assert "Authorization with another key -> HTTP/1.1 403" in got["api-other-key"], got


RUN = "[core]\n\tfsmonitor = ./run\n"
PLANTED = {
    "commondir -> own dir with core.fsmonitor": (
        {"build/common/config": RUN, ".git/commondir": "../build/common\n"},
        "git setting core.fsmonitor in build/common/config",
    ),
    ".git file naming a copy": (
        {"lib/copy/config": RUN, ".git": "gitdir: lib/copy\n"},
        ".git names the git directory lib/copy",
    ),
    "include.path -> file with core.fsmonitor": (
        {"docs/x.cfg": RUN, ".git/config": "[include]\n\tpath = ../docs/x.cfg\n"},
        "git setting core.fsmonitor in docs/x.cfg",
    ),
    "submodule config": (
        {".git/modules/v/config": '[diff "x"]\n\ttextconv = ./run\n', ".git/modules/v/HEAD": "x"},
        "git setting diff.x.textconv in .git/modules/v/config",
    ),
    "setuid file": ({"tool": "#!/bin/sh\n"}, "setuid file tool (mode 4755): bits cleared"),
}


def test_planted_attacks_are_caught_by_the_probes(docker_target: Any) -> None:
    """Each attack planted in the live bottle's workspace (as an agent on main's code, or
    on a smolmachines bottle, could), one at a time: ``workspace-clean`` names it; after it
    is undone the suite's host probes pass again. Prints attack -> caught by."""
    backend, spec = docker_target
    ws = Path(paths.saved_plan(spec.name).workspace)
    rows = []
    for attack, (files, expected) in PLANTED.items():
        saved: dict[Path, bytes | None] = {}
        git_dir = ws / ".git"
        moved = ws / ".git-aside"
        try:
            for rel, text in files.items():
                path = ws / rel
                if rel == ".git":  # the .git file replaces the directory (moved aside)
                    git_dir.rename(moved)
                else:
                    saved[path] = path.read_bytes() if path.exists() else None
                    path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            if attack == "setuid file":
                (ws / "tool").chmod(0o4755)
            run = suite.run_suite(backend, spec.name, ["workspace-clean"])
            (result,) = run.results
            rows.append((attack, result.outcome, result.evidence))
            assert result.outcome == FAIL and expected in result.evidence, (attack, result)
        finally:
            if moved.exists():
                (ws / ".git").unlink()
                moved.rename(git_dir)
            for path, before in saved.items():
                if before is None:
                    path.unlink()
                else:
                    path.write_bytes(before)
            for folder in ("build", "lib", "docs", ".git/modules"):
                subprocess.run(["rm", "-rf", str(ws / folder)], check=True)
            workspace_baseline.forget(spec.name, "tool")
            (ws / "tool").unlink(missing_ok=True)
    print("\nattack -> caught by")
    for attack, outcome, evidence in rows:
        print(f"{attack:42s} workspace-clean {outcome}: {evidence[:150]}")
    clean = suite.run_suite(backend, spec.name, ["workspace-clean"])
    assert clean.results[0].outcome == PASS, clean.results[0]


def test_two_bottles_are_sealed_from_each_other(
    docker_target: Any, test_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second sealed bottle beside the first: each passes its own suite's network and
    credential probes, and from inside the first, the second's bottle and sidecar are out
    of reach (directly and through the first's proxy), and its placeholder is its own."""
    from backends.egress import plan as egress
    from tests.integration.egress_world import container_ip

    backend, first = docker_target
    second = AgentSpec(
        name=agent_name("probe-2"),
        image=test_image,
        egress=EgressSpec(credential="env:SECOND_TOKEN"),
    )
    monkeypatch.setenv("SECOND_TOKEN", "sk-ant-oat01-" + "Tw0o" * 20 + "-xyzAA")
    try:
        backend.launch(backend.prepare(second))
        run = suite.run_suite(backend, second.name)
        print(table(run))
        assert not run.failures, table(run)
        b_bottle = container_ip(f"bottle-{second.name}", f"bottle-{second.name}-net")
        b_sidecar = container_ip(egress.sidecar_name(second.name), f"bottle-{second.name}-net")
        a_bottle = f"bottle-{first.name}"
        direct = (
            f"for t in '{b_bottle} 22' '{b_sidecar} 8080' "
            f"'{egress.sidecar_name(second.name)} 8080'; do set -- $t; "
            "if echo | timeout 5 nc -w 3 $1 $2 >/dev/null 2>&1; then echo OPEN $t; "
            "else echo CLOSED $t; fi; done"
        )
        out = _in_bottle(a_bottle, direct)
        assert out.count("CLOSED") == 3 and "OPEN" not in out, out
        proxied = (
            f"printf 'CONNECT {b_sidecar}:8080 HTTP/1.1\\r\\n\\r\\n' | "
            f"{{ cat; sleep 2; }} | nc -w 3 {egress.sidecar_name(first.name)} 8080"
        )
        assert _in_bottle(a_bottle, proxied).startswith("HTTP/1.1 403"), "reached B via A"
        mine = _in_bottle(a_bottle, 'printf %s "$CLAUDE_CODE_OAUTH_TOKEN"')
        theirs = _in_bottle(f"bottle-{second.name}", 'printf %s "$CLAUDE_CODE_OAUTH_TOKEN"')
        assert mine and theirs and mine != theirs
    finally:
        with contextlib.suppress(Exception):
            backend.remove(second.name, volumes=True)
