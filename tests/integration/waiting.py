"""``wait_for``: poll a condition with a deadline (tmux acts asynchronously), shared by
the tmux pane-host tests and the dashboard end-to-end test."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    check: Callable[[], object],
    seconds: float = 10.0,
    what: object = None,
    *,
    interval: float = 0.05,
    shown: Callable[[], str] | None = None,
) -> object:
    """Poll ``check`` until it returns something truthy, and return that.

    On timeout the failure names ``what`` (else ``check``) and adds ``shown()``, e.g. what
    the dashboard's pane showed.
    """
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"timed out after {seconds}s waiting for {what or check}"
            if shown is not None:
                message += f"\n{shown()}"
            raise AssertionError(message)
        time.sleep(interval)


#: The command names of claude: the stand-in and Claude Code run as ``claude`` (the
#: symlink's name), its native binary is ``claude.exe`` when run by its own path.
CLAUDE_NAMES = ("claude", "claude.exe")
#: What ``ps`` in a bottle lists, one process a line: pid, parent pid, command name; every
#: process (procps' ps without -e lists only this terminal's; busybox's takes -e too).
PS_SCRIPT = "ps -e -o pid,ppid,comm"


def claude_pids(ps_output: str) -> list[int]:
    """The claude processes in ``ps -o pid,ppid,comm`` output: every process named claude
    whose parent is not one (the stand-in forks a watcher subshell that carries its name;
    Claude Code's own helpers are children of claude too). Two entries mean two claudes."""
    table: dict[int, tuple[int, str]] = {}
    for line in ps_output.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            table[int(parts[0])] = (int(parts[1]), parts[2].strip())
    return sorted(
        pid
        for pid, (ppid, comm) in table.items()
        if comm in CLAUDE_NAMES and table.get(ppid, (0, ""))[1] not in CLAUDE_NAMES
    )
