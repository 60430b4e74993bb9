"""The allowlist: what an agent's rules say and the policy one sidecar enforces.

A rule is ``host`` (port 443), ``host:port``, ``*.domain`` (any subdomain, not the domain
itself), ``*.domain:port``, an IPv4 address (``10.1.2.3``, ``10.1.2.3:8443``) or an IPv4
range (``10.1.0.0/16``). Port 80 (or any other) is reachable only where a rule names it.
Loopback, link-local (the metadata address among them), multicast and reserved addresses
no rule can open (``never_reason``).

Stdlib only, no I/O: it runs on the host (the config, plans) and in the egress sidecar,
where it sits beside ``policy.py`` and is imported as the top-level module ``rules``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from typing import NamedTuple

DEFAULT_API_HOST = "api.anthropic.com"
DEFAULT_PORT = 443
#: The egress log is rotated at this size, one older generation kept (``egress.log.1``):
#: at most twice this per agent on the host, whatever the bottle sends.
LOG_MAX_BYTES = 4 * 1024**2
#: The smallest rotation size a policy may set (a line must fit).
LOG_MIN_BYTES = 4096

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_NUMERIC_RE = re.compile(r"^[0-9.x]+$|^0x[0-9a-f.]+$")

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


def normal_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets."""
    return host.strip().lower().rstrip(".").strip("[]")


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``text`` names, or None when it is not an address."""
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


#: SSH's port: no allowlist entry can open it (the sidecar is an HTTP proxy).
SSH_PORT = 22


def parse_rule(text: str) -> Rule:
    """A config entry -> ``Rule``; ``ValueError`` says what is wrong and why: no scheme, no
    path, a port from 1 to 65535, a name that can only lead back to the sidecar
    (``localhost``, a loopback or link-local address), a wildcard that only matches
    addresses (``*.254``), a whole top-level domain (``*.com``), or SSH's port 22 (no
    HTTP proxy carries it)."""
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
    if port == SSH_PORT:
        raise ValueError(
            f"{text!r} is SSH (port 22), which cannot pass the sidecar: it carries HTTP and "
            "HTTPS only; allow the host itself and use its HTTPS remote (e.g. "
            "https://github.com/OWNER/REPO.git)"
        )
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


def parse_networks(items: Iterable[str]) -> tuple[str, ...]:
    """The networks (CIDRs) among ``items``, normalized; anything else is left out."""
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
            internal=parse_networks(str(n) for n in data.get("internal") or ()),
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
