"""Test support for the smolmachines tiers (test fixture only): the stand-in smolvm and
a tmux CLI on an isolated server. The fixtures built on them (``standin``, ``tmux``) are in
tests/integration/conftest.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from tests.support import wait_for

HERE = Path(__file__).resolve().parent
STANDIN = HERE / "smolvm"
#: Containers the stand-in makes are named with this prefix + the machine name.
STANDIN_PREFIX = "smolvm-standin-"


def standin_launcher() -> Path:
    """An executable that runs the stand-in with this interpreter.

    ``#!/usr/bin/env python3`` may go through a slow shim (pyenv adds ~100 ms per call),
    and the side channel runs the CLI on every resize; the launcher skips the lookup.
    """
    digest = hashlib.sha256(f"{sys.executable}\0{STANDIN}".encode()).hexdigest()[:12]
    launcher = Path(tempfile.gettempdir()) / f"bottle-dash-standin-{digest}" / "smolvm"
    if not launcher.exists():
        launcher.parent.mkdir(parents=True, exist_ok=True)
        partial = launcher.with_name(f"smolvm.{os.getpid()}")
        partial.write_text(
            f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -I {shlex.quote(str(STANDIN))} "$@"\n'
        )
        partial.chmod(0o755)
        partial.replace(launcher)
    return launcher


def sweep_standin(prefix: str) -> None:
    """Remove the stand-in's containers whose machine name starts with ``prefix``."""
    names = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}", "--filter", "label=smolvm-standin=1"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    doomed = [n for n in names if n.startswith(STANDIN_PREFIX + prefix)]
    if doomed:
        subprocess.run(["docker", "rm", "-f", "-v", *doomed], capture_output=True, check=False)


def standin_machines() -> list[dict]:
    """The stand-in's own ``machine ls --json``."""
    out = subprocess.run(
        [str(standin_launcher()), "machine", "ls", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


class Tmux:
    """The tmux CLI on an isolated server (own socket, no user config, TMUX unset) for
    pane tests: ``socket`` is the server's name (the ``tmux`` fixture passes libtmux's
    test server's), a new one when not given (benchmarks)."""

    def __init__(self, tmux_bin: str, socket: str | None = None) -> None:
        self.bin = tmux_bin
        self.socket = socket or f"bd-smol-{uuid.uuid4().hex[:8]}"
        self.conf = Path(f"/tmp/{self.socket}.conf")
        # remain-on-exit: a pane whose claude exited keeps its output to read.
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\n")

    def __call__(self, *args: str, check: bool = True) -> str:
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        done = subprocess.run(
            [self.bin, "-L", self.socket, "-f", str(self.conf), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {args}: {done.stderr}")
        return done.stdout

    def new_pane(self, argv: Sequence[str], *, width: int = 100, height: int = 30) -> str:
        """A new session whose only pane runs ``argv`` from ``/``; returns its pane id."""
        session = f"s{uuid.uuid4().hex[:6]}"
        return self(
            "new-session", "-d", "-P", "-F", "#{pane_id}", "-s", session,
            "-x", str(width), "-y", str(height), "-c", "/", shlex.join(argv),
        ).strip()  # fmt: skip

    def capture(self, pane: str) -> str:
        return self("capture-pane", "-p", "-J", "-S", "-500", "-t", pane, check=False)

    def size(self, pane: str) -> tuple[int, int]:
        """``(rows, cols)`` of ``pane``."""
        out = self("display-message", "-p", "-t", pane, "#{pane_height} #{pane_width}")
        rows, cols = out.split()
        return int(rows), int(cols)

    def value(self, pane: str, fmt: str) -> str:
        return self("display-message", "-p", "-t", pane, fmt).strip()

    def wait_for(self, pane: str, pattern: str, seconds: float = 20.0) -> re.Match[str]:
        """The first match of ``pattern`` in the pane's text, polled until ``seconds``."""
        regex = re.compile(pattern)
        return wait_for(
            lambda: regex.search(self.capture(pane)),
            seconds,
            f"{pattern!r} in the pane",
            interval=0.02,
            shown=lambda: self.capture(pane),
        )

    def kill(self) -> None:
        self("kill-server", check=False)
        self.conf.unlink(missing_ok=True)
