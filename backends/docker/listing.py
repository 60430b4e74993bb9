"""The docker backend's listing hot path: every bottle from one engine call, and the host
process that carries each running bottle's resource use.

``bottle-dash ls`` and every dashboard poll come through here, so it reads the engine's
socket straight (``Engine.get``: no SDK) and imports nothing that only launching needs.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backends import ownership
from backends.base import (
    LABEL_AGENT,
    LABEL_BACKEND,
    RUNNING,
    STOPPED,
    BackendError,
    BottleInfo,
    bottle_name,
)
from backends.docker.engine import Engine, EngineNotFound
from backends.egress import plan as egress


def _iso(created: Any) -> str:
    """Engine timestamps (Unix seconds in listings) as ISO 8601 UTC."""
    if isinstance(created, int | float):
        return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="seconds")
    return str(created or "")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _shim_of(pid: int) -> int:
    """The ``containerd-shim`` parent of a container's main process, else ``pid`` itself
    (another runtime, or /proc not readable)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        ppid = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("PPid:")))
        cmdline = Path(f"/proc/{ppid}/cmdline").read_bytes()
    except (OSError, ValueError, StopIteration, IndexError):
        return pid
    return ppid if ppid > 1 and b"containerd-shim" in cmdline else pid


def label_filter(agent: str | None = None) -> dict[str, list[str]]:
    """Engine filter for this owner's resources of this backend (of one agent when
    given); label filters AND together, so other backends' containers (the smolvm
    stand-in) and other operators' bottles stay out."""
    first = f"{LABEL_AGENT}={agent}" if agent else LABEL_AGENT
    return {
        "label": [
            first,
            f"{LABEL_BACKEND}=docker",
            f"{ownership.LABEL_OWNER}={ownership.current()}",
        ]
    }


def egress_state(labels: dict[str, str], sidecars: dict[Any, bool]) -> str:
    """A bottle's egress as the listing sees it: sealed with its sidecar running, sealed
    with the sidecar stopped or gone (no egress at all: fail closed), or unsealed."""
    if labels.get(egress.SEALED_LABEL) != "true":
        return egress.EGRESS_UNSEALED
    running = sidecars.get(labels.get(LABEL_AGENT))
    return egress.EGRESS_SEALED if running else egress.EGRESS_SIDECAR_DOWN


class Listing:
    """The bottles of one engine, and the host pid of each running one (one inspect each,
    then cached while it runs)."""

    def __init__(self, engine: Engine, backend: str = "docker") -> None:
        self.engine = engine
        self.backend = backend
        # container id -> host pid of its main process, while it runs (one inspect each).
        self._pids: dict[str, int] = {}
        # container id -> when it started, while it runs (the same inspect).
        self._started: dict[str, str] = {}
        self._pids_lock = threading.Lock()

    def bottles(self) -> list[BottleInfo]:
        """Every docker bottle (labelled ``bottle-dash.agent`` and ``backend=docker``),
        from one listing call (``GET /containers/json``); sorted by agent."""
        params = {"all": "1", "filters": json.dumps(label_filter())}
        try:
            rows = self.engine.get("/containers/json", params)
        except EngineNotFound as exc:
            raise BackendError(f"listing docker bottles failed: {exc}") from exc
        if not isinstance(rows, list):
            raise BackendError(f"listing docker bottles: unexpected answer {str(rows)[:80]}")
        infos: list[BottleInfo] = []
        live: set[str] = set()
        sidecars = {
            (row.get("Labels") or {}).get(LABEL_AGENT): row.get("State") == "running"
            for row in rows
            if (row.get("Labels") or {}).get(egress.ROLE_LABEL) == egress.ROLE_EGRESS
        }
        for row in rows:
            labels = row.get("Labels") or {}
            agent = labels.get(LABEL_AGENT)
            if not agent or labels.get(egress.ROLE_LABEL):
                continue
            names = row.get("Names") or []
            running = row.get("State") == "running"
            ident = str(row.get("Id", ""))
            if running:
                live.add(ident)
            infos.append(
                BottleInfo(
                    agent=agent,
                    backend=self.backend,
                    bottle=names[0].lstrip("/") if names else bottle_name(agent),
                    state=RUNNING if running else STOPPED,
                    image=str(row.get("Image", "")),
                    created=_iso(row.get("Created")),
                    ident=ident,
                    host_pid=self._pids.get(ident) if running else None,
                    labels=dict(labels),
                    egress=egress_state(labels, sidecars),
                    started=self._start_of(ident) if running else "",
                )
            )
        with self._pids_lock:
            for ident in list(self._pids):
                if ident not in live:
                    del self._pids[ident]
            for ident in list(self._started):
                if ident not in live:
                    del self._started[ident]
        return sorted(infos, key=lambda i: (i.agent, i.bottle))

    def _start_of(self, ident: str) -> str:
        """When running container ``ident`` started: one inspect the first time it is
        seen running (a start after a stop is seen anew), then cached."""
        with self._pids_lock:
            started = self._started.get(ident)
        if started is not None:
            return started
        try:
            data = self.engine.get(f"/containers/{ident}/json")
        except (EngineNotFound, BackendError):
            return ""
        started = str((data.get("State") or {}).get("StartedAt") or "")
        with self._pids_lock:
            self._started[ident] = started
        return started

    def host_pid(self, info: BottleInfo) -> int | None:
        """The host process whose tree holds everything running in the bottle: the
        container's ``containerd-shim`` (one inspect, then cached while it runs).

        Not the container's main process: ``docker exec`` (claude in a pane) starts its
        processes as children of the shim, beside the main process, so the main process's
        tree would miss claude entirely. The shim itself adds a few MB. None when stopped,
        gone, or not on this host (a remote engine's pids mean nothing here)."""
        if info.state != RUNNING or not info.ident:
            return None
        with self._pids_lock:
            pid = self._pids.get(info.ident)
        if pid and _pid_alive(pid):
            return pid
        try:
            data = self.engine.get(f"/containers/{info.ident}/json")
        except (EngineNotFound, BackendError):
            return None  # gone (a race) or the engine went away: unknown, not an error
        state = data.get("State") or {}
        pid = state.get("Pid") or None
        if not (pid and state.get("Running")):
            return None
        pid = _shim_of(int(pid))
        with self._pids_lock:
            self._pids[info.ident] = pid
        return pid

    def forget(self, ident: str) -> None:
        """Drop the cached pid of container ``ident`` (it was stopped)."""
        with self._pids_lock:
            self._pids.pop(ident, None)
