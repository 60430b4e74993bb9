"""What an agent may have planted in its bind-mounted workspace that would run or resolve
on the host later: executable git hooks, git settings that run commands, and symlinks
that lead out of the workspace.

In a docker bottle ``.git/hooks`` and ``.git/config`` are mounted read-only
(``backends.docker.plan.GIT_READ_ONLY``); this scan is the second line, for the bottles and
workspaces that mount cannot cover (no ``.git`` at launch, the smolmachines backend). The
first ``up`` records a baseline; the dashboard and ``ls --json`` warn about what was
gained since.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from backends import paths

BASELINE_FILE = "workspace-baseline.json"
#: Upper bound on directory entries one scan looks at (a huge tree is cut, not walked).
SCAN_LIMIT = 20000
#: git settings whose value is a command or a hooks folder.
RISKY_GIT_KEYS = re.compile(
    r"^\s*(hookspath|fsmonitor|sshcommand|pager|editor|askpass|gpgprogram|program)\s*=",
    re.IGNORECASE | re.MULTILINE,
)
SKIP_DIRS = {"node_modules", "objects"}


def findings(workspace: Path, *, limit: int = SCAN_LIMIT) -> list[str]:
    """Every risky thing in ``workspace`` now, one line each (sorted)."""
    found: set[str] = set()
    root = workspace.resolve()
    hooks = root / ".git" / "hooks"
    if hooks.is_dir():
        for hook in hooks.iterdir():
            if hook.name.endswith(".sample"):
                continue
            if hook.is_symlink() or (hook.is_file() and os.access(hook, os.X_OK)):
                found.add(f"executable git hook .git/hooks/{hook.name}")
    config = root / ".git" / "config"
    try:
        text = config.read_text(encoding="utf-8", errors="replace")[:65536]
    except OSError:
        text = ""
    for match in RISKY_GIT_KEYS.finditer(text):
        found.add(f"git setting {match.group(1).lower()} in .git/config runs a command")
    seen = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in [*dirs, *files]:
            seen += 1
            if seen > limit:
                return sorted(found)
            path = Path(folder) / name
            if not path.is_symlink():
                continue
            target = Path(os.path.realpath(path))
            if target != root and root not in target.parents:
                found.add(f"symlink {path.relative_to(root)} leaves the workspace ({target})")
    return sorted(found)


def _baseline_file(agent: str) -> Path:
    return paths.agent_state_dir(agent) / BASELINE_FILE


def record_baseline(agent: str, workspace: Path) -> None:
    """Record what ``workspace`` holds now, once (the first ``up``); later calls keep it."""
    file = _baseline_file(agent)
    if file.exists():
        return
    paths.write_private(file, json.dumps(findings(workspace)).encode())


def gained(agent: str, workspace: Path) -> list[str]:
    """What ``workspace`` holds now that it did not at the first ``up`` (everything when
    there is no baseline)."""
    try:
        before = set(json.loads(_baseline_file(agent).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        before = set()
    return [f for f in findings(workspace) if f not in before]
