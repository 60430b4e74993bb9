"""The plan of one launch (``BottlePlan``): everything a launch will do, resolved up front,
printable as a dry run and saved beside the bottle (``paths.save_plan``) so that attaching
reads it back instead of preparing again.

A module of its own so that commands that never launch or attach (``ls``) need not load
it: it is mutable while a backend fills it in, hence a dataclass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from backends.guest import GUEST_UID, GUEST_USER


@dataclass
class BottlePlan:
    """Everything a launch will do, resolved up front; printable as a dry run."""

    agent: str
    backend: str
    bottle: str
    image: str
    labels: dict[str, str]
    env: dict[str, str]
    workspace: str | None
    prompt_host: str
    prompt_guest: str
    prompt_nonempty: bool
    skills: list[tuple[str, str]]
    claude_args: list[str]
    cpus: float | None = None
    memory: int | None = None
    pids: int | None = None
    network: str | None = None
    home_volume: str | None = None
    user: str = GUEST_USER
    #: The uid:gid the agent runs as (``backends.agent_user``: the workspace's owner) and why;
    #: anything mounted into the bottle for the agent to write must be writable by them.
    uid: int = GUEST_UID
    gid: int = GUEST_UID
    uid_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: Host directory mounted at ``claude.GUEST_STATUS_DIR`` for the status hooks (None in
    #: plans recorded before status existed: such bottles have the pane title only).
    status_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skills"] = [{"source": s, "dest": d} for s, d in self.skills]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BottlePlan:
        data = dict(data)
        data["skills"] = [(s["source"], s["dest"]) for s in data.get("skills", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})
