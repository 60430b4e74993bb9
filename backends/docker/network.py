"""The per-bottle network, and what to do when the engine runs out of address pools.

Docker's default address pools hold about 30 bridge networks (172.17-31.0.0/16 and
192.168.0.0/16 cut in /20s). One network per bottle would cap an operator at about 30
bottles, so when the engine says its pools are used up, the network is created with an
explicit small subnet (/28: a gateway and one container need 2 of its 14 addresses) from
bottle-dash's own pool, ``10.213.0.0/16`` (4096 networks), or ``$BOTTLE_DASH_DOCKER_POOL``
when that range means something on the operator's LAN or VPN.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from backends.base import LaunchError
from backends.docker.engine import api_message, errors

POOL_ENV = "BOTTLE_DASH_DOCKER_POOL"
DEFAULT_POOL = "10.213.0.0/16"
SUBNET_PREFIX = 28
#: What the engine says (20.10 and later) when no default pool has room left.
POOLS_EXHAUSTED = "could not find an available, non-overlapping IPv4 address pool"
NETWORK_FIX = (
    "remove networks nobody uses (`docker network prune`), give the engine more address "
    'pools ("default-address-pools" in /etc/docker/daemon.json), or set '
    f"{POOL_ENV} to a free private range"
)
#: A racing launch may take the subnet this one picked; try the next free one. Racers all
#: pick the first free subnet, so each round one of them wins: N launches at once need up to
#: N tries (5 ran out with a test run and a 30-bottle benchmark launching side by side).
ATTEMPTS = 40


def pool() -> str:
    """The range fallback subnets come from."""
    return os.environ.get(POOL_ENV) or DEFAULT_POOL


def free_subnet(used: Iterable[str], within: str, prefix: int = SUBNET_PREFIX) -> str | None:
    """The first ``/prefix`` subnet of ``within`` that overlaps none of ``used`` (CIDRs;
    IPv6 and unparsable entries are ignored); None when the range is full."""
    import ipaddress  # only when a network is made

    taken: list[ipaddress.IPv4Network] = []
    for cidr in used:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            taken.append(net)
    for candidate in ipaddress.IPv4Network(within).subnets(new_prefix=prefix):
        if not any(candidate.overlaps(t) for t in taken):
            return str(candidate)
    return None


def used_subnets(networks: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every subnet the engine's networks hold (from one ``networks()`` listing)."""
    found: list[str] = []
    for net in networks:
        for cfg in (net.get("IPAM") or {}).get("Config") or []:
            if cfg.get("Subnet"):
                found.append(str(cfg["Subnet"]))
    return found


#: A sealed bottle's network: no route out (internal) and no address on the host's side
#: of the bridge (inhibit_ipv4), so host services bound to 0.0.0.0 are out of reach too.
SEALED_OPTIONS = {"com.docker.network.bridge.inhibit_ipv4": "true"}


def create_network(
    api: Any,
    name: str,
    labels: Mapping[str, str],
    *,
    agent: str,
    internal: bool = False,
    options: Mapping[str, str] | None = None,
) -> str:
    """Create the bridge network ``name``; returns its id. Falls back to an explicit
    subnet from ``pool()`` when the engine's own pools are used up. ``internal`` and
    ``options`` go to the engine as they are (a sealed bottle's network uses both)."""
    extra: dict[str, Any] = {"internal": internal}
    if options:
        extra["options"] = dict(options)
    try:
        created = api.create_network(
            name, driver="bridge", labels=dict(labels), check_duplicate=True, **extra
        )
        return str(created["Id"])
    except errors.APIError as exc:
        if POOLS_EXHAUSTED not in api_message(exc):
            raise
    import ipaddress

    from docker.types import IPAMConfig, IPAMPool

    within = pool()
    for _ in range(ATTEMPTS):
        subnet = free_subnet(used_subnets(api.networks()), within)
        if subnet is None:
            raise LaunchError(
                f"no address range left for the network of agent {agent}: the engine's pools "
                f"and {within} are all in use",
                fix=NETWORK_FIX,
                agent=agent,
            )
        # The gateway the engine would pick (the first address), given explicitly so that
        # `docker network inspect` shows it as it does for a network from a default pool.
        gateway = str(next(ipaddress.IPv4Network(subnet).hosts()))
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet, gateway=gateway)])
        try:
            created = api.create_network(
                name,
                driver="bridge",
                labels=dict(labels),
                check_duplicate=True,
                ipam=ipam,
                **extra,
            )
            return str(created["Id"])
        except errors.APIError as exc:
            if "overlap" not in api_message(exc):
                raise
    raise LaunchError(
        f"no free subnet found for the network of agent {agent} after {ATTEMPTS} tries",
        fix=NETWORK_FIX,
        agent=agent,
    )
