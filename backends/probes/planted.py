"""Probes of what an agent could leave in its workspace for the host: a repository the
operator's git would read (and run programs from), and files with setuid/setgid bits.

Written as the attacker would go about it: each probe tries the attacks themselves as the
agent (not a read of the mount table), undoes whatever went through, and reports each
trick that worked. The host half (``workspace-clean``, and the setuid probe on
smolmachines) runs the workspace check on the host's view of the folder
(``Target.plan.workspace``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from backends.probes.base import FAIL, HOST, NOT_APPLICABLE, PASS, Probe, Target, clip

#: The names the probes write under, so their traces can be told from the agent's.
MARK = ".bottle-probe"

# Each attack on the operator's .git as one shell function call; `hit WHAT` reports one
# that went through. Nothing is left behind: created files are removed, existing ones are
# only opened for appending (their content is unchanged), a rename is undone at once.
GIT_ATTACKS = (
    r"""
cd /workspace 2>/dev/null || { echo no-workspace; exit 0; }
[ -e .git ] || [ -L .git ] || { echo no-git; exit 0; }
hit() { echo "HIT $*"; }
try_file() {  # try_file PATH: write it (append when it exists, else create then remove)
  if [ -e "$1" ]; then ( : >> "$1" ) 2>/dev/null && hit "opened $1 for writing"
  else ( : > "$1" ) 2>/dev/null && { rm -f "$1"; hit "created $1"; }; fi
}
if [ -d .git ]; then
  try_file .git/commondir
  try_file .git/config
  try_file .git/config.worktree
  try_file .git/HEAD
  try_file .git/index
  if [ -d .git/hooks ]; then try_file .git/hooks/post-checkout
  elif mkdir .git/hooks 2>/dev/null; then rmdir .git/hooks; hit "created .git/hooks"; fi
  made=""
  [ -d .git/objects/info ] || { mkdir -p .git/objects/info 2>/dev/null && made=1; }
  try_file .git/objects/info/alternates
  [ -n "$made" ] && rmdir .git/objects/info 2>/dev/null
  if mv .git .git"""
    + MARK
    + r""" 2>/dev/null; then
    mv .git"""
    + MARK
    + r""" .git; hit "renamed .git (then a .git file naming a copy could replace it)"
  fi
else
  cp .git /tmp/.git"""
    + MARK
    + r""" 2>/dev/null
  try_file .git
  printf 'gitdir: .git"""
    + MARK
    + r"""\n' > .git"""
    + MARK
    + r""" 2>/dev/null
  if mv .git"""
    + MARK
    + r""" .git 2>/dev/null; then
    cat /tmp/.git"""
    + MARK
    + r""" > .git; hit "replaced the .git file by one naming another directory"
  fi
  rm -f .git"""
    + MARK
    + r""" /tmp/.git"""
    + MARK
    + r"""
  if mv .git .git"""
    + MARK
    + r"""-f 2>/dev/null; then
    mv .git"""
    + MARK
    + r"""-f .git; hit "renamed the .git file"
  fi
fi
echo done
"""
)


def git_read_only(t: Target) -> tuple[str, str]:
    """As the agent: write ``commondir``, ``config``, ``config.worktree``, ``HEAD``, the
    index, a hook and ``objects/info/alternates``; rename ``.git``; put another directory
    or a ``.git`` file in its place. Every one must fail."""
    if not (t.plan and t.plan.workspace):
        return NOT_APPLICABLE, "no workspace"
    lines = [ln.strip() for ln in t.run(GIT_ATTACKS).stdout.splitlines() if ln.strip()]
    if lines[:1] == ["no-workspace"]:
        return FAIL, "the workspace is not mounted at /workspace"
    if lines[:1] == ["no-git"]:
        return NOT_APPLICABLE, (
            "the workspace is not a git repository (a .git the agent makes is caught by "
            "workspace-clean)"
        )
    hits = [ln[4:] for ln in lines if ln.startswith("HIT ")]
    if "done" not in lines:
        return FAIL, "the attacks did not run to the end: " + clip(" ".join(lines))
    if hits:
        return FAIL, "the agent " + "; ".join(hits)
    kind = "file" if t.plan.extra.get("git_file_writable") else "directory"
    return PASS, (
        f"the agent cannot write .git (a {kind}: commondir, config, config.worktree, HEAD, "
        "index, hooks, objects/info/alternates), rename it or put anything in its place"
    )


