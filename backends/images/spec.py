"""What an offline-built image is made of (``ImageSpec``), the digest that names it, and
the image config ``docker import`` gives it. Pure: nothing here runs a command.

The digest is a hash of every input (the spec, the contents of the files it copies, and
``BUILDER_VERSION``) but the mirror, so an unchanged spec is never built twice on one
machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Bump when the build steps change in a way that changes the image for the same spec.
BUILDER_VERSION = "1"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Every image the builder (``rootfs.py``) makes carries its input digest under this label.
LABEL_DIGEST = "bottle-dash.image-digest"


@dataclass(frozen=True)
class ImageUser:
    """A user (and its group of the same name and id) created in the image."""

    name: str
    uid: int
    home: str = ""  # default /home/<name>
    shell: str = "/bin/bash"


@dataclass(frozen=True)
class ImageFile:
    """A file (``data`` or the host file ``source``) or, with neither, a directory."""

    path: str  # absolute path in the image
    data: bytes | None = None
    source: Path | None = None
    mode: int = 0o644
    uid: int = 0
    gid: int = 0

    @property
    def is_dir(self) -> bool:
        return self.data is None and self.source is None


@dataclass(frozen=True)
class ImageSpec:
    """What an image is made of. Only ``repository`` is required.

    ``packages``: Debian packages (with their dependencies) on top of minbase.
    ``pip``: requirement specifiers (``"mitmproxy==11.0.2"``), for the image's python3.
    ``npm``: package specifiers (``"@anthropic-ai/claude-code@2.1.332"``), installed
    globally (binaries in ``/usr/local/bin``).
    ``files``: files and directories, applied after the packages (parents are created).
    ``users``: created before pip/npm/files, so files can belong to them by uid.
    ``user``, ``workdir``, ``env``, ``labels``, ``cmd``, ``entrypoint``: the image config
    (``ENV PATH`` defaults to Debian's when ``env`` has none).
    ``suite``/``mirror``: which Debian; the mirror is not part of the digest.
    """

    repository: str
    packages: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    npm: tuple[str, ...] = ()
    files: tuple[ImageFile, ...] = ()
    users: tuple[ImageUser, ...] = ()
    user: str = "root"
    workdir: str = "/"
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    suite: str = "bookworm"
    mirror: str = DEBIAN_MIRROR

    def all_packages(self) -> list[str]:
        extra = ["python3", "python3-pip"] if self.pip else []
        return sorted(set(self.packages) | set(extra))


def _hash_path(h: hashlib._Hash, path: Path) -> None:
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file():
                h.update(str(child.relative_to(path)).encode() + b"\0")
                h.update(child.read_bytes())
    else:
        h.update(path.read_bytes())


def digest(spec: ImageSpec) -> str:
    """12 hex digits naming every input of the image (not the mirror)."""
    h = hashlib.sha256()
    doc = {
        "builder": BUILDER_VERSION,
        "packages": spec.all_packages(),
        "pip": list(spec.pip),
        "npm": list(spec.npm),
        "users": [[u.name, u.uid, u.home, u.shell] for u in spec.users],
        "files": [[f.path, f.mode, f.uid, f.gid, f.is_dir] for f in spec.files],
        "config": changes(spec, "-"),
        "suite": spec.suite,
    }
    h.update(json.dumps(doc, sort_keys=True).encode())
    for f in spec.files:
        if f.data is not None:
            h.update(f.data)
        elif f.source is not None:
            _hash_path(h, f.source)
    return h.hexdigest()[:12]


def image_tag(spec: ImageSpec) -> str:
    """``<repository>:<digest>``: the tag ``ensure_image`` builds (does not build)."""
    return f"{spec.repository}:{digest(spec)}"


def _quote(value: str) -> str:
    """A Dockerfile ENV/LABEL value: double-quoted, backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def changes(spec: ImageSpec, image_digest: str) -> list[str]:
    """The ``docker import --change`` instructions for the image config."""
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    labels = {**spec.labels, LABEL_DIGEST: image_digest}
    out = [f"USER {spec.user}", f"WORKDIR {spec.workdir}"]
    out += [f"ENV {k}={_quote(v)}" for k, v in sorted(env.items())]
    out += [f"LABEL {_quote(k)}={_quote(v)}" for k, v in sorted(labels.items())]
    if spec.entrypoint:
        out.append(f"ENTRYPOINT {json.dumps(list(spec.entrypoint))}")
    if spec.cmd:
        out.append(f"CMD {json.dumps(list(spec.cmd))}")
    return out
