"""What an agent's table may say: one table of per-key validators (``AGENT_SCHEMA``), run
by ``load.agent_spec`` over an agent's keys merged onto ``[defaults]``. Each validator
returns the ``AgentSpec`` (or ``EgressSpec``) field its key sets, or raises a ``ConfigError``
located at the key (in the agent's table, else ``[defaults]``, else its header) with the fix.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from backends import registry
from backends.base import DEFAULT_IMAGE
from backends.egress.policy import parse_rule
from backends.images.reference import image_problem
from bottle_dash.config.cost_keys import budget_key, price_key
from bottle_dash.config.locate import ConfigError, Locator, describe, type_name
from bottle_dash.config.paths import host_path

#: Keys of an ``[agents.<name>]`` (and of the ``[defaults]``) table, in display order (the
#: order of an error's list of valid keys and of a table ``render_agent`` writes).
AGENT_KEYS = (
    "backend",
    "image",
    "workspace",
    "repo",
    "base",
    "branch",
    "setup",
    "copy",
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
    "price",
    "budget",
    "skip_permissions",
    "allow_root",
    "git_user",
)
TOP_KEYS = ("defaults", "agents", "dashboard", "kubernetes")
#: Keys of the ``[dashboard]`` table (settings of the dashboard itself, not of agents).
DASHBOARD_KEYS = ("notify_command",)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
#: ``Key.default`` of a key that is simply left out when unset (its field keeps the
#: ``AgentSpec``/``EgressSpec`` default).
UNSET: Any = object()


class Check:
    """Type checks for one key of one agent, raising ``ConfigError`` located at it."""

    def __init__(self, path: Path, agent: str, key: str, line: int | None) -> None:
        self.path, self.agent, self.key, self.line = path, agent, key, line

    def error(self, message: str, fix: str) -> ConfigError:
        """The ``ConfigError`` for this key: ``message``, then ``fix``."""
        return ConfigError(
            message, path=self.path, agent=self.agent, key=self.key, line=self.line, fix=fix
        )

    def string(self, value: Any) -> str:
        """``value``, which must be a string."""
        if not isinstance(value, str):
            raise self.error(
                f"must be a string, not {type_name(value)}",
                f'quote it: {self.key} = "..."',
            )
        return value

    def strings(self, value: Any) -> list[str]:
        """``value``, which must be a list of strings."""
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(
                f"must be a list of strings, not {describe(value)}",
                f'e.g. {self.key} = ["one", "two"]',
            )
        return list(value)

    def boolean(self, value: Any, fix: str) -> bool:
        """``value``, which must be true or false."""
        if not isinstance(value, bool):
            raise self.error(f"must be true or false, not {type_name(value)}", fix)
        return value

    def env(self, value: Any) -> dict[str, str]:
        """``value``, which must be a table of environment variables (strings)."""
        if not isinstance(value, dict):
            raise self.error(
                f"must be a table of strings, not {type_name(value)}",
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
                    f"value of {var} must be a string, not {type_name(val)}",
                    f'quote it: {var} = "{val}"',
                )
        return dict(value)

    def memory(self, value: Any) -> int:
        """``value``, a memory size, in bytes (``parse_memory``)."""
        try:
            return parse_memory(value)
        except ValueError:
            raise self.error(
                f"{value!r} is not a memory size",
                'use a positive size such as "512m" or "2g", or an integer of bytes',
            ) from None


class Agent:
    """One agent's table while it is checked: the tables its keys come from, where they
    are written, and the fields of the keys checked so far."""

    def __init__(
        self,
        name: str,
        table: Mapping[str, Any],
        defaults: Mapping[str, Any],
        path: Path,
        where: Locator,
    ) -> None:
        self.name = name
        self.table = table
        self.defaults = defaults
        self.path = path
        self.where = where
        #: The fields of the keys checked so far (``image`` reads ``backend``'s).
        self.fields: dict[str, Any] = {}

    def check(self, key: str) -> Check:
        """Checks located at ``key``: in the agent's table if it sets it, else in
        ``[defaults]``, else at the agent's header."""
        scope = f"agents.{self.name}" if key in self.table else "defaults"
        return Check(
            self.path, self.name, key, self.where.key(scope, key) or self.where.header(self.name)
        )


