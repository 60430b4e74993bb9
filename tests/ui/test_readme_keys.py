"""README's Keys section tells the truth about the dashboard: its key table is the action
registry's (``bottle_dash.ui.actions``), every key any screen, modal or widget of
bottle_dash.ui binds (and the command palette's) is in it, as `key`, and the bindings,
the help screen, the footer and the palette come from the registry."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import Counter
from pathlib import Path

from textual.binding import Binding
from textual.dom import DOMNode

import bottle_dash.ui
from bottle_dash.ui.actions import (
    APP,
    DASHBOARD_ACTIONS,
    PALETTE,
    SCREEN,
    TABLE,
    footer_keys,
    help_keys,
    palette_actions,
    readme_table,
)
from bottle_dash.ui.app import BottleDashApp
from bottle_dash.ui.screens.main import MainScreen
from bottle_dash.ui.screens.modals import KEYS
from bottle_dash.ui.widgets.agents_table import AgentsTable
from bottle_dash.ui.widgets.chrome import MAIN_KEYS

README = Path(__file__).resolve().parents[2] / "README.md"
#: Textual's key names, as README writes them.
SHOWN = {"question_mark": "?", "slash": "/", "escape": "esc", "dollar_sign": "$"}
#: Which class runs each owner's actions.
OWNERS = {SCREEN: MainScreen, APP: BottleDashApp, TABLE: AgentsTable}


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


def test_the_readme_key_table_is_the_registry() -> None:
    # Regenerate it with: python -c "from bottle_dash.ui.actions import readme_table;
    # print(readme_table(), end='')" and paste it over the table.
    text = keys_section()
    start = text.index("| key | action |")
    table = text[start : text.index("\n\n", start)] + "\n"
    assert table == readme_table()


def test_every_binding_comes_from_the_registry_and_runs_an_action() -> None:
    for owner, cls in OWNERS.items():
        bound = sorted((b.key, b.action, b.description) for b in cls.__dict__["BINDINGS"])
        wanted = sorted(
            (a.keys, a.action, a.label.capitalize())
            for a in DASHBOARD_ACTIONS
            if a.owner == owner and a.name != PALETTE
        )
        assert bound == wanted, cls.__name__
    assert BottleDashApp.COMMAND_PALETTE_BINDING == "ctrl+p"
    assert [a.keys for a in DASHBOARD_ACTIONS if a.name == PALETTE] == ["ctrl+p"]
    for action in DASHBOARD_ACTIONS:
        assert callable(getattr(OWNERS[action.owner], f"action_{action.name}", None)), action
    keys = Counter(k.strip() for a in DASHBOARD_ACTIONS for k in a.keys.split(","))
    assert [k for k, n in keys.items() if n > 1] == []


def test_the_help_the_footer_and_the_palette_come_from_the_registry() -> None:
    assert tuple(help_keys()) == KEYS
    assert tuple(footer_keys()) == MAIN_KEYS
    # The footer's places are 1..n, each once; every action has a line in the README.
    places = sorted(a.footer for a in DASHBOARD_ACTIONS if a.footer)
    assert places == list(range(1, len(places) + 1))
    assert all(a.readme and a.label for a in DASHBOARD_ACTIONS)
    titles = [a.title for a in palette_actions()]
    assert len(titles) == len(set(titles)) and all(a.summary for a in palette_actions())
    # The palette runs only what a key runs too: the screen's, its table's or the app's.
    assert {a.owner for a in palette_actions()} <= {SCREEN, TABLE, APP}
