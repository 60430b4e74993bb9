"""What tests of every tier share that is not a fixture: the per-run agent names, the
CI rule for a missing component, the keep-alive runner and the one polling helper.

A plain module (``from tests.support import agent_name``): nothing imports a conftest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

REPO = Path(__file__).resolve().parent.parent
FAKES = REPO / "tests" / "fakes"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
#: Per-run id: every agent a test creates is named with it, so a sweep finds them.
RUN_ID = uuid.uuid4().hex[:6]

T = TypeVar("T")


def unavailable(what: str) -> None:
    """A tier's component is missing: fail in CI, skip (with the reason) elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} (CI runs every tier that can run)", pytrace=False)
    pytest.skip(what)


def agent_name(label: str) -> str:
    """A slug unique to this run, for a test's agent (``t<run>-<label>``)."""
    return f"t{RUN_ID}-{label}"[:40]


def docker_problem() -> str | None:
    """Why no Docker engine answers here (``None``: one does)."""
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


def wait_for(
    check: Callable[[], T],
    seconds: float = 10.0,
    what: object = None,
    *,
    interval: float = 0.05,
    shown: Callable[[], str] | None = None,
) -> T:
    """Poll ``check`` until it returns something truthy, and return that (things outside
    the test act asynchronously: tmux, containers, threads; every wait has a deadline).

    On timeout the failure names ``what`` (else ``check``) and adds ``shown()``, e.g. what
    the dashboard's pane showed.
    """
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"timed out after {seconds:g}s waiting for {what or check}"
            if shown is not None:
                message += f"\n{shown()}"
            raise AssertionError(message)
        time.sleep(interval)


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
    # group is killed when the run ends (``stop_keepalives`` from the root conftest).
    proc = subprocess.Popen([sys.executable, "-c", _DEFAULT_SIGNALS, *argv], start_new_session=True)
    _keepalive_groups.append(proc.pid)
    for _ in range(1000):
        if proc.poll() is not None or psutil.Process(proc.pid).children():
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the keep-alive ended on its own"
    return proc


def stop_keepalives() -> None:
    """Kill every keep-alive group ``start_keepalive`` started (end of the session)."""
    for group in _keepalive_groups:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    _keepalive_groups.clear()
