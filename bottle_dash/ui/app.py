"""The Textual app: wiring only. Screens and widgets hold the behaviour; ``make_app`` injects
the collaborators (backends, pane host, config loader, clock) so tests run on fakes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from backends import registry
from backends.base import BackendError, BottleBackend, Problem
from bottle_dash.actions import Actions
from bottle_dash.tmux import PaneHost
from bottle_dash.ui import themes
from bottle_dash.ui.poller import Poller
from bottle_dash.ui.screens.main import MainScreen


class BottleDashApp(App[None]):
    """The cockpit. Construct it with ``make_app``."""

    TITLE = "bottle-dash"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("t", "next_theme", "Theme"),
    ]

    def __init__(
        self,
        *,
        load_config: Callable[[], Any],
        pane_host: PaneHost | None,
        backends: Mapping[str, BottleBackend] | None,
        config_path: Path | None,
        theme: str | None,
        refresh_interval: float,
        now: Callable[[], datetime],
        ops: Any,
        run_foreground: Callable[[Sequence[str]], int],
        remember: bool,
        theme_dirs: Sequence[Path] | None,
    ) -> None:
        super().__init__()
        self.pane_host = pane_host
        self.backends = backends
        self.config_path = config_path
        self.refresh_interval = refresh_interval
        self.now = now
        self.run_foreground = run_foreground
        self.remember = remember
        self.actions = Actions(pane_host, backends, ops)
        self.poller = Poller(
            load_config,
            _BackendView(backends),
            pane_host,
            getattr(ops, "list_agents", None),
            clock=lambda: now().timestamp(),  # status since-times on the app's clock
        )
        loaded, self.theme_failures = themes.load_themes(theme_dirs)
        self.file_themes = [t.name for t in loaded]
        for theme_obj in loaded:
            self.register_theme(theme_obj)
        self._wanted_theme = theme

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """Agent-state colours for themes (Textual's built-ins) that do not define them."""
        return dict(themes.STATE_VARIABLES)

    def on_mount(self) -> None:
        wanted = self._wanted_theme or themes.remembered_theme() or themes.DEFAULT_THEME
        if wanted not in self.available_themes:
            self.notify(f"unknown theme {wanted!r}; using {themes.DEFAULT_THEME}", timeout=5)
            wanted = themes.DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted
        for failure in self.theme_failures:
            self.notify(str(failure), title="theme skipped", severity="warning", timeout=8)

    def get_default_screen(self) -> Screen[Any]:
        """The main screen is the default one (no blank screen beneath it)."""
        return MainScreen()

    # ------------------------------------------------------------------ app keys

    def action_help(self) -> None:
        """?: every key."""
        from bottle_dash.ui.screens.modals import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def theme_cycle(self) -> list[str]:
        """Themes ``t`` cycles through: the theme files, then Textual's dark and light."""
        names = [*self.file_themes, "textual-dark", "textual-light"]
        return [n for n in names if n in self.available_themes]

    def action_next_theme(self) -> None:
        """t: the next theme, remembered for the next start."""
        cycle = self.theme_cycle()
        index = cycle.index(self.theme) if self.theme in cycle else -1
        self.theme = cycle[(index + 1) % len(cycle)]
        if self.remember:
            themes.remember_theme(self.theme)
        self.notify(f"theme: {self.theme}", timeout=2)

    def watch_theme(self, theme: str) -> None:
        # State colours live in rendered cells: redraw them in the new theme's colours.
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen) and screen.is_mounted:
                screen.refresh_view(force=True)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette offers every agent action beside Textual's own."""
        yield from super().get_system_commands(screen)
        main = next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)
        if main is None:
            return
        yield SystemCommand(
            "Attach agent", "Launch if needed and open its pane", main.action_attach
        )
        yield SystemCommand(
            "Restart agent fresh", "Restart claude without --continue", main.action_restart
        )
        yield SystemCommand("Up agent", "Create or start its bottle", main.action_up)
        yield SystemCommand("Stop agent", "Stop its bottle", main.action_stop)
        yield SystemCommand("Remove agent", "Remove its bottle (asks)", main.action_remove)
        yield SystemCommand("New agent", "Define an agent in the config", main.action_new_agent)
        yield SystemCommand("Logs", "The bottle's own output", main.action_logs)
        yield SystemCommand(
            "Next waiting agent",
            "Select it and bring its pane to the front",
            partial(main.action_next_status, "waiting"),
        )
        yield SystemCommand(
            "Next idle agent",
            "Select it and bring its pane to the front",
            partial(main.action_next_status, "idle"),
        )
        yield SystemCommand("Filter agents", "Filter by name", main.action_filter)
        yield SystemCommand("Next theme", "Cycle themes", self.action_next_theme)
        yield SystemCommand("Help", "Every key", self.action_help)

    # ------------------------------------------------------------------ services

    def preflight(self) -> list[Problem]:
        """Each backend's preflight problems (blocking: called from a worker)."""
        names = list(self.backends) if self.backends else self._backends_in_use()
        problems: list[Problem] = []
        for name in names:
            try:
                problems += self.actions.ops.backend_for(name, self.backends).preflight()
            except (BackendError, ImportError) as exc:
                # the message alone: the fix has its own field (str(exc) carries it too)
                what = exc.message if isinstance(exc, BackendError) else str(exc)
                problems.append(Problem(name, f"backend unavailable: {what}", _fix(exc)))
        return problems

    def _backends_in_use(self) -> list[str]:
        # Preflight runs after the first poll: the config that poll loaded (None if broken).
        return sorted(self.actions.ops.backends_needed(self.poller.last_config))

    def backend_names(self) -> list[str]:
        """Backend names the new-agent form offers."""
        return list(self.backends) if self.backends else registry.names()

    def validate_agent(self, name: str, table: dict[str, Any]) -> Any:
        """Validate a new agent exactly like the config loader (raises ``ConfigError``)."""
        from bottle_dash import config

        loaded = self.poller.last_config
        defaults = getattr(loaded, "defaults", {}) or {}
        return config.validate_agent(name, table, defaults, self._config_file())

    def save_agent(self, name: str, table: dict[str, Any]) -> None:
        """Append a validated agent to the config file."""
        from bottle_dash import config

        config.append_agent(self._config_file(), name, table)

    def _config_file(self) -> Path:
        from bottle_dash import config

        loaded = self.poller.last_config
        return self.config_path or getattr(loaded, "path", None) or config.resolve_config_path()

    def run_in_foreground(self, argv: Sequence[str]) -> None:
        """--no-tmux: hand the terminal to claude and take it back when it exits."""
        from textual.app import SuspendNotSupported

        try:
            with self.suspend():
                self.run_foreground(argv)
        except SuspendNotSupported:
            # Headless (tests) and Windows cannot suspend: run it without the handover.
            self.run_foreground(argv)


