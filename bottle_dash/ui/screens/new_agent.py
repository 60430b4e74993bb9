"""The form that defines a new agent, validated like the config file and saved to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Collapsible, Input, Label, Select, Static

#: Validates ``(name, table)`` like the config loader does; raises with the reason.
Validator = Callable[[str, dict[str, Any]], Any]


@dataclass(frozen=True)
class NewAgent:
    """A validated agent definition to append to the config file."""

    name: str
    table: dict[str, Any]


#: The advanced section's fields: (key, hint). Lists are written as the shell would
#: split them (``claude_args``, ``env``, ``skills``) or by commas/spaces (``egress_allow``).
ADVANCED = (
    ("egress_allow", "hosts, e.g. github.com, *.npmjs.org"),
    ("env", "KEY=VALUE ... (shell quoting)"),
    ("api_base", "https:// LLM gateway (optional)"),
    ("credential", "env:ANTHROPIC_API_KEY, file:PATH, none"),
    ("skills", "skill directories (shell quoting)"),
    ("claude_args", "extra claude arguments (shell quoting)"),
    ("git_user", "Name <email> (default: yours)"),
)


def _split(text: str) -> list[str]:
    """Shell-like words; text the shell could not split is one word (the validator
    then says what is wrong with it)."""
    import shlex

    try:
        return shlex.split(text)
    except ValueError:
        return [text]


def form_table(values: dict[str, str]) -> dict[str, Any]:
    """The config table for the form's values: empty fields are left out (defaults apply),
    numbers are numbers, lists are lists, ``env`` a table."""
    table: dict[str, Any] = {}
    for key in ("backend", "image", "workspace", "prompt", "memory"):
        if values.get(key, "").strip():
            table[key] = values[key].strip()
    for key in ("api_base", "credential", "git_user"):
        if values.get(key, "").strip():
            table[key] = values[key].strip()
    allow = values.get("egress_allow", "").replace(",", " ").split()
    if allow:
        table["egress_allow"] = allow
    for key in ("skills", "claude_args"):
        words = _split(values.get(key, ""))
        if words:
            table[key] = words
    env: dict[str, str] = {}
    for word in _split(values.get("env", "")):
        name, _, value = word.partition("=")
        env[name] = value  # "NOEQUALS" becomes NOEQUALS = "": the validator checks names
    if env:
        table["env"] = env
    for key, kind in (("cpus", float), ("pids", int)):
        text = values.get(key, "").strip()
        if text:
            try:
                table[key] = kind(text)
            except ValueError:
                table[key] = text  # let the validator say what is wrong, like the config
    return table


class NewAgentScreen(ModalScreen["NewAgent | None"]):
    """Name, backend, image, workspace, prompt, limits, and an advanced section (egress,
    env, API, credential, skills, claude's arguments, git identity); ctrl+s saves,
    escape cancels."""

    DEFAULT_CSS = """
    NewAgentScreen { align: center middle; }
    NewAgentScreen > VerticalScroll {
        width: 76; height: auto; max-height: 95%; padding: 0 2;
        border: thick $primary; background: $surface;
    }
    NewAgentScreen Horizontal { height: auto; margin-top: 1; }
    NewAgentScreen Label { width: 13; }
    NewAgentScreen Collapsible Horizontal { margin-top: 0; }
    NewAgentScreen Input, NewAgentScreen Select { width: 1fr; }
    NewAgentScreen #error { color: $error; height: auto; }
    NewAgentScreen #buttons { align-horizontal: right; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(
        self, validate: Validator, backends: list[str], initial: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        self.validate = validate
        self.backend_names = backends
        #: Values the form starts with (the first agent: this directory, the default image).
        self.initial = dict(initial or {})

    def compose(self) -> ComposeResult:
        fields = (
            ("name", "a-z, 0-9 and -"),
            ("image", "default from the config"),
            ("workspace", "host directory mounted at /workspace"),
            ("prompt", "system prompt (optional)"),
            ("cpus", "e.g. 2"),
            ("memory", "e.g. 4g"),
            ("pids", "e.g. 512"),
        )
        with VerticalScroll() as box:
            box.border_title = "new agent"
            for key, hint in fields[:1]:
                with Horizontal():
                    yield Label(key)
                    yield self._field(key, hint)
            with Horizontal():
                yield Label("backend")
                yield Select(
                    [(b, b) for b in self.backend_names],
                    value=self.backend_names[0],
                    allow_blank=False,
                    id="f-backend",
                    compact=True,
                )
            for key, hint in fields[1:]:
                with Horizontal():
                    yield Label(key)
                    yield self._field(key, hint)
            with Collapsible(title="advanced", collapsed=True, id="advanced"):
                for key, hint in ADVANCED:
                    with Horizontal():
                        yield Label(key)
                        yield self._field(key, hint)
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save (ctrl+s)", id="save", variant="primary")

    def _field(self, key: str, hint: str) -> Input:
        return Input(self.initial.get(key, ""), placeholder=hint, id=f"f-{key}", compact=True)

    def values(self) -> dict[str, str]:
        """The form's raw values by field name."""
        out = {w.id.removeprefix("f-"): w.value for w in self.query(Input) if w.id}
        out["backend"] = str(self.query_one("#f-backend", Select).value)
        return out

    def on_input_submitted(self) -> None:
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        """Validate like the config loader; show the reason, or hand the agent back."""
        values = self.values()
        name = values.pop("name").strip()
        table = form_table(values)
        try:
            self.validate(name, table)
        except Exception as exc:  # config.ConfigError carries the reason
            self.query_one("#error", Static).update(str(exc))
            return
        self.dismiss(NewAgent(name, table))

    def action_cancel(self) -> None:
        self.dismiss(None)
