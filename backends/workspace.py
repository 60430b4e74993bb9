"""The workspace check: what an agent may have planted in its bind-mounted workspace that
would run or resolve on the host later, found the way the host would meet it.

- git (``backends.gitscan``): the repository git would read (a ``.git`` directory or
  FILE, ``commondir``, ``config``, ``config.worktree``, includes, submodules under
  ``.git/modules``, nested repositories anywhere in the tree) and every setting that names
  a program, plus executable hooks;
- files with the setuid or setgid bit (a copy of a shell made setuid by a root agent runs
  as root for anyone who reaches the folder on the host) and device files;
- symlinks that lead out of the workspace.

A docker bottle cannot make most of these: the whole ``.git`` is mounted read-only and a
seccomp profile refuses setuid/setgid modes (``backends.docker.seccomp``). This check is
the second line there, and the first on smolmachines (a VM has its own kernel: no host
seccomp; a ``.git`` FILE cannot be mounted there). The first ``up`` records a baseline;
the dashboard, ``ls --json`` (``workspace_warnings``) and the ``workspace-clean`` probe
show what was gained since. When the check meets a setuid/setgid file gained since the
baseline it clears the bits (as the operator, on the host) and keeps a record of it, so
the warning stays after the bits are gone; when it cannot (another owner, a read-only
file system) it says so in the same line. Bounded: ``SCAN_LIMIT`` entries per scan,
``.git/objects`` never walked, ``node_modules`` last.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from backends import paths
from backends.agent_files import WORKSPACE_BASELINE, WORKSPACE_CLEARED
from backends.gitscan import GitScan

BASELINE_FILE = WORKSPACE_BASELINE.path
#: What the check cleared (setuid/setgid bits), kept so its warning outlives the bits.
CLEARED_FILE = WORKSPACE_CLEARED.path
#: Upper bound on directory entries one scan looks at (a huge tree is cut, not walked).
SCAN_LIMIT = 20000
#: Never walked: git's object store (read-only in a bottle, and huge).
SKIP_DIRS = {"objects"}
#: Walked after everything else (a limit reached there costs the rest of the tree less).
LAST_DIRS = {"node_modules"}
SETID = stat.S_ISUID | stat.S_ISGID
#: Records of cleared bits kept at most.
MAX_CLEARED = 200


def _setid_line(rel: str, mode: int) -> str:
    bits = " and ".join(
        name for bit, name in ((stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid")) if mode & bit
    )
    kind = "directory" if stat.S_ISDIR(mode) else "file"
    return f"{bits} {kind} {rel} (mode {stat.S_IMODE(mode):04o})"


def findings(workspace: Path, *, limit: int = SCAN_LIMIT) -> list[str]:
    """Every risky thing in ``workspace`` now, one line each (sorted). Reads only."""
    return sorted(_scan(workspace.resolve(), limit)[0])


def _scan(root: Path, limit: int) -> tuple[set[str], dict[str, str]]:
    """The findings, and the setuid/setgid entries among them (line -> relative path)."""
    git = GitScan(root)
    found = git.found  # one set: git's lines and the walk's
    setid: dict[str, str] = {}
    seen = 0
    pending = [root]
    deferred: list[Path] = []
    while pending or deferred:
        folder = pending.pop() if pending else deferred.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        try:
            parent_setgid = bool(os.lstat(folder).st_mode & stat.S_ISGID)
        except OSError:
            parent_setgid = False
        for entry in entries:
            seen += 1
            if seen > limit:
                found.add(f"the check stopped after {limit} entries: the rest is not checked")
                return found, setid
            path = Path(entry.path)
            rel = str(path.relative_to(root))
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if entry.name == ".git":
                git.dot_git(path)
            if stat.S_ISLNK(mode):
                target = Path(os.path.realpath(path))
                if target != root and root not in target.parents:
                    found.add(f"symlink {rel} leaves the workspace ({target})")
                continue
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                kind = "character" if stat.S_ISCHR(mode) else "block"
                found.add(f"{kind} device file {rel}: remove it")
            # A directory's setgid bit passed down from its parent is the kernel's, not a
            # mode anyone chose (a group-shared folder): only a chosen one is flagged.
            inherited = stat.S_ISDIR(mode) and parent_setgid and not (mode & stat.S_ISUID)
            if mode & SETID and not inherited:
                line = _setid_line(rel, mode)
                found.add(line)
                setid[line] = rel
            if stat.S_ISDIR(mode) and entry.name not in SKIP_DIRS:
                (deferred if entry.name in LAST_DIRS else pending).append(path)
    return found, setid


def _baseline_file(agent: str) -> Path:
    return paths.agent_state_dir(agent) / BASELINE_FILE


def _cleared_file(agent: str) -> Path:
    return paths.agent_state_dir(agent) / CLEARED_FILE


def record_baseline(agent: str, workspace: Path) -> None:
    """Record what ``workspace`` holds now, once (the first ``up``); later calls keep it."""
    file = _baseline_file(agent)
    if file.exists():
        return
    paths.write_private(file, json.dumps(findings(workspace)).encode())


def _read_list(file: Path) -> list[str]:
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def clear_setid(root: Path, rel: str, line: str) -> str:
    """Clear the setuid/setgid bits of ``rel`` under ``root`` and return ``line`` saying
    what happened. The entry is opened without following a symlink (``O_PATH``) and
    changed through that handle, so an agent that swaps it for a symlink meanwhile cannot
    aim the change at a host file."""
    try:
        fd = os.open(root / rel, os.O_PATH | os.O_NOFOLLOW)
    except OSError as exc:
        return f"{line}: could not clear the bits ({exc.strerror}): remove it"
    try:
        now = os.fstat(fd).st_mode
        if stat.S_ISLNK(now):
            return f"{line}: now a symlink, left alone: look at it"
        os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(now) & ~SETID)
    except OSError as exc:
        return f"{line}: could not clear the bits ({exc.strerror}): remove it"
    finally:
        os.close(fd)
    return f"{line}: bits cleared by bottle-dash"


def gained(agent: str, workspace: Path) -> list[str]:
    """What ``workspace`` holds now that it did not at the first ``up`` (everything when
    there is no baseline), with setuid/setgid bits gained since cleared on the way (and
    the record of every earlier clearing)."""
    before = set(_read_list(_baseline_file(agent)))
    root = workspace.resolve()
    found, setid = _scan(root, SCAN_LIMIT)
    new = [f for f in sorted(found) if f not in before]
    cleared = _read_list(_cleared_file(agent))
    done = [clear_setid(root, setid[line], line) for line in new if line in setid]
    if done:
        cleared = (cleared + [d for d in done if d not in cleared])[-MAX_CLEARED:]
        paths.write_private(_cleared_file(agent), json.dumps(cleared).encode())
    rest = [f for f in new if f not in setid]
    return sorted(set(rest) | set(cleared))


def forget(agent: str, marker: str) -> None:
    """Drop the records of cleared bits whose line holds ``marker`` (the probes' own
    files, once they are gone)."""
    file = _cleared_file(agent)
    cleared = _read_list(file)
    kept = [line for line in cleared if marker not in line]
    if kept != cleared:
        paths.write_private(file, json.dumps(kept).encode())
