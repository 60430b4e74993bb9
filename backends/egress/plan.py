"""A sealed launch resolved on the host: names, the credential's source, the placeholder,
the guest env and the sidecar's files. Shared by both backends.

Nothing here prints or records the real credential: the plan holds its *source*
(``env:NAME``, ``file:PATH``) and the variable claude reads it from; the value is read
again at launch and written only to the sidecar's 0600 file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple

from backends import paths
from backends.base import (
    SIDECAR_SUFFIX,
    AgentSpec,
    LaunchError,
    bottle_name,
)
from backends.egress import policy as pol
from backends.egress.spec import CREDENTIAL_VARS, EgressSpec
from backends.guest import GUEST_CA

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

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
PLACEHOLDER_FILE = "placeholder"
ROLE_LABEL = "bottle-dash.role"
ROLE_EGRESS = "egress"
#: On every resource of a sealed bottle: a listing can tell "sidecar gone" from "unsealed".
SEALED_LABEL = "bottle-dash.sealed"


def sidecar_name(agent: str) -> str:
    """The egress sidecar container (or stand-in machine's sidecar) of ``agent``."""
    return bottle_name(agent, SIDECAR_SUFFIX)


def outer_network_name(agent: str) -> str:
    """The sidecar's second, ordinary network: its way to the world."""
    return bottle_name(agent, "-out")


def egress_dir(agent: str) -> Path:
    """Host directory mounted into the sidecar only: policy, credential, CA, log."""
    return paths.agent_state_dir(agent) / "egress"


def egress_log(agent: str) -> Path:
    """The agent's egress log (one JSON line per decision)."""
    return egress_dir(agent) / pol.LOG_FILE


class Credential(NamedTuple):
    """Where the real credential comes from, and which variable claude reads it from."""

    source: str
    var: str = ""
    value: str = ""

    @property
    def present(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:  # never the secret itself
        return f"Credential(source={self.source!r}, var={self.var!r})"


def _var_for(value: str) -> str:
    return CREDENTIAL_VARS[0] if value.startswith("sk-ant-oat") else CREDENTIAL_VARS[1]


def resolve_credential(
    spec: EgressSpec, environ: Mapping[str, str], agent: str, where: str = ""
) -> Credential:
    """Read the credential ``spec`` names (``LaunchError`` when it names one that is not
    there); ``Credential("none")`` when there is none to broker."""
    source = spec.credential
    if source == "none":
        return Credential("none")
    if not source:
        for var in CREDENTIAL_VARS:
            if environ.get(var):
                return Credential(f"env:{var}", var, environ[var].strip())
        return Credential("none")
    kind, _, name = source.partition(":")
    if kind == "env":
        value = environ.get(name, "").strip()
        if not value:
            raise LaunchError(
                f"credential of agent {agent}{where}: {name} is not set in bottle-dash's "
                "environment",
                fix=f"export {name}=... before starting bottle-dash, or change `credential`",
                agent=agent,
            )
        return Credential(source, name if name in CREDENTIAL_VARS else _var_for(value), value)
    path = Path(name).expanduser()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise LaunchError(
            f"credential of agent {agent}{where}: file {path} cannot be read: {exc}",
            fix="create it (mode 0600) with the token from `claude setup-token`, or change "
            "`credential`",
            agent=agent,
        ) from None
    if not value:
        raise LaunchError(
            f"credential of agent {agent}{where}: file {path} is empty",
            fix="write the token into it, or change `credential`",
            agent=agent,
        )
    return Credential(f"file:{path}", _var_for(value), value)


def placeholder(agent: str, credential: Credential) -> str:
    """The bottle's stand-in for ``credential``: kept in the egress directory and made
    again only when the credential's shape changed."""
    if not credential.present:
        return ""
    file = egress_dir(agent) / PLACEHOLDER_FILE
    try:
        old = file.read_text(encoding="utf-8").strip()
    except OSError:
        old = ""
    if old and old != credential.value and pol.same_shape(credential.value, old):
        return old
    new = pol.placeholder_for(credential.value)
    paths.write_private(file, new.encode())
    return new


def api_target(spec: EgressSpec) -> tuple[str, int]:
    """The host:port the credential goes to: the gateway when set, else the API host."""
    return pol.host_port(spec.api_base) if spec.api_base else (pol.DEFAULT_API_HOST, 443)


def check_api_base(api_base: str) -> str:
    """Why ``api_base`` cannot take the credential ("" when it can): only an ``https://``
    URL, so the credential never crosses the network in the clear."""
    if api_base and not api_base.lower().startswith("https://"):
        return (
            f"{api_base!r} is not an https:// URL: the credential would cross the network "
            "in the clear"
        )
    return ""


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
        }
    )
    plan.extra["egress"] = info


#: Backends whose bottles get an egress sidecar; others run unsealed and say so.
SEALABLE_BACKENDS = frozenset({"docker", "smolmachines"})
SEALED = "sealed"
SIDECAR_DOWN = "sidecar down"
UNSEALED = "unsealed"


def configured_egress(agent: AgentSpec) -> str:
    """What the config makes of an agent's egress: ``sealed`` or ``unsealed`` (configured
    so, or a backend without a sidecar)."""
    sealed = agent.egress.sealed and agent.backend in SEALABLE_BACKENDS
    return SEALED if sealed else UNSEALED


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


