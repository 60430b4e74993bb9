"""Every backend's listing, and the rows made from it.

``Listings`` asks each backend for its bottles, all backends at once (each in its own
thread), and remembers the listing of a backend no agent uses for a while (it is listed
only to find bottles left behind; a ``machine ls`` is a subprocess). ``agent_rows``
merges the listings with the config: defined agents first, then the bottles whose agent
left the config.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from backends.base import DEFAULT_BACKEND, BackendError, BottleBackend, BottleInfo, Problem
from bottle_dash.config import Config
from bottle_dash.service.problems import problem_of
from bottle_dash.service.readings import make_row
from bottle_dash.service.rows import STATE_UNKNOWN, AgentRow

#: Seconds between the dashboard's listings of a backend no agent uses (listed only to
#: find bottles left behind; a ``machine ls`` is a subprocess).
IDLE_BACKEND_EVERY = 30.0

#: Each backend's listing, or why it failed, by backend name.
Listed = dict[str, list[BottleInfo] | BackendError]


def backends_needed(config: Config | None) -> set[str]:
    """Backends the defined agents use; the default backend when none are defined."""
    if config is None or not config.agents:
        return {DEFAULT_BACKEND}
    return {spec.backend for spec in config.agents.values()}


class Listings:
    """The backends' listings: asked at once, an unused backend's remembered.

    ``names`` gives the backends to list and ``backend`` finds one by name (the
    service's own lookup, so an injected backend added later is listed too).
    ``idle_every``: a backend no defined agent uses is listed at most this often
    (seconds; 0 lists it every time).
    """

    def __init__(
        self,
        names: Callable[[], list[str]],
        backend: Callable[[str], BottleBackend],
        idle_every: float = 0.0,
    ) -> None:
        self.names = names
        self.backend = backend
        self.idle_every = idle_every
        self._listed: dict[str, tuple[float, list[BottleInfo]]] = {}

    def _remembered(self, name: str, in_use: set[str]) -> bool:
        """Whether backend ``name`` may answer from its last listing (no agent uses it)."""
        return name not in in_use and self.idle_every > 0

    def _due(self, name: str, in_use: set[str]) -> bool:
        """Whether ``_list`` asks the backend itself (else it answers from memory)."""
        if not self._remembered(name, in_use):
            return True
        at = self._listed.get(name, (float("-inf"), []))[0]
        return time.monotonic() - at >= self.idle_every

    def _list(self, name: str, in_use: set[str]) -> list[BottleInfo]:
        """``list_bottles`` of ``name``; an unused backend answers from a recent listing."""
        if not self._due(name, in_use):
            return self._listed[name][1]
        now = time.monotonic()
        listed = self.backend(name).list_bottles()  # raises: the problem shows each time
        if self._remembered(name, in_use):
            self._listed[name] = (now, listed)
        return listed

    def list_all(self, in_use: set[str]) -> Listed:
        """Every backend's listing (or why it failed), by name in ``names()`` order;
        ``in_use`` names the backends some agent uses (never answered from memory).

        The backends answer at once, each in its own thread: a ``machine ls`` subprocess
        and a Docker socket call then cost the longer of the two, not their sum.
        """
        names = self.names()
        out: dict[str, list[BottleInfo] | BaseException] = {}

        def one(name: str) -> None:
            try:
                out[name] = self._list(name, in_use)
            except Exception as exc:  # carried to the caller's thread, raised there if a bug
                out[name] = exc

        # A thread only for a second backend that is asked (one answering from memory
        # costs less than the thread's start, on every tick).
        asked = [n for n in names if self._due(n, in_use)]
        threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in asked[1:]]
        for thread in threads:
            thread.start()
        for name in names:
            if name not in asked[1:]:
                one(name)
        for thread in threads:
            thread.join()
        listed: Listed = {}
        for name in names:
            result = out[name]
            if isinstance(result, BaseException) and not isinstance(result, BackendError):
                raise result
            listed[name] = result
        return listed


def agent_rows(config: Config, listed: Listed) -> tuple[list[AgentRow], list[Problem]]:
    """The rows of every defined agent and every listed bottle, and the problems found.

    A backend that could not answer becomes a ``Problem``, fatal when the backend is
    needed (``backends_needed``), and its agents' state is ``STATE_UNKNOWN``. Defined agents
    come first in config order, then bottles whose agent is no longer defined
    (``defined=False``), by name. A defined agent's row shows its bottle on its own
    backend; a bottle of the same name on another backend is reported as a problem (rows
    are unique by name: the dashboard keys its table by it).
    """
    in_use = backends_needed(config)
    found: dict[str, dict[str, BottleInfo]] = {}
    problems: list[Problem] = []
    failed: set[str] = set()
    for name, infos in listed.items():
        if isinstance(infos, BackendError):
            problems.append(problem_of(name, infos, fatal=name in in_use))
            failed.add(name)
            continue
        found[name] = {info.agent: info for info in infos}

    rows: list[AgentRow] = []
    for name, spec in config.agents.items():
        info = found.get(spec.backend, {}).pop(name, None)
        row = make_row(name, spec.backend, spec, info)
        rows.append(row._replace(state=STATE_UNKNOWN) if spec.backend in failed else row)
    orphans: list[AgentRow] = []
    for backend, left in found.items():
        for agent, info in left.items():
            owner = config.agents.get(agent)
            if owner is not None:
                problems.append(
                    Problem(
                        backend,
                        f"agent {agent!r} is defined for {owner.backend} but has a bottle "
                        f"on {backend} ({info.bottle}, {info.state})",
                        f"set the agent's backend back to {backend!r} and run bottle-dash "
                        f"rm {agent}, or remove {info.bottle} with the {backend} tools",
                        fatal=False,
                    )
                )
                continue
            orphans.append(make_row(agent, backend, None, info))
    rows += sorted(orphans, key=lambda r: (r.name, r.backend))
    return rows, problems
