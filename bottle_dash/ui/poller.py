"""One poll of everything the dashboard shows, as a blocking call for a thread worker.

Per tick: the config is read, each backend is listed once (``AgentService.list_agents``),
resource use comes from each bottle's host process tree (``bottle_dash.process_usage``:
``/proc``, no per-bottle stats call), and every agent's pane state comes from one tmux
call. The main screen runs this in
a thread worker and schedules the next poll only after this one has finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backends.base import RUNNING, BackendError, Problem
from backends.probes.result import Result
from backends.status_file import HookReading, read_status
from bottle_dash.config import Config, ConfigError, ConfigErrors
from bottle_dash.process_usage import ProcessUsage, Usage
from bottle_dash.service import AgentRow, AgentService, seal_state
from bottle_dash.service.copies import ChangeWatcher
from bottle_dash.service.spending import BudgetWatch, Spend, spends
from bottle_dash.status import Change, Status, StatusTracker, agent_statuses
from bottle_dash.tmux import PaneHost, PaneInfo


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
    #: agent -> what it spent (its usage log, read here in the worker).
    spends: dict[str, Spend] = field(default_factory=dict)
    #: Agents that reached 80 % or 100 % of their budget since the previous poll.
    budget_alerts: list[Change] = field(default_factory=list)


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
        self.budgets = BudgetWatch()
        #: Change summaries of agents with a repository copy, computed in threads of
        #: their own (a big repository never holds up a tick).
        self.changes = ChangeWatcher(service.backend)
        self._status_words: dict[str, str] = {}

    def poll(self, preview_agent: str | None = None) -> PollResult:
        """One tick: config, one listing per backend, /proc, one tmux call, one capture,
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
        result.spends = spends(row.name for row in result.rows if row.defined)
        result.budget_alerts = self.budgets.update(result.spends)
        if preview_agent is None and result.rows:
            preview_agent = result.rows[0].name  # the cursor starts on the first row
        pane = result.panes.get(preview_agent or "")
        if pane is not None and self.pane_host is not None:
            try:
                result.preview = (pane.agent, self.pane_host.capture(pane.pane_id))
            except Exception:
                result.preview = (pane.agent, [])
        self._statuses(result)
        words = {name: status.status for name, status in result.statuses.items()}
        nudged = frozenset(n for n, w in words.items() if self._status_words.get(n) != w)
        self._status_words = words
        result.rows = self.changes.apply(result.rows, nudged)
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
        except ConfigErrors as exc:  # bad agents: each shown, the good ones listed
            config = exc.partial
            last = self.last_config.agents if self.last_config is not None else {}
            # A bad agent that loaded before keeps its last good definition meanwhile.
            kept = {e.agent: last[e.agent] for e in exc.errors if e.agent and e.agent in last}
            for each in exc.errors:
                note = " (showing its last config that loaded)" if each.agent in kept else ""
                result.problems.append(Problem("config", each.headline + note, each.fix or ""))
            result.config_error = str(exc)
            if config is not None and kept:
                config = config._replace(agents={**config.agents, **kept})
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
