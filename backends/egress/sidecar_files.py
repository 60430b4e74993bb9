"""The files the egress sidecar keeps in the agent's egress folder (mounted at
``policy.SIDECAR_DIR``): the policy and credential, read again only when they change; the
egress log, rotated at its limit; the status word the bottle's hooks send.

Stdlib only: it runs in the sidecar beside ``addon.py`` (imported there as the top-level
module ``sidecar_files``), and on the host in tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

try:  # on the host: a module of the package backends.egress
    from backends.egress import policy
except ImportError:  # in the sidecar: beside policy.py, imported as a top-level module
    import policy  # type: ignore[no-redef]


class CachedFile:
    """A file read again only when its mtime or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp: tuple[int, int] | None = None
        self.text = ""

    def read(self) -> str:
        """The file's text, stripped ("" when there is no such file)."""
        try:
            st = self.path.stat()
        except OSError:
            self.stamp, self.text = None, ""
            return ""
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self.stamp:
            self.text = self.path.read_text(encoding="utf-8").strip()
            self.stamp = stamp
        return self.text


class RotatedLog:
    """The egress log: appended line by line, rotated at ``policy.LOG_MAX_BYTES`` into
    ``egress.log.1`` (one older generation), so it never holds more than twice that.
    ``header``, when given, makes the first line of each file a rotation starts (the usage
    log's carry line)."""

    def __init__(
        self,
        path: Path,
        limit: int = policy.LOG_MAX_BYTES,
        header: Callable[[], str] | None = None,
    ) -> None:
        self.path = path
        self.limit = limit
        self.header = header
        self.fd: int | None = None
        self.size = 0

    def write(self, line: str) -> None:
        """Append ``line``; rotate first when it would take the file past ``limit``."""
        data = line.encode() + b"\n"
        if self.fd is None:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self.size = os.fstat(self.fd).st_size
        if self.size + len(data) > self.limit and self.size:
            os.close(self.fd)
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self.size = 0
            if self.header is not None:
                first = self.header().encode() + b"\n"
                os.write(self.fd, first)
                self.size += len(first)
        os.write(self.fd, data)
        self.size += len(data)


def read_lines(path: Path) -> list[str]:
    """The lines of a log and of its older file before them ([] for files not there)."""
    lines: list[str] = []
    for file in (path.with_name(path.name + ".1"), path):
        try:
            lines += file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
    return lines


def read_text(path: str) -> str:
    """The text of ``path`` ("" when it cannot be read): the sidecar's /proc files."""
    try:
        return Path(path).read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def keep_status(directory: Path, word: str) -> bool:
    """Keep a status hook's ``word`` in ``directory``'s ``policy.STATUS_FILE`` (one word,
    replaced whole by a rename: the host never reads half a word); False when the folder
    cannot take it."""
    tmp = directory / f".{policy.STATUS_FILE}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, word.encode() + b"\n")
        finally:
            os.close(fd)
        os.replace(tmp, directory / policy.STATUS_FILE)
    except OSError:
        return False
    return True
