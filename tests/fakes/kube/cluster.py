"""A real single-node Kubernetes cluster for tests: build it, start it, stop it.

Usage: ``python tests/fakes/kube/cluster.py up|down|status|env``

- ``up``: build into the cache when not built (minutes, once per machine), then start
  etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a separate containerd and
  the kubelet; wait until the node is Ready and the namespace's default service account
  has its token; start the volume provisioner. Reuses a cluster that already runs.
- ``down``: stop everything, unmount, remove the bridge and our iptables rules, restore
  the sysctls, remove the run folder.
- ``status``: whether it can be built here (and why not), whether it is built, whether it
  runs. Exit 0 when it can be built or runs, 1 otherwise.
- ``env``: shell lines to use the running cluster (``eval "$(… env)"``).

From Python: ``ensure_cluster() -> ClusterInfo``, ``teardown()``, ``import_image(tag)``.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

_FAKES = str(Path(__file__).resolve().parent.parent)
if _FAKES not in sys.path:
    sys.path.insert(0, _FAKES)

from kube import build, components, host, images, pki  # noqa: E402
from kube.commands import (  # noqa: E402
    KubeError,
    owned_pid,
    pids_naming,
    run,
    start_daemon,
    stop_daemon,
    stop_pid,
    wait_for,
)
from kube.layout import (  # noqa: E402
    KUBE_VERSION,
    NAMESPACE,
    NODE_NAME,
    POD_SUBNETS,
    PORTS,
    PROVISIONER,
    SERVICE_SUBNETS,
    STORAGE_CLASS,
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
    started: bool  # True when this call started it (so its caller tears it down)

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
    if not Path("/proc/sys/net/bridge").is_dir():
        run(["modprobe", "br_netfilter"], check=False)
    return None


# --------------------------------------------------------------------------- running


def _kubectl(lay: Layout, *args: str, check: bool = True, timeout: float = 60) -> str:
    argv = [str(lay.binary("kubectl")), f"--kubeconfig={lay.admin_kubeconfig}", *args]
    return run(argv, check=check, timeout=timeout).stdout


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


def _node_ready(lay: Layout) -> bool:
    path = '{.status.conditions[?(@.type=="Ready")].status}'
    out = _kubectl(lay, "get", "node", NODE_NAME, "-o", f"jsonpath={path}", check=False)
    return out.strip() == "True"


def is_running(lay: Layout) -> bool:
    """Every daemon is alive, the API answers and the node is Ready."""
    if not lay.cluster_record.exists() or not json.loads(lay.cluster_record.read_text()).get(
        "ready"
    ):
        return False
    if any(owned_pid(lay, d) is None for d in DAEMONS):
        return False
    return _kubectl(lay, "get", "--raw=/readyz", check=False).strip() == "ok" and _node_ready(lay)


def _etcd_healthy() -> bool:
    try:
        with urllib.request.urlopen(components.etcd_url() + "/health", timeout=2) as resp:
            return b'"true"' in resp.read()
    except OSError:
        return False


def _default_token(lay: Layout) -> bool:
    out = _kubectl(
        lay, "-n", NAMESPACE, "get", "sa", "default", "-o", "jsonpath={.secrets}", check=False
    )
    return "default-token" in out


def _manifests() -> str:
    """The namespace and the default storage class (answered by provisioner.py)."""
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})


def _busy_ports() -> list[str]:
    """Ports of ours that something already listens on."""
    busy = []
    for field, port in PORTS._asdict().items():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                busy.append(f"{port} ({field})")
    return busy


def _start(lay: Layout) -> None:
    busy = _busy_ports()
    if busy:
        raise KubeError(
            f"ports in use: {', '.join(busy)}; another cluster runs here? "
            "(`ss -ltnp` names the process; ports are PORTS in tests/fakes/kube/layout.py)"
        )
    lay.run.mkdir(parents=True, exist_ok=True)
    lay.run.chmod(0o700)
    host.record(lay)
    pod_subnet = os.environ.get("BOTTLE_DASH_KUBE_POD_SUBNET") or host.pick_subnet(POD_SUBNETS)
    service_subnet = os.environ.get("BOTTLE_DASH_KUBE_SERVICE_SUBNET") or host.pick_subnet(
        SERVICE_SUBNETS, also_avoid=(pod_subnet,)
    )
    node_ip = host.gateway(pod_subnet)
    record = {"pod_subnet": pod_subnet, "service_subnet": service_subnet, "node_ip": node_ip}
    lay.cluster_record.write_text(json.dumps(record) + "\n")
    say(f"pods on {pod_subnet} (bridge gateway and node address {node_ip})")

    say("certificates (openssl)")
    pki.make_pki(lay, node_ip, components.service_ip(service_subnet))
    api = components.api_url()
    pki.write_kubeconfig(lay, lay.admin_kubeconfig, "admin", api, namespace=NAMESPACE)
    for stem in ("controller-manager", "scheduler", "kubelet-client"):
        pki.write_kubeconfig(lay, lay.run / f"{stem}.kubeconfig", stem, api)

    host.bridge_up(pod_subnet)
    host.iptables_up()

    say("starting etcd")
    start_daemon(lay, "etcd", components.etcd_argv(lay))
    wait_for("etcd /health", _etcd_healthy, 60, lay, "etcd")
    say("starting kube-apiserver")
    start_daemon(lay, "kube-apiserver", components.apiserver_argv(lay, node_ip, service_subnet))

    def api_ready() -> bool:
        return _kubectl(lay, "get", "--raw=/readyz", check=False, timeout=10).strip() == "ok"

    wait_for("the API server's /readyz", api_ready, 120, lay, "kube-apiserver")
    say("starting kube-controller-manager and kube-scheduler")
    start_daemon(
        lay,
        "kube-controller-manager",
        components.controller_manager_argv(
            lay, lay.run / "controller-manager.kubeconfig", pod_subnet
        ),
    )
    start_daemon(
        lay, "kube-scheduler", components.scheduler_argv(lay, lay.run / "scheduler.kubeconfig")
    )

    say("starting containerd (its own root, state and socket)")
    lay.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    (lay.cni_conf_dir / "10-bottle-dash.conflist").write_text(
        components.cni_conflist(lay, pod_subnet, node_ip)
    )
    (lay.run / "containerd.toml").write_text(components.containerd_config(lay))
    (lay.run / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    start_daemon(lay, "containerd", components.containerd_argv(lay))

    def containerd_ready() -> bool:
        return run(images.ctr_argv(lay, "version"), check=False, timeout=10).returncode == 0

    wait_for("containerd's socket", containerd_ready, 60, lay, "containerd")
    images.import_pause(lay)

    say("starting the kubelet")
    (lay.run / "kubelet.json").write_text(components.kubelet_config(lay, node_ip, pod_subnet))
    start_daemon(
        lay,
        "kubelet",
        components.kubelet_argv(lay, lay.run / "kubelet-client.kubeconfig", node_ip),
    )
    wait_for(f"node {NODE_NAME} Ready", lambda: _node_ready(lay), 180, lay, "kubelet")

    run(
        [str(lay.binary("kubectl")), f"--kubeconfig={lay.admin_kubeconfig}", "apply", "-f", "-"],
        input=_manifests().encode(),
    )
    start_daemon(
        lay,
        "provisioner",
        [sys.executable, str(Path(__file__).with_name("provisioner.py")), str(lay.run), api],
    )
    wait_for(
        f"the default service account's token in {NAMESPACE}",
        lambda: _default_token(lay),
        120,
        lay,
        "kube-controller-manager",
    )
    record["ready"] = True
    lay.cluster_record.write_text(json.dumps(record) + "\n")


def ensure_cluster() -> ClusterInfo:
    """A running cluster: built when not built, started when not running (a cluster
    that runs already is reused, with ``started`` False). Raises ClusterUnavailable
    when this machine cannot have one, KubeError when a step fails (after tearing down
    what it started)."""
    problem = why_not()
    if problem:
        raise ClusterUnavailable(problem)
    lay = layout()
    build.ensure_built(lay)
    with build.file_lock(lay.run_lock, "starting or stopping the cluster"):
        if is_running(lay):
            return _info(lay, started=False)
        if lay.run.exists():
            say(f"{lay.run} holds a cluster that is not running: tearing it down first")
            _teardown(lay)
        began = time.monotonic()
        try:
            _start(lay)
        except BaseException:
            say("start failed: tearing down what was started")
            logs = lay.logs
            keep = lay.run.parent / f"{lay.run.name}-failed-logs"
            shutil.rmtree(keep, ignore_errors=True)
            if logs.exists():
                shutil.copytree(logs, keep)
                say(f"the daemons' logs are kept in {keep}")
            _teardown(lay)
            raise
        say(f"cluster up in {time.monotonic() - began:.1f}s: {components.api_url()}")
        return _info(lay, started=True)


# -------------------------------------------------------------------------- stopping


def _running_tasks(lay: Layout) -> list[str]:
    out = run(images.ctr_argv(lay, "tasks", "ls"), check=False, timeout=20).stdout
    return [line.split()[0] for line in out.splitlines()[1:] if "RUNNING" in line.split()]


def _delete_pods(lay: Layout) -> None:
    """Have the kubelet stop every pod (network torn down by the CNI plugin, volumes
    unmounted) while it still runs."""
    if owned_pid(lay, "kube-apiserver") is None or owned_pid(lay, "kubelet") is None:
        return
    if owned_pid(lay, "containerd") is None:
        return
    say("deleting every pod")
    try:
        if _kubectl(lay, "get", "--raw=/readyz", check=False, timeout=10).strip() != "ok":
            say("  the API server is not ready: containers are killed through containerd")
            return
        _kubectl(
            lay,
            "delete",
            "pods",
            "--all",
            "--all-namespaces",
            "--grace-period=0",
            "--force",
            "--wait=false",
            check=False,
            timeout=30,
        )
        deadline = time.monotonic() + 90
        while _running_tasks(lay) and time.monotonic() < deadline:
            time.sleep(0.5)
    except KubeError as exc:
        say(f"  deleting pods failed ({exc}): containers are killed through containerd")


def _kill_tasks(lay: Layout) -> None:
    """Containers the kubelet did not stop: kill and remove them through containerd."""
    for task in _running_tasks(lay):
        run(images.ctr_argv(lay, "tasks", "kill", "-s", "SIGKILL", task), check=False)
    time.sleep(0.5)
    out = run(images.ctr_argv(lay, "containers", "ls", "-q"), check=False).stdout
    for ident in out.split():
        run(images.ctr_argv(lay, "tasks", "rm", "-f", ident), check=False)
        run(images.ctr_argv(lay, "containers", "rm", ident), check=False)


def _teardown(lay: Layout) -> list[str]:
    began = time.monotonic()
    _delete_pods(lay)
    for name in ("provisioner", "kubelet"):
        stop_daemon(lay, name)
    if owned_pid(lay, "containerd") is not None:
        _kill_tasks(lay)
    stop_daemon(lay, "containerd")
    for pid in pids_naming(str(lay.containerd_socket), program="containerd-shim"):
        stop_pid(pid, grace=3)  # shims outlive their containerd
    for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
        stop_daemon(lay, name)
    for program in ("etcd", "kube", "containerd", "python"):
        for pid in pids_naming(str(lay.run), program=program):
            stop_pid(pid, grace=3)  # a daemon whose pid file was lost
    host.unmount_all([str(lay.run)])
    host.bridge_down()
    host.iptables_down()
    host.restore(lay)
    left = host.leftovers(lay)
    for program in ("etcd", "kube", "containerd", "python"):
        left += [f"process {pid} ({program})" for pid in pids_naming(str(lay.run), program=program)]
    for item in left:
        say(f"warning: left behind: {item}")
    shutil.rmtree(lay.run, ignore_errors=True)
    say(f"cluster down in {time.monotonic() - began:.1f}s")
    return left


def teardown() -> list[str]:
    """Stop the cluster and put the host back as ``up`` found it (no-op when none);
    returns what could not be removed or restored (empty when the host is clean)."""
    lay = layout()
    with build.file_lock(lay.run_lock, "starting or stopping the cluster"):
        if lay.run.exists():
            return _teardown(lay)
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
    """Shell assignments to use the cluster from a terminal."""
    values = {
        "KUBECONFIG": str(info.kubeconfig),
        "PATH": f"{info.kubectl.parent}:{os.environ.get('PATH', '')}",
        "CONTAINERD_ADDRESS": str(info.containerd_socket),
        "CONTAINERD_NAMESPACE": images.CRI_NAMESPACE,
    }
    return [f"export {k}={shlex.quote(v)}" for k, v in values.items()]


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    try:
        if command == "up":
            info = ensure_cluster()
            print(info.api_server)
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
