"""The docker backend: each agent's bottle is a hardened container with its own network
and a named volume for ``/home/node``, all labelled, all driven through the docker SDK.

Resources of the bottle of agent ``<slug>``:

- container ``bottle-<slug>``: the agent's uid:gid (the workspace's owner, as ``node``:
  see ``backends.agent_user`` and ``accounts.py``), every capability dropped, no-new-privileges,
  pids/memory/cpu limits, the workspace bind-mounted at /workspace, a keep-alive main
  process (claude itself is started with ``docker exec`` from a pane);
- network ``bottle-<slug>-net`` (one bridge per bottle: bottles do not see each other);
- volume ``bottle-<slug>-home`` at /home (volumes made before: at /home/node), so
  ``~/.claude`` (and ``claude --resume`` of its pinned session) survives stop, start and
  removal without ``--volumes``.

Every resource carries ``base.bottle_labels``; listing is by label, in one call. The
rooms: ``listing`` (the hot path), ``launch`` (a launch as calls into the others),
``container``, ``volume``, ``accounts``, ``provision``; a sealed bottle's sidecar and
networks are ``backends.egress``'s.
"""

from __future__ import annotations

import urllib.parse
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, ClassVar

from backends import paths
from backends.base import (
    AgentSpec,
    BackendError,
    BottleBackend,
    BottleInfo,
    BottleNotFound,
    Completed,
    Problem,
    ProgressFn,
    no_progress,
)
from backends.docker.engine import (
    SDK_FIX,
    Engine,
    EngineNotFound,
    api_message,
    docker_host,
    errors,
    sdk_import_error,
)
from backends.docker.listing import Listing, label_filter
from backends.egress import plan as egress

if TYPE_CHECKING:
    # The rest is imported where used: listing (`ls`) needs the engine alone, not the
    # plan, accounts, the container, bottle handles, hardening notes, the launch,
    # provisioning or the sidecar.
    from backends.bottle_plan import BottlePlan
    from backends.docker.bottle import DockerBottle


