"""Reading an agent's egress log: allowed and denied hosts with counts and the last time.

The sidecar rotates the log (``egress.log``, then ``egress.log.1``); both are read. Lines
of ``bottle-dash probe``'s own requests carry a ``probe`` mark: they are counted apart,
so the agent's traffic is never mixed with the probes' (a bottle could mark its own
requests too: the sidecar answers every marked request itself and never forwards it, so
a mark only moves traffic into the probe section, where it is still shown)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Only the end of a long log is read (the summary is of recent traffic).
TAIL_BYTES = 4 * 1024**2


@dataclass
class HostSummary:
    """One host:port in the log."""

    host: str
    port: int
    #: Traffic of ``bottle-dash probe`` (marked), not the agent's.
    probe: bool = False
    allowed: int = 0
    denied: int = 0
    last: str = ""
    last_reason: str = ""

    @property
    def rule(self) -> str:
        """What ``egress_allow`` would need to hold to allow it."""
        return self.host if self.port == 443 else f"{self.host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rule": self.rule}


def summarize(lines: Iterable[str]) -> list[HostSummary]:
    """Per host:port counts from log lines (unreadable lines are skipped); denied hosts
    first, then by most recent."""
    hosts: dict[tuple[str, int, bool], HostSummary] = {}
    for line in lines:
        try:
            record = json.loads(line)
            host, port = str(record["host"]), int(record["port"])
            probe = bool(record.get("probe"))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        entry = hosts.setdefault((host, port, probe), HostSummary(host, port, probe))
        if record.get("decision") == "allow":
            entry.allowed += 1
        else:
            entry.denied += 1
            entry.last_reason = str(record.get("reason", ""))
        entry.last = max(entry.last, str(record.get("ts", "")))
    return sorted(hosts.values(), key=lambda h: (h.probe, h.denied == 0, _neg(h.last), h.host))


def _neg(ts: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in ts)


def _tail(path: Path) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            data = fh.read()
    except OSError:
        return []
    lines = data.decode(errors="replace").splitlines()
    if size > TAIL_BYTES and lines:
        lines = lines[1:]  # the first line was cut
    return lines


def read_summary(path: Path) -> list[HostSummary]:
    """The summary of the log at ``path`` and its rotated older file (empty when there is
    none yet)."""
    return summarize([*_tail(path.with_name(path.name + ".1")), *_tail(path)])
