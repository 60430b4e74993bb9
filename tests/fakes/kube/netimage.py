"""A small offline image with iptables, for the seal test's init container (test fixture).

Assembled like tests/fakes/image.py, from files on the host: static busybox (a shell,
``wget``, ``httpd``, ``setpriv``), the host's ``xtables-nft-multi`` with the libraries it
loads and every xtables extension, ``iptables``/``ip6tables`` links to it, and users root,
node (1000) and egress (1001). About 6 MB; tagged by a hash of its inputs.

Usage: ``python tests/fakes/kube/netimage.py`` prints the tag, building it when missing.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __name__ == "__main__" and not __package__:
    # Run as a script (``python tests/fakes/kube/netimage.py``): the repository goes on the path
    # so that the ``tests.fakes`` package imports. Imported (by pytest, or with
    # ``python -m tests.fakes.kube.netimage``), it is there already and nothing changes.
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.fakes import image  # noqa: E402  (tests/fakes/image.py: busybox and ldd helpers)

REPO = "bottle-dash-test-iptables"
XTABLES = "/usr/sbin/xtables-nft-multi"
LINKS = ("iptables", "ip6tables", "iptables-save", "ip6tables-save", "iptables-restore")
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\n"
    "egress:x:1001:1001:egress:/home/egress:/bin/sh\n"
)
GROUP = "root:x:0:\nnode:x:1000:\negress:x:1001:\n"


def _extension_dir() -> Path:
    for cand in ("/usr/lib/x86_64-linux-gnu/xtables", "/usr/lib/xtables", "/lib/xtables"):
        if Path(cand, "libxt_owner.so").exists():
            return Path(cand)
    raise SystemExit("xtables extensions not found: apt-get install -y iptables")


def inputs() -> list[tuple[str, Path]]:
    """(path in image, host file) for everything the image holds."""
    if not Path(XTABLES).exists():
        raise SystemExit(f"{XTABLES} is missing: apt-get install -y iptables")
    files: list[tuple[str, Path]] = [("bin/busybox", image._busybox())]
    seen: set[str] = set()
    ext = _extension_dir()
    for binary in [XTABLES, *sorted(str(p) for p in ext.glob("*.so"))]:
        files.append((binary.lstrip("/"), Path(binary)))
        for lib in image._libs(binary):
            if lib not in seen:
                seen.add(lib)
                files.append((lib.lstrip("/"), Path(lib)))
    return files


def _digest(files: list[tuple[str, Path]]) -> str:
    h = hashlib.sha256()
    for dest, src in sorted(files):
        h.update(dest.encode())
        h.update(src.read_bytes())
    h.update((PASSWD + GROUP + ",".join(LINKS)).encode())
    return h.hexdigest()[:12]


def _rootfs(files: list[tuple[str, Path]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = {"bin", "etc", "tmp", "home", "home/node", "home/egress", "run", "proc", "sys"}
        for dest, _ in files:
            parent = Path(dest).parent
            while str(parent) != ".":
                dirs.add(str(parent))
                parent = parent.parent
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            info.uid = info.gid = {"home/node": 1000, "home/egress": 1001}.get(d, 0)
            tar.addfile(info)
        for dest, src in files:
            info = tar.gettarinfo(str(src.resolve()), arcname=dest)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(src.resolve(), "rb") as fh:
                tar.addfile(info, fh)
        for name in LINKS:
            link = tarfile.TarInfo(f"usr/sbin/{name}")
            link.type, link.linkname = tarfile.SYMTYPE, XTABLES
            tar.addfile(link)
        applets = subprocess.run(
            ["/bin/busybox", "--list"], capture_output=True, text=True, check=True
        ).stdout.split()
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "/bin/busybox"
                tar.addfile(link)
        for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ensure_image() -> str:
    """Build the image when no image with this tag exists; returns the tag."""
    files = inputs()
    tag = f"{REPO}:{_digest(files)}"
    have = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    if have.returncode != 0:
        changes = [
            "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            f"LABEL {image.LABEL}",
            'CMD ["/bin/sh"]',
        ]
        argv = ["docker", "import"]
        for change in changes:
            argv += ["--change", change]
        subprocess.run([*argv, "-", tag], input=_rootfs(files), check=True, capture_output=True)
    return tag


if __name__ == "__main__":
    print(ensure_image())