if TYPE_CHECKING:
    #: A key's validator: its value (merged over the defaults), the checks located at
    #: it and the agent -> the field's value.
    Validator = Callable[[Any, Check, Agent], Any]


class Key:
    """How one key of an agent's table is checked, and the field it sets."""

    # A plain class: creating a NamedTuple class costs ~0.2 ms, and every command pays it.
    __slots__ = ("default", "egress", "field", "validate")

    def __init__(
        self, validate: Validator, field: str, default: Any = UNSET, egress: bool = False
    ) -> None:
        self.validate = validate
        #: The ``AgentSpec`` field it sets, or with ``egress`` the ``EgressSpec`` field.
        self.field = field
        #: Checked as if written when the key is set nowhere; ``UNSET``: the key is skipped.
        self.default = default
        #: The field is the ``EgressSpec``'s (``AgentSpec.egress``).
        self.egress = egress


# --------------------------------------------------------------------------- validators


def _backend(value: Any, c: Check, agent: Agent) -> str:
    backend = c.string(value)
    valid = registry.names()
    if backend not in valid:
        import difflib  # only for an error message; `ls` pays for imports

        close = difflib.get_close_matches(backend, valid, n=1)
        raise c.error(
            f"unknown backend {backend!r}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; valid backends: {', '.join(valid)}",
            f"set backend to one of: {', '.join(repr(v) for v in valid)}",
        )
    return backend


def _image(value: Any, c: Check, agent: Agent) -> str:
    image = c.string(value)
    if not image.strip():
        raise c.error("is empty", 'set an image tag, e.g. "bottle-dash-agent:latest"')
    backend = agent.fields["backend"]  # checked before: the table's order
    problem = image_problem(image, backend)
    if problem:
        paths = " or a path (/…, ./…, ….tar, ….smolmachine)" if backend == "smolmachines" else ""
        raise c.error(problem, f'set an image reference{paths}, e.g. image = "{DEFAULT_IMAGE}"')
    return image


def _workspace(value: Any, c: Check, agent: Agent) -> Path:
    if not c.string(value).strip():
        # "" would resolve to the config file's own folder: surely not what was meant.
        raise c.error("is empty", "remove the key, or set it to an existing directory")
    workspace = host_path(c.string(value), agent.path)
    if not workspace.is_dir():
        what = "is not a directory" if workspace.exists() else "does not exist"
        raise c.error(
            f"workspace {str(workspace)!r} {what}",
            f"create it (mkdir -p {shlex.quote(str(workspace))}) or point workspace at an "
            "existing directory",
        )
    return workspace


def _repo(value: Any, c: Check, agent: Agent) -> Path:
    if not c.string(value).strip():
        raise c.error("is empty", "remove the key, or set it to a git repository on the host")
    if "workspace" in agent.fields:
        raise c.error(
            "repo and workspace are both set: an agent works either in a folder of the host "
            "(workspace) or in its own copy of a repository (repo)",
            "keep one of them: workspace (the folder, shared with the host) or repo (a "
            "private copy on its own branch)",
        )
    repo = host_path(c.string(value), agent.path)
    # A stat, not a git process: `ls` loads the config too. A work tree has `.git` (a
    # folder, or a file for a worktree); a bare repository has HEAD and objects.
    if not (
        (repo / ".git").exists() or ((repo / "HEAD").is_file() and (repo / "objects").is_dir())
    ):
        what = "is not a git repository" if repo.is_dir() else "does not exist"
        raise c.error(
            f"repo {str(repo)!r} {what}",
            f"point repo at a git repository (git init {shlex.quote(str(repo))}), or use "
            "workspace for a plain folder",
        )
    return repo.resolve()


