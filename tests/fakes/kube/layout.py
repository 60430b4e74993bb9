"""Where the cluster's pieces live and the fixed facts about it (version, ports, names).

Two folders: the build cache (binaries, kept between runs, keyed by the Kubernetes
version) and the run folder (certificates, etcd's data, containerd's root, the kubelet's
root, logs, pid files; removed by ``down``). Both can be moved with environment variables.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

#: The Kubernetes that Debian 12 ships as source (``kubernetes`` 1.20.5+really1.20.2).
KUBE_VERSION = "1.20.2"
#: The source package and the part of its version that names the upstream release.
SOURCE_PACKAGE = "kubernetes"
#: Binaries built from the source, into the cache's bin/.
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl")
#: Debian packages the build and the cluster need (command or file that shows each one).
APT_PACKAGES = {
    "golang-go": "/usr/bin/go",
    "etcd-server": "/usr/bin/etcd",
    "containerd": "/usr/bin/containerd",
    "runc": "/usr/sbin/runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "openssl": "/usr/bin/openssl",
    "iptables": "/usr/sbin/iptables",
    "gcc": "/usr/bin/gcc",
    "libc6-dev": "/usr/lib/x86_64-linux-gnu/libc.a",
    "dpkg-dev": "/usr/bin/dpkg-source",
    "iproute2": "/bin/ip",
    "bsdutils": "/usr/bin/script",
    "util-linux": "/usr/bin/setsid",
    "binutils": "/usr/bin/strip",
}
PAUSE_TAG = "3.4"
#: The sandbox ("pause") image, compiled from the source and imported under this name.
PAUSE_IMAGE = f"localhost/bottle-dash/pause:{PAUSE_TAG}"
CNI_BIN_DIR = "/usr/lib/cni"
NODE_NAME = "bottle-dash-kube"
NAMESPACE = "bottle-dash"
NETWORK_NAME = "bottle-dash-kube"
BRIDGE = "bdkube0"
#: Pod subnets tried in order; the first that no route, address or Docker network overlaps.
POD_SUBNETS = ("10.244.0.0/16", "10.245.0.0/16", "10.246.0.0/16", "10.88.0.0/16")
SERVICE_SUBNETS = ("10.96.0.0/16", "10.97.0.0/16", "10.98.0.0/16")
#: The only storage class; ``provisioner.py`` answers its claims with hostPath volumes.
STORAGE_CLASS = "bottle-dash-hostpath"
PROVISIONER = "bottle-dash.dev/hostpath"
#: Label on every iptables rule this cluster adds by hand.
RULE_COMMENT = "bottle-dash-kube"


class Ports(NamedTuple):
    """Loopback (and node-address) ports, away from the well-known ones so that a
    Debian etcd or another cluster on the machine does not collide."""

    etcd: int = 12379
    etcd_peer: int = 12380
    apiserver: int = 16443
    kubelet: int = 11250


PORTS = Ports()


def _env_path(var: str, default: str) -> Path:
    return Path(os.environ.get(var) or default)


class Layout(NamedTuple):
    """Every path the cluster uses."""

    cache: Path
    run: Path

    @property
    def bin(self) -> Path:
        return self.cache / "bin"

    def binary(self, name: str) -> Path:
        return self.bin / name

    @property
    def pause_binary(self) -> Path:
        return self.cache / "pause" / "pause"

    @property
    def build_stamp(self) -> Path:
        return self.cache / "built.json"

    @property
    def build_lock(self) -> Path:
        return self.cache.parent / f".{self.cache.name}.lock"

    @property
    def run_lock(self) -> Path:
        return self.run.parent / f".{self.run.name}.lock"

    @property
    def pki(self) -> Path:
        return self.run / "pki"

    @property
    def logs(self) -> Path:
        return self.run / "logs"

    @property
    def pids(self) -> Path:
        return self.run / "pids"

    @property
    def etcd_data(self) -> Path:
        return self.run / "etcd"

    @property
    def containerd_root(self) -> Path:
        return self.run / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.run / "containerd-state"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def runc_root(self) -> Path:
        return self.run / "runc"

    @property
    def cni_conf_dir(self) -> Path:
        return self.run / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.run / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.run / "kubelet"

    @property
    def volumes(self) -> Path:
        """Where ``provisioner.py`` makes one folder per claim."""
        return self.run / "volumes"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.run / "admin.kubeconfig"

    @property
    def host_record(self) -> Path:
        """What the host looked like before ``up`` changed it (restored by ``down``)."""
        return self.run / "host-before.json"

    @property
    def cluster_record(self) -> Path:
        return self.run / "cluster.json"


def layout() -> Layout:
    """The layout for this machine: ``BOTTLE_DASH_KUBE_CACHE`` (default
    /var/cache/bottle-dash/kube-<version>) and ``BOTTLE_DASH_KUBE_RUN`` (default
    /var/lib/bottle-dash-kube)."""
    cache = _env_path("BOTTLE_DASH_KUBE_CACHE", f"/var/cache/bottle-dash/kube-{KUBE_VERSION}")
    run = _env_path("BOTTLE_DASH_KUBE_RUN", "/var/lib/bottle-dash-kube")
    return Layout(cache=cache, run=run)


_BEGAN = time.monotonic()


def say(message: str) -> None:
    """One progress line with the seconds since this module loaded (a CI log must show
    what a minutes-long step is doing, and how long each step took)."""
    print(f"kube: [{time.monotonic() - _BEGAN:6.1f}s] {message}", file=sys.stderr, flush=True)
