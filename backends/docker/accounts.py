"""The agent's account in a docker bottle: ``node`` as the workspace owner's uid:gid.

- ``/etc/passwd`` and ``/etc/group`` are the image's own with ``node``'s ids replaced
  (``backends.agent_user``), written to the agent's state dir and mounted read-only, so that
  inside the bottle the uid is named ``node`` with home ``/home/node`` (``id``, git's
  ident, node's ``os.userInfo``). The engine itself resolves ``-u NAME`` in the image's
  files, not the mounted ones, so execs name the agent by its numeric ``uid:gid`` (and
  set ``HOME``; see ``DockerBottle.as_user``). The image's files are read from a container
  that is created and never started (the bottle's own would show the mounts).
- ``/home/node`` belongs to that uid:gid: the home volume is mounted at ``/home`` so that
  ``node`` is an entry inside it, and a home owned by anyone else is re-owned by sending
  it back through the engine's archive API with new owners in the tar headers (the engine
  applies them as root on the host; nothing in the bottle holds a capability).
"""

from __future__ import annotations

import io
import json
import posixpath
import stat
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends import paths
from backends.agent_user import guest_group, guest_passwd
from backends.base import GUEST_HOME, GUEST_UID, LABEL_AGENT, ProvisionError
from backends.docker.bottle import put_archive, sdk_exec
from backends.docker.engine import api_message, errors

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

#: Spill a re-owned home to disk beyond this size rather than hold it in memory.
SPOOL_MAX = 32 * 1024**2


