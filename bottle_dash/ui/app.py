"""The Textual app: wiring only. ``make_app`` builds the collaborators once (the agent
service, the poller, the clock) and hands them to the screens; tests inject fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import BindingType
from textual.screen import Screen

from backends.base import BottleBackend
from backends.run import foreground
from bottle_dash.config import Config
from bottle_dash.service import IDLE_BACKEND_EVERY, AgentService
from bottle_dash.service.notify import Notifier
from bottle_dash.tmux import PaneHost
from bottle_dash.ui import themes
from bottle_dash.ui.actions import APP, bindings, palette_key
from bottle_dash.ui.commands import AgentCommands
from bottle_dash.ui.context import DashContext
from bottle_dash.ui.poller import Poller
from bottle_dash.ui.screens.main import MainScreen


class BottleDashApp(App[None]):
    """The cockpit. Construct it with ``make_app``."""

    TITLE = "bottle-dash"
    COMMANDS = App.COMMANDS | {AgentCommands}
    COMMAND_PALETTE_BINDING = palette_key()
    BINDINGS: ClassVar[list[BindingType]] = list(bindings(APP))

    def __init__(
        self,
        context: DashContext,
        *,
        theme: str | None,
        remember: bool,
        theme_dirs: Sequence[Path] | None,
    ) -> None:
        super().__init__()
        self.context = context
        self.remember = remember
        loaded, self.theme_failures = themes.load_themes(theme_dirs)
        self.file_themes = [t.name for t in loaded]
        for theme_obj in loaded:
            self.register_theme(theme_obj)
        self._wanted_theme = theme

    @property
    def service(self) -> AgentService:
        return self.context.service

    @property
    def poller(self) -> Poller:
        return self.context.poller

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
        return MainScreen(self.context)

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


def make_app(
    *,
    load_config: Callable[[], Config],
    pane_host: PaneHost | None = None,
    backends: Mapping[str, BottleBackend] | None = None,
    service: AgentService | None = None,
    config_path: Path | None = None,
    theme: str | None = None,
    refresh_interval: float = 2.0,
    now: Callable[[], datetime] | None = None,
    run_foreground: Callable[[Sequence[str]], int] = foreground,
    remember: bool = True,
    theme_dirs: Sequence[Path] | None = None,
    start_dir: Path | None = None,
    probe_after_up: bool = True,
) -> BottleDashApp:
    """Build the app with its collaborators (tests inject fakes and a frozen clock).

    ``pane_host`` None means ``--no-tmux``: attaching runs claude in the foreground.
    ``service`` None builds one on ``backends`` (None: the registry's real backends).
    ``start_dir`` is where the operator started (the first agent's workspace); None leaves
    the new-agent form's name and workspace empty. ``probe_after_up`` runs the escape
    probes in the background after each launch (the seal badge).
    """
    if service is None:
        service = AgentService(backends, pane_host, idle_backend_every=IDLE_BACKEND_EVERY)
    clock = now or (lambda: datetime.now(UTC))
    poller = Poller(
        load_config,
        service,
        service.pane_host,
        clock=lambda: clock().timestamp(),  # status since-times on the app's clock
    )
    context = DashContext(
        service=service,
        poller=poller,
        config_path=config_path,
        now=clock,
        refresh_interval=refresh_interval,
        run_foreground=run_foreground,
        notifier=Notifier(service.pane_host),
        start_dir=start_dir,
        probe_after_up=probe_after_up,
    )
    return BottleDashApp(context, theme=theme, remember=remember, theme_dirs=theme_dirs)