def policy_of(plan: BottlePlan, internal: Sequence[str] = ()) -> pol.Policy:
    """The sidecar's policy for ``plan``; ``internal``: the subnets of the sidecar's
    bottle-side network (where it listens; never dialled)."""
    info = plan.extra["egress"]
    return pol.Policy(
        agent=plan.agent,
        allow=tuple(pol.parse_rule(r) for r in info["allow"]),
        api=pol.host_port(info["api"]),
        placeholder=plan.env.get(info["credential"]["var"], "")
        if info["credential"]["var"]
        else "",
        internal=tuple(internal),
    )


def write_sidecar_files(
    plan: BottlePlan, environ: Mapping[str, str] | None = None, internal: Sequence[str] = ()
) -> Path:
    """Write the sidecar's policy and credential (0600) into the egress directory; make
    the CA when missing. Returns the CA certificate (the bottle's copy). ``internal``: the
    subnets of the sidecar's bottle-side network (``policy_of``)."""
    from backends.egress.ca import ensure_ca

    info = plan.extra["egress"]
    directory = Path(info["dir"])
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    cert = ensure_ca(directory, plan.agent)
    paths.write_private(directory / pol.POLICY_FILE, policy_of(plan, internal).to_json().encode())
    source = str(info["credential"]["source"])
    value = ""
    if source != "none":
        environ = os.environ if environ is None else environ
        spec = EgressSpec(credential=source)
        value = resolve_credential(spec, environ, plan.agent).value
    paths.write_private(directory / pol.CREDENTIAL_FILE, value.encode())
    upstream = str(info.get("upstream_ca") or "")
    if upstream:
        try:
            data = Path(upstream).read_bytes()
        except OSError as exc:
            raise LaunchError(
                f"upstream_ca {upstream} of agent {plan.agent} cannot be read: {exc}",
                agent=plan.agent,
            ) from None
        paths.write_private(directory / UPSTREAM_CA_FILE, data)
    return cert


#: The CA bundle the sidecar trusts for upstream TLS (copied from ``upstream_ca``).
UPSTREAM_CA_FILE = "upstream-ca.pem"
#: The sidecar image's public roots (Debian's ca-certificates, one hashed file each).
SYSTEM_CA_DIR = "/etc/ssl/certs"


#: Replaced by the sidecar's launcher with its address on the bottle-side network.
LISTEN_MARK = "{listen}"
#: The sidecar's command, run from the addon's folder: ``launch.py`` finds the sidecar's
#: address on the bottle's network (``policy.json``'s ``internal``) and runs mitmdump
#: listening there only.
LAUNCHER = "launch.py"


def mitmdump_argv(plan: BottlePlan, addon: str) -> list[str]:
    """The sidecar's command: the launcher, then mitmdump with the broker addon listening on
    the bottle-side address only, lazy upstream connections (nothing is dialled before
    every check has passed), no raw TCP relaying (a tunnel's bytes are TLS the sidecar
    reads, or HTTP), HTTP/1.1 only (HTTP/2 adds a request target in ``:path`` and bodies
    of no announced size; every client the agent image holds speaks HTTP/1.1) and quiet
    output."""
    argv = [
        "python3",
        str(PurePosixPath(addon).parent / LAUNCHER),
        "python3",
        "-c",
        "from mitmproxy.tools.main import mitmdump; mitmdump()",
        "--mode",
        f"regular@{LISTEN_MARK}:{pol.PROXY_PORT}",
        "--set",
        f"confdir={pol.SIDECAR_DIR}",
        "--set",
        "connection_strategy=lazy",
        "--set",
        "rawtcp=false",
        "--set",
        "http2=false",
        "--set",
        "flow_detail=0",
        "-s",
        addon,
    ]
    if (plan.extra.get("egress") or {}).get("upstream_ca"):
        # mitmproxy trusts this file *instead of* its public roots; the image's hashed
        # system roots keep public hosts (the API, github.com) verified beside it.
        argv += ["--set", f"ssl_verify_upstream_trusted_ca={pol.SIDECAR_DIR}/{UPSTREAM_CA_FILE}"]
        argv += ["--set", f"ssl_verify_upstream_trusted_confdir={SYSTEM_CA_DIR}"]
    return argv


def allow_live(agent: str, rule: str) -> bool:
    """Add ``rule`` to the policy of the agent's running sidecar (it re-reads the file on
    change) and to the recorded plan; False when the agent has no sealed bottle."""
    directory = egress_dir(agent)
    file = directory / pol.POLICY_FILE
    try:
        current = pol.Policy.from_json(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError):
        return False
    new = pol.parse_rule(rule)
    if new not in current.allow:
        current = pol.Policy(current.agent, (*current.allow, new), current.api, current.placeholder)
        paths.write_private(file, current.to_json().encode())
    recorded = paths.saved_plan(agent)
    if recorded is not None and is_sealed(recorded):
        allow = recorded.extra["egress"]["allow"]
        if str(new) not in allow:
            allow.append(str(new))
            paths.save_plan(recorded)
    return True
