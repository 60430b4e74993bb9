"""Host-side locations (XDG), overridable by environment so tests never touch real ones."""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / default


def state_dir() -> Path:
    """``$XDG_STATE_HOME/bottle-dash``."""
    return _xdg("XDG_STATE_HOME", ".local/state") / "bottle-dash"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/bottle-dash``."""
    return _xdg("XDG_CACHE_HOME", ".cache") / "bottle-dash"


def agent_state_dir(agent: str) -> Path:
    """Per-agent host state: the prompt file (0600), the last plan, logs."""
    return state_dir() / "agents" / agent


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the first byte (no umask window)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
