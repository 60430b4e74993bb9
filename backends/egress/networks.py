"""A bottle's networks on a docker engine: the bottle-side network (internal, with no
address on the host's side, when sealed; an ordinary bridge when not), the sidecar's way
out, the relay network a smolvm machine reaches its sidecar on, and what to do when the
engine runs out of address pools.

- ``bottle-<slug>-net``: a docker bottle's only network. Sealed, it is ``internal`` with
  ``inhibit_ipv4`` (no route out, no address on the host's side of the bridge, so host
  services bound to 0.0.0.0 are out of reach too); the sidecar sits on it too. For a
  smolmachines bottle it is the relay network: ``internal`` but with the host's gateway
  address, because smolvm connects from the host (``backends.egress.relay``);
- ``bottle-<slug>-out``: an ordinary bridge, the sidecar's way to the world.

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
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from backends import ownership
from backends.base import LABEL_AGENT, LaunchError
from backends.docker.engine import api_message, errors, quietly

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

#: The engine's option that leaves the host no address on a bridge.
INHIBIT_IPV4 = "com.docker.network.bridge.inhibit_ipv4"
#: A sealed docker bottle's network: no route out (internal) and no address on the host's
#: side of the bridge (inhibit_ipv4), so host services bound to 0.0.0.0 are out of reach too.
SEALED_OPTIONS = {INHIBIT_IPV4: "true"}
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


def subnets(api: Any, network: str) -> list[str]:
    """The subnets of engine network ``network`` (its IPAM config)."""
    info = api.inspect_network(network)
    configs = (info.get("IPAM") or {}).get("Config") or []
    return [str(c["Subnet"]) for c in configs if c.get("Subnet")]


def ensure_network(api: Any, plan: BottlePlan, name: str, undo: ExitStack, *, sealed: bool) -> None:
    """Create network ``name`` unless it exists (and is ours): a sealed bottle's network
    (internal, ``SEALED_OPTIONS``), or an ordinary one (an unsealed bottle's, the sidecar's
    way out). A sealed bottle's network must be internal: one made by an earlier, unsealed
    launch is refused."""
    try:
        info = api.inspect_network(name)
    except errors.NotFound:
        ident = create_network(
            api,
            name,
            plan.labels,
            agent=plan.agent,
            internal=sealed,
            options=SEALED_OPTIONS if sealed else None,
        )
        undo.callback(quietly, api.remove_network, ident)
        return
    if (info.get("Labels") or {}).get(LABEL_AGENT) != plan.agent:
        raise LaunchError(
            f"a network named {name} exists that bottle-dash did not create",
            fix=f"remove it (`docker network rm {name}`)",
            agent=plan.agent,
        )
    if not ownership.is_mine(info.get("Labels")):  # never join another operator's network
        raise ownership.foreign(
            plan.agent, f"network {name}", (info.get("Labels") or {}).get(ownership.LABEL_OWNER)
        )
    if sealed and not info.get("Internal"):
        raise LaunchError(
            f"network {name} of agent {plan.agent} is not sealed (made by an unsealed launch)",
            fix=f"bottle-dash rm {plan.agent}, then bottle-dash up {plan.agent}",
            agent=plan.agent,
        )


def ensure_relay_network(api: Any, plan: BottlePlan, undo: ExitStack) -> None:
    """Create the sidecar's network a smolvm machine reaches it on: internal, with the
    host's gateway address (smolvm connects from the host: ``backends.egress.relay``);
    refuse one made without it."""
    name = plan.extra["egress"]["networks"]["internal"]
    try:
        info = api.inspect_network(name)
    except errors.NotFound:
        ident = create_network(api, name, plan.labels, agent=plan.agent, internal=True)
        undo.callback(quietly, api.remove_network, ident)
        return
    if (info.get("Options") or {}).get(INHIBIT_IPV4) == "true":
        raise LaunchError(
            f"network {name} of agent {plan.agent} gives the host no address, so smolvm "
            "(which connects from the host) cannot reach the egress sidecar on it",
            fix=f"bottle-dash rm --volumes {plan.agent}, then bottle-dash up {plan.agent}",
            agent=plan.agent,
        )
