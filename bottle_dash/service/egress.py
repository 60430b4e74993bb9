"""An agent's egress from the host's side: its log summarised, and a host added to its
allowlist (in the config file, and in its running sidecar's policy)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from backends.base import AgentSpec
from backends.egress.plan import allow_live, egress_log
from backends.egress.policy import parse_rule

if TYPE_CHECKING:
    from backends.egress.log import HostSummary


def egress_summary(name: str) -> list[HostSummary]:
    """The agent's egress log: allowed and denied hosts, with counts and the last time."""
    from backends.egress.log import read_summary  # here: only `egress` reads the log

    _fetch_log(name)
    return read_summary(egress_log(name))


def _fetch_log(name: str) -> None:
    """Ask the backend of the agent's last launch to bring its egress log to the host (a
    kubernetes sidecar keeps it in its pod); nothing when the agent was never launched."""
    from backends import registry
    from backends.base import UnknownBackend
    from backends.paths import saved_plan

    plan = saved_plan(name)
    if plan is None:
        return
    try:
        backend = registry.get_backend(plan.backend)
    except (UnknownBackend, ImportError):
        return
    backend.fetch_egress_log(name)


def allow_host(config_path: str | Path, name: str, host: str) -> tuple[AgentSpec, bool]:
    """Add ``host`` to the agent's ``egress_allow`` in the config file; also to its running
    sidecar's policy when it has one. Returns the agent and whether it applied live."""
    from bottle_dash.config import allow_host as add

    spec = add(config_path, name, host)
    live = allow_live(name, str(parse_rule(host)))
    return spec, live


def set_budget(config_path: str | Path, name: str, budget: str) -> tuple[AgentSpec, bool]:
    """Set the agent's ``budget`` in the config file (``ConfigError`` for a bad one) and in
    its sidecar's budget file when it has an egress folder: a running sidecar applies it to
    the next request. Returns the agent and whether a budget file was written."""
    from backends.egress.folder import write_budget
    from bottle_dash.config import set_agent_key

    spec = set_agent_key(config_path, name, "budget", budget)
    if not egress_log(name).parent.is_dir():
        return spec, False
    write_budget(name, spec.egress.budget, spec.egress.price)
    return spec, True
