"""Credential probes: the real token never reaches the bottle, and only the broker in the
sidecar swaps the bottle's placeholder for it.

The real token is read on the host (from the source the plan names) and never sent into
the bottle: the bottle prints what credential-shaped strings it holds, and the host
compares.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from backends import paths
from backends.egress import policy as pol
from backends.probes.base import (
    CREDENTIAL,
    FAIL,
    NOT_APPLICABLE,
    PASS,
    Probe,
    Target,
    clip,
    egress_value,
    sealed,
)

CREDENTIAL_VARS = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
SEAL_FIX = (
    "launch the agent sealed: the credential comes from `credential` (env:NAME or "
    "file:PATH), reaches only the sidecar, and the bottle holds a placeholder"
)
#: Everything in the bottle a process could read a token from: every process's
#: environment, and credential-shaped strings in the places the agent can write or read.
SCAN_SCRIPT = (
    "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < \"$f\" 2>/dev/null; done; "
    "timeout 60 grep -rhoIsE '(sk-ant-[A-Za-z0-9_-]{8,}|[A-Za-z0-9_-]{32,})' "
    "/home /root /tmp /var/tmp /etc /run /workspace 2>/dev/null | head -c 4000000"
)


def real_credentials(t: Target) -> list[str]:
    """The real token(s) of this agent as the host knows them: the sealed plan's
    credential source, and any credential variable the plan's env carries in the clear."""
    found = []
    source = egress_value(t, "credential", "source")
    if source.startswith("env:"):
        found.append(os.environ.get(source[4:], ""))
    elif source.startswith("file:"):
        with contextlib.suppress(OSError):
            found.append(Path(source[5:]).expanduser().read_text(encoding="utf-8").strip())
    placeholder = _placeholder(t)
    for var in CREDENTIAL_VARS:
        value = (t.plan.env.get(var, "") if t.plan else "") or ""
        if value and value != placeholder:
            found.append(value)
    return [v for v in found if len(v) >= 8]


def token_sources(t: Target) -> tuple[list[str], str]:
    """The real token(s) as the host holds them: the sidecar's credential file and the
    configured source; and why none could be read ("" when some were)."""
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


def _placeholder(t: Target) -> str:
    var = egress_value(t, "credential", "var")
    return (t.plan.env.get(var, "") if t.plan and var else "") or ""


def _unsealed(t: Target, what: str) -> tuple[str, str] | None:
    if sealed(t):
        return None
    clear = [v for v in CREDENTIAL_VARS if t.plan and t.plan.env.get(v)]
    held = f"; the bottle's env carries {', '.join(clear)} in the clear" if clear else ""
    return FAIL, f"no credential broker (the bottle is not sealed){held}: {what}"


def token_absent(t: Target) -> tuple[str, str]:
    """The real token in no file, env or process the bottle can see. The host looks for the
    token it knows (the configured source and the sidecar's copy); when it can read
    neither, the probe cannot look and says so (n/a), never pass."""
    tokens, why_not = token_sources(t)
    if not sealed(t) and tokens:
        return FAIL, "the real credential is in the bottle's env (no broker)"
    early = _unsealed(t, "nothing swaps a placeholder for the real token")
    if early:
        return early
    if why_not:
        return NOT_APPLICABLE, why_not
    if not tokens:
        return NOT_APPLICABLE, "no credential configured for this agent: there is none to leak"
    seen = t.run(SCAN_SCRIPT, user="root", timeout=120).stdout
    leaked = [f"token ending …{tok[-4:]}" for tok in tokens if tok in seen]
    if leaked:
        return FAIL, "the real credential is visible in the bottle: " + ", ".join(leaked)
    return PASS, "the real credential is in no process env and no readable file of the bottle"


def token_not_on_host_views(t: Target) -> tuple[str, str]:
    """Not in ``docker inspect`` of the bottle, the recorded plan, the exec env file, or
    the pane command."""
    tokens = real_credentials(t)
    early = _unsealed(t, "the credential would travel in the plan and the bottle's env")
    if early and tokens:
        return early
    views: dict[str, str] = {
        "the bottle's engine record": str(t.facts.get("container") or t.facts.get("machine")),
        "the pane command": " ".join(t.bottle.claude_argv([], tty=True)),
    }
    for name in (paths.PLAN_FILE, "exec.env"):
        try:
            views[name] = (paths.agent_state_dir(t.agent) / name).read_text(encoding="utf-8")
        except OSError:
            views[name] = ""
    leaks = [where for where, text in views.items() for tok in tokens if tok in text]
    if leaks:
        return FAIL, "the real credential is in " + ", ".join(sorted(set(leaks)))
    if early:
        return early
    return PASS, "the real credential is in none of: " + ", ".join(views)


def ca_key_unreadable(t: Target) -> tuple[str, str]:
    early = _unsealed(t, "there is no per-bottle CA")
    if early:
        return early
    script = (
        "timeout 60 grep -rlsE 'PRIVATE KEY' /home /root /tmp /var/tmp /etc /run /workspace "
        "2>/dev/null | head -20"
    )
    found = [ln for ln in t.run(script, user="root", timeout=90).stdout.splitlines() if ln]
    if found:
        return FAIL, "private keys readable in the bottle: " + clip(", ".join(found))
    return PASS, "no private key (the CA's included) is readable in the bottle"


PROBES = (
    Probe(
        "token-absent",
        CREDENTIAL,
        "the real token is in no file, env or process of the bottle",
        SEAL_FIX,
        token_absent,
    ),
    Probe(
        "token-not-in-host-views",
        CREDENTIAL,
        "the real token is not in docker inspect, the plan, the exec env file or the pane command",
        SEAL_FIX,
        token_not_on_host_views,
    ),
    Probe(
        "ca-key-unreadable",
        CREDENTIAL,
        "the CA's private key is not readable in the bottle",
        SEAL_FIX,
        ca_key_unreadable,
    ),
)
