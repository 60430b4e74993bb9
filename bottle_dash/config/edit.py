"""Changing the config file without losing what the operator wrote: a new agent appended
(the dashboard's ``n`` form), a host added to an agent's ``egress_allow`` (``allow``).

The existing text (comments, order, formatting) is kept byte for byte; the result is
parsed and validated whole before it atomically replaces the file, which is 0600.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backends.base import AgentSpec
from backends.egress.policy import parse_rule
from bottle_dash.config.load import Config, parse_config, validate_agent
from bottle_dash.config.locate import ConfigError, Locator, parse_toml, type_name
from bottle_dash.config.paths import private_dir
from bottle_dash.config.schema import AGENT_KEYS


def append_agent(path: str | Path, name: str, table: Mapping[str, Any]) -> AgentSpec:
    """Add an ``[agents.<name>]`` table at the end of the config file, keeping the rest.

    The existing text (comments, order, formatting) is kept byte for byte; the new table
    is appended. The agent is validated against the file's ``[defaults]`` first, a
    duplicate name is refused, and the whole result is parsed and validated again before
    it atomically replaces the file (a missing file is created). Returns the new agent.
    Raises ``ConfigError``.
    """
    file = Path(path).expanduser().absolute()
    try:
        old = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot be read: {exc}", path=file) from None
    current = parse_config(old, file) if old else Config(path=file, exists=False)
    if name in current.agents:
        raise ConfigError(
            "an agent with this name is already defined",
            path=file,
            agent=name,
            line=Locator(old).header(name),
            fix="choose another name, or edit the existing table",
        )
    validate_agent(name, table, current.defaults, file)
    block = render_agent(name, table)
    sep = "" if not old or old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
    new = old + sep + block
    try:
        updated = parse_config(new, file)
    except ConfigError as exc:
        # e.g. the file defines agents as an inline table, which a new header cannot extend.
        raise ConfigError(
            f"cannot append the agent without breaking the file: {exc.message}",
            path=file,
            agent=name,
            fix="add the agent by editing the file by hand",
        ) from None
    if name not in updated.agents:
        raise ConfigError(
            "the appended table did not read back as the agent", path=file, agent=name
        )
    _write_atomic(file, new)
    return updated.agents[name]


def render_agent(name: str, table: Mapping[str, Any]) -> str:
    """TOML text for one ``[agents.<name>]`` table (keys in ``AGENT_KEYS`` order)."""
    lines = [f"[agents.{_toml_key(name)}]"]
    order = {k: i for i, k in enumerate(AGENT_KEYS)}
    for key in sorted(table, key=lambda k: (order.get(k, len(order)), k)):
        lines.append(f"{_toml_key(key)} = {toml_value(table[key])}")
    return "\n".join(lines) + "\n"


def allow_host(path: str | Path, name: str, host: str) -> AgentSpec:
    """Add ``host`` (an allowlist rule) to ``egress_allow`` of agent ``name`` in the config
    file, keeping the rest of the text byte for byte; returns the agent as revalidated.

    An agent that sets no ``egress_allow`` of its own gets one: the defaults' list plus
    ``host`` (its own list replaces the defaults'). Raises ``ConfigError``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the config: {exc}", path=path, agent=name) from None
    data = parse_toml(text, path)
    table = (data.get("agents") or {}).get(name)
    if not isinstance(table, dict):
        raise ConfigError(
            f"agent {name!r} is not defined in this file",
            path=path,
            agent=name,
            fix=f"add an [agents.{name}] table first",
        )
    try:
        rule = str(parse_rule(host))
    except ValueError as exc:
        raise ConfigError(str(exc), path=path, agent=name, key="egress_allow") from None
    defaults = data.get("defaults") or {}
    current = [str(r) for r in table.get("egress_allow", defaults.get("egress_allow", []))]
    if rule in current:
        return parse_config(text, path).agents[name]
    line = f"egress_allow = {toml_value([*current, rule])}\n"
    where = Locator(text)
    lines = text.splitlines(keepends=True)
    at = where.key(f"agents.{name}", "egress_allow")
    header = where.header(name)
    if at is not None:
        end, depth = at - 1, 0
        while end < len(lines):  # a list may span lines: to where its brackets close
            depth += lines[end].count("[") - lines[end].count("]")
            if depth <= 0:
                break
            end += 1
        lines[at - 1 : end + 1] = [line]
    elif header is not None:
        lines.insert(header, line)
    else:
        raise ConfigError(
            "the agent's table is written in a form this edit does not handle",
            path=path,
            agent=name,
            key="egress_allow",
            fix=f'add "{rule}" to egress_allow of [agents.{name}] by hand',
        )
    new_text = "".join(lines)
    spec = parse_config(new_text, path).agents[name]
    _write_atomic(path, new_text)
    return spec


def set_agent_key(path: str | Path, name: str, key: str, value: Any) -> AgentSpec:
    """Set ``key`` (a one-line value: a string or number) of agent ``name`` in the config
    file, keeping the rest of the text byte for byte; returns the agent as revalidated
    (a value the key refuses raises its ``ConfigError`` and nothing is written)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the config: {exc}", path=path, agent=name) from None
    data = parse_toml(text, path)
    if not isinstance((data.get("agents") or {}).get(name), dict):
        raise ConfigError(
            f"agent {name!r} is not defined in this file",
            path=path,
            agent=name,
            fix=f"add an [agents.{name}] table first",
        )
    line = f"{key} = {toml_value(value)}\n"
    where = Locator(text)
    lines = text.splitlines(keepends=True)
    at = where.key(f"agents.{name}", key)
    header = where.header(name)
    if at is not None and lines[at - 1].lstrip().startswith(key):
        lines[at - 1] = line
    elif at is None and header is not None:
        lines.insert(header, line)
    else:
        raise ConfigError(
            "the agent's table is written in a form this edit does not handle",
            path=path,
            agent=name,
            key=key,
            fix=f"set {key} = {toml_value(value)} in [agents.{name}] by hand",
        )
    new_text = "".join(lines)
    spec = parse_config(new_text, path).agents[name]
    _write_atomic(path, new_text)
    return spec


def toml_value(value: Any) -> str:
    """A TOML literal for a string, number, bool, Path, list or table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} in TOML config")
        return repr(value)
    if isinstance(value, str | Path):
        return toml_string(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise ValueError(f"cannot write a {type_name(value)} in TOML config")


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def _write_atomic(file: Path, text: str) -> None:
    """Write via a temp file in the same folder and ``os.replace``; the file is 0600
    (it holds ``env``, which may carry secrets) whatever mode it had."""
    private_dir(file.parent)
    mode = 0o600
    import tempfile  # only when writing the file

    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
