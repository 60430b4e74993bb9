"""Build Kubernetes from Debian's source package into the cache, once per machine.

1. ``apt-get install`` what is missing (Go, etcd, containerd, runc, CNI plugins, openssl,
   iptables, gcc);
2. ``apt-get source --download-only kubernetes`` with a private sources list and private
   list/cache folders made from the host's own ``deb`` entries (``deb-src`` of the same
   mirrors), so the host's apt configuration is never edited; apt checks the files
   against the signed index; ``dpkg-source -x`` unpacks them with Debian's patches;
3. in GOPATH mode (``GO111MODULE=off``, the source at ``$GOPATH/src/k8s.io/kubernetes``):
   build ``openapi-gen`` from ``vendor/``, generate ``pkg/generated/openapi`` from the
   packages tagged ``+k8s:openapi-gen=`` (the only generated file the source lacks), then
   one ``go build`` of the five commands under ``nice -n 10``;
4. compile ``build/pause/linux/pause.c`` static (the sandbox image's only file);
5. write ``built.json`` and remove the source and Go's build cache (about 2 GB).

A file lock serializes builds; a finished build is found by ``built.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.fakes.kube.commands import KubeError, run
from tests.fakes.kube.layout import (
    APT_PACKAGES,
    BINARIES,
    KUBE_VERSION,
    SOURCE_PACKAGE,
    Layout,
    say,
)

GO_PACKAGE = "k8s.io/kubernetes"
#: Build tags: upstream's (hack/lib/golang.sh) plus ``providerless`` (no in-tree cloud
#: providers or their SDKs) and ``dockerless`` (no dockershim in the kubelet; containerd
#: is reached through the CRI): 41% less source to compile, none of it used here.
GO_TAGS = "selinux,notest,providerless,dockerless"


@contextlib.contextmanager
def file_lock(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path``; say so when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process to finish {what} (lock {path})")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_built(lay: Layout) -> bool:
    """Every binary, the pause binary and the stamp are in the cache."""
    return (
        lay.build_stamp.exists()
        and all(lay.binary(b).exists() for b in BINARIES)
        and lay.pause_binary.exists()
    )


def missing_packages() -> list[str]:
    """Debian packages not installed (judged by a file each one ships)."""
    return [pkg for pkg, path in APT_PACKAGES.items() if not Path(path).exists()]


def install_packages() -> None:
    """``apt-get install`` the missing packages (no recommends)."""
    missing = missing_packages()
    if not missing:
        return
    say(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "l"}
    run(["apt-get", "update", "-qq"], env=env, timeout=300)
    run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        env=env,
        timeout=900,
    )
    still = missing_packages()
    if still:
        raise KubeError(f"apt-get installed, yet these are still missing: {still}")


def codename() -> str:
    """The Debian release's codename (``bookworm``), from /etc/os-release."""
    text = Path("/etc/os-release").read_text()
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    if not match:
        raise KubeError("/etc/os-release names no VERSION_CODENAME: not a Debian release?")
    return match.group(1)


def host_source_lines(release: str, apt_dir: Path = Path("/etc/apt")) -> list[str]:
    """``deb-src`` lines for the host's own Debian mirrors of ``release`` (its main
    suite, -updates and -security), from sources.list and the deb822 .sources files."""
    suites = {release, f"{release}-updates", f"{release}-security"}
    entries: list[tuple[str, str, str]] = []  # (uri, suite, components)
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(parts) >= 4 and parts[0] == "deb":
                entries.append((parts[1], parts[2], " ".join(parts[3:])))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for para in re.split(r"\n\s*\n", path.read_text()):
            fields = {}
            for line in para.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    entries.append((uri, suite, fields.get("components", "main")))
    lines = sorted({f"deb-src {u} {s} {c}" for u, s, c in entries if s in suites})
    if not lines:
        mirror = "http://deb.debian.org/debian"
        lines = [f"deb-src {mirror} {release} main", f"deb-src {mirror} {release}-updates main"]
    return lines


