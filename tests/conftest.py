"""Shared test set-up: isolation from the operator's own config and tmux, tier marking,
the real components each tier needs, and a per-tier count at the end of the run.

Tiers (see README "Tests"): unit, ui, tmux, docker, shim, probes, claude, remote,
kubernetes, smolvm. A test's
tier is its directory (tests/unit, tests/ui) or the marker its module sets (integration
tests). In CI (CI=true) a tier whose component cannot start fails the run instead of
skipping; only the smolvm tier (real microVMs, needs hardware virtualization) may skip,
and says why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

REPO = Path(__file__).resolve().parent.parent
FAKES = REPO / "tests" / "fakes"
sys.path.insert(0, str(FAKES))

if TYPE_CHECKING:
    from remote_engine import RemoteEngine

TIERS = (
    "unit",
    "ui",
    "tmux",
    "docker",
    "shim",
    "probes",
    "claude",
    "remote",
    "kubernetes",
    "smolvm",
)
#: Tiers that must run (not skip) in CI.
REQUIRED_IN_CI = (
    "unit",
    "ui",
    "tmux",
    "docker",
    "shim",
    "probes",
    "claude",
    "remote",
    "kubernetes",
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
#: Per-run id: every agent a test creates is named with it, so a sweep finds them.
RUN_ID = uuid.uuid4().hex[:6]


def unavailable(what: str) -> None:
    """A tier's component is missing: fail in CI, skip (with the reason) elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} (CI runs every tier that can run)", pytrace=False)
    pytest.skip(what)


def agent_name(label: str) -> str:
    """A slug unique to this run, for a test's agent (``t<run>-<label>``)."""
    return f"t{RUN_ID}-{label}"[:40]


#: Execs its arguments with SIGINT and SIGTERM at their default action.
_DEFAULT_SIGNALS = (
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM):\n    signal.signal(s, signal.SIG_DFL)\n"
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


_keepalive_groups: list[int] = []


def start_keepalive(argv: list[str]) -> subprocess.Popen[bytes]:
    """Run a bottle's keep-alive command (``sh -c 'trap ...; while ...'``) on the host
    as an init would: with SIGINT and SIGTERM at their default action (a test run from a
    background job inherits SIGINT ignored, and a shell cannot trap a signal that was
    ignored when it started). Returns once its first ``sleep`` shows the trap is set."""
    import psutil

    # In a session of its own: the keep-alive's `sleep` outlives the shell that traps the
    # signal (in a bottle, PID 1's end takes it along; here nothing would), so the whole
    # group is killed when the run ends (``pytest_sessionfinish``).
    proc = subprocess.Popen([sys.executable, "-c", _DEFAULT_SIGNALS, *argv], start_new_session=True)
    _keepalive_groups.append(proc.pid)
    for _ in range(1000):
        if proc.poll() is not None or psutil.Process(proc.pid).children():
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the keep-alive ended on its own"
    return proc


def tier_of(item: pytest.Item) -> str:
    for tier in TIERS:
        if item.get_closest_marker(tier):
            return tier
    parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
    return parts[0] if parts and parts[0] in ("unit", "ui") else "unit"


