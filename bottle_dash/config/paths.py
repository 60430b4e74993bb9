"""Where the config file is: ``--config``, then ``$BOTTLE_DASH_CONFIG``, then the XDG
default; the private folder it lives in; and where the paths it names are."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "BOTTLE_DASH_CONFIG"


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/bottle-dash/config.toml`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bottle-dash" / "config.toml"


def resolve_config_path(explicit: str | Path | None = None) -> Path:
    """The config file to use: ``explicit`` (``--config``), then ``$BOTTLE_DASH_CONFIG``,
    then the XDG default. ``~`` is expanded; the result is absolute."""
    chosen = explicit or os.environ.get(ENV_VAR) or default_config_path()
    return Path(chosen).expanduser().absolute()


def private_dir(folder: Path) -> None:
    """Make the config's folder: 0700 when bottle-dash creates it, and the default folder
    (``$XDG_CONFIG_HOME/bottle-dash``) 0700 always. A folder the operator chose with
    ``--config`` that already exists is theirs and left as it is."""
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
    elif folder == default_config_path().parent:
        os.chmod(folder, 0o700)


def host_path(value: str, config: Path) -> Path:
    """``~`` expanded; relative paths start at the config file's folder."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (config.parent / p)
