"""The egress broker's decisions as pure functions: allowlist rules, the three-way host
check (CONNECT host, TLS SNI, HTTP Host), the credential swap and the log line.

Stdlib only: this file runs on the host (plans, tests) and, copied beside ``addon.py``, in
the egress sidecar, where the mitmproxy addon calls it. Nothing here does I/O.

A rule is ``host`` (port 443), ``host:port``, ``*.domain`` (any subdomain, not the domain
itself) or ``*.domain:port``. Port 80 is reachable only where a rule names it.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

DEFAULT_API_HOST = "api.anthropic.com"
DEFAULT_PORT = 443
#: The config key an operator adds a host to (named in every 403).
ALLOW_KEY = "egress_allow"
#: Headers the placeholder is swapped in (only on requests to an API host).
CREDENTIAL_HEADERS = ("authorization", "x-api-key")
#: Where the sidecar's files live (a host directory mounted into the sidecar only).
SIDECAR_DIR = "/egress"
POLICY_FILE = "policy.json"
CREDENTIAL_FILE = "credential"
LOG_FILE = "egress.log"
CA_FILE = "mitmproxy-ca.pem"  # key + certificate: host (0600) and sidecar only
CA_CERT_FILE = "mitmproxy-ca-cert.pem"  # certificate only: provisioned into the bottle
PROXY_PORT = 8080

_HOST_RE = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_TOKEN_PREFIX = re.compile(r"^(sk-ant-[a-z]+[0-9]*-)")
_TOKEN_ALPHABET = string.ascii_letters + string.digits


class Rule(NamedTuple):
    """One allowlist entry: a host (or ``*.domain``) and a port."""

    host: str
    port: int = DEFAULT_PORT

    def matches(self, host: str, port: int) -> bool:
        host = normal_host(host)
        if port != self.port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host

    def __str__(self) -> str:
        return self.host if self.port == DEFAULT_PORT else f"{self.host}:{self.port}"


def normal_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets."""
    return host.strip().lower().rstrip(".").strip("[]")


def parse_rule(text: str) -> Rule:
    """``host``, ``host:port``, ``*.domain`` or ``*.domain:port`` -> ``Rule``; ``ValueError``
    says what is wrong (no scheme, no path, a port from 1 to 65535)."""
    raw = text.strip().lower()
    if "://" in raw or "/" in raw:
        raise ValueError(f"{text!r} is not a host: write the host only, e.g. 'github.com'")
    host, port = raw, DEFAULT_PORT
    if raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{text!r} has a bad port (1-65535)")
        port = int(port_text)
    host = host.rstrip(".")
    if not host or not _HOST_RE.match(host) or len(host) > 253:
        raise ValueError(f"{text!r} is not a host name (letters, digits, '-', '.', '*.' first)")
    return Rule(host, port)


def host_port(url_or_host: str) -> tuple[str, int]:
    """``https://gw.example:8443/v1`` -> ``("gw.example", 8443)``; a bare host -> port 443
    (``http://`` -> 80)."""
    text = url_or_host.strip()
    default = DEFAULT_PORT
    if "://" in text:
        scheme, _, text = text.partition("://")
        default = 80 if scheme.lower() == "http" else DEFAULT_PORT
    text = text.split("/", 1)[0]
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return normal_host(host), int(port)
    return normal_host(text), default


class Policy(NamedTuple):
    """What one bottle's sidecar enforces (written to ``policy.json`` for the sidecar)."""

    agent: str
    allow: tuple[Rule, ...] = (Rule(DEFAULT_API_HOST),)
    #: Where the credential is swapped in: the API host, or the configured gateway.
    api: tuple[str, int] = (DEFAULT_API_HOST, DEFAULT_PORT)
    #: The bottle's stand-in for the credential ("" when the bottle gets none).
    placeholder: str = ""

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
    #: Which check decided: connect, sni, host, request, placeholder.
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


def check_host_header(policy: Policy, target: str, port: int, header: str | None) -> Decision:
    """The request's Host (or :authority) must name the host the request goes to; then the
    host:port must be allowed."""
    target = normal_host(target)
    if header:
        named, _ = host_port(header)
        if named != target:
            return Decision(
                False,
                target,
                port,
                "host",
                f"Host header {named!r} does not match the request's host {target!r}",
            )
    return check_target(policy, target, port, "request")


def carries(placeholder: str, parts: Iterable[str | bytes]) -> bool:
    """Whether any of ``parts`` (header values, URL, body) holds the placeholder."""
    if not placeholder:
        return False
    needle = placeholder.encode()
    for part in parts:
        if isinstance(part, bytes):
            if needle in part:
                return True
        elif placeholder in part:
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


def deny_body(decision: Decision, agent: str) -> str:
    """The body of a 403: what was refused, and the config key that would allow it."""
    if decision.check == "placeholder":
        return (
            f"bottle-dash egress: request refused: {decision.reason}.\n"
            f"The bottle holds a placeholder, never the real credential.\n"
        )
    rule = decision.host if decision.port == DEFAULT_PORT else f"{decision.host}:{decision.port}"
    return (
        f"bottle-dash egress: {decision.host}:{decision.port} refused for agent {agent}: "
        f"{decision.reason}.\n"
        f'To allow it, add "{rule}" to {ALLOW_KEY} in [agents.{agent}] (or [defaults]) '
        f"of the bottle-dash config, then `bottle-dash up {agent}`.\n"
    )


def deny_reason(decision: Decision, agent: str) -> str:
    """The 403's reason phrase: one line that names the host and the config key, for
    clients that show the status line of a refused CONNECT but never its body (pip, npm,
    ``curl -v``, ``GIT_CURL_VERBOSE=1 git``)."""
    rule = decision.host if decision.port == DEFAULT_PORT else f"{decision.host}:{decision.port}"
    if decision.check == "placeholder":
        text = f"bottle-dash egress: credential placeholder refused for {rule}"
    elif decision.check in ("sni", "host"):
        text = f"bottle-dash egress: the {decision.check} does not match {rule}"
    else:
        text = f"bottle-dash egress: {rule} is not in {ALLOW_KEY} of agent {agent}"
    # A reason phrase is visible ASCII and spaces only (RFC 9112).
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:200]


def log_line(decision: Decision, *, ts: str, method: str = "", client: str = "") -> str:
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
