"""The dashboard's actions, each once: its keys, its help, whether it needs a selected
agent, and where it shows.

Everything that lists keys comes from ``DASHBOARD_ACTIONS`` (harlequin's
``HARLEQUIN_ACTIONS``): the main screen's, the app's and the agents table's ``BINDINGS``
(``bindings``), the help screen (``help_keys``), the footer (``footer_keys``), the
command palette (``palette_actions``) and the README's key table (``readme_table``; a
test compares the README with it). The modals' own keys (confirm, close) stay with them.
"""

from __future__ import annotations

from typing import NamedTuple

from textual.binding import Binding

#: Who runs an action: the main screen (``MainScreen.action_<name>``), the app, or the
#: agents table (the widget with the focus).
SCREEN = "screen"
APP = "app"
TABLE = "table"

#: The palette's own action: Textual binds its key (``App.COMMAND_PALETTE_BINDING``).
PALETTE = "command_palette"


class Action(NamedTuple):
    """One thing the operator can do in the dashboard."""

    #: ``action_<name>`` of its owner runs it, with ``args``.
    name: str
    #: Textual key names, comma-separated (the first is the one shown).
    keys: str
    owner: str
    #: Short, lower case: the footer's label; capitalised, the binding's description.
    label: str
    #: The help screen's line ("": not listed there).
    help: str
    #: The README's key table's line (markdown).
    readme: str
    #: Acts on the agent under the cursor (the palette offers it only when there is one).
    needs_agent: bool = False
    args: tuple[str, ...] = ()
    #: Its place in the footer, 1 first (0: not there).
    footer: int = 0
    #: The command palette's title and help line ("": not offered there).
    title: str = ""
    summary: str = ""
    #: Textual's ``Binding.show``.
    show: bool = True

    @property
    def action(self) -> str:
        """The binding's action string: ``next_status('waiting')``."""
        if not self.args:
            return self.name
        return f"{self.name}({', '.join(repr(a) for a in self.args)})"

    @property
    def key(self) -> str:
        """The key shown for it: the first of ``keys``."""
        return self.keys.split(",")[0].strip()


