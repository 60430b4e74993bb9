"""Sidecar-bounds probes: the sidecar itself as the target. It dials no inside address
(its loopback, the metadata address, its own), its proxy answers on the bottle's network
only, nothing the bottle writes lands in the operator's state dir, and its log is rotated
at its limit.
"""

from __future__ import annotations

import contextlib
import json
import socket

from backends import paths
from backends.egress import policy as pol
from backends.probes.base import (
    FAIL,
    NOT_APPLICABLE,
    PASS,
    Target,
    egress_of,
    verdict,
)
from backends.probes.proxy_client import (
    answered,
    connect_request,
    proxy_of,
    send,
    sidecar_ip,
    status_of,
)


def inside_addresses(t: Target) -> tuple[str, str]:
    """The sidecar's own loopback, the metadata address and the sidecar's own bottle-side
    address through the proxy (finding 8), and every rule of the live policy read again
    with the rules of this bottle-dash (an older policy may name one)."""
    seen, ok = [], True
    sidecar = sidecar_ip(t) or proxy_of(t)[0]
    for where in ("127.0.0.1:8080", "localhost:8080", "169.254.169.254:80", f"{sidecar}:8080"):
        reply = send(t, connect_request(t, where))
        refused = answered(reply, "403")
        ok = ok and refused
        seen.append(f"CONNECT {where} -> {status_of(reply)}")
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
    from backends.egress.sidecar import REVISION

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
