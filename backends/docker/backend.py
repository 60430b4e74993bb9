"""The docker backend: each agent's bottle is a hardened container with its own network
and a named volume for ``/home/node``, all labelled, all driven through the docker SDK.

Resources of the bottle of agent ``<slug>``:

- container ``bottle-<slug>``: user node, every capability dropped, no-new-privileges,
  pids/memory/cpu limits, the workspace bind-mounted at /workspace, a keep-alive main
  process (claude itself is started with ``docker exec`` from a pane);
- network ``bottle-<slug>-net`` (one bridge per bottle: bottles do not see each other);
- volume ``bottle-<slug>-home`` at /home/node, so ``~/.claude`` (and ``claude
  --continue``) survives stop, start and removal without ``--volumes``.

Every resource carries ``base.bottle_labels``; listing is by label, in one call.
"""

from __future__ import annotations

import json
import os
import posixpath
import threading
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from backends import paths
from backends.base import (
    GUEST_HOME,
    GUEST_PROMPT,
    GUEST_SKILLS,
    GUEST_UID,
    GUEST_USER,
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
    BottlePlan,
    ImageNotFound,
    LaunchError,
    Problem,
    ProgressFn,
    ProvisionError,
    _no_progress,
    bottle_labels,
    bottle_name,
    is_slug,
    skill_dest,
)
from backends.claude import claude_args
from backends.docker.archive import file_tar, path_tar
from backends.docker.bottle import DockerBottle, put_archive, sdk_exec
from backends.docker.engine import (
    SDK_FIX,
    SDK_IMPORT_ERROR,
    APIError,
    DockerException,
    Engine,
    EngineConnectionError,
    EngineTimeout,
    NotFound,
    api_message,
    docker_host,
)

#: Limits used when the agent sets none. Generous for one agent session (claude plus
#: node, git and a test run) yet small enough that a runaway agent cannot starve the host.
DEFAULT_PIDS = 512
DEFAULT_MEMORY = 4 * 1024**3
DEFAULT_CPUS = 2.0
#: Seconds ``stop`` waits after SIGTERM; the keep-alive exits at once on TERM.
STOP_TIMEOUT = 5
#: The container's main process: it only keeps the bottle up, and exits on SIGTERM at
#: once (as PID 1 a shell ignores TERM unless it traps it, and `docker stop` would wait).
KEEPALIVE = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
IMAGE_FIX = "build it with `bottle-dash image build`, or `docker pull` / `docker load` it"


def network_name(agent: str) -> str:
    """The per-bottle network."""
    return f"{bottle_name(agent)}-net"


def home_volume_name(agent: str) -> str:
    """The volume holding ``/home/node``."""
    return f"{bottle_name(agent)}-home"


def plan_path(agent: str) -> Path:
    """Where ``launch`` records the plan it carried out (read back by ``attach``)."""
    return paths.agent_state_dir(agent) / "plan.json"


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


