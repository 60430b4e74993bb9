"""What the HTTPS test upstream (egress_upstream.py) serves to git, pip and npm (test
fixture only). Built on the host into one folder that the upstream container mounts at
``/files`` and serves, under every name it answers to, over HTTPS:

- ``/mark.txt``: the mark (for curl);
- ``/repo.git/``: a bare git repository (made with the host's git) served as dumb HTTP
  after ``git update-server-info``; its README holds the mark;
- ``/simple/bd-stub/``: a PEP 503 simple index whose one link is a wheel built here (a
  wheel is a zip with a dist-info; nothing to compile), ``bd_stub.MARK`` is the mark;
- ``/bd-stub``: an npm package document (``index.json`` of that folder) and its tarball
  under ``/bd-stub/-/``; ``require("bd-stub")`` is the mark.

Each site has its own host name (network aliases of the one upstream), so the allowlist
can name each, and a host left off the allowlist serves the same files: only the
sidecar's refusal can make a request to it fail.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

from backends import run

GIT_HOST = "git.egress.invalid"
PYPI_HOST = "pypi.egress.invalid"
NPM_HOST = "npm.egress.invalid"
#: Served like the others, never on the allowlist.
BLOCKED_HOST = "blocked.egress.invalid"
HOSTS = (GIT_HOST, PYPI_HOST, NPM_HOST, BLOCKED_HOST)
PACKAGE = "bd-stub"
VERSION = "1.0.0"
WHEEL = f"bd_stub-{VERSION}-py3-none-any.whl"
TARBALL = f"{PACKAGE}-{VERSION}.tgz"


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def wheel(mark: str) -> bytes:
    """A pure-Python wheel of ``bd-stub`` whose module says ``MARK = mark``."""
    info = f"bd_stub-{VERSION}.dist-info"
    files = {
        "bd_stub/__init__.py": f"MARK = {mark!r}\n".encode(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {VERSION}\n".encode()
        ),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: bottle-dash-test\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def tarball(mark: str) -> bytes:
    """An npm package tarball (``package/`` inside) whose module exports ``mark``."""
    files = {
        "package/package.json": json.dumps(
            {"name": PACKAGE, "version": VERSION, "main": "index.js"}
        ).encode(),
        "package/index.js": f"module.exports = {json.dumps(mark)};\n".encode(),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), 0o644
            tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


def packument(data: bytes) -> dict[str, object]:
    """The registry's document for ``bd-stub`` with ``data`` as its one version's tarball."""
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    version = {
        "name": PACKAGE,
        "version": VERSION,
        "main": "index.js",
        "dist": {
            "tarball": f"https://{NPM_HOST}/{PACKAGE}/-/{TARBALL}",
            "shasum": hashlib.sha1(data).hexdigest(),
            "integrity": integrity,
        },
    }
    return {"name": PACKAGE, "dist-tags": {"latest": VERSION}, "versions": {VERSION: version}}


def _git(*args: str, cwd: Path) -> None:
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    run.run(["git", *args], cwd=str(cwd), env=env, check=True, timeout=60)


def build(root: Path, mark: str) -> Path:
    """Write the three sites into ``root`` (made here; world-readable, as the upstream
    reads it as another user); returns ``root``."""
    work = root.parent / f"{root.name}-work"
    work.mkdir(parents=True)
    (work / "README").write_text(f"{mark}\n")
    _git("init", "-q", "-b", "main", ".", cwd=work)
    _git("add", "README", cwd=work)
    who = ["-c", "user.name=bottle-dash test", "-c", "user.email=test@egress.invalid"]
    _git(*who, "commit", "-q", "-m", "mark", cwd=work)
    root.mkdir(parents=True)
    (root / "mark.txt").write_text(f"{mark}\n")
    _git("clone", "-q", "--bare", str(work), str(root / "repo.git"), cwd=work)
    _git("update-server-info", cwd=root / "repo.git")

    data = wheel(mark)
    (root / "packages").mkdir()
    (root / "packages" / WHEEL).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    simple = root / "simple" / PACKAGE
    simple.mkdir(parents=True)
    (simple / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="/packages/{WHEEL}#sha256={digest}">'
        f"{WHEEL}</a></body></html>\n"
    )

    tgz = tarball(mark)
    (root / PACKAGE / "-").mkdir(parents=True)
    (root / PACKAGE / "-" / TARBALL).write_bytes(tgz)
    (root / PACKAGE / "index.json").write_text(json.dumps(packument(tgz)))

    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root
