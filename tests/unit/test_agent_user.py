"""Who the agent runs as (the workspace's owner), the guest account files that make ``node``
that uid:gid, and the tar copy that re-owns a home."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from backends.agent_user import NO_WORKSPACE, agent_user, guest_group, guest_passwd
from backends.base import AgentSpec, BottleBackend, ProvisionError
from backends.docker.accounts import reown_tar, user_ids
from backends.docker.backend import DockerBackend
from backends.egress.spec import EgressSpec
from backends.smolmachines.backend import SmolmachinesBackend

IMAGE_PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "node:x:1000:1000::/home/node:/bin/bash\n"
    "ubuntu:x:1234:1234::/home/ubuntu:/bin/bash\n"
)
IMAGE_GROUP = "root:x:0:\nusers:x:100:\nnode:x:1000:\n"


@pytest.mark.parametrize("uid", [1000, 1234, 0])
def test_agent_user_is_the_workspace_owner(tmp_path: Path, uid: int) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    os.chown(ws, uid, uid + 7)
    user = agent_user(str(ws))
    assert (user.uid, user.gid) == (uid, uid + 7)
    assert str(ws) in user.reason
    if uid == 0:
        # The one exception to non-root is said, with what keeps it safe.
        assert "uid 0" in user.reason and "capability" in user.reason
    else:
        assert f"owner of the workspace {ws} ({uid}:{uid + 7})" == user.reason


def test_no_workspace_runs_as_the_images_node() -> None:
    assert agent_user(None) == type(agent_user(None))(1000, 1000, NO_WORKSPACE)


@pytest.mark.parametrize("backend", [DockerBackend, SmolmachinesBackend])
def test_plan_shows_uid_gid_and_why(tmp_path: Path, backend: type[BottleBackend]) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    os.chown(ws, 1234, 1234)
    plan = backend().prepare(AgentSpec(name="alpha", workspace=ws))
    data = plan.to_dict()
    assert (data["uid"], data["gid"]) == (1234, 1234)
    assert data["uid_reason"] == f"owner of the workspace {ws} (1234:1234)"
    # A sealed bottle's hooks send their word to its sidecar: no status mount at all.
    assert plan.status_dir is None
    # An unsealed one's status dir, which the hooks write through, is the agent's.
    unsealed = AgentSpec(name="alpha", workspace=ws, egress=EgressSpec(sealed=False))
    plan = backend().prepare(unsealed)
    assert plan.status_dir and os.stat(plan.status_dir).st_uid == 1234


def test_docker_plan_mounts_the_home_at_home() -> None:
    plan = DockerBackend().prepare(AgentSpec(name="alpha"))
    assert (plan.uid, plan.gid, plan.uid_reason) == (1000, 1000, NO_WORKSPACE)
    assert plan.extra["home_mount"] == "/home"
    assert plan.extra["passwd"].endswith("/agents/alpha/passwd")


def test_smolmachines_plan_refuses_a_missing_workspace(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="is not a directory") as err:
        SmolmachinesBackend().prepare(AgentSpec(name="alpha", workspace=tmp_path / "nope"))
    assert err.value.fix and "mkdir -p" in err.value.fix


def test_guest_passwd_gives_node_the_uid_and_keeps_the_rest() -> None:
    out = guest_passwd(IMAGE_PASSWD, 1234, 1234).splitlines()
    assert out == [
        "root:x:0:0:root:/root:/bin/bash",
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
        "node:x:1234:1234::/home/node:/bin/bash",
        # ubuntu had 1234: one name per uid, so node is who `id -un` says.
    ]
    same = guest_passwd(IMAGE_PASSWD, 1000, 1000)
    assert "node:x:1000:1000::/home/node:/bin/bash" in same.splitlines()
    assert "ubuntu:x:1234:1234::/home/ubuntu:/bin/bash" in same.splitlines()


def test_guest_passwd_root_keeps_root_first_and_adds_a_missing_node() -> None:
    out = guest_passwd(IMAGE_PASSWD, 0, 0).splitlines()
    assert out[0] == "root:x:0:0:root:/root:/bin/bash"
    assert "node:x:0:0::/home/node:/bin/bash" in out
    added = guest_passwd("root:x:0:0:root:/root:/bin/sh\nbroken line\n", 1234, 50)
    assert added.splitlines() == [
        "root:x:0:0:root:/root:/bin/sh",
        "broken line",
        "node:x:1234:50:node:/home/node:/bin/sh",
    ]


def test_guest_group_moves_node_unless_the_gid_is_taken() -> None:
    assert guest_group(IMAGE_GROUP, 1234).splitlines() == [
        "root:x:0:",
        "users:x:100:",
        "node:x:1234:",
    ]
    # Another group has it: that one names the gid, node's own line goes.
    assert guest_group(IMAGE_GROUP, 100).splitlines() == ["root:x:0:", "users:x:100:"]
    assert guest_group(IMAGE_GROUP, 0).splitlines() == ["root:x:0:", "users:x:100:"]
    assert guest_group("root:x:0:\n", 1234).splitlines() == ["root:x:0:", "node:x:1234:"]


def test_user_ids_of_an_inspected_bottle() -> None:
    assert user_ids({"Config": {"User": "1234:50"}}) == (1234, 50)
    assert user_ids({"Config": {"User": "0:0"}}) == (0, 0)
    # Bottles made before they ran as the workspace's owner say `node`: 1000:1000.
    assert user_ids({"Config": {"User": "node"}}) == (1000, 1000)
    assert user_ids({}) == (1000, 1000)


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def _entry(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = kind, mode, size
    info.uid = info.gid = 1000
    info.uname = info.gname = "node"
    return info


def test_reown_tar_sets_every_owner_clears_setuid_and_drops_devices() -> None:
    link = _entry("node/link", tarfile.SYMTYPE, 0o777)
    link.linkname = "../../etc/passwd"
    src = _tar(
        [
            (_entry("node", tarfile.DIRTYPE, 0o755), None),
            (_entry("node/.claude.json", tarfile.REGTYPE, 0o600, 2), b"{}"),
            (_entry("node/tool", tarfile.REGTYPE, 0o4755, 3), b"bin"),
            (link, None),
            (_entry("node/null", tarfile.CHRTYPE, 0o666), None),
            (_entry("node/pipe", tarfile.FIFOTYPE, 0o644), None),
        ]
    )
    out = io.BytesIO()
    reown_tar(src, out, 1234, 99)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"node", "node/.claude.json", "node/tool", "node/link"}
        assert {(m.uid, m.gid, m.uname) for m in members.values()} == {(1234, 99, "")}
        assert stat.S_IMODE(members["node/tool"].mode) == 0o755
        assert stat.S_IMODE(members["node/.claude.json"].mode) == 0o600
        assert members["node/link"].linkname == "../../etc/passwd"
        data = tar.extractfile(members["node/.claude.json"])
        assert data is not None and data.read() == b"{}"


def test_smolmachines_agent_as_root_switches_without_capabilities() -> None:
    from backends.smolmachines import smolvm as cli

    argv = cli.exec_argv("smolvm", "m", ["claude"], agent_uid=0)
    assert argv[argv.index("--") + 1 :] == [*cli.ROOT_AGENT_SWITCH, "claude"]
    assert cli.ROOT_AGENT_SWITCH[-1] == "--" and "--no-new-privs" in cli.ROOT_AGENT_SWITCH
    assert "--bounding-set=-all" in cli.ROOT_AGENT_SWITCH
    # Any other uid, and root itself on request, keep runuser (under no_new_privs).
    nnp = ["setpriv", "--no-new-privs", "--"]
    for uid in (None, 1000, 1234):
        plain = cli.exec_argv("smolvm", "m", ["claude"], agent_uid=uid)
        assert plain[plain.index("--") + 1 :] == [*nnp, "runuser", "-u", "node", "--", "claude"]
    asked = cli.exec_argv("smolvm", "m", ["id"], user="root", agent_uid=0)
    assert asked[asked.index("--") + 1 :] == [*nnp, "runuser", "-u", "root", "--", "id"]
