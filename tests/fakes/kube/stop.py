"""Stopping the cluster and putting the host back.

Pods are deleted through the API first, while the kubelet still runs, so that each
sandbox's network is torn down by the bridge plugin (veth, masquerade chain) and its
volumes unmounted; a pod is gone once host-local gave its address back. What the kubelet
did not stop is killed through containerd. Then the daemons stop in reverse order, the
shims that outlive containerd are stopped, and the host is restored.
"""

from __future__ import annotations

import shutil
import time

from tests.fakes.kube import host, images
from tests.fakes.kube.commands import (
    KubeError,
    kubectl,
    owned_pid,
    pids_naming,
    run,
    stop_daemon,
    stop_pid,
)
from tests.fakes.kube.layout import NETWORK_NAME, Layout, say


def _running_tasks(lay: Layout) -> list[str]:
    out = run(images.ctr_argv(lay, "tasks", "ls"), check=False, timeout=20).stdout
    return [line.split()[0] for line in out.splitlines()[1:] if "RUNNING" in line.split()]


def _leased_addresses(lay: Layout) -> list[str]:
    """Pod addresses host-local still holds (one file per address)."""
    folder = lay.cni_ipam_dir / NETWORK_NAME
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name[:1].isdigit() and "." in p.name)


def _delete_pods(lay: Layout) -> None:
    """Have the kubelet stop every pod (network torn down by the CNI plugin, volumes
    unmounted) while it still runs."""
    if owned_pid(lay, "kube-apiserver") is None or owned_pid(lay, "kubelet") is None:
        return
    if owned_pid(lay, "containerd") is None:
        return
    say("deleting every pod")
    try:
        if kubectl(lay, "get", "--raw=/readyz", check=False, timeout=10).strip() != "ok":
            say("  the API server is not ready: containers are killed through containerd")
            return
        kubectl(
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
        # A pod is gone once its sandbox's address went back to host-local: the bridge
        # plugin's DEL (veth, masquerade chain) has run.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (_running_tasks(lay) or _leased_addresses(lay)):
            time.sleep(0.5)
        if _leased_addresses(lay):
            say(f"  addresses still leased after 90s: {_leased_addresses(lay)}")
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


def stop(lay: Layout) -> list[str]:
    """Stop everything, unmount, remove the bridge and our rules, restore the host,
    remove the run folder; returns what is left behind (empty when clean)."""
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
    host.iptables_down(host.nat_chains_before(lay))
    host.restore(lay)
    left = host.leftovers(lay)
    for program in ("etcd", "kube", "containerd", "python"):
        left += [f"process {pid} ({program})" for pid in pids_naming(str(lay.run), program=program)]
    for item in left:
        say(f"warning: left behind: {item}")
    shutil.rmtree(lay.run, ignore_errors=True)
    say(f"cluster down in {time.monotonic() - began:.1f}s")
    return left
