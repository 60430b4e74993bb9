"""The kubernetes backend against the real test cluster (tests/fakes/kube): launch a
sealed agent's pod, the agent writes its workspace, list, stop, start, remove (nothing
left); the seal proven from inside the pod against an upstream this module creates; the
dashboard's listing with a kube agent.

Traffic goes only to pods this module creates and to the node's address on the cluster's
own bridge (which a sealed pod must not reach).
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.kube_helpers import apply, container, kubectl, pod, pod_ip, wait_ready
from tests.support import RUN_ID, agent_name

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(1800)]

WEB_PORT = 8080
OTHER_PORT = 9090
TOKEN = "sk-ant-test-" + RUN_ID + "-real-credential"


@pytest.fixture(scope="module")
def kube_images(kube_cluster: Any, test_image: str, egress_image: str) -> dict[str, str]:
    """The test agent image, the egress sidecar image and the seal image bottle-dash
    builds (``image build --seal``: the pods' default), imported into the cluster's
    containerd. The seal image is assembled offline once per machine (minutes)."""
    from backends.kubernetes.image import SEAL_SPEC
    from tests.fakes.kube import cluster
    from tests.integration.conftest import _build_offline

    seal = _build_offline(SEAL_SPEC, "the kubernetes seal image")
    tags = {"agent": test_image, "egress": egress_image, "seal": seal}
    for tag in tags.values():
        cluster.import_image(tag)
    return tags


@pytest.fixture(scope="module")
def upstream(kube_cluster: Any, kube_images: dict[str, str]) -> Iterator[str]:
    """A pod serving HTTP on two ports (the world a sealed agent may or may not reach);
    its address."""
    name = agent_name("upstream")
    script = (
        "mkdir -p /tmp/www && echo reached-upstream > /tmp/www/index.html && "
        f"httpd -p {WEB_PORT} -h /tmp/www && httpd -p {OTHER_PORT} -h /tmp/www && "
        "exec sleep 3600"
    )
    apply(kube_cluster, pod(name, [container("web", kube_images["agent"], script, uid=1000)]))
    wait_ready(kube_cluster, name)
    yield pod_ip(kube_cluster, name)
    kubectl(kube_cluster, "delete", "pod", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def on_node(kube_cluster: Any) -> Iterator[tuple[str, int]]:
    """An HTTP server this module runs on the node's address (the pods' gateway, where
    the kubelet listens too): every pod on the bridge reaches it unless sealed."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"reached-node\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((kube_cluster.node_ip, 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield kube_cluster.node_ip, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def kube_config(
    kube_cluster: Any,
    kube_images: dict[str, str],
    upstream: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """A config file naming the test cluster (the seal image left to its default), with
    one sealed agent allowed to reach the upstream's web port; loaded (which hands the
    [kubernetes] table to the backend)."""
    from backends.kubernetes import client
    from bottle_dash.config import load_config

    monkeypatch.setenv("BOTTLE_DASH_KUBECTL", str(kube_cluster.kubectl))
    monkeypatch.setenv("BOTTLE_TEST_TOKEN", TOKEN)
    client.reset()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "README.md").write_text("from the operator's workspace\n")
    name = agent_name("kube")
    config = tmp_path / "config.toml"
    config.write_text(
        "[kubernetes]\n"
        f"kubeconfig = {json.dumps(str(kube_cluster.kubeconfig))}\n"
        f"namespace = {json.dumps(kube_cluster.namespace)}\n"
        'image_pull_policy = "Never"\n'
        f"[agents.{name}]\n"
        'backend = "kubernetes"\n'
        f"image = {json.dumps(kube_images['agent'])}\n"
        f"workspace = {json.dumps(str(workspace))}\n"
        'prompt = "write the workspace"\n'
        'credential = "env:BOTTLE_TEST_TOKEN"\n'
        f'egress_allow = ["{upstream}:{WEB_PORT}"]\n'
    )
    return load_config(config)


@pytest.fixture
def launched(kube_config: Any, kube_cluster: Any) -> Iterator[tuple[Any, str]]:
    """The config's agent launched; removed with its volumes at the end whatever happens."""
    from backends.kubernetes.backend import KubernetesBackend

    backend = KubernetesBackend()
    (name,) = kube_config.agents
    steps: list[str] = []
    backend.launch(backend.prepare(kube_config.agents[name]), steps.append)
    assert steps[-1] == "ready"
    yield backend, name
    try:
        backend.remove(name, volumes=True)
    except Exception:
        kubectl(
            kube_cluster,
            "delete",
            "pod,secret,configmap,pvc",
            "-l",
            f"bottle-dash.agent={name}",
            check=False,
        )


def _objects(info: Any, agent: str) -> list[str]:
    """Every object labelled as ``agent``'s in the namespace."""
    out = kubectl(
        info, "get", "pods,secrets,configmaps,pvc", "-l", f"bottle-dash.agent={agent}",
        "-o", "name",
    ).stdout  # fmt: skip
    return out.split()


def test_launch_write_list_stop_start_remove(
    launched: tuple[Any, str], kube_cluster: Any, kube_config: Any
) -> None:
    from backends.base import RUNNING, STOPPED

    backend, name = launched
    (info,) = [i for i in backend.list_bottles() if i.agent == name]
    assert (info.state, info.backend, info.egress) == (RUNNING, "kubernetes", "sealed")
    assert info.bottle == f"bottle-{name}"
    assert info.labels["bottle-dash.owner"].startswith("uid")

    bottle = backend.bottle(name)
    wrote = bottle.exec(
        "id -u; cat /workspace/README.md; echo agent-was-here > /workspace/out.txt"
        " && cat ~/.bottle-dash/prompt.md"
    )
    assert wrote.ok, wrote.stderr
    assert wrote.stdout.splitlines()[:2] == ["1000", "from the operator's workspace"]
    assert "write the workspace" in wrote.stdout
    argv = bottle.claude_argv(["--version"], tty=False)
    assert argv[-2:] == ["claude", "--version"]
    assert "exec" in argv and "-c" in argv

    backend.stop(name)
    (stopped,) = [i for i in backend.list_bottles() if i.agent == name]
    assert stopped.state == STOPPED
    assert kubectl(kube_cluster, "get", "pod", f"bottle-{name}", check=False).returncode != 0

    again = backend.start(name)
    kept = again.exec("cat /workspace/out.txt")
    assert kept.stdout.strip() == "agent-was-here", kept.stderr

    # rm keeps the home and workspace (as docker keeps its home volume): the bottle is
    # gone from the listing, and the next up makes a new pod on them.
    backend.remove(name)
    assert [i for i in backend.list_bottles() if i.agent == name] == []
    left = sorted(_objects(kube_cluster, name))
    assert left == [
        f"persistentvolumeclaim/bottle-{name}-home",
        f"persistentvolumeclaim/bottle-{name}-workspace",
    ]
    plan = backend.prepare(kube_config.agents[name])
    kept = backend.launch(plan).exec("cat /workspace/out.txt")
    assert kept.stdout.strip() == "agent-was-here", kept.stderr
    assert [i.state for i in backend.list_bottles() if i.agent == name] == [RUNNING]

    backend.remove(name, volumes=True)
    assert [i for i in backend.list_bottles() if i.agent == name] == []
    assert _objects(kube_cluster, name) == []


def _in(info: Any, agent: str, container: str, script: str) -> subprocess.CompletedProcess[str]:
    return kubectl(
        info,
        "exec",
        f"bottle-{agent}",
        "-c",
        container,
        "--",
        "sh",
        "-c",
        script,
        check=False,
        timeout=60,
    )


def _get(ip: str, port: int, *, proxy: bool) -> str:
    """A shell line GETting / from ``ip:port`` (busybox nc), direct or through the proxy."""
    if proxy:
        request = f"GET http://{ip}:{port}/ HTTP/1.1\\r\\nHost: {ip}:{port}\\r\\nConnection: close"
        # stdin held open: busybox nc hangs up when it ends, before the proxy answers
        return f"(printf '{request}\\r\\n\\r\\n'; sleep 20) | nc -w 10 127.0.0.1 8080"
    return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {ip} {port}"


def test_the_seal_holds_inside_the_pod(
    launched: tuple[Any, str],
    kube_cluster: Any,
    upstream: str,
    on_node: tuple[str, int],
    kube_images: dict[str, str],
) -> None:
    """Only the sidecar gets out: the agent container reaches neither the upstream nor the
    node directly, reaches the allowed upstream through the proxy and nothing else, cannot
    read or change the rules, and never sees the credential, which only the sidecar holds."""
    _, name = launched
    node, node_port = on_node

    # Control: an unsealed pod on the same bridge reaches both (so refusals are the seal's).
    control = agent_name("control")
    apply(
        kube_cluster,
        pod(control, [container("main", kube_images["agent"], "exec sleep 3600", uid=1000)]),
    )
    wait_ready(kube_cluster, control)
    direct = kubectl(
        kube_cluster,
        "exec",
        control,
        "--",
        "sh",
        "-c",
        _get(upstream, WEB_PORT, proxy=False),
        check=False,
    )
    assert "reached-upstream" in direct.stdout
    kubelet = kubectl(
        kube_cluster,
        "exec",
        control,
        "--",
        "sh",
        "-c",
        _get(node, node_port, proxy=False),
        check=False,
    )
    assert "reached-node" in kubelet.stdout

    blocked = _in(kube_cluster, name, "agent", _get(upstream, WEB_PORT, proxy=False))
    assert "reached-upstream" not in blocked.stdout
    to_node = _in(kube_cluster, name, "agent", _get(node, node_port, proxy=False))
    assert "reached-node" not in to_node.stdout
    through = _in(kube_cluster, name, "agent", _get(upstream, WEB_PORT, proxy=True))
    sidecar_log = kubectl(kube_cluster, "logs", f"bottle-{name}", "-c", "egress", check=False)
    assert "reached-upstream" in through.stdout, (
        through.stdout + through.stderr + sidecar_log.stdout
    )
    other = _in(kube_cluster, name, "agent", _get(upstream, OTHER_PORT, proxy=True))
    assert "reached-upstream" not in other.stdout
    assert " 403 " in other.stdout.splitlines()[0], other.stdout
    via_node = _in(kube_cluster, name, "agent", _get(node, node_port, proxy=True))
    assert "reached-node" not in via_node.stdout
    assert " 403 " in via_node.stdout.splitlines()[0], via_node.stdout

    rules = _in(kube_cluster, name, "agent", "iptables -S OUTPUT || echo NO-RULES")
    assert "NO-RULES" in rules.stdout or rules.returncode != 0
    assert "-A OUTPUT" not in rules.stdout

    secret_seen = _in(
        kube_cluster, name, "agent",
        f"env; grep -rs {shlex.quote(TOKEN)} /home /workspace /run /tmp /etc; echo END",
    )  # fmt: skip
    assert TOKEN not in secret_seen.stdout
    assert "sk-ant-" in secret_seen.stdout  # the placeholder, in the env
    in_sidecar = _in(kube_cluster, name, "egress", "cat /egress/credential")
    assert in_sidecar.stdout.strip() == TOKEN

    # `allow` applies live: the sidecar in the pod gets the new policy through the API.
    from backends.egress.plan import allow_live

    assert allow_live(name, f"{upstream}:{OTHER_PORT}")
    now_allowed = _in(kube_cluster, name, "agent", _get(upstream, OTHER_PORT, proxy=True))
    assert "reached-upstream" in now_allowed.stdout, now_allowed.stdout

    # The egress log, kept by the sidecar in its pod, reaches the operator on demand.
    from bottle_dash.service import egress_summary

    hosts = {(h.host, h.port): h for h in egress_summary(name)}
    assert hosts[(upstream, WEB_PORT)].allowed >= 1
    assert hosts[(upstream, OTHER_PORT)].denied >= 1 and hosts[(upstream, OTHER_PORT)].allowed >= 1
    assert hosts[(node, node_port)].denied >= 1
    kubectl(kube_cluster, "delete", "pod", control, "--wait=false", check=False)


def test_dashboard_lists_a_kube_agent(launched: tuple[Any, str], kube_config: Any) -> None:
    from bottle_dash.service import AgentService

    _, name = launched
    rows, problems = AgentService().list_agents(kube_config)
    (row,) = [r for r in rows if r.name == name]
    assert (row.backend, row.state) == ("kubernetes", "running")
    assert not [p for p in problems if p.component == "kubernetes"]


def test_doctor_checks_the_cluster(kube_config: Any, tmp_path: Path) -> None:
    """``doctor --json``: the cluster answers (its version); a namespace that does not exist
    is a problem with the fix."""
    import os
    import sys

    def doctor(config: Path) -> dict[str, Any]:
        proc = subprocess.run(
            [sys.executable, "-m", "bottle_dash", "--config", str(config), "doctor", "--json"],
            capture_output=True, text=True, timeout=120, check=False, env=os.environ.copy(),
        )  # fmt: skip
        checks = json.loads(proc.stdout)
        return next(c for c in checks if c["component"] == "kubernetes")

    good = doctor(kube_config.path)
    assert good["ok"] and good["needed"], good
    assert good["found"].startswith("v1."), good
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text(
        kube_config.path.read_text().replace(
            f'namespace = "{kube_config.kubernetes.namespace}"', 'namespace = "no-such-ns"'
        )
    )
    bad = doctor(bad_config)
    assert not bad["ok"]
    (problem,) = bad["problems"]
    assert "no-such-ns" in problem["what"] and "kubectl create namespace" in problem["fix"]


def test_claude_runs_in_a_real_tmux_pane(launched: tuple[Any, str], tmux_bin: str) -> None:
    """A pane runs the handle's ``claude_argv`` (``kubectl exec -it``): claude starts in
    the pod as node in /workspace with the pane as its terminal, and typed input reaches it."""
    from tests.fakes.smolvm_support import Tmux

    backend, name = launched
    argv = backend.bottle(name).claude_argv([])
    tmux = Tmux(tmux_bin)
    try:
        pane = tmux.new_pane(argv, width=120, height=40)
        tmux.wait_for(pane, r"STANDIN-CLAUDE start uid=1000", seconds=120)
        screen = tmux.capture(pane)
        assert "cwd=/workspace" in screen and "home=/home/node" in screen, screen
        tmux.wait_for(pane, r"STANDIN-CLAUDE size=40x120", seconds=60)
        tmux("send-keys", "-t", pane, "exit", "Enter")
        tmux.wait_for(pane, r"STANDIN-CLAUDE bye", seconds=60)
    finally:
        tmux.kill()


def test_the_agent_container_is_hardened(launched: tuple[Any, str], kube_cluster: Any) -> None:
    """Root filesystem read-only, /tmp writable, no capability, no new privileges, no
    service-account token, seccomp on."""
    _, name = launched
    seen = _in(
        kube_cluster, name, "agent",
        "touch /etc/x 2>/dev/null && echo ROOT-WRITABLE; touch /tmp/x && echo TMP-OK; "
        "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
        "ls /var/run/secrets/kubernetes.io 2>/dev/null || echo NO-TOKEN",
    )  # fmt: skip
    out = seen.stdout
    assert "ROOT-WRITABLE" not in out and "TMP-OK" in out, out + seen.stderr
    assert "CapEff:\t0000000000000000" in out
    assert "NoNewPrivs:\t1" in out
    assert "Seccomp:\t2" in out
    assert "NO-TOKEN" in out
