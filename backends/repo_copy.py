"""The agent's copy of a host repository (config ``repo``/``base``/``branch``).

How it holds: the copy is a clone made **on the host by bottle-dash's own git, from the
operator's repository** (trusted), in a temporary folder: ``git clone --no-local`` (objects
copied, never hard-linked or borrowed through alternates), the agent's branch checked out
at ``base``, every other local branch and the ``origin`` remote dropped. It then reaches
the bottle as an archive through the engine (``put_archive``) into an engine volume
(``bottle-<agent>-copy``) mounted at /workspace, owned by the repository's owner. So the
bottle holds no path of the host repository at all: no ref, object, config or hook of it
can be reached, by path, symlink or ``git push /path``; and the volume survives down/up,
engine and dashboard restarts, and ``rm`` without ``--volumes``.

The other direction never lets git on the host read the copy (whose config and attributes
are the agent's: ``core.fsmonitor``, filters, textconv, diff drivers, ``core.pager`` all
name programs). Everything that reads it runs **in the bottle** (``summary``, ``lost``,
the diff), its output parsed here as hostile text; ``fetch`` runs ``git-upload-pack`` in
the bottle over an ``ext::`` transport, so host git only receives a pack over a pipe,
into the operator's repository, with ``transfer.fsckObjects`` on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from backends import run
from backends.base import BackendError, Completed, ProvisionError

#: Where the copy is in the bottle.
GUEST_COPY = "/workspace"
#: A commit id as git prints it (sha1 or sha256).
_OID = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def is_oid(text: str) -> bool:
    """Whether ``text`` is a full commit id (what is safe to hand to host git)."""
    return bool(_OID.match(text))


def clean_env() -> dict[str, str]:
    """The host environment without git's own variables (a ``GIT_DIR`` or
    ``GIT_CONFIG_PARAMETERS`` of the operator's shell must not redirect bottle-dash's git)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def host_git(
    repo: Path | str, *args: str, timeout: float = 300, input: str | None = None
) -> Completed:
    """Run git in the operator's repository ``repo`` (trusted: its own config applies)."""
    return run.run(
        ["git", *trust(repo), "-C", str(repo), *args],
        timeout=timeout,
        env=clean_env(),
        input=input,
    )


def trust(repo: Path | str) -> list[str]:
    """``-c safe.directory=REPO``: the operator named ``repo`` in the config, so git may
    read it even when another user owns it (command-line config is protected config)."""
    return ["-c", f"safe.directory={repo}", "-c", f"safe.directory={Path(repo) / '.git'}"]


def resolve_base(repo: Path, base: str | None, *, agent: str, source: str = "") -> str:
    """The commit id ``base`` (default: the repository's HEAD) names in ``repo``;
    ``ProvisionError`` naming the file, the agent and the key when it names none."""
    rev = base or "HEAD"
    done = host_git(
        repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
    )
    oid = done.stdout.strip()
    if not done.ok or not is_oid(oid):
        where = f" (from {source})" if source else ""
        key = "base" if base else "repo"
        raise ProvisionError(
            f"{key} of agent {agent}{where}: {rev!r} names no commit in {repo}",
            fix=f"set base to a branch, tag or commit of {repo} (git -C {repo} branch -a)"
            if base
            else f"make a first commit in {repo}, or set base",
            agent=agent,
        )
    return oid


def make_clone(
    repo: Path, base_oid: str, branch: str, dest: Path, *, agent: str, checkout: bool = True
) -> None:
    """Clone ``repo`` into the empty folder ``dest`` on ``branch`` at ``base_oid``, with no
    remote and no other local branch (the agent's copy before it reaches the bottle).
    Without ``checkout`` only the repository (``.git``) is made, HEAD on ``branch``: the
    work tree is checked out later, in the bottle (``CHECKOUT_SCRIPT``)."""
    env = {**clean_env(), "GIT_CONFIG_GLOBAL": str(_trusting_global(repo, dest.parent))}
    into = ("-C", str(dest))
    place: list[tuple[str, ...]] = (
        [(*into, "checkout", "--quiet", "-B", branch, base_oid)]
        if checkout
        else [
            (*into, "update-ref", f"refs/heads/{branch}", base_oid),
            (*into, "symbolic-ref", "HEAD", f"refs/heads/{branch}"),
        ]
    )
    steps: list[tuple[str, ...]] = [
        ("clone", "--quiet", "--no-local", "--no-checkout", "--", str(repo), str(dest)),
        *place,
        (*into, "remote", "remove", "origin"),
    ]
    for args in steps:
        done = run.run(["git", *args], timeout=1800, env=env)
        if not done.ok:
            verb = args[2] if args[0] == "-C" else args[0]
            raise ProvisionError(
                f"making the copy of {repo} for agent {agent} failed: git {verb}: "
                f"{(done.stderr or done.stdout).strip()[-300:]}",
                fix=f"check that `git clone --no-local {repo} /tmp/x` works",
                agent=agent,
            )
    heads = run.run(
        ["git", "-C", str(dest), "for-each-ref", "--format=%(refname)", "refs/heads"],
        env=clean_env(),
    ).stdout.split()
    for ref in heads:
        if ref != f"refs/heads/{branch}":
            run.run(["git", "-C", str(dest), "update-ref", "-d", ref], env=clean_env())