def _fix(exc: BaseException) -> str:
    if isinstance(exc, BackendError) and exc.fix:
        return exc.fix
    if isinstance(exc, ImportError):
        return "pip install 'bottle-dash[smolvm]'"
    return "see the backend's documentation"


class _BackendView(Mapping[str, BottleBackend]):
    """Backends by name for the poller: the injected ones (a view, not a copy), else the
    registry's, lazily."""

    def __init__(self, injected: Mapping[str, BottleBackend] | None) -> None:
        self.injected: Mapping[str, BottleBackend] = injected if injected is not None else {}

    def __getitem__(self, name: str) -> BottleBackend:
        return self.injected[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.injected)

    def __len__(self) -> int:
        return len(self.injected)

    def names(self) -> list[str]:
        """Every backend name: the injected ones, else all registered."""
        return list(self.injected) if self.injected else registry.names()

    def get(self, name: str, default: Any = None) -> Any:
        if name in self.injected:
            return self.injected[name]
        if self.injected:
            return default
        try:
            return registry.get_backend(name)
        except (BackendError, ImportError):
            return default


def _run(argv: Sequence[str]) -> int:
    return subprocess.run(list(argv), check=False).returncode


def make_app(
    *,
    load_config: Callable[[], Any],
    pane_host: PaneHost | None = None,
    backends: Mapping[str, BottleBackend] | None = None,
    config_path: Path | None = None,
    theme: str | None = None,
    refresh_interval: float = 2.0,
    now: Callable[[], datetime] | None = None,
    ops: Any = None,
    run_foreground: Callable[[Sequence[str]], int] = _run,
    remember: bool = True,
    theme_dirs: Sequence[Path] | None = None,
) -> BottleDashApp:
    """Build the app with its collaborators (tests inject fakes and a frozen clock).

    ``pane_host`` None means ``--no-tmux``: attaching runs claude in the foreground.
    ``backends`` None means the registry's real backends.
    """
    return BottleDashApp(
        load_config=load_config,
        pane_host=pane_host,
        backends=backends,
        config_path=config_path,
        theme=theme,
        refresh_interval=refresh_interval,
        now=now or (lambda: datetime.now(UTC)),
        ops=ops,
        run_foreground=run_foreground,
        remember=remember,
        theme_dirs=theme_dirs,
    )
