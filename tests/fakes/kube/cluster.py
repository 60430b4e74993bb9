"""A real single-node Kubernetes cluster for tests: build it, start it, stop it.

Usage: ``python tests/fakes/kube/cluster.py up|down|status|env|build``

- ``up``: build into the cache when not built (minutes, once per machine), then start
  etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a separate containerd and
  the kubelet; wait until the node is Ready and the namespace's default service account
  has its token; start the volume provisioner. Reuses a cluster that already runs. A
  cluster started by ``up`` runs until ``down`` (test sessions use it and leave it).
- ``down``: stop everything, unmount, remove the bridge and our iptables rules, restore
  the sysctls, remove the run folder.
- ``status``: whether it can be built here (and why not), whether it is built, whether it
  runs. Exit 0 when it can be built or runs, 1 otherwise.
- ``env``: shell lines to use the running cluster (``eval "$(… env)"``).
- ``build``: only build into the cache (when not built).

From Python: ``ensure_cluster() -> ClusterInfo`` (the caller becomes one of its users),
``release()`` (the last user of a cluster that a test session started stops it),
``teardown()`` (stop it whoever uses it) and ``import_image(tag)``.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import NamedTuple

if __name__ == "__main__" and not __package__:
    # Run as a script (``python tests/fakes/kube/cluster.py up``): the repository goes on the path
    # so that the ``tests.fakes`` package imports. Imported (by pytest, or with
    # ``python -m tests.fakes.kube.cluster``), it is there already and nothing changes.
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.fakes.kube import build, components, images, start, stop
from tests.fakes.kube.commands import (
    KubeError,
    kubectl,
    owned_pid,
)
from tests.fakes.kube.layout import (
    KUBE_VERSION,
    NAMESPACE,
    NODE_NAME,
    Layout,
    layout,
    say,
)

#: Daemons in start order (stopped in reverse, the kubelet's pods first).
DAEMONS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "containerd",
    "kubelet",
    "provisioner",
)


class ClusterUnavailable(KubeError):
    """The cluster cannot be built or started on this machine (the message says why)."""


class ClusterInfo(NamedTuple):
    """How to reach a running cluster."""

    kubeconfig: Path  # admin (system:masters), context namespace = ``namespace``
    namespace: str
    api_server: str
    node: str
    containerd_socket: Path  # for ``ctr -a <socket> -n k8s.io`` (image imports)
    kubectl: Path
    run_dir: Path
    pod_subnet: str
    node_ip: str
    started: bool  # True when this call started it

    def kubectl_argv(self, *args: str) -> list[str]:
        """``kubectl`` with this cluster's kubeconfig."""
        return [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args]


def why_not() -> str | None:
    """Why the cluster cannot be built or run here, or None when it can."""
    lay = layout()
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "amd64"):
        return f"needs Linux on x86_64 (this is {platform.system()} {platform.machine()})"
    if os.geteuid() != 0:
        return "needs root (it installs Debian packages, mounts, and adds iptables rules)"
    if not build.is_built(lay):
        if shutil.which("apt-get") is None:
            return "no apt-get: Kubernetes is built from Debian's source package"
        release = build.codename() if Path("/etc/os-release").exists() else "?"
        if release != "bookworm":
            return f"needs Debian 12 (bookworm ships Kubernetes {KUBE_VERSION}); this is {release}"
    if not Path("/dev/kmsg").exists():
        return "no /dev/kmsg (the kubelet's OOM watcher reads it)"
    if not Path("/sys/fs/cgroup/memory").is_dir():
        return "no cgroup v1 memory controller at /sys/fs/cgroup/memory (kubelet 1.20)"
    return None


# --------------------------------------------------------------------------- running


def _info(lay: Layout, started: bool) -> ClusterInfo:
    rec = json.loads(lay.cluster_record.read_text())
    return ClusterInfo(
        kubeconfig=lay.admin_kubeconfig,
        namespace=NAMESPACE,
        api_server=components.api_url(),
        node=NODE_NAME,
        containerd_socket=lay.containerd_socket,
        kubectl=lay.binary("kubectl"),
        run_dir=lay.run,
        pod_subnet=rec["pod_subnet"],
        node_ip=rec["node_ip"],
        started=started,
    )


def is_running(lay: Layout) -> bool:
    """Every daemon is alive, the API answers and the node is Ready."""
    record = lay.cluster_record
    if not record.exists() or not json.loads(record.read_text()).get("ready"):
        return False
    if any(owned_pid(lay, d) is None for d in DAEMONS):
        return False
    ready = kubectl(lay, "get", "--raw=/readyz", check=False).strip() == "ok"
    return ready and start.node_ready(lay)


def _users(lay: Layout) -> Path:
    return lay.run / "users"


