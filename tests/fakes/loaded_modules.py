"""Which modules a piece of code loads, run in a fresh interpreter (for the tests that
keep start-up paths lean). Not a fake: a helper the unit and ui tiers share."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run_fresh(code: str, env: Mapping[str, str], args: Sequence[str] = ()) -> Any:
    """Run ``code`` with ``python -c`` in the repository and return the JSON its last line
    of output holds (the code prints it); a failing run fails the test with its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(env),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def leaked(loaded: Iterable[str], forbidden: Iterable[str]) -> list[str]:
    """The loaded modules that are, or are inside, one of ``forbidden``."""
    banned = set(forbidden)
    return [m for m in loaded if m in banned or m.split(".")[0] in banned]