def _git_name(value: Any, c: Check, agent: Agent) -> str:
    name = c.string(value).strip()
    # What git's check-ref-format refuses, checked without a git process; a leading '-'
    # would read as an option.
    bad = (
        not name
        or name.startswith(("-", "/", "."))
        or name.endswith(("/", ".", ".lock"))
        or any(part in name for part in ("..", "//", "@{", "\\", "/."))
        or any(ch in name for ch in " ~^:?*[\x7f")
        or any(ord(ch) < 32 for ch in name)
    )
    if bad:
        example = "main" if c.key == "base" else f"bottle/{agent.name}"
        raise c.error(
            f"{name!r} is not a valid git {'revision' if c.key == 'base' else 'branch'} name",
            f'e.g. {c.key} = "{example}"',
        )
    if "repo" not in agent.fields:
        raise c.error(
            f"{c.key} is set but repo is not: it names a branch of the agent's copy of a "
            "repository",
            f'set repo = "PATH" as well, or remove {c.key}',
        )
    return name


def _needs_repo(c: Check, agent: Agent, example: str) -> None:
    if "repo" not in agent.fields:
        raise c.error(
            f"{c.key} is set but repo is not: it acts on the agent's copy of a repository",
            f'set repo = "PATH" as well, or remove {c.key} (e.g. {c.key} = {example})',
        )


def _setup(value: Any, c: Check, agent: Agent) -> tuple[str, ...]:
    commands = c.strings(value)
    if commands:
        _needs_repo(c, agent, '["npm ci"]')
    if any(not cmd.strip() for cmd in commands):
        raise c.error("holds an empty command", 'e.g. setup = ["npm ci", "cp .env.example .env"]')
    return tuple(commands)


def _copy(value: Any, c: Check, agent: Agent) -> tuple[str, ...]:
    files = c.strings(value)
    if files:
        _needs_repo(c, agent, '[".env"]')
    for rel in files:
        parts = Path(rel).parts
        if not rel.strip() or Path(rel).is_absolute() or ".." in parts or parts[:1] == (".git",):
            raise c.error(
                f"{rel!r} is not a path inside the repository",
                'name files relative to the repository\'s top, e.g. copy = [".env"]',
            )
        src = agent.fields["repo"] / rel
        if not src.is_file():
            raise c.error(
                f"{rel!r} is not a file in {agent.fields['repo']}",
                "create it, or remove it from copy",
            )
    return tuple(files)


def _prompt(value: Any, c: Check, agent: Agent) -> str:
    return c.string(value)


def _prompt_file(value: Any, c: Check, agent: Agent) -> str:
    if not c.string(value).strip():
        raise c.error("is empty", 'remove the key, or name a file (or use prompt = "...")')
    prompt_path = host_path(c.string(value), agent.path)
    try:
        return prompt_path.read_text(encoding="utf-8")
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


def _skills(value: Any, c: Check, agent: Agent) -> tuple[Path, ...]:
    return tuple(host_path(s, agent.path) for s in c.strings(value))


def _claude_args(value: Any, c: Check, agent: Agent) -> tuple[str, ...]:
    return tuple(c.strings(value))


def _env(value: Any, c: Check, agent: Agent) -> dict[str, str]:
    # env tables merge per variable (the agent's win), so each is checked where written.
    env: dict[str, str] = {}
    for scope in (agent.defaults, agent.table):
        if "env" not in scope:
            continue
        name = "defaults" if scope is agent.defaults else f"agents.{agent.name}"
        located = Check(agent.path, agent.name, "env", agent.where.key(name, "env"))
        env.update(located.env(scope["env"]))
    return env


def _cpus(value: Any, c: Check, agent: Agent) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise c.error(f"must be a number, not {type_name(value)}", "e.g. cpus = 2 or 1.5")
    if not math.isfinite(value) or value <= 0:
        raise c.error(f"must be greater than 0, not {value}", "e.g. cpus = 2 or 1.5")
    return float(value)


def _memory(value: Any, c: Check, agent: Agent) -> int:
    return c.memory(value)


def _pids(value: Any, c: Check, agent: Agent) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise c.error(f"must be an integer, not {type_name(value)}", "e.g. pids = 512")
    if value <= 0:
        raise c.error(f"must be greater than 0, not {value}", "e.g. pids = 512")
    return value


