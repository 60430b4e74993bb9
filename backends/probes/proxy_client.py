"""The bottle's side of a talk with its own sidecar's proxy, for the probes that attack it.

A probe writes the request (CRLF lines, or raw bytes such as a ClientHello); the bottle's
own shell sends it with whatever client the image has (``nc`` or ``node``) and the host
reads the raw reply back through ``od``. Every request carries the run's probe mark
(``policy.PROBE_HEADER``): the sidecar logs it as probe traffic and answers it itself.
Only ever the bottle's own sidecar, at the proxy address its plan names.
"""

from __future__ import annotations

import secrets
import shlex

from backends.egress import policy as pol
from backends.probes import net_facts as nf
from backends.probes.base import Target, egress_of, egress_value

#: A name no resolver answers and no allowlist names: the host every probe asks for.
DENIED = "bottle-probe-denied.invalid"
#: Marks in a request template, filled in by the bottle's shell from its own env: the
#: probe never handles the placeholder's value itself.
PH, PCT, B64 = "@PH@", "@PCT@", "@B64@"
#: How long ``closed_early`` keeps the connection open for a body that never comes: a
#: sidecar that refuses closes it at once, one that waits for the body keeps it to the end.
HOLD = 8


def mark(t: Target) -> str:
    """This run's probe mark (one per suite run, kept in the target's facts)."""
    value = str(t.facts.get("_mark") or "")
    if not value:
        value = t.facts["_mark"] = "probe-" + secrets.token_hex(4)
    return value


def marked(t: Target, request: str) -> str:
    """``request`` (CRLF lines) with the probe mark as its second line."""
    first, sep, rest = request.partition("\r\n")
    return f"{first}\r\n{pol.PROBE_HEADER}: {mark(t)}\r\n{rest}" if sep else request


def proxy_of(t: Target) -> tuple[str, int]:
    """The sidecar's proxy as the bottle reaches it."""
    return nf.proxy_address(egress_value(t, "proxy"))


def sidecar_ip(t: Target) -> str:
    """The sidecar's address on the bottle's network ("" when it is not known)."""
    sidecar = egress_value(t, "sidecar")
    for net in dict(t.facts.get("networks") or {}).values():
        for member in (net.get("Containers") or {}).values():
            if member.get("Name") == sidecar:
                return str(member.get("IPv4Address") or "").split("/")[0]
    # A machine reaches its sidecar by address: the proxy's own host.
    host = proxy_of(t)[0]
    return host if host.replace(".", "").isdigit() else ""


def allowed_host(t: Target, *, api: bool | None = None) -> tuple[str, int | None]:
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


def api_of(t: Target) -> tuple[str, int]:
    """The API host and port the broker swaps the credential for (443 by default)."""
    host, port = nf.rule_host(egress_value(t, "api"))
    return host, port or 443


def placeholder_var(t: Target) -> str:
    """The bottle's env variable holding the placeholder ("" without a credential)."""
    return egress_value(t, "credential", "var")


def placeholder_header(t: Target) -> str:
    """An ``x-api-key`` header line with the placeholder mark, when there is one."""
    return f"x-api-key: {PH}\r\n" if placeholder_var(t) else ""


# ----------------------------------------------------------------------------- text


def exchange(t: Target, request: str, host: str = "", port: int = 0) -> str:
    """Send ``request`` (CRLF line ends) to the sidecar's proxy from inside the bottle;
    the reply. Only ever the bottle's own sidecar."""
    phost, pport = proxy_of(t)
    wire = nf.wire(marked(t, request))
    script = (
        nf.EXCHANGE_FN
        + f"exchange {shlex.quote(host or phost)} {port or pport} {shlex.quote(wire)}"
    )
    return t.run(script, timeout=60).stdout


def status_line(reply: str) -> str:
    """The first line of a text reply."""
    first = reply.split("\r\n", 1)[0].split("\n", 1)[0]
    return first.strip()


def refused(reply: str) -> bool:
    """Whether a text reply is the proxy's 403."""
    return status_line(reply).startswith(("HTTP/1.1 403", "HTTP/1.0 403"))


# ----------------------------------------------------------------------------- bytes


def exchange_bytes(t: Target, *chunks: str | bytes) -> bytes | None:
    """Send ``chunks`` to the sidecar's proxy, a second apart, from inside the bottle; the
    raw reply (read through ``od``), or None when the bottle has no client (nc or node)."""
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


