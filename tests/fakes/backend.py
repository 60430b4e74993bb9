"""FakeBackend: an in-memory ``BottleBackend`` for UI tests and benchmarks (a FAKE).

It keeps bottles in a dict, records every call in ``calls``, and can be told to fail
(``fail["launch"] = LaunchError(...)``), to report preflight problems, or to hold a launch
until a test releases it (``gate``), so tests can check the UI stays responsive.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from backends.base import (
    GUEST_PROMPT,
    NOT_CREATED,
    RUNNING,
    STOPPED,
    AgentSpec,
    BackendUnavailable,
    Bottle,
    BottleBackend,
    BottleInfo,
    BottleNotFound,
    Completed,
    Problem,
    ProgressFn,
    bottle_labels,
    bottle_name,
    no_progress,
)
from backends.bottle_plan import BottlePlan
from backends.claude import claude_args
from backends.paths import save_plan, saved_plan

FIXED_CREATED = "2026-01-01T10:00:00Z"


class FakeBottle(Bottle):
    """A handle whose argv runs nothing real: ``fake-exec [-t] <bottle> claude ...``."""

    def __init__(self, backend: FakeBackend, agent: str, plan: BottlePlan | None = None) -> None:
        self.backend = backend
        self.agent = agent
        self.name = bottle_name(agent)
        self.plan = plan

    def claude_argv(self, argv: Sequence[str], *, tty: bool = True) -> list[str]:
        return ["fake-exec", *(["-t"] if tty else []), self.name, "claude", *argv]

    def exec(self, script: str, *, user: str = "node", timeout: float = 120) -> Completed:
        self.backend.calls.append(("exec", self.agent, script))
        return Completed(("fake-exec", self.name, "sh", "-c", script), 0, "", "")

    def wrap_argv(
        self, argv: Sequence[str], *, user: str, interactive: bool, tty: bool = False
    ) -> list[str]:
        return ["fake-exec", self.name, *argv]

    def cp_in(self, src: Path, dst: str, *, mode: int | None = None, user: str = "node") -> None:
        self.backend.calls.append(("cp_in", self.agent, str(src), dst))


class FakeBackend(BottleBackend):
    """In-memory bottles. ``calls`` lists (method, agent, ...) in order."""

    name = "docker"

    def __init__(
        self,
        name: str = "docker",
        problems: Sequence[Problem] = (),
        host_pid: int | None = None,
    ) -> None:
        self.name = name  # type: ignore[misc]
        self.bottles: dict[str, BottleInfo] = {}
        self.calls: list[tuple[object, ...]] = []
        self.problems = list(problems)
        self.fail: dict[str, Exception] = {}
        self.unavailable: str | None = None
        self.gate: threading.Event | None = None
        self.pid = host_pid
        self.log_text: dict[str, str] = {}

    # ------------------------------------------------------------ test helpers

    def add(self, agent: str, state: str = RUNNING, image: str = "fake-image:1") -> BottleInfo:
        """Put a bottle in place as if an earlier launch made it."""
        info = BottleInfo(
            agent=agent,
            backend=self.name,
            bottle=bottle_name(agent),
            state=state,
            image=image,
            created=FIXED_CREATED,
            ident=f"id-{agent}",
            host_pid=self.pid,
            labels=bottle_labels(agent, self.name),
        )
        self.bottles[agent] = info
        return info

    def _set_state(self, agent: str, state: str) -> None:
        info = self.bottles[agent]
        self.bottles[agent] = BottleInfo(**{**info.to_dict(), "state": state})

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail:
            raise self.fail[method]

    def called(self, method: str) -> list[tuple[object, ...]]:
        """The recorded calls of ``method``."""
        return [c for c in self.calls if c[0] == method]

    # ------------------------------------------------------------ contract

    def preflight(self) -> list[Problem]:
        self.calls.append(("preflight",))
        return list(self.problems)

    def prepare(self, agent: AgentSpec) -> BottlePlan:
        self.calls.append(("prepare", agent.name))
        self._maybe_fail("prepare")
        return BottlePlan(
            agent=agent.name,
            backend=self.name,
            bottle=bottle_name(agent.name),
            image=agent.image,
            labels=bottle_labels(agent.name, self.name),
            env=dict(agent.env),
            workspace=str(agent.workspace) if agent.workspace else None,
            prompt_host="/dev/null",
            prompt_guest=GUEST_PROMPT,
            prompt_nonempty=bool(agent.prompt),
            skills=[],
            claude_args=claude_args(GUEST_PROMPT, bool(agent.prompt), agent.claude_args),
        )

    def launch(self, plan: BottlePlan, progress: ProgressFn = no_progress) -> Bottle:
        self.calls.append(("launch", plan.agent))
        progress("creating bottle")
        if self.gate is not None:
            self.gate.wait(30)
        self._maybe_fail("launch")
        progress("provisioning")
        self.add(plan.agent, RUNNING, plan.image)
        save_plan(plan)  # the contract: a launch records its plan, as both real backends do
        return FakeBottle(self, plan.agent, plan)

    def list_bottles(self) -> list[BottleInfo]:
        self.calls.append(("list_bottles",))
        if self.unavailable:
            raise BackendUnavailable(self.unavailable, fix="start the fake engine")
        return list(self.bottles.values())

    def bottle(self, agent: str) -> Bottle:
        self.calls.append(("bottle", agent))
        if agent not in self.bottles:
            raise BottleNotFound(f"no bottle for {agent}", agent=agent)
        return FakeBottle(self, agent, saved_plan(agent))

    def start(self, agent: str) -> Bottle:
        self.calls.append(("start", agent))
        self._maybe_fail("start")
        self._set_state(agent, RUNNING)
        return FakeBottle(self, agent, saved_plan(agent))

    def stop(self, agent: str) -> None:
        self.calls.append(("stop", agent))
        self._maybe_fail("stop")
        if agent not in self.bottles:
            raise BottleNotFound(f"no bottle for {agent}", agent=agent)
        self._set_state(agent, STOPPED)

    def remove(self, agent: str, *, volumes: bool = False) -> None:
        self.calls.append(("remove", agent, volumes))
        self._maybe_fail("remove")
        self.bottles.pop(agent, None)

    def logs(self, agent: str, *, tail: int = 200) -> str:
        self.calls.append(("logs", agent))
        return self.log_text.get(agent, f"log line of {agent}")

    def state(self, agent: str) -> str:
        """The bottle's state, NOT_CREATED when there is none."""
        info = self.bottles.get(agent)
        return info.state if info else NOT_CREATED
