"""The agent service: every operation the CLI and the dashboard share, written once.

One ``AgentService`` is built at start-up and injected (``cli`` per command, the dashboard
in ``session``); this package imports neither Textual nor libtmux. Its rooms:

- ``agents``    ``AgentService``: find a backend, list, up, attach, stop, remove, logs
- ``rows``      ``AgentRow`` (a plain value: ``ls`` and the dashboard's table), ``Attached``
- ``readings``  what the host's files say of a row: root workspace, seal, workspace gains
- ``listing``   every backend's listing at once, an unused backend's remembered; the rows
- ``doctor``    ``Check``, preflight and ``doctor``: what is there, what is missing, fixes
- ``images``    which images the agents run, and building the agent image
- ``egress``    an agent's egress log summary, and a host added to its allowlist
- ``notify``    ``Notifier``: an agent's alert to the operator's tmux client and command
- ``problems``  a failure in one line, as a ``Problem``, and "did you mean"

Callers import from here (``from bottle_dash.service import AgentService``).
"""

from __future__ import annotations

from bottle_dash.service.agents import AgentService, claude_args_of
from bottle_dash.service.doctor import Check, image_checks, tmux_check
from bottle_dash.service.egress import allow_host, egress_summary, set_budget
from bottle_dash.service.images import can_build_image, images_needed
from bottle_dash.service.listing import IDLE_BACKEND_EVERY, backends_needed
from bottle_dash.service.problems import describe, nearest
from bottle_dash.service.readings import inspected, make_row, root_workspace, seal_state
from bottle_dash.service.rows import (
    ALREADY_RUNNING,
    LAUNCHED,
    STARTED,
    STATE_UNKNOWN,
    AgentRow,
    Attached,
)

__all__ = [
    "ALREADY_RUNNING",
    "IDLE_BACKEND_EVERY",
    "LAUNCHED",
    "STARTED",
    "STATE_UNKNOWN",
    "AgentRow",
    "AgentService",
    "Attached",
    "Check",
    "allow_host",
    "backends_needed",
    "can_build_image",
    "claude_args_of",
    "describe",
    "egress_summary",
    "set_budget",
    "image_checks",
    "images_needed",
    "inspected",
    "make_row",
    "nearest",
    "root_workspace",
    "seal_state",
    "tmux_check",
]
