"""The docker backend: each agent's bottle is a hardened container with its own network
and a named volume for ``/home/node``, all labelled, all driven through the docker SDK.

Resources of the bottle of agent ``<slug>``:

- container ``bottle-<slug>``: the agent's uid:gid (the workspace's owner, as ``node``:
  see ``backends.owner`` and ``accounts.py``), every capability dropped, no-new-privileges,
  pids/memory/cpu limits, the workspace bind-mounted at /workspace, a keep-alive main
  process (claude itself is started with ``docker exec`` from a pane);
- network ``bottle-<slug>-net`` (one bridge per bottle: bottles do not see each other);
- volume ``bottle-<slug>-home`` at /home (volumes made before: at /home/node), so
  ``~/.claude`` (and ``claude --continue``) survives stop, start and removal without
  ``--volumes``.

Every resource carries ``base.bottle_labels``; listing is by label, in one call.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from backends import ownership, paths
from backends.base import (
    GUEST_HOME,
    GUEST_WORKSPACE,
    LABEL_AGENT,
    LABEL_BACKEND,
    RUNNING,
    STOPPED,
    AgentSpec,
    BackendError,
    BackendUnavailable,
    BottleBackend,
    BottleInfo,
    BottleNotFound,
    ImageNotFound,
    LaunchError,
    Problem,
    ProgressFn,
    _no_progress,
    bottle_name,
)
from backends.claude import GUEST_STATUS_DIR
from backends.docker.engine import (
    SDK_FIX,
    Engine,
    EngineNotFound,
    api_message,
    docker_host,
    errors,
    sdk_import_error,
)
from backends.egress import plan as egress

if TYPE_CHECKING:
    # The rest is imported where used: listing (`ls`) needs the engine alone, not the
    # plan, accounts, bottle handles, hardening notes, provisioning or the sidecar.
    from backends.bottle_plan import BottlePlan
    from backends.docker.bottle import DockerBottle


def _iso(created: Any) -> str:
    """Engine timestamps (Unix seconds in listings) as ISO 8601 UTC."""
    if isinstance(created, int | float):
        return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="seconds")
    return str(created or "")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _shim_of(pid: int) -> int:
    """The ``containerd-shim`` parent of a container's main process, else ``pid`` itself
    (another runtime, or /proc not readable)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        ppid = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("PPid:")))
        cmdline = Path(f"/proc/{ppid}/cmdline").read_bytes()
    except (OSError, ValueError, StopIteration, IndexError):
        return pid
    return ppid if ppid > 1 and b"containerd-shim" in cmdline else pid


def _label_filter(agent: str | None = None) -> dict[str, list[str]]:
    """Engine filter for this owner's resources of this backend (of one agent when
    given); label filters AND together, so other backends' containers (the smolvm
    stand-in) and other operators' bottles stay out."""
    first = f"{LABEL_AGENT}={agent}" if agent else LABEL_AGENT
    return {
        "label": [
            first,
            f"{LABEL_BACKEND}=docker",
            f"{ownership.LABEL_OWNER}={ownership.current()}",
        ]
    }


def _egress_state(labels: dict[str, str], sidecars: dict[Any, bool]) -> str:
    """A bottle's egress as the listing sees it: sealed with its sidecar running, sealed
    with the sidecar stopped or gone (no egress at all: fail closed), or unsealed."""
    if labels.get(egress.SEALED_LABEL) != "true":
        return "unsealed"
    return "sealed" if sidecars.get(labels.get(LABEL_AGENT)) else "sidecar down"


def _sealed_network(api: Any, plan: BottlePlan) -> bool:
    """Whether the bottle's network is a sealed (internal) one."""
    try:
        return bool(api.inspect_network(plan.network).get("Internal"))
    except errors.NotFound:
        return False


