"""The status combiner (bottle_dash.status): every signal mix the issue measured."""

from __future__ import annotations

import pytest

from backends.status_file import UNREADABLE, HookReading
from bottle_dash.status import (
    EXITED,
    IDLE,
    STATUS_UNKNOWN,
    TITLE_LAG,
    WAITING,
    WORKING,
    Signals,
    Status,
    StatusTracker,
    combine,
    screen_state,
    title_state,
)

NOW = 1_000_000.0
BUSY_21 = "\u2802 Claude Code"  # ⠂, Claude Code 2.1
BUSY_21B = "\u2810 Claude Code"  # ⠐, the other frame
IDLE_T = "\u2733 Claude Code"  # ✳


def hook(word: str, age: float) -> HookReading:
    return HookReading(word, NOW - age)


OLD = TITLE_LAG + 5  # a hook written well before the title changed
NEW = 0.5  # a hook written within the title's lag


def live(title: str = "", h: HookReading | None = None, screen: list[str] | None = None) -> Signals:
    return Signals(running=True, pane=True, pane_dead=False, title=title, hook=h, screen=screen)


CASES = [
    # (case, signals, status, reason substring)
    ("bottle stopped", Signals(running=False), EXITED, "bottle"),
    ("pane dead, claude still working: detached",
     Signals(True, True, True, BUSY_21, hook("working", NEW)), WORKING, "turn"),
    ("pane dead, claude ended", Signals(True, True, True, "", hook("exited", NEW)),
     EXITED, "ended"),
    ("working: hook and title agree", live(BUSY_21, hook("working", OLD)), WORKING, "turn"),
    ("working: the other braille frame", live(BUSY_21B, hook("working", OLD)), WORKING, ""),
    ("Esc-interrupt: no Stop, title idle for longer than the lag",
     live(IDLE_T, hook("working", OLD)), IDLE, "interrupted"),
    # Measured with 2.1.197: the prompt shows ✳, so ✳ cannot tell it from an Esc on it.
    ("permission prompt: the title shows \u2733", live(IDLE_T, hook("permission", OLD)),
     WAITING, "permission"),
    ("question: the title shows \u2733", live(IDLE_T, hook("question", OLD)), WAITING, "question"),
    ("title lagging a UserPromptSubmit hook", live(IDLE_T, hook("working", NEW)), WORKING, ""),
    ("title lagging a Stop hook", live(BUSY_21, hook("idle", NEW)), IDLE, "turn finished"),
    ("stale idle hook, busy title", live(BUSY_21, hook("idle", OLD)), WORKING, "title"),
    ("permission answered: the spinner is back", live(BUSY_21, hook("permission", OLD)),
     WORKING, "answered"),
    ("title lagging a PermissionRequest hook", live(BUSY_21, hook("permission", NEW)),
     WAITING, "permission"),
    ("question", live(BUSY_21, hook("question", NEW)), WAITING, "question"),
    ("StopFailure", live(IDLE_T, hook("error", OLD)), IDLE, "API error"),
    ("titles off: the hook alone", live("", hook("working", OLD)), WORKING, ""),
    ("titles off, waiting", live("", hook("permission", OLD)), WAITING, ""),
    ("newer spinner glyphs", live("\u25d0 fix tests", hook("working", OLD)), WORKING, ""),
    ("newer spinner, no hook", live("\u25d3 fix tests"), WORKING, "title"),
    ("pre-feature bottle, title only: busy", live(BUSY_21), WORKING, "title"),
    ("pre-feature bottle, title only: idle", live(IDLE_T), IDLE, "title"),
    ("a title that is not claude's", live("bash", hook("idle", OLD)), IDLE, "turn finished"),
    ("nothing at all", live(""), STATUS_UNKNOWN, "no signal"),
    (
        "garbage in the status file",
        live("", HookReading(UNREADABLE, NOW)),
        STATUS_UNKNOWN,
        "unreadable",
    ),
    ("garbage file, the title decides", live(BUSY_21, HookReading(UNREADABLE, NOW)), WORKING, ""),
    ("session ended, pane respawned", live(IDLE_T, hook("exited", OLD)), IDLE, "title"),
    ("session ended, foreground attach", Signals(True, hook=hook("exited", OLD)), EXITED, "ended"),
    ("no pane: the hook (a foreground attach)", Signals(True, hook=hook("working", OLD)),
     WORKING, ""),
    ("no pane, no hook: no claude since the bottle started", Signals(True), EXITED,
     "no claude"),
    ("screen fallback: a permission dialog",
     live("", None, ["Bash command", " Do you want to proceed?", " > 1. Yes"]), WAITING, "screen"),
    ("screen fallback: working", live("", None, ["* Thinking… (esc to interrupt)"]), WORKING, ""),
    ("screen is not read when the title says", live(IDLE_T, None, ["Do you want to proceed?"]),
     IDLE, ""),
]  # fmt: skip


