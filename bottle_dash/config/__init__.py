"""The agent config file: where it is, what it may say, and how it becomes ``AgentSpec`` values.

The file is TOML at ``$XDG_CONFIG_HOME/bottle-dash/config.toml``; ``--config PATH`` and then
``BOTTLE_DASH_CONFIG`` override that location. It holds a ``[defaults]`` table and one
``[agents.<name>]`` table per agent::

    [defaults]
    backend = "docker"
    memory = "2g"
    env = { TZ = "UTC" }

    [agents.web]
    workspace = "~/src/web"        # ~ expanded; relative paths are relative to this file
    prompt = "You work on the web front end."
    env = { NODE_ENV = "development" }   # merged over [defaults].env

Every key in ``[defaults]`` applies to every agent; an agent's own value replaces it, except
``env``, whose tables merge (the agent wins per variable). ``prompt`` and ``prompt_file``
are one setting written two ways: an agent that sets either replaces whichever the defaults
set, and setting both in one table is an error.

Every problem is a ``ConfigError`` that names the file, the line when it can be found, the
agent, the key and what would be valid. The whole file is checked before anything uses it,
so a bad config never reaches a bottle. A missing file is not an error: it has no agents,
and ``Config.exists`` lets the UI say where to create it.

The rooms: ``paths`` (where the file is), ``locate`` (``ConfigError`` and line numbers),
``schema`` (``AGENT_SCHEMA``, one validator per key), ``load`` (reading and checking the
whole file), ``edit`` (appending an agent, allowing a host, keeping the text), ``starter``
(``starter.toml``, what ``init`` writes). This module only gathers what callers import.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from bottle_dash.config.load import Config, load_config, parse_config, validate_agent
from bottle_dash.config.locate import ConfigError, ConfigErrors
from bottle_dash.config.paths import (
    ENV_VAR,
    default_config_path,
    private_dir,
    resolve_config_path,
)
from bottle_dash.config.schema import AGENT_KEYS, DASHBOARD_KEYS, TOP_KEYS, parse_memory

if TYPE_CHECKING:
    from bottle_dash.config.edit import (
        allow_host,
        append_agent,
        render_agent,
        set_agent_key,
        toml_value,
    )
    from bottle_dash.config.starter import (
        first_agent_values,
        starter_config,
        starter_text,
        write_starter,
    )

#: What only writing the file needs, by the module that holds it: loaded when first
#: asked for, since reading the config (every command; ``ls`` is run often) does without.
_ON_FIRST_USE = {
    "allow_host": "edit",
    "append_agent": "edit",
    "render_agent": "edit",
    "set_agent_key": "edit",
    "toml_value": "edit",
    "first_agent_values": "starter",
    "starter_config": "starter",
    "starter_text": "starter",
    "write_starter": "starter",
}


def __getattr__(name: str) -> object:
    """The names of ``edit`` and ``starter``, importing their module on first use."""
    module = _ON_FIRST_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "AGENT_KEYS",
    "DASHBOARD_KEYS",
    "ENV_VAR",
    "TOP_KEYS",
    "Config",
    "ConfigError",
    "ConfigErrors",
    "allow_host",
    "append_agent",
    "default_config_path",
    "first_agent_values",
    "load_config",
    "parse_config",
    "parse_memory",
    "private_dir",
    "render_agent",
    "resolve_config_path",
    "set_agent_key",
    "starter_config",
    "starter_text",
    "toml_value",
    "validate_agent",
    "write_starter",
]
