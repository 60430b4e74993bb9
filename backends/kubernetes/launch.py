"""Making one bottle's objects and provisioning its pod (``backend.launch`` and ``start``).

Provisioning goes through the exec API only (``KubeBottle.cp_in``): the workspace at the
first launch (a copy: nothing written in the pod reaches the operator's folder), the
prompt (always), the egress CA certificate, ``~/.claude.json`` merged, the permission
prompt accepted for an agent that skips permissions, the skills.
"""

from __future__ import annotations

import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends import paths
from backends.agent_files import (
    COPY,
    EGRESS_CA_CERT,
    SEED_CLAUDE_JSON,
    SEED_SETTINGS,
    AgentFile,
    sidecar_secret_files,
    target,
)
from backends.base import GUEST_USER, GUEST_WORKSPACE, LaunchError, ProgressFn
from backends.egress import plan as egress
from backends.kubernetes import client as kc
from backends.kubernetes import objects, pod
from backends.kubernetes.bottle import KubeBottle
from backends.kubernetes.names import REMOVED_LABEL
from backends.kubernetes.plan import INTERNAL
from backends.kubernetes.settings import KubeSettings

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

#: The broker addon's folder (``backends/egress``): its modules go in the addon ConfigMap.
ADDON_SOURCE = Path(__file__).resolve().parent.parent / "egress"
#: Seconds mitmproxy may take to listen once its container runs.
PROXY_TIMEOUT = 180.0


def addon_files() -> dict[str, str]:
    """The broker addon's modules (the sidecar imports them beside each other)."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(ADDON_SOURCE.glob("*.py"))}


def _ensure(core: Any, ns: str, doc: dict[str, Any], agent: str, undo: ExitStack) -> bool:
    """Create ``doc`` unless it exists (undone on failure); True when made now."""
    kind, name = doc["kind"], doc["metadata"]["name"]
    if objects.read(core, ns, kind, name, agent) is not None:
        if kind == "PersistentVolumeClaim":  # kept by an `rm`: in use again
            objects.label_claim(core, ns, name, {REMOVED_LABEL: None}, agent)
        return False
    objects.create(core, ns, doc, agent)
    undo.callback(_quietly, objects.delete, core, ns, kind, name, agent)
    return True


def _quietly(fn: Any, *args: Any) -> None:
    with suppress(Exception):  # rollback must not mask the error that caused it
        fn(*args)


def wait_proxy(core: Any, ns: str, plan: BottlePlan) -> None:
    """Wait until the sidecar's mitmdump says it listens (it imports for seconds)."""
    from backends.egress.sidecar import READY_TEXT

    deadline = time.monotonic() + PROXY_TIMEOUT
    while True:
        try:
            text = core.read_namespaced_pod_log(
                plan.bottle, ns, container=pod.EGRESS_CONTAINER, _request_timeout=kc.CALL_TIMEOUT
            )
        except Exception as exc:
            raise kc.api_error(exc, "reading the egress sidecar's log", plan.agent) from None
        if READY_TEXT.decode() in text:
            return
        if time.monotonic() > deadline:
            raise LaunchError(
                f"the egress sidecar of agent {plan.agent} did not start: "
                + " | ".join(text.strip().splitlines()[-3:]),
                fix=f"kubectl -n {ns} logs {plan.bottle} -c {pod.EGRESS_CONTAINER}",
                agent=plan.agent,
            )
        time.sleep(0.5)


def launch(
    core: Any,
    ns: str,
    settings: KubeSettings,
    plan: BottlePlan,
    undo: ExitStack,
    progress: ProgressFn,
    *,
    fresh: bool,
) -> KubeBottle:
    """Make the claims, Secrets, addon and Pod of ``plan`` (what exists is kept), wait
    until it runs, provision it; every object made is undone on failure (``undo``)."""
    agent = plan.agent
    progress("creating the home and workspace claims")
    _ensure(
        core,
        ns,
        pod.claim(pod.home_claim_name(agent), plan, settings, settings.home_size),
        agent,
        undo,
    )
    new_workspace = _ensure(
        core,
        ns,
        pod.claim(pod.workspace_claim_name(agent), plan, settings, settings.home_size),
        agent,
        undo,
    )
    progress("writing the agent's environment (a Secret)")
    env_doc = pod.secret(pod.env_secret_name(agent), plan, plan.env)
    objects.replace_secret(core, ns, env_doc, agent)
    undo.callback(_quietly, objects.delete, core, ns, "Secret", pod.env_secret_name(agent), agent)
    sealed = egress.is_sealed(plan)
    if sealed:
        from backends.egress.folder import write_sidecar_files

        progress("writing the egress policy and credential (a Secret for the sidecar only)")
        write_sidecar_files(plan, internal=INTERNAL)
        files = egress_files(plan)
        objects.replace_secret(
            core, ns, pod.secret(pod.egress_secret_name(agent), plan, files), agent
        )
        undo.callback(
            _quietly, objects.delete, core, ns, "Secret", pod.egress_secret_name(agent), agent
        )
        objects.replace_config_map(
            core, ns, pod.config_map(pod.addon_map_name(agent), plan, addon_files()), agent
        )
        undo.callback(
            _quietly, objects.delete, core, ns, "ConfigMap", pod.addon_map_name(agent), agent
        )
    progress(f"creating pod {plan.bottle}")
    objects.create(core, ns, pod.pod(plan, settings), agent)
    undo.callback(_quietly, objects.delete, core, ns, "Pod", plan.bottle, agent)

    def logs(container: str) -> str:
        try:
            return str(
                core.read_namespaced_pod_log(
                    plan.bottle, ns, container=container, _request_timeout=kc.CALL_TIMEOUT
                )
            )
        except Exception:
            return ""

    progress(f"waiting for pod {plan.bottle}")
    objects.wait_running(core, ns, plan.bottle, agent, logs)
    if sealed:
        progress("waiting for the egress proxy")
        wait_proxy(core, ns, plan)
    bottle = KubeBottle(kc.kubectl_base(settings, ns), plan.bottle, agent, plan.uid)
    bottle.plan = plan
    provision(bottle, plan, progress, workspace=new_workspace and fresh)
    return bottle


