"""Theme files (TOML) loaded beside Textual's built-in themes, and the remembered choice.

A theme file holds ``textual.theme.Theme`` fields plus a ``[variables]`` table; the
agent-state colours are the ``state-*`` variables. A broken file is reported with the
reason and skipped (the loader returns what loaded and what failed, it never raises).
Shipped themes live in the wheel as ``bottle_dash/_themes``; from a source checkout they
are the repository's ``themes/``. Operators may add their own under
``$XDG_CONFIG_HOME/bottle-dash/themes``.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

from backends.base import NOT_CREATED, RUNNING, STOPPED
from backends.paths import state_dir

#: Variables the agents table reads, with defaults for themes that do not set them
#: (Textual's built-ins).
STATE_VARIABLES = {
    "state-running": "#4EBF71",
    "state-stopped": "#FFA62B",
    "state-not-created": "#8A8A8A",
    "state-undefined": "#B392F0",
    "state-busy": "#0178D4",
    "state-waiting": "#FF6B6B",
    "state-working": "#0178D4",
    "state-idle": "#4EBF71",
}
#: The variable that colours each bottle state (the table's state column, the header).
STATE_VARIABLE = {
    RUNNING: "state-running",
    STOPPED: "state-stopped",
    NOT_CREATED: "state-not-created",
}
#: The variable that colours each agent status (``bottle_dash.status``).
STATUS_VARIABLE = {
    "waiting": "state-waiting",
    "working": "state-working",
    "idle": "state-idle",
    "exited": "state-not-created",
    "unknown": "state-not-created",
    "stopped": "state-not-created",
    "no bottle": "state-not-created",
}
DEFAULT_THEME = "bottle-dark"
_COLOR_FIELDS = {
    "primary", "secondary", "warning", "error", "success", "accent",
    "foreground", "background", "surface", "panel", "boost",
}  # fmt: skip
_KNOWN = {f.name for f in fields(Theme)}


@dataclass(frozen=True)
class ThemeFailure:
    """A theme file that did not load, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"theme {self.path}: {self.reason}"


def shipped_dir() -> Path:
    """Where the shipped theme files are: inside the wheel, else the repository's."""
    packaged = Path(__file__).resolve().parents[1] / "_themes"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "themes"


def user_dir() -> Path:
    """``$XDG_CONFIG_HOME/bottle-dash/themes``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bottle-dash" / "themes"


def parse_theme(path: Path) -> Theme:
    """One theme file as a ``Theme``; ``ValueError`` says what is wrong."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read: {exc}") from exc
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(unknown)}")
    for key in ("name", "primary"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"{key!r} is required (a string)")
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ValueError("[variables] must be a table")
    for key, value in [*((k, data[k]) for k in _COLOR_FIELDS if k in data), *variables.items()]:
        if not isinstance(value, str):
            raise ValueError(f"{key!r} must be a colour string")
        if key in _COLOR_FIELDS or key.startswith("state-"):
            try:
                Color.parse(value)
            except ColorParseError as exc:
                raise ValueError(f"{key!r}: {exc}") from exc
    data["variables"] = {str(k): str(v) for k, v in variables.items()}
    try:
        return Theme(**data)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from exc


def load_themes(dirs: Iterable[Path] | None = None) -> tuple[list[Theme], list[ThemeFailure]]:
    """Every ``*.toml`` theme in ``dirs`` (shipped, then the operator's), sorted by file."""
    if dirs is None:
        dirs = [shipped_dir(), user_dir()]
    loaded: list[Theme] = []
    failed: list[ThemeFailure] = []
    for folder in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                loaded.append(parse_theme(path))
            except ValueError as exc:
                failed.append(ThemeFailure(path, str(exc)))
    return loaded, failed


def _ui_state_file() -> Path:
    return state_dir() / "ui.json"


def remembered_theme() -> str | None:
    """The theme chosen last time (``t`` or ``--theme``), if any."""
    try:
        value = json.loads(_ui_state_file().read_text()).get("theme")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def remember_theme(name: str) -> None:
    """Save the chosen theme in ``$XDG_STATE_HOME/bottle-dash/ui.json``."""
    path = _ui_state_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"theme": name}) + "\n")
        tmp.replace(path)
    except OSError:
        pass  # a read-only state dir must not break theme switching
