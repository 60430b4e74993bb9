"""A docker bottle's launch, as a sequence of calls into named rooms: the image, the
sidecar and its networks (``backends.egress``), the home volume, the agent's account, the
container, provisioning, the plan's record.

A new bottle is made whole or not at all: every step that creates something registers
its undo, and a failure removes what this launch made, in reverse order. An existing
bottle is started (and its sidecar repaired) instead. Whatever fails, the caller gets one
``LaunchError`` naming the agent and the step (``Steps``), or the engine's own
unavailability.
"""

from __future__ import annotations

from contextlib import ExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any

from backends import ownership, paths
from backends.base import (
    LABEL_AGENT,
    BackendError,
    BackendUnavailable,
    ImageNotFound,
    LaunchError,
    ProgressFn,
)
from backends.docker import container
from backends.docker.engine import api_message, errors, quietly
from backends.egress import plan as egress

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan


class Steps:
    """The step a launch is at, and the one place its failures become a ``LaunchError``:
    an error of the engine, of a backend or of a file while ``Steps`` is entered becomes
    ``launch of agent A failed while STEP: WHY`` (the engine's own words when it was the
    engine that refused). A ``LaunchError`` (it names its step already) and an engine that
    went away (``BackendUnavailable``, or a connection error that the engine's
    ``translating`` turns into one) pass as they are."""

    def __init__(self, plan: BottlePlan, progress: ProgressFn) -> None:
        self.plan = plan
        self.progress = progress
        self.step = ""

    def at(self, step: str, *, say: bool = True) -> None:
        """Enter ``step``; ``say`` reports it to the progress sink (some steps report
        their own progress)."""
        self.step = step
        if say:
            self.progress(step)

    def __enter__(self) -> Steps:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        passes = (LaunchError, BackendUnavailable, errors.ConnectionError, errors.Timeout)
        if exc is None or isinstance(exc, passes):
            return
        if isinstance(exc, (errors.DockerException, BackendError, OSError)):
            detail = api_message(exc) if isinstance(exc, errors.DockerException) else str(exc)
            raise LaunchError(
                f"launch of agent {self.plan.agent} failed while {self.step}: {detail}",
                agent=self.plan.agent,
            ) from exc


def create_bottle(api: Any, plan: BottlePlan, progress: ProgressFn) -> None:
    """Make the bottle of ``plan`` (none exists) and provision it; a failure removes what
    was made here, in reverse order."""
    from backends.docker import volume
    from backends.docker.accounts import write_accounts
    from backends.docker.plan import image_fix
    from backends.docker.provision import provision, provision_ca
    from backends.egress import sidecar
    from backends.egress.networks import ensure_network

    progress("checking the image")
    try:
        api.inspect_image(plan.image)
    except errors.NotFound:
        raise ImageNotFound(
            f"image {plan.image} of agent {plan.agent} is not in the Docker engine",
            fix=image_fix(plan.image),
            agent=plan.agent,
        ) from None
    with Steps(plan, progress) as steps, ExitStack() as undo:
        proxy_ready = None
        if egress.is_sealed(plan):
            # The sidecar first: a sealed bottle never runs without its egress.
            steps.at("bringing up the egress sidecar", say=False)
            proxy_ready = sidecar.bring_up(api, plan, undo, progress)
        else:
            steps.at("creating the network")
            assert plan.network
            ensure_network(api, plan, plan.network, undo, sealed=False)
        steps.at("creating the home volume")
        home_mount = volume.ensure_home(api, plan, undo)
        if plan.extra.get("repo"):
            from backends.docker.copy import ensure_copy

            steps.at("making the agent's copy of its repository", say=False)
            ensure_copy(api, plan, undo, progress)
        steps.at(f"writing the account of uid {plan.uid}:{plan.gid}")
        write_accounts(api, plan)
        steps.at("creating the container")
        ident = container.create(api, plan, home_mount)
        undo.callback(quietly, api.remove_container, ident, force=True, v=False)
        steps.at("starting the container")
        api.start(ident)
        provision(api, plan, progress)
        if proxy_ready is not None:
            steps.at("copying the egress CA certificate", say=False)
            provision_ca(api, plan)
            steps.at("waiting for the egress proxy", say=False)
            proxy_ready()
        steps.at("recording the plan", say=False)
        paths.save_plan(plan)
        undo.pop_all()
    progress("running")


def start_existing(
    api: Any, plan: BottlePlan, info: dict[str, Any], progress: ProgressFn
) -> BottlePlan:
    """``launch`` of a bottle that exists (``info``, inspected): nothing when it runs, else
    start and provision it. A sealed bottle's sidecar is repaired either way (made again
    when it died or was removed; its allowlist read again). Returns the plan its handle
    carries: the recorded one of a bottle that was running, else ``plan``."""
    from backends.docker.accounts import restore_accounts
    from backends.docker.provision import provision, provision_ca
    from backends.egress import sidecar

    labels = (info.get("Config") or {}).get("Labels") or {}
    if labels.get(LABEL_AGENT) != plan.agent:
        raise LaunchError(
            f"a container named {plan.bottle} exists that bottle-dash did not create",
            fix=f"remove or rename it (`docker rm -f {plan.bottle}`)",
            agent=plan.agent,
        )
    if not ownership.is_mine(labels):
        raise ownership.foreign(
            plan.agent, f"container {plan.bottle}", labels.get(ownership.LABEL_OWNER)
        )
    state = info.get("State") or {}
    ident = info["Id"]
    running = state.get("Running") and not state.get("Paused")
    with Steps(plan, progress) as steps:
        steps.at("bringing up the egress sidecar", say=False)
        if egress.is_sealed(plan):
            # Repairs a sidecar that died or was removed; re-reads the allowlist.
            with ExitStack() as undo:
                sidecar.bring_up(api, plan, undo, progress)()
                undo.pop_all()
        elif container.sealed_network(api, plan):
            raise LaunchError(
                f"agent {plan.agent} is configured unsealed but its bottle was made sealed",
                fix=f"bottle-dash rm {plan.agent}, then bottle-dash up {plan.agent}",
                agent=plan.agent,
            )
    if running:
        progress("already running")
        return paths.saved_plan(plan.agent) or plan
    container.check_user(info, plan.agent)
    progress("starting the container")
    with Steps(plan, progress) as steps:
        steps.at("starting the container", say=False)
        restore_accounts(api, info)
        if state.get("Paused"):
            api.unpause(ident)
        else:
            api.start(ident)
        provision(api, plan, progress)
        if egress.is_sealed(plan):
            steps.at("copying the egress CA certificate", say=False)
            provision_ca(api, plan)
        steps.at("recording the plan", say=False)
        paths.save_plan(plan)
    progress("running")
    return plan
