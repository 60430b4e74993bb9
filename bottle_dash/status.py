"""What each agent is doing, from the signals the poll already has; pure and table-tested.

Signals, strongest first:

1. Whether a live pane shows the agent. claude runs in a session holder in the bottle
   (``backends.holder``), so a closed or dead pane only detached it: with no live pane
   the hook word decides, and a claude still running is marked ``detached``; a word of
   ``exited`` (claude's SessionEnd, or the holder once claude ended) or no word at all
   (no claude started since the bottle started) is ``exited``.
2. The word claude's hooks wrote to the agent's status file (``backends.status_file``),
   with its mtime. Hooks miss one thing: Esc interrupts a turn without a Stop hook, so
   ``working`` (or ``waiting``, when Esc dismissed a permission prompt) would stay forever.
3. The pane title (from the poll's one ``list-panes``): Claude Code titles a busy session
   with a spinner glyph (braille U+2802/U+2810 in 2.1, ◐◑◒◓ later) and an idle one with ✳,
   so a title that has disagreed with the hook for longer than ``TITLE_LAG`` wins. The
   title lags the hooks by up to a spinner frame (960 ms), which the lag covers. One
   exception, measured with 2.1.197: a permission prompt shows ✳ too, so ✳ never
   overrides ``waiting`` (an Esc that dismisses a prompt reads as waiting until the
   next hook); a spinner after a prompt does (the operator answered).
4. Screen text, only when 2 and 3 say nothing, and only for the agent whose screen the
   poll captured anyway (the preview): claude rewords its dialogs, so it is a last resort.

Nothing here does I/O or reads the clock: the caller passes ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from backends.claude import (
    WORD_ERROR,
    WORD_EXITED,
    WORD_IDLE,
    WORD_PERMISSION,
    WORD_QUESTION,
    WORD_WORKING,
)
from backends.status_file import HookReading

WORKING = "working"
WAITING = "waiting"
IDLE = "idle"
EXITED = "exited"
STATUS_UNKNOWN = "unknown"
#: A bottle that is stopped, and an agent with no bottle yet: nothing ran, nothing exited.
STOPPED = "stopped"
NO_BOTTLE = "no bottle"
#: Every status, in the order the attention sort shows them.
STATUSES = (WAITING, IDLE, WORKING, STATUS_UNKNOWN, EXITED, STOPPED, NO_BOTTLE)
#: The status of a row whose bottle does not run, by its state: what it is, not "exited".
_NOT_RUNNING = {
    "stopped": (STOPPED, "bottle stopped"),
    "not created": (NO_BOTTLE, "no bottle yet"),
    "unknown": (STATUS_UNKNOWN, "its backend did not answer"),
}

#: Seconds a title may disagree with a newer hook before the title wins.
TITLE_LAG = 3.0

#: Title glyphs of a busy session: Claude Code 2.1 alternates ⠂ and ⠐; any braille pattern
#: counts, so a spinner with more frames still reads as busy. Later versions use ◐◑◒◓.
BUSY_GLYPHS = frozenset("◐◑◒◓")
IDLE_GLYPH = "✳"

#: Hook words as (status, reason).
_WORDS: dict[str, tuple[str, str]] = {
    WORD_WORKING: (WORKING, "turn in progress"),
    WORD_PERMISSION: (WAITING, "permission prompt"),
    WORD_QUESTION: (WAITING, "question"),
    WORD_IDLE: (IDLE, "turn finished"),
    WORD_ERROR: (IDLE, "stopped on an API error"),
    WORD_EXITED: (EXITED, "session ended"),
}


class Signals(NamedTuple):
    """What one poll knows about one agent.

    ``running``: its bottle runs. ``pane``: a tagged pane exists; ``pane_dead`` and
    ``title`` describe it. ``hook``: the status file's reading (None: no file). ``screen``:
    the pane's last lines when the poll captured them (the previewed agent only).
    """

    running: bool
    pane: bool = False
    pane_dead: bool = False
    title: str = ""
    hook: HookReading | None = None
    screen: Sequence[str] | None = None


class Status(NamedTuple):
    """An agent's status, why, and since when (seconds since the epoch; None when the
    signal that decided it does not say). ``detached``: claude runs with no live pane
    showing it (``enter`` re-attaches it)."""

    status: str
    reason: str = ""
    since: float | None = None
    detached: bool = False

    @property
    def label(self) -> str:
        """The status as the table shows it: ``idle detached`` when no pane shows it."""
        return f"{self.status} {DETACHED}" if self.detached else self.status


#: The mark of a status whose claude runs with no pane attached.
DETACHED = "detached"


def title_state(title: str) -> str | None:
    """``WORKING`` or ``IDLE`` from a Claude Code pane title, None when it is not one
    (titles off, cleared on exit, or set by something else)."""
    if not title or (len(title) > 1 and title[1] != " "):
        return None
    glyph = title[0]
    if glyph in BUSY_GLYPHS or "\u2801" <= glyph <= "\u28ff":
        return WORKING
    if glyph == IDLE_GLYPH:
        return IDLE
    return None


#: Screen text that only claude's own UI shows (the fallback; matched case-insensitively).
_SCREEN_WAITING = ("do you want to proceed?", "do you want to make this edit")
_SCREEN_WORKING = ("esc to interrupt",)


def screen_state(lines: Iterable[str]) -> str | None:
    """``WAITING`` or ``WORKING`` from a pane's last lines, None when they say neither."""
    text = "\n".join(lines).lower()
    if any(marker in text for marker in _SCREEN_WAITING):
        return WAITING
    if any(marker in text for marker in _SCREEN_WORKING):
        return WORKING
    return None


