"""Where the kubernetes backend finds its cluster: the config's ``[kubernetes]`` table.

The config loader checks the table (``bottle_dash.config.kube``) and hands the result to
``use``; the backend reads ``current()`` on every call, and a launch records the settings
in its plan (``plan.extra["kubernetes"]``) so attach, exec and rm reach the same cluster
and namespace the bottle was made on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from backends.base import NO_ENTRIES

#: The backend's name (``backend = "kubernetes"``).
NAME = "kubernetes"
#: The config's table, and its keys in display order.
TABLE = "kubernetes"
KEYS = (
    "kubeconfig",
    "context",
    "namespace",
    "runtime_class",
    "node_selector",
    "image_pull_policy",
    "storage_class",
    "home_size",
    "seal_image",
)
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DEFAULT_NAMESPACE = "default"
DEFAULT_HOME_SIZE = "1Gi"


class KubeSettings(NamedTuple):
    """The ``[kubernetes]`` table, checked. Empty strings: the kubeconfig's own choice
    (``$KUBECONFIG`` or ``~/.kube/config``, its current context, namespace ``default``)."""

    kubeconfig: str = ""
    context: str = ""
    namespace: str = ""
    runtime_class: str = ""
    node_selector: Mapping[str, str] = NO_ENTRIES
    image_pull_policy: str = "IfNotPresent"
    storage_class: str = ""
    home_size: str = DEFAULT_HOME_SIZE
    #: The init container's image (it needs iptables); "": the seal image bottle-dash
    #: builds (``backends.kubernetes.image``, ``bottle-dash image build --seal``).
    seal_image: str = ""
    #: The config file the table came from (for error messages); "" when none.
    source: str = ""

    def kubeconfig_path(self) -> Path:
        """The kubeconfig file this backend reads."""
        if self.kubeconfig:
            return Path(self.kubeconfig).expanduser()
        env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        return Path(env) if env else Path.home() / ".kube" / "config"

    def configured(self) -> bool:
        """Whether the config asks for a cluster at all (a ``[kubernetes]`` table, or an
        agent on this backend): only then does listing ask one. A kubeconfig that merely
        exists (``~/.kube/config``) is never contacted by a config that does not use it
        (its auth plugins may run programs, and its cluster may be slow)."""
        return bool(self.source)

    def to_dict(self) -> dict[str, Any]:
        data = self._asdict()
        data["node_selector"] = dict(self.node_selector)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KubeSettings:
        """The settings a plan recorded (unknown keys ignored)."""
        known = {k: v for k, v in data.items() if k in cls._fields}
        if "node_selector" in known:
            known["node_selector"] = dict(known["node_selector"] or {})
        return cls(**known)


_current = KubeSettings()


def use(settings: KubeSettings) -> None:
    """Make ``settings`` the cluster of this process (the config loader calls this)."""
    global _current
    _current = settings


def current() -> KubeSettings:
    """The settings of this process (defaults until a config names a cluster)."""
    return _current
