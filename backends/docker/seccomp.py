"""The docker bottle's seccomp profile: the engine's own default profile (Moby's
``profiles/seccomp/default.json``), with setuid and setgid modes refused.

Why: when the workspace belongs to root the agent runs as uid 0 (``backends.agent_user``);
without a capability it still owns its files, so it could ``chmod 4755`` a copy of a shell
in the workspace, and anyone who reaches that folder on the host would run it as root
(a ``nosuid`` mount in the bottle does not protect the host's view). Here the calls that
set a mode are allowed only when the mode has neither ``S_ISUID`` nor ``S_ISGID``
(``SCMP_CMP_MASKED_EQ``): ``chmod``, ``fchmod``, ``fchmodat``, ``fchmodat2`` and the calls
that create with a mode, ``open``/``openat`` (only when ``O_CREAT`` or ``O_TMPFILE`` is
set: otherwise the mode is not read), ``creat``, ``mknod``, ``mknodat``, ``mkdir``,
``mkdirat``. ``openat2`` takes its mode in a struct seccomp cannot read, and io_uring can
create files with a mode without any of those calls: both answer ENOSYS, so libc and
libuv fall back to the calls above. Everything else is the default profile unchanged.

Where the default profile comes from: the engine compiles it in and has no API that gives
it out, so it is read from Moby's source as Debian packages it for this very engine
(``golang-github-docker-docker-dev``, same source package and version as ``docker.io``):
the installed file when that package is installed, else the one file taken out of the
package (``apt-get download`` + ``dpkg-deb -x``) into a cache, once per machine.
``BOTTLE_DASH_SECCOMP_BASE`` names another copy (a docker-ce engine: its release's
``default.json``). The profile's text goes to the engine at container create
(``security_opt=["seccomp=<json>"]``, as the docker CLI sends a file's content).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backends import paths
from backends.base import LaunchError

DEB_PACKAGE = "golang-github-docker-docker-dev"
_IN_PACKAGE = "usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json"
#: The default profile where Debian's package installs it.
INSTALLED = Path("/") / _IN_PACKAGE
ENV_BASE = "BOTTLE_DASH_SECCOMP_BASE"
#: The machine-wide cache (root only; public data: Moby's profile), else ``cache_dir()``.
SHARED_CACHE = Path("/var/cache/bottle-dash/seccomp")
CACHE_NAME = "moby-default.json"
BASE_FIX = (
    f"apt-get install {DEB_PACKAGE} (Debian's copy of the engine's source, which holds "
    f"the default profile), or set {ENV_BASE} to the docker release's "
    "profiles/seccomp/default.json"
)

S_ISUID = 0o4000
S_ISGID = 0o2000
SETID = S_ISUID | S_ISGID
#: Which argument holds the mode, per call.
MODE_ARG = {
    "chmod": 1,
    "fchmod": 1,
    "fchmodat": 2,
    "fchmodat2": 2,
    "creat": 1,
    "mknod": 1,
    "mknodat": 2,
    "mkdir": 1,
    "mkdirat": 2,
    "open": 2,
    "openat": 3,
}
#: Which argument holds the flags of the calls that read the mode only when creating.
FLAGS_ARG = {"open": 1, "openat": 2}
#: O_CREAT and __O_TMPFILE (x86, arm): without them ``open``'s mode is not read.
CREATING = 0o100 | 0o20000000
ENOSYS = 38
#: Calls answered ENOSYS (callers fall back to the calls the profile can check).
REFUSED = ("openat2", "io_uring_setup", "io_uring_enter", "io_uring_register")
#: What ``plan`` shows for the profile (the text itself is ~14 KB of JSON).
SUMMARY = (
    "Moby's default profile, with chmod/fchmod/fchmodat(2), open/openat/creat (when "
    "creating), mknod(at), mkdir(at) refused for setuid/setgid modes; openat2 and io_uring "
    "answer ENOSYS"
)


def harden(base: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (a docker seccomp profile) with the mode-setting calls allowed only
    without setuid/setgid bits and ``REFUSED`` answering ENOSYS. Pure."""
    profile = copy.deepcopy(dict(base))
    rules = list(profile.get("syscalls") or [])
    if not any("chmod" in (r.get("names") or []) for r in rules):
        raise ValueError("not a docker seccomp profile: no rule allows chmod")
    taken = set(MODE_ARG) | set(REFUSED)
    kept: list[dict[str, Any]] = []
    for rule in rules:
        names = list(rule.get("names") or [])
        if rule.get("action") == "SCMP_ACT_ALLOW" and taken & set(names):
            names = [n for n in names if n not in taken]
            if not names:
                continue
            rule = {**rule, "names": names}
        kept.append(rule)
    for name, index in MODE_ARG.items():
        kept.append(_allow(name, index, SETID))
        if name in FLAGS_ARG:
            kept.append(_allow(name, FLAGS_ARG[name], CREATING))
    kept.append({"names": list(REFUSED), "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    profile["syscalls"] = kept
    return profile


def _allow(name: str, index: int, mask: int) -> dict[str, Any]:
    """Allow ``name`` when its argument ``index`` has none of the bits of ``mask``."""
    return {
        "names": [name],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": index, "value": mask, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
    }


def _caches() -> list[Path]:
    return [SHARED_CACHE / CACHE_NAME, paths.cache_dir() / "seccomp" / CACHE_NAME]


def base_path() -> Path | None:
    """Where the default profile is on this machine (None when it must be fetched)."""
    named = os.environ.get(ENV_BASE)
    if named:
        return Path(named)
    for path in (INSTALLED, *_caches()):
        if path.is_file():
            return path
    return None


def _run(argv: list[str], cwd: str) -> None:
    from backends import run

    try:
        done = run.run(argv, timeout=300, cwd=cwd)
    except Exception as exc:  # apt-get missing (BackendUnavailable), or a timeout
        raise LaunchError(
            f"cannot get the engine's default seccomp profile: {exc}", fix=BASE_FIX
        ) from exc
    if not done.ok:
        raise LaunchError(
            f"cannot get the engine's default seccomp profile: {' '.join(argv[:2])} "
            f"failed: {done.stderr.strip()[-300:]}",
            fix=BASE_FIX,
        )


def fetch_base() -> Path:
    """Take the default profile out of Debian's package into the cache; its path.
    ``LaunchError`` (with the fix) when apt cannot give it."""
    with tempfile.TemporaryDirectory(prefix="bottle-dash-seccomp-") as tmp:
        _run(["apt-get", "download", DEB_PACKAGE], tmp)
        debs = sorted(Path(tmp).glob("*.deb"))
        if not debs:
            raise LaunchError(f"apt-get download {DEB_PACKAGE} left no package", fix=BASE_FIX)
        _run(["dpkg-deb", "-x", str(debs[0]), f"{tmp}/x"], tmp)
        found = Path(tmp) / "x" / _IN_PACKAGE
        if not found.is_file():
            raise LaunchError(
                f"{DEB_PACKAGE} holds no {_IN_PACKAGE}: cannot get the default seccomp profile",
                fix=BASE_FIX,
            )
        text = found.read_text(encoding="utf-8")
    harden(json.loads(text))  # never cache anything that is not a profile
    for cache in _caches():
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            part = cache.with_suffix(".part")
            part.write_text(text, encoding="utf-8")
            part.chmod(0o644)
            part.replace(cache)
            return cache
        except OSError:
            continue
    raise LaunchError("cannot write the seccomp profile to any cache", fix=BASE_FIX)


def profile_text() -> str:
    """The hardened profile as JSON text (fetching the default one first if needed)."""
    path = base_path() or fetch_base()
    try:
        base = json.loads(path.read_text(encoding="utf-8"))
        return json.dumps(harden(base), separators=(",", ":"))
    except (OSError, ValueError) as exc:
        raise LaunchError(
            f"the default seccomp profile {path} cannot be used: {exc}", fix=BASE_FIX
        ) from exc


def plan_entry() -> dict[str, Any]:
    """What ``plan`` records of the profile (``extra.seccomp``)."""
    where = base_path()
    return {
        "profile": SUMMARY,
        "base": str(where) if where else f"taken from Debian's {DEB_PACKAGE} at the first up",
        "refused_modes": "setuid, setgid",
        "enosys": list(REFUSED),
    }
