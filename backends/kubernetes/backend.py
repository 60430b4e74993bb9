"""The kubernetes backend: each agent's bottle is one Pod on a cluster (a plain Pod, which
every cluster has; agent-sandbox's ``Sandbox`` is not used), found by its labels.

Lifecycle, as the operator sees it:

- ``launch``: the claims (home, workspace), the env Secret, for a sealed bottle the egress
  Secret and the addon ConfigMap, then the Pod; wait until every container runs (and the
  sidecar's proxy listens), then provision through the exec API: the workspace copied in
  at the first launch, the prompt, the CA certificate, ``~/.claude.json``, the skills.
  Any failure deletes what this launch made.
- ``stop``: a pod cannot be stopped, so it is deleted; the claims and Secrets stay, and the
  listing shows the agent ``stopped`` (its home claim is there). ``start`` makes the pod
  again from the plan recorded at launch; the home and workspace are as they were.
- ``remove``: the pod, Secrets and ConfigMap; the claims too with ``volumes`` (the home
  claim is kept otherwise, as docker keeps its home volume).

Listing is two API calls per namespace (pods and claims, by label), with a short timeout:
a cluster that is down or slow makes a ``BackendError`` (its agents show ``unknown``).
"""

from __future__ import annotations

from contextlib import ExitStack, suppress
from typing import TYPE_CHECKING, Any

from backends import ownership
from backends.base import (
    GUEST_UID,
    LABEL_AGENT,
    LABEL_BACKEND,
    AgentSpec,
    BackendError,
    BottleBackend,
    BottleInfo,
    BottleNotFound,
    LaunchError,
    Problem,
    ProgressFn,
    no_progress,
)
from backends.errors import launch_failure
from backends.kubernetes import names
from backends.kubernetes.settings import NAME, KubeSettings, current
from backends.paths import save_plan, saved_plan

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan
    from backends.kubernetes.bottle import KubeBottle

COMPONENT = NAME


def settings_of(plan: BottlePlan | None) -> KubeSettings:
    """The settings a plan recorded (its bottle's cluster), else the config's."""
    recorded = (plan.extra.get("kubernetes") if plan is not None else None) or {}
    return KubeSettings.from_dict(recorded["settings"]) if "settings" in recorded else current()