@pytest.mark.parametrize(("signals", "status", "reason"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_combine(signals: Signals, status: str, reason: str) -> None:
    got = combine(signals, NOW)
    assert got.status == status
    assert reason in got.reason


@pytest.mark.parametrize(
    ("signals", "detached", "label"),
    [
        (Signals(True, hook=hook("working", OLD)), True, "working detached"),
        (Signals(True, True, True, IDLE_T, hook("idle", OLD)), True, "idle detached"),
        (Signals(True, True, True, "", hook("permission", OLD)), True, "waiting detached"),
        (Signals(True, hook=hook("exited", OLD)), False, "exited"),
        (Signals(True), False, "exited"),
        (live(BUSY_21, hook("working", OLD)), False, "working"),
        (Signals(False, hook=hook("working", OLD)), False, "exited"),
    ],
)
def test_claude_without_a_live_pane_is_detached(
    signals: Signals, detached: bool, label: str
) -> None:
    got = combine(signals, NOW)
    assert got.detached is detached
    assert got.label == label


def test_a_detached_agent_that_starts_waiting_still_alerts() -> None:
    tracker = StatusTracker()
    tracker.update({"web": combine(Signals(True, hook=hook("working", OLD)), NOW)}, NOW)
    tracked, changes = tracker.update(
        {"web": combine(Signals(True, hook=hook("permission", NEW)), NOW)}, NOW
    )
    assert [c.agent for c in changes] == ["web"]
    assert tracked["web"].detached


def test_hook_decided_status_carries_the_hook_time() -> None:
    assert combine(live(BUSY_21, hook("working", 7)), NOW).since == NOW - 7
    assert combine(live(IDLE_T, hook("working", OLD)), NOW).since is None  # the title decided


@pytest.mark.parametrize(
    ("title", "state"),
    [
        ("\u2802 x", WORKING), ("\u2810 x", WORKING), ("\u28ff", WORKING), ("\u25d1 x", WORKING),
        ("\u2733 x", IDLE), ("\u2733", IDLE), ("", None), ("x", None), ("\u2733x", None),
        ("bottle-web", None), ("[\u2733] x", None),
    ],
)  # fmt: skip
def test_title_state(title: str, state: str | None) -> None:
    assert title_state(title) == state


def test_screen_state_needs_claude_words() -> None:
    assert screen_state(["$ ls", "README.md"]) is None
    assert screen_state(["DO YOU WANT TO PROCEED?"]) == WAITING


def test_tracker_since_and_one_alert_per_change() -> None:
    tracker = StatusTracker()
    seen, changes = tracker.update({"a": Status(WAITING, "permission prompt", NOW - 60)}, NOW)
    assert seen["a"].since == NOW - 60
    assert changes == []  # first sight: the dashboard starting raises no alert
    seen, changes = tracker.update({"a": Status(WORKING, "working", None)}, NOW + 1)
    assert seen["a"].since == NOW + 1 and changes == []
    seen, changes = tracker.update({"a": Status(WAITING, "question", NOW + 1.5)}, NOW + 2)
    assert [(c.agent, c.reason) for c in changes] == [("a", "question")]
    assert seen["a"].since == NOW + 1.5
    # Still waiting (a Notification rewrote the file): no second alert, same since.
    seen, changes = tracker.update({"a": Status(WAITING, "permission prompt", NOW + 6)}, NOW + 7)
    assert changes == [] and seen["a"].since == NOW + 1.5


def test_tracker_never_dates_a_change_before_the_last_one() -> None:
    tracker = StatusTracker()
    tracker.update({"a": Status(WORKING, "working", NOW - 100)}, NOW)
    tracker.update({"a": Status(IDLE, "interrupted", None)}, NOW + 10)
    # The title goes busy again while the file still holds the old "working".
    seen, _ = tracker.update({"a": Status(WORKING, "working", NOW - 100)}, NOW + 20)
    assert seen["a"].since == NOW + 20


def test_tracker_forgets_agents_that_left() -> None:
    tracker = StatusTracker()
    tracker.update({"a": Status(WORKING)}, NOW)
    tracker.update({}, NOW + 1)
    _, changes = tracker.update({"a": Status(WAITING)}, NOW + 2)
    assert changes == []