def _flag(value: Any, c: Check, agent: Agent) -> bool:
    return c.boolean(value, f"{c.key} = true")


def _egress_allow(value: Any, c: Check, agent: Agent) -> tuple[str, ...]:
    allow: list[str] = []
    for entry in c.strings(value):
        try:
            allow.append(str(parse_rule(entry)))
        except ValueError as exc:
            raise c.error(
                str(exc), 'e.g. egress_allow = ["github.com", "*.npmjs.org", "example.org:80"]'
            ) from None
    return tuple(allow)


def _credential(value: Any, c: Check, agent: Agent) -> str:
    credential = c.string(value).strip()
    kind, _, rest = credential.partition(":")
    if credential == "none" or kind == "env" and _ENV_NAME.match(rest):
        return credential
    if kind == "file" and rest.strip():
        return f"file:{host_path(rest.strip(), agent.path)}"
    raise c.error(
        f"{credential!r} is not a credential source",
        'use "env:CLAUDE_CODE_OAUTH_TOKEN", "env:ANTHROPIC_API_KEY", '
        '"file:~/.config/claude-token" or "none"',
    )


def _api_base(value: Any, c: Check, agent: Agent) -> str:
    api_base = c.string(value).strip()
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
    return api_base


def _upstream_ca(value: Any, c: Check, agent: Agent) -> Path:
    upstream_ca = host_path(c.string(value), agent.path)
    if not upstream_ca.is_file():
        raise c.error(
            f"upstream CA file {str(upstream_ca)!r} does not exist",
            "point it at a PEM file of CA certificates, or remove the key",
        )
    return upstream_ca


def _allow_root(value: Any, c: Check, agent: Agent) -> bool:
    return c.boolean(value, "allow_root = false")


def _git_user(value: Any, c: Check, agent: Agent) -> str:
    from backends.git_identity import parse_git_user

    text = c.string(value)
    try:
        name, email = parse_git_user(text)
    except ValueError as exc:
        raise c.error(str(exc), 'e.g. git_user = "Ada Lovelace <ada@example.org>"') from None
    return f"{name} <{email}>"


#: Every key of an agent's table, in the order the keys are checked (so the first wrong
#: key in this order is the one reported). ``AGENT_KEYS`` names the same keys.
AGENT_SCHEMA: Mapping[str, Key] = MappingProxyType(
    {
        "backend": Key(_backend, "backend", default="docker"),
        "image": Key(_image, "image", default=DEFAULT_IMAGE),
        "workspace": Key(_workspace, "workspace"),
        "repo": Key(_repo, "repo"),
        "base": Key(_git_name, "base"),
        "branch": Key(_git_name, "branch"),
        "setup": Key(_setup, "setup"),
        "copy": Key(_copy, "copy"),
        # prompt and prompt_file are one setting written two ways (see load.agent_spec)
        "prompt": Key(_prompt, "prompt"),
        "prompt_file": Key(_prompt_file, "prompt"),
        "skills": Key(_skills, "skills", default=[]),
        "claude_args": Key(_claude_args, "claude_args", default=[]),
        # always checked: an agent that sets no env gets an empty table of its own
        "env": Key(_env, "env", default=MappingProxyType({})),
        "cpus": Key(_cpus, "cpus"),
        "memory": Key(_memory, "memory"),
        "pids": Key(_pids, "pids"),
        "sealed": Key(_flag, "sealed", egress=True),
        "skip_permissions": Key(_flag, "skip_permissions", egress=True),
        "egress_allow": Key(_egress_allow, "allow", default=[], egress=True),
        "credential": Key(_credential, "credential", egress=True),
        "api_base": Key(_api_base, "api_base", egress=True),
        "upstream_ca": Key(_upstream_ca, "upstream_ca", egress=True),
        "price": Key(price_key, "price", egress=True),
        "budget": Key(budget_key, "budget", egress=True),
        "allow_root": Key(_allow_root, "allow_root"),
        "git_user": Key(_git_user, "git_user"),
    }
)


# --------------------------------------------------------------------------- values


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
