"""The egress sidecar image: Debian's python3 and mitmproxy from PyPI.

No image registry is needed: the root file system is assembled offline (``debootstrap``
of Debian bookworm with python3 and ca-certificates, then ``pip install --target`` of
mitmproxy) and ``docker import``ed. The tag carries a hash of the inputs (the recipe,
the Debian suite and packages, the mitmproxy version), so it is built once per machine.
The broker addon is not in the image: the sidecar mounts this package's folder read-only
at ``ADDON_DIR``, so a new bottle-dash runs its own addon without a rebuild.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from backends import run
from backends.base import BackendError, ProgressFn, _no_progress

HERE = Path(__file__).resolve().parent
REPO = "bottle-dash-egress"
MITMPROXY = "mitmproxy==11.0.2"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "ca-certificates")
#: Where the sidecar mounts this folder (read-only) and finds the addon.
ADDON_HOST_DIR = HERE
ADDON_DIR = "/opt/bottle-egress"
ADDON = f"{ADDON_DIR}/addon.py"
SITE = "usr/local/lib/python3.11/dist-packages"
#: Bump when the recipe below changes in a way the hash cannot see.
RECIPE = "1"
LABEL = "bottle-dash.egress-image"
BUILD_FIX = (
    "the sidecar image is built with debootstrap (apt-get install -y debootstrap) as root, "
    "from deb.debian.org and PyPI"
)


def sidecar_tag() -> str:
    """The image tag for the current inputs (pure: builds nothing)."""
    h = hashlib.sha256()
    for part in (RECIPE, MITMPROXY, SUITE, *PACKAGES):
        h.update(part.encode() + b"\0")
    return f"{REPO}:{h.hexdigest()[:12]}"


def image_exists(tag: str, docker: str = "docker") -> bool:
    return run.run([docker, "image", "inspect", tag], timeout=60).ok


def debootstrap_argv(rootfs: Path) -> list[str]:
    return [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(rootfs),
        MIRROR,
    ]


def pip_argv(target: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--disable-pip-version-check",
        "--target",
        str(target),
        MITMPROXY,
    ]


def _tar_dir(rootfs: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for child in sorted(rootfs.iterdir()):
            if child.name in {"proc", "sys", "dev"}:
                info = tarfile.TarInfo(child.name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            tar.add(str(child), arcname=child.name)
    return buf.getvalue()


def ensure_sidecar_image(progress: ProgressFn = _no_progress, docker: str = "docker") -> str:
    """The sidecar image's tag, building it when the engine does not have it."""
    tag = sidecar_tag()
    if image_exists(tag, docker):
        return tag
    if sys.version_info[:2] != (3, 11):
        raise BackendError(
            f"building the egress sidecar image needs Python 3.11 (Debian {SUITE}'s), "
            f"this is {sys.version.split()[0]}",
            fix="run `bottle-dash up` once from a Python 3.11 environment",
        )
    if shutil.which("debootstrap") is None:
        raise BackendError("debootstrap is not installed", fix=BUILD_FIX)
    with tempfile.TemporaryDirectory(prefix="bottle-egress-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        progress(f"egress image: debootstrap {SUITE} with {', '.join(PACKAGES)}")
        done = run.run(debootstrap_argv(rootfs), timeout=1800)
        if not done.ok:
            raise BackendError(
                "building the egress sidecar image failed in debootstrap: "
                + (done.stderr or done.stdout).strip()[-300:],
                fix=BUILD_FIX,
            )
        progress(f"egress image: pip install {MITMPROXY}")
        done = run.run(pip_argv(rootfs / SITE), timeout=1800)
        if not done.ok:
            raise BackendError(
                "building the egress sidecar image failed in pip: "
                + (done.stderr or done.stdout).strip()[-300:],
                fix="PyPI must be reachable",
            )
        (rootfs / ADDON_DIR.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(rootfs / junk, ignore_errors=True)
        progress(f"egress image: docker import {tag}")
        argv = [docker, "import"]
        for change in (
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV HOME=/tmp",
            f"LABEL {LABEL}=1",
            'CMD ["python3"]',
        ):
            argv += ["--change", change]
        argv += ["-", tag]
        done = run.run(argv, input=_tar_dir(rootfs), timeout=600)
        if not done.ok:
            raise BackendError(f"docker import of {tag} failed: {done.stderr.strip()[-300:]}")
    progress(f"egress image: built {tag}")
    return tag
