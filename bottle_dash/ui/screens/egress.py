"""The egress view of one agent: hosts its sidecar allowed and denied, with counts and the
last time; ``a`` adds the selected denied host to the agent's allowlist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from bottle_dash.ui.screens.modals import Panel


class EgressScreen(Panel["str | None"]):
    """Dismisses with the allowlist rule to add (``a`` on a host), or None."""

    DEFAULT_CSS = """
    EgressScreen DataTable { height: 1fr; }
    EgressScreen #egress-note { height: auto; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape,q,e", "close", "Close"),
        Binding("a", "allow", "Allow host"),
    ]

    def __init__(self, agent: str, hosts: Sequence[Any], note: str = "") -> None:
        super().__init__()
        self.agent = agent
        self.hosts = list(hosts)
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"egress: {self.agent}"
            box.border_subtitle = "a: add the selected host to the allowlist · esc: close"
            yield Static(
                Text(
                    self.note
                    or "hosts the bottle asked for, denied first; (probe): the escape "
                    "probes' own requests, never sent upstream"
                ),
                id="egress-note",
            )
            yield DataTable(cursor_type="row", id="egress-hosts")

    def on_mount(self) -> None:
        table: DataTable[Text | str] = self.query_one(DataTable)
        for key, label in (
            ("host", "host"),
            ("allowed", "allowed"),
            ("denied", "denied"),
            ("last", "last"),
            ("reason", "last denial"),
        ):
            table.add_column(label, key=key)
        for h in self.hosts:
            denied = Text(str(h.denied), style="bold" if h.denied else "", justify="right")
            probe = getattr(h, "probe", False)
            table.add_row(
                Text(f"(probe) {h.rule}", style="dim") if probe else h.rule,
                Text(str(h.allowed), justify="right"),
                denied,
                h.last,
                Text(h.last_reason),
                key=f"probe:{h.rule}" if probe else h.rule,
            )
        if not self.hosts:
            self.query_one("#egress-note", Static).update("no egress recorded yet")

    def action_allow(self) -> None:
        if not self.hosts:
            return
        table: DataTable[Text | str] = self.query_one(DataTable)
        host = self.hosts[table.cursor_row]
        if getattr(host, "probe", False):
            # A probe's request is the probes' own, not something the agent needs.
            self.query_one("#egress-note", Static).update(
                Text("that line is the escape probes' own traffic: nothing to allow")
            )
            return
        self.dismiss(host.rule)

    def action_close(self) -> None:
        self.dismiss(None)
