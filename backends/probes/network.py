"""Network probes: the bottle reaches nothing but its own egress sidecar.

What can be shown without sending anything outside is shown by route and configuration
(the bottle's routing table, the engine's networks, the machine's allowed CIDRs); the
active probes talk only to the bottle's own sidecar, its own network and loopback, and
ask the resolver only for names under ``.invalid``. Nothing is ever sent to the metadata
address: its probe reads the routes.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from backends.probes import net_facts as nf
from backends.probes.base import (
    FAIL,
    NETWORK,
    NOT_APPLICABLE,
    PASS,
    Check,
    Probe,
    Target,
    clip,
    egress_of,
    egress_value,
    sealed,
    verdict,
)

METADATA = "169.254.169.254"
SEAL_FIX = "launch the agent sealed (egress sidecar on an internal network): rm and up again"
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


DENIED = "bottle-probe-denied.invalid"
#: Ports a sidecar must not offer the bottle (its proxy port is the only one).
SIDECAR_PORTS = (22, 80, 443, 1080, 3128, 8000, 8081, 8443, 9090)


def proxy_of(t: Target) -> tuple[str, int]:
    """The sidecar's proxy as the bottle reaches it."""
    return nf.proxy_address(egress_value(t, "proxy"))


def exchange(t: Target, request: str, host: str = "", port: int = 0) -> str:
    """Send ``request`` (CRLF line ends) to the sidecar's proxy from inside the bottle;
    the reply. Only ever the bottle's own sidecar."""
    from backends.probes.broker import marked

    phost, pport = proxy_of(t)
    wire = nf.wire(marked(t, request))
    script = (
        nf.EXCHANGE_FN
        + f"exchange {shlex.quote(host or phost)} {port or pport} {shlex.quote(wire)}"
    )
    return t.run(script, timeout=60).stdout


def exchange_bytes(t: Target, *chunks: str | bytes) -> bytes | None:
    """Send ``chunks`` to the sidecar's proxy, a second apart, from inside the bottle; the
    raw reply (read through ``od``), or None when the bottle has no client (nc or node)."""
    from backends.probes.broker import marked

    host, port = proxy_of(t)
    words = " ".join(
        shlex.quote(nf.wire(marked(t, c) if isinstance(c, str) else c)) for c in chunks
    )
    script = (
        "command -v nc >/dev/null 2>&1 || command -v node >/dev/null 2>&1 "
        "|| { echo no-client; exit 0; }; "
        + nf.EXCHANGE_FN
        + f"exchange {shlex.quote(host)} {port} {words} | od -An -v -tx1"
    )
    out = t.run(script, timeout=60).stdout
    if out.strip() == "no-client":
        return None
    return bytes.fromhex("".join(out.split()))


def _allowed_host(t: Target, *, api: bool | None = None) -> tuple[str, int | None]:
    """An allowlisted host: the API's (``api``), one that is not the API's (``not api``),
    or the first (None); ``("", None)`` when there is none such. Wildcards and address
    ranges name no single host."""
    api_host = nf.rule_host(egress_value(t, "api"))[0]
    for rule in egress_of(t).get("allow") or []:
        host, port = nf.rule_host(str(rule))
        if "*" in host or "/" in host:
            continue
        if api is None or (host == api_host) == api:
            return host, port
    return ("", None)


def _status(reply: str) -> str:
    first = reply.split("\r\n", 1)[0].split("\n", 1)[0]
    return first.strip()


def _refused(reply: str) -> bool:
    return _status(reply).startswith("HTTP/1.1 403") or _status(reply).startswith("HTTP/1.0 403")


def _active(what: str, body: Callable[[Target], tuple[str, str]]) -> Check:
    """A check that needs the sidecar: without one it fails saying what is missing."""

    def check(t: Target) -> tuple[str, str]:
        if not sealed(t):
            return FAIL, f"no egress sidecar (the bottle is not sealed), so not enforced: {what}"
        return body(t)

    return check


def proxy_denies_host(t: Target) -> tuple[str, str]:
    reply = exchange(t, f"CONNECT {DENIED}:443 HTTP/1.1\r\nHost: {DENIED}:443\r\n\r\n")
    return verdict(_refused(reply), f"CONNECT {DENIED}:443 -> {_status(reply) or 'no reply'}")


def proxy_denies_raw_ip(t: Target) -> tuple[str, str]:
    # The sidecar's own address: were it let through, the proxy would only reach itself.
    ip = _sidecar_ip(t) or "127.0.0.1"
    reply = exchange(t, f"CONNECT {ip}:443 HTTP/1.1\r\nHost: {ip}:443\r\n\r\n")
    return verdict(_refused(reply), f"CONNECT {ip}:443 -> {_status(reply) or 'no reply'}")


def _sidecar_ip(t: Target) -> str:
    sidecar = egress_value(t, "sidecar")
    for net in _networks(t).values():
        for member in (net.get("Containers") or {}).values():
            if member.get("Name") == sidecar:
                return str(member.get("IPv4Address") or "").split("/")[0]
    # A machine reaches its sidecar by address: the proxy's own host.
    host = proxy_of(t)[0]
    return host if host.replace(".", "").isdigit() else ""