def combine(signals: Signals, now: float, lag: float = TITLE_LAG) -> Status:
    """The agent's status from ``signals`` at time ``now`` (see the module docstring)."""
    if not signals.running:
        return Status(EXITED, "bottle not running")
    hook = signals.hook
    word = _WORDS.get(hook.word) if hook is not None else None
    if not signals.pane or signals.pane_dead:
        return _unattached(hook, word)
    title = title_state(signals.title)
    if hook is None or word is None:
        if title == WORKING:
            return Status(WORKING, "busy (title)")
        if title == IDLE:
            return Status(IDLE, "at the prompt (title)")
        screen = screen_state(signals.screen) if signals.screen is not None else None
        if screen is not None:
            return Status(screen, "from the screen")
        if hook is not None:
            return Status(STATUS_UNKNOWN, "status file unreadable")
        return Status(STATUS_UNKNOWN, "no signal" if signals.pane else "no pane")
    status, reason = word
    fresh = now - hook.mtime <= lag
    if title is None or title == status:
        return Status(status, reason, hook.mtime)
    if status == EXITED:
        # A pane whose claude restarted before the new session's first hook.
        return Status(title, "(title)")
    if status == WAITING:
        # Measured (Claude Code 2.1.197): the title shows ✳ while a permission prompt waits,
        # so ✳ cannot tell waiting from an Esc that dismissed the prompt (no hook fires
        # then either): waiting stays until the next hook. A spinner after the prompt
        # means it was answered and claude works on (PostToolUse comes only when the tool
        # has finished).
        if title == WORKING and not fresh:
            return Status(WORKING, "answered, busy (title)")
        return Status(status, reason, hook.mtime)
    if title == IDLE and status == WORKING and not fresh:
        # Esc: no Stop hook fired, and the title has shown ✳ for longer than it lags.
        return Status(IDLE, "interrupted")
    if title == WORKING and status == IDLE and not fresh:
        return Status(WORKING, "busy (title)")
    return Status(status, reason, hook.mtime)


def _unattached(hook: HookReading | None, word: tuple[str, str] | None) -> Status:
    """No live pane shows the agent: the hook word says whether claude still runs."""
    if hook is None:
        return Status(EXITED, "no claude running")
    if word is None:
        return Status(STATUS_UNKNOWN, "status file unreadable", detached=True)
    status, reason = word
    if status == EXITED:
        return Status(EXITED, reason, hook.mtime)
    return Status(status, reason, hook.mtime, detached=True)


def agent_statuses(
    rows: Iterable[Any],
    panes: Mapping[str, Any],
    read_hook: Callable[[str], HookReading | None],
    now: float,
    preview: tuple[str, Sequence[str]] | None = None,
) -> dict[str, Status]:
    """Each row's status (``service.AgentRow``s; ``panes``: ``tmux.PaneInfo`` by agent).

    ``read_hook`` reads an agent's status file (``backends.status_file.read_status``); it is
    called for running bottles only, and an error reading one reads as no file. ``preview``
    is the (agent, lines) the poll captured, the screen-text fallback for that agent.
    """
    statuses: dict[str, Status] = {}
    for row in rows:
        state = getattr(row, "state", "")
        running = state == "running"
        if state in _NOT_RUNNING:
            statuses[row.name] = Status(*_NOT_RUNNING[state])
            continue
        pane = panes.get(row.name)
        try:
            hook = read_hook(row.name) if running else None
        except Exception:  # one agent's status file never stops the others'
            hook = None
        signals = Signals(
            running=running,
            pane=pane is not None,
            pane_dead=bool(pane is not None and pane.dead),
            title=str(getattr(pane, "title", "") or ""),
            hook=hook,
            screen=preview[1] if preview and preview[0] == row.name else None,
        )
        statuses[row.name] = combine(signals, now)
    return statuses


class Change(NamedTuple):
    """One agent whose status changed to ``waiting`` (an alert is due)."""

    agent: str
    reason: str


class StatusTracker:
    """Keeps each agent's status with the time it became so, across polls.

    ``update`` takes this poll's combined statuses and returns them with ``since`` filled
    in (the hook's time when the hook decided, else the first poll that saw the change), and
    the agents that started waiting since the last poll. An agent seen for the first time
    is not a change: the dashboard starting up raises no alerts.
    """

    def __init__(self) -> None:
        self._last: dict[str, Status] = {}

    def update(
        self, statuses: dict[str, Status], now: float
    ) -> tuple[dict[str, Status], list[Change]]:
        tracked: dict[str, Status] = {}
        changes: list[Change] = []
        for agent, status in statuses.items():
            last = self._last.get(agent)
            if last is not None and last.status == status.status:
                since = last.since
            else:
                since = status.since if status.since is not None else now
                if last is not None and last.since is not None and since < last.since:
                    since = now  # an older hook time never predates the last change
                if last is not None and status.status == WAITING:
                    changes.append(Change(agent, status.reason))
            tracked[agent] = status._replace(since=min(since or now, now))
        self._last = tracked
        return tracked, changes