#: nodeid -> tier, from collection. Not from a report's keywords: those hold the names of
#: every parent node, the checkout's folder among them (a checkout named "probes" would
#: put every test in that tier).
_tier_of_test: dict[str, str] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item)
        _tier_of_test[item.nodeid] = tier
        if not item.get_closest_marker(tier):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def _isolate(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Never read the operator's config or state, never touch their tmux server."""
    base = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = base / var.lower()
        path.mkdir()
        monkeypatch.setenv(var, str(path))
    monkeypatch.delenv("BOTTLE_DASH_CONFIG", raising=False)
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("TMUX_PANE", raising=False)
    monkeypatch.setenv("SHELL", "/bin/sh")
    # Nor their git identity (an agent's default ``git_user``): git reads no config.
    empty = base / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    from backends import ownership, registry

    registry.reset()
    # Owner "no config" between tests too: a module-scoped bottle is made before this
    # fixture runs for its first test, and must carry the owner its tests act as.
    ownership.use_config(None)
    yield
    ownership.use_config(None)


# ----------------------------------------------------------------------- components


def _docker_answers() -> str | None:
    if shutil.which("docker") is None:
        return "docker CLI not installed (apt-get install -y docker.io)"
    probe = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return "Docker engine not answering (start dockerd): " + probe.stderr.strip()[:200]
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A real Docker engine answers (tiers docker and shim)."""
    problem = _docker_answers()
    if problem:
        unavailable(problem)


@pytest.fixture(scope="session")
def egress_image(docker_engine: None) -> str:
    """Tag of the egress sidecar image (built offline once per machine: debootstrap and
    PyPI); every sealed docker bottle needs it."""
    from backends.egress.image import ensure_sidecar_image

    return ensure_sidecar_image()


@pytest.fixture(scope="session")
def test_image(docker_engine: None, egress_image: str) -> str:
    """Tag of the offline test agent image (built locally with ``docker import``); sealed
    bottles of it need the sidecar image too, so that is built first."""
    import image

    return image.ensure_image()


def _build_offline(spec: object, what: str) -> str:
    """Build (or find, by its input hash) an image with the offline builder; a build that
    cannot run is the tier's component missing."""
    from backends.base import BackendError
    from backends.images import rootfs

    assert isinstance(spec, rootfs.ImageSpec)
    missing = rootfs.missing_tools(spec)
    if missing:
        unavailable(f"cannot build {what}: " + "; ".join(fix for _, fix in missing))
    lines: list[str] = []
    try:
        return rootfs.ensure_image(spec, lines.append)
    except BackendError as exc:
        unavailable(f"building {what} failed: {exc}\n" + "\n".join(lines[-15:]))
        raise


@pytest.fixture(scope="session")
def agent_image(docker_engine: None) -> str:
    """Tag of the real agent image (Claude Code from npm), assembled offline; built once
    per machine (the tag is a hash of its inputs)."""
    from backends.images import agent

    return _build_offline(agent.AGENT_SPEC, "the agent image")


@pytest.fixture(scope="session")
def standin_api_image(docker_engine: None) -> str:
    """Tag of the image that runs the stand-in Anthropic API (tests/fakes/anthropic_api.py)."""
    import anthropic_container

    return _build_offline(anthropic_container.STANDIN_SPEC, "the stand-in API image")


@pytest.fixture(scope="session")
def kube_cluster(pytestconfig: pytest.Config) -> Iterator[object]:
    """A real single-node Kubernetes cluster (tests/fakes/kube): built into the machine's
    cache on first use (minutes: a test that asks for it first needs a long timeout),
    started or reused, and stopped at the end of the session by its last user unless
    ``cluster.py up`` started it or ``BOTTLE_DASH_KUBE_KEEP=1``. Its progress lines reach
    the log. A stop that leaves anything behind on the host fails the session."""
    from kube import cluster

    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def uncaptured() -> contextlib.AbstractContextManager[object]:
        return capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()

    with uncaptured():
        try:
            info = cluster.ensure_cluster()
        except cluster.ClusterUnavailable as exc:
            unavailable(f"no Kubernetes cluster on this machine: {exc}")
            raise
    yield info
    if os.environ.get("BOTTLE_DASH_KUBE_KEEP") != "1":
        with uncaptured():
            left = cluster.release()
        assert not left, f"stopping the cluster left these behind: {left}"


@pytest.fixture(scope="session")
def remote_engine(docker_engine: None) -> RemoteEngine:
    """A second Docker engine on this machine reachable only over SSH (tier remote; see
    tests/fakes/remote_engine.py): built and started here, once per machine, and left
    running for the next run (``python tests/fakes/remote_engine.py down`` removes it)."""
    import remote_engine

    from backends.base import BackendError

    missing = remote_engine.missing_tools()
    if missing:
        unavailable("cannot build the remote test engine: " + "; ".join(missing))
    lines: list[str] = []
    try:
        return remote_engine.ensure_remote_engine(lines.append)
    except (remote_engine.RemoteEngineError, BackendError) as exc:
        unavailable(f"the remote test engine did not come up: {exc}\n" + "\n".join(lines[-15:]))
        raise


@pytest.fixture(scope="session")
def tmux_bin() -> str:
    path = shutil.which("tmux")
    if path is None:
        unavailable("tmux not installed (apt-get install -y tmux)")
    assert path
    return path


@pytest.fixture(scope="session", autouse=True)
def _sweep_run_bottles() -> Iterator[None]:
    """Remove every labelled resource this run created (names start with t<RUN_ID>)."""
    yield
    if shutil.which("docker") is None or _docker_answers():
        return
    prefix = f"t{RUN_ID}-"
    for kind in ("container", "network", "volume"):
        listing = subprocess.run(
            ["docker", kind, "ls", "-q", "--filter", "label=bottle-dash.agent"]
            + (["-a"] if kind == "container" else []),
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        for ident in listing:
            agent = subprocess.run(
                [
                    "docker",
                    kind,
                    "inspect",
                    "--format",
                    '{{ index .Labels "bottle-dash.agent" }}'
                    if kind != "container"
                    else '{{ index .Config.Labels "bottle-dash.agent" }}',
                    ident,
                ],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            if agent.startswith(prefix):
                rm = ["docker", kind, "rm"] + (["-f", "-v"] if kind == "container" else [])
                subprocess.run([*rm, ident], capture_output=True, check=False)


# ----------------------------------------------------------------------- tier counts

_counts: dict[str, Counter[str]] = {t: Counter() for t in TIERS}
_skip_reasons: dict[str, set[str]] = {t: set() for t in TIERS}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tier = _tier_of_test.get(report.nodeid) or next(
        (t for t in TIERS if t in report.keywords), "unit"
    )
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _counts[tier][report.outcome] += 1
        if report.skipped and isinstance(report.longrepr, tuple):
            _skip_reasons[tier].add(str(report.longrepr[2]))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    tr = terminalreporter
    tr.section("tests run per tier")
    for tier in TIERS:
        c = _counts[tier]
        line = (
            f"tier {tier:10s} {c['passed']:4d} passed, "
            f"{c['failed']:3d} failed, {c['skipped']:3d} skipped"
        )
        tr.write_line(line)
        for reason in sorted(_skip_reasons[tier])[:3]:
            tr.write_line(f"    skipped because: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import signal

    for group in _keepalive_groups:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    if not IN_CI or exitstatus != 0:
        return
    ran_all = not session.config.getoption("-k") and not session.config.getoption("-m")
    missing = [t for t in REQUIRED_IN_CI if _counts[t]["passed"] == 0]
    if ran_all and missing:
        print(f"\nCI: tiers that ran no test: {', '.join(missing)}", file=sys.stderr)
        session.exitstatus = 1
