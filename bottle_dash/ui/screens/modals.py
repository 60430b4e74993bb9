"""Small modal screens: confirm remove, confirm an image build, help; the panel layout and
the logs view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Static

from bottle_dash.ui.actions import help_keys

#: What a confirm modal hands back when it closes.
ConfirmT = TypeVar("ConfirmT")
#: What a panel hands back when it closes.
PanelT = TypeVar("PanelT")


@dataclass(frozen=True)
class RemoveChoice:
    """The operator confirmed a remove; ``volumes`` deletes the bottle's home too."""

    agent: str
    volumes: bool


class Confirm(ModalScreen[ConfirmT]):
    """A centred question about one agent, its buttons on the right (the layout of the
    confirm modals below)."""

    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical {
        width: 64; height: auto; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    Confirm Label { width: 100%; margin-bottom: 1; }
    Confirm Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    Confirm Button { margin-left: 2; }
    """


#: The remove dialog's volumes choice, with its state in words.
VOLUMES_LABEL = "Also delete its volumes (v): {}"


class ConfirmRemove(Confirm["RemoveChoice | None"]):
    """Ask before removing a bottle, offering to delete its volumes too."""

    DEFAULT_CSS = """
    ConfirmRemove > Vertical { border: thick $error; }
    """
    BINDINGS = [
        Binding("escape,n", "cancel", "Cancel"),
        Binding("y", "confirm", "Remove"),
        Binding("v", "toggle_volumes", "Volumes too", show=False),
    ]

    def __init__(self, agent: str, bottle: str) -> None:
        super().__init__()
        self.agent = agent
        self.bottle = bottle

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text.assemble("Remove ", (self.bottle, "bold"), f" (agent {self.agent})?"))
            yield Label(
                "The container or VM and its network go. Its home volume (~/.claude, "
                "the conversations) and its repository copy stay unless you delete them "
                "too (a copy with unfetched work is refused)."
            )
            yield Checkbox(VOLUMES_LABEL.format("no"), id="volumes")
            with Horizontal():
                yield Button("Cancel (n)", id="cancel")
                yield Button("Remove (y)", id="remove", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "remove":
            self.action_confirm()
        else:
            self.action_cancel()

    def action_toggle_volumes(self) -> None:
        box = self.query_one("#volumes", Checkbox)
        box.value = not box.value

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        # The box's X is drawn in both states (only its colour changes, which some themes
        # hardly show): the label says the choice in words.
        event.checkbox.label = VOLUMES_LABEL.format("YES" if event.value else "no")

    def action_confirm(self) -> None:
        self.dismiss(RemoveChoice(self.agent, self.query_one("#volumes", Checkbox).value))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmWork(Confirm[bool]):
    """Ask before an agent's work changes the host repository (fetch, merge, pr)."""

    BINDINGS = [
        Binding("escape,n", "cancel", "Cancel"),
        Binding("y", "confirm", "Yes"),
    ]

    def __init__(self, agent: str, question: str) -> None:
        super().__init__()
        self.agent = agent
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question))
            with Horizontal():
                yield Button("Cancel (n)", id="cancel")
                yield Button("Yes (y)", id="yes", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class ConfirmBuild(Confirm[bool]):
    """The agent's image is missing: offer to build it (then the action goes on)."""

    DEFAULT_CSS = """
    ConfirmBuild > Vertical { width: 68; }
    """
    BINDINGS = [
        Binding("escape,n", "cancel", "Cancel"),
        Binding("y,b", "confirm", "Build"),
    ]

    def __init__(self, agent: str, image: str) -> None:
        super().__init__()
        self.agent = agent
        self.image = image

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                Text.assemble(
                    "The image ", (self.image, "bold"), f" of agent {self.agent} is not built."
                )
            )
            yield Label(
                "Build it now? From its Dockerfile when a registry answers, else assembled "
                "from Debian packages and npm (a few minutes the first time). Progress shows "
                "in the status line; the agent starts when it is done."
            )
            with Horizontal():
                yield Button("Cancel (n)", id="cancel")
                yield Button("Build (y)", id="build", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#build", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "build")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


#: (key, what it does) for the help screen: every action of the registry that has help.
KEYS: tuple[tuple[str, str], ...] = tuple(help_keys())


class HelpScreen(ModalScreen[None]):
    """Every key, in one place."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 80; height: auto; max-height: 90%; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        # Scrolls (arrows, page keys, wheel) when the terminal is shorter than the keys.
        with VerticalScroll():
            yield Static(Text("bottle-dash keys", style="bold"))
            yield Static(table)
            yield Static(Text("escape closes this help", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)


class Panel(ModalScreen[PanelT]):
    """A large view over the dashboard, in a bordered box of 95% by 90% (the layout of the
    logs and egress views)."""

    DEFAULT_CSS = """
    Panel { align: center middle; }
    Panel > Vertical {
        width: 95%; height: 90%; padding: 0 1;
        border: thick $primary; background: $surface;
    }
    """


class LogsScreen(Panel[None]):
    """A bottle's own output (``bottle-dash logs``), scrollable."""

    DEFAULT_CSS = """
    LogsScreen VerticalScroll { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q,l", "close", "Close")]

    def __init__(self, agent: str, text: str) -> None:
        super().__init__()
        self.agent = agent
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"logs: {self.agent}"
            with VerticalScroll():
                yield Static(Text(self.text or "(no output)"), id="logs")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
