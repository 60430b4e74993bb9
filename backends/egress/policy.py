"""The egress broker's decisions, under the one name the addon, the launcher and the host
use (``policy.check_request``, ``policy.Policy``...), and the sidecar's own: its files,
the status word and probe marks it answers itself, its addresses, and the words of a
refusal and of a log line.

The decisions live in three siblings, each pure:

- ``rules``: allowlist rules, the addresses no rule opens, the ``Policy`` a sidecar
  enforces (written to ``policy.json``);
- ``checks``: the checks of a tunnel, a TLS hello, a request and a resolved address;
- ``placeholder``: where the credential's placeholder may go, the swap, a new placeholder.

Stdlib only, no I/O: these files run on the host (plans, tests) and, in the folder the
egress sidecar mounts, beside ``addon.py``, which imports them as top-level modules
(``import policy``); so each imports its siblings both ways.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

try:  # on the host: modules of the package backends.egress
    from backends.egress import checks, placeholder, rules
except ImportError:  # in the sidecar: beside this file, imported as top-level modules
    import checks  # type: ignore[no-redef]
    import placeholder  # type: ignore[no-redef]
    import rules  # type: ignore[no-redef]

# The rules.
DEFAULT_API_HOST = rules.DEFAULT_API_HOST
DEFAULT_PORT = rules.DEFAULT_PORT
LOG_MAX_BYTES = rules.LOG_MAX_BYTES
LOG_MIN_BYTES = rules.LOG_MIN_BYTES
Rule = rules.Rule
Policy = rules.Policy
allowlist = rules.allowlist
host_port = rules.host_port
never_reason = rules.never_reason
normal_host = rules.normal_host
parse_ip = rules.parse_ip
parse_networks = rules.parse_networks
parse_rule = rules.parse_rule
# The checks.
ALLOW_KEY = checks.ALLOW_KEY
API_BODY_MAX = checks.API_BODY_MAX
FORWARDING_HEADERS = checks.FORWARDING_HEADERS
Decision = checks.Decision
address_decision = checks.address_decision
announced_body = checks.announced_body
body_too_large = checks.body_too_large
check_host_header = checks.check_host_header
check_request = checks.check_request
check_sni = checks.check_sni
check_target = checks.check_target
check_tunnel_bytes = checks.check_tunnel_bytes
forwarding_headers = checks.forwarding_headers
looks_like_tls = checks.looks_like_tls
# The placeholder.
CREDENTIAL_HEADERS = placeholder.CREDENTIAL_HEADERS
carries = placeholder.carries
check_credentials = placeholder.check_credentials
check_placeholder = placeholder.check_placeholder
placeholder_for = placeholder.placeholder_for
same_shape = placeholder.same_shape
swapped_headers = placeholder.swapped_headers

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
#: Request bodies up to this size are read whole (and searched for the placeholder);
#: larger ones, or ones of unknown length, pass as a stream (searched as they pass).
BUFFER_BODY_BYTES = 1024**2
#: A host no one can register: the bottle's status hooks send their word to it through
#: the proxy; the sidecar answers itself and never forwards (``status_word``).
STATUS_HOST = "status.bottle-dash.invalid"
#: The six words a status hook may send (``backends.claude.STATUS_WORDS``; a unit test
#: keeps them equal: this file may import nothing of the project's but its siblings).
STATUS_WORDS = ("working", "permission", "question", "idle", "error", "exited")
#: A request carrying this header comes from ``bottle-dash probe``: its decisions are
#: logged as probe traffic, and whatever the checks say it is never sent upstream.
PROBE_HEADER = "x-bottle-probe"

_PROBE_MARK = re.compile(r"^[A-Za-z0-9-]{1,32}$")


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
    nets = [ipaddress.ip_network(n) for n in parse_networks(internal)]
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
