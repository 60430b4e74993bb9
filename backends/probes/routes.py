"""Network probes shown by route and configuration: the bottle's routing table, the
engine's networks, the machine's allowed CIDRs, and connects to its own loopback.

Nothing here talks to the sidecar's proxy (``allowlist.py`` does) and nothing is ever sent
to the metadata address: its probe reads the routes. The resolver is asked only for a name
under ``.invalid``.
"""

from __future__ import annotations

from typing import Any

from backends.probes import net_facts as nf
from backends.probes.base import (
    FAIL,
    NOT_APPLICABLE,
    PASS,
    Target,
    clip,
    egress_value,
    verdict,
)

METADATA = "169.254.169.254"
DNS_NAME = "bottle-probe.invalid"


def _view(t: Target) -> dict[str, list[str]]:
    """The bottle's routes and listeners (read once per suite run)."""
    cached = t.facts.get("_routes")
    if cached is None:
        cached = nf.sections(t.run(nf.ROUTES_SCRIPT).stdout)
        t.facts["_routes"] = cached
    return dict(cached)


def _networks(t: Target) -> dict[str, Any]:
    return dict(t.facts.get("networks") or {})


def _open_networks(t: Target) -> list[str]:
    """Engine networks of the bottle that are not sealed (docker); for a machine, its
    network setting when it is not limited to the sidecar."""
    if t.backend == "docker":
        bad = []
        for name, net in _networks(t).items():
            opts = net.get("Options") or {}
            if not net.get("Internal"):
                bad.append(f"{name} is not internal")
            elif opts.get("com.docker.network.bridge.inhibit_ipv4") != "true":
                bad.append(f"{name} gives the host an address (no inhibit_ipv4)")
        mode = str(((t.facts.get("container") or {}).get("HostConfig") or {}).get("NetworkMode"))
        if mode == "host":
            bad.append("the bottle shares the host's network")
        return bad
    extra = t.plan.extra if t.plan else {}
    # A sealed machine's one allowed address (``--allow-cidr``) is in its egress plan.
    sealed_cidr = egress_value(t, "allow_cidr")
    allow = [sealed_cidr] if sealed_cidr else list(extra.get("allow_cidr") or [])
    if extra.get("net", True) and not allow:
        return ["the machine has an unfiltered network (--net without --allow-cidr)"]
    return [f"allowed CIDR {c} is wider than one address" for c in allow if not c.endswith("/32")]


def no_route_out(t: Target) -> tuple[str, str]:
    """A direct connection ignoring HTTPS_PROXY has nowhere to go."""
    view = _view(t)
    defaults = nf.default_routes(view.get("route", []))
    bad = _open_networks(t)
    evidence = "; ".join([*bad, *(defaults or ["no default route in the bottle"])])
    if t.backend == "docker":
        # On an internal network with inhibit_ipv4 the default route's gateway is an
        # address the host does not hold, and the engine drops what leaves the bridge.
        evidence += " | " + "; ".join(nf.network_summary(_networks(t)))
        return verdict(bool(_networks(t)) and not bad, evidence)
    # A machine's guest holds a route; smolvm's gateway drops all but the allowed /32.
    allowed = egress_value(t, "allow_cidr")
    if not bad and allowed:
        evidence = f"smolvm lets the machine reach {allowed} only (--allow-cidr); {evidence}"
    return verdict(not bad, evidence)


def metadata_unreachable(t: Target) -> tuple[str, str]:
    """By route and configuration only: nothing is sent to the metadata address."""
    routes = nf.routes_to(_view(t).get("route", []), METADATA)
    bad = _open_networks(t)
    if t.backend == "smolmachines":
        return verdict(not bad, "; ".join(bad) or "only the sidecar's /32 is allowed")
    if bad or not _networks(t):
        return FAIL, f"routes to {METADATA}: {', '.join(routes) or 'none'}; {'; '.join(bad)}"
    if routes:
        return PASS, (
            f"the only route to {METADATA} ({', '.join(routes)}) ends on an internal network "
            "whose gateway the host does not hold; nothing was sent there"
        )
    return PASS, f"no route to {METADATA} in the bottle; nothing was sent there"


def ipv6_off(t: Target) -> tuple[str, str]:
    """No global IPv6 address or route in the bottle, no IPv6 on its networks."""
    view = _view(t)
    found = nf.ipv6_global(view.get("if_inet6", []), view.get("ipv6_route", []))
    enabled = [n for n, net in _networks(t).items() if net.get("EnableIPv6")]
    found += [f"network {n} has IPv6" for n in enabled]
    return verdict(not found, "; ".join(found) or "no global IPv6 address or route")