def domain_fronting(t: Target) -> tuple[str, str]:
    """Fronting one host behind another: an HTTP request whose Host is not the host it
    goes to, a TLS ClientHello whose SNI is not the tunnel's host (a denied name inside
    a tunnel to an allowed one), and the reverse (an allowed SNI inside a tunnel to a
    denied host). Each must be refused; a control (the allowed host's own name in its own
    tunnel) must get a ServerHello, or the refusals show nothing."""
    host, port = _allowed_host(t)
    if not host:
        return NOT_APPLICABLE, "the allowlist names no single host to front"
    target = f"{host}:{port or 80}"
    reply = exchange(t, f"GET http://{target}/ HTTP/1.1\r\nHost: {DENIED}\r\n\r\n")
    http_ok = _refused(reply)
    seen = [f"GET http://{target}/ with Host {DENIED} -> {_status(reply) or 'no reply'}"]
    tunnel = f"{host}:{port or 443}"
    sni_cases = (
        # (CONNECT to, SNI, must the handshake go through?)
        (tunnel, host, True),
        (tunnel, DENIED, False),
        (f"{DENIED}:443", host, False),
    )
    tls_ok = True
    for where, sni, through in sni_cases:
        connect = f"CONNECT {where} HTTP/1.1\r\nHost: {where}\r\n\r\n"
        raw = exchange_bytes(t, connect, nf.client_hello(sni))
        if raw is None:
            return FAIL, "no TCP client (nc or node) in the bottle to show the TLS checks: " + (
                seen[0]
            )
        status, rest = nf.split_reply(raw)
        answer = nf.tls_answer(rest) if status.split()[1:2] == ["200"] else "refused"
        seen.append(f"CONNECT {where} + SNI {sni} -> {status or 'no reply'}, {answer}")
        if through:
            tls_ok = tls_ok and answer == "server-hello"
        else:
            tls_ok = tls_ok and answer != "server-hello" and answer != "other"
    return verdict(http_ok and tls_ok, "; ".join(seen))


def ports_not_allowed(t: Target) -> tuple[str, str]:
    host, port = _allowed_host(t)
    if not host:
        return NOT_APPLICABLE, "the allowlist names no single host"
    other = 25 if port != 25 else 26
    reply = exchange(t, f"CONNECT {host}:{other} HTTP/1.1\r\nHost: {host}:{other}\r\n\r\n")
    return verdict(_refused(reply), f"CONNECT {host}:{other} -> {_status(reply) or 'no reply'}")


def sidecar_other_ports(t: Target) -> tuple[str, str]:
    host, proxy_port = proxy_of(t)
    ports = [p for p in SIDECAR_PORTS if p != proxy_port]
    script = nf.TCP_FN + "".join(f'echo "{p} $(tcp {shlex.quote(host)} {p})"; ' for p in ports)
    lines = t.run(script, timeout=90).stdout.splitlines()
    if any(ln.endswith("no-client") for ln in lines):
        return NOT_APPLICABLE, "no TCP client (nc or node) in the image"
    opened = [ln.split()[0] for ln in lines if ln.endswith(" open")]
    if opened:
        return FAIL, f"the sidecar {host} answers on {', '.join(opened)} besides {proxy_port}"
    return PASS, f"the sidecar {host} answers on none of {ports} (only {proxy_port})"


def redirect_denied(t: Target) -> tuple[str, str]:
    """The proxy never follows a redirect itself; the client's next request goes through
    the proxy again (there is no other way out), where a denied host is refused."""
    denied, evidence = proxy_denies_host(t)
    routed, route_evidence = no_route_out(t)
    ok = denied == PASS and routed == PASS
    return verdict(
        ok, f"a redirect's target is one more proxied request: {evidence}; {route_evidence}"
    )


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
        _active("the allowlist", proxy_denies_host),
    ),
    Probe(
        "proxy-denies-raw-ip",
        NETWORK,
        "the proxy refuses a raw IP address",
        SEAL_FIX,
        _active("raw IP refusal", proxy_denies_raw_ip),
    ),
    Probe(
        "domain-fronting",
        NETWORK,
        "SNI and Host must both be allowed and agree",
        SEAL_FIX,
        _active("Host checks", domain_fronting),
    ),
    Probe(
        "sidecar-other-ports",
        NETWORK,
        "the sidecar offers the bottle its proxy port only",
        SEAL_FIX,
        _active("one open port on the sidecar", sidecar_other_ports),
    ),
    Probe(
        "ports-not-443",
        NETWORK,
        "the proxy refuses ports other than the allowed ones",
        SEAL_FIX,
        _active("port rules", ports_not_allowed),
    ),
    Probe(
        "redirect-denied",
        NETWORK,
        "a redirect to a denied host is not followed through",
        SEAL_FIX,
        _active("per-request allowlist checks", redirect_denied),
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
