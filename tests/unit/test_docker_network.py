"""The fallback subnet when the engine's default address pools are used up."""

from __future__ import annotations

from typing import Any

import pytest
from docker.errors import APIError

from backends.base import LaunchError
from backends.egress.networks import (
    POOLS_EXHAUSTED,
    create_network,
    free_subnet,
    used_subnets,
)


def test_free_subnet_skips_overlaps_and_ignores_ipv6() -> None:
    used = ["10.213.0.0/28", "10.213.0.32/27", "fd00::/64", "junk", "172.17.0.0/16"]
    assert free_subnet(used, "10.213.0.0/16") == "10.213.0.16/28"
    assert free_subnet(["10.213.0.0/24"], "10.213.0.0/24") is None
    assert free_subnet([], "10.213.0.0/16") == "10.213.0.0/28"


def test_used_subnets_reads_every_ipam_config() -> None:
    nets = [
        {"IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]}},
        {"IPAM": {"Config": None}},
        {"IPAM": None},
        {"IPAM": {"Config": [{"Subnet": "10.213.0.0/28"}, {"Subnet": "fd00::/64"}]}},
    ]
    assert used_subnets(nets) == ["172.17.0.0/16", "10.213.0.0/28", "fd00::/64"]


class PoolsFull:
    """An engine whose default pools are exhausted (what 30 bridge networks do); it
    records the create calls and answers the listing with the subnets in use."""

    def __init__(self, taken: list[str], overlap_first: int = 0) -> None:
        self.taken = taken
        self.overlap_first = overlap_first
        self.calls: list[dict[str, Any]] = []

    def networks(self) -> list[dict[str, Any]]:
        return [{"IPAM": {"Config": [{"Subnet": s}]}} for s in self.taken]

    def create_network(self, name: str, **kwargs: Any) -> dict[str, str]:
        self.calls.append(kwargs)
        ipam = kwargs.get("ipam")
        if ipam is None:
            raise APIError("500", explanation=POOLS_EXHAUSTED + " to assign to the network")
        subnet = ipam["Config"][0]["Subnet"]
        if self.overlap_first:
            self.overlap_first -= 1
            self.taken.append(subnet)  # a racing launch took it meanwhile
            raise APIError("403", explanation="Pool overlaps with other one on this address space")
        return {"Id": f"id-{subnet}"}


def test_create_network_falls_back_to_a_free_subnet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOTTLE_DASH_DOCKER_POOL", raising=False)
    api = PoolsFull(["10.213.0.0/28"], overlap_first=1)
    ident = create_network(api, "bottle-a-net", {"k": "v"}, agent="a")
    assert ident == "id-10.213.0.32/28"
    assert [c.get("ipam") is None for c in api.calls] == [True, False, False]
    # The gateway is named, as the engine names it for its own pools (inspect shows it).
    [pool] = api.calls[-1]["ipam"]["Config"]
    assert (pool["Subnet"], pool["Gateway"]) == ("10.213.0.32/28", "10.213.0.33")
    assert all(c["labels"] == {"k": "v"} and c["check_duplicate"] for c in api.calls)


def test_create_network_names_the_fix_when_every_range_is_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOTTLE_DASH_DOCKER_POOL", "10.99.0.0/28")
    with pytest.raises(LaunchError, match="10.99.0.0/28") as err:
        create_network(PoolsFull(["10.99.0.0/24"]), "bottle-a-net", {}, agent="a")
    assert err.value.fix and "docker network prune" in err.value.fix


class Containers:
    """An engine that knows containers by name (their labels only)."""

    def __init__(self, **labels: dict[str, str]) -> None:
        self.labels = labels

    def inspect_container(self, name: str) -> dict[str, Any]:
        from docker.errors import NotFound

        if name not in self.labels:
            raise NotFound(name)
        return {"Config": {"Labels": self.labels[name]}}


def test_a_container_in_the_sidecars_place_that_is_not_it_stops_up() -> None:
    from backends.egress.sidecar import check_sidecar_owner

    own = {"bottle-dash.agent": "web", "bottle-dash.role": "egress"}
    check_sidecar_owner(Containers(), "web")  # none yet
    check_sidecar_owner(Containers(**{"bottle-web-egress": own}), "web")
    other = Containers(**{"bottle-web-egress": {"bottle-dash.agent": "web-egress"}})
    with pytest.raises(LaunchError) as info:
        check_sidecar_owner(other, "web")
    assert "bottle-web-egress" in info.value.message and "'web-egress'" in info.value.message
    assert info.value.fix and "rename agent 'web-egress'" in info.value.fix
    with pytest.raises(LaunchError, match="not made by bottle-dash") as info:
        check_sidecar_owner(Containers(**{"bottle-web-egress": {}}), "web")
    assert info.value.fix == "remove or rename that container (`docker rm -f bottle-web-egress`)"