def dns_outside(t: Target) -> tuple[str, str]:
    """An outside name must get no answer at all; NXDOMAIN means the engine forwarded it."""
    script = (
        f"if command -v nslookup >/dev/null 2>&1; then timeout 8 nslookup {DNS_NAME} 2>&1; "
        "elif command -v node >/dev/null 2>&1; then timeout 8 node -e "
        f"\"require('dns').resolve4('{DNS_NAME}',e=>console.log(e?e.code:'ANSWER'))\" 2>&1; "
        "else echo no-client; fi; echo rc=$?"
    )
    out = t.run(script, timeout=30).stdout
    text = clip(out, 200)
    if "no-client" in out:
        return NOT_APPLICABLE, "no nslookup or node in the image to tell an answer from silence"
    answered = any(w in out for w in ("NXDOMAIN", "ENOTFOUND", "ANSWER", "can't find", "Address"))
    silent = any(
        w in out for w in ("timed out", "ETIMEOUT", "ECONNREFUSED", "no servers", "rc=124")
    )
    if answered and not silent:
        return FAIL, f"the resolver answered for {DNS_NAME} (the query left the bottle): {text}"
    return PASS, f"no answer for {DNS_NAME}: {text}"


def udp_icmp_out(t: Target) -> tuple[str, str]:
    """UDP and ICMP need a route just like TCP; shown by route and configuration."""
    status, evidence = no_route_out(t)
    return status, "UDP/ICMP have no path out: " + evidence if status == PASS else evidence


def host_gateway(t: Target) -> tuple[str, str]:
    """Host services bound to 0.0.0.0 are reachable through the bridge's gateway unless
    the host has no address on the bottle's network (inhibit_ipv4)."""
    if t.backend != "docker":
        bad = _open_networks(t)
        return verdict(not bad, "; ".join(bad) or "only the sidecar's address is allowed")
    nets = _networks(t)
    bad = [
        f"{name} gives the host an address"
        for name, net in nets.items()
        if (net.get("Options") or {}).get("com.docker.network.bridge.inhibit_ipv4") != "true"
    ]
    return verdict(bool(nets) and not bad, "; ".join(bad + nf.network_summary(nets)))


def host_loopback(t: Target) -> tuple[str, str]:
    """Host services on loopback: connect from the bottle to the host's loopback
    listeners (those the bottle does not itself listen on)."""
    mode = str(((t.facts.get("container") or {}).get("HostConfig") or {}).get("NetworkMode"))
    if mode == "host":
        return FAIL, "the bottle shares the host's network, loopback included"
    ports = sorted(_host_loopback_ports() - nf.loopback_listeners(_view(t).get("tcp", [])))[:3]
    if not ports:
        return PASS, "the bottle has its own loopback (no host loopback listener to try)"
    script = nf.TCP_FN + "".join(f'echo "{p} $(tcp 127.0.0.1 {p})"; ' for p in ports)
    lines = t.run(script, timeout=30).stdout.split("\n")
    opened = [ln.split()[0] for ln in lines if ln.endswith(" open")]
    if any(ln.endswith("no-client") for ln in lines):
        return verdict(t.backend == "docker", "no TCP client in the image; own network namespace")
    if opened:
        return FAIL, f"host loopback ports reachable from the bottle: {', '.join(opened)}"
    return PASS, f"host loopback ports {ports} not reachable from the bottle"


def _host_loopback_ports() -> set[int]:
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 4 or parts[3] != "0A":
                continue
            addr, port = parts[1].rsplit(":", 1)
            if addr in ("0100007F", "00000000000000000000000001000000"):
                ports.add(int(port, 16))
    return ports


def other_bottles(t: Target) -> tuple[str, str]:
    """The bottle's networks hold only the bottle and its sidecar."""
    if t.backend != "docker":
        bad = _open_networks(t)
        return verdict(not bad, "; ".join(bad) or "only the sidecar's address is allowed")
    me = str((t.facts.get("container") or {}).get("Id") or "")
    sidecar = egress_value(t, "sidecar")
    others = []
    for name, net in _networks(t).items():
        for ident, member in (net.get("Containers") or {}).items():
            who = str(member.get("Name") or ident[:12])
            if ident != me and who != sidecar:
                others.append(f"{who} on {name}")
    if others:
        return FAIL, "other containers share the bottle's network: " + ", ".join(others)
    return PASS, "the bottle's networks hold only the bottle" + (
        " and its sidecar" if sidecar else ""
    )
