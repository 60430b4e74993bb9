"""Tar streams for ``put_archive``: how files get into a bottle with the right owner.

The bottle drops every capability, so root inside it cannot ``chown``; the engine unpacks
an archive as root on the host side and keeps the owner written in each tar header. So
ownership and modes are decided here, in the headers, and nothing runs in the guest.
"""

from __future__ import annotations

import io
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tarfile


def _header(name: str, *, kind: bytes, mode: int, uid: int, gid: int) -> tarfile.TarInfo:
    import tarfile  # here, not at the top: listing bottles needs no tar

    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = int(time.time())
    return info


def file_tar(
    name: str,
    data: bytes,
    *,
    mode: int,
    uid: int,
    gid: int,
    parents: Sequence[tuple[str, int]] = (),
) -> bytes:
    """A tar holding ``parents`` (``(dir, mode)``, outermost first) and the file ``name``,
    all owned by ``uid:gid``."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory, dir_mode in parents:
            tar.addfile(_header(directory, kind=tarfile.DIRTYPE, mode=dir_mode, uid=uid, gid=gid))
        info = _header(name, kind=tarfile.REGTYPE, mode=mode, uid=uid, gid=gid)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def path_tar(src: Path, arcname: str, *, uid: int, gid: int, mode: int | None = None) -> bytes:
    """A tar of the host file or directory ``src`` stored as ``arcname``, every entry owned
    by ``uid:gid``; ``mode`` replaces the mode of the top entry only.

    Modes inside a directory are the host's; symlinks stay links; devices, fifos and
    sockets are left out (they mean nothing in a bottle).
    """
    return paths_tar([(src, arcname)], uid=uid, gid=gid, mode=mode)


def paths_tar(
    items: Sequence[tuple[Path, str]], *, uid: int, gid: int, mode: int | None = None
) -> bytes:
    """One tar holding each ``(host path, arcname)`` of ``items`` as ``path_tar`` would
    (one archive, one engine call, however many skills)."""
    import tarfile

    tops = {arcname.rstrip("/") for _, arcname in items}

    def own(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
            return None
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        if mode is not None and info.name in tops:
            info.mode = stat.S_IMODE(mode)
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for src, arcname in items:
            tar.add(str(src), arcname=arcname.rstrip("/"), recursive=True, filter=own)
    return buf.getvalue()
