"""Where agents' panes go on the host tmux: one on the stage, the others parked.

Twelve panes split beside the dashboard left each a few lines high, so the dashboard's
window holds the dashboard and at most ONE agent pane (the stage, on the right). Every
other agent pane is parked, one window each named after its agent, in the detached
session ``PARKING`` on the same tmux server, where claude keeps running at a full
window's size. ``enter`` on a parked agent swaps its pane with the staged one
(``swap-pane``: one tmux call, both claudes keep running); a new agent's pane is split
on the stage after the staged one is parked (``break-pane``). Panes the operator moved
to a window of their own are left where they are (focused there, never moved).

This module only builds the tmux command sequences from a reading of the panes
(``Spot``), so the decisions are tested without tmux; ``bottle_dash.tmux`` runs them, and
a real-tmux test holds 20 agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

#: The detached session where parked agent panes wait, one window per agent.
PARKING = "bottle-dash-parked"
#: The window a new parking session starts with, killed once a pane is parked beside it.
_PLACEHOLDER = "_bottle-dash-placeholder"
#: How to get back to the dashboard from an agent pane (``#{prefix}`` is the operator's
#: tmux prefix key, ``C-b`` unless they changed it): the footer and the README say it too.
BACK_HINT = "#{prefix} ; dashboard · #{prefix} z zoom"
#: The border above each pane of the dashboard's window: the agent's name (claude sets the
#: pane *title*, with its spinner and terminal queries, so the title cannot carry the name)
#: and the way back; ``bottle-dash`` above the dashboard.
BORDER_FORMAT = f"#{{?@bottle-agent, #{{@bottle-agent}} · {BACK_HINT} , bottle-dash }}"

#: ``list-panes -a`` format for ``read_spots`` (the pane's tag is ``tmux.TAG``).
SPOT_FORMAT = "#{pane_id}\t#{@bottle-agent}\t#{window_id}\t#{session_name}"


class Spot(NamedTuple):
    """Where one pane is: its id, its agent (``""``: not an agent's), window, session."""

    pane_id: str
    agent: str
    window_id: str
    session: str


def read_spots(lines: Sequence[str]) -> list[Spot]:
    """Parse ``list-panes -a -F SPOT_FORMAT`` output (malformed lines are skipped)."""
    spots = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 4:
            spots.append(Spot(*parts))
    return spots


def _find(spots: Sequence[Spot], pane_id: str) -> Spot | None:
    return next((s for s in spots if s.pane_id == pane_id), None)


def staged(spots: Sequence[Spot], dashboard_pane: str) -> list[Spot]:
    """Agent panes in the dashboard's window (normally one: the stage)."""
    dash = _find(spots, dashboard_pane)
    if dash is None:
        return []
    return [s for s in spots if s.window_id == dash.window_id and s.agent and s != dash]


def park(spot: Spot, spots: Sequence[Spot]) -> list[str]:
    """Commands that move ``spot``'s pane to a window of its own in ``PARKING``, creating
    the session when it is not there (``destroy-unattached`` off: it has no client)."""
    move = ["break-pane", "-d", "-s", spot.pane_id, "-t", f"{PARKING}:", "-n", spot.agent]
    if any(s.session == PARKING for s in spots):
        return move
    return [
        "new-session", "-d", "-s", PARKING, "-n", _PLACEHOLDER, "cat",
        ";", "set-option", "-t", PARKING, "destroy-unattached", "off",
        ";", *move,
        ";", "kill-window", "-t", f"{PARKING}:{_PLACEHOLDER}",
    ]  # fmt: skip


def _then(sequence: list[str], more: list[str]) -> list[str]:
    return [*sequence, ";", *more] if sequence else list(more)


def _main_layout(dashboard_pane: str) -> list[str]:
    # main-vertical keeps the first pane (the dashboard) large on the left. Last in the
    # sequence: a tmux that refuses the percentage (< 3.1) fails only this part.
    return [
        "set-option", "-w", "-t", dashboard_pane, "pane-border-status", "top",
        ";", "set-option", "-w", "-t", dashboard_pane, "pane-border-format", BORDER_FORMAT,
        ";", "set-option", "-w", "-t", dashboard_pane, "main-pane-width", "50%",
        ";", "select-layout", "-t", dashboard_pane, "main-vertical",
    ]  # fmt: skip


def park_staged(spots: Sequence[Spot], dashboard_pane: str, keep: str = "") -> list[str]:
    """Commands parking every staged agent pane but ``keep`` (the parking session made
    once); [] when there is none."""
    sequence: list[str] = []
    known = list(spots)
    for spot in staged(spots, dashboard_pane):
        if spot.pane_id == keep:
            continue
        sequence = _then(sequence, park(spot, known))
        known.append(Spot("", "", "", PARKING))  # the session exists from here on
    return sequence


def split_on_stage(
    spots: Sequence[Spot], dashboard_pane: str, split: list[str], options: list[str]
) -> list[str]:
    """Park what is staged, then ``split`` (a ``split-window -P`` from the dashboard's
    pane, printing the new pane's id), then ``options`` on the new pane, then the layout.

    The split prints the only output of the sequence, which is how the caller reads the
    new pane's id."""
    sequence = park_staged(spots, dashboard_pane)
    sequence = _then(sequence, split)
    if options:
        sequence = _then(sequence, options)
    return _then(sequence, _main_layout(dashboard_pane))


def bring(spots: Sequence[Spot], dashboard_pane: str, pane_id: str) -> list[str]:
    """Commands that show ``pane_id`` and give it the focus.

    Staged already: select it (parking any other staged pane). Parked: swap it with the
    staged pane (which takes its parking window, renamed after its agent), or join it
    beside the dashboard when nothing is staged. Anywhere else (the operator put it
    there): select its window and the pane, as before."""
    spot = _find(spots, pane_id)
    dash = _find(spots, dashboard_pane)
    select = ["select-window", "-t", pane_id, ";", "select-pane", "-t", pane_id]
    if spot is None or dash is None:
        return select
    if spot.window_id == dash.window_id:
        return _then(park_staged(spots, dashboard_pane, keep=pane_id), select)
    if spot.session != PARKING:
        return select
    stage = staged(spots, dashboard_pane)
    if stage:
        first, rest = stage[0], stage[1:]
        # swap-pane moves panes, not ids: after it, first.pane_id is in spot's window.
        sequence = [
            "swap-pane", "-d", "-s", pane_id, "-t", first.pane_id,
            ";", "rename-window", "-t", first.pane_id, first.agent,
        ]  # fmt: skip
        for other in rest:
            sequence = _then(sequence, park(other, spots))
    else:
        sequence = ["join-pane", "-h", "-d", "-s", pane_id, "-t", dashboard_pane]
        sequence = _then(sequence, _main_layout(dashboard_pane))
    return _then(sequence, select)
