"""README's Keys section tells the truth about the dashboard: every key any screen, modal
or widget of bottle_dash.ui binds (and the command palette's) is in it, as `key`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

from textual.binding import Binding
from textual.dom import DOMNode

import bottle_dash.ui
from bottle_dash.ui.app import BottleDashApp

README = Path(__file__).resolve().parents[2] / "README.md"
#: Textual's key names, as README writes them.
SHOWN = {"question_mark": "?", "slash": "/", "escape": "esc"}


def keys_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Keys (dashboard)\n")
    return text[start : text.index("\n## ", start + 1)]


def bound_keys() -> dict[str, str]:
    """Every key bound in bottle_dash.ui, as README shows it -> the class binding it."""
    found = {BottleDashApp.COMMAND_PALETTE_BINDING: "BottleDashApp"}
    for info in pkgutil.walk_packages(bottle_dash.ui.__path__, "bottle_dash.ui."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, DOMNode):
                continue
            for binding in cls.__dict__.get("BINDINGS", []):
                keys = binding.key if isinstance(binding, Binding) else binding[0]
                for key in keys.split(","):
                    found[SHOWN.get(key.strip(), key.strip())] = cls.__name__
    return found


def test_every_dashboard_key_is_in_the_keys_section() -> None:
    bound = bound_keys()
    # The main screen's and the app's keys are surely among them.
    assert {"enter", "R", "u", "s", "d", "n", "l", "e", "w", "i", "/", "o", "t", "?", "q"} <= set(
        bound
    )
    text = keys_section()
    missing = {key: where for key, where in bound.items() if f"`{key}`" not in text}
    assert missing == {}