def _merge(bottle: KubeBottle, plan: BottlePlan, seed: AgentFile, merge: Any) -> None:
    """Rewrite the agent's JSON file ``seed`` is copied to as ``merge`` makes it."""
    guest = target(seed, COPY)
    current = bottle.exec(f"cat -- {guest} 2>/dev/null")
    staged = paths.agent_path(plan.agent, seed)
    paths.write_private(staged, merge(current.stdout if current.ok else None))
    bottle.cp_in(staged, guest, mode=0o600)


def provision(
    bottle: KubeBottle, plan: BottlePlan, progress: ProgressFn, *, workspace: bool
) -> None:
    """Provision the pod as ``plan`` says; ``ProvisionError`` names what failed."""
    from backends.claude import API_KEY_ENV, merge_claude_json, merge_claude_settings
    from backends.egress.plan import SKIP_PERMISSIONS

    if workspace and plan.workspace:
        progress(f"copying the workspace {plan.workspace} into its claim")
        bottle.cp_in(Path(plan.workspace), GUEST_WORKSPACE, user=GUEST_USER)
    progress("provisioning: prompt")
    bottle.cp_in(Path(plan.prompt_host), plan.prompt_guest, mode=0o600)
    if egress.is_sealed(plan):
        progress("provisioning: the egress CA certificate")
        cert = Path(plan.extra["egress"]["dir"]) / EGRESS_CA_CERT.name
        bottle.cp_in(cert, target(EGRESS_CA_CERT, COPY), mode=0o644)
    progress("provisioning: ~/.claude.json")
    api_key = plan.env.get(API_KEY_ENV)
    _merge(bottle, plan, SEED_CLAUDE_JSON, lambda now: merge_claude_json(now, api_key=api_key))
    if SKIP_PERMISSIONS in plan.claude_args:
        progress("provisioning: ~/.claude/settings.json")
        bottle.exec("mkdir -p -m 700 ~/.claude")
        _merge(bottle, plan, SEED_SETTINGS, merge_claude_settings)
    for src, dest in plan.skills:
        progress(f"provisioning: skill {Path(src).name}")
        bottle.cp_in(Path(src), dest)


def egress_files(plan: BottlePlan) -> dict[str, str]:
    """The egress Secret's files: what the host wrote in the agent's egress folder."""
    return {
        name: Path(path).read_text(encoding="utf-8") for name, path in sidecar_secret_files(plan)
    }


def push_policy(
    core: Any, ns: str, settings: KubeSettings, plan: BottlePlan, *, running: bool
) -> bool:
    """Rewrite the egress Secret from the host's files and, when the pod runs, replace
    the sidecar's policy file in place (written aside, then renamed). False when the
    running sidecar did not get it."""
    from backends import run as runner
    from backends.agent_files import EGRESS_POLICY
    from backends.egress import policy as pol

    doc = pod.secret(pod.egress_secret_name(plan.agent), plan, egress_files(plan))
    objects.replace_secret(core, ns, doc, plan.agent)
    if not running:
        return False
    text = paths.agent_path(plan.agent, EGRESS_POLICY).read_text(encoding="utf-8")
    target_file = f"{pol.SIDECAR_DIR}/{EGRESS_POLICY.name}"
    argv = [
        *kc.kubectl_base(settings, ns),
        "exec",
        "-i",
        plan.bottle,
        "-c",
        pod.EGRESS_CONTAINER,
        "--",
        "sh",
        "-c",
        'umask 077 && cat > "$1.new" && mv -f "$1.new" "$1"',
        "sh",
        target_file,
    ]
    return runner.run(argv, input=text, timeout=60).ok


def fetch_egress_log(settings: KubeSettings, ns: str, agent: str) -> None:
    """Copy ``egress.log`` and ``egress.log.1`` from the egress container of ``agent``'s
    pod to the host's egress folder (0600); a file the sidecar has not written yet is
    left as the host has it."""
    from backends import run as runner
    from backends.egress import policy as pol
    from backends.kubernetes.names import pod_name

    log = paths.egress_log(agent)
    for path in (log.with_name(log.name + ".1"), log):
        argv = [
            *kc.kubectl_base(settings, ns),
            "exec",
            pod_name(agent),
            "-c",
            pod.EGRESS_CONTAINER,
            "--",
            "sh",
            "-c",
            'test -f "$1" && cat "$1"',
            "sh",
            f"{pol.SIDECAR_DIR}/{path.name}",
        ]
        done = runner.run(argv, timeout=60)
        if done.ok:
            paths.write_private(path, done.stdout.encode())
