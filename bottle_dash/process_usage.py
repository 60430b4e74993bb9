"""CPU and memory of the host's processes, for each bottle's process tree.

Linux: one read of ``/proc/<pid>/stat`` per process per tick gives the parent map, CPU
time and resident memory (``statm`` for a bottle's own processes); where there is no
``/proc`` (macOS) psutil gives the same figures. The dashboard's poller measures each
bottle's host process (``AgentService.host_pid``) with ``ProcessUsage.tree``; nothing here
imports Textual.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    """CPU (percent of one core, summed over the process tree) and resident memory."""

    cpu: float
    memory: int


#: Clock ticks per second and bytes per page, for the figures in ``/proc/<pid>/stat``.
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class ProcStat:
    """What one tick knows of one process: its parent, when it started (with the pid, its
    identity: pids are reused), CPU time so far (clock ticks) and resident pages."""

    ppid: int
    start: int
    ticks: int
    rss: int


def _read(path: str) -> bytes:
    """The bytes of a small ``/proc`` file: a bare ``open``/``read``/``close``, without the
    file object Python's ``open`` builds (twice the cost of the read itself)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def read_proc_stat(path: str) -> ProcStat | None:
    """Parse ``/proc/<pid>/stat`` (None when the process is gone or the line is odd)."""
    try:
        data = _read(path)
        # The command name (field 2) may hold spaces and parentheses: split after its end.
        fields = data[data.rindex(b")") + 2 :].split()
        return ProcStat(
            ppid=int(fields[1]),
            start=int(fields[19]),
            ticks=int(fields[11]) + int(fields[12]),
            rss=int(fields[21]),
        )
    except (OSError, ValueError, IndexError):
        return None


def _psutil_stats() -> dict[int, ProcStat]:
    """The same figures from psutil, where there is no ``/proc`` (macOS)."""
    import psutil

    stats: dict[int, ProcStat] = {}
    for proc in psutil.process_iter(["ppid", "cpu_times", "memory_info", "create_time"]):
        info = proc.info
        if info.get("cpu_times") is None or info.get("memory_info") is None:
            continue
        times = info["cpu_times"]
        stats[proc.pid] = ProcStat(
            ppid=info.get("ppid") or 0,
            start=int((info.get("create_time") or 0) * 1000),
            ticks=int((times.user + times.system) * _CLK_TCK),
            rss=info["memory_info"].rss // _PAGE,
        )
    return stats


class ProcessUsage:
    """CPU and memory of process trees, from one read of ``/proc/<pid>/stat`` per process
    per tick (``begin``): the parent map, CPU time and resident memory all come from that
    one line, so a tick costs no psutil objects and no second file per process.

    CPU is the share of one core since the previous tick that saw the same process (by
    pid and start time); the first sight of a process reads 0 %.
    """

    def __init__(self, proc: str = "/proc", clock: Callable[[], float] = time.monotonic) -> None:
        self._proc = proc
        self._clock = clock
        self._now: dict[int, ProcStat] = {}
        self._when = 0.0
        self._kids: dict[int, list[int]] = {}
        #: pid -> (start, ticks, when) at the last tick that measured it
        self._procs: dict[int, tuple[int, int, float]] = {}
        self._seen: set[int] = set()
        #: pid -> ((start, ticks, resident pages in ``stat``), resident bytes in ``statm``)
        self._memory: dict[int, tuple[tuple[int, int, int], int]] = {}
        self._has_proc = os.path.isdir(proc)

    def begin(self) -> None:
        """Map every process to its children for this tick.

        Only processes new since the last tick have their ``stat`` read (a parent does
        not change while both live), and the children of a process that went (re-parented
        to a reaper): one directory listing and a few reads per tick, not one read per
        process on the host. ``tree`` reads the figures of the bottles' processes.
        """
        self._when = self._clock()
        self._has_proc = os.path.isdir(self._proc)
        if not self._has_proc:
            self._now = _psutil_stats()
            self._kids = {}
            for pid, stat in self._now.items():
                self._kids.setdefault(stat.ppid, []).append(pid)
            return
        try:
            pids = {int(name) for name in os.listdir(self._proc) if name.isdigit()}
        except OSError:
            pids = set()
        known = self._now
        gone = known.keys() - pids
        orphans = {pid for g in gone for pid in self._kids.get(g, ())}
        now: dict[int, ProcStat] = {}
        for pid in pids:
            seen: ProcStat | None = known.get(pid)
            if seen is None or pid in orphans:
                seen = read_proc_stat(f"{self._proc}/{pid}/stat")
            if seen is not None:
                now[pid] = seen
        kids: dict[int, list[int]] = {}
        for pid, stat in now.items():
            kids.setdefault(stat.ppid, []).append(pid)
        self._now, self._kids = now, kids

    def descendants(self, pid: int) -> list[int]:
        """The pids under ``pid`` at the last ``begin`` (children, theirs, and so on)."""
        found, todo = [], [pid]
        while todo:
            for child in self._kids.get(todo.pop(), ()):
                found.append(child)
                todo.append(child)
        return found

    def _rss(self, pid: int, stat: ProcStat) -> int:
        """Resident bytes as ``statm`` says (what psutil and ``ps`` show; the figure in
        ``stat`` can lag it), read only for the processes of a bottle's tree, and again
        only when the process ran or its ``stat`` figure moved since the last read: an
        idle process's memory does not change (most of a bottle's processes, most ticks).
        """
        key = (stat.start, stat.ticks, stat.rss)
        known = self._memory.get(pid)
        if known is not None and known[0] == key:
            return known[1]
        try:
            memory = int(_read(f"{self._proc}/{pid}/statm").split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return stat.rss * _PAGE
        self._memory[pid] = (key, memory)
        return memory

    def _fresh(self, pid: int) -> ProcStat | None:
        """This tick's figures of ``pid`` (read now: CPU time moves); None if it went."""
        if not self._has_proc:
            return self._now.get(pid)
        stat = read_proc_stat(f"{self._proc}/{pid}/stat")
        if stat is None:
            self._now.pop(pid, None)
        else:
            self._now[pid] = stat
        return stat

    def tree(self, pid: int) -> Usage | None:
        """Summed CPU % and RSS of ``pid`` and its descendants (None if it is gone)."""
        if pid not in self._now:
            self._procs.pop(pid, None)
            return None
        cpu, memory = 0.0, 0
        for member in [pid, *self.descendants(pid)]:
            stat = self._fresh(member)
            if stat is None:
                continue
            self._seen.add(member)
            memory += self._rss(member, stat)
            last = self._procs.get(member)
            if last is not None and last[0] == stat.start and self._when > last[2]:
                cpu += (stat.ticks - last[1]) / _CLK_TCK / (self._when - last[2]) * 100
            self._procs[member] = (stat.start, stat.ticks, self._when)
        return Usage(cpu=max(cpu, 0.0), memory=memory)

    @property
    def remembered(self) -> frozenset[int]:
        """The pids whose last figures are kept for the next tick's CPU share."""
        return frozenset(self._procs)

    def sweep(self) -> None:
        """Forget processes not seen since the last sweep (bounded memory over days)."""
        for pid in set(self._procs) - self._seen:
            del self._procs[pid]
        for pid in set(self._memory) - self._seen:
            del self._memory[pid]
        self._seen = set()
