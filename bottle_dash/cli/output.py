"""What the commands print: lines on stdout, ``error:`` + ``fix:`` on stderr, progress
steps, and the one table printer every command that prints a table uses."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from bottle_dash.cli.context import PROG


def say(message: str, stream: TextIO | None = None) -> None:
    """Print one line (stdout unless ``stream``), flushed at once."""
    print(message, file=stream or sys.stdout, flush=True)


def error(message: str, fix: str | None = None) -> None:
    """``bottle-dash: error: <message>`` and ``fix: <fix>`` on stderr. A message's further
    lines are indented under it; a ``fix:`` line in it is the fix when none is given."""
    lines = message.strip().splitlines() or ["failed"]
    text = f"{PROG}: error: {lines[0]}"
    for extra in lines[1:]:
        extra = extra.strip()
        if extra.startswith("fix:") and not fix:
            fix = extra[4:].strip()
        elif extra:
            text += f"\n  {extra}"
    if fix:
        text += f"\nfix: {fix}"
    print(text, file=sys.stderr, flush=True)


def progress(step: str) -> None:
    """One step of a long operation (launch, image build), indented, on stdout."""
    say(f"  {step}")


def progress_err(step: str) -> None:
    """``progress`` on stderr: for attach, whose stdout belongs to claude."""
    say(f"  {step}", sys.stderr)


def print_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """``header`` and ``rows`` in columns as wide as their widest cell, two spaces apart,
    without trailing blanks."""
    table = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def is_tty() -> bool:
    """Whether stdin and stdout are a terminal (claude and commands then get one too)."""
    return sys.stdin.isatty() and sys.stdout.isatty()