def download_source(work: Path) -> Path:
    """Download and unpack Debian's ``kubernetes`` source package; returns the tree."""
    apt = work / "apt"
    (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text("\n".join(host_source_lines(codename())) + "\n")
    opts = [
        "-o",
        f"Dir::Etc::SourceList={apt / 'sources.list'}",
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        f"Dir::State::Lists={apt / 'lists'}",
        "-o",
        f"Dir::Cache={apt / 'cache'}",
    ]
    say("apt-get update (deb-src indexes, into the build folder; host apt config untouched)")
    run(["apt-get", *opts, "update", "-qq"], timeout=300)
    say(f"apt-get source --download-only {SOURCE_PACKAGE}")
    dl = work / "download"
    dl.mkdir(exist_ok=True)
    run(["apt-get", *opts, "source", "--download-only", SOURCE_PACKAGE], cwd=dl, timeout=600)
    dscs = sorted(dl.glob(f"{SOURCE_PACKAGE}_*.dsc"))
    if not dscs:
        raise KubeError(f"apt-get source left no {SOURCE_PACKAGE}_*.dsc in {dl}")
    if f"really{KUBE_VERSION}" not in dscs[0].name and f"_{KUBE_VERSION}" not in dscs[0].name:
        raise KubeError(
            f"the archive serves {dscs[0].name}, not Kubernetes {KUBE_VERSION}: "
            "update KUBE_VERSION in tests/fakes/kube/layout.py and check the build"
        )
    tree = work / "src"
    say(f"dpkg-source -x {dscs[0].name} (with Debian's patches)")
    run(["dpkg-source", "-x", dscs[0].name, str(tree)], cwd=dl, timeout=300)
    return tree


def openapi_dirs(tree: Path) -> list[str]:
    """Go packages for openapi-gen, as upstream's Makefile.generated_files finds them:
    every folder with a file that has a ``// +k8s:`` tag and ``+k8s:openapi-gen=``,
    staging named through vendor/, code-generator and sample-apiserver left out."""
    tag = re.compile(rb"^// *\+k8s:", re.M)
    wanted = re.compile(rb"\+k8s:openapi-gen=")
    found: set[str] = set()
    for folder, subdirs, files in os.walk(tree):
        rel = os.path.relpath(folder, tree)
        subdirs[:] = [
            d
            for d in subdirs
            if not d.startswith(("_", ".")) and not (rel == "." and d == "vendor")
        ]
        for name in files:
            if not name.endswith(".go"):
                continue
            data = Path(folder, name).read_bytes()
            if tag.search(data) and wanted.search(data):
                if rel.startswith("staging/src/"):
                    rel = "vendor/" + rel[len("staging/src/") :]
                if not rel.startswith(
                    ("vendor/k8s.io/code-generator/", "vendor/k8s.io/sample-apiserver/")
                ):
                    found.add(f"{GO_PACKAGE}/{rel}")
                break
    return sorted(found)


def _ldflags() -> str:
    major, minor, _ = KUBE_VERSION.split(".")
    flags = ["-s", "-w"]
    for pkg in ("component-base/version", "client-go/pkg/version"):
        full = f"{GO_PACKAGE}/vendor/k8s.io/{pkg}"
        for key, value in (("gitVersion", f"v{KUBE_VERSION}"), ("gitMajor", major)):
            flags.append(f"-X {full}.{key}={value}")
        flags.append(f"-X {full}.gitMinor={minor}")
        flags.append(f"-X {full}.gitTreeState=archive")
    return " ".join(flags)


def go_build(tree: Path, work: Path, out: Path) -> None:
    """openapi-gen, then the five commands in one ``go build`` (shared packages are
    compiled once), with a progress line every 30 seconds."""
    gopath = work / "gopath"
    link = gopath / "src" / GO_PACKAGE
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(tree)
    env = {
        **os.environ,
        "GOPATH": str(gopath),
        "GOCACHE": str(work / "gocache"),
        "GO111MODULE": "off",
        "CGO_ENABLED": "0",
        "GOFLAGS": "",
        "HOME": str(work),
        # Go takes the working folder from $PWD when it names the same folder: the
        # GOPATH path, not the real one behind the symlink (outside GOPATH, vendor/ and
        # relative package paths no longer resolve).
        "PWD": str(link),
    }
    nice = ["nice", "-n", "10"]
    tools = work / "tools"
    say("go build openapi-gen (from vendor/)")
    run(
        [
            *nice,
            "go",
            "build",
            "-o",
            tools / "openapi-gen",
            f"{GO_PACKAGE}/vendor/k8s.io/kube-openapi/cmd/openapi-gen",
        ],
        env=env,
        cwd=link,
        timeout=900,
    )
    dirs = openapi_dirs(tree)
    say(f"openapi-gen over {len(dirs)} packages -> pkg/generated/openapi")
    run(
        [
            *nice,
            tools / "openapi-gen",
            "--logtostderr",
            "-i",
            ",".join(dirs),
            "-p",
            f"{GO_PACKAGE}/pkg/generated/openapi",
            "-O",
            "zz_generated.openapi",
            "-h",
            "vendor/k8s.io/code-generator/hack/boilerplate.go.txt",
            "-r",
            work / "openapi-violations.report",
        ],
        env=env,
        cwd=link,
        timeout=900,
    )
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        *nice,
        "go",
        "build",
        "-v",
        "-trimpath",
        "-tags",
        GO_TAGS,
        "-ldflags",
        _ldflags(),
        "-o",
        f"{out}/",
        *(f"{GO_PACKAGE}/cmd/{b}" for b in BINARIES),
    ]
    say(f"go build {' '.join(BINARIES)} (several minutes on 2 cores)")
    _run_with_heartbeat(argv, env=env, cwd=link, log=work / "go-build.log")


