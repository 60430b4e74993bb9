"""Start-up for ``bottle-dash`` with no subcommand: in tmux, into tmux, or in place.

- Inside tmux (``$TMUX`` set): the dashboard runs in the current pane and splits agents'
  panes from its window.
- Outside tmux: it creates (or re-attaches to) the tmux session ``bottle-dash`` that runs
  the dashboard, so the operator lands in the cockpit either way.
- ``--no-tmux``: it runs in place; attaching hands the terminal to claude
  (``App.suspend()``) and takes it back when claude exits.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from backends.run import foreground
from bottle_dash.tmux import SESSION, session_argv

T = TypeVar("T")

NO_TMUX_HINT = (
    "bottle-dash: tmux is not installed, and each agent's claude runs in its own tmux pane.\n"
    "  fix: install tmux (apt-get install -y tmux, brew install tmux),\n"
    "       or run `bottle-dash --no-tmux` to attach in this terminal instead."
)


def dashboard_argv(config_path: Path | None, theme: str | None) -> list[str]:
    """The command the tmux session runs: this Python, this package, the same options."""
    argv = [sys.executable, "-m", "bottle_dash"]
    if config_path is not None:
        argv += ["--config", str(Path(config_path).expanduser().absolute())]
    if theme:
        argv += ["--theme", theme]
    return argv


def run_dashboard(*, config_path: Path | None, no_tmux: bool, theme: str | None) -> int:
    """Run the dashboard (see the module docstring for where); returns an exit status."""
    if not no_tmux and not os.environ.get("TMUX"):
        tmux = shutil.which("tmux")
        if tmux is None:
            print(NO_TMUX_HINT, file=sys.stderr)
            return 2
        argv = session_argv(tmux, dashboard_argv(config_path, theme), SESSION)
        return foreground(argv)
    return run_in_place(config_path=config_path, no_tmux=no_tmux, theme=theme)


def cached_loader(path: Path, load: Callable[[Path], T]) -> Callable[[], T]:
    """``load(path)`` again only when the file changed (mtime or size), not on every tick.

    A file that fails to load is not cached, so the error shows until it is fixed.
    """
    cache: list[tuple[tuple[int, int] | None, T]] = []

    def loader() -> T:
        try:
            stat = path.stat()
            key: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = None
        if not cache or cache[0][0] != key:
            cache[:] = [(key, load(path))]
        return cache[0][1]

    return loader


def run_in_place(*, config_path: Path | None, no_tmux: bool, theme: str | None) -> int:
    """Run the Textual app in this terminal (the pane we are in, or plain ``--no-tmux``)."""
    from bottle_dash import config as config_module
    from bottle_dash.service import IDLE_BACKEND_EVERY, AgentService
    from bottle_dash.ui.app import make_app

    path = config_module.resolve_config_path(config_path)
    pane_host = None
    if not no_tmux:
        from bottle_dash.tmux import TmuxPaneHost

        pane_host = TmuxPaneHost()
    # Built once: the poller, the screens and every action share it.
    service = AgentService(pane_host=pane_host, idle_backend_every=IDLE_BACKEND_EVERY)
    app = make_app(
        load_config=cached_loader(path, config_module.load_config),
        service=service,
        config_path=path,
        theme=theme,
        start_dir=Path.cwd(),
    )
    app.run()
    return app.return_code or 0
