"""Typed messages that thread workers post to the UI (``post_message`` is thread-safe).

Widgets never call a backend or tmux: workers do the I/O and report with one of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from backends.base import Problem
from bottle_dash.ui.poller import PollResult


@dataclass
class PollDone(Message):
    """One poll finished: every agent, its bottle, its pane and its resource use."""

    result: PollResult


@dataclass
class PreflightDone(Message):
    """Each backend's preflight ran; ``problems`` may be empty."""

    problems: list[Problem]


@dataclass
class ActionProgress(Message):
    """A long action (launch, stop, remove) reports a step."""

    agent: str
    action: str
    step: str


@dataclass
class ImageMissing(Message):
    """An action stopped because the agent's image is not built, and it can be built."""

    agent: str
    action: str
    image: str


@dataclass
class ProbesDone(Message):
    """The escape probes ran on an agent's bottle in the background; ``seal`` is the badge."""

    agent: str
    seal: str


@dataclass
class ActionDone(Message):
    """An action finished; ``error`` is the reason when it failed."""

    agent: str
    action: str
    detail: str = ""
    error: str | None = None
    #: The live pane an attach to an already running bottle left claude in (else "").
    pane_id: str = ""
    #: What the action's worker raised (``error`` says it in one line).
    failure: BaseException | None = None


@dataclass
class LogsLoaded(Message):
    """A bottle's own output, fetched for the logs screen."""

    agent: str
    text: str


@dataclass
class EgressLoaded(Message):
    """An agent's egress log summary, fetched for the egress screen."""

    agent: str
    hosts: list[Any]
    error: str = ""


@dataclass
class RunInForeground(Message):
    """Without tmux: hand the terminal to ``argv`` (claude) until it exits; the handler
    then reports ``action`` done (or failed) for ``agent``."""

    agent: str
    argv: list[str]
    action: str = "attach"


@dataclass
class PreviewCaptured(Message):
    """The last lines of an agent's pane, captured when it was selected."""

    agent: str
    lines: list[str]


@dataclass
class DiffLoaded(Message):
    """An agent's changes, read in its bottle for the diff screen (a ``CopyDiff``)."""

    agent: str
    diff: Any


@dataclass
class WorkerFailed(Message):
    """A worker that is neither a poll nor an agent's action failed (logs, egress, a
    preview): ``name`` is the worker's, ``error`` the reason in one line."""

    name: str
    error: str