def _run_with_heartbeat(argv: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> None:
    started = time.monotonic()
    compiled = 0
    done = threading.Event()

    def beat() -> None:
        while not done.wait(30):
            say(f"  … still building: {time.monotonic() - started:.0f}s, {compiled} packages")

    ticker = threading.Thread(target=beat, daemon=True)
    ticker.start()
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=fh, stderr=subprocess.PIPE, text=True
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            fh.write(line)
            compiled += 1
        rc = proc.wait()
    done.set()
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise KubeError(f"go build exited {rc} (log {log}):\n{tail}")
    say(f"  go build done in {time.monotonic() - started:.0f}s ({compiled} packages)")


def compile_pause(tree: Path, dest: Path) -> None:
    """The sandbox image's binary, from the source's build/pause/linux/pause.c."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    say("gcc -static build/pause/linux/pause.c")
    run(
        [
            "gcc",
            "-Os",
            "-Wall",
            "-Werror",
            "-static",
            f"-DVERSION=v{KUBE_VERSION}-bottle-dash",
            "-o",
            dest,
            tree / "build" / "pause" / "linux" / "pause.c",
        ]
    )
    run(["strip", dest], check=False)


def _discard(folder: Path) -> None:
    """Remove ``folder`` in the background: Go's cache is tens of thousands of files
    (close to a minute to delete on a busy machine), and nothing waits for it."""
    trash = folder.with_name(f".trash-{folder.name}-{os.getpid()}")
    folder.rename(trash)
    # setsid -f: the rm runs on in a session of its own, holding none of our pipes; this
    # returns at once.
    subprocess.run(
        ["setsid", "-f", "nice", "-n", "19", "rm", "-rf", "--one-file-system", str(trash)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )


def ensure_built(lay: Layout) -> bool:
    """Build into the cache unless it is there already; True when this call built.
    ``BOTTLE_DASH_KUBE_KEEP_BUILD=1`` keeps the source and Go's cache for a rebuild."""
    if is_built(lay):
        return False
    with file_lock(lay.build_lock, "the Kubernetes build"):
        if is_built(lay):
            return False
        started = time.monotonic()
        install_packages()
        work = lay.cache / "work"
        for stale in lay.cache.glob(".trash-*"):
            shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        tree = download_source(work)
        staging = lay.cache / "bin.partial"
        shutil.rmtree(staging, ignore_errors=True)
        go_build(tree, work, staging)
        compile_pause(tree, lay.pause_binary)
        shutil.rmtree(lay.bin, ignore_errors=True)
        staging.rename(lay.bin)
        go = run(["go", "version"]).stdout.strip()
        dsc = next((work / "download").glob("*.dsc")).name
        stamp = {
            "kubernetes": KUBE_VERSION,
            "source": dsc,
            "go": go,
            "seconds": round(time.monotonic() - started),
        }
        lay.build_stamp.write_text(json.dumps(stamp, indent=1) + "\n")
        if os.environ.get("BOTTLE_DASH_KUBE_KEEP_BUILD") != "1":
            _discard(work)
        say(f"built Kubernetes {KUBE_VERSION} in {stamp['seconds']}s into {lay.bin}")
        return True
