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
"""

from __future__ import annotations

import math
import os
import re
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from backends import ownership, registry
from backends.base import DEFAULT_IMAGE, SLUG_MAX, AgentSpec, is_slug, sidecar_collision
from backends.egress.policy import parse_rule
from backends.egress.spec import EgressSpec
from backends.images.reference import image_problem

ENV_VAR = "BOTTLE_DASH_CONFIG"

#: Keys of an ``[agents.<name>]`` (and of the ``[defaults]``) table, in display order.
AGENT_KEYS = (
    "backend",
    "image",
    "workspace",
    "prompt",
    "prompt_file",
    "skills",
    "env",
    "claude_args",
    "cpus",
    "memory",
    "pids",
    "sealed",
    "egress_allow",
    "credential",
    "api_base",
    "upstream_ca",
    "skip_permissions",
    "allow_root",
)
TOP_KEYS = ("defaults", "agents", "dashboard")
#: Keys of the ``[dashboard]`` table (settings of the dashboard itself, not of agents).
DASHBOARD_KEYS = ("notify_command",)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

STARTER_CONFIG = """\
# bottle-dash config: one [agents.<name>] table per Claude Code agent.
# Each agent runs sealed in a bottle (a Docker container or a smolvm microVM).
# Reference: every key below may appear in [defaults] (applies to every agent) or in
# an agent's own table (wins over [defaults]; env tables are merged).
#
#   backend      "docker" or "smolmachines"
#   image        the agent image (build the default one with: bottle-dash image build)
#   workspace    host directory mounted at /workspace (~ expanded, relative paths are
#                relative to this file's folder); it must exist
#   prompt       text appended to Claude's system prompt, or
#   prompt_file  a file holding that text (relative to this file) -- not both
#   skills       list of host directories copied to ~/.claude/skills/<dir name>/
#   env          table of environment variables (strings) for claude in the bottle
#   claude_args  list of extra arguments for claude
#   cpus         CPUs (a number > 0, e.g. 2 or 1.5)
#   memory       memory limit: "512m", "2g" or a number of bytes
#   pids         maximum number of processes (an integer > 0)
#   egress_allow hosts the bottle may reach besides the Anthropic API, through its
#                egress sidecar: "github.com", "*.npmjs.org", "host:80" for plain http
#   credential   where the real token comes from (it reaches the sidecar only):
#                "env:CLAUDE_CODE_OAUTH_TOKEN", "env:ANTHROPIC_API_KEY", "file:PATH"
#                or "none"; unset: the first of those two variables that is set
#   api_base     an LLM gateway URL that replaces the Anthropic API host
#   upstream_ca  a CA file the sidecar trusts for upstream TLS (a private gateway)
#   skip_permissions  claude runs with --dangerously-skip-permissions (default: when
#                sealed)
#   sealed       false runs the bottle UNSEALED: no sidecar, open network (shown so)
#   allow_root   false refuses to run the agent as root (it runs as its workspace's
#                owner, so a root-owned workspace means uid 0; default true, and said)
#
# Agent names are slugs: lower-case letters, digits and "-", at most 40 characters.

[defaults]
backend = "docker"
image = "bottle-dash-agent:latest"
memory = "2g"
pids = 512

[agents.example]
# workspace = "~/src/my-project"    # uncomment and point at a directory that exists
prompt = "You are a careful engineer. Explain what you change and why."
# skills = ["~/claude-skills/review"]
# env = { GIT_AUTHOR_NAME = "Example Agent" }
# claude_args = ["--model", "sonnet"]
cpus = 2

# [dashboard]
# notify_command = ["notify-send", "bottle-dash"]  # run (no shell) when an agent starts
#                                                  # waiting; its name and the reason follow
"""


class ConfigError(Exception):
    """A config file problem, located as precisely as it can be.

    ``str()`` gives one headline (file, line, agent, key and what is wrong) and, when
    there is one, a second line with the fix.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | None,
        agent: str | None = None,
        key: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.agent = agent
        self.key = key
        self.line = line
        self.fix = fix

    @property
    def headline(self) -> str:
        """``<file>, line N, agent 'x', key 'k': <message>`` (parts that are known)."""
        where = [f"config {self.path}" if self.path else "config"]
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.agent is not None:
            where.append(f"agent {self.agent!r}")
        if self.key is not None:
            where.append(f"key {self.key!r}")
        return f"{', '.join(where)}: {self.message}"

    def __str__(self) -> str:
        return self.headline + (f"\n  fix: {self.fix}" if self.fix else "")


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