def send(t: Target, *chunks: str | bytes) -> bytes | None:
    """Send ``chunks`` (a second apart) to the sidecar's proxy from inside the bottle; the
    raw reply, or None when the bottle has no client (nc or node). ``@PH@``, ``@PCT@`` and
    ``@B64@`` in a chunk become the bottle's placeholder as it is, percent-encoded and in
    base64 (from its env, in the bottle's shell)."""
    host, port = proxy_of(t)
    var = placeholder_var(t)
    prep = ""
    if var:
        prep = (
            f'ph="${{{var}}}"; '
            "pct=$(printf %s \"$ph\" | od -An -v -tx1 | tr -d ' \\n' | sed 's/../%&/g'); "
            "b64=$(printf %s \"$ph\" | base64 | tr -d '\\n'); "
        )
    words = []
    for i, chunk in enumerate(chunks):
        wire = shlex.quote(nf.wire(chunk))
        if var:
            prep += (
                f'w{i}=$(printf %s {wire} | sed -e "s/{PH}/$ph/g" -e "s/{PCT}/$pct/g" '
                f'-e "s|{B64}|$b64|g"); '
            )
            words.append(f'"$w{i}"')
        else:
            words.append(wire)
    script = (
        "command -v nc >/dev/null 2>&1 || command -v node >/dev/null 2>&1 "
        "|| { echo no-client; exit 0; }; "
        + prep
        + nf.EXCHANGE_FN
        + f"exchange {shlex.quote(host)} {port} {' '.join(words)} | od -An -v -tx1"
    )
    out = t.run(script, timeout=60).stdout
    if out.strip() == "no-client":
        return None
    return bytes.fromhex("".join(out.split()))


def status_of(reply: bytes | None) -> str:
    """The status line of a raw reply, or "no reply"."""
    if not reply:
        return "no reply"
    return reply.split(b"\r\n", 1)[0].decode("latin-1").strip() or "no reply"


def answered(reply: bytes | None, code: str) -> bool:
    """Whether a raw reply's status is ``code``."""
    return status_of(reply).split()[1:2] == [code]


def connect_request(t: Target, where: str) -> str:
    """A marked ``CONNECT where``."""
    return marked(t, f"CONNECT {where} HTTP/1.1\r\nHost: {where}\r\n\r\n")


def in_tunnel(t: Target, where: str, inner: str | bytes) -> tuple[str, bytes | None]:
    """CONNECT to ``where``, then ``inner`` in the tunnel: (the CONNECT's status line,
    what came back in the tunnel)."""
    raw = send(t, connect_request(t, where), inner)
    if raw is None:
        return "no client", None
    status, rest = nf.split_reply(raw)
    return status or "no reply", rest


def closed_early(t: Target, request: str) -> tuple[bool, str]:
    """Send ``request`` (headers announcing a body that never comes) and hold the
    connection for ``HOLD`` seconds: whether the sidecar closed it long before."""
    host, port = proxy_of(t)
    wire = shlex.quote(nf.wire(marked(t, request)))
    script = (
        "if command -v nc >/dev/null 2>&1; then "
        f"{{ printf '%b' {wire}; sleep {HOLD}; }} | {{ s=$(date +%s); "
        f"nc -w {HOLD + 4} {shlex.quote(host)} {port} >/dev/null 2>&1; "
        'echo "closed-after $(( $(date +%s) - s ))"; }; '
        "elif command -v node >/dev/null 2>&1; then "
        'node -e \'const a=process.argv.slice(1), s=require("net").connect(+a[1], a[0]);'
        ' const t0=Date.now(); s.on("connect",()=>s.write(Buffer.from(a[2]'
        '.replace(/\\\\0([0-7]{3})/g,(m,o)=>String.fromCharCode(parseInt(o,8))),"latin1")));'
        ' s.on("data",()=>{}); s.on("error",()=>{});'
        ' s.on("close",()=>{console.log("closed-after "+Math.round((Date.now()-t0)/1000));'
        f' process.exit(0)}}); setTimeout(()=>{{console.log("closed-after {HOLD + 4}");'
        f" process.exit(0)}}, {(HOLD + 4) * 1000})' {shlex.quote(host)} {port} {wire}; "
        "else echo no-client; fi"
    )
    out = t.run(script, timeout=60).stdout.strip()
    words = out.split()
    if len(words) == 2 and words[0] == "closed-after" and words[1].isdigit():
        seconds = int(words[1])
        return seconds <= HOLD // 2, f"closed by the sidecar after {seconds} s (held {HOLD} s)"
    return False, out or "no answer"
