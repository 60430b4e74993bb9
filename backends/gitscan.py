"""What git on the host would read in a workspace, and what of it names a program git
would run: the workspace check's git half (``backends.workspace`` walks the tree).

git finds its repository through a ``.git`` directory or a ``.git`` FILE (``gitdir: …``,
worktrees and submodules), then reads ``commondir`` (the shared part of a linked
worktree), ``config``, ``config.worktree``, every ``include.path`` and
``includeIf.<cond>.path`` (relative to the including file), submodules' repositories
under ``modules/``, and runs hooks from ``hooks/`` or wherever ``core.hooksPath`` points.
Each of those an agent can plant (or point elsewhere) is read here, bounded: a file is
read only when it is a regular file inside the workspace, at most ``MAX_FILE`` bytes, and
includes are followed ``MAX_INCLUDE_DEPTH`` deep. A path that leads out of the workspace is
reported, never followed.

Each finding is one line naming the file (relative to the workspace) and the key.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from backends import gitconfig

#: Bytes read of one config, ``.git`` file or ``commondir`` at most.
MAX_FILE = 256 * 1024
#: How deep ``include.path`` chains are followed (git's own limit is 10).
MAX_INCLUDE_DEPTH = 10
#: Repositories under ``.git/modules`` looked at, at most (nested submodules included).
MAX_MODULES = 200
#: Settings whose value is a program git runs (or a folder of them), by section. A name
#: of ``*`` stands for a variable under any subsection (``filter.<driver>.clean``).
COMMAND_KEYS: dict[str, tuple[str, ...]] = {
    "core": (
        "fsmonitor",
        "hookspath",
        "sshcommand",
        "pager",
        "editor",
        "askpass",
        "gitproxy",
        "alternaterefscommand",
    ),
    "sequence": ("editor",),
    "gpg": ("program",),
    "credential": ("helper",),
    "filter": ("clean", "smudge", "process"),
    "diff": ("command", "textconv", "external"),
    "merge": ("driver",),
    "remote": ("uploadpack", "receivepack"),
    "uploadpack": ("packobjectshook",),
    "difftool": ("cmd",),
    "mergetool": ("cmd",),
    "interactive": ("difffilter",),
}
#: Every variable of these sections names a program (``pager.log = …``).
COMMAND_SECTIONS = ("pager",)
#: ``core.fsmonitor`` may be a boolean (the built-in daemon), not a command.
_BOOLEANS = {"true", "false", "yes", "no", "on", "off", "1", "0", ""}


def is_command_key(entry: gitconfig.Entry) -> bool:
    """Whether ``entry`` names a program git would run (see ``COMMAND_KEYS``)."""
    if entry.section in COMMAND_SECTIONS:
        return True
    if entry.name not in COMMAND_KEYS.get(entry.section, ()):
        return False
    if entry.key == "core.fsmonitor":
        return (entry.value or "").strip().lower() not in _BOOLEANS
    return True


def _clip(value: str | None, limit: int = 80) -> str:
    flat = " ".join((value or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class GitScan:
    """Reads what git reads under one workspace ``root``; ``found`` collects the lines."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.found: set[str] = set()
        self._seen_configs: set[str] = set()
        self._seen_gitdirs: set[str] = set()

    # ------------------------------------------------------------------ paths

    def rel(self, path: Path | str) -> str:
        """``path`` relative to the workspace (as given when it is outside)."""
        try:
            return str(Path(path).relative_to(self.root)) or "."
        except ValueError:
            return str(path)

    def inside(self, path: Path) -> Path | None:
        """``path`` with symlinks resolved, when that is inside the workspace; else None."""
        real = Path(os.path.realpath(path))
        if real == self.root or self.root in real.parents:
            return real
        return None

    def read(self, path: Path) -> str | None:
        """The text of a regular file inside the workspace (at most ``MAX_FILE`` bytes);
        None when missing, not regular (a FIFO would block git too, not us) or outside."""
        real = self.inside(path)
        if real is None:
            return None
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return os.read(fd, MAX_FILE).decode("utf-8", errors="replace")
        except OSError:
            return None
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ repositories

    def dot_git(self, path: Path) -> None:
        """A ``.git`` entry (directory, file or symlink) of the worktree at its parent."""
        worktree = path.parent
        if path.is_symlink():
            target = os.path.realpath(path)
            if self.inside(path) is None:
                self.found.add(f"{self.rel(path)} is a symlink out of the workspace ({target})")
                return
        if path.is_dir():
            self.gitdir(path, worktree)
        elif path.is_file():
            self.git_file(path, worktree)

    def git_file(self, path: Path, worktree: Path) -> None:
        """A ``.git`` FILE: ``gitdir: <path>`` (relative to the file's folder)."""
        text = self.read(path)
        if text is None:
            return
        first = text.splitlines()[0] if text.strip() else ""
        if not first.startswith("gitdir:"):
            self.found.add(f"{self.rel(path)} is a .git file without 'gitdir:' (git refuses it)")
            return
        target = Path(first[len("gitdir:") :].strip())
        if not target.is_absolute():
            target = path.parent / target
        where = self.inside(target)
        if where is None:
            self.found.add(
                f"{self.rel(path)} names the git directory {os.path.normpath(target)} "
                "(outside the workspace: not read)"
            )
            return
        self.found.add(f"{self.rel(path)} names the git directory {self.rel(where)}")
        self.gitdir(where, worktree)

    def gitdir(self, gitdir: Path, worktree: Path) -> None:
        """One git directory: commondir, config, config.worktree, hooks, modules."""
        real = self.inside(gitdir)
        if real is None or str(real) in self._seen_gitdirs:
            return
        self._seen_gitdirs.add(str(real))
        common = real
        pointer = real / "commondir"
        if pointer.exists() or pointer.is_symlink():
            text = self.read(pointer)
            target = Path((text or "").strip() or ".")
            if not target.is_absolute():
                target = real / target
            where = self.inside(target)
            shown = self.rel(where) if where else f"{os.path.normpath(target)} (outside: not read)"
            self.found.add(f"{self.rel(pointer)} points git at the common directory {shown}")
            if where is not None:
                common = where
        hooks_paths: list[Path] = []
        for config in dict.fromkeys((common / "config", real / "config.worktree", real / "config")):
            hooks_paths += self.config(config, worktree, depth=0)
        self.hooks(common / "hooks")
        for hooks in hooks_paths:
            self.hooks(hooks)
        self.modules(common / "modules", worktree)

    def modules(self, folder: Path, worktree: Path) -> None:
        """Submodules' repositories under ``modules/`` (each a git directory, nested ones
        under their own ``modules/``), bounded by ``MAX_MODULES``."""
        if self.inside(folder) is None or not folder.is_dir():
            return
        seen = 0
        for here, dirs, files in os.walk(folder):
            if "config" in files or "HEAD" in files:
                seen += 1
                if seen > MAX_MODULES:
                    self.found.add(f"{self.rel(folder)}: more than {MAX_MODULES} repositories")
                    return
                self.gitdir(Path(here), worktree)
            dirs[:] = [d for d in dirs if d not in ("objects", "refs", "logs", "hooks")]

    # ------------------------------------------------------------------ files

    def config(self, path: Path, worktree: Path, *, depth: int) -> list[Path]:
        """Settings of one config file and of what it includes; returns the folders its
        ``core.hooksPath`` names (inside the workspace) for ``hooks``."""
        real = self.inside(path)
        if real is None:
            if path.is_symlink():
                self.found.add(f"{self.rel(path)} is a symlink out of the workspace")
            return []
        if str(real) in self._seen_configs:
            return []
        self._seen_configs.add(str(real))
        text = self.read(real)
        if text is None:
            return []
        hooks: list[Path] = []
        shown = self.rel(real)
        for entry in gitconfig.parse(text).entries:
            if is_command_key(entry):
                self.found.add(
                    f"git setting {entry.key} in {shown} runs a command: {_clip(entry.value)}"
                )
                if entry.key == "core.hookspath" and entry.value:
                    target = Path(os.path.expanduser(entry.value))
                    hooks.append(target if target.is_absolute() else worktree / target)
            if entry.name == "path" and (
                entry.section == "include"
                or (entry.section == "includeif" and entry.subsection is not None)
            ):
                hooks += self.include(real, entry, worktree, depth)
        return hooks

    def include(
        self, config: Path, entry: gitconfig.Entry, worktree: Path, depth: int
    ) -> list[Path]:
        """Follow one ``include.path``/``includeIf.*.path`` (any condition: it may hold
        for the operator), relative to the including file; out of the workspace: named."""
        value = (entry.value or "").strip()
        if not value:
            return []
        target = Path(os.path.expanduser(value))
        if not target.is_absolute():
            target = config.parent / target
        where = self.inside(target)
        origin = f"{entry.key} in {self.rel(config)}"
        if where is None:
            self.found.add(f"git setting {origin} includes {value} (outside the workspace)")
            return []
        self.found.add(f"git setting {origin} includes {self.rel(where)}")
        if depth + 1 >= MAX_INCLUDE_DEPTH:
            self.found.add(f"{origin}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
            return []
        return self.config(where, worktree, depth=depth + 1)

    def hooks(self, folder: Path) -> None:
        """Executable hooks (or symlinks) in ``folder`` (``*.sample`` are git's own, and
        never run)."""
        real = self.inside(folder)
        if real is None:
            if folder.exists() or folder.is_symlink():
                self.found.add(f"git hooks folder {folder} is outside the workspace")
            return
        try:
            entries: Iterable[os.DirEntry[str]] = list(os.scandir(real))[:1000]
        except OSError:
            return
        for hook in entries:
            if hook.name.endswith(".sample"):
                continue
            try:
                executable = hook.is_symlink() or (
                    hook.is_file() and bool(hook.stat().st_mode & 0o111)
                )
            except OSError:
                continue
            if executable:
                self.found.add(f"executable git hook {self.rel(Path(hook.path))}")


def scan_repository(root: Path, dot_git: Path) -> set[str]:
    """The findings of one ``.git`` entry under the workspace ``root`` (a convenience for
    tests: ``backends.workspace`` shares one ``GitScan`` over the whole walk)."""
    scan = GitScan(root)
    scan.dot_git(dot_git)
    return scan.found
