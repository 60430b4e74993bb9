"""What every command shares: the program's name, the exit codes, ``UsageError`` and the
``Context`` a command is given (its arguments, the config, the agent service)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from backends.base import AgentSpec, BackendUnavailable
from bottle_dash import config as configmod
from bottle_dash.config import Config

if TYPE_CHECKING:
    from bottle_dash.service import AgentRow, AgentService

PROG = "bottle-dash"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command-line mistake the operator can fix (unknown agent name and the like)."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


class Context:
    """What every command needs: the parsed arguments, the config (loaded once) and the
    agent service (built once, when a command first needs it)."""

    def __init__(self, args: argparse.Namespace, service: AgentService | None = None) -> None:
        self.args = args
        self.config_path = configmod.resolve_config_path(args.config)
        self._config: Config | None = None
        self._service = service

    @property
    def service(self) -> AgentService:
        """The agent service, built when first asked for."""
        if self._service is None:
            # Imported here: `init` and `--help` need no backend code.
            from bottle_dash.service import AgentService

            self._service = AgentService()
        return self._service

    @property
    def config(self) -> Config:
        """The config file, loaded (and checked) when first asked for."""
        if self._config is None:
            self._config = configmod.load_config(self.config_path)
        return self._config

    def spec(self, name: str) -> AgentSpec:
        """The defined agent ``name`` (unknown names suggest the nearest)."""
        spec = self.config.agents.get(name)
        if spec is None:
            raise self._unknown(name, list(self.config.agents))
        return spec

    def target(self, name: str) -> AgentRow:
        """A defined agent or a bottle whose agent is no longer defined, by name."""
        spec = self.config.agents.get(name)
        if spec is not None:
            return self.service.row_of(spec)
        rows, problems = self.service.list_agents(self.config)
        for row in rows:
            if row.name == name:
                return row
        fatal = [p for p in problems if p.fatal]
        if fatal:
            raise BackendUnavailable(fatal[0].what, fix=fatal[0].fix)
        raise self._unknown(name, [r.name for r in rows])

    def _unknown(self, name: str, known: list[str]) -> UsageError:
        from bottle_dash.service import nearest

        close = nearest(name, known)
        where = str(self.config_path)
        if not self.config.exists:
            return UsageError(
                f"unknown agent {name!r}: no config file at {where}",
                f"run {PROG} init, then define agents in {where}",
            )
        hint = f"did you mean {close!r}? " if close else ""
        defined = ", ".join(known) if known else "none"
        return UsageError(
            f"unknown agent {name!r}; {hint}agents: {defined}",
            f"use one of those names, or add [agents.{name}] to {where}",
        )
