"""Helpers for driving the ``bottle-dash`` CLI in tests: as a plain subprocess, and inside a
real pseudo-terminal (for ``attach``, which hands the terminal to claude)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Generous upper bounds so a broken run fails instead of hanging; never asserted on.
WAIT = 90.0


def docker_labelled(agent: str) -> dict[str, list[str]]:
    """Containers, volumes and networks labelled with ``agent`` (from the docker CLI)."""
    found: dict[str, list[str]] = {}
    for kind in ("container", "volume", "network"):
        argv = ["docker", kind, "ls", "-q", "--filter", f"label=bottle-dash.agent={agent}"]
        if kind == "container":
            argv.insert(3, "-a")
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        found[kind] = out.split()
    return found


@dataclass
class PtyRun:
    """What a command printed to its terminal and how it ended."""

    output: str
    status: int


class PtySession:
    """``python -m bottle_dash ARGS`` as the session leader of a fresh pseudo-terminal
    (rows x cols set), like an operator's terminal."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, rows: int = 30, cols: int = 100
    ) -> None:
        full = dict(os.environ)
        full.update(env or {})
        full.pop("TMUX", None)
        full["TERM"] = "xterm"
        argv = [sys.executable, "-m", "bottle_dash", *args]
        pid, fd = pty.fork()
        if pid == 0:  # child: the pty is its controlling terminal and stdio
            try:
                os.execve(argv[0], argv, full)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.buffer = b""
        self.status: int | None = None

    @property
    def text(self) -> str:
        return self.buffer.decode(errors="replace").replace("\r\n", "\n")

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False at EOF."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child side closed
            return False
        if not data:
            return False
        self.buffer += data
        return True

    def expect(self, needle: str, wait: float = WAIT) -> str:
        """Read until ``needle`` appears; fails with everything seen when it does not."""
        deadline = time.monotonic() + wait
        while needle not in self.text:
            if time.monotonic() > deadline or not self._read(0.2):
                if needle in self.text:
                    break
                raise AssertionError(f"{needle!r} never appeared; terminal showed:\n{self.text}")
        return self.text

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def finish(self, wait: float = WAIT) -> PtyRun:
        """Read to EOF and reap the child; returns its output and exit status."""
        deadline = time.monotonic() + wait
        while self.status is None and time.monotonic() < deadline:
            alive = self._read(0.2)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
            elif not alive:
                time.sleep(0.05)  # the terminal closed; the process is about to exit
        if self.status is None:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
            os.close(self.fd)
            raise AssertionError(f"still running after {wait}s:\n{self.text}")
        while select.select([self.fd], [], [], 0.1)[0]:  # whatever is left in the terminal
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                break
            if not data:
                break
            self.buffer += data
        os.close(self.fd)
        return PtyRun(self.text, self.status)


def attach_once(
    name: str, *extra: str, env: dict[str, str] | None = None, until: str = "STANDIN-CLAUDE size="
) -> PtyRun:
    """``bottle-dash attach NAME`` in a real 30x100 terminal: wait for the stand-in claude to
    report that size, type ``exit``, and return what the terminal showed."""
    session = PtySession("attach", name, *extra, env=env, rows=30, cols=100)
    try:
        session.expect(until)
        # docker exec sizes the exec's terminal just after starting it, so claude may first
        # see 0x0; the stand-in polls its size and reports the 30x100 it then gets.
        session.expect("size=30x100")
        session.send("exit\n")
        session.expect("STANDIN-CLAUDE bye")
    finally:
        done = session.finish()
    return done


def write_config(path: Path, agents: Mapping[str, Mapping[str, Any]]) -> None:
    """A config with one ``[agents.<name>]`` table per agent (values written as TOML)."""
    from bottle_dash.config import render_agent

    path.write_text("\n".join(render_agent(n, t) for n, t in agents.items()), encoding="utf-8")