DASHBOARD_ACTIONS: tuple[Action, ...] = (
    Action(
        "attach",
        "enter",
        SCREEN,
        "attach",
        "attach: launch if needed, then focus / respawn / open the agent's pane",
        "attach: launch the bottle if needed (progress shown), then focus the agent's live "
        "pane, respawn its dead pane, or split a new one beside the dashboard; the pane "
        "re-attaches the claude that runs in the bottle's session holder (closing a pane "
        "only detaches it), and starts one only when none runs: `--resume` of the agent's "
        "pinned session, or `--session-id` with a new one. When the agent image "
        "(`bottle-dash-agent`) is not built, it offers to build it (`y` or `b`; `n` or "
        "`esc` does not), shows the build's progress in the status line, then attaches",
        needs_agent=True,
        footer=1,
        title="Attach agent",
        summary="Launch if needed and open its pane",
    ),
    Action(
        "zoom",
        "z",
        SCREEN,
        "zoom",
        "zoom: the agent's pane fills the window (prefix z there gives the dashboard back)",
        "zoom: bring the agent's live pane beside the dashboard and zoom it to the whole "
        "window; in the pane, the tmux prefix then `z` unzooms and prefix then `;` goes "
        "back to the dashboard",
        needs_agent=True,
        footer=2,
        title="Zoom agent pane",
        summary="Its pane fills the window",
    ),
    Action(
        "restart",
        "R",
        SCREEN,
        "fresh",
        "restart claude fresh in its pane: end the running one, pin a new session",
        "restart claude fresh in its pane: end the claude that runs, start one with a new "
        "pinned session id (the older conversation stays in `~/.claude/projects`)",
        needs_agent=True,
        footer=3,
        title="Restart agent fresh",
        summary="End claude and start a new conversation",
    ),
    Action(
        "up",
        "u",
        SCREEN,
        "up",
        "up: create or start the bottle without attaching",
        "up: create/start the bottle without attaching",
        needs_agent=True,
        footer=4,
        title="Up agent",
        summary="Create or start its bottle",
    ),
    Action(
        "stop",
        "s",
        SCREEN,
        "stop",
        "stop the bottle (its home survives)",
        "stop the bottle (its home is kept)",
        needs_agent=True,
        footer=5,
        title="Stop agent",
        summary="Stop its bottle",
    ),
    Action(
        "remove",
        "d",
        SCREEN,
        "remove",
        "remove the bottle (asks; can delete its volumes)",
        "remove, with a confirm modal (`v` also deletes the volumes, `y` confirms)",
        needs_agent=True,
        footer=6,
        title="Remove agent",
        summary="Remove its bottle (asks)",
    ),
    Action(
        "changes",
        "c",
        SCREEN,
        "changes",
        "the agent's changes: files and diff (committed, uncommitted)",
        "the diff screen of an agent with `repo`: its changed files (committed, uncommitted, "
        "untracked) with +/- lines and the selected file's diff in colour, scrollable; `/` "
        "searches (same as `bottle-dash diff`). `d` stays remove",
        needs_agent=True,
        title="Agent's changes",
        summary="Its changed files and diff",
    ),
    Action(
        "fetch_work",
        "f",
        SCREEN,
        "fetch",
        "fetch the agent's branch into the host repository (asks)",
        "fetch the agent's branch (`repo`) into the host repository as its branch; asks first "
        "(same as `bottle-dash fetch`)",
        needs_agent=True,
        title="Fetch agent's branch",
        summary="Bring its commits into the host repository",
    ),
    Action(
        "merge_work",
        "m",
        SCREEN,
        "merge",
        "merge the fetched branch into the host's current branch (asks)",
        "merge the fetched branch into the host repository's current branch (refused while "
        "the host's tree is dirty); asks first",
        needs_agent=True,
        title="Merge agent's branch",
        summary="Merge its branch into the host's current branch",
    ),
    Action(
        "pull_request",
        "p",
        SCREEN,
        "pr",
        "push the branch with your remote and open a pull request (asks)",
        "push the agent's branch with your own `origin` and credentials, then `gh pr create` "
        "(or show the command when gh is not installed); asks first",
        needs_agent=True,
        title="Pull request from agent's branch",
        summary="Push its branch and open a pull request",
    ),
    Action(
        "new_agent",
        "n",
        SCREEN,
        "new",
        "define a new agent (saved to the config file)",
        "define a new agent (validated like the config file, saved to it; `ctrl+s` saves); "
        "with none defined yet it starts filled in: named after, and working in, the "
        "directory the dashboard started from, with the default image; its `advanced` "
        "section (collapsed) takes `egress_allow`, `env`, `api_base`, `credential`, "
        "`skills`, `claude_args` and `git_user` (`bottle-dash add` writes the same table)",
        footer=7,
        title="New agent",
        summary="Define an agent in the config",
    ),
    Action(
        "logs",
        "l",
        SCREEN,
        "logs",
        "the bottle's state and output, its egress sidecar's last lines",
        "the bottle's logs: its state (since when, last exit, an OOM kill), its main "
        "process's output and its egress sidecar's last lines (`bottle-dash logs NAME`)",
        needs_agent=True,
        footer=8,
        title="Logs",
        summary="The bottle's own output",
    ),
    Action(
        "egress",
        "e",
        SCREEN,
        "egress",
        "egress: hosts allowed and denied; a adds one to the allowlist",
        "the agent's egress log: hosts allowed and denied, counts, last time; `a` adds the "
        "selected host to its `egress_allow` (applied to a running sidecar at once)",
        needs_agent=True,
        footer=9,
        title="Egress log",
        summary="Hosts allowed and denied; add one to the allowlist",
    ),
    Action(
        "budget",
        "dollar_sign",
        SCREEN,
        "budget",
        "budget: set or raise the agent's budget (USD per day, week, or in total)",
        "set or raise the agent's budget (`40/day`, `100/week`, `500`): written to the "
        "config and to its running sidecar at once (no restart); a spent budget's sidecar "
        "refuses new API requests until it is raised",
        needs_agent=True,
        title="Set budget",
        summary="USD per day, week or in total; applied to the running sidecar",
    ),
    Action(
        "filter",
        "slash",
        SCREEN,
        "filter",
        "filter agents by name (escape clears)",
        "filter the agents by name (`esc` clears)",
        footer=10,
        title="Filter agents",
        summary="Filter by name",
    ),
    Action(
        "next_status",
        "w",
        SCREEN,
        "next waiting",
        "next agent waiting for you (its pane comes to the front)",
        "jump to the next agent waiting for you, and bring its pane to the front",
        args=("waiting",),
        title="Next waiting agent",
        summary="Select it and bring its pane to the front",
    ),
    Action(
        "next_status",
        "i",
        SCREEN,
        "next idle",
        "next idle agent (its turn finished; its pane comes to the front)",
        "jump to the next idle agent (its turn finished), and bring its pane to the front",
        args=("idle",),
        title="Next idle agent",
        summary="Select it and bring its pane to the front",
    ),
    Action(
        "cycle_sort",
        "o",
        TABLE,
        "sort",
        "sort by the next column (status: waiting first)",
        "sort by the next column (the `status` sort puts the longest waiting first)",
        title="Sort agents",
        summary="By the next column",
        show=False,
    ),
    Action(
        "next_theme",
        "t",
        APP,
        "theme",
        "next theme (remembered)",
        "next theme (remembered)",
        footer=11,
        title="Next theme",
        summary="Cycle themes",
    ),
    Action(
        PALETTE,
        "ctrl+p",
        APP,
        "palette",
        "command palette: every action by name",
        "the command palette: every titled action by name; an agent's actions for the "
        "selected agent and, searched, for any agent by its name (`attach uxb` finds "
        '"Attach agent: uxb", selects it and attaches)',
        footer=13,
    ),
    Action(
        "help",
        "question_mark",
        APP,
        "help",
        "this help",
        "this help: every key",
        footer=12,
        title="Help",
        summary="Every key",
    ),
    Action(
        "quit",
        "q",
        APP,
        "quit",
        "quit (bottles and panes keep running)",
        "quit: bottles and panes keep running; the next start finds the panes again",
        footer=14,
    ),
    Action(
        "clear_filter",
        "escape",
        SCREEN,
        "clear filter",
        "",
        "clear and hide the filter",
        show=False,
    ),
)

