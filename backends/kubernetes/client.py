"""The official ``kubernetes`` Python client, loaded lazily and configured from the
``[kubernetes]`` settings; kubectl for what a terminal needs (``kubectl exec -it``).

The client is an optional dependency (``pip install 'bottle-dash[kubernetes]'``): a
missing module is a ``BackendUnavailable`` with that fix, never an ImportError. One API
client per settings value is kept, so the dashboard's listing reuses its connections.
"""

from __future__ import annotations

import os
import shutil
from contextlib import suppress
from typing import Any

from backends.base import BackendError, BackendUnavailable
from backends.kubernetes.settings import KubeSettings

INSTALL_FIX = "pip install 'bottle-dash[kubernetes]' (the official kubernetes client)"
KUBECTL_FIX = (
    "install kubectl (https://kubernetes.io/docs/tasks/tools/) and put it on PATH, or set "
    "BOTTLE_DASH_KUBECTL=/path/to/kubectl"
)
#: Seconds a listing waits for the API server: a cluster that is down or slow shows its
#: agents ``unknown`` and delays nothing else for longer.
LIST_TIMEOUT = 5.0
#: Seconds any other call waits (creating objects, deleting them).
CALL_TIMEOUT = 30.0

_clients: dict[tuple[str, str], Any] = {}


def kube_module() -> Any:
    """The ``kubernetes`` package; ``BackendUnavailable`` with the fix when missing."""
    try:
        import kubernetes
    except ImportError as exc:
        raise BackendUnavailable(
            f"the kubernetes backend needs the kubernetes Python client: {exc}",
            fix=INSTALL_FIX,
        ) from None
    return kubernetes


def api_client(settings: KubeSettings) -> Any:
    """An API client for the cluster ``settings`` name (kept for the next call)."""
    path = settings.kubeconfig_path()
    key = (str(path), settings.context)
    client = _clients.get(key)
    if client is not None:
        return client
    kubernetes = kube_module()
    if not path.is_file():
        where = f" (from {settings.source})" if settings.source else ""
        raise BackendUnavailable(
            f"no kubeconfig at {path}{where}",
            fix="set kubeconfig in the [kubernetes] table of the config file, or $KUBECONFIG",
        )
    try:
        client = kubernetes.config.new_client_from_config(
            config_file=str(path), context=settings.context or None
        )
    except Exception as exc:  # the loader raises ConfigException, ValueError, KeyError...
        context = f", context {settings.context!r}" if settings.context else ""
        raise BackendUnavailable(
            f"the kubeconfig {path}{context} cannot be used: {exc}",
            fix="check the file (`kubectl config view`) and the context key of [kubernetes]",
        ) from None
    _clients[key] = client
    return client


def core(settings: KubeSettings) -> Any:
    """``CoreV1Api`` for the cluster of ``settings``."""
    return kube_module().client.CoreV1Api(api_client(settings))


def namespace(settings: KubeSettings) -> str:
    """The namespace bottles live in: the table's, else the kubeconfig context's, else
    ``default``."""
    if settings.namespace:
        return settings.namespace
    try:
        contexts, active = kube_module().config.list_kube_config_contexts(
            config_file=str(settings.kubeconfig_path())
        )
    except Exception:  # no file, or no contexts: the default
        return "default"
    chosen = next((c for c in contexts if c.get("name") == settings.context), None) or active
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


def api_error(exc: Exception, what: str, agent: str | None = None) -> BackendError:
    """A client exception as a ``BackendError`` that says what failed and why."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or type(exc).__name__
    body = str(getattr(exc, "body", "") or "")
    detail = body
    if body.startswith("{"):
        import json

        with suppress(ValueError, AttributeError):
            detail = str(json.loads(body).get("message") or body)
    text = f"{what} failed: {status} {reason}" if status else f"{what} failed: {exc}"
    if detail and status:
        text += f": {detail}"
    if status in (401, 403):
        fix = "check the kubeconfig's user: it needs pods, pods/exec, secrets, configmaps and "
        fix += "persistentvolumeclaims in the namespace"
    elif status is None:
        fix = "check that the cluster answers: kubectl get --raw /version"
    else:
        fix = None
    return BackendError(text, fix=fix, agent=agent)


def is_not_found(exc: Exception) -> bool:
    """Whether ``exc`` is the API's 404."""
    return getattr(exc, "status", None) == 404


def find_kubectl() -> str | None:
    """``BOTTLE_DASH_KUBECTL``, else ``kubectl`` on PATH."""
    override = os.environ.get("BOTTLE_DASH_KUBECTL")
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("kubectl")


def kubectl_base(settings: KubeSettings, ns: str) -> list[str]:
    """``kubectl --kubeconfig K [--context C] -n NS``: panes and execs reach the same
    cluster and namespace as the API calls."""
    kubectl = find_kubectl()
    if kubectl is None:
        raise BackendUnavailable("kubectl is not installed", fix=KUBECTL_FIX)
    argv = [kubectl, "--kubeconfig", str(settings.kubeconfig_path())]
    if settings.context:
        argv += ["--context", settings.context]
    return [*argv, "-n", ns]


def reset() -> None:
    """Forget the kept clients (tests that switch clusters)."""
    _clients.clear()
