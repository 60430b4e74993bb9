"""What an agent changed in its copy, file by file: committed (``base..HEAD``), uncommitted
(the work tree against HEAD) and untracked files, each with its +/- counts and patch.

The scripts run in the bottle (``BottleBackend.read_copy``), never on the host; their
output is the agent's to forge, so it is parsed here as hostile text, bounded
(``MAX_BYTES`` per part). External diff programs and textconv are switched off on the
command line so the output stays git's own format (the copy's config may name them).
"""

from __future__ import annotations

import shlex
from typing import NamedTuple

#: Upper bound on the bytes of one part's patch kept (the rest is cut, and said).
MAX_BYTES = 4 * 1024 * 1024
#: Upper bound on the files listed per part.
MAX_FILES = 5000
COMMITTED = "committed"
UNCOMMITTED = "uncommitted"
UNTRACKED = "untracked"

_DIFF = "git -c core.quotePath=false diff --no-ext-diff --no-textconv --no-color --no-renames"


def numstat_script(base_oid: str) -> str:
    """``sh`` printing the committed numstat (NUL-separated), a NUL-NUL line, the
    uncommitted one, a NUL-NUL line, then the untracked files (NUL-separated)."""
    base = shlex.quote(base_oid)
    return (
        "cd /workspace 2>/dev/null || exit 3\nexport GIT_OPTIONAL_LOCKS=0\n"
        f"{_DIFF} --numstat -z {base} HEAD -- | head -c {MAX_BYTES}\nprintf '\\0\\0'\n"
        f"{_DIFF} --numstat -z HEAD -- | head -c {MAX_BYTES}\nprintf '\\0\\0'\n"
        f"git ls-files -z --others --exclude-standard | head -c {MAX_BYTES}\n"
    )


def patch_script(base_oid: str, part: str) -> str:
    """``sh`` printing the patch of ``part`` (committed or uncommitted), bounded."""
    rev = f"{shlex.quote(base_oid)} HEAD" if part == COMMITTED else "HEAD"
    return (
        "cd /workspace 2>/dev/null || exit 3\nexport GIT_OPTIONAL_LOCKS=0\n"
        f"{_DIFF} {rev} -- | head -c {MAX_BYTES}\n"
    )


class FileChange(NamedTuple):
    """One changed file of one part."""

    part: str
    path: str
    insertions: int
    deletions: int
    binary: bool = False

    def to_dict(self) -> dict[str, object]:
        return self._asdict()


def _count(text: str) -> int:
    return min(int(text), 10**9) if text.isdigit() else 0


def parse_numstat(out: str) -> list[FileChange]:
    """The files of ``numstat_script``'s output."""
    parts = out.split("\0\0", 2)
    parts += [""] * (3 - len(parts))
    files: list[FileChange] = []
    for part, text in ((COMMITTED, parts[0]), (UNCOMMITTED, parts[1])):
        for entry in [e for e in text.split("\0") if e][:MAX_FILES]:
            fields = entry.split("\t", 2)
            if len(fields) != 3:
                continue
            added, removed, path = fields
            binary = added == "-" and removed == "-"
            files.append(FileChange(part, path[:4096], _count(added), _count(removed), binary))
    for path in [p for p in parts[2].split("\0") if p][:MAX_FILES]:
        files.append(FileChange(UNTRACKED, path[:4096], 0, 0))
    return files


def split_patch(patch: str) -> list[str]:
    """A part's patch cut into one chunk per file, in git's order (the numstat's): a line
    that starts with ``diff --git `` can only be a file's header, since every line of a
    file's content in a patch starts with ``+``, ``-``, `` `` or ``\\``."""
    chunks: list[str] = []
    current: list[str] = []
    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git ") and current:
            chunks.append("".join(current))
            current = []
        current.append(line)
    if current:
        chunks.append("".join(current))
    return chunks


def patches_by_file(files: list[FileChange], part: str, patch: str) -> dict[str, str]:
    """``path -> patch`` for ``part``'s files (matched in order; an unmatched file has none)."""
    mine = [f for f in files if f.part == part]
    chunks = split_patch(patch)
    return {f.path: chunk for f, chunk in zip(mine, chunks, strict=False)}
