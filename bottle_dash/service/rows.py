"""A row of ``ls`` and of the dashboard's table: a plain value, built by the service.

A row holds what a listing and the host's records said when it was made; nothing here
reads a file or asks a backend (``readings`` does the reading, ``AgentService`` the
asking). ``to_dict`` is the row in JSON-ready values (``ls --json``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from backends.base import RUNNING, AgentSpec, BottleInfo
from backends.egress.plan import (
    EGRESS_SEALED,
    EGRESS_SIDECAR_DOWN,
    configured_egress,
    permission_mode,
)

if TYPE_CHECKING:
    from backends.egress.spend import Spend
    from backends.probes.result import Result
    from backends.repo_copy import Summary
    from bottle_dash.status import Status

#: The change summary's ``ls --json`` fields (null when the agent has no copy, or it was
#: not read).
CHANGE_FIELDS = (
    "branch", "base", "ahead", "behind", "files_changed", "insertions", "deletions", "dirty"
)  # fmt: skip

#: What ``up`` did.
ALREADY_RUNNING = "already running"
STARTED = "started"
LAUNCHED = "launched"

#: State of a defined agent whose backend could not be listed (not "not created": we
#: do not know).
STATE_UNKNOWN = "unknown"


class AgentRow(NamedTuple):
    """One line of ``ls`` and of the dashboard's table: a defined agent, its bottle, or both.

    ``defined`` is False for a labelled bottle whose agent is no longer in the config; such
    a row has no ``spec``. ``info`` is None while the agent has no bottle. ``state`` is
    ``running``, ``stopped``, ``not created``, or ``unknown`` when its backend did not answer.
    The seal and the workspace's warnings are empty until the service read them
    (``readings.inspected``): a listing does not.
    """

    name: str
    backend: str
    bottle: str
    state: str
    image: str
    created: str
    defined: bool
    spec: AgentSpec | None = None
    info: BottleInfo | None = None
    #: What the agent is doing, when something looked (``ls`` and the dashboard do).
    status: Status | None = None
    #: The agent runs (or would run) as uid 0: its workspace belongs to root.
    runs_as_root: bool = False
    #: The seal badge of a running bottle (``sealed``, ``n failing``, ``not checked``);
    #: empty when it does not run or nobody read its record.
    seal: str = ""
    #: The failing probes of the last run on this bottle, each with its fix.
    seal_failures: tuple[Result, ...] = ()
    #: What the workspace gained since the first ``up`` that would run or resolve on the
    #: host (executable git hooks, git settings that run commands, symlinks out).
    workspace_warnings: tuple[str, ...] = ()
    #: Tokens and cost from the agent's usage log (``backends.egress.spend``), when read.
    spend: Spend | None = None
    #: What the agent changed in its repository copy (``repo``), when it was read.
    changes: Summary | None = None
    #: How its ``setup`` commands ended: ``ok``, ``failed: CMD (exit N)``, or "".
    setup: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (``ls --json``)."""
        since = self.status.since if self.status else None
        return {
            "name": self.name,
            "backend": self.backend,
            "bottle": self.bottle,
            "state": self.state,
            "image": self.image,
            "created": self.created or None,
            "defined": self.defined,
            "workspace": str(self.spec.workspace) if self.spec and self.spec.workspace else None,
            "id": self.info.ident if self.info and self.info.ident else None,
            "status": self.status.status if self.status else None,
            # Whether a live pane shows claude (None: no claude running, or unknown).
            "attached": (
                None
                if self.status is None or self.status.status == "exited"
                else not self.status.detached
            ),
            "status_since": (
                datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
                if since is not None
                else None
            ),
            "egress": self.egress,
            "permissions": self.permissions,
            "seal": self.seal,
            "seal_failures": [
                {"probe": r.probe, "evidence": r.evidence, "fix": r.fix} for r in self.seal_failures
            ],
            "workspace_warnings": list(self.workspace_warnings),
            "runs_as_root": self.runs_as_root,
            **self.cost_fields(),
            **self.change_fields(),
            "setup": self.setup or None,
        }

    def cost_fields(self) -> dict[str, Any]:
        """``cost_today_usd``, ``cost_total_usd`` (None: some usage has no price),
        ``tokens_today``, ``budget`` and its ``budget_spent_usd``."""
        spend = self.spend
        if spend is None:
            keys = (
                "cost_today_usd",
                "cost_total_usd",
                "tokens_today",
                "budget",
                "budget_spent_usd",
            )
            return dict.fromkeys(keys)
        full = spend.to_dict()
        priced = not spend.unpriced
        return {
            "cost_today_usd": full["cost_today_usd"] if priced else None,
            "cost_total_usd": full["cost_total_usd"] if priced else None,
            "tokens_today": spend.tokens_today,
            "budget": full["budget"] or None,
            "budget_spent_usd": full["budget_spent_usd"] if spend.budget_words else None,
        }

    def change_fields(self) -> dict[str, Any]:
        """``CHANGE_FIELDS``: the summary's, the configured branch alone when it was not
        read, all null for an agent without ``repo``."""
        if self.changes is not None:
            return self.changes.to_dict()
        fields: dict[str, Any] = dict.fromkeys(CHANGE_FIELDS)
        if self.spec is not None and self.spec.repo is not None:
            fields["branch"] = self.spec.branch
            fields["base"] = self.spec.base
        return fields

    @property
    def egress(self) -> str:
        """``sealed``, ``sidecar down`` (no egress at all), ``unsealed``, or ``""`` when
        unknown: the bottle's own state when it exists, else what the config makes."""
        if self.info is not None and self.info.egress:
            if self.info.egress == EGRESS_SIDECAR_DOWN and self.state != RUNNING:
                # Stopped, not broken: its sidecar stopped with it and starts with it.
                return EGRESS_SEALED
            return self.info.egress
        return configured_egress(self.spec) if self.spec is not None else ""

    @property
    def permissions(self) -> str:
        """Claude's permission mode: ``skip`` (unattended), ``ask``, or ``""`` unknown."""
        return permission_mode(self.spec) if self.spec is not None else ""


class Attached(NamedTuple):
    """How an attach ended: ``how`` is focused, respawned, split or foreground (no pane
    host: the caller runs ``argv`` on its terminal)."""

    how: str
    argv: list[str]
    pane_id: str | None = None
    #: What ``up`` did to the bottle first: ALREADY_RUNNING, STARTED or LAUNCHED.
    up: str = ""