# Each setuid/setgid trick as the agent, in /workspace and in /tmp; `set WHAT` reports a
# bit that stuck. The workspace's files are left for the host half to look at.
SETUID_TRICKS = (
    r"""
hit() { echo "SET $*"; }
for dir in /workspace /tmp; do
  [ -d "$dir" ] || continue
  f="$dir/"""
    + MARK
    + r"""-suid"
  rm -rf "$f" "$f-g" "$f-i" "$f-d"
  printf '#!/bin/sh\nid\n' > "$f" && chmod 755 "$f" || { echo "NOFILE $dir"; continue; }
  cp "$f" "$f-g"
  chmod u+s "$f" 2>/dev/null; [ -u "$f" ] && hit "chmod u+s in $dir"
  chmod g+s "$f-g" 2>/dev/null; [ -g "$f-g" ] && hit "chmod g+s in $dir"
  if command -v install >/dev/null; then
    install -m 4755 "$f-g" "$f-i" 2>/dev/null; [ -u "$f-i" ] && hit "install -m 4755 in $dir"
  else echo "NOINSTALL"; fi
  mkdir -m 2755 "$f-d" 2>/dev/null; [ -g "$f-d" ] && hit "mkdir -m 2755 in $dir"
  [ "$dir" = /tmp ] && rm -rf "$f" "$f-g" "$f-i" "$f-d"
done
echo done
"""
)
CLEANUP = "rm -rf /workspace/" + MARK + "-suid /workspace/" + MARK + "-suid-*"


def no_setuid_files(t: Target) -> tuple[str, str]:
    """As the agent: ``chmod u+s`` / ``g+s`` on its own file, ``install -m 4755`` and
    ``mkdir -m 2755``, in /workspace and /tmp. Docker: every one refused (the seccomp
    profile). smolmachines (its own kernel, no host seccomp): the host's workspace check
    must flag and clear each bit that stuck in the workspace."""
    from backends import workspace

    if not (t.plan and t.plan.workspace):
        return NOT_APPLICABLE, "no workspace"
    lines = [ln.strip() for ln in t.run(SETUID_TRICKS).stdout.splitlines() if ln.strip()]
    hits = [ln[4:] for ln in lines if ln.startswith("SET ")]
    try:
        if "done" not in lines:
            return FAIL, "the tricks did not run to the end: " + clip(" ".join(lines))
        tried = "chmod u+s, chmod g+s, " + (
            "mkdir -m 2755 (no install in the image)"
            if "NOINSTALL" in lines
            else "install -m 4755, mkdir -m 2755"
        )
        if not hits:
            return PASS, f"refused: {tried} (in /workspace and /tmp)"
        in_workspace = [h for h in hits if h.endswith("/workspace")]
        if t.backend == "docker" or not in_workspace:
            return FAIL, "the agent could set: " + "; ".join(hits)
        # A VM: the bits stuck; the defence is the host's check. Look at the host's view.
        root = Path(t.plan.workspace)
        ours = [p for p in root.iterdir() if p.name.startswith(MARK)]
        seen = workspace.gained(t.agent, root)
        flagged = [line for line in seen if MARK in line]
        still = [p.name for p in ours if os.lstat(p).st_mode & (stat.S_ISUID | stat.S_ISGID)]
        evidence = (
            f"the machine's own kernel let the agent set ({'; '.join(hits)}); on the host the "
            f"workspace check flagged {len(flagged)} and "
        )
        if still or not flagged:
            return FAIL, evidence + f"left the bits on {', '.join(still) or 'them'}"
        return PASS, evidence + "cleared every bit: " + clip("; ".join(flagged), 400)
    finally:
        t.run(CLEANUP)
        workspace.forget(t.agent, MARK)


def workspace_clean(t: Target) -> tuple[str, str]:
    """Nothing gained since the first ``up`` that would run or resolve on the host."""
    from backends import workspace

    if not (t.plan and t.plan.workspace):
        return NOT_APPLICABLE, "no workspace"
    gained = workspace.gained(t.agent, Path(t.plan.workspace))
    if gained:
        return FAIL, "the workspace gained: " + "; ".join(gained)
    return PASS, (
        "nothing gained that git would read and run (.git file or directory, commondir, "
        "configs and includes, submodules, nested repositories, hooks), no setuid/setgid "
        "or device file, no symlink out"
    )


PROBES = (
    Probe(
        "git-read-only",
        HOST,
        "the agent cannot write, rename or replace the operator's .git (commondir, "
        "configs, HEAD, hooks, alternates)",
        "recreate the bottle (rm and up): the whole .git is mounted read-only",
        git_read_only,
    ),
    Probe(
        "no-setuid-files",
        HOST,
        "the agent cannot leave a setuid/setgid file for the host (docker: refused by the "
        "seccomp profile; smolmachines: flagged and cleared by the workspace check)",
        "recreate the bottle (rm and up) with this bottle-dash: new docker bottles get the "
        "seccomp profile",
        no_setuid_files,
    ),
    Probe(
        "workspace-clean",
        HOST,
        "the workspace gained nothing git would read and run, no setuid/setgid or device "
        "file and no symlink that leads out of it",
        "look at what the agent planted and remove it before running git in the workspace",
        workspace_clean,
    ),
)