class DockerBackend(BottleBackend):
    """Bottles as Docker containers, through the docker SDK (``docker>=7.1``).

    The client is created on first use from the environment (``DOCKER_HOST``,
    ``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``); docker CLI contexts are not read, so an
    operator on a non-default context sets ``DOCKER_HOST``. An engine that does not answer
    raises ``BackendUnavailable`` (never a bare SDK error) naming where it looked and how
    to fix it.
    """

    name: ClassVar[str] = "docker"

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or Engine()
        self.listing = Listing(self.engine, self.name)

    # ------------------------------------------------------------------ preflight

    def preflight(self) -> list[Problem]:
        """The SDK, the engine (it answers ``version``), and the docker CLI (attach and
        exec run ``docker exec`` in a pane). Never raises."""
        missing = sdk_import_error()
        if missing:
            return [Problem("docker", f"the Docker SDK is not importable: {missing}", SDK_FIX)]
        problems: list[Problem] = []
        try:
            self.engine.get("/version")
        except BackendError as exc:
            problems.append(Problem("docker", exc.message, exc.fix or ""))
        except Exception as exc:  # a preflight reports; it never takes the caller down
            problems.append(
                Problem(
                    "docker",
                    f"Docker engine at {docker_host()} failed: {exc}",
                    "check `docker info`",
                )
            )
        from shutil import which

        if which("docker") is None:
            problems.append(
                Problem(
                    "docker",
                    "the docker CLI is not on PATH (attaching runs `docker exec`)",
                    "install it: `sudo apt-get install -y docker.io` (or docker-ce-cli)",
                )
            )
        return problems

    def _info(self) -> dict[str, Any] | None:
        """The engine's ``/info`` (None when it does not answer)."""
        try:
            info = self.engine.get("/info")
        except Exception:  # a report about the engine, never a failure of the caller
            return None
        return info if isinstance(info, dict) else None

    def probe_facts(self, agent: str) -> dict[str, Any]:
        """The inspected container and each of its networks (read-only engine calls)."""
        info = self._ours(agent)
        networks: dict[str, Any] = {}
        for name in (info.get("NetworkSettings") or {}).get("Networks") or {}:
            try:
                networks[name] = self.engine.get(f"/networks/{urllib.parse.quote(name)}")
            except EngineNotFound:
                continue  # removed meanwhile
        try:
            sidecar = self.engine.get(
                f"/containers/{urllib.parse.quote(egress.sidecar_name(agent))}/json"
            )
        except EngineNotFound:
            sidecar = {}
        return {"container": info, "networks": networks, "sidecar": sidecar}

    def hardening(self) -> list[Problem]:
        """User namespace and disk budget of this engine (``hardening.notes``)."""
        from backends.docker.hardening import notes

        info = self._info()
        return notes(info) if info is not None else []

    # ------------------------------------------------------------------ prepare, launch

    def prepare(self, agent: AgentSpec) -> BottlePlan:
        """Resolve the plan of ``agent`` and write its prompt file (mode 0600); see
        ``backends.docker.plan.prepare_plan`` for the defaults it fills in. The plan also
        records what this engine gives of the hardening (``extra["engine"]``)."""
        from backends.docker import hardening
        from backends.docker.plan import prepare_plan

        plan = prepare_plan(agent, self.name)
        info = self._info()
        plan.extra["engine"] = (
            {
                "user_namespace": hardening.userns(info) or "none",
                "disk_budget": hardening.disk_budget(info),
            }
            if info is not None
            else {"user_namespace": "unknown (engine not answering)"}
        )
        return plan

    def launch(self, plan: BottlePlan, progress: ProgressFn = no_progress) -> DockerBottle:
        """Bring the bottle of ``plan`` up and provision it; returns its handle.

        A running bottle is returned as is. A stopped one is started and provisioned
        again (prompt and skills may have changed). Otherwise the network, the home volume
        (unless it survived an earlier removal) and the container are created, the
        container started and provisioned; any failure removes what this launch created,
        in reverse order, and raises ``LaunchError``/``ProvisionError`` naming the agent
        and the step (``backends.docker.launch``). The plan is then recorded as
        ``plan.json`` in the agent's state dir.
        """
        from backends.docker import container
        from backends.docker import launch as launching
        from backends.docker.accounts import user_ids

        with self.engine.translating() as api:
            existing = container.inspect(api, plan.bottle)
            if existing is None:
                launching.create_bottle(api, plan, progress)
                return self._handle(plan.agent, plan, ids=(plan.uid, plan.gid))
            carried = launching.start_existing(api, plan, existing, progress)
            return self._handle(plan.agent, carried, ids=user_ids(existing))

    # ------------------------------------------------------------------ listing

    def list_bottles(self) -> list[BottleInfo]:
        """Every docker bottle (labelled ``bottle-dash.agent`` and ``backend=docker``),
        from one listing call (``GET /containers/json``); sorted by agent."""
        return self.listing.bottles()

    def host_pid(self, info: BottleInfo) -> int | None:
        """The container's ``containerd-shim`` on this host (``Listing.host_pid``)."""
        return self.listing.host_pid(info)

    # ------------------------------------------------------------------ one bottle

    def _ours(self, agent: str) -> dict[str, Any]:
        """The inspected container of ``agent``, or ``BottleNotFound`` (``container.ours``)."""
        from backends.docker import container

        return container.ours(self.engine, agent)

    def _handle(
        self,
        agent: str,
        plan: BottlePlan | None,
        *,
        ids: tuple[int, int],
        running: bool = True,
    ) -> DockerBottle:
        """A handle carrying ``plan`` (the recorded one): its env goes on every exec;
        ``ids`` are the agent's uid and gid in the bottle."""
        from backends.docker.bottle import DockerBottle

        env = plan.env if plan else {}
        bottle = DockerBottle(self.engine, agent, env=env, running=running, ids=ids)
        bottle.plan = plan
        return bottle

    def bottle(self, agent: str) -> DockerBottle:
        """A handle on the container of ``agent`` (running or not: see ``.running``)
        with the plan recorded at its launch."""
        from backends.docker.accounts import user_ids

        info = self._ours(agent)
        state = info.get("State") or {}
        running = bool(state.get("Running")) and not state.get("Paused")
        return self._handle(agent, paths.saved_plan(agent), running=running, ids=user_ids(info))

    def start(self, agent: str) -> DockerBottle:
        """Start the stopped bottle of ``agent``; its home volume (prompt, skills,
        ``~/.claude``) is still there. A sealed bottle's sidecar, stopped or removed, is
        brought up first (also for a running bottle: ``up`` repairs a dead sidecar this
        way). Returns its handle, as ``bottle`` would."""
        from backends.docker import container
        from backends.docker.accounts import restore_accounts, user_ids
        from backends.egress import sidecar

        info = self._ours(agent)
        container.check_user(info, agent)
        plan = paths.saved_plan(agent)
        with self.engine.translating() as api:
            try:
                restore_accounts(api, info)
                state = sidecar.sidecar_state(api, agent)
                if plan is not None and egress.is_sealed(plan) and state != "running":
                    # Stopped or removed: up again from the recorded plan, and listening
                    # before the bottle's next request (a sealed bottle never runs without).
                    with ExitStack() as undo:
                        sidecar.bring_up(api, plan, undo, no_progress)()
                        undo.pop_all()
                elif state == "stopped":
                    api.start(egress.sidecar_name(agent))
                api.start(info["Id"])
            except errors.APIError as exc:
                raise BackendError(
                    f"starting the bottle of agent {agent} failed: {api_message(exc)}", agent=agent
                ) from exc
        return self._handle(agent, plan, ids=user_ids(info))

    def read_copy(self, agent: str, script: str, *, timeout: float = 120) -> Completed:
        """``sh -c script`` over the agent's copy: by exec in its bottle when it runs, else
        in a helper container with the copy mounted read-only (``backends.docker.copy``)."""
        from backends.docker import copy

        plan = paths.saved_plan(agent)
        if plan is None or not plan.extra.get("repo"):
            raise BackendError(
                f"agent {agent} has no repository copy", fix="set repo in its config", agent=agent
            )
        try:
            bottle = self.bottle(agent)
        except BottleNotFound:
            bottle = None
        if bottle is not None and bottle.running:
            return bottle.exec(script, timeout=timeout)
        with self.engine.translating() as api:
            try:
                api.inspect_volume(plan.extra["repo"]["volume"])
            except errors.NotFound:
                raise BackendError(
                    f"the copy of agent {agent} ({plan.extra['repo']['volume']}) is gone",
                    agent=agent,
                ) from None
            return copy.read_copy(api, plan, script)

    def stop(self, agent: str) -> None:
        """Stop the bottle of ``agent`` (SIGTERM, then SIGKILL after 5 s)."""
        from backends.docker.plan import STOP_TIMEOUT
        from backends.egress import sidecar

        info = self._ours(agent)
        with self.engine.translating() as api:
            try:
                api.stop(info["Id"], timeout=STOP_TIMEOUT)
                sidecar.stop(api, agent)
            except errors.NotFound:
                pass  # removed meanwhile: stopped enough
            except errors.APIError as exc:
                raise BackendError(
                    f"stopping the bottle of agent {agent} failed: {api_message(exc)}", agent=agent
                ) from exc
        self.listing.forget(str(info.get("Id")))

    def remove(self, agent: str, *, volumes: bool = False) -> None:
        """Remove the container and network of ``agent`` (found by label), and its home
        volume when ``volumes``. ``BottleNotFound`` when there was nothing to remove."""
        removed: list[str] = []
        kept: list[str] = []
        with self.engine.translating() as api:
            filters = label_filter(agent)
            try:
                for row in api.containers(all=True, filters=filters):
                    if self._gone_ok(api.remove_container, row["Id"], force=True, v=False):
                        removed.append("container")
                for net in api.networks(filters=filters):
                    if self._gone_ok(api.remove_network, net["Id"]):
                        removed.append("network")
                for vol in (api.volumes(filters=filters) or {}).get("Volumes") or []:
                    if not volumes:
                        kept.append(vol["Name"])
                    elif self._gone_ok(api.remove_volume, vol["Name"], force=True):
                        removed.append("volume")
            except errors.APIError as exc:
                raise BackendError(
                    f"removing the bottle of agent {agent} failed: {api_message(exc)}", agent=agent
                ) from exc
        if not removed:
            note = f" (its home volume {kept[0]} remains)" if kept else ""
            raise BottleNotFound(
                f"no bottle for agent {agent}{note}",
                fix=f"bottle-dash rm --volumes {agent}" if kept else f"bottle-dash up {agent}",
                agent=agent,
            )

    @staticmethod
    def _gone_ok(fn: Any, *args: Any, **kwargs: Any) -> bool:
        """Remove one resource; False when it was already gone (a race, not an error)."""
        try:
            fn(*args, **kwargs)
        except errors.NotFound:
            return False
        except errors.APIError as exc:
            if getattr(exc, "status_code", None) == 409 and "in progress" in api_message(exc):
                return True
            raise
        return True

    def logs(self, agent: str, *, tail: int = 200) -> str:
        """What is useful to read of the bottle (``container.bottle_logs``): its state,
        its main process's output, and its egress sidecar's last ``tail`` lines."""
        from backends.docker.container import bottle_logs

        return bottle_logs(self.engine, self._ours(agent), agent, tail)