# --------------------------------------------------------------------------- locations


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/bottle-dash/config.toml`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bottle-dash" / "config.toml"


def resolve_config_path(explicit: str | Path | None = None) -> Path:
    """The config file to use: ``explicit`` (``--config``), then ``$BOTTLE_DASH_CONFIG``,
    then the XDG default. ``~`` is expanded; the result is absolute."""
    chosen = explicit or os.environ.get(ENV_VAR) or default_config_path()
    return Path(chosen).expanduser().absolute()


# --------------------------------------------------------------------------- loading


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
    return parse_config(text, file)


def parse_config(text: str, path: Path) -> Config:
    """Validate config ``text`` as if it were the file at ``path`` (used by ``load_config``
    and by ``append_agent`` to check a file before it is written)."""
    data = _parse_toml(text, path)
    where = _Locator(text)
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown_key(key, TOP_KEYS, path, None, where.top(key), "top-level tables")
    defaults = _top_table(
        data, "defaults", "a table", "write it as a [defaults] table", path, where
    )
    _check_keys(defaults, "defaults", None, path, where)
    agents = _top_table(
        data,
        "agents",
        "a table of agents",
        "write one [agents.<name>] table per agent",
        path,
        where,
    )
    specs: dict[str, AgentSpec] = {}
    for name, table in agents.items():
        specs[name] = _validate(name, table, defaults, path, where)
    notify = _notify_command(data, path, where)
    return Config(
        path=path, exists=True, agents=specs, defaults=dict(defaults), notify_command=notify
    )


def _notify_command(data: dict[str, Any], path: Path, where: _Locator) -> tuple[str, ...]:
    """``[dashboard] notify_command``: a non-empty list of strings (an argv), or absent."""
    table = _top_table(data, "dashboard", "a table", "write it as a [dashboard] table", path, where)
    for key in table:
        if key not in DASHBOARD_KEYS:
            raise _unknown_key(key, DASHBOARD_KEYS, path, None, where.key("dashboard", key))
    if "notify_command" not in table:
        return ()
    value = table["notify_command"]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f"must be a non-empty list of strings (a command and its arguments), not "
            f"{_describe(value)}",
            path=path,
            key="notify_command",
            line=where.key("dashboard", "notify_command"),
            fix='e.g. notify_command = ["notify-send", "bottle-dash"] (run without a shell; '
            "the agent's name and the reason are appended)",
        )
    return tuple(value)


def validate_agent(
    name: str, table: Mapping[str, Any], defaults: Mapping[str, Any], path: Path
) -> AgentSpec:
    """Validate one agent's table (over ``defaults``) as the config file would.

    ``path`` is the config file the agent belongs (or will belong) to: relative paths are
    resolved against its folder and errors name it. Raises ``ConfigError``.
    """
    return _validate(name, table, defaults, Path(path), _Locator(""))


def _top_table(
    data: dict[str, Any], key: str, what: str, fix: str, path: Path, where: _Locator
) -> dict[str, Any]:
    """The top-level table ``key`` (empty when absent); anything but a table is an error."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(
            f"must be {what}, not {_type_name(value)}",
            path=path,
            key=key,
            line=where.top(key),
            fix=fix,
        )
    return value


def _check_keys(
    table: Mapping[str, Any], scope: str, agent: str | None, path: Path, where: _Locator
) -> None:
    """The keys of ``[defaults]`` or of an agent's table (``scope``): known ones only, and
    not both ``prompt`` and ``prompt_file``."""
    for key in table:
        if key not in AGENT_KEYS:
            raise _unknown_key(key, AGENT_KEYS, path, agent, where.key(scope, key))
    if "prompt" in table and "prompt_file" in table:
        raise ConfigError(
            "prompt and prompt_file are both set",
            path=path,
            agent=agent,
            key="prompt_file",
            line=where.key(scope, "prompt_file"),
            fix="keep one of them: prompt (the text) or prompt_file (a file holding it)",
        )


def _validate(
    name: str, table: Any, defaults: Mapping[str, Any], path: Path, where: _Locator
) -> AgentSpec:
    if not is_slug(name):
        raise ConfigError(
            f"{name!r} is not a valid agent name",
            path=path,
            agent=name,
            line=where.header(name),
            fix=f"use a slug: lower-case letters, digits and '-', starting with a letter or "
            f"digit, at most {SLUG_MAX} characters (e.g. {_slugify(name)!r})",
        )
    collision = sidecar_collision(name)
    if collision is not None:
        message, fix = collision
        raise ConfigError(message, path=path, agent=name, line=where.header(name), fix=fix)
    if not isinstance(table, Mapping):
        raise ConfigError(
            f"must be a table, not {_type_name(table)}",
            path=path,
            agent=name,
            line=where.header(name),
            fix=f"write it as an [agents.{name}] table",
        )
    _check_keys(table, f"agents.{name}", name, path, where)
    merged = dict(defaults)
    if "prompt" in table or "prompt_file" in table:
        # prompt and prompt_file are one setting: the agent's replaces the default's.
        merged.pop("prompt", None)
        merged.pop("prompt_file", None)
    merged.update(table)

    def check(key: str) -> _Check:
        scope = f"agents.{name}" if key in table else "defaults"
        return _Check(path, name, key, where.key(scope, key) or where.header(name))

    backend = check("backend").string(merged.get("backend", "docker"))
    valid = registry.names()
    if backend not in valid:
        import difflib  # only for an error message; `ls` pays for imports

        close = difflib.get_close_matches(backend, valid, n=1)
        raise check("backend").error(
            f"unknown backend {backend!r}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; valid backends: {', '.join(valid)}",
            f"set backend to one of: {', '.join(repr(v) for v in valid)}",
        )
    image = check("image").string(merged.get("image", DEFAULT_IMAGE))
    if not image.strip():
        raise check("image").error("is empty", 'set an image tag, e.g. "bottle-dash-agent:latest"')
    problem = image_problem(image, backend)
    if problem:
        paths = " or a path (/…, ./…, ….tar, ….smolmachine)" if backend == "smolmachines" else ""
        raise check("image").error(
            problem, f'set an image reference{paths}, e.g. image = "{DEFAULT_IMAGE}"'
        )

    workspace = None
    if "workspace" in merged:
        c = check("workspace")
        if not c.string(merged["workspace"]).strip():
            # "" would resolve to the config file's own folder: surely not what was meant.
            raise c.error("is empty", "remove the key, or set it to an existing directory")
        workspace = _host_path(c.string(merged["workspace"]), path)
        if not workspace.is_dir():
            what = "is not a directory" if workspace.exists() else "does not exist"
            raise c.error(
                f"workspace {str(workspace)!r} {what}",
                f"create it (mkdir -p {_sh(workspace)}) or point workspace at an existing "
                "directory",
            )

    prompt = ""
    if "prompt" in merged:
        prompt = check("prompt").string(merged["prompt"])
    elif "prompt_file" in merged:
        c = check("prompt_file")
        if not c.string(merged["prompt_file"]).strip():
            raise c.error("is empty", 'remove the key, or name a file (or use prompt = "...")')
        prompt_path = _host_path(c.string(merged["prompt_file"]), path)
        try:
            prompt = prompt_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise c.error(
                f"prompt file {str(prompt_path)!r} does not exist",
                "create it, fix the path (relative paths start at the config file's folder), "
                'or use prompt = "..." instead',
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise c.error(
                f"prompt file {str(prompt_path)!r} cannot be read: {exc}",
                "make it a readable UTF-8 text file",
            ) from None

    skills = tuple(_host_path(s, path) for s in check("skills").strings(merged.get("skills", [])))
    claude_args = tuple(check("claude_args").strings(merged.get("claude_args", [])))

    env: dict[str, str] = {}
    for scope in (defaults, table):
        if "env" not in scope:
            continue
        c = _Check(
            path,
            name,
            "env",
            where.key("defaults" if scope is defaults else f"agents.{name}", "env"),
        )
        env.update(c.env(scope["env"]))

    cpus = None
    if "cpus" in merged:
        c = check("cpus")
        value = merged["cpus"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise c.error(f"must be a number, not {_type_name(value)}", "e.g. cpus = 2 or 1.5")
        if not math.isfinite(value) or value <= 0:
            raise c.error(f"must be greater than 0, not {value}", "e.g. cpus = 2 or 1.5")
        cpus = float(value)

    memory = None
    if "memory" in merged:
        memory = check("memory").memory(merged["memory"])

    pids = None
    if "pids" in merged:
        c = check("pids")
        value = merged["pids"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise c.error(f"must be an integer, not {_type_name(value)}", "e.g. pids = 512")
        if value <= 0:
            raise c.error(f"must be greater than 0, not {value}", "e.g. pids = 512")
        pids = value

    egress = _egress(merged, check, path)
    allow_root = True
    if "allow_root" in merged:
        value = merged["allow_root"]
        if not isinstance(value, bool):
            raise check("allow_root").error(
                f"must be true or false, not {_type_name(value)}", "allow_root = false"
            )
        allow_root = value

    return AgentSpec(
        name=name,
        backend=backend,
        image=image,
        workspace=workspace,
        prompt=prompt,
        skills=skills,
        env=env,
        claude_args=claude_args,
        cpus=cpus,
        memory=memory,
        pids=pids,
        source=path,
        egress=egress,
        allow_root=allow_root,
    )


def _egress(merged: Mapping[str, Any], check: Any, path: Path) -> EgressSpec:
    """The egress keys of one agent (over the defaults) as an ``EgressSpec``."""
    flags: dict[str, bool | None] = {}
    for key in ("sealed", "skip_permissions"):
        if key in merged:
            value = merged[key]
            if not isinstance(value, bool):
                raise check(key).error(
                    f"must be true or false, not {_type_name(value)}", f"{key} = true"
                )
            flags[key] = value
    allow: list[str] = []
    for entry in check("egress_allow").strings(merged.get("egress_allow", [])):
        try:
            allow.append(str(parse_rule(entry)))
        except ValueError as exc:
            raise check("egress_allow").error(
                str(exc), 'e.g. egress_allow = ["github.com", "*.npmjs.org", "example.org:80"]'
            ) from None
    credential = ""
    if "credential" in merged:
        c = check("credential")
        credential = c.string(merged["credential"]).strip()
        kind, _, rest = credential.partition(":")
        if credential == "none" or kind == "env" and _ENV_NAME.match(rest):
            pass
        elif kind == "file" and rest.strip():
            credential = f"file:{_host_path(rest.strip(), path)}"
        else:
            raise c.error(
                f"{credential!r} is not a credential source",
                'use "env:CLAUDE_CODE_OAUTH_TOKEN", "env:ANTHROPIC_API_KEY", '
                '"file:~/.config/claude-token" or "none"',
            )
    api_base = ""
    if "api_base" in merged:
        c = check("api_base")
        api_base = c.string(merged["api_base"]).strip()
        if not re.match(r"^https?://[A-Za-z0-9.-]+(:\d+)?(/\S*)?$", api_base):
            raise c.error(
                f"{api_base!r} is not an https URL", 'e.g. api_base = "https://llm-gw.corp:8443"'
            )
        if not api_base.lower().startswith("https://"):
            raise c.error(
                f"{api_base!r} is plain http: the credential would cross the network in the "
                "clear (the sidecar swaps it in over verified TLS only)",
                "use the gateway's https:// URL (and `upstream_ca` for a private CA)",
            )
    upstream_ca = None
    if "upstream_ca" in merged:
        c = check("upstream_ca")
        upstream_ca = _host_path(c.string(merged["upstream_ca"]), path)
        if not upstream_ca.is_file():
            raise c.error(
                f"upstream CA file {str(upstream_ca)!r} does not exist",
                "point it at a PEM file of CA certificates, or remove the key",
            )
    return EgressSpec(
        sealed=flags.get("sealed", True) is not False,
        allow=tuple(allow),
        credential=credential,
        api_base=api_base,
        upstream_ca=upstream_ca,
        skip_permissions=flags.get("skip_permissions"),
    )


def parse_memory(value: Any) -> int:
    """Bytes from ``"512m"``, ``"2g"``, ``"1.5G"``, ``"2GiB"`` or an integer of bytes.

    Units are binary (k = 1024), as Docker reads them. Raises ``ValueError``.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        match = _MEMORY.match(value)
        if not match:
            raise ValueError(f"not a size: {value!r}")
        number = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    else:
        raise ValueError(f"not a size: {value!r}")
    if number <= 0:
        raise ValueError(f"must be greater than 0: {value!r}")
    return number


class _Check:
    """Type checks for one key of one agent, raising ``ConfigError`` located at it."""

    def __init__(self, path: Path, agent: str, key: str, line: int | None) -> None:
        self.path, self.agent, self.key, self.line = path, agent, key, line

    def error(self, message: str, fix: str) -> ConfigError:
        return ConfigError(
            message, path=self.path, agent=self.agent, key=self.key, line=self.line, fix=fix
        )

    def string(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self.error(
                f"must be a string, not {_type_name(value)}",
                f'quote it: {self.key} = "..."',
            )
        return value

    def strings(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(
                f"must be a list of strings, not {_describe(value)}",
                f'e.g. {self.key} = ["one", "two"]',
            )
        return list(value)

    def env(self, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.error(
                f"must be a table of strings, not {_type_name(value)}",
                'e.g. env = { NAME = "value" }',
            )
        for var, val in value.items():
            if not _ENV_NAME.match(var):
                raise self.error(
                    f"{var!r} is not a valid environment variable name",
                    "use letters, digits and '_', not starting with a digit",
                )
            if not isinstance(val, str):
                raise self.error(
                    f"value of {var} must be a string, not {_type_name(val)}",
                    f'quote it: {var} = "{val}"',
                )
        return dict(value)

    def memory(self, value: Any) -> int:
        try:
            return parse_memory(value)
        except ValueError:
            raise self.error(
                f"{value!r} is not a memory size",
                'use a positive size such as "512m" or "2g", or an integer of bytes',
            ) from None


# --------------------------------------------------------------------------- appending


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
            line=_Locator(old).header(name),
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
    data = _parse_toml(text, path)
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
    where = _Locator(text)
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
        return _toml_string(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise ValueError(f"cannot write a {_type_name(value)} in TOML config")


def _toml_string(text: str) -> str:
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
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def private_dir(folder: Path) -> None:
    """Make the config's folder: 0700 when bottle-dash creates it, and the default folder
    (``$XDG_CONFIG_HOME/bottle-dash``) 0700 always. A folder the operator chose with
    ``--config`` that already exists is theirs and left as it is."""
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
    elif folder == default_config_path().parent:
        os.chmod(folder, 0o700)


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


#: The starter's agent table header and workspace line, replaced by ``starter_config``.
STARTER_EXAMPLE_HEADER = """[agents.example]
# workspace = "~/src/my-project"    # uncomment and point at a directory that exists
"""


def first_agent_values(
    start_dir: Path | None, agents: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, str]:
    """What a new agent starts with (the dashboard's ``n`` form, ``bottle-dash init``): the
    default image and, while no agent is defined, a name and a workspace from the
    directory the operator started in."""
    values = {"image": str(defaults.get("image") or DEFAULT_IMAGE)}
    if start_dir is not None and not agents:
        values["name"] = _slugify(start_dir.name)
        values["workspace"] = str(start_dir)
    return values


def starter_config(name: str = "example", workspace: Path | None = None) -> str:
    """``STARTER_CONFIG`` whose agent is ``name``, with ``workspace`` when given."""
    example = STARTER_EXAMPLE_HEADER
    if workspace is None:
        return STARTER_CONFIG.replace(example, example.replace("example", name, 1))
    line = f"workspace = {_toml_string(str(workspace))}    # where `bottle-dash init` ran\n"
    return STARTER_CONFIG.replace(example, f"[agents.{name}]\n{line}")


def write_starter(
    path: str | Path | None = None, *, name: str = "example", workspace: Path | None = None
) -> Path:
    """Write the starter config (``starter_config(name, workspace)``) to the config path
    (``bottle-dash init``).

    Refuses (``ConfigError``) when the file already exists: it is never overwritten.
    """
    file = resolve_config_path(path)
    private_dir(file.parent)
    try:
        # O_EXCL: refuse atomically, even if another process creates it meanwhile. 0600:
        # the config holds `env`, which may carry secrets.
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            "already exists; not overwriting it",
            path=file,
            fix="edit it, or move it away and run bottle-dash init again",
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(starter_config(name, workspace))
    return file


# --------------------------------------------------------------------------- helpers


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line = int(match.group(1)) if match else None
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
        if match:
            what += f" (column {match.group(2)})"
        raise ConfigError(
            f"TOML syntax error: {what}",
            path=path,
            line=line,
            fix="fix the TOML syntax at that line (strings need quotes, tables [name], "
            "keys key = value)",
        ) from None


def _unknown_key(
    key: str,
    valid: tuple[str, ...],
    path: Path,
    agent: str | None,
    line: int | None,
    what: str = "keys",
) -> ConfigError:
    import difflib  # only for an error message

    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(
        f"unknown key {key!r}; {hint}valid {what}: {', '.join(valid)}",
        path=path,
        agent=agent,
        key=key,
        line=line,
        fix=f"rename it to {close[0]!r}" if close else f"use one of: {', '.join(valid)}",
    )


def _host_path(value: str, config: Path) -> Path:
    """``~`` expanded; relative paths start at the config file's folder."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (config.parent / p)


def _type_name(value: Any) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _describe(value: Any) -> str:
    """``value`` in an error about a list of strings: what kind it is; for a list, what
    its first item that is not a string is (else: that it holds an empty string)."""
    if isinstance(value, list):
        if not value:
            return "an empty list"
        bad = [v for v in value if not isinstance(v, str)]
        return f"a list holding {_type_name(bad[0])}" if bad else "a list holding an empty string"
    return _type_name(value)


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return slug[:SLUG_MAX] or "agent"


def _sh(path: Path) -> str:
    return shlex.quote(str(path))


class _Locator:
    """Best-effort line numbers for tables and keys in the config text (1-based).

    tomllib does not report where values are, so headers and ``key =`` lines are found by
    scanning; dotted keys and inline tables simply get no line.
    """

    _HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
    _KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")

    def __init__(self, text: str) -> None:
        self.tables: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        scope = ""
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                scope = ".".join(_unquote(p) for p in _split_dotted(header.group(1)))
                self.tables.setdefault(scope, number)
                continue
            key = self._KEY.match(line)
            if key:
                self.keys.setdefault((scope, _unquote(key.group(1))), number)

    def header(self, agent: str) -> int | None:
        return self.tables.get(f"agents.{agent}")

    def key(self, scope: str, key: str) -> int | None:
        return self.keys.get((scope, key))

    def top(self, key: str) -> int | None:
        found = self.tables.get(key) or self.keys.get(("", key))
        if found is None:
            # `[agent.web]` defines the top-level key "agent" without a header of its own.
            found = min(
                (n for t, n in self.tables.items() if t.startswith(key + ".")), default=None
            )
        return found


def _split_dotted(text: str) -> list[str]:
    return [p.strip() for p in re.findall(r"""("[^"]*"|'[^']*'|[^.]+)""", text)]


def _unquote(part: str) -> str:
    part = part.strip()
    if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'":
        return part[1:-1]
    return part