def _read_files(api: Any, container: str, names: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        try:
            stream, _stat = api.get_archive(container, name)
        except errors.NotFound:
            found[name] = ""
            continue
        import tarfile  # here, not at the top: `ls` and attach need no tar

        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = next((m for m in tar.getmembers() if m.isreg()), None)
            data = tar.extractfile(member) if member else None
            found[name] = data.read().decode(errors="replace") if data else ""
    return found


#: On the short-lived container that reads an image's account files. Not the bottle
#: labels: a listing must never take it for the agent's bottle.
LABEL_PROBE = "bottle-dash.probe"


def image_accounts(api: Any, image: str, agent: str) -> tuple[str, str]:
    """``/etc/passwd`` and ``/etc/group`` of ``image`` (empty when it has none), from a
    container that is created, read and removed without ever starting.

    Kept in the cache dir by image id (content-addressed, so never stale): reading them
    costs the engine two archive calls (~0.8 s measured here), later launches of the same
    image one ``inspect``."""
    image_id = str(api.inspect_image(image)["Id"]).replace(":", "-")
    cached = paths.cache_dir() / "image-accounts" / f"{image_id}.json"
    try:
        data = json.loads(cached.read_text(encoding="utf-8"))
        return str(data["passwd"]), str(data["group"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    probe = api.create_container(
        image, command=["true"], labels={LABEL_PROBE: agent}, network_disabled=True
    )["Id"]
    try:
        files = _read_files(api, probe, ("/etc/passwd", "/etc/group"))
    finally:
        api.remove_container(probe, force=True, v=True)
    passwd, group = files["/etc/passwd"], files["/etc/group"]
    with suppress(OSError):
        paths.write_readable(cached, json.dumps({"passwd": passwd, "group": group}))
    return passwd, group


def write_accounts(api: Any, plan: BottlePlan) -> None:
    """Write the agent's ``passwd`` and ``group`` (mode 0644: the agent reads them) to the
    paths ``plan.extra`` names, from the image's own."""
    passwd, group = image_accounts(api, plan.image, plan.agent)
    paths.write_readable(Path(plan.extra["passwd"]), guest_passwd(passwd, plan.uid, plan.gid))
    paths.write_readable(Path(plan.extra["group"]), guest_group(group, plan.gid))


class _ChunkReader(io.RawIOBase):
    """A read-only file over the engine's archive stream (an iterator of byte chunks)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, out: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(out), len(self._buf))
        out[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def reown_tar(src: Any, dst: Any, uid: int, gid: int) -> None:
    """Copy the tar stream ``src`` to ``dst`` with every entry owned by ``uid:gid``.

    Devices, fifos and sockets are left out; set-uid and set-gid bits are cleared, as
    ``chown`` would (a file the agent marked set-uid must not become root's).
    """
    import tarfile

    with (
        tarfile.open(fileobj=src, mode="r|") as tin,
        tarfile.open(fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT) as tout,
    ):
        for member in tin:
            if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
                continue
            member.uid, member.gid = uid, gid
            member.uname = member.gname = ""
            member.mode &= ~(stat.S_ISUID | stat.S_ISGID)
            tout.addfile(member, tin.extractfile(member) if member.isreg() else None)


def home_owner(api: Any, container: str) -> tuple[int, int] | None:
    """The uid:gid owning ``/home/node`` in the running ``container`` (None if unknown)."""
    code, out, _err = sdk_exec(api, container, ["stat", "-c", "%u:%g", GUEST_HOME], user="0")
    uid, _, gid = out.strip().partition(":")
    if code or not uid.isdigit() or not gid.isdigit():
        return None
    return int(uid), int(gid)


def own_home(api: Any, plan: BottlePlan) -> bool:
    """Make ``/home/node`` and everything in it belong to ``plan.uid:plan.gid``; True when
    it had to be re-owned (a new home from the image, or the workspace changed owner)."""
    if home_owner(api, plan.bottle) == (plan.uid, plan.gid):
        return False
    parent = posixpath.dirname(GUEST_HOME)
    try:
        stream, _stat = api.get_archive(plan.bottle, GUEST_HOME)
        import tempfile

        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX) as spool:
            reown_tar(_ChunkReader(stream), spool, plan.uid, plan.gid)
            spool.seek(0)
            put_archive(api, plan.bottle, parent, spool)
    except errors.APIError as exc:
        detail = api_message(exc)
        fix = None
        if "read-only" in detail:
            fix = (
                f"its home volume {plan.home_volume} was made before bottles ran as the "
                f"workspace's owner: remove it with `bottle-dash rm --volumes {plan.agent}` "
                f"(this deletes the agent's conversations) and `bottle-dash up {plan.agent}`"
                f", or give the workspace to uid 1000 (`chown -R 1000:1000 {plan.workspace}`)"
            )
        raise ProvisionError(
            f"cannot give {GUEST_HOME} of agent {plan.agent} to uid {plan.uid}:{plan.gid}: "
            f"{detail}",
            fix=fix,
            agent=plan.agent,
        ) from exc
    return True


def user_ids(info: dict[str, Any]) -> tuple[int, int]:
    """The uid:gid an inspected bottle runs its agent as: its ``Config.User`` (``uid:gid``
    since bottles run as the workspace's owner; ``node``, that is 1000:1000, before)."""
    user = str((info.get("Config") or {}).get("User") or "")
    uid, _, gid = user.partition(":")
    if not uid.isdigit():
        return GUEST_UID, GUEST_UID
    return int(uid), int(gid) if gid.isdigit() else int(uid)


def restore_accounts(api: Any, info: dict[str, Any]) -> None:
    """Write the account files an inspected bottle mounts when they are gone (the state dir
    was cleared), so that it can start again; the engine refuses a missing bind source."""
    mounts = {
        str(m.get("Destination")): str(m.get("Source"))
        for m in info.get("Mounts") or []
        if m.get("Type") == "bind"
    }
    passwd, group = mounts.get("/etc/passwd"), mounts.get("/etc/group")
    if not passwd or not group or (Path(passwd).is_file() and Path(group).is_file()):
        return
    config = info.get("Config") or {}
    uid, gid = user_ids(info)
    agent = str((config.get("Labels") or {}).get(LABEL_AGENT, ""))
    image_passwd, image_group = image_accounts(api, str(config.get("Image")), agent)
    paths.write_readable(Path(passwd), guest_passwd(image_passwd, uid, gid))
    paths.write_readable(Path(group), guest_group(image_group, gid))
