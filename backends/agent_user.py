"""Who the agent runs as: the owner of its workspace, so that what it writes there belongs
to the operator on the host, and ``git`` in the bottle sees a repository owned by its user.

A bottle shares the host kernel's uids (the docker backend) or passes them through
virtiofs (smolmachines), so the only way for files to land on the host owned by the
workspace's owner, with no capability in the bottle, is to run the agent as that uid:gid.
The guest's ``node`` account is given that uid:gid (docker: a generated ``/etc/passwd``
and ``/etc/group`` mounted read-only, execs by numeric uid:gid; smolmachines: root in the
VM rewrites them, execs stay ``runuser -u node``), so the agent is still ``node`` with
``HOME=/home/node`` inside.

A workspace owned by root is the one case where the agent runs as uid 0: with every
capability dropped and no-new-privileges (docker; smolmachines switches with
``smolvm.ROOT_AGENT_SWITCH``), it owns the workspace and can do nothing a capability
would allow. Docker Engine 20.10 (runc 1.1) cannot idmap a bind mount, which would have
let a non-root uid write root-owned files; see README.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from backends.base import GUEST_HOME, GUEST_UID, GUEST_USER

#: Why an agent without a workspace runs as the image's own user.
NO_WORKSPACE = f"no workspace: the image's user {GUEST_USER} ({GUEST_UID}:{GUEST_UID})"
#: The one exception to "non-root in the bottle", said wherever the plan is shown.
ROOT_EXCEPTION = (
    "is owned by root: the agent runs as uid 0, with every capability dropped and "
    "no-new-privileges (files it writes must belong to root on the host; this engine "
    "cannot idmap a mount)"
)


class AgentUser(NamedTuple):
    """The uid:gid the agent runs as, and why (shown by ``plan``)."""

    uid: int
    gid: int
    reason: str


def agent_user(workspace: str | None) -> AgentUser:
    """The uid:gid of ``workspace``'s owner (it must exist: plans check that first), or
    the image's ``node`` (1000:1000) when there is no workspace."""
    if workspace is None:
        return AgentUser(GUEST_UID, GUEST_UID, NO_WORKSPACE)
    st = os.stat(workspace)
    if st.st_uid == 0:
        return AgentUser(0, st.st_gid, f"the workspace {workspace} {ROOT_EXCEPTION}")
    return AgentUser(
        st.st_uid, st.st_gid, f"owner of the workspace {workspace} ({st.st_uid}:{st.st_gid})"
    )


def guest_passwd(text: str, uid: int, gid: int) -> str:
    """The guest's ``/etc/passwd`` with ``node`` as ``uid:gid`` (home ``/home/node``).

    Other accounts that had ``uid`` are dropped (root excepted), so the uid has one name;
    a missing ``node`` line is added. Lines that are not seven fields are kept as they are.
    """
    out: list[str] = []
    node = f"{GUEST_USER}:x:{uid}:{gid}:{GUEST_USER}:{GUEST_HOME}:/bin/sh"
    placed = False
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) != 7:
            out.append(line)
            continue
        if fields[0] == GUEST_USER:
            fields[2:4] = [str(uid), str(gid)]
            fields[5] = GUEST_HOME
            out.append(":".join(fields))
            placed = True
        elif fields[2] == str(uid) and fields[0] != "root":
            continue
        else:
            out.append(line)
    if not placed:
        out.append(node)
    return "\n".join(out) + "\n"


def guest_group(text: str, gid: int) -> str:
    """The guest's ``/etc/group`` with group ``node`` as ``gid``; when another group already
    has ``gid`` (root's 0, a shared ``users``), that one stays and ``node``'s line goes."""
    lines = text.splitlines()
    taken = any(
        len(f := line.split(":")) == 4 and f[0] != GUEST_USER and f[2] == str(gid) for line in lines
    )
    out: list[str] = []
    placed = False
    for line in lines:
        fields = line.split(":")
        if len(fields) == 4 and fields[0] == GUEST_USER:
            if not taken:
                fields[2] = str(gid)
                out.append(":".join(fields))
                placed = True
            continue
        out.append(line)
    if not taken and not placed:
        out.append(f"{GUEST_USER}:x:{gid}:")
    return "\n".join(out) + "\n"