def _live_users(lay: Layout) -> list[int]:
    """Pids of the processes using the cluster that still run."""
    folder = _users(lay)
    pids = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def ensure_cluster(*, keep: bool = False) -> ClusterInfo:
    """A running cluster: built when not built, started when not running (a cluster
    that runs already is reused, with ``started`` False). The calling process counts as
    one of its users until ``release``; ``keep`` (``cluster.py up``) marks a cluster that
    only ``down`` stops. Raises ClusterUnavailable when this machine cannot have one,
    KubeError when a step fails (after tearing down what it started)."""
    problem = why_not()
    if problem:
        raise ClusterUnavailable(problem)
    lay = layout()
    build.ensure_built(lay)
    with build.file_lock(lay.run_lock, "starting or stopping the cluster"):
        info = _ensure_running(lay, keep)
        _users(lay).mkdir(exist_ok=True)
        (_users(lay) / str(os.getpid())).touch()
        return info


def _ensure_running(lay: Layout, keep: bool) -> ClusterInfo:
    if is_running(lay):
        return _info(lay, started=False)
    if lay.run.exists():
        say(f"{lay.run} holds a cluster that is not running: tearing it down first")
        stop.stop(lay)
    began = time.monotonic()
    try:
        start.start(lay)
    except BaseException:
        say("start failed: tearing down what was started")
        kept_logs = lay.run.parent / f"{lay.run.name}-failed-logs"
        shutil.rmtree(kept_logs, ignore_errors=True)
        if lay.logs.exists():
            shutil.copytree(lay.logs, kept_logs)
            say(f"the daemons' logs are kept in {kept_logs}")
        stop.stop(lay)
        raise
    record = json.loads(lay.cluster_record.read_text())
    lay.cluster_record.write_text(json.dumps({**record, "keep": keep}) + "\n")
    say(f"cluster up in {time.monotonic() - began:.1f}s: {components.api_url()}")
    return _info(lay, started=True)


def release() -> list[str]:
    """This process no longer uses the cluster: stop it when no other user runs and it
    was not started to be kept (``cluster.py up``); returns what the stop left behind."""
    lay = layout()
    with build.file_lock(lay.run_lock, "starting or stopping the cluster"):
        (_users(lay) / str(os.getpid())).unlink(missing_ok=True)
        if not lay.run.exists() or not lay.cluster_record.exists():
            return []
        if json.loads(lay.cluster_record.read_text()).get("keep"):
            return []
        others = _live_users(lay)
        if others:
            say(f"cluster left running for the processes still using it: {others}")
            return []
        return stop.stop(lay)


def teardown() -> list[str]:
    """Stop the cluster and put the host back as ``up`` found it (no-op when none);
    returns what could not be removed or restored (empty when the host is clean)."""
    lay = layout()
    with build.file_lock(lay.run_lock, "starting or stopping the cluster"):
        if lay.run.exists():
            return stop.stop(lay)
    return []


def import_image(docker_tag: str) -> str:
    """Move ``docker_tag`` from the Docker engine into the running cluster (idempotent by
    image id); returns the name containerd stores it under."""
    return images.import_image(layout(), docker_tag)


# ------------------------------------------------------------------------------- CLI


def status() -> int:
    """Print whether the cluster can be built, is built, and runs."""
    lay = layout()
    problem = why_not()
    print(f"can build here: {'no: ' + problem if problem else 'yes'}")
    if build.is_built(lay):
        print(f"built: yes, {lay.bin} ({lay.build_stamp.read_text().strip()})")
    else:
        print(f"built: no (cache {lay.cache})")
    running = build.is_built(lay) and is_running(lay)
    print(f"running: {'yes, ' + components.api_url() if running else 'no'} (run folder {lay.run})")
    return 0 if (problem is None or running) else 1


def env_lines(info: ClusterInfo) -> list[str]:
    """Shell assignments to use the cluster from a terminal (our kubectl first on PATH)."""
    values = {
        "KUBECONFIG": str(info.kubeconfig),
        "CONTAINERD_ADDRESS": str(info.containerd_socket),
        "CONTAINERD_NAMESPACE": images.CRI_NAMESPACE,
    }
    lines = [f"export {k}={shlex.quote(v)}" for k, v in values.items()]
    return [*lines, f'export PATH={shlex.quote(str(info.kubectl.parent))}:"$PATH"']


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    try:
        if command == "up":
            info = ensure_cluster(keep=True)
            print(info.api_server)
        elif command == "build":
            problem = why_not()
            if problem:
                raise ClusterUnavailable(problem)
            build.ensure_built(layout())
        elif command == "down":
            return 1 if teardown() else 0
        elif command == "status":
            return status()
        elif command == "env":
            lay = layout()
            if not (build.is_built(lay) and is_running(lay)):
                print("cluster.py env: no cluster runs (cluster.py up)", file=sys.stderr)
                return 1
            print("\n".join(env_lines(_info(lay, started=False))))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except KubeError as exc:
        print(f"cluster.py {command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
