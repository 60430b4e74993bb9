"""FakePaneHost: a ``PaneHost`` that records what it was asked to do (a FAKE, no tmux)."""

from __future__ import annotations

from collections.abc import Sequence

from bottle_dash.tmux import PaneInfo


class FakePaneHost:
    """Panes in a dict. ``calls`` lists (method, ...) in order; ``panes`` calls included."""

    def __init__(self) -> None:
        self.pane_map: dict[str, PaneInfo] = {}
        self.calls: list[tuple[object, ...]] = []
        self.screens: dict[str, list[str]] = {}
        self._next = 1

    def add(
        self, agent: str, dead: bool = False, lines: Sequence[str] = (), title: str = ""
    ) -> str:
        """A tagged pane that already exists (found after a restart); ``title`` is what
        claude set (see ``set_title``)."""
        pane_id = f"%{self._next}"
        self._next += 1
        self.pane_map[agent] = PaneInfo(pane_id, agent, dead, "@1", 4242, title)
        self.screens[pane_id] = list(lines)
        return pane_id

    def set_title(self, agent: str, title: str) -> None:
        """What claude's OSC 0 does to a real pane's title."""
        pane = self.pane_map[agent]
        self.pane_map[agent] = PaneInfo(
            pane.pane_id, agent, pane.dead, pane.window_id, pane.pid, title
        )

    def actions(self) -> list[tuple[object, ...]]:
        """Calls other than the per-tick listing and capture."""
        return [c for c in self.calls if c[0] not in ("panes", "capture")]

    # ------------------------------------------------------------ PaneHost

    def panes(self) -> dict[str, PaneInfo]:
        self.calls.append(("panes",))
        return dict(self.pane_map)

    def split(self, agent: str, argv: Sequence[str]) -> str:
        self.calls.append(("split", agent, list(argv)))
        return self.add(agent)

    def respawn(self, pane_id: str, argv: Sequence[str]) -> None:
        self.calls.append(("respawn", pane_id, list(argv)))
        for agent, pane in self.pane_map.items():
            if pane.pane_id == pane_id:
                self.pane_map[agent] = PaneInfo(pane_id, agent, False, pane.window_id, 4243)

    def focus(self, pane_id: str) -> None:
        self.calls.append(("focus", pane_id))

    def zoom(self, pane_id: str) -> None:
        self.calls.append(("zoom", pane_id))

    def close(self, pane_id: str) -> None:
        self.calls.append(("close", pane_id))
        self.pane_map = {a: p for a, p in self.pane_map.items() if p.pane_id != pane_id}

    def capture(self, pane_id: str, lines: int = 10) -> list[str]:
        self.calls.append(("capture", pane_id))
        return self.screens.get(pane_id, [])[-lines:]

    def message(self, text: str) -> None:
        self.calls.append(("message", text))
