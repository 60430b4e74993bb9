"""Build a Docker image with no registry: assemble a Debian root filesystem and
``docker import`` it.

Where no container registry answers (an air-gapped site, CI, this project's own test
machines) ``FROM debian`` cannot be pulled, but Debian's package archive, PyPI and npm
usually can be reached through their own clients. An ``ImageSpec`` says what an image is
made of; ``ensure_image`` builds it once per machine:

1. ``debootstrap --variant=minbase --include=<packages>`` (``python3-pip`` is added when
   there are pip requirements);
2. users (``groupadd``/``useradd`` in a chroot);
3. pip requirements, installed by the rootfs's own Python in a chroot
   (``--break-system-packages``: the image is the environment), with the host's index
   settings and CA bundle (a site that intercepts TLS has its own CA), which do not stay
   in the image;
4. npm packages, installed by the host's ``npm`` into ``/usr/local`` of the rootfs (their
   install scripts run on the host, so npm must fetch for the image's platform, which is
   the host's);
5. directories and files;
6. apt's caches removed, then ``tar | docker import --change ...`` with the user, workdir,
   env, labels and cmd.

The image is tagged ``<repository>:<digest>``, the digest being a hash of every input (the
spec, the contents of the files it copies, and ``BUILDER_VERSION``), so an unchanged spec
is never built twice on one machine; builds of one digest are serialized by a file lock,
so concurrent callers wait for the first and then reuse its image. Every step's output
reaches ``progress`` line by line.

It needs root (debootstrap and chown) and ``debootstrap`` (``apt-get install -y
debootstrap``), plus ``npm`` when the spec has npm packages; ``missing_tools`` says what is
absent, with the fix.

This module runs the build; what an image is made of and its digest are in ``spec.py``,
each step's argv in ``steps.py`` (both pure, and re-exported here).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from backends import run
from backends.base import BackendError, CommandFailed, ProgressFn, no_progress
from backends.images.spec import (
    BUILDER_VERSION,
    DEBIAN_MIRROR,
    DEFAULT_PATH,
    LABEL_DIGEST,
    ImageFile,
    ImageSpec,
    ImageUser,
    changes,
    digest,
    image_tag,
)
from backends.images.steps import (
    PIP_CA_GUEST,
    PIP_PASSTHROUGH,
    debootstrap_argv,
    host_ca_bundle,
    import_argvs,
    npm_argv,
    pip_argv,
    pip_env,
    user_argvs,
)
from backends.paths import cache_dir

# Callers name the whole builder through this module (``rootfs.ImageSpec``,
# ``rootfs.digest``, ``rootfs.ensure_image``): the spec and the steps are re-exported.
__all__ = [
    "BUILDER_VERSION",
    "DEBIAN_MIRROR",
    "DEFAULT_PATH",
    "LABEL_DIGEST",
    "PIP_CA_GUEST",
    "PIP_PASSTHROUGH",
    "ImageFile",
    "ImageSpec",
    "ImageUser",
    "build_image",
    "changes",
    "debootstrap_argv",
    "digest",
    "ensure_image",
    "host_ca_bundle",
    "image_exists",
    "image_tag",
    "import_argvs",
    "missing_tools",
    "mounts_under",
    "npm_argv",
    "pip_argv",
    "pip_env",
    "remove_work_dir",
    "user_argvs",
]


def missing_tools(spec: ImageSpec) -> list[tuple[str, str]]:
    """(what is missing, the fix) for building ``spec`` on this host."""
    out: list[tuple[str, str]] = []
    if os.geteuid() != 0:
        out.append(("root", "run the build as root (debootstrap and chown need it)"))
    if shutil.which("debootstrap") is None:
        out.append(("debootstrap", "apt-get install -y debootstrap"))
    if spec.npm and shutil.which("npm") is None:
        out.append(("npm", "apt-get install -y npm"))
    for tool in ("tar", "chroot", "docker"):
        if shutil.which(tool) is None:
            out.append((tool, f"install {tool}"))
    return out


def image_exists(tag: str) -> bool:
    """Whether the Docker engine has an image ``tag`` (False when it does not answer)."""
    try:
        return run.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag]).ok
    except BackendError:
        return False


@contextlib.contextmanager
def _locked(image_digest: str) -> Iterator[None]:
    """One build per digest per machine at a time (the lock lives outside any XDG dir,
    which tests point elsewhere, so that every caller on the machine shares it)."""
    lock_dir = Path(tempfile.gettempdir()) / f"bottle-dash-images-{os.geteuid()}"
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    with open(lock_dir / f"{image_digest}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_image(
    spec: ImageSpec,
    progress: ProgressFn = no_progress,
    *,
    tags: Sequence[str] = (),
    rebuild: bool = False,
    shared: bool = True,
) -> str:
    """The image for ``spec``, built when no image with its digest tag exists (or with
    ``rebuild``); also tagged with each of ``tags``. Returns ``<repository>:<digest>``.

    ``shared`` False (a custom tag): a rebuild is imported as ``tags`` only, and the
    shared ``<repository>:<digest>`` (what every default build reuses) stays on the image
    it was on; then the first of ``tags`` is returned.

    Raises ``BackendError`` naming the failed step and its last output line, with a fix.
    """
    image_digest = digest(spec)
    tag = f"{spec.repository}:{image_digest}"
    with _locked(image_digest):
        if rebuild and tags and not shared:
            own = build_image(spec, progress, tag=tags[0], image_digest=image_digest)
            for extra in tags[1:]:
                run.run(["docker", "tag", own, extra], check=True)
                progress(f"tagged {extra}")
            return own
        if not rebuild and image_exists(tag):
            progress(f"{tag} is already built")
        else:
            build_image(spec, progress, tag=tag, image_digest=image_digest)
    for extra in tags:
        run.run(["docker", "tag", tag, extra], check=True)
        progress(f"tagged {extra}")
    return tag


def build_image(
    spec: ImageSpec,
    progress: ProgressFn = no_progress,
    *,
    tag: str | None = None,
    image_digest: str | None = None,
) -> str:
    """Assemble the rootfs for ``spec`` and import it as ``tag`` (no cache check)."""
    image_digest = image_digest or digest(spec)
    tag = tag or f"{spec.repository}:{image_digest}"
    missing = missing_tools(spec)
    if missing:
        raise BackendError(
            f"cannot build {tag} offline: missing {', '.join(m for m, _ in missing)}",
            fix="; ".join(fix for _, fix in missing),
        )
    cache = cache_dir() / "images"
    (cache / "debs" / spec.suite).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"rootfs-{image_digest}-", dir=cache))
    root = work / "root"
    try:
        _step(
            "debootstrap",
            debootstrap_argv(spec, root, cache / "debs" / spec.suite),
            progress,
            fix=f"check that {spec.mirror} answers and the package names exist in {spec.suite}",
        )
        for user in spec.users:
            for argv in user_argvs(root, user):
                _step("user " + user.name, argv, progress)
        if spec.pip:
            ca = host_ca_bundle(os.environ)
            if ca is not None:
                shutil.copyfile(ca, root / PIP_CA_GUEST.lstrip("/"))
            _step(
                "pip",
                pip_argv(root, spec.pip),
                progress,
                env=pip_env(os.environ, ca=ca is not None),
                fix="check that PyPI answers (PIP_INDEX_URL, HTTPS_PROXY and the host's "
                "CA bundle are passed on)",
            )
        if spec.npm:
            _step("npm", npm_argv(root, spec.npm), progress, fix="check that npm answers")
        _write_files(root, spec.files)
        _clean(root)
        progress(f"importing {tag}")
        tar, imp = import_argvs(spec, root, tag, image_digest)
        _step("docker import", imp, progress, stdin_from=tar, fix="check `docker info`")
    finally:
        remove_work_dir(work)
    progress(f"built {tag}")
    return tag


def _step(
    what: str,
    argv: list[str],
    progress: ProgressFn,
    *,
    stdin_from: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    fix: str | None = None,
) -> None:
    progress(f"[{what}] {argv[0]} …")
    try:
        run.stream(argv, lambda line: progress(f"[{what}] {line}"), stdin_from=stdin_from, env=env)
    except CommandFailed as exc:
        raise BackendError(f"image build step {what} failed: {exc.message}", fix=fix) from exc


def _write_files(root: Path, files: Sequence[ImageFile]) -> None:
    for f in files:
        dest = root / f.path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if f.is_dir:
            dest.mkdir(parents=True, exist_ok=True)
        elif f.data is not None:
            dest.write_bytes(f.data)
        elif f.source is not None and f.source.is_dir():
            shutil.copytree(f.source, dest, dirs_exist_ok=True)
        elif f.source is not None:
            shutil.copyfile(f.source, dest)
        os.chmod(dest, f.mode)
        os.chown(dest, f.uid, f.gid)


def mounts_under(path: Path) -> list[str]:
    """Mount points below ``path``, deepest first (debootstrap mounts /proc, /sys and
    device nodes in the rootfs while it configures packages; an interrupted run leaves
    them)."""
    prefix = str(path).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        point = fields[1].replace("\\040", " ") if len(fields) > 1 else ""
        if point.startswith(prefix):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_work_dir(work: Path) -> None:
    """Unmount what is mounted below ``work``, then delete it; a directory that still
    has a mount below it is left alone (deleting through a bind mount would reach the
    host's files)."""
    for point in mounts_under(work):
        with contextlib.suppress(BackendError):
            run.run(["umount", "--lazy", point], timeout=60)
    if not mounts_under(work):
        shutil.rmtree(work, ignore_errors=True)


def _clean(root: Path) -> None:
    """What a Dockerfile build would not leave behind: apt's caches and the host's DNS."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "tmp/*"):
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    (root / "etc" / "resolv.conf").unlink(missing_ok=True)
