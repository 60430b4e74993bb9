"""Configuration and command lines of the cluster's daemons (pure: paths in, text out).

etcd and the API server listen on loopback only; the kubelet on the pod bridge's gateway
address (the node's address); containerd on a socket in the run folder, with its own
root, state and runc root, so it never meets the Docker engine's containerd.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from tests.fakes.kube.layout import (
    BRIDGE,
    CNI_BIN_DIR,
    NETWORK_NAME,
    NODE_NAME,
    PAUSE_IMAGE,
    PORTS,
    Layout,
)


def api_url() -> str:
    return f"https://127.0.0.1:{PORTS.apiserver}"


def etcd_url() -> str:
    return f"http://127.0.0.1:{PORTS.etcd}"


def etcd_argv(lay: Layout) -> list[str]:
    peer = f"http://127.0.0.1:{PORTS.etcd_peer}"
    return [
        "/usr/bin/etcd",
        "--name=bottle-dash-kube",
        f"--data-dir={lay.etcd_data}",
        f"--listen-client-urls={etcd_url()}",
        f"--advertise-client-urls={etcd_url()}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=bottle-dash-kube={peer}",
        "--initial-cluster-state=new",
        "--log-level=warn",
    ]


def apiserver_argv(lay: Layout, node_ip: str, service_subnet: str) -> list[str]:
    pki = lay.pki
    return [
        str(lay.binary("kube-apiserver")),
        f"--etcd-servers={etcd_url()}",
        "--bind-address=127.0.0.1",
        f"--secure-port={PORTS.apiserver}",
        "--insecure-port=0",
        f"--advertise-address={node_ip}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--service-cluster-ip-range={service_subnet}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}",
        "--kubelet-preferred-address-types=InternalIP",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_argv(lay: Layout, kubeconfig: Path, pod_subnet: str) -> list[str]:
    pki = lay.pki
    return [
        str(lay.binary("kube-controller-manager")),
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--port=0",
        "--secure-port=0",
        "--leader-elect=false",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        "--use-service-account-credentials=true",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--cluster-cidr={pod_subnet}",
        "--profiling=false",
        "--v=1",
    ]


def scheduler_argv(lay: Layout, kubeconfig: Path) -> list[str]:
    return [
        str(lay.binary("kube-scheduler")),
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--port=0",
        "--secure-port=0",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def containerd_config(lay: Layout) -> str:
    """containerd 1.6 (config version 2) for the CRI, apart from Docker's containerd.

    ``restrict_oom_score_adj``: root here lacks CAP_SYS_RESOURCE, and without it runc
    fails to lower a container's OOM score (``can't get final child's PID from pipe``).
    """
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{lay.containerd_root}"
state = "{lay.containerd_state}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{lay.containerd_socket}"

[ttrpc]
  address = "{lay.containerd_socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{lay.containerd_root / "opt"}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = "/usr/sbin/runc"
  Root = "{lay.runc_root}"
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{lay.cni_conf_dir}"
  max_conf_num = 1
"""


def containerd_argv(lay: Layout) -> list[str]:
    return ["/usr/bin/containerd", "--config", str(lay.run / "containerd.toml")]


def cni_conflist(lay: Layout, pod_subnet: str, gateway_ip: str) -> str:
    """The bridge plugin on our bridge, host-local addresses kept in the run folder,
    masquerade for traffic leaving the subnet (as a real cluster's CNI does)."""
    doc = {
        "cniVersion": "0.4.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_subnet, "gateway": gateway_ip}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(lay.cni_ipam_dir),
                },
            }
        ],
    }
    return json.dumps(doc, indent=1) + "\n"


def kubelet_config(lay: Layout, node_ip: str, pod_subnet: str) -> str:
    """KubeletConfiguration (JSON is YAML) for one node without systemd or QoS cgroups.

    x509 client certificates only (the API server's), every authenticated request
    allowed: only holders of a certificate from this cluster's CA reach the kubelet.
    Image garbage collection off: imported images cannot be pulled again.
    """
    pki = lay.pki
    doc = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node_ip,
        "port": PORTS.kubelet,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "tlsCertFile": str(pki / "kubelet-server.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-server.key"),
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "makeIPTablesUtilChains": False,
        "failSwapOn": False,
        "podCIDR": pod_subnet,
        "resolvConf": str(lay.run / "resolv.conf"),
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "serializeImagePulls": False,
        # The first status after registration says NotReady; the next one (10 s later by
        # default) says Ready: checking every 2 s makes the node Ready 8 s sooner. The
        # kubelet still posts a status only when it changed (or every 5 minutes).
        "nodeStatusUpdateFrequency": "2s",
        "maxPods": 50,
    }
    return json.dumps(doc, indent=1) + "\n"


def kubelet_argv(lay: Layout, kubeconfig: Path, node_ip: str) -> list[str]:
    return [
        str(lay.binary("kubelet")),
        f"--config={lay.run / 'kubelet.json'}",
        f"--kubeconfig={kubeconfig}",
        "--container-runtime=remote",
        f"--container-runtime-endpoint=unix://{lay.containerd_socket}",
        f"--root-dir={lay.kubelet_root}",
        f"--cert-dir={lay.kubelet_root / 'pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={node_ip}",
        "--v=1",
    ]


def service_ip(service_subnet: str) -> str:
    """The ``kubernetes`` service's address (first of the service range)."""
    return str(next(ipaddress.IPv4Network(service_subnet).hosts()))
