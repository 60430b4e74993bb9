"""Counting claude processes in a bottle: what ``ps`` lists and which of its lines are a
claude of their own (the one-claude-per-agent tests)."""

from __future__ import annotations

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
