"""The broker's checks of one tunnel, TLS hello, request and resolved address, each a pure
function that returns a ``Decision`` (what the log line and the 403 say).

Stdlib only, no I/O: it runs on the host (tests, probes) and in the egress sidecar, where
it sits beside ``policy.py`` and is imported as the top-level module ``checks``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

try:  # on the host: a module of the package backends.egress
    from backends.egress.rules import (
        DEFAULT_PORT,
        Policy,
        host_port,
        never_reason,
        normal_host,
        parse_ip,
        parse_networks,
    )
except ImportError:  # in the sidecar: beside rules.py, imported as a top-level module
    from rules import (  # type: ignore[no-redef]
        DEFAULT_PORT,
        Policy,
        host_port,
        never_reason,
        normal_host,
        parse_ip,
        parse_networks,
    )

#: The config key an operator adds a host to (named in every 403).
ALLOW_KEY = "egress_allow"
#: Headers a client could use to tell an upstream who it is or where it was going; the
#: broker removes them (the upstream sees the sidecar, and the request's own host).
FORWARDING_HEADERS = ("forwarded", "x-forwarded-")
#: The largest request body the API host gets (the Messages API's own limit is 32 MB).
API_BODY_MAX = 32 * 1024**2


class Decision(NamedTuple):
    """One allow/deny decision: what the log line and the 403 say."""

    allow: bool
    host: str
    port: int
    #: Which check decided: connect, sni, tunnel, target, host, scheme, request,
    #: address, placeholder, credential, size.
    check: str
    reason: str = ""
    extra: Mapping[str, Any] = MappingProxyType({})


def check_target(policy: Policy, host: str, port: int, check: str = "connect") -> Decision:
    """May the bottle open a tunnel to (or send a request for) ``host:port``?"""
    host = normal_host(host)
    if policy.allows(host, port):
        return Decision(True, host, port, check)
    return Decision(False, host, port, check, f"{host}:{port} is not on the allowlist")


def check_sni(policy: Policy, target: str, port: int, sni: str | None) -> Decision:
    """The TLS ClientHello's SNI must name the host the tunnel was opened to (no SNI is
    allowed: the tunnel's host is then what the certificate is made for)."""
    target = normal_host(target)
    if sni is None or normal_host(sni) == target:
        return Decision(True, target, port, "sni")
    return Decision(
        False,
        target,
        port,
        "sni",
        f"TLS SNI {normal_host(sni)!r} does not match the tunnel's host {target!r}",
    )


def looks_like_tls(data: bytes) -> bool:
    """A TLS record header mitmproxy intercepts: handshake, version 3.0-3.3."""
    return len(data) > 2 and data[0] == 0x16 and data[1] == 0x03 and data[2] <= 0x03


_REQUEST_LINE = re.compile(rb"^[A-Z][A-Z-]{0,19} ")
# \Z, not $: $ also matches before a final newline, and "GET\n" is no method still coming.
_METHOD_SO_FAR = re.compile(rb"^[A-Z][A-Z-]{0,19}\Z")


def check_tunnel_bytes(policy: Policy, host: str, port: int, data: bytes) -> Decision | None:
    """The first bytes a client sends in a tunnel must be TLS the sidecar intercepts or an
    HTTP request line; anything else (another TLS record version, SSH, a raw protocol)
    would pass the sidecar unread, so the tunnel is refused. None while too few bytes
    came to tell."""
    host = normal_host(host)
    head = data[:21]  # pragma: no mutate (a method and its space fit in 21 bytes)
    if len(data) < 3 or _METHOD_SO_FAR.match(head):
        return None
    if looks_like_tls(data) or _REQUEST_LINE.match(head):
        return Decision(True, host, port, "tunnel")
    what = f"TLS record version 0x03{data[2]:02x}" if data[:2] == b"\x16\x03" else "raw bytes"
    return Decision(
        False,
        host,
        port,
        "tunnel",
        f"the tunnel's first bytes are {what}, neither TLS the sidecar reads nor HTTP",
    )


