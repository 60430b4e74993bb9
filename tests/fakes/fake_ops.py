"""A stand-in for ``bottle_dash.ops`` (a FAKE) with the agreed interface, used by the UI
tests only while the real module is missing. Backends are resolved through the registry,
like the real one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backends import registry
from backends.base import (
    NOT_CREATED,
    RUNNING,
    STOPPED,
    AgentSpec,
    BackendError,
    BottleInfo,
    Problem,
    bottle_name,
)
from backends.claude import resume_fallback


@dataclass
class AgentRow:
    name: str
    backend: str
    bottle: str
    state: str
    image: str
    created: str
    defined: bool
    spec: AgentSpec | None
    info: BottleInfo | None


def list_agents(config: Any, backends: Any = None) -> tuple[list[AgentRow], list[Problem]]:
    names = list(backends) if backends else sorted({a.backend for a in config.agents.values()})
    found: dict[str, BottleInfo] = {}
    problems: list[Problem] = []
    for name in names:
        try:
            for info in registry.get_backend(name).list_bottles():
                found[info.agent] = info
        except BackendError as exc:
            problems.append(Problem(name, exc.message, exc.fix or ""))
    rows = []
    for name, spec in config.agents.items():
        info = found.pop(name, None)
        rows.append(
            AgentRow(
                name,
                spec.backend,
                bottle_name(name),
                info.state if info else NOT_CREATED,
                spec.image,
                info.created if info else "",
                True,
                spec,
                info,
            )
        )
    for info in found.values():
        rows.append(
            AgentRow(
                info.agent,
                info.backend,
                info.bottle,
                info.state,
                info.image,
                info.created,
                False,
                None,
                info,
            )
        )
    return rows, problems


def up(spec: AgentSpec, progress: Any = None) -> tuple[Any, str]:
    backend = registry.get_backend(spec.backend)
    state = next((b.state for b in backend.list_bottles() if b.agent == spec.name), None)
    if state == RUNNING:
        return backend.attach(spec.name), "running"
    if state == STOPPED:
        backend.start(spec.name)
        return backend.attach(spec.name), "started"
    return backend.launch(backend.prepare(spec), progress or (lambda s: None)), "launched"


def down(name: str, backend: str) -> None:
    registry.get_backend(backend).stop(name)


def remove(name: str, backend: str, volumes: bool = False) -> None:
    registry.get_backend(backend).remove(name, volumes=volumes)


def attach_argv(spec_or_row: Any, *, fresh: bool = False, tty: bool = True) -> list[str]:
    spec = spec_or_row if isinstance(spec_or_row, AgentSpec) else spec_or_row.spec
    name = spec_or_row.name
    backend = spec.backend if spec else spec_or_row.backend
    args = list(spec.claude_args) if spec else []
    bottle = registry.get_backend(backend).attach(name)
    return resume_fallback(bottle.claude_argv(args, tty=tty), len(args), fresh=fresh)
