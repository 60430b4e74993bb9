"""The kubernetes bottle's plan: the checks every backend shares, the cluster's settings,
and the egress part with the sidecar in the pod (reached on loopback)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.base import GUEST_UID, AgentSpec
from backends.egress import plan as egress
from backends.kubernetes.settings import KubeSettings
from backends.plan import check_name, shared_plan

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

#: Where the agent reaches its sidecar: the same pod, so the same loopback.
PROXY_HOST = "127.0.0.1"
#: The sidecar listens on the pod's loopback only (``policy.internal``): nothing outside
#: the pod can use the proxy.
INTERNAL = ("127.0.0.0/8",)
UID_REASON = (
    "the pod runs as the image's node (uid 1000): the workspace is a copy in a claim, "
    "not the operator's folder"
)


def prepare_plan(agent: AgentSpec, backend: str, settings: KubeSettings) -> BottlePlan:
    """Resolve the plan and write the prompt file (0600). Talks to no cluster."""
    from backends.kubernetes.client import namespace

    check_name(agent)
    plan = shared_plan(
        agent,
        backend,
        cpus=agent.cpus,
        memory=agent.memory,
        pids=agent.pids,
        extra={
            "kubernetes": {"settings": settings.to_dict(), "namespace": namespace(settings)},
            # a pod has no pids limit of its own (the node's kubelet may set one)
            "pids_limit_applied": False,
        },
    )
    # Nothing of the host is mounted: the agent is the image's node, and a sealed bottle's
    # status words go to its sidecar.
    plan.uid = plan.gid = GUEST_UID
    plan.uid_reason = UID_REASON
    plan.status_dir = None
    egress.seal_plan(plan, agent)
    if egress.is_sealed(plan):
        egress.point_proxy(plan, PROXY_HOST)
        plan.extra["egress"]["networks"] = {}
        plan.extra["egress"]["internal"] = list(INTERNAL)
    return plan
