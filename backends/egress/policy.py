"""The egress broker's decisions as pure functions: allowlist rules, the addresses a name
may resolve to, the checks of each request (tunnel, TLS SNI, request target, Host, scheme),
the credential swap and the log line.

Stdlib only: this file runs on the host (plans, tests) and, copied beside ``addon.py``, in
the egress sidecar, where the mitmproxy addon calls it. Nothing here does I/O.

A rule is ``host`` (port 443), ``host:port``, ``*.domain`` (any subdomain, not the domain
itself), ``*.domain:port``, an IPv4 address (``10.1.2.3``, ``10.1.2.3:8443``) or an IPv4
range (``10.1.0.0/16``). Port 80 (or any other) is reachable only where a rule names it,
and plain HTTP never goes to port 443. A name may resolve to a private address only
where an address or range rule names it; loopback, link-local (the metadata address
among them), multicast, the sidecar's own addresses and its bottle-side network are
refused whatever the rules say.
"""

from __future__ import annotations

import ipaddress
import json
import re
import string
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

DEFAULT_API_HOST = "api.anthropic.com"
DEFAULT_PORT = 443
#: The config key an operator adds a host to (named in every 403).
ALLOW_KEY = "egress_allow"
#: Headers the placeholder is swapped in (only on requests to an API host).
CREDENTIAL_HEADERS = ("authorization", "x-api-key")
#: Headers a client could use to tell an upstream who it is or where it was going; the
#: broker removes them (the upstream sees the sidecar, and the request's own host).
FORWARDING_HEADERS = ("forwarded", "x-forwarded-")
#: Where the sidecar's files live (a host directory mounted into the sidecar only).
SIDECAR_DIR = "/egress"
POLICY_FILE = "policy.json"
CREDENTIAL_FILE = "credential"
LOG_FILE = "egress.log"
#: The agent's status word, written by the sidecar from the bottle's status hooks.
STATUS_FILE = "status"
CA_FILE = "mitmproxy-ca.pem"  # key + certificate: host (0600) and sidecar only
CA_CERT_FILE = "mitmproxy-ca-cert.pem"  # certificate only: provisioned into the bottle
PROXY_PORT = 8080
#: The egress log is rotated at this size, one older generation kept (``egress.log.1``):
#: at most twice this per agent on the host, whatever the bottle sends.
LOG_MAX_BYTES = 4 * 1024**2
#: The smallest rotation size a policy may set (a line must fit).
LOG_MIN_BYTES = 4096
#: Request bodies up to this size are read whole (and searched for the placeholder);
#: larger ones, or ones of unknown length, pass as a stream (searched as they pass).
BUFFER_BODY_BYTES = 1024**2
#: The largest request body the API host gets (the Messages API's own limit is 32 MB).
API_BODY_MAX = 32 * 1024**2
#: A host no one can register: the bottle's status hooks send their word to it through
#: the proxy; the sidecar answers itself and never forwards (``status_word``).
STATUS_HOST = "status.bottle-dash.invalid"
#: The six words a status hook may send (``backends.claude.STATUS_WORDS``; a unit test
#: keeps them equal: this file may import nothing of the project's).
STATUS_WORDS = ("working", "permission", "question", "idle", "error", "exited")
#: A request carrying this header comes from ``bottle-dash probe``: its decisions are
#: logged as probe traffic, and whatever the checks say it is never sent upstream.
PROBE_HEADER = "x-bottle-probe"

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_NUMERIC_RE = re.compile(r"^[0-9.x]+$|^0x[0-9a-f.]+$")
_TOKEN_PREFIX = re.compile(r"^(sk-ant-[a-z]+[0-9]*-)")
_TOKEN_ALPHABET = string.ascii_letters + string.digits
_PROBE_MARK = re.compile(r"^[A-Za-z0-9-]{1,32}$")

#: Addresses no rule can open: where they lead is the sidecar's own host, not the world.
_NEVER = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 is the sidecar itself
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local: the cloud metadata address among them
        "100.100.100.200/32",  # a cloud metadata address outside link-local
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/128",
        "::1/128",
        "fe80::/10",
        "fd00:ec2::254/128",  # the IPv6 metadata address
        "ff00::/8",
    )
)


# --------------------------------------------------------------------------- rules