class KubernetesBackend(BottleBackend):
    """Bottles as Pods named ``bottle-<agent>`` in the configured namespace."""

    name = NAME

    # ----------------------------------------------------------------- plumbing

    def _core(self, settings: KubeSettings | None = None) -> tuple[Any, str, KubeSettings]:
        from backends.kubernetes import client as kc

        settings = settings or current()
        return kc.core(settings), kc.namespace(settings), settings

    def _selector(self, agent: str | None = None) -> str:
        parts = [
            f"{LABEL_BACKEND}={NAME}",
            f"{ownership.LABEL_OWNER}={names.label_value(ownership.current())}",
        ]
        parts.append(f"{LABEL_AGENT}={agent}" if agent else LABEL_AGENT)
        parts.append(f"!{names.REMOVED_LABEL}")
        return ",".join(parts)

    # ----------------------------------------------------------------- contract

    def preflight(self) -> list[Problem]:
        """The client module, the kubeconfig, kubectl, and whether the API server answers
        and the namespace exists."""
        from backends.kubernetes import client as kc

        settings = current()
        try:
            kc.kube_module()
        except BackendError as exc:
            return [Problem(COMPONENT, exc.message, exc.fix or kc.INSTALL_FIX)]
        problems: list[Problem] = []
        if kc.find_kubectl() is None:
            problems.append(
                Problem(COMPONENT, "kubectl is not installed (panes use it)", kc.KUBECTL_FIX)
            )
        try:
            core, ns, _ = self._core(settings)
            kc.kube_module().client.VersionApi(kc.api_client(settings)).get_code(
                _request_timeout=kc.LIST_TIMEOUT
            )
            core.read_namespace(ns, _request_timeout=kc.LIST_TIMEOUT)
        except BackendError as exc:
            problems.append(Problem(COMPONENT, exc.message, exc.fix or ""))
        except Exception as exc:
            what = kc.api_error(exc, "asking the API server")
            fix = what.fix or ""
            if kc.is_not_found(exc):
                fix = f"kubectl create namespace {kc.namespace(settings)}, or set namespace in "
                fix += "[kubernetes]"
            problems.append(
                Problem(COMPONENT, f"{what.message} ({settings.kubeconfig_path()})", fix)
            )
        return problems

    def version(self) -> str | None:
        """The API server's version (None when it does not answer)."""
        from backends.kubernetes import client as kc

        try:
            info = (
                kc.kube_module()
                .client.VersionApi(kc.api_client(current()))
                .get_code(_request_timeout=kc.LIST_TIMEOUT)
            )
        except Exception:
            return None
        return str(info.git_version)

    def prepare(self, agent: AgentSpec) -> BottlePlan:
        """The plan (checked like every backend's), with the cluster's settings recorded."""
        from backends.kubernetes.plan import prepare_plan

        return prepare_plan(agent, self.name, current())

    def launch(self, plan: BottlePlan, progress: ProgressFn = no_progress) -> KubeBottle:
        """Claims, Secrets, the addon, the Pod; wait; provision. On any failure delete what
        this launch made and raise ``LaunchError``."""
        from backends.kubernetes import objects
        from backends.kubernetes.launch import launch

        settings = settings_of(plan)
        core, ns, _ = self._core(settings)
        if objects.read(core, ns, "Pod", plan.bottle, plan.agent) is not None:
            raise LaunchError(
                f"pod {plan.bottle} already exists in namespace {ns}",
                fix=f"attach to it, or `bottle-dash rm --volumes {plan.agent}` first",
                agent=plan.agent,
            )
        with launch_failure(plan.agent, plan.bottle), ExitStack() as undo:
            bottle = launch(core, ns, settings, plan, undo, progress, fresh=True)
            save_plan(plan)
            undo.pop_all()
        progress("ready")
        return bottle

    def list_bottles(self) -> list[BottleInfo]:
        """Every pod and home claim of this owner in the namespace: two API calls."""
        settings = current()
        if not settings.configured():
            return []  # no cluster named: nothing of ours can be listed
        from backends.kubernetes import client as kc  # here: `ls` without a cluster needs none

        core, ns, _ = self._core(settings)
        selector = self._selector()
        try:
            pods = core.list_namespaced_pod(
                ns, label_selector=selector, _request_timeout=kc.LIST_TIMEOUT
            ).items
            claims = core.list_namespaced_persistent_volume_claim(
                ns, label_selector=selector, _request_timeout=kc.LIST_TIMEOUT
            ).items
        except Exception as exc:
            raise kc.api_error(exc, f"listing pods in namespace {ns}") from None
        from backends.kubernetes.listing import infos

        return infos(pods, claims)

    def _plan_or_none(self, agent: str) -> BottlePlan | None:
        return saved_plan(agent)

    def _find(self, agent: str, *, kept: bool = False) -> tuple[Any, str, KubeSettings, Any]:
        """The cluster of ``agent``'s bottle and its pod (None when stopped);
        ``BottleNotFound`` when it has neither pod nor home claim."""
        from backends.kubernetes import objects

        plan = self._plan_or_none(agent)
        core, ns, settings = self._core(settings_of(plan))
        found = objects.read(core, ns, "Pod", names.pod_name(agent), agent)
        holder = found or objects.read(
            core, ns, "PersistentVolumeClaim", names.home_claim_name(agent), agent
        )
        removed = holder is not None and (holder.metadata.labels or {}).get(names.REMOVED_LABEL)
        if found is None and removed and not kept:
            holder = None  # its bottle was removed; only `rm --volumes` sees the claims
        if holder is None:
            raise BottleNotFound(
                f"agent {agent} has no kubernetes bottle in namespace {ns}",
                fix=f"bottle-dash up {agent}",
                agent=agent,
            )
        labels = names.exact_labels(holder.metadata)
        if labels.get(LABEL_BACKEND) != NAME or not ownership.is_mine(labels):
            raise ownership.foreign(
                agent, f"pod {names.pod_name(agent)}", labels.get(ownership.LABEL_OWNER)
            )
        return core, ns, settings, found

    def _handle(self, agent: str, settings: KubeSettings, ns: str) -> KubeBottle:
        from backends.kubernetes import client as kc
        from backends.kubernetes.bottle import KubeBottle

        plan = saved_plan(agent)
        bottle = KubeBottle(
            kc.kubectl_base(settings, ns),
            names.pod_name(agent),
            agent,
            plan.uid if plan else GUEST_UID,
        )
        bottle.plan = plan
        return bottle

    def bottle(self, agent: str) -> KubeBottle:
        """A handle on ``agent``'s running pod, with the plan of its last launch."""
        _, ns, settings, found = self._find(agent)
        if found is None:
            raise BottleNotFound(
                f"the bottle of agent {agent} is stopped (its pod is gone, its home is kept)",
                fix=f"bottle-dash up {agent}",
                agent=agent,
            )
        return self._handle(agent, settings, ns)

    def bottle_from(self, info: BottleInfo) -> KubeBottle:
        """A handle from the listing's row: no API call."""
        from backends.kubernetes import client as kc

        plan = saved_plan(info.agent)
        settings = settings_of(plan)
        return self._handle(info.agent, settings, kc.namespace(settings))

    def start(self, agent: str) -> KubeBottle:
        """Make the pod again from the recorded plan (a running one is left as it is)."""
        from backends.kubernetes.launch import launch

        core, ns, settings, found = self._find(agent)
        if found is not None:
            return self._handle(agent, settings, ns)
        plan = saved_plan(agent)
        if plan is None:
            raise BackendError(
                f"agent {agent} has a home claim but no recorded plan to start its pod from",
                fix=f"bottle-dash rm --volumes {agent}, then bottle-dash up {agent}",
                agent=agent,
            )
        with ExitStack() as undo:
            bottle = launch(core, ns, settings, plan, undo, no_progress, fresh=False)
            undo.pop_all()
        return bottle

    def stop(self, agent: str) -> None:
        """Delete the pod (its claims and Secrets stay) and wait until it is gone."""
        from backends.kubernetes import objects

        core, ns, _, found = self._find(agent)
        if found is not None:
            objects.delete(core, ns, "Pod", names.pod_name(agent), agent)
            objects.wait_gone(core, ns, "Pod", names.pod_name(agent), agent)

    def remove(self, agent: str, *, volumes: bool = False) -> None:
        """Delete the pod, Secrets and ConfigMap; the claims too when ``volumes``, else
        they are kept (labelled removed: the listing no longer shows the bottle, the next
        ``up`` makes a new pod on them)."""
        from backends.kubernetes import objects

        core, ns, _, found = self._find(agent, kept=volumes)
        if found is not None:
            objects.delete(core, ns, "Pod", names.pod_name(agent), agent)
            objects.wait_gone(core, ns, "Pod", names.pod_name(agent), agent)
        for kind, name in (
            ("Secret", names.env_secret_name(agent)),
            ("Secret", names.egress_secret_name(agent)),
            ("ConfigMap", names.addon_map_name(agent)),
        ):
            objects.delete(core, ns, kind, name, agent)
        claims = (names.workspace_claim_name(agent), names.home_claim_name(agent))
        for name in claims:
            if volumes:
                objects.delete(core, ns, "PersistentVolumeClaim", name, agent)
                objects.wait_gone(core, ns, "PersistentVolumeClaim", name, agent)
            else:
                objects.label_claim(core, ns, name, {names.REMOVED_LABEL: "true"}, agent)

    def policy_changed(self, plan: BottlePlan) -> bool:
        """Carry the agent's new egress policy to its pod: the egress Secret is rewritten
        (the next start copies it), and the running sidecar's copy is replaced through the
        exec API (the addon reads it again when it changes). False when no pod runs."""
        from backends.kubernetes.launch import push_policy

        core, ns, settings, found = self._find(plan.agent)
        return push_policy(core, ns, settings, plan, running=found is not None)

    def fetch_egress_log(self, agent: str) -> None:
        """Copy the sidecar's egress log (and its older file) out of the running pod into
        the agent's host folder (``paths.egress_log``), through the exec API. A stopped
        bottle's last fetched copy stays."""
        from backends.kubernetes.launch import fetch_egress_log

        _, ns, settings, found = self._find(agent)
        if found is not None:
            fetch_egress_log(settings, ns, agent)

    def logs(self, agent: str, *, tail: int = 200) -> str:
        """The agent container's output, then the sidecar's (its decisions in brief)."""
        from backends.kubernetes import client as kc

        core, ns, _, found = self._find(agent)
        if found is None:
            return ""
        out = []
        for container in [c.name for c in found.spec.containers]:
            with suppress(Exception):
                text = core.read_namespaced_pod_log(
                    names.pod_name(agent),
                    ns,
                    container=container,
                    tail_lines=tail,
                    _request_timeout=kc.CALL_TIMEOUT,
                )
                out.append(f"--- {container}\n{text}")
        return "\n".join(out)

    def probe_facts(self, agent: str) -> dict[str, Any]:
        """The pod as the API server has it (security contexts, volumes, containers)."""
        core, _, _, found = self._find(agent)
        if found is None:
            return {}
        return {"pod": core.api_client.sanitize_for_serialization(found)}
