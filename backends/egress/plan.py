"""The egress part of a plan, resolved on the host and shared by both backends: the names
of the sidecar and its networks, claude's permission flag, the guest env (proxy, CA,
placeholder, telemetry off), what ``plan`` says of it, and live allowlist edits.

Nothing here prints or records the real credential: the plan holds its *source*
(``env:NAME``, ``file:PATH``; ``backends.egress.credential``) and the variable claude reads
it from; the value is read again at launch and written only to the sidecar's 0600 file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends import paths
from backends.agent_files import EGRESS_POLICY
from backends.base import (
    SIDECAR_SUFFIX,
    AgentSpec,
    LaunchError,
    bottle_name,
)
from backends.egress import policy as pol
from backends.egress.spec import CREDENTIAL_VARS
from backends.guest import GUEST_CA
from backends.paths import egress_dir, egress_log

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

__all__ = [
    "ASK_MODE",
    "GUEST_CA",
    "PROXY_VARS",
    "ROLE_EGRESS",
    "ROLE_LABEL",
    "SEALABLE_BACKENDS",
    "EGRESS_SEALED",
    "SEALED_LABEL",
    "EGRESS_SIDECAR_DOWN",
    "SKIP_PERMISSIONS",
    "TELEMETRY_ENV",
    "EGRESS_UNSEALED",
    "allow_live",
    "apply",
    "configured_egress",
    "describe",
    "egress_dir",
    "egress_log",
    "guest_env",
    "is_sealed",
    "network_name",
    "outer_network_name",
    "permission_mode",
    "point_proxy",
    "seal_plan",
    "sidecar_name",
]

SKIP_PERMISSIONS = "--dangerously-skip-permissions"
#: What an agent that does not skip permissions runs with: claude asks before each tool.
ASK_MODE = ("--permission-mode", "default")
#: Claude Code's optional traffic off, on every exec.
TELEMETRY_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
}
ROLE_LABEL = "bottle-dash.role"
ROLE_EGRESS = "egress"
#: On every resource of a sealed bottle: a listing can tell "sidecar gone" from "unsealed".
SEALED_LABEL = "bottle-dash.sealed"


def sidecar_name(agent: str) -> str:
    """The egress sidecar container (or stand-in machine's sidecar) of ``agent``."""
    return bottle_name(agent, SIDECAR_SUFFIX)


def network_name(agent: str) -> str:
    """The bottle-side network: a docker bottle's only one (for a sealed bottle internal:
    its sidecar's other network, ``outer_network_name``, is the only way out), or the
    network a smolvm machine reaches its sidecar on."""
    return bottle_name(agent, "-net")


def outer_network_name(agent: str) -> str:
    """The sidecar's second, ordinary network: its way to the world."""
    return bottle_name(agent, "-out")


PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


def point_proxy(plan: BottlePlan, host: str) -> None:
    """Aim the guest's proxy variables at ``host`` (a microVM reaches its sidecar by the
    address it learns at launch, not by name)."""
    proxy = f"http://{host}:{pol.PROXY_PORT}"
    for var in PROXY_VARS:
        plan.env[var] = proxy
    plan.extra["egress"]["proxy"] = proxy


def guest_env(proxy: str, ca: str, credential_var: str, placeholder_value: str) -> dict[str, str]:
    """What every exec in a sealed bottle carries."""
    env = {
        **dict.fromkeys(PROXY_VARS, proxy),
        "NO_PROXY": "localhost,127.0.0.1,::1",
        "no_proxy": "localhost,127.0.0.1,::1",
        "NODE_EXTRA_CA_CERTS": ca,
        "SSL_CERT_FILE": ca,
        "REQUESTS_CA_BUNDLE": ca,
        "GIT_SSL_CAINFO": ca,
        "CURL_CA_BUNDLE": ca,
        "NODE_USE_ENV_PROXY": "1",
        # A sealed bottle is the sandbox claude asks for: with it, claude accepts
        # --dangerously-skip-permissions as root too (an agent whose workspace root owns).
        "IS_SANDBOX": "1",
        **TELEMETRY_ENV,
    }
    if credential_var and placeholder_value:
        env[credential_var] = placeholder_value
    return env


def apply(
    plan: BottlePlan,
    agent: AgentSpec,
    *,
    proxy_host: str,
    environ: Mapping[str, str] | None = None,
    networks: Mapping[str, str] | None = None,
) -> None:
    """Add the egress part to ``plan`` (``plan.extra["egress"]``, the guest env, claude's
    permission flag). ``proxy_host`` is how the bottle reaches its sidecar."""
    spec = agent.egress
    where = f" (from {agent.source})" if agent.source else ""
    info: dict[str, Any] = {"sealed": spec.sealed, "skip_permissions": spec.unattended}
    if spec.unattended and SKIP_PERMISSIONS not in plan.claude_args:
        plan.claude_args.insert(0, SKIP_PERMISSIONS)
    elif not spec.unattended and not any(
        a == ASK_MODE[0] or a.startswith(ASK_MODE[0] + "=") for a in plan.claude_args
    ):
        # "ask" must mean ask: claude 2.1.332 was seen opening in "auto mode" without it.
        # A permission mode the agent's claude_args name wins.
        plan.claude_args[:0] = ASK_MODE
    if not spec.sealed:
        info["warning"] = "UNSEALED: the bottle's traffic is not filtered (sealed = false)"
        plan.extra["egress"] = info
        return
    for var in CREDENTIAL_VARS:
        if var in plan.env:
            raise LaunchError(
                f"env of agent {agent.name}{where} sets {var}: a sealed bottle must not hold "
                "the real credential",
                fix=f'remove it from env and set credential = "env:{var}" (the sidecar brokers it)',
                agent=agent.name,
            )
    # Here: listing (`ls`) reads what the config says of egress, never the credential.
    from backends.egress.credential import (
        api_target,
        check_api_base,
        placeholder,
        resolve_credential,
    )

    why = check_api_base(spec.api_base)
    if why:
        raise LaunchError(
            f"api_base of agent {agent.name}{where}: {why}",
            fix='use the gateway\'s https:// URL, e.g. api_base = "https://llm-gw.corp:8443"',
            agent=agent.name,
        )
    environ = os.environ if environ is None else environ
    credential = resolve_credential(spec, environ, agent.name, where)
    api = api_target(spec)
    try:
        rules = pol.allowlist(spec.allow, api)
    except ValueError as exc:
        raise LaunchError(
            f"egress_allow of agent {agent.name}{where}: {exc}", agent=agent.name
        ) from None
    holder = placeholder(agent.name, credential)
    proxy = f"http://{proxy_host}:{pol.PROXY_PORT}"
    plan.env.update(guest_env(proxy, GUEST_CA, credential.var, holder))
    # Nothing the bottle writes lands on the host: its status hooks send their word to the
    # sidecar (``claude.status_hook_command``), so it gets no status mount.
    plan.status_dir = None
    plan.labels[SEALED_LABEL] = "true"
    if spec.api_base:
        plan.env["ANTHROPIC_BASE_URL"] = spec.api_base
    info.update(
        {
            "sidecar": sidecar_name(agent.name),
            "networks": dict(networks or {}),
            "allow": [str(r) for r in rules],
            "api": f"{api[0]}:{api[1]}",
            "api_base": spec.api_base,
            "credential": {"source": credential.source, "var": credential.var},
            "proxy": proxy,
            "ca_guest": GUEST_CA,
            "dir": str(egress_dir(agent.name)),
            "upstream_ca": str(spec.upstream_ca) if spec.upstream_ca else "",
            "budget": spec.budget,
            "price": spec.price,
        }
    )
    plan.extra["egress"] = info


def seal_plan(plan: BottlePlan, agent: AgentSpec) -> None:
    """The egress part of ``plan`` (unless configured unsealed): the sidecar container
    and networks of both backends, reached by name until a backend learns its address."""
    apply(
        plan,
        agent,
        proxy_host=sidecar_name(agent.name),
        networks={
            "internal": network_name(agent.name),
            "outer": outer_network_name(agent.name),
        },
    )
    if is_sealed(plan):
        # Here, not at the top: the image builder (tempfile, locks) is not for `ls`.
        from backends.egress.image import sidecar_tag

        plan.extra["egress"]["image"] = sidecar_tag()


#: Backends whose bottles get an egress sidecar; others run unsealed and say so.
SEALABLE_BACKENDS = frozenset({"docker", "smolmachines", "kubernetes"})
#: A bottle's egress as the listing shows it (not the probes' verdict: SEAL_VERIFIED).
EGRESS_SEALED = "sealed"
EGRESS_SIDECAR_DOWN = "sidecar down"
EGRESS_UNSEALED = "unsealed"


def configured_egress(agent: AgentSpec) -> str:
    """What the config makes of an agent's egress: ``sealed`` or ``unsealed`` (configured
    so, or a backend without a sidecar)."""
    sealed = agent.egress.sealed and agent.backend in SEALABLE_BACKENDS
    return EGRESS_SEALED if sealed else EGRESS_UNSEALED


def permission_mode(agent: AgentSpec) -> str:
    """``skip`` (claude runs with --dangerously-skip-permissions) or ``ask``."""
    unattended = agent.egress.unattended and (
        agent.backend in SEALABLE_BACKENDS or agent.egress.skip_permissions is True
    )
    return "skip" if unattended else "ask"


def describe(plan: BottlePlan) -> list[str]:
    """The egress part of a dry run in words (the credential's source, never its value)."""
    info = plan.extra.get("egress") or {}
    mode = (
        "unattended (--dangerously-skip-permissions)"
        if info.get("skip_permissions")
        else ("asks for permission")
    )
    if not info.get("sealed"):
        return [
            str(info.get("warning") or "UNSEALED: no egress control"),
            f"claude: {mode}",
        ]
    nets = info.get("networks") or {}
    cred = info.get("credential") or {}
    cred_text = (
        "none (claude will ask to log in)"
        if cred.get("source") == "none"
        else f"{cred.get('source')} -> sidecar only; the bottle gets a placeholder in "
        f"{cred.get('var')}"
    )
    if not nets and info.get("internal"):
        # kubernetes: the sidecar is a container of the bottle's own pod
        return [
            f"sealed: sidecar container in the pod ({info.get('image', '')}) at "
            f"{info.get('proxy')} (the pod's loopback)",
            "pod network: only the sidecar's uid leaves the pod (the init container's "
            "iptables rules); nothing to the node or link-local addresses",
            f"allow: {', '.join(info.get('allow') or [])}",
            f"credential: {cred_text}; swapped only for {info.get('api')}",
            f"claude: {mode}",
        ]
    return [
        f"sealed: sidecar {info.get('sidecar')} ({info.get('image', '')}) at {info.get('proxy')}",
        f"networks: {nets.get('internal')} (internal, "
        f"{'the host relays to the sidecar' if info.get('host_address') else 'no host address'}"
        f"), {nets.get('outer')} (sidecar only)",
        *(
            [
                f"machine: --allow-cidr {info['allow_cidr']} and "
                f"--dns {str(info['allow_cidr']).split('/')[0]} only"
            ]
            if info.get("allow_cidr")
            else []
        ),
        f"allow: {', '.join(info.get('allow') or [])}",
        f"credential: {cred_text}; swapped only for {info.get('api')}",
        f"claude: {mode}",
    ]


def is_sealed(plan: BottlePlan) -> bool:
    """Whether ``plan`` launches a sealed bottle (plans from before egress are not)."""
    return bool((plan.extra.get("egress") or {}).get("sealed"))


def allow_live(agent: str, rule: str) -> bool:
    """Add ``rule`` to the policy of the agent's running sidecar (it re-reads the file on
    change) and to the recorded plan; False when the agent has no sealed bottle."""
    file = paths.agent_path(agent, EGRESS_POLICY)
    try:
        current = pol.Policy.from_json(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError):
        return False
    new = pol.parse_rule(rule)
    if new not in current.allow:
        # Everything else stays: the networks (a restarted sidecar listens by them), log size.
        current = current._replace(allow=(*current.allow, new))
        paths.write_private(file, current.to_json().encode())
    recorded = paths.saved_plan(agent)
    if recorded is not None and is_sealed(recorded):
        allow = recorded.extra["egress"]["allow"]
        if str(new) not in allow:
            allow.append(str(new))
            paths.save_plan(recorded)
        from backends.base import UnknownBackend
        from backends.registry import get_backend  # a sidecar that cannot read the file

        try:
            backend = get_backend(recorded.backend)
        except (UnknownBackend, ImportError):
            return True  # no such backend here: nothing but the file to change
        return backend.policy_changed(recorded)
    return True
