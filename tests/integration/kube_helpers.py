"""Helpers for tests against the test cluster (tests/fakes/kube): kubectl in the
cluster's namespace, pod documents with no capabilities and no image pulls, waits."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.support import RUN_ID

#: Every object a test makes carries this label, so a module removes what it made.
LABEL = {"bottle-dash.test-run": RUN_ID}


def kubectl(
    info: Any, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run our kubectl against the test cluster, in its namespace."""
    proc = subprocess.run(
        info.kubectl_argv("-n", info.namespace, *args),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def apply(info: Any, *docs: dict[str, Any]) -> None:
    kubectl(
        info,
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)}),
    )


def container(name: str, image: str, script: str, *, uid: int, **extra: Any) -> dict[str, Any]:
    """A container with no capabilities and no privilege escalation unless ``extra``
    says otherwise; images are never pulled."""
    spec: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
        "securityContext": {
            "runAsUser": uid,
            "runAsGroup": uid,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    spec.update(extra)
    return spec


def pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": LABEL},
        "spec": {
            "containers": containers,
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            **spec,
        },
    }


def wait_ready(info: Any, name: str) -> None:
    proc = kubectl(
        info, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=120s", check=False
    )
    if proc.returncode != 0:
        described = kubectl(info, "describe", "pod", name, check=False).stdout
        raise AssertionError(f"pod {name} not Ready: {proc.stderr}\n{described[-3000:]}")


def pod_ip(info: Any, name: str) -> str:
    return kubectl(info, "get", "pod", name, "-o", "jsonpath={.status.podIP}").stdout.strip()


def exec_in(info: Any, name: str, ctr: str, script: str) -> subprocess.CompletedProcess[str]:
    return kubectl(info, "exec", name, "-c", ctr, "--", "sh", "-c", script, check=False)


def fetch(port: int, ip: str) -> str:
    """A shell line that GETs / from ``ip:port`` (busybox ``nc``: the static busybox's
    ``wget`` crashes looking up the service name without the image's NSS modules)."""
    return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {port}"