def _label_filter(agent: str | None = None) -> dict[str, list[str]]:
    """Engine filter for resources of this backend (of one agent when given); label
    filters AND together, so other backends' containers (the smolvm stand-in) stay out."""
    first = f"{LABEL_AGENT}={agent}" if agent else LABEL_AGENT
    return {"label": [first, f"{LABEL_BACKEND}=docker"]}


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
        if SDK_IMPORT_ERROR is not None:
            return [
                Problem("docker", f"the Docker SDK is not importable: {SDK_IMPORT_ERROR}", SDK_FIX)
            ]
        problems: list[Problem] = []
        try:
            with self.engine.translating() as api:
                api.version()
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

    # ------------------------------------------------------------------ prepare

    def prepare(self, agent: AgentSpec) -> BottlePlan:
        """Resolve the plan of ``agent`` and write its prompt file (mode 0600) to
        ``paths.agent_state_dir(agent)/prompt.md``. Talks to no engine.

        Limits the agent leaves unset: ``pids`` 512, ``memory`` 4 GiB, ``cpus`` 2 (or the
        host's CPU count when smaller). A skill directory or workspace that does not exist
        raises ``ProvisionError`` naming it.
        """
        where = f" (from {agent.source})" if agent.source else ""
        if not is_slug(agent.name):
            raise LaunchError(
                f"agent name {agent.name!r}{where} is not a slug",
                fix="use lower-case letters, digits and '-', at most 40 characters",
                agent=agent.name,
            )
        workspace: str | None = None
        if agent.workspace is not None:
            ws = Path(agent.workspace).expanduser().resolve()
            if not ws.is_dir():
                raise ProvisionError(
                    f"workspace {ws} of agent {agent.name}{where} is not a directory",
                    fix=f"create it (`mkdir -p {ws}`) or change `workspace`",
                    agent=agent.name,
                )
            workspace = str(ws)
        skills: list[tuple[str, str]] = []
        for skill in agent.skills:
            src = Path(skill).expanduser().resolve()
            if not src.is_dir():
                raise ProvisionError(
                    f"skill {skill} of agent {agent.name}{where} is not a directory",
                    fix="create it or remove it from `skills`",
                    agent=agent.name,
                )
            dest = skill_dest(src)
            if any(d == dest for _, d in skills):
                raise ProvisionError(
                    f"two skills of agent {agent.name}{where} are both named {src.name!r}",
                    fix="rename one of the directories",
                    agent=agent.name,
                )
            skills.append((str(src), dest))
        env = {str(k): str(v) for k, v in sorted(agent.env.items())}
        for key in env:
            if not key or "=" in key or "\0" in key:
                raise LaunchError(
                    f"env key {key!r} of agent {agent.name}{where} is not a variable name",
                    agent=agent.name,
                )
        prompt_host = paths.agent_state_dir(agent.name) / "prompt.md"
        paths.write_private(prompt_host, agent.prompt.encode())
        nonempty = bool(agent.prompt)
        cpus = (
            agent.cpus if agent.cpus is not None else min(DEFAULT_CPUS, float(os.cpu_count() or 1))
        )
        return BottlePlan(
            agent=agent.name,
            backend=self.name,
            bottle=bottle_name(agent.name),
            image=agent.image,
            labels=bottle_labels(agent.name, self.name),
            env=env,
            workspace=workspace,
            prompt_host=str(prompt_host),
            prompt_guest=GUEST_PROMPT,
            prompt_nonempty=nonempty,
            skills=skills,
            claude_args=claude_args(GUEST_PROMPT, nonempty, agent.claude_args),
            cpus=cpus,
            memory=agent.memory if agent.memory is not None else DEFAULT_MEMORY,
            pids=agent.pids if agent.pids is not None else DEFAULT_PIDS,
            network=network_name(agent.name),
            home_volume=home_volume_name(agent.name),
            user=GUEST_USER,
            extra={
                "cap_drop": ["ALL"],
                "security_opt": ["no-new-privileges"],
                "command": list(KEEPALIVE),
                "home": GUEST_HOME,
                "source": str(agent.source) if agent.source else None,
            },
        )

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
        with self.engine.translating() as api:
            existing = self._inspect(api, plan.bottle)
            if existing is not None:
                return self._relaunch(api, plan, existing, progress)
            step = "checking the image"
            progress(step)
            try:
                api.inspect_image(plan.image)
            except NotFound:
                raise ImageNotFound(
                    f"image {plan.image} of agent {plan.agent} is not in the Docker engine",
                    fix=IMAGE_FIX,
                    agent=plan.agent,
                ) from None
            try:
                with ExitStack() as undo:
                    step = "creating the network"
                    progress(step)
                    self._network(api, plan, undo)
                    step = "creating the home volume"
                    progress(step)
                    self._volume(api, plan, undo)
                    step = "creating the container"
                    progress(step)
                    ident = self._create(api, plan)
                    undo.callback(self._quietly, api.remove_container, ident, force=True, v=False)
                    step = "starting the container"
                    progress(step)
                    api.start(ident)
                    self._provision(api, plan, progress)
                    step = "recording the plan"
                    paths.write_private(plan_path(plan.agent), plan.to_json().encode())
                    undo.pop_all()
            except (LaunchError, BackendUnavailable, EngineConnectionError, EngineTimeout):
                raise
            except (DockerException, BackendError, OSError) as exc:
                detail = api_message(exc) if isinstance(exc, DockerException) else str(exc)
                raise LaunchError(
                    f"launch of agent {plan.agent} failed while {step}: {detail}",
                    agent=plan.agent,
                ) from exc
            progress("running")
            return DockerBottle(self.engine, plan.agent, env=plan.env, ident=ident)

    def _relaunch(
        self, api: Any, plan: BottlePlan, info: dict[str, Any], progress: ProgressFn
    ) -> DockerBottle:
        """``launch`` of a bottle that exists: nothing when it runs, else start + provision."""
        labels = (info.get("Config") or {}).get("Labels") or {}
        if labels.get(LABEL_AGENT) != plan.agent:
            raise LaunchError(
                f"a container named {plan.bottle} exists that bottle-dash did not create",
                fix=f"remove or rename it (`docker rm -f {plan.bottle}`)",
                agent=plan.agent,
            )
        state = info.get("State") or {}
        ident = info["Id"]
        if state.get("Running") and not state.get("Paused"):
            progress("already running")
            return DockerBottle(
                self.engine, plan.agent, env=_recorded_env(plan.agent, plan), ident=ident
            )
        step = "starting the container"
        progress(step)
        try:
            if state.get("Paused"):
                api.unpause(ident)
            else:
                api.start(ident)
            self._provision(api, plan, progress)
            step = "recording the plan"
            paths.write_private(plan_path(plan.agent), plan.to_json().encode())
        except (LaunchError, BackendUnavailable, EngineConnectionError, EngineTimeout):
            raise
        except (DockerException, BackendError, OSError) as exc:
            detail = api_message(exc) if isinstance(exc, DockerException) else str(exc)
            raise LaunchError(
                f"launch of agent {plan.agent} failed while {step}: {detail}", agent=plan.agent
            ) from exc
        progress("running")
        return DockerBottle(self.engine, plan.agent, env=plan.env, ident=ident)

    @staticmethod
    def _quietly(fn: Any, *args: Any, **kwargs: Any) -> None:
        """Undo one step of a failed launch; an undo that fails must not hide the reason
        the launch failed (and the sweep by label catches what is left)."""
        with suppress(Exception):
            fn(*args, **kwargs)

    def _network(self, api: Any, plan: BottlePlan, undo: ExitStack) -> None:
        assert plan.network
        try:
            info = api.inspect_network(plan.network)
        except NotFound:
            created = api.create_network(plan.network, driver="bridge", labels=plan.labels)
            undo.callback(self._quietly, api.remove_network, created["Id"])
            return
        if (info.get("Labels") or {}).get(LABEL_AGENT) != plan.agent:
            raise LaunchError(
                f"a network named {plan.network} exists that bottle-dash did not create",
                fix=f"remove it (`docker network rm {plan.network}`)",
                agent=plan.agent,
            )

    def _volume(self, api: Any, plan: BottlePlan, undo: ExitStack) -> None:
        assert plan.home_volume
        try:
            api.inspect_volume(plan.home_volume)
        except NotFound:
            api.create_volume(plan.home_volume, labels=plan.labels)
            undo.callback(self._quietly, api.remove_volume, plan.home_volume, force=True)
        # An existing home is kept on purpose: it is what `rm` without --volumes leaves.

    def _create(self, api: Any, plan: BottlePlan) -> str:
        from docker.types import Mount

        mounts = [Mount(target=GUEST_HOME, source=plan.home_volume, type="volume")]
        if plan.workspace:
            mounts.append(Mount(target=GUEST_WORKSPACE, source=plan.workspace, type="bind"))
        host_config = api.create_host_config(
            mounts=mounts,
            network_mode=plan.network,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=plan.pids,
            mem_limit=plan.memory,
            nano_cpus=int(round(plan.cpus * 1e9)) if plan.cpus else None,
        )
        created = api.create_container(
            plan.image,
            name=plan.bottle,
            hostname=plan.bottle,
            entrypoint=list(KEEPALIVE),
            command=[],
            user=plan.user,
            working_dir=GUEST_WORKSPACE,
            environment=dict(plan.env),
            labels=dict(plan.labels),
            host_config=host_config,
            stop_timeout=STOP_TIMEOUT,
        )
        return str(created["Id"])

    def _provision(self, api: Any, plan: BottlePlan, progress: ProgressFn) -> None:
        """Prompt file (always) then skills, owned by node, through archives."""
        progress("copying the prompt")
        try:
            prompt = Path(plan.prompt_host).read_bytes()
        except OSError as exc:
            raise ProvisionError(
                f"prompt file {plan.prompt_host} of agent {plan.agent} cannot be read: {exc}",
                fix=f"run `bottle-dash plan {plan.agent}` to write it again",
                agent=plan.agent,
            ) from exc
        rel = PurePosixPath(plan.prompt_guest).relative_to(GUEST_HOME)
        parents = [(str(p), 0o700) for p in reversed(rel.parents) if str(p) != "."]
        data = file_tar(str(rel), prompt, mode=0o600, uid=GUEST_UID, gid=GUEST_UID, parents=parents)
        self._put(api, plan, GUEST_HOME, data, "the prompt file")
        if not plan.skills:
            return
        progress("copying skills")
        for src, _dest in plan.skills:
            if not Path(src).is_dir():
                raise ProvisionError(
                    f"skill {src} of agent {plan.agent} does not exist (any more)",
                    fix="create it or remove it from `skills`",
                    agent=plan.agent,
                )
        dests = [dest for _, dest in plan.skills]
        # Replace each skill whole (a file removed on the host goes away in the guest too);
        # as node, because root in the bottle has no capabilities over node's files.
        code, _out, err = sdk_exec(
            api,
            plan.bottle,
            ["sh", "-c", 'rm -rf -- "$@" && mkdir -p -- "$@"', "provision", *dests],
            user=GUEST_USER,
        )
        if code:
            raise ProvisionError(
                f"cannot prepare {GUEST_SKILLS} in agent {plan.agent}: {err.strip()}",
                agent=plan.agent,
            )
        for src, dest in plan.skills:
            parent, base = posixpath.split(dest)
            data = path_tar(Path(src), base, uid=GUEST_UID, gid=GUEST_UID)
            self._put(api, plan, parent, data, f"skill {src}")

    @staticmethod
    def _put(api: Any, plan: BottlePlan, path: str, data: bytes, what: str) -> None:
        try:
            put_archive(api, plan.bottle, path, data)
        except (APIError, BackendError) as exc:
            detail = api_message(exc) if isinstance(exc, APIError) else str(exc)
            raise ProvisionError(
                f"copying {what} into agent {plan.agent} failed: {detail}", agent=plan.agent
            ) from exc

    # ------------------------------------------------------------------ listing

    def list_bottles(self) -> list[BottleInfo]:
        """Every docker bottle (labelled ``bottle-dash.agent`` and ``backend=docker``),
        from one listing call; sorted by agent."""
        with self.engine.translating() as api:
            try:
                rows = api.containers(all=True, filters=_label_filter())
            except APIError as exc:
                raise BackendError(f"listing docker bottles failed: {api_message(exc)}") from exc
        infos: list[BottleInfo] = []
        live: set[str] = set()
        for row in rows:
            labels = row.get("Labels") or {}
            agent = labels.get(LABEL_AGENT)
            if not agent:
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
                )
            )
        with self._pids_lock:
            for ident in list(self._pids):
                if ident not in live:
                    del self._pids[ident]
        return sorted(infos, key=lambda i: (i.agent, i.bottle))

    def host_pid(self, info: BottleInfo) -> int | None:
        """The host pid of the container's main process (one inspect, then cached while
        the container runs). None when stopped, gone, or not on this host (a remote
        engine's pids mean nothing here)."""
        if info.state != RUNNING or not info.ident:
            return None
        with self._pids_lock:
            pid = self._pids.get(info.ident)
        if pid and _pid_alive(pid):
            return pid
        try:
            with self.engine.translating() as api:
                data = api.inspect_container(info.ident)
        except (APIError, BackendUnavailable):
            return None  # gone (a race) or the engine went away: unknown, not an error
        state = data.get("State") or {}
        pid = state.get("Pid") or None
        if not (pid and state.get("Running")):
            return None
        with self._pids_lock:
            self._pids[info.ident] = pid
        return int(pid)

    # ------------------------------------------------------------------ one bottle

    @staticmethod
    def _inspect(api: Any, container: str) -> dict[str, Any] | None:
        try:
            return dict(api.inspect_container(container))
        except NotFound:
            return None

    def _ours(self, api: Any, agent: str) -> dict[str, Any]:
        """The inspected container of ``agent``, or ``BottleNotFound``."""
        info = self._inspect(api, bottle_name(agent))
        labels = ((info or {}).get("Config") or {}).get("Labels") or {}
        if info is None or labels.get(LABEL_AGENT) != agent:
            raise BottleNotFound(
                f"no bottle for agent {agent}", fix=f"bottle-dash up {agent}", agent=agent
            )
        return info

    def attach(self, agent: str) -> DockerBottle:
        """A handle on the container of ``agent`` (running or not: see ``.running``);
        the exec env comes from the recorded plan."""
        with self.engine.translating() as api:
            info = self._ours(api, agent)
        state = info.get("State") or {}
        return DockerBottle(
            self.engine,
            agent,
            env=_recorded_env(agent),
            ident=str(info.get("Id", "")),
            running=bool(state.get("Running")) and not state.get("Paused"),
        )

    def start(self, agent: str) -> None:
        """Start the stopped bottle of ``agent``; its home volume (prompt, skills,
        ``~/.claude``) is still there."""
        with self.engine.translating() as api:
            info = self._ours(api, agent)
            try:
                api.start(info["Id"])
            except APIError as exc:
                raise BackendError(
                    f"starting the bottle of agent {agent} failed: {api_message(exc)}", agent=agent
                ) from exc

    def stop(self, agent: str) -> None:
        """Stop the bottle of ``agent`` (SIGTERM, then SIGKILL after 5 s)."""
        with self.engine.translating() as api:
            info = self._ours(api, agent)
            try:
                api.stop(info["Id"], timeout=STOP_TIMEOUT)
            except NotFound:
                pass  # removed meanwhile: stopped enough
            except APIError as exc:
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
            except APIError as exc:
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
        except NotFound:
            return False
        except APIError as exc:
            if exc.status_code == 409 and "already in progress" in api_message(exc):
                return True
            raise
        return True

    def logs(self, agent: str, *, tail: int = 200) -> str:
        """The last ``tail`` lines the container's main process wrote."""
        with self.engine.translating() as api:
            info = self._ours(api, agent)
            data = api.logs(info["Id"], stdout=True, stderr=True, tail=tail)
        return data.decode(errors="replace") if isinstance(data, bytes) else str(data)


def _recorded_env(agent: str, fallback: BottlePlan | None = None) -> dict[str, str]:
    """The env of the plan the last launch recorded; the container's own env applies to
    every exec anyway, so a missing or unreadable record only drops the overrides."""
    try:
        data = json.loads(plan_path(agent).read_text())
        return {str(k): str(v) for k, v in (data.get("env") or {}).items()}
    except (OSError, ValueError, AttributeError):
        return dict(fallback.env) if fallback else {}
