"""The starter config ``bottle-dash init`` writes (``starter.toml`` beside this module: the
reference of every key, in comments, and a first agent), and what a new agent starts with."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backends.base import DEFAULT_IMAGE
from bottle_dash.config.edit import toml_string
from bottle_dash.config.load import slugify
from bottle_dash.config.locate import ConfigError
from bottle_dash.config.paths import private_dir, resolve_config_path

#: The starter file, shipped in the wheel with the package.
STARTER_FILE = Path(__file__).with_name("starter.toml")

#: The starter's agent table header and workspace line, replaced by ``starter_config``.
STARTER_EXAMPLE_HEADER = """[agents.example]
# workspace = "~/src/my-project"    # uncomment and point at a directory that exists
"""


def starter_text() -> str:
    """The starter config as shipped (its first agent is ``example``, with no workspace).

    Read when asked for (``init``, the tests), not when the package is imported: every
    command imports it, and ``ls`` is run often."""
    return STARTER_FILE.read_text(encoding="utf-8")


def own_checkout(path: Path) -> bool:
    """Whether ``path`` is bottle-dash's own source checkout (where ``make run`` starts
    the dashboard): not a workspace anyone means for their first agent."""
    import bottle_dash

    try:
        return Path(bottle_dash.__file__).resolve().parent.parent == path.resolve()
    except OSError:
        return False


def first_agent_values(
    start_dir: Path | None,
    agents: Mapping[str, Any],
    defaults: Mapping[str, Any],
    *,
    not_own_checkout: bool = False,
) -> dict[str, str]:
    """What a new agent starts with (the dashboard's ``n`` form, ``bottle-dash init``): the
    default image and, while no agent is defined, a name and a workspace from the
    directory the operator started in (with ``not_own_checkout``, not when that is
    bottle-dash's own checkout: ``make run`` starts there)."""
    values = {"image": str(defaults.get("image") or DEFAULT_IMAGE)}
    if not_own_checkout and start_dir is not None and own_checkout(start_dir):
        return values
    if start_dir is not None and not agents:
        values["name"] = slugify(start_dir.name)
        values["workspace"] = str(start_dir)
    return values


def starter_config(name: str = "example", workspace: Path | None = None) -> str:
    """The starter config (``starter_text``) whose agent is ``name``, with ``workspace``
    when given."""
    text = starter_text()
    example = STARTER_EXAMPLE_HEADER
    if workspace is None:
        return text.replace(example, example.replace("example", name, 1))
    line = f"workspace = {toml_string(str(workspace))}    # where `bottle-dash init` ran\n"
    return text.replace(example, f"[agents.{name}]\n{line}")


def write_starter(
    path: str | Path | None = None, *, name: str = "example", workspace: Path | None = None
) -> Path:
    """Write the starter config (``starter_config(name, workspace)``) to the config path
    (``bottle-dash init``).

    Refuses (``ConfigError``) when the file already exists: it is never overwritten.
    """
    file = resolve_config_path(path)
    text = starter_config(name, workspace)  # read before the file exists: never half-made
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
        fh.write(text)
    return file
