"""The objects of one bottle on Kubernetes, as plain API documents (pure: tests read them).

- Pod ``bottle-<agent>``: container ``agent`` (the agent image, the image's ``node``, no
  capability, no privilege escalation, no service-account token), and for a sealed bottle
  container ``egress`` (the sidecar image, uid ``EGRESS_UID``) and the init container
  ``seal``, which writes the pod's iptables rules with ``NET_ADMIN`` before either starts:
  out of the pod only the egress uid (and loopback, where the proxy listens), nothing at
  all to the node (the pod's gateway) or link-local addresses, nothing in but replies.
  The bridge CNI of many clusters ignores NetworkPolicy; these rules live in the pod's own
  network namespace, which the agent container cannot change (no ``NET_ADMIN``).
- Claims ``bottle-<agent>-home`` (``/home/node``) and ``bottle-<agent>-workspace``.
- Secret ``bottle-<agent>-env``: the agent container's environment (the placeholder, proxy,
  CA path, the agent's env), so no value is written in the pod's spec.
- Secret ``bottle-<agent>-egress``: the sidecar's policy, credential and CA, mounted into
  the ``egress`` container only; ConfigMap ``bottle-<agent>-addon``: the broker addon.

Every object carries the bottle's labels made label-safe (``kube_labels``) and the exact
labels in the annotation ``LABELS_ANNOTATION``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.base import GUEST_HOME, GUEST_WORKSPACE
from backends.egress import policy as pol
from backends.egress.image import ADDON, ADDON_DIR
from backends.kubernetes.names import (
    AGENT_CONTAINER,
    EGRESS_CONTAINER,
    LABELS_ANNOTATION,
    SEAL_CONTAINER,
    addon_map_name,
    egress_secret_name,
    env_secret_name,
    home_claim_name,
    kube_labels,
    workspace_claim_name,
)
from backends.kubernetes.settings import KubeSettings

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

#: The sidecar's uid: the only uid the seal lets out of the pod. Never the agent's.
EGRESS_UID = 1001
#: Read by the test cluster's provisioner (tests/fakes/kube): who owns a new volume.
OWNER_ANNOTATION = "bottle-dash.dev/owner"
#: Where the egress Secret appears in the sidecar container (copied to SIDECAR_DIR).
EGRESS_SECRET_DIR = "/run/bottle-egress-files"
#: The agent container's main process (as on docker): waits, ends on TERM.
KEEPALIVE = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
#: Seconds a deleted pod gets after TERM.
GRACE_SECONDS = 5


def meta(name: str, plan: BottlePlan, **annotations: str) -> dict[str, Any]:
    """``metadata`` of one object of ``plan``'s bottle."""
    return {
        "name": name,
        "labels": kube_labels(plan.labels),
        "annotations": {LABELS_ANNOTATION: json.dumps(plan.labels, sort_keys=True), **annotations},
    }


def claim(name: str, plan: BottlePlan, settings: KubeSettings, size: str) -> dict[str, Any]:
    """A ``ReadWriteOnce`` claim owned by the agent's uid:gid (where the provisioner reads
    ``OWNER_ANNOTATION``; elsewhere the pod's ``fsGroup`` gives the agent its group)."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if settings.storage_class:
        spec["storageClassName"] = settings.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta(name, plan, **{OWNER_ANNOTATION: f"{plan.uid}:{plan.gid}"}),
        "spec": spec,
    }


def secret(name: str, plan: BottlePlan, data: Mapping[str, str]) -> dict[str, Any]:
    """An Opaque Secret of ``data`` (text values)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta(name, plan),
        "stringData": dict(data),
    }


