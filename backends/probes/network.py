"""Network probes: the bottle reaches nothing but its own egress sidecar.

What can be shown without sending anything outside is shown by route and configuration
(the bottle's routing table, the engine's networks, the machine's allowed CIDRs:
``routes.py``); the active probes talk only to the bottle's own sidecar, its own network
and loopback (``allowlist.py``), and ask the resolver only for names under ``.invalid``.
Nothing is ever sent to the metadata address: its probe reads the routes.

This module is the group's table, in suite order.
"""

from __future__ import annotations

from backends.probes.allowlist import (
    domain_fronting,
    needs_sidecar,
    ports_not_allowed,
    proxy_denies_host,
    proxy_denies_raw_ip,
    redirect_denied,
    sidecar_other_ports,
)
from backends.probes.base import NETWORK, Probe
from backends.probes.routes import (
    METADATA,
    dns_outside,
    host_gateway,
    host_loopback,
    ipv6_off,
    metadata_unreachable,
    no_route_out,
    other_bottles,
    udp_icmp_out,
)

SEAL_FIX = "launch the agent sealed (egress sidecar on an internal network): rm and up again"

PROBES = (
    Probe(
        "no-route-out",
        NETWORK,
        "a direct connection ignoring HTTPS_PROXY goes nowhere",
        SEAL_FIX,
        no_route_out,
    ),
    Probe(
        "proxy-denies-host",
        NETWORK,
        "the proxy refuses a host not on the allowlist",
        SEAL_FIX,
        needs_sidecar("the allowlist", proxy_denies_host),
    ),
    Probe(
        "proxy-denies-raw-ip",
        NETWORK,
        "the proxy refuses a raw IP address",
        SEAL_FIX,
        needs_sidecar("raw IP refusal", proxy_denies_raw_ip),
    ),
    Probe(
        "domain-fronting",
        NETWORK,
        "SNI and Host must both be allowed and agree",
        SEAL_FIX,
        needs_sidecar("Host checks", domain_fronting),
    ),
    Probe(
        "sidecar-other-ports",
        NETWORK,
        "the sidecar offers the bottle its proxy port only",
        SEAL_FIX,
        needs_sidecar("one open port on the sidecar", sidecar_other_ports),
    ),
    Probe(
        "ports-not-443",
        NETWORK,
        "the proxy refuses ports other than the allowed ones",
        SEAL_FIX,
        needs_sidecar("port rules", ports_not_allowed),
    ),
    Probe(
        "redirect-denied",
        NETWORK,
        "a redirect to a denied host is not followed through",
        SEAL_FIX,
        needs_sidecar("per-request allowlist checks", redirect_denied),
    ),
    Probe("ipv6-off", NETWORK, "no IPv6 way out", SEAL_FIX, ipv6_off),
    Probe(
        "dns-outside",
        NETWORK,
        "outside names get no answer (names under .invalid)",
        SEAL_FIX,
        dns_outside,
    ),
    Probe("udp-icmp-out", NETWORK, "UDP and ICMP have no way out", SEAL_FIX, udp_icmp_out),
    Probe(
        "metadata-unreachable",
        NETWORK,
        f"no route to {METADATA} (nothing is sent there)",
        SEAL_FIX,
        metadata_unreachable,
    ),
    Probe(
        "host-gateway",
        NETWORK,
        "host services are not reachable through the bridge gateway",
        SEAL_FIX,
        host_gateway,
    ),
    Probe(
        "host-loopback",
        NETWORK,
        "host services on loopback are not reachable",
        SEAL_FIX,
        host_loopback,
    ),
    Probe("other-bottles", NETWORK, "other bottles are not reachable", SEAL_FIX, other_bottles),
)

__all__ = ["PROBES"]
