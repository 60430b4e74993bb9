"""Starting the cluster: certificates, bridge and rules, then each daemon in order, each
one waited for (etcd's /health, the API server's /readyz, containerd's socket, the node
Ready, the namespace's default service account and its token)."""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.request
from pathlib import Path

from tests.fakes.kube import components, host, images, pki
from tests.fakes.kube.commands import KubeError, kubectl, run, start_daemon, wait_for
from tests.fakes.kube.layout import (
    NAMESPACE,
    NODE_NAME,
    POD_SUBNETS,
    PORTS,
    PROVISIONER,
    SERVICE_SUBNETS,
    STORAGE_CLASS,
    Layout,
    say,
)


def node_ready(lay: Layout) -> bool:
    path = '{.status.conditions[?(@.type=="Ready")].status}'
    out = kubectl(lay, "get", "node", NODE_NAME, "-o", f"jsonpath={path}", check=False)
    return out.strip() == "True"


def _etcd_healthy() -> bool:
    try:
        with urllib.request.urlopen(components.etcd_url() + "/health", timeout=2) as resp:
            return b'"true"' in resp.read()
    except OSError:
        return False


def _default_token(lay: Layout) -> bool:
    out = kubectl(
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


def start(lay: Layout) -> None:
    """Start every daemon in order and wait for each one to answer; the host's state
    is recorded first (``host.record``) so that ``stop`` can put it back."""
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
        # A slow answer on a loaded machine is "not yet", not a failed start: the wait
        # below has the deadline.
        try:
            return kubectl(lay, "get", "--raw=/readyz", check=False, timeout=10).strip() == "ok"
        except KubeError:
            return False

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
    wait_for(f"node {NODE_NAME} Ready", lambda: node_ready(lay), 180, lay, "kubelet")

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