def config_map(name: str, plan: BottlePlan, data: Mapping[str, str]) -> dict[str, Any]:
    """A ConfigMap of ``data``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(name, plan),
        "data": dict(data),
    }


def seal_script(egress_uid: int = EGRESS_UID) -> str:
    """The init container's rules in the pod's network namespace.

    OUTPUT: loopback (the proxy), replies, then the gateway (the node: its kubelet and
    whatever else listens there) and link-local addresses (cloud metadata) rejected for
    every uid, then the egress uid only; everything else rejected, policy DROP. INPUT:
    loopback and replies only (nothing can open a connection into the agent). IPv6:
    loopback only.
    """
    gateway = "gw=$(ip route 2>/dev/null | awk '/^default/ {print $3; exit}')"
    lines = [
        "set -eu",
        'ipt() { iptables -w 5 "$@"; }',
        "ipt -A OUTPUT -o lo -j ACCEPT",
        "ipt -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        gateway,
        'if [ -n "$gw" ]; then ipt -A OUTPUT -d "$gw" -j REJECT; fi',
        "ipt -A OUTPUT -d 169.254.0.0/16 -j REJECT",
        f"ipt -A OUTPUT -m owner --uid-owner {int(egress_uid)} -j ACCEPT",
        "ipt -A OUTPUT -j REJECT",
        "ipt -P OUTPUT DROP",
        "ipt -A INPUT -i lo -j ACCEPT",
        "ipt -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        "ipt -P INPUT DROP",
        "ip6tables -w 5 -A OUTPUT -o lo -j ACCEPT || true",
        "ip6tables -w 5 -P OUTPUT DROP || true",
        "ip6tables -w 5 -A INPUT -i lo -j ACCEPT || true",
        "ip6tables -w 5 -P INPUT DROP || true",
        "echo sealed",
    ]
    return "\n".join(lines)


def _hardened(uid: int, gid: int) -> dict[str, Any]:
    return {
        "runAsUser": uid,
        "runAsGroup": gid,
        "runAsNonRoot": uid != 0,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def _resources(plan: BottlePlan) -> dict[str, Any]:
    limits: dict[str, str] = {}
    if plan.cpus:
        limits["cpu"] = f"{int(plan.cpus * 1000)}m"
    if plan.memory:
        limits["memory"] = str(plan.memory)
    return {"limits": limits} if limits else {}


def sidecar_command(mitmdump: list[str]) -> list[str]:
    """The egress container's command: copy the Secret's files into its own folder (the
    sidecar writes its log and status there; a Secret's volume is read-only), then run
    the launcher and mitmdump (``backends.egress.sidecar.mitmdump_argv``)."""
    copy = (
        f"cp {shlex.quote(EGRESS_SECRET_DIR)}/* {shlex.quote(pol.SIDECAR_DIR)}/ && "
        f'chmod 600 {shlex.quote(pol.SIDECAR_DIR)}/* && exec "$@"'
    )
    return ["sh", "-c", copy, "sh", *mitmdump]


def pod(plan: BottlePlan, settings: KubeSettings) -> dict[str, Any]:
    """The Pod of ``plan``'s bottle (sealed when its plan is)."""
    info = plan.extra.get("egress") or {}
    sealed = bool(info.get("sealed"))
    agent = plan.agent
    pull = settings.image_pull_policy
    agent_container: dict[str, Any] = {
        "name": AGENT_CONTAINER,
        "image": plan.image,
        "imagePullPolicy": pull,
        "command": list(KEEPALIVE),
        "workingDir": GUEST_WORKSPACE,
        "env": [{"name": "HOME", "value": GUEST_HOME}],
        "envFrom": [{"secretRef": {"name": env_secret_name(agent)}}],
        # As a docker bottle: a read-only root, /tmp and /var/tmp of their own.
        "securityContext": {**_hardened(plan.uid, plan.gid), "readOnlyRootFilesystem": True},
        "volumeMounts": [
            {"name": "home", "mountPath": GUEST_HOME},
            {"name": "workspace", "mountPath": GUEST_WORKSPACE},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "var-tmp", "mountPath": "/var/tmp"},
        ],
        "resources": _resources(plan),
    }
    volumes: list[dict[str, Any]] = [
        {"name": "home", "persistentVolumeClaim": {"claimName": home_claim_name(agent)}},
        {"name": "workspace", "persistentVolumeClaim": {"claimName": workspace_claim_name(agent)}},
        # sizes as docker's tmpfs (``backends.docker.plan.TMPFS``); the kubelet evicts past them
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "512Mi"}},
        {"name": "var-tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    spec: dict[str, Any] = {
        "containers": [agent_container],
        "volumes": volumes,
        "restartPolicy": "Always",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "shareProcessNamespace": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        # No cluster DNS is needed: a sealed agent names hosts through its proxy.
        "dnsPolicy": "Default",
        # The runtime's default seccomp profile for every container (docker's own default
        # is applied the same way); the agent's own syscall profile is docker-only.
        "securityContext": {"fsGroup": plan.gid, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if settings.runtime_class:
        spec["runtimeClassName"] = settings.runtime_class
    if settings.node_selector:
        spec["nodeSelector"] = dict(settings.node_selector)
    if sealed:
        from backends.egress.sidecar import SIDECAR_MEMORY, mitmdump_argv
        from backends.kubernetes.image import seal_tag

        spec["initContainers"] = [
            {
                "name": SEAL_CONTAINER,
                "image": settings.seal_image or seal_tag(),
                "imagePullPolicy": pull,
                "command": ["sh", "-c", seal_script()],
                "securityContext": {
                    "runAsUser": 0,
                    "runAsNonRoot": False,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]},
                },
            }
        ]
        spec["containers"].append(
            {
                "name": EGRESS_CONTAINER,
                "image": str(info.get("image") or ""),
                "imagePullPolicy": pull,
                "command": sidecar_command(mitmdump_argv(plan, ADDON)),
                "workingDir": "/tmp",
                "env": [
                    {"name": "HOME", "value": "/tmp"},
                    {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                    {"name": "PYTHONUNBUFFERED", "value": "1"},
                ],
                "securityContext": {
                    **_hardened(EGRESS_UID, EGRESS_UID),
                    "readOnlyRootFilesystem": True,
                },
                "volumeMounts": [
                    {"name": "egress-files", "mountPath": EGRESS_SECRET_DIR, "readOnly": True},
                    {"name": "egress-state", "mountPath": pol.SIDECAR_DIR},
                    {"name": "addon", "mountPath": ADDON_DIR, "readOnly": True},
                    {"name": "egress-tmp", "mountPath": "/tmp"},
                ],
                "resources": {"limits": {"memory": str(SIDECAR_MEMORY)}},
            }
        )
        volumes += [
            {
                "name": "egress-files",
                "secret": {"secretName": egress_secret_name(agent), "defaultMode": 0o444},
            },
            {"name": "egress-state", "emptyDir": {}},
            {"name": "egress-tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "addon", "configMap": {"name": addon_map_name(agent)}},
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(plan.bottle, plan), "spec": spec}
