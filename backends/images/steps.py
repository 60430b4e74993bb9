"""The offline build's steps as values: each step's argv (and pip's environment), built by
pure code from an ``ImageSpec``; ``rootfs.build_image`` runs them in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from backends.images.spec import DEFAULT_PATH, ImageSpec, ImageUser, changes


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
