"""What the dashboard's screens are given when they are built (never the app object).

``make_app`` builds one ``DashContext`` and passes it to each screen's ``__init__``. It
imports no Textual, so it is the seam tests and benchmarks fill with fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from backends.base import AgentSpec
from bottle_dash import config
from bottle_dash.service import AgentService
from bottle_dash.service.notify import Notifier
from bottle_dash.tmux import PaneHost
from bottle_dash.ui.poller import Poller


@dataclass
class DashContext:
    """The dashboard's collaborators: the agent service, the poller, the clock, the
    foreground runner (``--no-tmux``), the notifier, where the config file is and where
    the operator started."""

    service: AgentService
    poller: Poller
    config_path: Path | None
    now: Callable[[], datetime]
    refresh_interval: float
    run_foreground: Callable[[Sequence[str]], int]
    #: Tells the operator an agent is waiting, outside the screen (tmux, notify_command).
    notifier: Notifier
    #: Where the operator started the dashboard: the first agent's workspace (None: none).
    start_dir: Path | None = None
    #: Run the escape probes in the background after a launch (the seal badge).
    probe_after_up: bool = True

    @property
    def pane_host(self) -> PaneHost | None:
        """Where agents' panes live (None: ``--no-tmux``)."""
        return self.service.pane_host

    def config_file(self) -> Path:
        """The config file agents are saved to: the one given, else the one last loaded."""
        loaded = self.poller.last_config
        if self.config_path is not None:
            return self.config_path
        return loaded.path if loaded is not None else config.resolve_config_path()

    def validate_agent(self, name: str, table: Mapping[str, Any]) -> AgentSpec:
        """Validate a new agent exactly like the config loader (raises ``ConfigError``)."""
        loaded = self.poller.last_config
        defaults = loaded.defaults if loaded is not None else {}
        return config.validate_agent(name, table, defaults, self.config_file())

    def save_agent(self, name: str, table: Mapping[str, Any]) -> None:
        """Append a validated agent to the config file."""
        config.append_agent(self.config_file(), name, table)

    def new_agent_values(self) -> dict[str, str]:
        """What the new-agent form starts with: the default image and, while no agent is
        defined, a name and a workspace from the directory the operator started in."""
        loaded = self.poller.last_config
        agents = loaded.agents if loaded is not None else {}
        defaults = loaded.defaults if loaded is not None else {}
        return config.first_agent_values(self.start_dir, agents, defaults, not_own_checkout=True)