def check_request(
    policy: Policy,
    *,
    host: str,
    port: int,
    scheme: str,
    method: str,
    authority: str,
    path: str,
    host_header: str | None,
    tunnel: tuple[str, int] | None = None,
) -> Decision:
    """Every check of one request before anything is sent upstream, in order:

    - the request target: an absolute-form or authority (HTTP/1) must name the tunnel's
      host and port (a server routing by the request line would serve another host); the
      path must be origin-form (``/...``; ``*`` for OPTIONS), so no absolute URL reaches
      an upstream in ``:path`` either;
    - the Host header (or ``:authority``) must name the request's host, and its port (the
      scheme's default when it has none) the request's port;
    - plain HTTP never goes to port 443 (a rule without a port means HTTPS);
    - ``host:port`` must be on the allowlist.
    """
    host = normal_host(host)
    where = tunnel or (host, port)
    if authority:
        named = host_port(f"{scheme}://{authority}")
        if named != (normal_host(where[0]), where[1]):
            return Decision(
                False,
                host,
                port,
                "target",
                f"the request target names {named[0]}:{named[1]}, but the request goes to "
                f"{where[0]}:{where[1]}",
            )
    if not (path.startswith("/") or (path == "*" and method == "OPTIONS")):
        return Decision(
            False, host, port, "target", f"the request path {path[:80]!r} is not origin-form"
        )
    if host_header:
        named_host, named_port = host_port(f"{scheme}://{host_header.strip()}")
        if named_host != host:
            return Decision(
                False,
                host,
                port,
                "host",
                f"Host header {named_host!r} does not match the request's host {host!r}",
            )
        if named_port != port:
            return Decision(
                False,
                host,
                port,
                "host",
                f"Host header port {named_port} does not match the request's port {port}",
            )
    if scheme != "https" and port == DEFAULT_PORT:
        return Decision(
            False,
            host,
            port,
            "scheme",
            f"plain HTTP to {host}:{port}: port {port} is for HTTPS (a rule without a port "
            "allows HTTPS only)",
        )
    return check_target(policy, host, port, "request")


def check_host_header(policy: Policy, target: str, port: int, header: str | None) -> Decision:
    """The request's Host (or :authority) must name the host and port the request goes to;
    then the host:port must be allowed (``check_request`` with an origin-form target)."""
    scheme = "http" if port == 80 else "https"
    return check_request(
        policy,
        host=target,
        port=port,
        scheme=scheme,
        method="GET",  # pragma: no mutate (the method counts only for a "*" path)
        authority="",
        path="/",
        host_header=header,
    )


def address_decision(
    policy: Policy,
    host: str,
    port: int,
    addresses: Sequence[str],
    *,
    own: Sequence[str] = (),
) -> Decision:
    """Whether the sidecar may dial ``host:port`` at ``addresses`` (what the name resolved
    to; every one must pass, so a name cannot mix an outside address with an inside one).

    Refused whatever the rules say: loopback, link-local (the metadata address), multicast,
    reserved, the sidecar's bottle-side networks (``policy.internal``) and ``own`` (the
    sidecar's own addresses and its gateways, which are the host). Any other address that
    is not global (private ranges, shared address space) only where an address or range
    rule names it. The decision's ``extra["address"]`` is the first address to dial."""
    host = normal_host(host)
    if not addresses:
        return Decision(False, host, port, "address", f"{host} did not resolve")
    inside = [ipaddress.ip_network(n) for n in (*policy.internal, *parse_networks(own))]
    for text in addresses:
        ip = parse_ip(text)
        if ip is None:
            return Decision(False, host, port, "address", f"{host} resolved to {text!r}")
        why = never_reason(ip)
        if not why and any(ip.version == net.version and ip in net for net in inside):
            why = "the sidecar's own address or its bottle-side network, or the host"
        if why:
            return Decision(
                False, host, port, "address", f"{host} resolves to {text}, {why}: never dialled"
            )
        if not ip.is_global and not any(rule.grants(ip) for rule in policy.allow):
            return Decision(
                False,
                host,
                port,
                "address",
                f"{host} resolves to {text}, a private address: add {ip} (or its range, e.g. "
                f"{ipaddress.ip_network(f'{ip}/24', strict=False)}) to {ALLOW_KEY} to allow it",
            )
    return Decision(True, host, port, "address", extra={"address": str(addresses[0])})


def forwarding_headers(names: Iterable[str]) -> list[str]:
    """The header names among ``names`` the broker strips (``Forwarded``, ``X-Forwarded-*``)."""
    return [n for n in names if n.lower().startswith(FORWARDING_HEADERS)]


def announced_body(headers: Mapping[str, str], *, method: str, http2: bool) -> int | None:
    """A request body's size as its headers announce it: ``Content-Length``; 0 for none;
    None when the size is not known before it has all come (chunked, or HTTP/2 without a
    length on a method that carries a body)."""
    lower = {k.lower(): v for k, v in headers.items()}
    length = lower.get("content-length", "").strip()
    if "chunked" in lower.get("transfer-encoding", "").lower():
        return None
    if length.isdigit():
        return int(length)
    if length:
        return None  # a length that is not a number: nothing to trust
    return None if http2 and method.upper() in ("POST", "PUT", "PATCH") else 0


def body_too_large(policy: Policy, host: str, port: int, size: int) -> Decision | None:
    """A request body the API host must not get (over ``API_BODY_MAX``); None when fine."""
    if size <= API_BODY_MAX or not policy.is_api(host, port):
        return None
    return Decision(
        False,
        normal_host(host),
        port,
        "size",
        f"a request body of {size} bytes is over the API's limit of {API_BODY_MAX}",
    )
