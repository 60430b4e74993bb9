"""Run the real CLI as a subprocess for tests (not a fake: ``python -m bottle_dash``)."""

from __future__ import annotations

import os
import subprocess
import sys


def bd(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bottle_dash ARGS`` with stdin closed (never waits on a terminal) and
    output captured; ``timeout`` is an upper bound so a broken run fails, never asserted on."""
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bottle_dash", *args],
        capture_output=True,
        text=True,
        env=full,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