#: Textual key names as the help screen and the README write them.
_WRITTEN = {"question_mark": "?", "slash": "/", "escape": "esc", "dollar_sign": "$"}
#: ... and as the footer writes them (short: the footer is one line).
_SHORT = {"enter": "⏎", "ctrl+p": "^p"}


def written_key(key: str) -> str:
    """``question_mark`` -> ``?``: a Textual key name as the help and the README write it."""
    return _WRITTEN.get(key, key)


def bindings(owner: str) -> list[Binding]:
    """The ``BINDINGS`` of ``owner`` (``SCREEN``, ``APP`` or ``TABLE``)."""
    return [
        Binding(a.keys, a.action, a.label.capitalize(), show=a.show)
        for a in DASHBOARD_ACTIONS
        if a.owner == owner and a.name != PALETTE
    ]


def palette_key() -> str:
    """The command palette's key (``App.COMMAND_PALETTE_BINDING``)."""
    return next(a.keys for a in DASHBOARD_ACTIONS if a.name == PALETTE)


def help_keys() -> list[tuple[str, str]]:
    """(key, what it does) for the help screen, in the registry's order."""
    return [(written_key(a.key), a.help) for a in DASHBOARD_ACTIONS if a.help]


def footer_keys() -> list[tuple[str, str]]:
    """(key, label) for the footer, in each action's ``footer`` place."""
    shown = sorted((a for a in DASHBOARD_ACTIONS if a.footer), key=lambda a: a.footer)
    return [(_SHORT.get(a.key, written_key(a.key)), a.label) for a in shown]


def palette_actions() -> list[Action]:
    """The actions the command palette offers (those with a ``title``), in order."""
    return [a for a in DASHBOARD_ACTIONS if a.title]


def readme_table() -> str:
    """The README's key table (markdown), one row per action."""
    rows = ["| key | action |", "|---|---|"]
    for a in DASHBOARD_ACTIONS:
        keys = " / ".join(f"`{written_key(k.strip())}`" for k in a.keys.split(","))
        rows.append(f"| {keys} | {a.readme} |")
    return "\n".join(rows) + "\n"
