"""Reading the config file: ``load_config`` finds and reads it, ``parse_config`` checks the
whole text (top-level tables, ``[defaults]``, every agent through ``AGENT_SCHEMA``, the
``[dashboard]`` table) before anything uses it, so a bad config never reaches a bottle."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from backends import ownership
from backends.base import SLUG_MAX, AgentSpec, is_slug, sidecar_collision
from backends.egress.spec import EgressSpec
from backends.kubernetes import settings as kube
from bottle_dash.config.locate import (
    ConfigError,
    ConfigErrors,
    Locator,
    describe,
    parse_toml,
    type_name,
    unknown_key,
)
from bottle_dash.config.paths import resolve_config_path
from bottle_dash.config.schema import (
    AGENT_KEYS,
    AGENT_SCHEMA,
    DASHBOARD_KEYS,
    TOP_KEYS,
    UNSET,
    Agent,
)


class Config(NamedTuple):
    """A loaded config file: validated agents (by name, in file order) and the raw defaults."""

    path: Path
    exists: bool
    agents: Mapping[str, AgentSpec] = MappingProxyType({})
    #: The ``[defaults]`` table as written (the "new agent" form validates against it).
    defaults: Mapping[str, Any] = MappingProxyType({})
    #: ``[dashboard] notify_command``: argv run (no shell) with the agent's name and the
    #: reason appended when an agent starts waiting; empty: none.
    notify_command: tuple[str, ...] = ()
    #: ``[kubernetes]``: where the kubernetes backend finds its cluster.
    kubernetes: kube.KubeSettings = kube.KubeSettings()


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate the config file (see ``resolve_config_path`` for which one).

    A missing file gives a ``Config`` with ``exists=False`` and no agents. Anything wrong
    raises ``ConfigError``; nothing is half-loaded.
    """
    file = resolve_config_path(path)
    # Bottles are owned by host user + config file: this process acts on this file's only.
    ownership.use_config(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config(path=file, exists=False)
    except IsADirectoryError:
        raise ConfigError(
            "is a directory, not a file", path=file, fix="point --config at a TOML file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot be read: {exc}", path=file, fix="check the file's permissions and encoding"
        ) from None
    config = parse_config(text, file)
    kube.use(config.kubernetes)  # the backend reads it on every call
    return config


def parse_config(text: str, path: Path) -> Config:
    """Validate config ``text`` as if it were the file at ``path`` (used by ``load_config``
    and by ``append_agent`` to check a file before it is written)."""
    data = parse_toml(text, path)
    where = Locator(text)
    for key in data:
        if key not in TOP_KEYS:
            raise unknown_key(key, TOP_KEYS, path, None, where.top(key), "top-level tables")
    defaults = _top_table(
        data, "defaults", "a table", "write it as a [defaults] table", path, where
    )
    check_keys(defaults, "defaults", None, path, where)
    agents = _top_table(
        data,
        "agents",
        "a table of agents",
        "write one [agents.<name>] table per agent",
        path,
        where,
    )
    specs: dict[str, AgentSpec] = {}
    errors: list[ConfigError] = []
    for name, table in agents.items():
        try:
            specs[name] = agent_spec(name, table, defaults, path, where)
        except ConfigError as exc:  # every bad agent is said, the good ones still load
            errors.append(exc)
    try:
        check_branches(specs, path, where)
    except ConfigError as exc:
        errors.append(exc)
    dashboard = _top_table(
        data, "dashboard", "a table", "write it as a [dashboard] table", path, where
    )
    notify = notify_command(dashboard, path, where)
    table = _top_table(
        data, kube.TABLE, "a table", f"write it as a [{kube.TABLE}] table", path, where
    )
    cluster = kube.KubeSettings()
    if table:
        from bottle_dash.config.kube import kube_settings  # only configs that name a cluster

        cluster = kube_settings(table, path, where)
    elif any(spec.backend == kube.NAME for spec in specs.values()):
        cluster = kube.KubeSettings(source=str(path))  # the kubeconfig's own choices
    config = Config(
        path=path,
        exists=True,
        agents=specs,
        defaults=dict(defaults),
        notify_command=notify,
        kubernetes=cluster,
    )
    if errors:
        raise ConfigErrors(errors, config)
    return config


def _top_table(
    data: dict[str, Any], key: str, what: str, fix: str, path: Path, where: Locator
) -> dict[str, Any]:
    """The top-level table ``key`` (empty when absent); anything but a table is an error."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(
            f"must be {what}, not {type_name(value)}",
            path=path,
            key=key,
            line=where.top(key),
            fix=fix,
        )
    return value


def validate_agent(
    name: str, table: Mapping[str, Any], defaults: Mapping[str, Any], path: Path
) -> AgentSpec:
    """Validate one agent's table (over ``defaults``) as the config file would.

    ``path`` is the config file the agent belongs (or will belong) to: relative paths are
    resolved against its folder and errors name it. Raises ``ConfigError``.
    """
    return agent_spec(name, table, defaults, Path(path), Locator(""))


def agent_spec(
    name: str, table: Any, defaults: Mapping[str, Any], path: Path, where: Locator
) -> AgentSpec:
    """The agent ``name`` of the file at ``path`` (its text located by ``where``): its
    name and keys checked, then ``AGENT_SCHEMA`` run over its table merged onto
    ``defaults``. Raises ``ConfigError``."""
    if not is_slug(name):
        raise ConfigError(
            f"{name!r} is not a valid agent name",
            path=path,
            agent=name,
            line=where.header(name),
            fix=f"use a slug: lower-case letters, digits and '-', starting with a letter or "
            f"digit, at most {SLUG_MAX} characters (e.g. {slugify(name)!r})",
        )
    collision = sidecar_collision(name)
    if collision is not None:
        message, fix = collision
        raise ConfigError(message, path=path, agent=name, line=where.header(name), fix=fix)
    if not isinstance(table, Mapping):
        raise ConfigError(
            f"must be a table, not {type_name(table)}",
            path=path,
            agent=name,
            line=where.header(name),
            fix=f"write it as an [agents.{name}] table",
        )
    check_keys(table, f"agents.{name}", name, path, where)
    merged = dict(defaults)
    if "prompt" in table or "prompt_file" in table:
        # prompt and prompt_file are one setting: the agent's replaces the default's.
        merged.pop("prompt", None)
        merged.pop("prompt_file", None)
    merged.update(table)
    if "prompt" in merged:
        merged.pop("prompt_file", None)  # (only defaults given to validate_agent hold both)

    agent = Agent(name, table, defaults, path, where)
    egress: dict[str, Any] = {}
    for key, rule in AGENT_SCHEMA.items():
        value = merged.get(key, rule.default)
        if value is UNSET:
            continue
        checked = rule.validate(value, agent.check(key), agent)
        (egress if rule.egress else agent.fields)[rule.field] = checked
    if "repo" in agent.fields and "branch" not in agent.fields:
        agent.fields["branch"] = f"bottle/{name}"
    return AgentSpec(name=name, source=path, egress=EgressSpec(**egress), **agent.fields)


def check_branches(specs: Mapping[str, AgentSpec], path: Path, where: Locator) -> None:
    """Two agents on one repository never share a branch: each one's work comes home as
    its own branch, and a second agent's fetch would move the first one's."""
    seen: dict[tuple[Path, str], str] = {}
    for spec in specs.values():
        if spec.repo is None or spec.branch is None:
            continue
        other = seen.setdefault((spec.repo, spec.branch), spec.name)
        if other != spec.name:
            scope = f"agents.{spec.name}"
            raise ConfigError(
                f"branch {spec.branch!r} of repo {spec.repo} is already agent {other}'s",
                path=path,
                agent=spec.name,
                key="branch",
                line=where.key(scope, "branch") or where.header(spec.name),
                fix=f'give it a branch of its own, e.g. branch = "bottle/{spec.name}"',
            )


def check_keys(
    table: Mapping[str, Any], scope: str, agent: str | None, path: Path, where: Locator
) -> None:
    """The keys of ``[defaults]`` or of an agent's table (``scope``): known ones only, and
    not both ``prompt`` and ``prompt_file``."""
    for key in table:
        if key not in AGENT_KEYS:
            raise unknown_key(key, AGENT_KEYS, path, agent, where.key(scope, key))
    if "prompt" in table and "prompt_file" in table:
        raise ConfigError(
            "prompt and prompt_file are both set",
            path=path,
            agent=agent,
            key="prompt_file",
            line=where.key(scope, "prompt_file"),
            fix="keep one of them: prompt (the text) or prompt_file (a file holding it)",
        )


def notify_command(table: Mapping[str, Any], path: Path, where: Locator) -> tuple[str, ...]:
    """``[dashboard] notify_command`` of the ``[dashboard]`` ``table``: a non-empty list of
    strings (an argv), or absent (``()``)."""
    for key in table:
        if key not in DASHBOARD_KEYS:
            raise unknown_key(key, DASHBOARD_KEYS, path, None, where.key("dashboard", key))
    if "notify_command" not in table:
        return ()
    value = table["notify_command"]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f"must be a non-empty list of strings (a command and its arguments), not "
            f"{describe(value)}",
            path=path,
            key="notify_command",
            line=where.key("dashboard", "notify_command"),
            fix='e.g. notify_command = ["notify-send", "bottle-dash"] (run without a shell; '
            "the agent's name and the reason are appended)",
        )
    return tuple(value)


def slugify(name: str) -> str:
    """``name`` made an agent name (a slug), e.g. for a directory's name."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return slug[:SLUG_MAX] or "agent"
