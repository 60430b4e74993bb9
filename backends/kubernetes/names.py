"""The names and labels of one bottle's Kubernetes objects (light: the listing path
imports this and nothing of the client)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from backends.base import bottle_name

AGENT_CONTAINER = "agent"
EGRESS_CONTAINER = "egress"
SEAL_CONTAINER = "seal"
#: On the claims `rm` keeps (without ``--volumes``): the bottle is gone, its home is kept
#: for the next ``up`` (as docker keeps its home volume), and the listing skips them.
REMOVED_LABEL = "bottle-dash.removed"
#: The exact labels (a label value cannot hold the owner's ``:``).
LABELS_ANNOTATION = "bottle-dash.dev/labels"


def pod_name(agent: str) -> str:
    """The pod of ``agent``'s bottle."""
    return bottle_name(agent)


def home_claim_name(agent: str) -> str:
    """The claim that holds the agent's ``/home/node``."""
    return bottle_name(agent, "-home")


def workspace_claim_name(agent: str) -> str:
    """The claim that holds the agent's ``/workspace``."""
    return bottle_name(agent, "-workspace")


def env_secret_name(agent: str) -> str:
    """The Secret the agent container's environment comes from."""
    return bottle_name(agent, "-env")


def egress_secret_name(agent: str) -> str:
    """The Secret mounted into the egress container only."""
    return bottle_name(agent, "-egress")


def addon_map_name(agent: str) -> str:
    """The ConfigMap holding the broker addon's files."""
    return bottle_name(agent, "-addon")


def label_value(value: str) -> str:
    """``value`` as a Kubernetes label value (``:`` is not allowed: it becomes ``.``)."""
    return value.replace(":", ".").replace("/", ".")[:63]


def kube_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The bottle's labels, label-safe (the exact ones go in ``LABELS_ANNOTATION``)."""
    return {key: label_value(value) for key, value in labels.items()}


def exact_labels(metadata: Any) -> dict[str, str]:
    """The bottle's exact labels (the annotation), else its label-safe ones."""
    text = (metadata.annotations or {}).get(LABELS_ANNOTATION)
    if text:
        with suppress(ValueError, AttributeError):
            return {str(k): str(v) for k, v in json.loads(text).items()}
    return dict(metadata.labels or {})
