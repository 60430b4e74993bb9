"""A smolmachines bottle's repository copy (``backends.repo_copy``): the clone made on the
host by bottle-dash's git reaches the machine's own disk at /workspace through
``SmolBottle.cp_in`` (one tar over ``machine cp``, unpacked as root in the VM and handed
to the agent), so no path of the host repository is ever mounted into the VM. The disk
keeps it across down/up; it goes with the machine (``rm --volumes``)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from backends import paths, repo_copy
from backends.agent_files import COPY_RECORD
from backends.base import GUEST_USER, ProgressFn

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan
    from backends.smolmachines.bottle import SmolBottle


def fill_copy(bottle: SmolBottle, plan: BottlePlan, progress: ProgressFn) -> None:
    """Make the agent's copy of ``plan``'s repository in the new machine."""
    repo = plan.extra["repo"]
    progress(f"making the agent's copy of {repo['path']} on branch {repo['branch']}")
    scratch = paths.cache_dir() / "copies"
    paths.private_dirs(scratch)
    work = Path(tempfile.mkdtemp(prefix=f"copy-{plan.agent}-", dir=scratch))
    try:
        clone = work / "clone"
        repo_copy.make_clone(
            Path(repo["path"]), repo["base_oid"], repo["branch"], clone, agent=plan.agent
        )
        repo_copy.copy_files(Path(repo["path"]), clone, repo.get("copy") or [], agent=plan.agent)
        progress("copying the repository into the machine")
        bottle.cp_in(clone, repo_copy.GUEST_COPY, user=GUEST_USER)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    repo["made"] = True
    record = {k: repo[k] for k in ("path", "base", "base_oid", "branch", "volume")}
    paths.write_private(paths.agent_path(plan.agent, COPY_RECORD), json.dumps(record).encode())
