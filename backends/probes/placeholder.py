"""Placeholder probes: the broker's credential swap attacked. The placeholder over plain
HTTP to the API host's port 443, another account's key to the API host, and the
placeholder sent off the API host however it is encoded: each refused.

The bottle's own shell fills in its placeholder (``proxy_client.send``): the probe never
handles the placeholder's value itself.
"""

from __future__ import annotations

import shlex

from backends.probes import net_facts as nf
from backends.probes.base import NOT_APPLICABLE, Target, clip, verdict
from backends.probes.proxy_client import (
    B64,
    PCT,
    PH,
    allowed_host,
    answered,
    api_of,
    marked,
    placeholder_header,
    placeholder_var,
    proxy_of,
    send,
    status_of,
)

#: Another account's key, as an agent with its own account would send it.
OTHER_KEY = "sk-ant-api03-bottleprobe" + "A" * 72 + "-probeAA"


def cleartext_credential(t: Target) -> tuple[str, str]:
    """``GET http://<api host>:443/`` with the placeholder (finding 3: swapped in and sent
    in the clear)."""
    host, port = api_of(t)
    request = marked(
        t,
        f"GET http://{host}:{port}/v1/models HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"{placeholder_header(t)}\r\n",
    )
    reply = send(t, request)
    what = "the placeholder" if placeholder_var(t) else "a request"
    return verdict(answered(reply, "403"), f"{what} over plain HTTP to {host}:{port} -> "
                   f"{status_of(reply)}")  # fmt: skip


def other_key_refused(t: Target) -> tuple[str, str]:
    """Another account's key to the API host (finding 7: forwarded untouched, a way out to
    an account the agent controls): refused."""
    host, port = api_of(t)
    target = host if port == 443 else f"{host}:{port}"
    seen, ok = [], True
    for header in (f"x-api-key: {OTHER_KEY}", f"Authorization: Bearer {OTHER_KEY}"):
        request = marked(
            t, f"GET https://{target}/v1/models HTTP/1.1\r\nHost: {target}\r\n{header}\r\n\r\n"
        )
        reply = send(t, request)
        ok = ok and answered(reply, "403")
        seen.append(f"{header.split(':')[0]} with another key -> {status_of(reply)}")
    return verdict(ok, "; ".join(seen))


def placeholder_encodings(t: Target) -> tuple[str, str]:
    """The placeholder sent to an allowlisted host that is not the API, as it is, as a
    header's name, percent-encoded in the URL, in base64 in the body and gzip-compressed
    (finding 10): each refused. Not checked, and said so: split across requests (the
    placeholder is worthless outside the sidecar; this is a tripwire)."""
    if not placeholder_var(t):
        return NOT_APPLICABLE, "no credential configured: there is no placeholder"
    host, port = allowed_host(t, api=False)
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
    length = len((t.plan.env.get(placeholder_var(t), "") if t.plan else "") or "")
    seen, ok = [], True
    for what, request in cases.items():
        request = request.replace("@LEN64@", str(4 * ((length + 2) // 3)))
        reply = send(t, marked(t, request))
        refused = answered(reply, "403")
        ok = ok and refused
        seen.append(f"{what} -> {status_of(reply)}")
    gz = _gzip_case(t, base, host)
    ok = ok and gz[0]
    seen.append(gz[1])
    seen.append("not checked: split across requests")
    return verdict(ok, f"to {base}: " + "; ".join(seen))


def _gzip_case(t: Target, base: str, host: str) -> tuple[bool, str]:
    """The placeholder gzip-compressed in a body (``Content-Encoding: gzip``): the bottle
    compresses its own placeholder, the sidecar must find it after decoding."""
    phost, pport = proxy_of(t)
    var = placeholder_var(t)
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