def normal_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets."""
    return host.strip().lower().rstrip(".").strip("[]")


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def never_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Why no rule may open ``ip`` ("" when a rule may)."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        return never_reason(mapped) or ""
    if any(ip in net for net in _NEVER):
        if ip.is_loopback:
            return "a loopback address (the sidecar itself)"
        if ip.is_link_local or str(ip) in ("100.100.100.200", "fd00:ec2::254"):
            return "a link-local address (where cloud metadata services answer)"
        if ip.is_multicast:
            return "a multicast address"
        return "not an address of the outside world"
    return ""


class Rule(NamedTuple):
    """One allowlist entry: a host name (or ``*.domain``), an IPv4 address or an IPv4 range
    (``a.b.c.d/n``), and a port (a range grants its addresses on any port)."""

    host: str
    port: int = DEFAULT_PORT

    @property
    def is_range(self) -> bool:
        return "/" in self.host

    @property
    def is_address(self) -> bool:
        return not self.is_range and parse_ip(self.host) is not None

    def matches(self, host: str, port: int) -> bool:
        """Whether a request to ``host:port`` is allowed by this rule."""
        host = normal_host(host)
        if port != self.port:
            return False
        if self.is_range:
            ip = parse_ip(host)
            return ip is not None and self.grants(ip)
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host

    def grants(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether this rule names ``ip`` (an address rule) or a range that holds it."""
        if self.is_range:
            return ip in ipaddress.ip_network(self.host)
        return self.is_address and ip == ipaddress.ip_address(self.host)

    def __str__(self) -> str:
        return self.host if self.port == DEFAULT_PORT else f"{self.host}:{self.port}"


def _parse_port(text: str, port_text: str) -> int:
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} has a bad port (1-65535)")
    return int(port_text)


def _range_rule(text: str, raw: str) -> Rule:
    cidr, _, port_text = raw.partition(":")
    port = _parse_port(text, port_text) if port_text else DEFAULT_PORT
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an address range (e.g. 10.1.0.0/16)") from None
    if net.version != 4:
        # Unreachable from parse_rule, which names IPv6 first (and its ":" cuts an IPv6 CIDR).
        raise ValueError(  # pragma: no mutate
            f"{text!r}: the sidecar has no IPv6 way out; name an IPv4 range"  # pragma: no mutate
        )
    if net.prefixlen < 8:
        raise ValueError(f"{text!r} is wider than a /8: name the range the host is in")
    for never in _NEVER:
        if net.version == never.version and net.overlaps(never):
            raise ValueError(
                f"{text!r} holds {never}, {never_reason(never.network_address)}: no rule may "
                "open it"
            )
    return Rule(str(net), port)


def parse_rule(text: str) -> Rule:
    """A config entry -> ``Rule``; ``ValueError`` says what is wrong and why: no scheme, no
    path, a port from 1 to 65535, a name that can only lead back to the sidecar
    (``localhost``, a loopback or link-local address), a wildcard that only matches
    addresses (``*.254``) or a whole top-level domain (``*.com``)."""
    raw = text.strip().lower()
    if "://" in raw:
        raise ValueError(f"{text!r} is not a host: write the host only, e.g. 'github.com'")
    if "/" in raw:
        first = parse_ip(raw.split("/", 1)[0])  # pragma: no mutate (any maxsplit: same [0])
        if first is not None and first.version == 6:
            raise ValueError(f"{text!r}: the sidecar has no IPv6 way out; name an IPv4 range")
        if first is not None and raw.count("/") == 1:
            return _range_rule(text, raw)
        raise ValueError(f"{text!r} is not a host: write the host only, e.g. 'github.com'")
    if raw.startswith("[") or raw.count(":") > 1:
        raise ValueError(f"{text!r}: the sidecar has no IPv6 way out; name a host or IPv4")
    host, port = raw, DEFAULT_PORT
    if ":" in raw:
        host, _, port_text = raw.partition(":")
        port = _parse_port(text, port_text)
    host = host.rstrip(".")
    ip = parse_ip(host)
    if ip is not None:
        why = never_reason(ip)
        if why:
            raise ValueError(f"{text!r} is {why}: no rule may open it")
        return Rule(str(ip), port)
    if host and _NUMERIC_RE.match(host):
        # "0", "127.1", "0x7f.1", "2130706433": resolvers read these as addresses.
        raise ValueError(f"{text!r} looks like an address in a short or numeric form; write "
                         "it as four decimal numbers (a.b.c.d)")  # fmt: skip
    if not host or not _HOST_RE.match(host) or len(host) > 253:
        raise ValueError(f"{text!r} is not a host name (letters, digits, '-', '.', '*.' first)")
    last = host.rsplit(".", 1)[-1]  # pragma: no mutate (any maxsplit: same [-1])
    if host == "localhost" or host.endswith(".localhost"):
        raise ValueError(f"{text!r} names this machine (localhost): no rule may open it")
    if host.startswith("*.") and last.isdigit():
        raise ValueError(f"{text!r} can only match addresses, not names: name the address")
    if host.startswith("*.") and host.count(".") == 1:
        raise ValueError(
            f"{text!r} would allow every host under the top-level domain {last!r}: name "
            "the domain (e.g. '*.example.com')"
        )
    return Rule(host, port)


