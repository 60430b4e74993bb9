"""Fixtures of the integration tiers: the real components each needs (a Docker engine,
the offline images, tmux, the stand-in smolvm, the remote engine, the cluster), built or
found once per session; a component that cannot start skips its tier (fails it in CI:
``tests.support.unavailable``).

The isolated tmux server is libtmux's own pytest fixture (``server``: a socket of its own,
killed and unlinked after the test), here once tmux is known to be installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import TYPE_CHECKING

import libtmux
import pytest

from tests.fakes.smolvm_support import Tmux, standin_launcher, sweep_standin
from tests.support import RUN_ID, docker_problem, unavailable

if TYPE_CHECKING:
    from tests.fakes.remote_engine import RemoteEngine


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A real Docker engine answers (tiers docker and shim)."""
    problem = docker_problem()
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
    from tests.fakes import image

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
    from tests.fakes import anthropic_container

    return _build_offline(anthropic_container.STANDIN_SPEC, "the stand-in API image")


@pytest.fixture(scope="session")
def kube_cluster(pytestconfig: pytest.Config) -> Iterator[object]:
    """A real single-node Kubernetes cluster (tests/fakes/kube): built into the machine's
    cache on first use (minutes: a test that asks for it first needs a long timeout),
    started or reused, and stopped at the end of the session by its last user unless
    ``cluster.py up`` started it or ``BOTTLE_DASH_KUBE_KEEP=1``. Its progress lines reach
    the log. A stop that leaves anything behind on the host fails the session."""
    from tests.fakes.kube import cluster

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
    from backends.base import BackendError
    from tests.fakes import remote_engine

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


@pytest.fixture
def server(server: libtmux.Server, tmux_bin: str) -> libtmux.Server:
    """libtmux's isolated tmux server (``libtmux.pytest_plugin``), once tmux is there."""
    return server


@pytest.fixture
def tmux(server: libtmux.Server, tmux_bin: str) -> Iterator[Tmux]:
    """libtmux's isolated server driven by the tmux CLI with panes that remain on exit
    (the smolmachines pane tests read what a pane showed after its process ended)."""
    assert server.socket_name
    cli = Tmux(tmux_bin, server.socket_name)
    yield cli
    cli.kill()


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch, docker_engine: None, test_image: str) -> Iterator[str]:
    """Point the smolmachines backend at the stand-in smolvm; yields the test image tag.

    Every machine this run made (``bottle-t<RUN_ID>-*``) is removed after the test.
    """
    from backends import registry

    monkeypatch.setenv("BOTTLE_DASH_SMOLVM", str(standin_launcher()))
    registry.reset()
    yield test_image
    sweep_standin(f"bottle-t{RUN_ID}-")


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    """Names appended here get their bottle's containers, volumes and networks removed at
    the end (through docker, whatever the config says)."""
    from tests.integration.cli_helpers import docker_labelled

    names: list[str] = []
    yield names
    for name in names:
        for kind in ("container", "volume", "network"):
            for ident in docker_labelled(name)[kind]:
                rm = ["docker", kind, "rm"] + (["-f", "-v"] if kind == "container" else [])
                subprocess.run([*rm, ident], capture_output=True, check=False)
