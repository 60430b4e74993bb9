"""The ``[kubernetes]`` table: where the kubernetes backend finds its cluster, checked
with errors located at the key (``backends.kubernetes.settings`` holds the result)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backends.kubernetes.settings import KEYS, PULL_POLICIES, TABLE, KubeSettings
from bottle_dash.config.locate import ConfigError, Locator, describe, type_name, unknown_key
from bottle_dash.config.paths import host_path

#: A namespace (and a runtime class) is a DNS label.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: A quantity such as 1Gi, 500Mi, 2G.
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")
#: A label key (optional DNS prefix and ``/``) and value.
_LABEL_KEY = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def kube_settings(table: Mapping[str, Any], path: Path, where: Locator) -> KubeSettings:
    """The checked ``[kubernetes]`` ``table`` of the config file at ``path``; a wrong key
    is a ``ConfigError`` at its line with the fix."""

    def error(key: str, message: str, fix: str) -> ConfigError:
        return ConfigError(message, path=path, key=key, line=where.key(TABLE, key), fix=fix)

    def string(key: str) -> str:
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise error(key, f"must be a non-empty string, not {describe(value)}", f'{key} = "..."')
        return value.strip()

    for key in table:
        if key not in KEYS:
            raise unknown_key(key, KEYS, path, None, where.key(TABLE, key), f"[{TABLE}] keys")
    fields: dict[str, Any] = {"source": str(path)}
    if "kubeconfig" in table:
        file = host_path(string("kubeconfig"), path)
        if not file.is_file():
            raise error(
                "kubeconfig",
                f"kubeconfig {str(file)!r} does not exist",
                "point it at the cluster's kubeconfig file (relative paths start at this "
                "file's folder), or remove the key to use $KUBECONFIG or ~/.kube/config",
            )
        fields["kubeconfig"] = str(file)
    if "context" in table:
        fields["context"] = string("context")
    for key in ("namespace", "runtime_class", "storage_class"):
        if key in table:
            value = string(key)
            if not _DNS_LABEL.match(value):
                raise error(
                    key,
                    f"{value!r} is not a valid Kubernetes name",
                    "use lower-case letters, digits and '-', at most 63 characters, "
                    'e.g. namespace = "agents"',
                )
            fields[key] = value
    if "node_selector" in table:
        selector = table["node_selector"]
        if not isinstance(selector, dict):
            raise error(
                "node_selector",
                f"must be a table of labels, not {type_name(selector)}",
                'e.g. node_selector = { "kubernetes.io/arch" = "amd64" }',
            )
        for label, value in selector.items():
            if not _LABEL_KEY.match(label) or not isinstance(value, str):
                raise error(
                    "node_selector",
                    f"{label!r} = {describe(value)} is not a node label",
                    'e.g. node_selector = { "kubernetes.io/arch" = "amd64" }',
                )
            if not _LABEL_VALUE.match(value):
                raise error(
                    "node_selector",
                    f"{value!r} is not a label value",
                    "letters, digits, '-', '_' and '.', at most 63 characters",
                )
        fields["node_selector"] = dict(selector)
    if "image_pull_policy" in table:
        policy = string("image_pull_policy")
        if policy not in PULL_POLICIES:
            raise error(
                "image_pull_policy",
                f"{policy!r} is not a pull policy",
                f"use one of: {', '.join(PULL_POLICIES)} (Never: the images are already "
                "on every node)",
            )
        fields["image_pull_policy"] = policy
    if "home_size" in table:
        size = string("home_size")
        if not _QUANTITY.match(size):
            raise error("home_size", f"{size!r} is not a size", 'e.g. home_size = "2Gi"')
        fields["home_size"] = size
    if "seal_image" in table:
        fields["seal_image"] = string("seal_image")
    return KubeSettings(**fields)
