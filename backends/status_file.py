"""Read the word an agent's status hooks sent, without a subprocess and without trusting it.

A sealed bottle's hooks send their word to its egress sidecar, which keeps the last one
in the agent's egress folder (``egress/status``: one word, written by the sidecar, never
by the bottle). An unsealed bottle's hooks write it into the status directory mounted
into the bottle (``status/state``), so that file is hostile input: it may be a symlink, a
FIFO, a device, a huge file or arbitrary bytes. The reader treats both alike: it refuses
anything but a regular file of at most ``MAX_BYTES`` holding one of
``claude.STATUS_WORDS``, and of the two files takes the newer.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NamedTuple

from backends import paths
from backends.agent_files import EGRESS, EGRESS_STATUS, STATUS
from backends.claude import STATUS_FILE, STATUS_WORDS

#: The sidecar's copy of a sealed bottle's word, in the egress folder.
RELAYED_FILE = EGRESS_STATUS.name
#: Longest status file read; a word is a few bytes.
MAX_BYTES = 64
#: What a file that is there but not one of the words reads as.
UNREADABLE = "?"


class HookReading(NamedTuple):
    """What the status file said: one of ``STATUS_WORDS`` or ``UNREADABLE``, and when it
    was written (its mtime, seconds since the epoch)."""

    word: str
    mtime: float


def read_status_file(path: Path | str) -> HookReading | None:
    """The word in ``path``; None when there is no such file (or directory).

    Opens with ``O_NOFOLLOW | O_NONBLOCK`` (a symlink fails, a FIFO does not block), after
    an ``lstat`` that keeps devices and FIFOs from being opened at all, and checks the open
    file again with ``fstat`` (it may have been swapped in between). Anything but a regular
    file of at most ``MAX_BYTES`` holding a known word reads as ``UNREADABLE``.
    """
    try:
        before = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return HookReading(UNREADABLE, 0.0)
    if not stat.S_ISREG(before.st_mode):
        return HookReading(UNREADABLE, before.st_mtime)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None  # replaced between lstat and open, and gone: like never there
    except OSError:
        return HookReading(UNREADABLE, before.st_mtime)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            return HookReading(UNREADABLE, info.st_mtime)
        data = os.read(fd, MAX_BYTES + 1)
    except OSError:
        return HookReading(UNREADABLE, before.st_mtime)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        return HookReading(UNREADABLE, info.st_mtime)
    word = data.decode("ascii", errors="replace").strip()
    return HookReading(word if word in STATUS_WORDS else UNREADABLE, info.st_mtime)


def status_file(agent: str) -> str:
    """The path of ``agent``'s status file in its mounted status directory (an unsealed
    bottle's; ``paths.status_dir``), remembered."""
    return paths.agent_file(agent, STATUS.path, STATUS_FILE)


def relayed_status_file(agent: str) -> str:
    """The path of the status word a sealed bottle's sidecar keeps, remembered."""
    return paths.agent_file(agent, EGRESS.path, RELAYED_FILE)


def read_status(agent: str) -> HookReading | None:
    """What ``agent``'s hooks last said (see ``read_status_file``): the newer of the
    sidecar's word and the mounted status file's."""
    relayed = read_status_file(relayed_status_file(agent))
    mounted = read_status_file(status_file(agent))
    if relayed is None or mounted is None:
        return relayed or mounted
    return relayed if relayed.mtime >= mounted.mtime else mounted


def forget_status(agent: str) -> None:
    """Remove what ``agent``'s hooks last said: its bottle was just started or launched,
    so no claude runs in it yet and an old word (``idle`` of a claude the stop ended)
    would read as a claude running detached. Never raises: a file another user owns
    stays, and the next hook replaces it."""
    import contextlib

    for path in (relayed_status_file(agent), status_file(agent)):
        with contextlib.suppress(OSError):
            os.unlink(path)
