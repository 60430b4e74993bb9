"""The smolmachines backend: each agent's bottle is a libkrun microVM run by the smolvm CLI.

Lifecycle, as the operator sees it:

- ``launch``: create the machine (labels, ``--user root`` so that exec can ``chown`` and
  ``runuser``, ``--workdir /workspace``, the workspace mounted there, network on), start
  it, then provision: ``chown -R node:node /home/node`` as root, the prompt file (0600,
  owner node), the skills. Any failure deletes the machine again (an ``ExitStack``).
- ``stop``/``start``: the VM's disk, and with it ``/home/node`` (``~/.claude``, so
  ``claude --resume`` of its pinned session), survives.
- ``remove``: smolvm deletes a machine's disk with the machine, and that disk holds the
  home. Docker's rule is "the home is kept unless asked", so ``remove`` without
  ``volumes`` refuses (the fix says to ``down`` it, or to pass ``--volumes``), and
  ``remove(volumes=True)`` deletes the machine and its disk. Nothing is lost silently.

The CLI is found by ``smolvm.find_smolvm`` on every call (``BOTTLE_DASH_SMOLVM``, PATH, the
``smolmachines`` wheel), so a test or an operator can switch it without a restart. The
plan and the create argv are ``plan.py``'s; a sealed machine's sidecar is reached through
``backends.egress.relay``.
"""

from __future__ import annotations

from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends import ownership
from backends import run as runner
from backends.base import (
    GUEST_UID,
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
    Completed,
    LaunchError,
    Problem,
    ProgressFn,
    no_progress,
)
from backends.egress import plan as egress
from backends.egress.relay import (
    remove_sidecar,
    repair_sidecar,
    seal_up,
    sidecars_running,
    start_sidecar,
    stop_sidecar,
)
from backends.errors import launch_failure
from backends.paths import save_plan, saved_plan
from backends.smolmachines import smolvm as cli

if TYPE_CHECKING:
    # The rest is imported where used: listing (`ls`) needs neither the plan, bottle
    # handles, images, provisioning nor the host checks of preflight.
    from backends.bottle_plan import BottlePlan
    from backends.smolmachines import images
    from backends.smolmachines.bottle import SmolBottle

NAME = "smolmachines"
INSTALL_FIX = (
    "pip install 'bottle-dash[smolvm]' (the smolmachines wheel ships the CLI), "
    "put `smolvm` on PATH, or set BOTTLE_DASH_SMOLVM=/path/to/smolvm"
)


# --------------------------------------------------------------------------- backend


