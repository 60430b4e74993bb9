"""Creating, reading and deleting one bottle's objects through the API (``pod`` makes the
documents): the small verbs the backend's lifecycle is written with."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from backends.base import BackendError, LaunchError
from backends.kubernetes.client import CALL_TIMEOUT, api_error, is_not_found
from backends.kubernetes.names import AGENT_CONTAINER, EGRESS_CONTAINER, SEAL_CONTAINER

#: Seconds a pod may take to run every container (an image unpacked, the sidecar's
#: mitmproxy importing on a loaded node).
READY_TIMEOUT = 300.0
#: Seconds a deleted object may take to go.
GONE_TIMEOUT = 120.0

KINDS = {
    "Pod": ("create_namespaced_pod", "delete_namespaced_pod"),
    "PersistentVolumeClaim": (
        "create_namespaced_persistent_volume_claim",
        "delete_namespaced_persistent_volume_claim",
    ),
    "Secret": ("create_namespaced_secret", "delete_namespaced_secret"),
    "ConfigMap": ("create_namespaced_config_map", "delete_namespaced_config_map"),
}
READERS = {
    "Pod": "read_namespaced_pod",
    "PersistentVolumeClaim": "read_namespaced_persistent_volume_claim",
    "Secret": "read_namespaced_secret",
    "ConfigMap": "read_namespaced_config_map",
}


def create(core: Any, ns: str, doc: dict[str, Any], agent: str) -> None:
    """Create ``doc`` in ``ns``."""
    method = getattr(core, KINDS[doc["kind"]][0])
    try:
        method(ns, doc, _request_timeout=CALL_TIMEOUT)
    except Exception as exc:
        raise api_error(exc, f"creating {doc['kind']} {doc['metadata']['name']}", agent) from None


def replace_secret(core: Any, ns: str, doc: dict[str, Any], agent: str) -> None:
    """Create the Secret ``doc``, or replace the one of that name (a restart rewrites it)."""
    name = doc["metadata"]["name"]
    try:
        core.replace_namespaced_secret(name, ns, doc, _request_timeout=CALL_TIMEOUT)
    except Exception as exc:
        if not is_not_found(exc):
            raise api_error(exc, f"replacing Secret {name}", agent) from None
        create(core, ns, doc, agent)


def replace_config_map(core: Any, ns: str, doc: dict[str, Any], agent: str) -> None:
    """Create the ConfigMap ``doc``, or replace the one of that name."""
    name = doc["metadata"]["name"]
    try:
        core.replace_namespaced_config_map(name, ns, doc, _request_timeout=CALL_TIMEOUT)
    except Exception as exc:
        if not is_not_found(exc):
            raise api_error(exc, f"replacing ConfigMap {name}", agent) from None
        create(core, ns, doc, agent)


def read(core: Any, ns: str, kind: str, name: str, agent: str) -> Any | None:
    """The object, or None when there is none."""
    try:
        return getattr(core, READERS[kind])(name, ns, _request_timeout=CALL_TIMEOUT)
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise api_error(exc, f"reading {kind} {name}", agent) from None


def delete(core: Any, ns: str, kind: str, name: str, agent: str) -> bool:
    """Delete the object (False when there was none)."""
    try:
        getattr(core, KINDS[kind][1])(name, ns, _request_timeout=CALL_TIMEOUT)
    except Exception as exc:
        if is_not_found(exc):
            return False
        raise api_error(exc, f"deleting {kind} {name}", agent) from None
    return True


def label_claim(core: Any, ns: str, name: str, labels: dict[str, str | None], agent: str) -> None:
    """Set (or with None remove) labels of the claim ``name``."""
    try:
        core.patch_namespaced_persistent_volume_claim(
            name, ns, {"metadata": {"labels": labels}}, _request_timeout=CALL_TIMEOUT
        )
    except Exception as exc:
        if not is_not_found(exc):
            raise api_error(exc, f"labelling PersistentVolumeClaim {name}", agent) from None


def wait_gone(core: Any, ns: str, kind: str, name: str, agent: str) -> None:
    """Wait until the object is gone (a pod's containers are stopped, a claim released)."""
    deadline = time.monotonic() + GONE_TIMEOUT
    while read(core, ns, kind, name, agent) is not None:
        if time.monotonic() > deadline:
            raise BackendError(
                f"{kind} {name} was deleted but is still there after {GONE_TIMEOUT:g}s",
                fix=f"kubectl -n {ns} describe {kind.lower()} {name}",
                agent=agent,
            )
        time.sleep(0.5)


def _waiting_problem(pod: Any) -> str:
    """Why a pod's container cannot start (an image it cannot pull, a crash), or ""."""
    status = pod.status
    for group in (status.init_container_statuses or [], status.container_statuses or []):
        for cs in group:
            waiting = cs.state.waiting if cs.state else None
            if waiting and waiting.reason in (
                "ErrImageNeverPull",
                "ErrImagePull",
                "ImagePullBackOff",
                "InvalidImageName",
                "CreateContainerConfigError",
                "CreateContainerError",
                "CrashLoopBackOff",
            ):
                return f"container {cs.name}: {waiting.reason}: {waiting.message or ''}".strip()
            done = cs.state.terminated if cs.state else None
            if done and cs.name == SEAL_CONTAINER and done.exit_code != 0:
                return f"the seal (init container {SEAL_CONTAINER}) failed: exit {done.exit_code}"
    return ""


def wait_running(core: Any, ns: str, name: str, agent: str, logs: Callable[[str], str]) -> Any:
    """Wait until every container of the pod runs and is ready; ``LaunchError`` with the
    reason (and the failing container's log) when one cannot start."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        pod = read(core, ns, "Pod", name, agent)
        if pod is None:
            raise LaunchError(f"pod {name} disappeared while starting", agent=agent)
        statuses = pod.status.container_statuses or []
        if (
            pod.status.phase == "Running"
            and statuses
            and all(cs.ready and cs.state and cs.state.running for cs in statuses)
        ):
            return pod
        problem = _waiting_problem(pod)
        if problem or pod.status.phase in ("Failed", "Succeeded"):
            tail = ""
            for container in (SEAL_CONTAINER, EGRESS_CONTAINER, AGENT_CONTAINER):
                if container in problem:
                    tail = logs(container).strip()[-400:]
            raise LaunchError(
                f"pod {name} cannot start: {problem or pod.status.phase}"
                + (f" | {tail}" if tail else ""),
                fix="make the images available to the cluster's nodes (a registry they pull "
                "from, or imported into each node's runtime with image_pull_policy = "
                '"Never"), and see kubectl -n ' + f"{ns} describe pod {name}",
                agent=agent,
            )
        if time.monotonic() > deadline:
            raise LaunchError(
                f"pod {name} is not running after {READY_TIMEOUT:g}s ({pod.status.phase})",
                fix=f"kubectl -n {ns} describe pod {name}",
                agent=agent,
            )
        time.sleep(0.5)
