"""Where a machine's root filesystem comes from: resolution (pure) and the host-side cache.

An agent's ``image`` may be:

- a ``.smolmachine`` file (``smolvm pack create`` output): ``machine create --from F``;
- a local source, by smolvm's own rule (starts with ``/``, ``./``, ``../`` or ``~``, or ends
  in ``.tar``/``.tar.gz``/``.tgz``): a ``docker save`` archive or an unpacked rootfs
  directory, passed as ``--image <absolute path>``;
- anything else is an image reference, used in this order at launch:
  1. a pack that ``SmolmachinesBackend.pack_image`` made earlier, cached under
     ``cache_dir()/smolmachines/packs/<key>/`` keyed by the reference: ``--from`` it
     (fastest start, no pull, no Docker needed);
  2. an image the local Docker engine has (the usual case for ``bottle-dash-agent``,
     which is built locally): ``docker save`` once into
     ``cache_dir()/smolmachines/images/<image id>.tar`` and ``--image`` that archive, since
     smolvm reads a bare name as a registry reference and would try to pull it;
  3. otherwise the reference goes to smolvm as is, which pulls it (and caches it).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from backends import run as runner
from backends.base import BackendError, ImageNotFound
from backends.images.reference import is_local_path
from backends.paths import cache_dir

SMOLMACHINE = "smolmachine"
ARCHIVE = "archive"
ROOTFS = "rootfs"
REFERENCE = "reference"

_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class ImageSource:
    """A resolved image: ``kind`` is one of the constants above; ``ref`` a path or a ref."""

    kind: str
    ref: str

    def to_dict(self) -> dict[str, str]:
        """As stored in ``BottlePlan.extra["source"]``."""
        return {"kind": self.kind, "ref": self.ref}


@dataclass(frozen=True)
class CreateSource:
    """What ``machine create`` gets: ``--image IMAGE`` or ``--from PACK``."""

    image: str | None = None
    from_pack: str | None = None


def resolve(image: str, *, base: Path | None = None) -> ImageSource:
    """Classify ``image`` without touching anything; relative paths resolve against
    ``base`` (the config file's folder) or the current directory."""
    if is_local_path(image):
        path = Path(image).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        path = Path(os.path.normpath(path))
        if image.endswith(".smolmachine"):
            return ImageSource(SMOLMACHINE, str(path))
        if image.endswith(_ARCHIVE_SUFFIXES):
            return ImageSource(ARCHIVE, str(path))
        return ImageSource(ROOTFS, str(path) + "/")
    return ImageSource(REFERENCE, image)


def _key(ref: str) -> str:
    return hashlib.sha256(ref.encode()).hexdigest()[:16]


def pack_output(ref: str) -> Path:
    """Where the pack of image ``ref`` lives: ``OUT`` (the stub) and ``OUT.smolmachine``."""
    return cache_dir() / "smolmachines" / "packs" / _key(ref) / "agent"


def archive_path(image_id: str) -> Path:
    """Where the ``docker save`` archive of a local image id is cached."""
    digest = image_id.split(":", 1)[-1]
    return cache_dir() / "smolmachines" / "images" / f"{digest[:32]}.tar"


def docker_image_id(ref: str) -> str | None:
    """The id of ``ref`` in the local Docker engine; None when it has no such image or
    there is no Docker at all (the smolmachines backend does not need one)."""
    try:
        done = runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], timeout=30)
    except BackendError:
        return None
    if not done.ok:
        return None
    return done.stdout.strip() or None


def docker_save(ref: str, image_id: str) -> Path:
    """``docker save`` ``ref`` into the cache once per image id; returns the archive."""
    out = archive_path(image_id)
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + f".{os.getpid()}.partial")
    runner.run(["docker", "save", "-o", str(partial), ref], timeout=900, check=True)
    partial.replace(out)  # atomic: a half-written archive is never used
    return out


def materialize(source: ImageSource) -> CreateSource:
    """Turn a resolved source into ``machine create`` arguments (may ``docker save``)."""
    if source.kind == SMOLMACHINE:
        if not Path(source.ref).is_file():
            raise ImageNotFound(
                f"{source.ref} does not exist",
                fix="make it with `smolvm pack create --image IMG -o OUT`",
            )
        return CreateSource(from_pack=source.ref)
    if source.kind in (ARCHIVE, ROOTFS):
        if not Path(source.ref).exists():
            raise ImageNotFound(
                f"{source.ref} does not exist",
                fix="make it with `docker save IMAGE -o FILE.tar`",
            )
        return CreateSource(image=source.ref)
    pack = pack_output(source.ref).with_suffix(".smolmachine")
    if pack.is_file():
        return CreateSource(from_pack=str(pack))
    image_id = docker_image_id(source.ref)
    if image_id:
        return CreateSource(image=str(docker_save(source.ref, image_id)))
    return CreateSource(image=source.ref)
