"""bottle_dash.layout: the tmux command sequences that keep one agent pane on the stage.

The sequences are run against a real tmux in tests/integration/test_tmux_layout.py; here
each decision (park, swap, join, leave alone) is checked on its own.
"""

from __future__ import annotations

from bottle_dash.layout import PARKING, Spot, bring, park_staged, read_spots, split_on_stage

DASH = Spot("%0", "", "@0", "work")


def commands(sequence: list[str]) -> list[list[str]]:
    """The sequence split at its ``;`` separators."""
    out: list[list[str]] = [[]]
    for word in sequence:
        if word == ";":
            out.append([])
        else:
            out[-1].append(word)
    return out


def names(sequence: list[str]) -> list[str]:
    return [c[0] for c in commands(sequence)]


def test_read_spots_skips_malformed_lines() -> None:
    lines = ["%0\t\t@0\twork", "%1\talpha\t@0\twork", "garbage", "%2\tbeta\t@3"]
    assert read_spots(lines) == [DASH, Spot("%1", "alpha", "@0", "work")]


def test_first_split_parks_nothing() -> None:
    seq = split_on_stage([DASH], "%0", ["split-window", "-h"], ["set-option", "x"])
    assert names(seq) == ["split-window", "set-option", *["set-option"] * 3, "select-layout"]


def test_split_parks_the_staged_pane_creating_the_parking_session_once() -> None:
    staged = Spot("%1", "alpha", "@0", "work")
    seq = split_on_stage([DASH, staged], "%0", ["split-window"], [])
    assert names(seq)[:4] == ["new-session", "set-option", "break-pane", "kill-window"]
    assert commands(seq)[2] == ["break-pane", "-d", "-s", "%1", "-t", f"{PARKING}:", "-n", "alpha"]
    parked = Spot("%2", "beta", "@5", PARKING)
    seq = split_on_stage([DASH, staged, parked], "%0", ["split-window"], [])
    assert names(seq)[0] == "break-pane" and "new-session" not in names(seq)


def test_bring_a_parked_pane_swaps_it_with_the_staged_one() -> None:
    staged = Spot("%1", "alpha", "@0", "work")
    parked = Spot("%2", "beta", "@5", PARKING)
    seq = commands(bring([DASH, staged, parked], "%0", "%2"))
    assert seq[0] == ["swap-pane", "-d", "-s", "%2", "-t", "%1"]
    assert seq[1] == ["rename-window", "-t", "%1", "alpha"]  # alpha now lives in @5
    assert seq[-1] == ["select-pane", "-t", "%2"]


def test_bring_a_parked_pane_with_an_empty_stage_joins_it() -> None:
    parked = Spot("%2", "beta", "@5", PARKING)
    seq = commands(bring([DASH, parked], "%0", "%2"))
    assert seq[0] == ["join-pane", "-h", "-d", "-s", "%2", "-t", "%0"]
    assert seq[-1] == ["select-pane", "-t", "%2"]


def test_bring_a_staged_pane_parks_the_others_of_an_old_layout() -> None:
    # Before the stage, every agent pane was split beside the dashboard.
    old = [DASH, *(Spot(f"%{i}", f"a{i}", "@0", "work") for i in range(1, 5))]
    seq = commands(bring(old, "%0", "%3"))
    parked = [c[3] for c in seq if c[0] == "break-pane"]
    assert parked == ["%1", "%2", "%4"]
    assert sum(c[0] == "new-session" for c in seq) == 1


def test_a_pane_the_operator_moved_elsewhere_is_only_selected() -> None:
    mine = Spot("%7", "gamma", "@9", "operators-own")
    seq = bring([DASH, mine], "%0", "%7")
    assert names(seq) == ["select-window", "select-pane"]


def test_park_staged_keeps_the_named_pane() -> None:
    a, b = Spot("%1", "a", "@0", "work"), Spot("%2", "b", "@0", "work")
    parked = [
        c[3] for c in commands(park_staged([DASH, a, b], "%0", keep="%2")) if c[0] == "break-pane"
    ]
    assert parked == ["%1"]
    assert "%2" not in park_staged([DASH, a, b], "%0", keep="%2")
    assert park_staged([DASH], "%0") == []
