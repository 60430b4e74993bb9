"""Ownership on a real engine: resources named like this operator's agent but labelled
for another owner (networks, the egress sidecar) are never used by ``up`` nor removed by
``rm``. Everything here is made by the test and labelled with the run's agent."""

from __future__ import annotations

import pytest

from backends import ownership, run
from backends.base import LABEL_AGENT, LABEL_BACKEND, AgentSpec, BottleNotFound, LaunchError
from backends.docker.backend import DockerBackend
from backends.egress import plan as egress
from backends.egress.networks import SEALED_OPTIONS, create_network
from backends.egress.spec import EgressSpec
from tests.support import agent_name

pytestmark = pytest.mark.docker


def test_another_owners_networks_and_sidecar_are_never_used_or_removed(
    test_image: str, egress_image: str
) -> None:
    """Networks (the bottle's and the sidecar's outer one) and a sidecar named like this
    agent's but labelled for another owner: `up` refuses to use them and leaves them as
    they were; `rm` finds nothing of this operator's to remove."""
    agent = agent_name("foreign")
    backend = DockerBackend()
    spec = AgentSpec(name=agent, image=test_image, egress=EgressSpec())
    theirs = {
        LABEL_AGENT: agent,
        LABEL_BACKEND: "docker",
        ownership.LABEL_OWNER: "uid4242:someone-else",
    }
    label_args = [a for k, v in theirs.items() for a in ("--label", f"{k}={v}")]
    nets = [f"bottle-{agent}-net", egress.outer_network_name(agent)]
    sidecar = egress.sidecar_name(agent)

    def ids(kind: str, names: list[str]) -> list[str]:
        argv = ["docker", kind, "inspect", "--format", "{{.Id}}", *names]
        return run.run(argv, check=True).stdout.split()

    try:
        # Made like the backend makes them (its fallback subnets when the engine's pools
        # are used up), only with their owner.
        with backend.engine.translating() as api:
            create_network(api, nets[0], theirs, agent=agent, internal=True, options=SEALED_OPTIONS)
            create_network(api, nets[1], theirs, agent=agent)
        before = ids("network", nets)
        with pytest.raises(LaunchError, match="belongs to someone else"):
            backend.launch(backend.prepare(spec))
        with pytest.raises(BottleNotFound):
            backend.remove(agent, volumes=True)
        assert ids("network", nets) == before
        assert not [i for i in backend.list_bottles() if i.agent == agent]
        assert run.run(["docker", "ps", "-aq", "--filter", f"name=^bottle-{agent}$"]).stdout == ""
        # Only the bottle's network is theirs: up stops there too, and its rollback
        # removes the outer network it made, never theirs.
        run.run(["docker", "network", "rm", nets[1]], check=True)
        with pytest.raises(LaunchError, match="belongs to someone else"):
            backend.launch(backend.prepare(spec))
        assert ids("network", nets[:1]) == before[:1]
        assert (
            run.run(["docker", "network", "ls", "-q", "--filter", f"name=^{nets[1]}$"]).stdout == ""
        )
        # Their sidecar (never started) under this agent's sidecar name: not taken for ours.
        run.run(["docker", "network", "rm", nets[0]], check=True)
        run.run(
            ["docker", "create", "--name", sidecar, *label_args,
             "--label", f"{egress.ROLE_LABEL}={egress.ROLE_EGRESS}", test_image, "true"],
            check=True,
        )  # fmt: skip
        created = ids("container", [sidecar])
        with pytest.raises(LaunchError, match="belongs to someone else"):
            backend.launch(backend.prepare(spec))
        with pytest.raises(BottleNotFound):
            backend.remove(agent, volumes=True)
        assert ids("container", [sidecar]) == created
        for net in nets:  # what up made around their sidecar was rolled back
            assert (
                run.run(["docker", "network", "ls", "-q", "--filter", f"name=^{net}$"]).stdout == ""
            )
    finally:
        run.run(["docker", "rm", "-f", sidecar])
        for net in nets:
            run.run(["docker", "network", "rm", net])
