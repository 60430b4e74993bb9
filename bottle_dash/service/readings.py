"""What the host's files say of an agent, read for its row: whether its workspace belongs
to root (``make_row``), its seal record (``seal_state``) and what its workspace gained
(``inspected``).

The row itself is a value (``rows.AgentRow``); these are the reads that fill it, each
as cheap as it can be: one ``stat`` per row, the seal record read again only when its
file changed (``backends.probes.record``), the workspace walked only for ``ls --json``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from backends import workspace
from backends.base import NOT_CREATED, RUNNING, AgentSpec, BottleInfo, bottle_name
from backends.probes import record
from bottle_dash.service.rows import AgentRow

if TYPE_CHECKING:
    from backends.egress.spend import Spend
    from backends.probes.result import Result


def make_row(name: str, backend: str, spec: AgentSpec | None, info: BottleInfo | None) -> AgentRow:
    """The row for an agent (``spec``, None when no longer defined) and its bottle (``info``,
    None when it has none)."""
    return AgentRow(
        name=name,
        backend=info.backend if info else backend,
        bottle=info.bottle if info else bottle_name(name),
        state=info.state if info else NOT_CREATED,
        image=info.image if info and info.image else (spec.image if spec else ""),
        created=info.created if info else "",
        defined=spec is not None,
        spec=spec,
        info=info,
        runs_as_root=root_workspace(spec),
    )


def root_workspace(spec: AgentSpec | None) -> bool:
    """Whether ``spec``'s agent runs as uid 0: it runs as its workspace's owner
    (``backends.agent_user``), and that is root (one ``stat``; False when it cannot be read)."""
    if spec is None or spec.workspace is None:
        return False
    try:
        return os.stat(os.path.expanduser(spec.workspace)).st_uid == 0
    except OSError:
        return False


def seal_state(row: AgentRow) -> tuple[str, list[Result]]:
    """The seal badge and the failing probes (each with its fix) from one look at the
    record: the escape probes' last run on this very bottle. ``("", [])`` when the
    bottle does not run; ``not checked`` when no run checked it."""
    if row.state != RUNNING:
        return "", []
    run = record.current_run(row.name, row.created)
    return (run.seal, run.failures) if run else (record.NOT_CHECKED, [])


def workspace_warnings(row: AgentRow) -> list[str]:
    """What the workspace gained since the first ``up`` that would run or resolve on
    the host: executable git hooks, git settings that run commands, symlinks out."""
    if row.spec is None or row.spec.workspace is None or row.info is None:
        return []
    folder = Path(row.spec.workspace).expanduser()
    return workspace.gained(row.name, folder) if folder.is_dir() else []


def spend_of(row: AgentRow) -> Spend | None:
    """What ``row``'s agent spent (its usage log; remembered until the log changes)."""
    from backends.egress.spend import agent_spend

    return agent_spend(row.name)


def inspected(row: AgentRow) -> AgentRow:
    """``row`` with what the host's records say of its bottle: its seal and failing
    probes, what its workspace gained, what it spent (what ``ls --json`` prints)."""
    seal, failures = seal_state(row)
    return row._replace(
        seal=seal,
        seal_failures=tuple(failures),
        workspace_warnings=tuple(workspace_warnings(row)),
        spend=spend_of(row),
    )
