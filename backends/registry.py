"""Backend names to implementations, imported lazily so one missing SDK never breaks the rest."""

from __future__ import annotations

import importlib

from backends.base import BottleBackend, UnknownBackend

#: name -> "module:Class"
BACKENDS: dict[str, str] = {
    "docker": "backends.docker.backend:DockerBackend",
    "smolmachines": "backends.smolmachines.backend:SmolmachinesBackend",
    "kubernetes": "backends.kubernetes.backend:KubernetesBackend",
}

_instances: dict[str, BottleBackend] = {}


def names() -> list[str]:
    """Registered backend names."""
    return list(BACKENDS)


def get_backend(name: str) -> BottleBackend:
    """The (cached) backend called ``name``; ``UnknownBackend`` names the valid ones."""
    if name not in BACKENDS:
        raise UnknownBackend(
            f"unknown backend {name!r}",
            fix=f"use one of: {', '.join(BACKENDS)}",
        )
    if name not in _instances:
        module, _, cls = BACKENDS[name].partition(":")
        _instances[name] = getattr(importlib.import_module(module), cls)()
    return _instances[name]


def reset() -> None:
    """Forget cached instances (tests that change DOCKER_HOST or PATH)."""
    _instances.clear()