def host_port(url_or_host: str) -> tuple[str, int]:
    """``https://gw.example:8443/v1`` -> ``("gw.example", 8443)``; a bare host -> port 443
    (``http://`` -> 80)."""
    text = url_or_host.strip()
    default = DEFAULT_PORT
    if "://" in text:
        scheme, _, text = text.partition("://")
        default = 80 if scheme.lower() == "http" else DEFAULT_PORT
    text = text.split("/", 1)[0]  # pragma: no mutate (any maxsplit: same [0])
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return normal_host(host), int(port)
    return normal_host(text), default


def _networks(items: Iterable[str]) -> tuple[str, ...]:
    out = []
    for item in items:
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            continue  # pragma: no mutate (the loop's last statement: pass does the same)
    return tuple(out)


class Policy(NamedTuple):
    """What one bottle's sidecar enforces (written to ``policy.json`` for the sidecar)."""

    agent: str
    allow: tuple[Rule, ...] = (Rule(DEFAULT_API_HOST),)
    #: Where the credential is swapped in: the API host, or the configured gateway.
    api: tuple[str, int] = (DEFAULT_API_HOST, DEFAULT_PORT)
    #: The bottle's stand-in for the credential ("" when the bottle gets none).
    placeholder: str = ""
    #: The bottle-side network(s) of the sidecar (CIDRs): the proxy listens there only,
    #: and nothing is ever dialled into them.
    internal: tuple[str, ...] = ()
    #: The egress log's rotation size (``LOG_MAX_BYTES``; never below ``LOG_MIN_BYTES``).
    log_max: int = LOG_MAX_BYTES

    def allows(self, host: str, port: int) -> bool:
        return any(rule.matches(host, port) for rule in self.allow)

    def is_api(self, host: str, port: int) -> bool:
        return (normal_host(host), port) == self.api

    def to_json(self) -> str:
        return json.dumps(
            {
                "agent": self.agent,
                "allow": [str(r) for r in self.allow],
                "api": f"{self.api[0]}:{self.api[1]}",
                "placeholder": self.placeholder,
                "internal": list(self.internal),
                "log_max": self.log_max,
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Policy:
        data = json.loads(text)
        return cls(
            agent=str(data["agent"]),
            allow=tuple(parse_rule(r) for r in data["allow"]),
            api=host_port(str(data["api"])),
            placeholder=str(data.get("placeholder", "")),
            internal=_networks(str(n) for n in data.get("internal") or ()),
            log_max=max(LOG_MIN_BYTES, int(data.get("log_max") or LOG_MAX_BYTES)),
        )


def allowlist(entries: Iterable[str], api: tuple[str, int]) -> tuple[Rule, ...]:
    """The rules of ``entries`` plus the API host (always reachable), without repeats."""
    rules: list[Rule] = [Rule(api[0], api[1])]
    for entry in entries:
        rule = parse_rule(entry)
        if rule not in rules:
            rules.append(rule)
    return tuple(rules)


# --------------------------------------------------------------------------- decisions


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
    inside = [ipaddress.ip_network(n) for n in (*policy.internal, *_networks(own))]
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


# --------------------------------------------------------------------------- credential


def _base64_forms(needle: bytes) -> list[bytes]:
    """What ``needle`` looks like inside any base64 text (standard and URL-safe), at each of
    the three alignments it can have there."""
    import base64  # here: base64 loads struct, which `ls` (it reads policies) need not

    forms = []
    for skip in range(3):
        chunk = needle[skip:]
        chunk = chunk[: len(chunk) - len(chunk) % 3]
        if len(chunk) >= 12:
            forms.append(base64.b64encode(chunk))
            forms.append(base64.urlsafe_b64encode(chunk))
    return forms


def carries(placeholder: str, parts: Iterable[str | bytes]) -> bool:
    """Whether any of ``parts`` (the URL, header names and values, the body, the decoded
    body) holds the placeholder: as it is, percent-encoded, or in base64. Not checked: a
    placeholder split across requests or hidden in another encoding (it is worthless
    outside the sidecar; this is a tripwire, not what keeps the credential safe)."""
    if not placeholder:
        return False
    needle = placeholder.encode()
    forms = [needle, *_base64_forms(needle)]
    for part in parts:
        data = part if isinstance(part, bytes) else part.encode("utf-8", "surrogateescape")
        if any(f in data for f in forms):
            return True
        if b"%" in data or b"+" in data:
            decoded = urllib.parse.unquote_to_bytes(data.replace(b"+", b" "))
            if any(f in decoded for f in forms):
                return True
    return False


def check_placeholder(policy: Policy, host: str, port: int, found: bool) -> Decision:
    """A request carrying the placeholder may go to the API host only."""
    host = normal_host(host)
    if not found or policy.is_api(host, port):
        return Decision(True, host, port, "placeholder")
    return Decision(
        False,
        host,
        port,
        "placeholder",
        f"the credential placeholder was sent to {host}:{port}; only "
        f"{policy.api[0]}:{policy.api[1]} receives the credential",
    )


def check_credentials(
    policy: Policy,
    host: str,
    port: int,
    *,
    scheme: str,
    headers: Mapping[str, str],
    found: bool,
) -> Decision:
    """The credential rules of one request (``headers``: its headers, any case; ``found``:
    whether the placeholder is anywhere in it, ``carries``):

    - off the API host, the placeholder is refused (``check_placeholder``);
    - on the API host, over anything but HTTPS to a verified server, no credential header
      and no placeholder may go (the real credential would cross in the clear);
    - on the API host, a credential header must carry the placeholder: any other key or
      token (an account the agent controls) is refused.
    """
    host = normal_host(host)
    off_api = check_placeholder(policy, host, port, found)
    if not off_api.allow or not policy.is_api(host, port):
        return off_api
    creds = {k.lower(): v for k, v in headers.items() if k.lower() in CREDENTIAL_HEADERS}
    if scheme != "https" and (found or creds):
        return Decision(
            False,
            host,
            port,
            "credential",
            f"a credential over plain HTTP to {host}:{port}: the credential goes over "
            "verified TLS only",
        )
    for name, value in sorted(creds.items()):
        if policy.placeholder and policy.placeholder in value:
            continue
        return Decision(
            False,
            host,
            port,
            "credential",
            f"{name} carries a credential that is not this bottle's placeholder: only the "
            "sidecar's own credential reaches the API",
        )
    return Decision(True, host, port, "credential")


def swapped_headers(headers: Mapping[str, str], placeholder: str, real: str) -> dict[str, str]:
    """The credential headers of ``headers`` (case-insensitive names) whose value holds the
    placeholder, with the real credential put in its place; other headers are left alone."""
    out: dict[str, str] = {}
    if not placeholder or not real:
        return out
    for name, value in headers.items():
        if name.lower() in CREDENTIAL_HEADERS and placeholder in value:
            out[name] = value.replace(placeholder, real)
    return out


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


# --------------------------------------------------------------------------- the sidecar's own


def status_word(method: str, host: str, path: str) -> str | None:
    """The status word of a status hook's request (``GET http://STATUS_HOST/<word>``);
    "" for a request to ``STATUS_HOST`` that names no known word; None for any other
    request."""
    if normal_host(host) != STATUS_HOST:
        return None
    word = path.strip("/").split("?", 1)[0]  # pragma: no mutate (any maxsplit: same [0])
    return word if method in ("GET", "POST", "PUT") and word in STATUS_WORDS else ""


def probe_mark(headers: Mapping[str, str]) -> str:
    """The probe run's mark of a request (``PROBE_HEADER``), "" when it has none or an odd one."""
    value = next((v for k, v in headers.items() if k.lower() == PROBE_HEADER), "").strip()
    return value if _PROBE_MARK.match(value) else ""


def local_addresses(fib_trie: str) -> list[str]:
    """The addresses of this network namespace (``/32 host LOCAL`` in ``/proc/net/fib_trie``)."""
    found: list[str] = []
    last = ""
    for line in fib_trie.splitlines():
        text = line.strip(" |+-`")
        if text.startswith("/32 host LOCAL") and last and last not in found:
            found.append(last)
        elif parse_ip(text) is not None:
            last = text
    return found


def gateways(route: str) -> list[str]:
    """The gateways of ``/proc/net/route`` (the host, on a container's networks)."""
    found = []
    for line in route.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[2] != "00000000":
            try:
                raw = int(parts[2], 16)
            except ValueError:
                continue
            ip = str(ipaddress.IPv4Address(raw.to_bytes(4, "little")))
            if ip not in found:
                found.append(ip)
    return found


def listen_address(internal: Sequence[str], local: Sequence[str]) -> str | None:
    """The sidecar's own address on its bottle-side network (where the proxy listens)."""
    nets = [ipaddress.ip_network(n) for n in _networks(internal)]
    for text in local:
        ip = parse_ip(text)
        if ip is not None and any(ip.version == n.version and ip in n for n in nets):
            return text
    return None


# --------------------------------------------------------------------------- words


def deny_body(decision: Decision, agent: str) -> str:
    """The body of a 403: what was refused, and the config key that would allow it (only
    where a rule would: the other checks cannot be allowed by any setting)."""
    if decision.check in ("placeholder", "credential"):
        return (
            f"bottle-dash egress: request refused: {decision.reason}.\n"
            f"The bottle holds a placeholder, never the real credential.\n"
        )
    if decision.check not in ("connect", "request"):
        return (
            f"bottle-dash egress: {decision.host}:{decision.port} refused for agent {agent}: "
            f"{decision.reason}.\n"
        )
    rule = decision.host if decision.port == DEFAULT_PORT else f"{decision.host}:{decision.port}"
    return (
        f"bottle-dash egress: {decision.host}:{decision.port} refused for agent {agent}: "
        f"{decision.reason}.\n"
        f'To allow it: `bottle-dash allow {agent} {rule}` (applies at once), or add "{rule}" '
        f"to {ALLOW_KEY} in [agents.{agent}] (or [defaults]) of the bottle-dash config.\n"
    )


def deny_reason(decision: Decision, agent: str) -> str:
    """The 403's reason phrase: one line that names the host and the config key, for
    clients that show the status line of a refused CONNECT but never its body (pip, npm,
    ``curl -v``, ``GIT_CURL_VERBOSE=1 git``)."""
    rule = decision.host if decision.port == DEFAULT_PORT else f"{decision.host}:{decision.port}"
    if decision.check == "placeholder":
        text = f"bottle-dash egress: credential placeholder refused for {rule}"
    elif decision.check == "credential":
        text = f"bottle-dash egress: credential refused for {rule}"
    elif decision.check in ("sni", "host"):
        text = f"bottle-dash egress: the {decision.check} does not match {rule}"
    elif decision.check in ("connect", "request"):
        text = f"bottle-dash egress: {rule} is not in {ALLOW_KEY} of agent {agent}"
    else:
        text = f"bottle-dash egress: {decision.check} refused for {rule}"
    # A reason phrase is visible ASCII and spaces only (RFC 9112).
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:200]


def log_line(
    decision: Decision, *, ts: str, method: str = "", client: str = "", probe: str = ""
) -> str:
    """One JSON line for the egress log (no credential, no body, no path)."""
    record: dict[str, Any] = {
        "ts": ts,
        "decision": "allow" if decision.allow else "deny",
        "check": decision.check,
        "host": decision.host,
        "port": decision.port,
    }
    if method:
        record["method"] = method
    if client:
        record["client"] = client
    if probe:
        record["probe"] = probe
    if decision.reason:
        record["reason"] = decision.reason
    record.update(decision.extra)
    return json.dumps(record, sort_keys=True)


# --------------------------------------------------------------------------- placeholder


def placeholder_for(real: str) -> str:
    """A random stand-in of the same shape as ``real``: the same ``sk-ant-xxx00-`` prefix
    when it has one, then random letters and digits of the same length (``-``/``_`` kept
    where they were, so a format check in the client still passes)."""
    import secrets  # here: only launching makes placeholders (`ls` reads the policy)

    match = _TOKEN_PREFIX.match(real)
    prefix = match.group(1) if match else ""
    body = real[len(prefix) :]
    chars = [c if c in "-_" else secrets.choice(_TOKEN_ALPHABET) for c in body]
    out = prefix + "".join(chars)
    return out if out != real else placeholder_for(real)


def same_shape(a: str, b: str) -> bool:
    """Whether ``b`` could be ``placeholder_for(a)`` (prefix, length, separators)."""
    pa, pb = _TOKEN_PREFIX.match(a), _TOKEN_PREFIX.match(b)
    if (pa.group(1) if pa else "") != (pb.group(1) if pb else "") or len(a) != len(b):
        return False
    return all(
        (x in "-_") == (y in "-_") and (x not in "-_" or x == y) for x, y in zip(a, b, strict=True)
    )
