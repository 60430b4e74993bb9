"""One poll of everything the dashboard shows, as a blocking call for a thread worker.

Per tick: the config is read, each backend is listed once (``AgentService.list_agents``),
resource use comes from psutil on each bottle's host process tree (no per-bottle stats
call), and every agent's pane state comes from one tmux call. The main screen runs this in
a thread worker and schedules the next poll only after this one has finished.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backends.base import RUNNING, BackendError, Problem
from backends.probes.result import Result
from backends.status_file import HookReading, read_status
from bottle_dash.config import Config, ConfigError
from bottle_dash.service import AgentRow, AgentService, seal_state
from bottle_dash.status import Change, Status, StatusTracker, agent_statuses
from bottle_dash.tmux import PaneHost, PaneInfo


@dataclass(frozen=True)
class Usage:
    """CPU (percent of one core, summed over the process tree) and resident memory."""

    cpu: float
    memory: int


@dataclass
class PollResult:
    """Everything one poll found."""

    rows: list[AgentRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    panes: dict[str, PaneInfo] = field(default_factory=dict)
    usage: dict[str, Usage] = field(default_factory=dict)
    #: (agent, last lines of its pane) for the agent selected when the poll started.
    preview: tuple[str, list[str]] | None = None
    config_path: Path | None = None
    config_error: str | None = None
    #: Each agent's status (``bottle_dash.status``) with the time it became so.
    statuses: dict[str, Status] = field(default_factory=dict)
    #: Agents that started waiting since the previous poll (an alert each).
    alerts: list[Change] = field(default_factory=list)
    #: agent -> (seal badge, failing probe results) for running bottles: the escape
    #: probes' last run on disk, read here in the worker, never in a widget.
    seals: dict[str, tuple[str, list[Result]]] = field(default_factory=dict)


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

    def _descendants(self, pid: int) -> list[int]:
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
        for member in [pid, *self._descendants(pid)]:
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

    def sweep(self) -> None:
        """Forget processes not seen since the last sweep (bounded memory over days)."""
        for pid in set(self._procs) - self._seen:
            del self._procs[pid]
        for pid in set(self._memory) - self._seen:
            del self._memory[pid]
        self._seen = set()


class Poller:
    """Collects a ``PollResult``; ``poll`` blocks and must run in a thread worker.

    ``load_config`` returns a ``Config`` (or raises ``ConfigError``); the service lists
    the agents and their bottles; ``pane_host`` (None without tmux) lists the panes.
    """

    def __init__(
        self,
        load_config: Callable[[], Config],
        service: AgentService,
        pane_host: PaneHost | None,
        read_hook: Callable[[str], HookReading | None] = read_status,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.load_config = load_config
        self.service = service
        self.pane_host = pane_host
        self.usage = ProcessUsage()
        #: The last config that loaded (kept while the file has an error).
        self.last_config: Config | None = None
        self.read_hook = read_hook
        self.clock = clock
        self.tracker = StatusTracker()

    def poll(self, preview_agent: str | None = None) -> PollResult:
        """One tick: config, one listing per backend, psutil, one tmux call, one capture,
        and each running agent's status file (read in-process, no subprocess)."""
        result = PollResult()
        config = self._config(result)
        if config is not None:
            try:
                rows, problems = self.service.list_agents(config)
            except BackendError as exc:
                rows, problems = [], [Problem("backends", exc.message, exc.fix or "")]
            # after any config problem found above, which must stay on screen
            result.rows = list(rows)
            result.problems.extend(problems)
        if self.pane_host is not None:
            try:
                result.panes = self.pane_host.panes()
            except Exception as exc:  # tmux gone is a problem to show, not a crash
                result.problems.append(
                    Problem("tmux", f"cannot list panes: {exc}", "check the tmux server")
                )
        result.usage = self._usage(result.rows)
        for row in result.rows:
            if row.state == RUNNING:  # one look at its seal record per tick
                result.seals[row.name] = seal_state(row)
        if preview_agent is None and result.rows:
            preview_agent = result.rows[0].name  # the cursor starts on the first row
        pane = result.panes.get(preview_agent or "")
        if pane is not None and self.pane_host is not None:
            try:
                result.preview = (pane.agent, self.pane_host.capture(pane.pane_id))
            except Exception:
                result.preview = (pane.agent, [])
        self._statuses(result)
        return result

    def _statuses(self, result: PollResult) -> None:
        """Combine each agent's signals (``bottle_dash.status``) and track since-times."""
        now = self.clock()
        statuses = agent_statuses(result.rows, result.panes, self.read_hook, now, result.preview)
        result.statuses, result.alerts = self.tracker.update(statuses, now)

    def _config(self, result: PollResult) -> Config | None:
        config: Config | None
        try:
            config = self.load_config()
        except (ConfigError, OSError) as exc:  # show it, keep the last good one
            result.config_error = str(exc)
            headline = getattr(exc, "headline", None) or str(exc).splitlines()[0]
            fix = getattr(exc, "fix", None) or "fix the config file and save it"
            result.problems.append(
                Problem("config", f"{headline} (showing the last config that loaded)", fix)
            )
            config = self.last_config
        else:
            self.last_config = config
        result.config_path = config.path if config is not None else None
        return config

    def _usage(self, rows: list[AgentRow]) -> dict[str, Usage]:
        pids: dict[str, int] = {}
        for row in rows:
            pid = self.service.host_pid(row)
            if pid is not None:
                pids[row.name] = pid
        usage: dict[str, Usage] = {}
        if not pids:
            return usage  # nothing to measure: not even a /proc scan
        self.usage.begin()
        for name, pid in pids.items():
            figures = self.usage.tree(pid)
            if figures is not None:
                usage[name] = figures
        self.usage.sweep()
        return usage