class SmolmachinesBackend(BottleBackend):
    """Bottles as smolvm machines named ``bottle-<agent>``, found by their labels."""

    name = NAME

    # ----------------------------------------------------------------- plumbing

    def smolvm(self) -> str:
        """The CLI to run; ``BackendUnavailable`` (with the fix) when there is none."""
        path = cli.find_smolvm()
        if path is None:
            raise BackendUnavailable("the smolvm CLI is not installed", fix=INSTALL_FIX)
        return path

    def _run(self, argv: list[str], *, timeout: float = 120, what: str) -> str:
        done = runner.run(argv, timeout=timeout)
        if not done.ok:
            detail = cli.clean_stderr(done.stderr).strip() or done.stdout.strip()
            raise BackendError(f"{what} failed: {detail or f'exit {done.returncode}'}")
        return done.stdout

    def version(self) -> str | None:
        """``smolvm --version`` (None when the CLI is missing or does not answer)."""
        path = cli.find_smolvm()
        if path is None:
            return None
        try:
            done = runner.run(cli.version_argv(path), timeout=30)
        except BackendError:
            return None
        if not done.ok:
            return None
        return done.stdout.strip() or None

    # ----------------------------------------------------------------- contract

    def preflight(self) -> list[Problem]:
        """The CLI and its version, and whether microVMs can boot on this host."""
        import platform

        from backends.smolmachines.preflight import COMPONENT, host_problems, kvm_state, read_text

        path = cli.find_smolvm()
        if path is None:
            return [Problem(COMPONENT, "the smolvm CLI is not installed", INSTALL_FIX)]
        problems: list[Problem] = []
        version = self.version()
        if version is None:
            problems.append(
                Problem(
                    COMPONENT,
                    f"{path} does not answer `--version`",
                    "reinstall it: pip install --force-reinstall 'bottle-dash[smolvm]'",
                )
            )
        found = f"{version or 'smolvm'} at {path}"
        for problem in host_problems(
            platform.system(), platform.machine(), read_text("/proc/cpuinfo"), kvm_state()
        ):
            problems.append(Problem(problem.component, f"{problem.what} [{found}]", problem.fix))
        return problems

    def prepare(self, agent: AgentSpec) -> BottlePlan:
        """Resolve the plan (checked like every backend's: ``backends.plan.shared_plan``)
        with its image source, and write the prompt file (0600) under the agent's state
        dir. Touches neither smolvm nor Docker (``backends.smolmachines.plan``)."""
        from backends.smolmachines.plan import prepare_plan

        return prepare_plan(agent, self.name)

    def create_argv(self, plan: BottlePlan, source: images.CreateSource) -> list[str]:
        """The ``machine create`` argv of ``plan`` from a materialized image source."""
        from backends.smolmachines.plan import create_argv

        return create_argv(self.smolvm(), plan, source)

    def launch(self, plan: BottlePlan, progress: ProgressFn = no_progress) -> SmolBottle:
        """Create, start and provision; on any failure delete the machine and raise
        ``LaunchError`` (``ProvisionError`` when provisioning failed)."""
        from backends.smolmachines import images
        from backends.smolmachines.bottle import SmolBottle
        from backends.smolmachines.provision import copy_ca, provision

        smolvm = self.smolvm()
        if any(r.name == plan.bottle for r in self._records()):
            raise LaunchError(
                f"bottle {plan.bottle} already exists",
                fix=f"attach to it, or `bottle-dash rm --volumes {plan.agent}` first",
                agent=plan.agent,
            )
        with launch_failure(plan.agent, plan.bottle), ExitStack() as undo:
            ready = seal_up(plan, undo, progress) if egress.is_sealed(plan) else None
            progress("resolving the image")
            source = images.materialize(images.ImageSource(**plan.extra["source"]))
            progress(f"creating machine {plan.bottle}")
            self._run(self.create_argv(plan, source), timeout=900, what="machine create")
            undo.callback(self._delete_quietly, smolvm, plan.bottle)
            progress(f"starting machine {plan.bottle}")
            self._run(cli.start_argv(smolvm, plan.bottle), timeout=600, what="machine start")
            bottle = SmolBottle(smolvm, plan.bottle, plan.agent, plan.env, agent_uid=plan.uid)
            bottle.plan = plan
            provision(bottle, plan, progress)
            if plan.extra.get("repo"):
                from backends.smolmachines.copy import fill_copy

                fill_copy(bottle, plan, progress)
            if ready is not None:
                progress("provisioning: the egress CA certificate")
                copy_ca(bottle, plan)
                ready()
            save_plan(plan)
            undo.pop_all()
        progress("ready")
        return bottle

    def _delete_quietly(self, smolvm: str, name: str) -> None:
        # Rollback must not mask the error that caused it.
        with suppress(BackendError):
            runner.run(cli.delete_argv(smolvm, name), timeout=300)

    def _records(self) -> list[cli.MachineRecord]:
        out = self._run(cli.ls_argv(self.smolvm()), timeout=60, what="machine ls")
        try:
            return cli.parse_ls(out)
        except ValueError as exc:
            raise BackendError(f"machine ls --json printed something else: {exc}") from exc

    def _mine(self) -> list[cli.MachineRecord]:
        return [
            r
            for r in self._records()
            if r.labels.get(LABEL_BACKEND) == NAME
            and r.labels.get(LABEL_AGENT)
            and ownership.is_mine(r.labels)
        ]

    def _record(self, agent: str) -> cli.MachineRecord:
        for r in self._mine():
            if r.labels.get(LABEL_AGENT) == agent:
                return r
        for r in self._records():
            if r.labels.get(LABEL_BACKEND) == NAME and r.labels.get(LABEL_AGENT) == agent:
                raise ownership.foreign(
                    agent, f"machine {r.name}", r.labels.get(ownership.LABEL_OWNER)
                )
        raise BottleNotFound(
            f"agent {agent} has no smolmachines bottle",
            fix=f"bottle-dash up {agent}",
            agent=agent,
        )

    def list_bottles(self) -> list[BottleInfo]:
        """Every machine labelled by bottle-dash for this backend, from one ``machine ls``."""
        out = []
        mine = self._mine()
        sealed = [
            r.labels[LABEL_AGENT] for r in mine if r.labels.get(egress.SEALED_LABEL) == "true"
        ]
        running = sidecars_running(sealed)  # one listing for all, not an inspect each
        for r in mine:
            created = datetime.fromtimestamp(r.created_at, UTC).isoformat() if r.created_at else ""
            out.append(
                BottleInfo(
                    agent=r.labels[LABEL_AGENT],
                    backend=NAME,
                    bottle=r.name,
                    state=RUNNING if r.live else STOPPED,
                    image=r.image,
                    created=created,
                    ident=r.name,
                    host_pid=r.pid if r.live else None,
                    labels=dict(r.labels),
                    egress=self._egress_state(r, running),
                )
            )
        return out

    def probe_facts(self, agent: str) -> dict[str, Any]:
        """The machine as ``machine ls`` reports it (settings the VMM enforces)."""
        from backends.egress.relay import sidecar_facts

        record = self._record(agent)
        return {
            "machine": {**record._asdict(), "labels": dict(record.labels)},
            "sidecar": sidecar_facts(agent),
        }

    @staticmethod
    def _egress_state(record: cli.MachineRecord, running: set[str]) -> str:
        """Sealed with its sidecar running (``running``: the agents whose sidecar runs),
        ``sidecar down`` (fail closed), or unsealed."""
        if record.labels.get(egress.SEALED_LABEL) != "true":
            return egress.EGRESS_UNSEALED
        return (
            egress.EGRESS_SEALED
            if record.labels[LABEL_AGENT] in running
            else egress.EGRESS_SIDECAR_DOWN
        )

    def _handle(self, machine: str, agent: str) -> SmolBottle:
        """A handle on ``machine`` with the plan (and so the guest env) of the agent's
        last launch."""
        from backends.smolmachines.bottle import SmolBottle

        plan = saved_plan(agent)
        bottle = SmolBottle(
            self.smolvm(),
            machine,
            agent,
            plan.env if plan else {},
            agent_uid=plan.uid if plan else GUEST_UID,
        )
        bottle.plan = plan
        return bottle

    def bottle(self, agent: str) -> SmolBottle:
        """A handle on ``agent``'s machine, with the plan of its last launch."""
        return self._handle(self._record(agent).name, agent)

    def bottle_from(self, info: BottleInfo) -> SmolBottle:
        """A handle on the machine ``list_bottles`` named in ``info``: no second
        ``machine ls`` (a whole subprocess) for what the listing just said."""
        return self._handle(info.bottle, info.agent)

    def start(self, agent: str) -> SmolBottle:
        """Start the stopped machine again (a running one is left as it is); its disk (the
        home) is as it was. A sealed machine's sidecar comes back first: started, or made
        again when it died or was removed (``up`` of a bottle whose sidecar is down repairs
        it, as on docker). The agent's account follows its workspace's owner (a machine
        made before the agent ran as the owner, or a workspace that changed hands, is put
        right as root in the VM). Returns its handle from the same ``machine ls`` (one
        listing for start then attach)."""
        record = self._record(agent)
        if record.labels.get(egress.SEALED_LABEL) == "true":
            sealed = saved_plan(agent)
            if sealed is not None and egress.is_sealed(sealed):
                repair_sidecar(sealed, no_progress)  # a machine never runs without egress
            else:
                start_sidecar(agent)
        if not record.live:
            self._run(cli.start_argv(self.smolvm(), record.name), timeout=600, what="start")
        plan = saved_plan(agent)
        if plan is not None and plan.workspace and Path(plan.workspace).is_dir():
            from backends.agent_user import agent_user
            from backends.smolmachines.bottle import SmolBottle
            from backends.smolmachines.provision import align_account

            user = agent_user(plan.workspace)
            bottle = SmolBottle(self.smolvm(), record.name, agent, plan.env)
            if align_account(bottle, user.uid, user.gid):
                plan.uid, plan.gid, plan.uid_reason = user.uid, user.gid, user.reason
                save_plan(plan)
        return self._handle(record.name, agent)

    def read_copy(self, agent: str, script: str, *, timeout: float = 120) -> Completed:
        """``sh -c script`` over the agent's copy, by exec in its running machine (the
        copy lives on the machine's disk: a stopped machine must be started first)."""
        record = self._record(agent)
        if not record.live:
            raise BackendError(
                f"the machine of agent {agent} is stopped: its copy is on its disk",
                fix=f"bottle-dash up {agent}, then try again",
                agent=agent,
            )
        return self._handle(record.name, agent).exec(script, timeout=timeout)

    def stop(self, agent: str) -> None:
        """Stop the machine (the workload gets SIGTERM first); the disk is kept."""
        record = self._record(agent)
        if record.live:
            self._run(cli.stop_argv(self.smolvm(), record.name), timeout=120, what="stop")
        if record.labels.get(egress.SEALED_LABEL) == "true":
            stop_sidecar(agent)

    def remove(self, agent: str, *, volumes: bool = False) -> None:
        """Delete the machine with its disk when ``volumes``; refuse otherwise.

        smolvm keeps no disk apart from its machine, and the disk holds ``/home/node``:
        deleting without ``volumes`` would lose the home that docker keeps in a volume.
        """
        record = self._record(agent)
        if not volumes:
            raise BackendError(
                f"removing {record.name} would delete its disk, which holds /home/node "
                "(claude's conversations)",
                fix=f"`bottle-dash down {agent}` only stops it; "
                f"`bottle-dash rm --volumes {agent}` deletes it with its home",
                agent=agent,
            )
        self._run(cli.delete_argv(self.smolvm(), record.name), timeout=300, what="delete")
        if record.labels.get(egress.SEALED_LABEL) == "true":
            remove_sidecar(agent)

    def logs(self, agent: str, *, tail: int = 200) -> str:
        """The machine's workload output (``machine logs``), not the output of execs."""
        record = self._record(agent)
        done = runner.run(cli.logs_argv(self.smolvm(), record.name, tail), timeout=60)
        return done.stdout + cli.clean_stderr(done.stderr)

    def pack_image(self, image: str, progress: ProgressFn = no_progress) -> Path:
        """Pack image ``image`` into a cached ``.smolmachine`` (``smolvm pack create``), so
        later launches of it start ``--from`` the pack without a pull. Returns the pack."""
        from backends.smolmachines import images

        out = images.pack_output(image)
        pack = out.with_suffix(".smolmachine")
        if pack.is_file():
            return pack
        out.parent.mkdir(parents=True, exist_ok=True)
        progress(f"packing {image}")
        self._run(cli.pack_create_argv(self.smolvm(), image, str(out)), timeout=1800, what="pack")
        if not pack.is_file():
            raise BackendError(f"smolvm pack create wrote no {pack}")
        return pack
