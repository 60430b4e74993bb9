"""What every benchmark script sets up the same way: the repository (and the test fakes)
on ``sys.path``, a scratch folder that stands in for the operator's XDG dirs, and how a
figure is timed and printed. Not a benchmark itself (``make bench`` runs ``bench_*.py``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The repository importable (tests.fakes: the offline test image, the stand-ins).
sys.path[:0] = [str(REPO)]

XDG_VARS = ("XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")


def scratch(prefix: str) -> Path:
    """A new temporary folder whose subfolders become this process's XDG state, cache and
    config dirs, so a benchmark never reads or writes the operator's own agents, state
    or bottles. The caller removes it."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    for var in XDG_VARS:
        os.environ[var] = str(folder / var.lower())
    return folder


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` took."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ms(seconds: float) -> str:
    """``seconds`` as milliseconds, right-aligned for a column of figures."""
    return f"{seconds * 1000:7.1f} ms"
