"""A docker bottle's repository copy (``backends.repo_copy``): the volume
``bottle-<slug>-copy`` mounted at /workspace, filled at the first ``up`` through the
archive API, and read without the bottle when it is stopped.

The volume's top directory takes the owner of the image's /workspace when the engine first
mounts it, and an archive cannot change the owner of the folder it unpacks into; so a
short-lived helper container (the agent's image, no network, every capability dropped but
``CHOWN``, never running anything of the agent's) gives it to the repository's owner
before the copy is unpacked into it. Only the repository (``.git``: bottle-dash's own clean
clone, a pack and a few files) crosses the engine; a second helper, as the agent, checks
out the work tree in the volume (a big tree is not tarred and unpacked file by file).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends import ownership, paths, repo_copy
from backends.agent_files import COPY_RECORD
from backends.base import BackendError, Completed, ProgressFn, bottle_name
from backends.docker.engine import api_message, errors, quietly
from backends.egress.plan import ROLE_LABEL

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

#: The role label of a helper container (listing skips every container with a role).
ROLE_COPY_HELPER = "copy-helper"
#: Seconds a helper container may take (a chown, or a read of the copy).
HELPER_TIMEOUT = 300


def copy_volume_name(agent: str) -> str:
    """The volume holding the agent's copy."""
    return bottle_name(agent, "-copy")


def record_file(agent: str) -> Path:
    """``copy.json``: the repository, base and branch the copy was made from."""
    return paths.agent_path(agent, COPY_RECORD)


def recorded(agent: str) -> dict[str, Any] | None:
    """What ``copy.json`` says (None when there is no copy made)."""
    try:
        data = json.loads(record_file(agent).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _helper(
    api: Any, plan: BottlePlan, argv: list[str], *, user: str, read_only: bool, caps: list[str]
) -> str:
    """Create (not start) a helper container with the copy volume at /workspace."""
    from docker.types import Mount

    volume = plan.extra["repo"]["volume"]
    host_config = api.create_host_config(
        mounts=[
            Mount(target=repo_copy.GUEST_COPY, source=volume, type="volume", read_only=read_only)
        ],
        network_mode="none",
        cap_drop=["ALL"],
        cap_add=caps or None,
        read_only=True,
        security_opt=["no-new-privileges"],
        pids_limit=256,
    )
    created = api.create_container(
        plan.image,
        entrypoint=argv[:1],
        command=argv[1:],
        user=user,
        working_dir="/",
        labels={**plan.labels, ROLE_LABEL: ROLE_COPY_HELPER},
        host_config=host_config,
    )
    return str(created["Id"])


def _run_helper(api: Any, ident: str, timeout: float = HELPER_TIMEOUT) -> Completed:
    api.start(ident)
    status = api.wait(ident, timeout=timeout)
    out = api.logs(ident, stdout=True, stderr=False) or b""
    err = api.logs(ident, stdout=False, stderr=True) or b""
    code = int((status or {}).get("StatusCode", -1))
    return Completed(("helper",), code, out.decode(errors="replace"), err.decode(errors="replace"))


def _tar_tree(root: Path, out: Any, *, uid: int, gid: int) -> None:
    """Write a tar of everything under ``root`` (names relative to it) owned by
    ``uid:gid`` to the file ``out``."""

    def own(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
            return None
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(os.listdir(root)):
            tar.add(str(root / entry), arcname=entry, recursive=True, filter=own)


def ensure_copy(api: Any, plan: BottlePlan, undo: ExitStack, progress: ProgressFn) -> None:
    """Make the copy volume of ``plan`` and fill it, unless it exists (an existing copy is
    the agent's work: kept as it is, and its ``copy.json`` base wins over the plan's)."""
    repo = plan.extra.get("repo")
    if not repo:
        return
    volume = repo["volume"]
    try:
        info = api.inspect_volume(volume)
    except errors.NotFound:
        info = None
    if info is not None:
        labels = info.get("Labels") or {}
        if not ownership.is_mine(labels):
            raise ownership.foreign(
                plan.agent, f"volume {volume}", labels.get(ownership.LABEL_OWNER)
            )
        kept = recorded(plan.agent)
        if kept:
            repo.update({k: kept[k] for k in ("base", "base_oid", "branch") if k in kept})
        return
    progress(f"making the agent's copy of {repo['path']} on branch {repo['branch']}")
    api.create_volume(volume, labels=dict(plan.labels))
    undo.callback(quietly, api.remove_volume, volume, force=True)
    work = Path(tempfile.mkdtemp(prefix=f"copy-{plan.agent}-", dir=_scratch()))
    try:
        clone = work / "clone"
        # .git alone crosses the engine (a pack, a few files); the work tree is checked
        # out in a helper below: 100,000 files are not tarred twice
        repo_copy.make_clone(
            Path(repo["path"]),
            repo["base_oid"],
            repo["branch"],
            clone,
            agent=plan.agent,
            checkout=False,
        )
        repo_copy.copy_files(Path(repo["path"]), clone, repo.get("copy") or [], agent=plan.agent)
        ident = _helper(
            api,
            plan,
            ["chown", f"{plan.uid}:{plan.gid}", repo_copy.GUEST_COPY],
            user="0:0",
            read_only=False,
            caps=["CHOWN"],
        )
        try:
            done = _run_helper(api, ident)
            if not done.ok:
                raise BackendError(
                    f"could not give the copy to {plan.uid}:{plan.gid}: {done.stderr}"
                )
            progress("copying the repository into its volume")
            with tempfile.TemporaryFile(dir=work) as tar:
                _tar_tree(clone, tar, uid=plan.uid, gid=plan.gid)
                tar.seek(0)
                if not api.put_archive(ident, repo_copy.GUEST_COPY, tar):
                    raise BackendError(f"the engine refused to fill the volume {volume}")
        finally:
            quietly(api.remove_container, ident, force=True)
        progress("checking out the agent's branch in its copy")
        ident = _helper(
            api,
            plan,
            ["sh", "-c", repo_copy.CHECKOUT_SCRIPT],
            user=f"{plan.uid}:{plan.gid}",
            read_only=False,
            caps=[],
        )
        try:
            done = _run_helper(api, ident, timeout=1800)
            if not done.ok:
                raise BackendError(f"checking out the copy failed: {done.stderr.strip()[-300:]}")
        finally:
            quietly(api.remove_container, ident, force=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Made by this launch: the service runs `setup` once the bottle is up.
    repo["made"] = True
    record = {k: repo[k] for k in ("path", "base", "base_oid", "branch", "volume")}
    paths.write_private(record_file(plan.agent), json.dumps(record, indent=2).encode())


def _scratch() -> Path:
    folder = paths.cache_dir() / "copies"
    paths.private_dirs(folder)
    return folder


def read_copy(api: Any, plan: BottlePlan, script: str) -> Completed:
    """Run ``sh -c script`` over the copy as the agent in a helper container (the bottle
    is not running): no network, no capability, the copy mounted read-only."""
    ident = _helper(
        api,
        plan,
        ["sh", "-c", script],
        user=f"{plan.uid}:{plan.gid}",
        read_only=True,
        caps=[],
    )
    try:
        return _run_helper(api, ident)
    except errors.APIError as exc:
        raise BackendError(f"reading the copy of agent {plan.agent}: {api_message(exc)}") from exc
    finally:
        quietly(api.remove_container, ident, force=True)
