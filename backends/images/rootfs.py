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
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from backends import run
from backends.base import BackendError, CommandFailed, ProgressFn, _no_progress
from backends.paths import cache_dir

#: Bump when the build steps change in a way that changes the image for the same spec.
BUILDER_VERSION = "1"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Every image this module builds carries its input digest under this label.
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


# --------------------------------------------------------------------------- pure parts


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


def debootstrap_argv(spec: ImageSpec, root: Path, cache: Path) -> list[str]:
    argv = ["debootstrap", "--variant=minbase", f"--cache-dir={cache}"]
    pkgs = spec.all_packages()
    if pkgs:
        argv.append("--include=" + ",".join(pkgs))
    return [*argv, spec.suite, str(root), spec.mirror]


def user_argvs(root: Path, user: ImageUser) -> list[list[str]]:
    home = user.home or f"/home/{user.name}"
    chroot = ["chroot", str(root)]
    return [
        [*chroot, "groupadd", "--gid", str(user.uid), user.name],
        [*chroot, "useradd", "--uid", str(user.uid), "--gid", str(user.uid)]
        + ["--create-home", "--home-dir", home, "--shell", user.shell, user.name],
    ]


def pip_argv(root: Path, requirements: Sequence[str]) -> list[str]:
    return [
        "chroot",
        str(root),
        "python3",
        "-m",
        "pip",
        "install",
        "--no-cache-dir",
        "--break-system-packages",
        "--root-user-action=ignore",
        "--disable-pip-version-check",
        "--progress-bar=off",
        *requirements,
    ]


#: Host settings that pip in the chroot inherits (how this site reaches PyPI).
PIP_PASSTHROUGH = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_DEFAULT_TIMEOUT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
#: Where the host's CA bundle is put in the rootfs while pip runs (removed with /tmp).
PIP_CA_GUEST = "/tmp/bottle-dash-host-ca.crt"


def host_ca_bundle(env: Mapping[str, str]) -> Path | None:
    """The CA bundle the host trusts for HTTPS (a site may intercept TLS with its own CA,
    which the fresh rootfs does not know)."""
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if env.get(var) and Path(env[var]).is_file():
            return Path(env[var])
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


def pip_env(host_env: Mapping[str, str], *, ca: bool) -> dict[str, str]:
    """The environment of pip in the chroot: a clean one (host paths mean nothing
    there), plus how the host reaches an index (only http(s) index URLs) and its CAs."""
    env = {"PATH": DEFAULT_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    for var in PIP_PASSTHROUGH:
        value = host_env.get(var)
        if not value:
            continue
        if var.endswith("INDEX_URL"):
            urls = [u for u in value.split() if u.startswith(("http://", "https://"))]
            if not urls:
                continue
            value = " ".join(urls)
        env[var] = value
    if ca:
        env["PIP_CERT"] = PIP_CA_GUEST
    return env


def npm_argv(root: Path, packages: Sequence[str]) -> list[str]:
    return [
        "npm",
        "install",
        "--global",
        "--prefix",
        str(root / "usr" / "local"),
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        *packages,
    ]


def import_argvs(spec: ImageSpec, root: Path, tag: str, image_digest: str) -> list[list[str]]:
    """``tar`` of the rootfs and the ``docker import`` that reads it from stdin."""
    tar = ["tar", "--numeric-owner", "-C", str(root), "-cf", "-"]
    tar += ["--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./dev/*", "."]
    imp = ["docker", "import"]
    for change in changes(spec, image_digest):
        imp += ["--change", change]
    imp += ["--message", f"bottle-dash rootfs {image_digest}", "-", tag]
    return [tar, imp]


# --------------------------------------------------------------------------- effects


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
    progress: ProgressFn = _no_progress,
    *,
    tags: Sequence[str] = (),
    rebuild: bool = False,
) -> str:
    """The image for ``spec``, built when no image with its digest tag exists (or with
    ``rebuild``); also tagged with each of ``tags``. Returns ``<repository>:<digest>``.

    Raises ``BackendError`` naming the failed step and its last output line, with a fix.
    """
    image_digest = digest(spec)
    tag = f"{spec.repository}:{image_digest}"
    with _locked(image_digest):
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
    progress: ProgressFn = _no_progress,
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
