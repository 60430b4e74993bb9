"""Allowlist probes: the sidecar's proxy, asked from inside the bottle for what its
allowlist does not name (another host, a raw address, another port, a fronted name), and
the sidecar offering nothing but its proxy port.

Each request goes to the bottle's own sidecar only (``proxy_client``); the hosts asked
for are the allowlist's own and names under ``.invalid``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from backends.probes import net_facts as nf
from backends.probes import routes
from backends.probes.base import (
    FAIL,
    NOT_APPLICABLE,
    PASS,
    Check,
    Target,
    sealed,
    verdict,
)
from backends.probes.proxy_client import (
    DENIED,
    allowed_host,
    exchange,
    exchange_bytes,
    proxy_of,
    refused,
    sidecar_ip,
    status_line,
)

#: Ports a sidecar must not offer the bottle (its proxy port is the only one).
SIDECAR_PORTS = (22, 80, 443, 1080, 3128, 8000, 8081, 8443, 9090)


def needs_sidecar(what: str, body: Callable[[Target], tuple[str, str]]) -> Check:
    """A check that needs the sidecar: without one it fails saying what is missing."""

    def check(t: Target) -> tuple[str, str]:
        if not sealed(t):
            return FAIL, f"no egress sidecar (the bottle is not sealed), so not enforced: {what}"
        return body(t)

    return check


def proxy_denies_host(t: Target) -> tuple[str, str]:
    """A CONNECT to a host the allowlist does not name is refused."""
    reply = exchange(t, f"CONNECT {DENIED}:443 HTTP/1.1\r\nHost: {DENIED}:443\r\n\r\n")
    return verdict(refused(reply), f"CONNECT {DENIED}:443 -> {status_line(reply) or 'no reply'}")


def proxy_denies_raw_ip(t: Target) -> tuple[str, str]:
    """A CONNECT to a raw IP address is refused."""
    # The sidecar's own address: were it let through, the proxy would only reach itself.
    ip = sidecar_ip(t) or "127.0.0.1"
    reply = exchange(t, f"CONNECT {ip}:443 HTTP/1.1\r\nHost: {ip}:443\r\n\r\n")
    return verdict(refused(reply), f"CONNECT {ip}:443 -> {status_line(reply) or 'no reply'}")


def domain_fronting(t: Target) -> tuple[str, str]:
    """Fronting one host behind another: an HTTP request whose Host is not the host it
    goes to, a TLS ClientHello whose SNI is not the tunnel's host (a denied name inside
    a tunnel to an allowed one), and the reverse (an allowed SNI inside a tunnel to a
    denied host). Each must be refused; a control (the allowed host's own name in its own
    tunnel) must get a ServerHello, or the refusals show nothing."""
    host, port = allowed_host(t)
    if not host:
        return NOT_APPLICABLE, "the allowlist names no single host to front"
    target = f"{host}:{port or 80}"
    reply = exchange(t, f"GET http://{target}/ HTTP/1.1\r\nHost: {DENIED}\r\n\r\n")
    http_ok = refused(reply)
    seen = [f"GET http://{target}/ with Host {DENIED} -> {status_line(reply) or 'no reply'}"]
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
    """A CONNECT to an allowed host on a port its rule does not name is refused."""
    host, port = allowed_host(t)
    if not host:
        return NOT_APPLICABLE, "the allowlist names no single host"
    other = 25 if port != 25 else 26
    reply = exchange(t, f"CONNECT {host}:{other} HTTP/1.1\r\nHost: {host}:{other}\r\n\r\n")
    return verdict(refused(reply), f"CONNECT {host}:{other} -> {status_line(reply) or 'no reply'}")


def sidecar_other_ports(t: Target) -> tuple[str, str]:
    """From the bottle, the sidecar answers on its proxy port and on none of
    ``SIDECAR_PORTS``."""
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
    routed, route_evidence = routes.no_route_out(t)
    ok = denied == PASS and routed == PASS
    return verdict(
        ok, f"a redirect's target is one more proxied request: {evidence}; {route_evidence}"
    )
