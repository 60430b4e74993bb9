"""The credential's placeholder in the broker: where a request may carry it (found as it
is, percent-encoded or in base64), what a credential header to the API host must hold,
the swap for the real credential, and how a new placeholder of the same shape is made.

Stdlib only, no I/O: it runs on the host (``up`` makes the placeholder) and in the egress
sidecar, where it sits beside ``policy.py`` and is imported as the top-level module
``placeholder``.
"""

from __future__ import annotations

import re
import string
import urllib.parse
from collections.abc import Iterable, Mapping

try:  # on the host: modules of the package backends.egress
    from backends.egress.checks import Decision
    from backends.egress.rules import Policy, normal_host
except ImportError:  # in the sidecar: beside them, imported as top-level modules
    from checks import Decision  # type: ignore[no-redef]
    from rules import Policy, normal_host  # type: ignore[no-redef]

#: Headers the placeholder is swapped in (only on requests to an API host).
CREDENTIAL_HEADERS = ("authorization", "x-api-key")
_TOKEN_PREFIX = re.compile(r"^(sk-ant-[a-z]+[0-9]*-)")
_TOKEN_ALPHABET = string.ascii_letters + string.digits


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
