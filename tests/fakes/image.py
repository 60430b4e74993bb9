"""Assemble the offline test agent image and ``docker import`` it (test fixture only).

No registry is reachable from CI, so the image the tests run is built here from files on
the host: busybox (static) for a shell and coreutils, util-linux's ``runuser``/``setpriv``,
``git``, with the libraries and PAM modules they load, a ``node`` user (uid 1000), ``/workspace``,
and the stand-in ``claude`` from this folder. The tag carries a hash of the inputs, so
the image is rebuilt only when they change.

Usage: ``python tests/fakes/image.py`` prints the image tag, building it when missing.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = "bottle-dash-test-agent"
LABEL = "bottle-dash.test-image=1"
#: git: the agent's own work in /workspace (init, add, commit, status) is tested as the agent;
#: setpriv: how smolmachines runs an agent that is uid 0 without capabilities;
#: jq lets the stand-in claude run the hooks of the `--settings` JSON it is given;
#: dtach is the session holder claude runs under (backends/holder.py).
BINARIES = [
    "/usr/sbin/runuser",
    "/usr/bin/setpriv",
    "/usr/bin/git",
    "/usr/bin/jq",
    "/usr/bin/dtach",
]
PAM_MODULES = ["pam_rootok.so", "pam_permit.so", "pam_env.so", "pam_limits.so"]
PAM_RUNUSER = (
    "auth sufficient pam_rootok.so\naccount required pam_permit.so\n"
    "session required pam_permit.so\n"
)
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\n"
GROUP = "root:x:0:\nnode:x:1000:\n"
PATH = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _busybox() -> Path:
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        p = Path(cand)
        if p.exists() and not _libs(str(p)):
            return p
    raise SystemExit("busybox-static is not installed: apt-get install -y busybox-static")


def _libs(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(parts[2])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def _pam_dir() -> Path:
    for cand in (
        "/lib/x86_64-linux-gnu/security",
        "/usr/lib/x86_64-linux-gnu/security",
        "/lib/aarch64-linux-gnu/security",
        "/usr/lib/aarch64-linux-gnu/security",
        "/lib/security",
        "/usr/lib/security",
    ):
        if Path(cand, "pam_permit.so").exists():
            return Path(cand)
    raise SystemExit("PAM modules not found: apt-get install -y libpam-modules")


def _inputs() -> list[tuple[str, Path]]:
    """(path in image, host file) pairs: everything the image is made of."""
    files: list[tuple[str, Path]] = [("bin/busybox", _busybox())]
    seen: set[str] = set()
    pam = _pam_dir()
    mods = [str(pam / m) for m in PAM_MODULES if (pam / m).exists()]
    for binary in BINARIES + mods:
        if not Path(binary).exists():
            raise SystemExit(f"{binary} is missing: apt-get install -y util-linux git jq dtach")
        files.append((binary.lstrip("/"), Path(binary)))
        for lib in _libs(binary):
            if lib not in seen:
                seen.add(lib)
                files.append((lib.lstrip("/"), Path(lib)))
    files.append(("usr/local/bin/claude", HERE / "claude"))
    return files


def _digest(files: list[tuple[str, Path]]) -> str:
    h = hashlib.sha256()
    for dest, src in sorted(files):
        h.update(dest.encode())
        h.update(src.read_bytes())
    for text in (PAM_RUNUSER, PASSWD, GROUP, PATH):
        h.update(text.encode())
    return h.hexdigest()[:12]


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755, uid: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode, info.uid, info.gid = mode, uid, uid
    tar.addfile(info)


def _add_text(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def rootfs_tar(files: list[tuple[str, Path]]) -> bytes:
    """The image's root filesystem as an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = {
            "bin",
            "sbin",
            "usr",
            "usr/bin",
            "usr/sbin",
            "usr/local",
            "usr/local/bin",
            "etc",
            "etc/pam.d",
            "root",
            "dev",
            "proc",
            "sys",
            "run",
            "var",
            "var/tmp",
        }
        for dest, _ in files:
            parent = Path(dest).parent
            while str(parent) != ".":
                dirs.add(str(parent))
                parent = parent.parent
        for d in sorted(dirs):
            _add_dir(tar, d)
        _add_dir(tar, "tmp", 0o1777)
        _add_dir(tar, "home")
        _add_dir(tar, "home/node", 0o755, uid=1000)
        _add_dir(tar, "workspace", 0o755, uid=1000)
        for dest, src in files:
            info = tar.gettarinfo(str(src), arcname=dest)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.issym():  # store what the link points to, not the link
                info = tar.gettarinfo(str(src.resolve()), arcname=dest)
                info.uid = info.gid = 0
            with open(src, "rb") as fh:
                tar.addfile(info, fh)
        applets = subprocess.run(
            [str(_busybox()), "--list"], capture_output=True, text=True, check=True
        ).stdout.split()
        for applet in applets:
            if applet in {"busybox"}:
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "/bin/busybox"
            tar.addfile(link)
        _add_text(tar, "etc/passwd", PASSWD)
        _add_text(tar, "etc/group", GROUP)
        _add_text(tar, "etc/shadow", "root:*:19000::::::\nnode:*:19000::::::\n", 0o640)
        _add_text(tar, "etc/pam.d/runuser", PAM_RUNUSER)
        _add_text(tar, "etc/pam.d/runuser-l", PAM_RUNUSER)
        _add_text(
            tar,
            "etc/pam.d/other",
            "auth required pam_permit.so\n"
            "account required pam_permit.so\nsession required pam_permit.so\n",
        )
    return buf.getvalue()


def image_tag() -> str:
    """The tag for the current inputs (does not build)."""
    return f"{REPO}:{_digest(_inputs())}"


def ensure_image(docker: str = "docker") -> str:
    """Build the image when no image with this tag exists; returns the tag."""
    files = _inputs()
    tag = f"{REPO}:{_digest(files)}"
    have = subprocess.run([docker, "image", "inspect", tag], capture_output=True, check=False)
    if have.returncode != 0:
        changes = [
            "USER node",
            "WORKDIR /workspace",
            f"ENV PATH={PATH}",
            "ENV HOME=/home/node",
            f"LABEL {LABEL}",
            'CMD ["/bin/sh"]',
        ]
        argv = [docker, "import"]
        for c in changes:
            argv += ["--change", c]
        argv += ["-", tag]
        subprocess.run(argv, input=rootfs_tar(files), check=True, capture_output=True)
    subprocess.run([docker, "tag", tag, f"{REPO}:latest"], check=True, capture_output=True)
    return tag


if __name__ == "__main__":
    if shutil.which("docker") is None:
        sys.exit("docker CLI not found")
    os.environ.setdefault("DOCKER_CLI_HINTS", "false")
    print(ensure_image())