def _step_failed(plan: BottlePlan, step: str, exc: Exception) -> LaunchError:
    """The ``LaunchError`` of a launch that failed at ``step`` (the engine's own words
    when it was the engine that refused)."""
    detail = api_message(exc) if isinstance(exc, errors.DockerException) else str(exc)
    return LaunchError(
        f"launch of agent {plan.agent} failed while {step}: {detail}", agent=plan.agent
    )


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
        # container id -> host pid of its main process, while it runs (one inspect each).
        self._pids: dict[str, int] = {}
        self._pids_lock = threading.Lock()

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

    # ------------------------------------------------------------------ prepare

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

    # ------------------------------------------------------------------ launch

    def launch(self, plan: BottlePlan, progress: ProgressFn = _no_progress) -> DockerBottle:
        """Bring the bottle of ``plan`` up and provision it; returns its handle.

        A running bottle is returned as is. A stopped one is started and provisioned
        again (prompt and skills may have changed). Otherwise the network, the home volume
        (unless it survived an earlier removal) and the container are created, the
        container started and provisioned; any failure removes what this launch created,
        in reverse order, and raises ``LaunchError``/``ProvisionError`` naming the agent
        and the step. The plan is then recorded as ``plan.json`` in the agent's state dir.
        """
        from backends.docker import sidecar
        from backends.docker.accounts import write_accounts
        from backends.docker.plan import IMAGE_FIX
        from backends.docker.provision import provision

        with self.engine.translating() as api:
            existing = self._inspect(api, plan.bottle)
            if existing is not None:
                return self._relaunch(api, plan, existing, progress)
            step = "checking the image"
            progress(step)
            try:
                api.inspect_image(plan.image)
            except errors.NotFound:
                raise ImageNotFound(
                    f"image {plan.image} of agent {plan.agent} is not in the Docker engine",
                    fix=IMAGE_FIX,
                    agent=plan.agent,
                ) from None
            try:
                with ExitStack() as undo:
                    sealed = egress.is_sealed(plan)
                    proxy_ready = None
                    if sealed:
                        # The sidecar first: a sealed bottle never runs without its egress.
                        step = "bringing up the egress sidecar"
                        proxy_ready = sidecar.bring_up(api, plan, undo, progress)
                    else:
                        step = "creating the network"
                        progress(step)
                        self._network(api, plan, undo)
                    step = "creating the home volume"
                    progress(step)
                    home_mount = self._volume(api, plan, undo)
                    step = f"writing the account of uid {plan.uid}:{plan.gid}"
                    progress(step)
                    write_accounts(api, plan)
                    step = "creating the container"
                    progress(step)
                    ident = self._create(api, plan, home_mount)
                    undo.callback(self._quietly, api.remove_container, ident, force=True, v=False)
                    step = "starting the container"
                    progress(step)
                    api.start(ident)
                    provision(api, plan, progress)
                    if proxy_ready is not None:
                        step = "copying the egress CA certificate"
                        sidecar.provision_ca(api, plan)
                        step = "waiting for the egress proxy"
                        proxy_ready()
                    step = "recording the plan"
                    paths.save_plan(plan)
                    undo.pop_all()
            except (LaunchError, BackendUnavailable, errors.ConnectionError, errors.Timeout):
                raise
            except (errors.DockerException, BackendError, OSError) as exc:
                raise _step_failed(plan, step, exc) from exc
            progress("running")
            return self._handle(plan.agent, plan, ids=(plan.uid, plan.gid))

    def _relaunch(
        self, api: Any, plan: BottlePlan, info: dict[str, Any], progress: ProgressFn
    ) -> DockerBottle:
        """``launch`` of a bottle that exists: nothing when it runs, else start + provision."""
        from backends.docker import sidecar
        from backends.docker.accounts import restore_accounts, user_ids
        from backends.docker.provision import provision

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
        step = "bringing up the egress sidecar"
        try:
            if egress.is_sealed(plan):
                # Repairs a sidecar that died or was removed; re-reads the allowlist.
                with ExitStack() as undo:
                    sidecar.bring_up(api, plan, undo, progress)()
                    undo.pop_all()
            elif _sealed_network(api, plan):
                raise LaunchError(
                    f"agent {plan.agent} is configured unsealed but its bottle was made sealed",
                    fix=f"bottle-dash rm {plan.agent}, then bottle-dash up {plan.agent}",
                    agent=plan.agent,
                )
        except (LaunchError, BackendUnavailable, errors.ConnectionError, errors.Timeout):
            raise
        except (errors.DockerException, BackendError, OSError) as exc:
            raise _step_failed(plan, step, exc) from exc
        if running:
            progress("already running")
            return self._handle(
                plan.agent, paths.saved_plan(plan.agent) or plan, ids=user_ids(info)
            )
        self._check_user(info, plan.agent)
        step = "starting the container"
        progress(step)
        try:
            restore_accounts(api, info)
            if state.get("Paused"):
                api.unpause(ident)
            else:
                api.start(ident)
            provision(api, plan, progress)
            if egress.is_sealed(plan):
                step = "copying the egress CA certificate"
                sidecar.provision_ca(api, plan)
            step = "recording the plan"
            paths.save_plan(plan)
        except (LaunchError, BackendUnavailable, errors.ConnectionError, errors.Timeout):
            raise
        except (errors.DockerException, BackendError, OSError) as exc:
            raise _step_failed(plan, step, exc) from exc
        progress("running")
        return self._handle(plan.agent, plan, ids=user_ids(info))

    @staticmethod
    def _check_user(info: dict[str, Any], agent: str) -> None:
        """Refuse to start a bottle whose agent would run as someone other than its
        workspace's owner (a bottle made before bottles ran as the owner, or a workspace
        that changed hands since): it could not write there, or would leave files owned by
        the wrong uid. The fix recreates the container; its home volume is kept."""
        from backends.docker.accounts import user_ids
        from backends.owner import agent_user

        source = next(
            (
                str(m.get("Source"))
                for m in info.get("Mounts") or []
                if m.get("Destination") == GUEST_WORKSPACE and m.get("Source")
            ),
            None,
        )
        if source is None or not Path(source).is_dir():
            return
        want = agent_user(source)
        have = user_ids(info)
        if have != (want.uid, want.gid):
            raise LaunchError(
                f"the bottle of agent {agent} runs the agent as uid {have[0]}:{have[1]}, but "
                f"its workspace {source} belongs to {want.uid}:{want.gid}, so the agent "
                "could not write there as its owner",
                fix=f"recreate the bottle: `bottle-dash rm {agent}` then `bottle-dash up "
                f"{agent}` (rm without --volumes keeps the home, and with it the conversations)",
                agent=agent,
            )

    @staticmethod
    def _quietly(fn: Any, *args: Any, **kwargs: Any) -> None:
        """Undo one step of a failed launch; an undo that fails must not hide the reason
        the launch failed (and the sweep by label catches what is left)."""
        with suppress(Exception):
            fn(*args, **kwargs)

    def _network(self, api: Any, plan: BottlePlan, undo: ExitStack) -> None:
        """The unsealed bottle's ordinary network (a sealed one's comes with its sidecar)."""
        from backends.docker import sidecar

        assert plan.network
        sidecar.ensure_network(api, plan, plan.network, undo, sealed=False)

    def _volume(self, api: Any, plan: BottlePlan, undo: ExitStack) -> str:
        """Create the home volume unless it exists; returns where to mount it."""
        from backends.docker.plan import HOME_MOUNT, LABEL_HOME_MOUNT

        assert plan.home_volume
        try:
            info = api.inspect_volume(plan.home_volume)
        except errors.NotFound:
            labels = {**plan.labels, LABEL_HOME_MOUNT: HOME_MOUNT}
            api.create_volume(plan.home_volume, labels=labels)
            undo.callback(self._quietly, api.remove_volume, plan.home_volume, force=True)
            return HOME_MOUNT
        labels = info.get("Labels") or {}
        if not ownership.is_mine(labels):  # never mount another operator's home
            raise ownership.foreign(
                plan.agent, f"volume {plan.home_volume}", labels.get(ownership.LABEL_OWNER)
            )
        # An existing home is kept on purpose: it is what `rm` without --volumes leaves.
        # One made before homes were mounted at /home holds the home at its top.
        return str((info.get("Labels") or {}).get(LABEL_HOME_MOUNT) or GUEST_HOME)

    def _create(self, api: Any, plan: BottlePlan, home_mount: str) -> str:
        from docker.types import Mount

        from backends.docker import seccomp
        from backends.docker.plan import CAP_DROP, KEEPALIVE, SECURITY_OPT, STOP_TIMEOUT, TMPFS

        mounts = [
            Mount(target=home_mount, source=plan.home_volume, type="volume"),
            Mount(target="/etc/passwd", source=plan.extra["passwd"], type="bind", read_only=True),
            Mount(target="/etc/group", source=plan.extra["group"], type="bind", read_only=True),
        ]
        if plan.workspace:
            mounts.append(Mount(target=GUEST_WORKSPACE, source=plan.workspace, type="bind"))
            for rel in plan.extra.get("read_only_in_workspace") or []:
                mounts.append(
                    Mount(
                        target=f"{GUEST_WORKSPACE}/{rel}",
                        source=f"{plan.workspace}/{rel}",
                        type="bind",
                        read_only=True,
                    )
                )
        if plan.status_dir:
            mounts.append(Mount(target=GUEST_STATUS_DIR, source=plan.status_dir, type="bind"))
        host_config = api.create_host_config(
            mounts=mounts,
            network_mode=plan.network,
            cap_drop=list(CAP_DROP),
            read_only=bool(plan.extra.get("read_only_root", True)),
            tmpfs=dict(plan.extra.get("tmpfs") or TMPFS),
            # The profile's text, as the docker CLI sends a --security-opt seccomp=FILE.
            security_opt=[*SECURITY_OPT, f"seccomp={seccomp.profile_text()}"],
            pids_limit=plan.pids,
            mem_limit=plan.memory,
            # No swap beyond the limit: a runaway agent hits its limit instead of
            # dragging the host into swap (docker's default allows twice the limit).
            memswap_limit=plan.memory,
            nano_cpus=int(round(plan.cpus * 1e9)) if plan.cpus else None,
        )
        created = api.create_container(
            plan.image,
            name=plan.bottle,
            hostname=plan.bottle,
            entrypoint=list(KEEPALIVE),
            command=[],
            user=f"{plan.uid}:{plan.gid}",
            working_dir=GUEST_WORKSPACE,
            environment=dict(plan.env),
            labels=dict(plan.labels),
            host_config=host_config,
            stop_timeout=STOP_TIMEOUT,
        )
        return str(created["Id"])

    def list_bottles(self) -> list[BottleInfo]:
        """Every docker bottle (labelled ``bottle-dash.agent`` and ``backend=docker``),
        from one listing call (``GET /containers/json``); sorted by agent."""
        params = {"all": "1", "filters": json.dumps(_label_filter())}
        try:
            rows = self.engine.get("/containers/json", params)
        except EngineNotFound as exc:
            raise BackendError(f"listing docker bottles failed: {exc}") from exc
        if not isinstance(rows, list):
            raise BackendError(f"listing docker bottles: unexpected answer {str(rows)[:80]}")
        infos: list[BottleInfo] = []
        live: set[str] = set()
        sidecars = {
            (row.get("Labels") or {}).get(LABEL_AGENT): row.get("State") == "running"
            for row in rows
            if (row.get("Labels") or {}).get(egress.ROLE_LABEL) == egress.ROLE_EGRESS
        }
        for row in rows:
            labels = row.get("Labels") or {}
            agent = labels.get(LABEL_AGENT)
            if not agent or labels.get(egress.ROLE_LABEL):
                continue
            names = row.get("Names") or []
            running = row.get("State") == "running"
            ident = str(row.get("Id", ""))
            if running:
                live.add(ident)
            infos.append(
                BottleInfo(
                    agent=agent,
                    backend=self.name,
                    bottle=names[0].lstrip("/") if names else bottle_name(agent),
                    state=RUNNING if running else STOPPED,
                    image=str(row.get("Image", "")),
                    created=_iso(row.get("Created")),
                    ident=ident,
                    host_pid=self._pids.get(ident) if running else None,
                    labels=dict(labels),
                    egress=_egress_state(labels, sidecars),
                )
            )
        with self._pids_lock:
            for ident in list(self._pids):
                if ident not in live:
                    del self._pids[ident]
        return sorted(infos, key=lambda i: (i.agent, i.bottle))

    def host_pid(self, info: BottleInfo) -> int | None:
        """The host process whose tree holds everything running in the bottle: the
        container's ``containerd-shim`` (one inspect, then cached while it runs).

        Not the container's main process: ``docker exec`` (claude in a pane) starts its
        processes as children of the shim, beside the main process, so the main process's
        tree would miss claude entirely. The shim itself adds a few MB. None when stopped,
        gone, or not on this host (a remote engine's pids mean nothing here)."""
        if info.state != RUNNING or not info.ident:
            return None
        with self._pids_lock:
            pid = self._pids.get(info.ident)
        if pid and _pid_alive(pid):
            return pid
        try:
            data = self.engine.get(f"/containers/{info.ident}/json")
        except (EngineNotFound, BackendError):
            return None  # gone (a race) or the engine went away: unknown, not an error
        state = data.get("State") or {}
        pid = state.get("Pid") or None
        if not (pid and state.get("Running")):
            return None
        pid = _shim_of(int(pid))
        with self._pids_lock:
            self._pids[info.ident] = pid
        return pid

    # ------------------------------------------------------------------ one bottle

    @staticmethod
    def _inspect(api: Any, container: str) -> dict[str, Any] | None:
        try:
            return dict(api.inspect_container(container))
        except errors.NotFound:
            return None

    def _ours(self, agent: str) -> dict[str, Any]:
        """The inspected container of ``agent`` (one read-only call), or ``BottleNotFound``."""
        try:
            info: dict[str, Any] | None = self.engine.get(
                f"/containers/{urllib.parse.quote(bottle_name(agent))}/json"
            )
        except EngineNotFound:
            info = None
        labels = ((info or {}).get("Config") or {}).get("Labels") or {}
        if info is None or labels.get(LABEL_AGENT) != agent:
            raise BottleNotFound(
                f"no bottle for agent {agent}", fix=f"bottle-dash up {agent}", agent=agent
            )
        if not ownership.is_mine(labels):
            raise ownership.foreign(
                agent, f"bottle {bottle_name(agent)}", labels.get(ownership.LABEL_OWNER)
            )
        return info

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

    def attach(self, agent: str) -> DockerBottle:
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
        way). Returns its handle, as ``attach`` would."""
        from backends.docker import sidecar
        from backends.docker.accounts import restore_accounts, user_ids

        info = self._ours(agent)
        self._check_user(info, agent)
        plan = paths.saved_plan(agent)
        with self.engine.translating() as api:
            try:
                restore_accounts(api, info)
                state = sidecar.sidecar_state(api, agent)
                if plan is not None and egress.is_sealed(plan) and state != "running":
                    # Stopped or removed: up again from the recorded plan, and listening
                    # before the bottle's next request (a sealed bottle never runs without).
                    with ExitStack() as undo:
                        sidecar.bring_up(api, plan, undo, _no_progress)()
                        undo.pop_all()
                elif state == "stopped":
                    api.start(egress.sidecar_name(agent))
                api.start(info["Id"])
            except errors.APIError as exc:
                raise BackendError(
                    f"starting the bottle of agent {agent} failed: {api_message(exc)}", agent=agent
                ) from exc
        return self._handle(agent, plan, ids=user_ids(info))

    def stop(self, agent: str) -> None:
        """Stop the bottle of ``agent`` (SIGTERM, then SIGKILL after 5 s)."""
        from backends.docker import sidecar
        from backends.docker.plan import STOP_TIMEOUT

        info = self._ours(agent)
        with self.engine.translating() as api:
            try:
                api.stop(info["Id"], timeout=STOP_TIMEOUT)
                if sidecar.sidecar_state(api, agent) == "running":
                    api.stop(egress.sidecar_name(agent), timeout=STOP_TIMEOUT)
            except errors.NotFound:
                pass  # removed meanwhile: stopped enough
            except errors.APIError as exc:
                raise BackendError(
                    f"stopping the bottle of agent {agent} failed: {api_message(exc)}", agent=agent
                ) from exc
        with self._pids_lock:
            self._pids.pop(str(info.get("Id")), None)

    def remove(self, agent: str, *, volumes: bool = False) -> None:
        """Remove the container and network of ``agent`` (found by label), and its home
        volume when ``volumes``. ``BottleNotFound`` when there was nothing to remove."""
        removed: list[str] = []
        kept: list[str] = []
        with self.engine.translating() as api:
            filters = _label_filter(agent)
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
        """The last ``tail`` lines the container's main process wrote."""
        info = self._ours(agent)
        with self.engine.translating() as api:
            data = api.logs(info["Id"], stdout=True, stderr=True, tail=tail)
        return data.decode(errors="replace") if isinstance(data, bytes) else str(data)