def copy_files(repo: Path, clone: Path, files: Sequence[str], *, agent: str) -> None:
    """Copy ``files`` (config ``copy``, relative to the repository's top) from the host
    repository's work tree into the clone, and list them in the clone's
    ``.git/info/exclude`` so they are never committed."""
    if not files:
        return
    top = clone.resolve()
    for rel in files:
        src = repo / rel
        dest = (clone / rel).resolve()
        if top not in dest.parents:
            raise ProvisionError(
                f"copy: {rel!r} of agent {agent} leaves the repository", agent=agent
            )
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise ProvisionError(
                f"copy: {src} of agent {agent} cannot be read: {exc.strerror}",
                fix="create it, or remove it from copy",
                agent=agent,
            ) from exc
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        os.chmod(dest, src.stat().st_mode & 0o777)
    exclude = clone / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a", encoding="utf-8") as out:
        out.write("# copied from the host repository by bottle-dash (config `copy`)\n")
        out.writelines(f"/{rel.lstrip('/')}\n" for rel in files)


def _gitconfig_value(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _trusting_global(repo: Path, folder: Path) -> Path:
    """A global git config for the clone: the operator's own (included) and ``repo`` as a
    safe directory. The local transport runs upload-pack without ``-c`` settings, so a
    repository another user owns (the operator named it) needs this to be cloned."""
    own = os.environ.get("GIT_CONFIG_GLOBAL")
    includes = [own] if own else [str(Path.home() / ".gitconfig"), _xdg_git_config()]
    lines = ["[include]", *(f"\tpath = {_gitconfig_value(p)}" for p in includes), "[safe]"]
    lines += [f"\tdirectory = {_gitconfig_value(str(p))}" for p in (repo, repo / ".git")]
    path = folder / "gitconfig"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _xdg_git_config() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return str(Path(base) / "git" / "config")


# --------------------------------------------------------------------------- reading the copy
# Scripts run in the bottle as the agent; what they print is the agent's to forge, so it
# is parsed as hostile text (bounded, numbers by regex, commit ids checked).

#: $1: the base commit; $2: the fingerprint of the last run (HEAD and the index's mtime and
#: size): when it is the same, only ``fp`` and ``dirty`` are printed (the counts stand).
SUMMARY_SCRIPT = """cd /workspace 2>/dev/null || exit 3
export GIT_OPTIONAL_LOCKS=0
fp="$(git rev-parse -q --verify HEAD)@$(stat -c %Y.%s .git/index 2>/dev/null)"
echo "fp $fp"
echo "dirty $(git status --porcelain 2>/dev/null | head -n 1 | wc -l)"
[ -n "$2" ] && [ "$fp" = "$2" ] && exit 0
echo "branch $(git symbolic-ref --short -q HEAD)"
echo "head $(git rev-parse -q --verify HEAD)"
echo "ahead $(git rev-list --count "$1..HEAD" 2>/dev/null)"
echo "stat $(git diff --no-ext-diff --no-textconv --shortstat "$1" HEAD -- 2>/dev/null)"
"""

#: The work tree of a copy that arrived as ``.git`` alone (``make_clone(checkout=False)``):
#: checked out in a helper container as the agent, from bottle-dash's own clean clone.
CHECKOUT_SCRIPT = """cd /workspace && git reset --quiet --hard HEAD"""

LOST_SCRIPT = """cd /workspace 2>/dev/null || exit 3
export GIT_OPTIONAL_LOCKS=0
git for-each-ref --format='head %(objectname) %(refname:short)' refs/heads | head -n 200
git status --porcelain 2>/dev/null | head -n 20 | sed 's/^/dirty /'
"""


class Summary(NamedTuple):
    """What the agent changed in its copy."""

    branch: str
    base: str
    ahead: int
    behind: int
    files_changed: int
    insertions: int
    deletions: int
    dirty: bool
    head: str = ""
    #: What ``SUMMARY_SCRIPT`` saw of HEAD and the index: unchanged means the counts stand.
    fingerprint: str = ""

    def to_dict(self) -> dict[str, object]:
        """The ``ls --json`` fields."""
        return {k: v for k, v in self._asdict().items() if k not in ("head", "fingerprint")}


def _num(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return min(int(match.group(1)), 10**9) if match else 0


def parse_summary(
    out: str, *, branch: str, base: str, behind: int, last: Summary | None = None
) -> Summary:
    """The ``Summary`` from ``SUMMARY_SCRIPT``'s output ``out`` (``last``: the summary the
    fingerprint was compared with; its counts stand when the script printed none)."""
    fields: dict[str, str] = {}
    for line in out[:4096].splitlines()[:10]:
        key, _, value = line.partition(" ")
        fields.setdefault(key, value.strip())
    fingerprint = fields.get("fp", "")[:200]
    dirty = fields.get("dirty", "0") not in ("", "0")
    if last is not None and "branch" not in fields:
        return last._replace(dirty=dirty, behind=behind, fingerprint=fingerprint)
    stat = fields.get("stat", "")
    head = fields.get("head", "")
    return Summary(
        branch=(fields.get("branch") or branch)[:200],
        base=base,
        ahead=_num(r"^(\d+)$", fields.get("ahead", "")),
        behind=behind,
        files_changed=_num(r"(\d+) files? changed", stat),
        insertions=_num(r"(\d+) insertions?\(\+\)", stat),
        deletions=_num(r"(\d+) deletions?\(-\)", stat),
        dirty=dirty,
        head=head if is_oid(head) else "",
        fingerprint=fingerprint,
    )


def behind_count(repo: Path, base: str | None, base_oid: str) -> int:
    """Commits the host's ``base`` gained since the copy was made from ``base_oid`` (0
    when ``base`` was a commit, or names nothing now). Reads the operator's repository."""
    if not base or not is_oid(base_oid):
        return 0
    done = host_git(repo, "rev-list", "--count", f"{base_oid}..{base}", "--", timeout=60)
    return _num(r"^(\d+)", done.stdout.strip()) if done.ok else 0


def lost_work(out: str, repo: Path) -> list[str]:
    """What ``rm`` would lose, from ``LOST_SCRIPT``'s output ``out``: each branch of the
    copy whose commit the host repository ``repo`` lacks, and uncommitted changes."""
    heads: list[tuple[str, str]] = []
    dirty: list[str] = []
    for line in out[:65536].splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "head":
            oid, _, name = rest.partition(" ")
            heads.append((oid, name[:200]))
        elif kind == "dirty":
            dirty.append(rest[:200])
    lost: list[str] = []
    valid = [(oid, name) for oid, name in heads if is_oid(oid)]
    for oid, name in valid:
        # Fetched means reachable from a ref of the host repository: an object a refused
        # fetch left behind is not (a gc would drop it).
        held = host_git(
            repo, "for-each-ref", "--count=1", "--format=%(refname)", "--contains", oid, timeout=60
        )
        if not (held.ok and held.stdout.strip()):
            lost.append(f"branch {name} ({oid[:12]}): commits not fetched to {repo}")
    lost += [f"branch {name}: unreadable commit id" for oid, name in heads if not is_oid(oid)]
    if dirty:
        lost.append(f"uncommitted changes ({len(dirty)}{'+' if len(dirty) >= 20 else ''} files)")
    return lost


# --------------------------------------------------------------------------- fetch


def ext_url(argv: Sequence[str]) -> str:
    """An ``ext::`` URL that runs ``argv`` (git's own splitting: ``% `` is a space)."""

    def quote(arg: str) -> str:
        if not arg or any(ord(c) < 33 for c in arg.replace(" ", "")):
            raise BackendError(f"cannot pass {arg!r} through git's ext:: transport")
        return arg.replace("%", "%%").replace(" ", "% ")

    return "ext::" + " ".join(quote(a) for a in argv)


def fetch_argv(repo: Path, upload_pack: Sequence[str], branch: str) -> list[str]:
    """Host git that fetches ``branch`` of the copy into ``repo`` as ``branch``, the copy's
    side (``upload_pack``: the argv of ``git-upload-pack /workspace`` in the bottle) run
    in the bottle, every object checked."""
    return [
        "git",
        *trust(repo),
        "-C",
        str(repo),
        "-c",
        "protocol.ext.allow=always",
        "-c",
        "transfer.fsckObjects=true",
        "-c",
        "fetch.fsckObjects=true",
        "fetch",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-recurse-submodules",
        ext_url(upload_pack),
        # not forced: a host branch that moved on (the operator's commits on it), or an
        # agent that rewrote its history, is refused rather than overwritten
        f"refs/heads/{branch}:refs/heads/{branch}",
    ]


def fetch(repo: Path, upload_pack: Sequence[str], branch: str, *, agent: str) -> str:
    """Bring ``branch`` of the agent's copy into ``repo``; returns its commit there."""
    done = run.run(fetch_argv(repo, upload_pack, branch), timeout=1800, env=clean_env())
    if not done.ok:
        raise BackendError(
            f"fetching branch {branch} of agent {agent} into {repo} failed: "
            f"{(done.stderr or done.stdout).strip()[-400:]}",
            fix=f"check that the bottle runs (bottle-dash up {agent}), that {branch} is not "
            f"the branch checked out in {repo}, and that it can fast-forward (else rename or "
            f"delete the host's {branch} first)",
            agent=agent,
        )
    oid = host_git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}").stdout.strip()
    return oid
