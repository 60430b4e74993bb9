"""The test cluster itself (tests/fakes/kube), proven with real commands: what a
``kubernetes`` backend will stand on.

- a pod from an image imported from the Docker engine runs; ``kubectl exec`` works, and
  ``kubectl exec -it`` works from a process without a terminal under ``script`` (panes);
- a pod sealed by an init container's iptables rules: only the egress uid reaches the one
  allowed port, and the agent container (other uid, no capabilities) can neither reach
  anything nor change the rules (the bridge CNI ignores NetworkPolicy);
- a Secret mounted into one container is absent from the other;
- a PersistentVolumeClaim is answered by the cluster's provisioner and outlives its pod;
- the official Python client lists pods and streams an exec.

Traffic goes only to pods this module creates, on the cluster's own bridge.
"""

from __future__ import annotations

import secrets
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.kube_helpers import (
    LABEL,
    apply,
    container,
    exec_in,
    fetch,
    kubectl,
    pod,
    pod_ip,
    wait_ready,
)
from tests.support import RUN_ID, agent_name

#: The first test that asks for the cluster may have to build it (minutes, once per
#: machine); the timeout covers the fixture's set-up.
pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(1800)]

AGENT_UID = 1000
EGRESS_UID = 1001
ALLOWED_PORT = 8080
OTHER_PORT = 9090


@pytest.fixture(scope="module")
def images(kube_cluster: Any, docker_engine: None) -> dict[str, str]:
    """The busybox test image and the iptables image, imported into the cluster."""
    from tests.fakes import image
    from tests.fakes.kube import cluster, netimage

    tags = {"agent": image.ensure_image(), "iptables": netimage.ensure_image()}
    for tag in tags.values():
        cluster.import_image(tag)
    return tags


@pytest.fixture(scope="module", autouse=True)
def _cleanup(kube_cluster: Any) -> Iterator[None]:
    """Remove what this module made (the session may reuse a developer's cluster)."""
    yield
    selector = f"bottle-dash.test-run={RUN_ID}"
    for kind in ("pods", "secrets", "pvc"):
        kubectl(kube_cluster, "delete", kind, "-l", selector, "--wait=false", check=False)


@pytest.fixture(scope="module")
def outside(kube_cluster: Any, images: dict[str, str]) -> str:
    """A pod serving HTTP on two ports: "the world" a sealed pod may or may not reach.
    Returns its address."""
    name = agent_name("outside")
    script = (
        "mkdir -p /tmp/www && echo reached > /tmp/www/index.html && "
        f"httpd -p {ALLOWED_PORT} -h /tmp/www && httpd -p {OTHER_PORT} -h /tmp/www && "
        "exec sleep 3600"
    )
    apply(kube_cluster, pod(name, [container("web", images["agent"], script, uid=AGENT_UID)]))
    wait_ready(kube_cluster, name)
    return pod_ip(kube_cluster, name)


# ------------------------------------------------------------------------------ tests


def test_imported_image_runs_and_exec_works(kube_cluster: Any, images: dict[str, str]) -> None:
    name = agent_name("hello")
    apply(
        kube_cluster,
        pod(name, [container("main", images["agent"], "exec sleep 3600", uid=AGENT_UID)]),
    )
    wait_ready(kube_cluster, name)

    who = exec_in(kube_cluster, name, "main", "id -u; cat /proc/1/cmdline | tr '\\0' ' '")
    assert who.returncode == 0, who.stderr
    assert who.stdout.split("\n")[0] == str(AGENT_UID)
    assert "sleep 3600" in who.stdout
    failed = exec_in(kube_cluster, name, "main", "echo to-stderr >&2; exit 7")
    assert failed.returncode == 7
    assert "to-stderr" in failed.stderr


def test_import_is_skipped_for_an_image_id_already_there(
    kube_cluster: Any, images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second import of the same Docker image id does not run ``docker save``."""
    from tests.fakes.kube import cluster
    from tests.fakes.kube import images as kube_images

    real_popen = subprocess.Popen

    def no_save(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        if argv[:2] == ["docker", "save"]:
            raise AssertionError(f"imported again: {argv}")
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", no_save)
    assert cluster.import_image(images["agent"]) == kube_images.normalized(images["agent"])
    listed = subprocess.run(
        ["ctr", "--address", str(kube_cluster.containerd_socket), "-n", "k8s.io", "images", "ls"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    image_id = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", images["agent"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert f"{kube_images.ID_LABEL}={image_id}" in listed


def test_exec_it_works_under_script(kube_cluster: Any, images: dict[str, str]) -> None:
    """A pane runs ``kubectl exec -it``; from a process without a terminal, ``script``
    gives it one, and input typed into it reaches the container's shell."""
    name = agent_name("tty")
    apply(
        kube_cluster,
        pod(name, [container("main", images["agent"], "exec sleep 3600", uid=AGENT_UID)]),
    )
    wait_ready(kube_cluster, name)
    inner = kube_cluster.kubectl_argv(
        "-n", kube_cluster.namespace, "exec", "-it", name, "-c", "main", "--",
        "sh", "-c", "tty; test -t 0 && echo STDIN-IS-TTY; read line; echo got:$line; exit 5",
    )  # fmt: skip
    proc = subprocess.run(
        ["script", "-qec", shlex.join(inner), "/dev/null"],
        input="hello-pane\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "/dev/pts/" in proc.stdout, proc.stdout + proc.stderr
    assert "STDIN-IS-TTY" in proc.stdout
    assert "got:hello-pane" in proc.stdout
    assert proc.returncode == 5


SEAL = (
    "set -e\n"
    "iptables -A OUTPUT -o lo -j ACCEPT\n"
    "iptables -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
    "iptables -A OUTPUT -p tcp -d {ip} --dport {port} -m owner --uid-owner {uid} -j ACCEPT\n"
    "iptables -A OUTPUT -j REJECT\n"
    "iptables -P OUTPUT DROP\n"
    "ip6tables -P OUTPUT DROP\n"
    "iptables -S OUTPUT\n"
)


def test_init_container_seals_the_pod(
    kube_cluster: Any, images: dict[str, str], outside: str
) -> None:
    """The init container (NET_ADMIN) lets only the egress uid out, to one port; the agent
    container (another uid, no capabilities) cannot reach out, change the rules, or
    become the egress uid."""
    name = agent_name("sealed")
    seal = container(
        "seal",
        images["iptables"],
        SEAL.format(ip=outside, port=ALLOWED_PORT, uid=EGRESS_UID),
        uid=0,
    )
    seal["securityContext"]["capabilities"] = {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    seal["securityContext"]["runAsNonRoot"] = False
    sidecar = container("egress", images["iptables"], "exec sleep 3600", uid=EGRESS_UID)
    agent = container("agent", images["iptables"], "exec sleep 3600", uid=AGENT_UID)
    control = agent_name("unsealed")
    apply(
        kube_cluster,
        pod(name, [sidecar, agent], initContainers=[seal]),
        pod(control, [container("main", images["agent"], "exec sleep 3600", uid=AGENT_UID)]),
    )
    wait_ready(kube_cluster, name)
    wait_ready(kube_cluster, control)

    # Both ports are open to a pod that is not sealed: what follows is the seal's doing.
    for port in (ALLOWED_PORT, OTHER_PORT):
        assert "reached" in exec_in(kube_cluster, control, "main", fetch(port, outside)).stdout
    rules = kubectl(kube_cluster, "logs", name, "-c", "seal").stdout
    assert f"--uid-owner {EGRESS_UID}" in rules and "-P OUTPUT DROP" in rules

    def reach(ctr: str, port: int) -> bool:
        return "reached" in exec_in(kube_cluster, name, ctr, fetch(port, outside)).stdout

    assert reach("egress", ALLOWED_PORT)
    assert not reach("egress", OTHER_PORT)
    assert not reach("agent", ALLOWED_PORT)
    assert not reach("agent", OTHER_PORT)

    # The agent tries to undo or dodge the rules; each attempt must fail.
    for attempt in (
        "iptables -F OUTPUT",
        "iptables -P OUTPUT ACCEPT",
        "iptables -I OUTPUT 1 -j ACCEPT",
        "iptables -S OUTPUT",
        "su -s /bin/sh egress -c id",
    ):
        tried = exec_in(kube_cluster, name, "agent", attempt)
        assert tried.returncode != 0, f"the agent could run {attempt!r}: {tried.stdout}"
    # It cannot gain the egress uid or a capability: no capability, no new privileges.
    status = exec_in(
        kube_cluster, name, "agent", "grep -E '^(Uid|CapEff|NoNewPrivs)' /proc/self/status"
    )
    assert f"Uid:\t{AGENT_UID}\t" in status.stdout
    assert "CapEff:\t0000000000000000" in status.stdout
    assert "NoNewPrivs:\t1" in status.stdout

    # Nothing changed: the egress uid still gets out, the agent still does not.
    assert reach("egress", ALLOWED_PORT)
    assert not reach("agent", ALLOWED_PORT)


def test_secret_mounted_into_one_container_only(kube_cluster: Any, images: dict[str, str]) -> None:
    name = agent_name("secret")
    value = "sk-test-" + secrets.token_hex(16)
    kubectl(kube_cluster, "create", "secret", "generic", name, f"--from-literal=token={value}")
    kubectl(kube_cluster, "label", "secret", name, f"bottle-dash.test-run={RUN_ID}")
    holder = container(
        "holder",
        images["agent"],
        "exec sleep 3600",
        uid=EGRESS_UID,
        volumeMounts=[{"name": "creds", "mountPath": "/run/creds", "readOnly": True}],
    )
    other = container("other", images["agent"], "exec sleep 3600", uid=AGENT_UID)
    # Files of a secret volume belong to root (or the pod's fsGroup, which every
    # container of the pod would get): readable by all, present in one container only.
    volume = {"name": "creds", "secret": {"secretName": name, "defaultMode": 0o444}}
    apply(kube_cluster, pod(name, [holder, other], volumes=[volume]))
    wait_ready(kube_cluster, name)

    held = exec_in(kube_cluster, name, "holder", "cat /run/creds/token")
    assert held.stdout == value
    look = exec_in(
        kube_cluster,
        name,
        "other",
        f"ls /run/creds; grep -c creds /proc/self/mounts; env | grep -c {value}; "
        f"grep -rl {value} /etc /home /run /tmp /var /workspace 2>/dev/null | wc -l",
    )
    assert "No such file or directory" in look.stderr
    assert look.stdout.split() == ["0", "0", "0"], look.stdout


def test_claim_is_provisioned_and_outlives_its_pod(
    kube_cluster: Any, images: dict[str, str]
) -> None:
    """The provisioner answers a claim with a hostPath volume in the run folder, owned by
    the uid the claim's annotation names; what a pod writes there survives the pod."""
    claim = agent_name("home")
    apply(
        kube_cluster,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": claim,
                "labels": LABEL,
                "annotations": {"bottle-dash.dev/owner": f"{AGENT_UID}:{AGENT_UID}"},
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "64Mi"}},
            },
        },
    )
    deadline = time.monotonic() + 60
    phase = ""
    while time.monotonic() < deadline and phase != "Bound":
        phase = kubectl(kube_cluster, "get", "pvc", claim, "-o", "jsonpath={.status.phase}").stdout
        time.sleep(0.5)
    assert phase == "Bound"
    volume = kubectl(kube_cluster, "get", "pvc", claim, "-o", "jsonpath={.spec.volumeName}").stdout
    folder = Path(
        kubectl(kube_cluster, "get", "pv", volume, "-o", "jsonpath={.spec.hostPath.path}").stdout
    )
    assert folder.parent == kube_cluster.run_dir / "volumes"
    assert folder.stat().st_uid == AGENT_UID

    mount = {"volumeMounts": [{"name": "home", "mountPath": "/home/node"}]}
    volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": claim}}]
    writer = agent_name("writer")
    script = "echo kept > /home/node/note && exec sleep 3600"
    apply(
        kube_cluster,
        pod(
            writer,
            [container("main", images["agent"], script, uid=AGENT_UID, **mount)],
            volumes=volumes,
        ),
    )
    wait_ready(kube_cluster, writer)
    kubectl(kube_cluster, "delete", "pod", writer, "--wait=true", "--timeout=60s")

    reader = agent_name("reader")
    apply(
        kube_cluster,
        pod(
            reader,
            [container("main", images["agent"], "exec sleep 3600", uid=AGENT_UID, **mount)],
            volumes=volumes,
        ),
    )
    wait_ready(kube_cluster, reader)
    assert exec_in(kube_cluster, reader, "main", "cat /home/node/note").stdout == "kept\n"
    assert (folder / "note").stat().st_uid == AGENT_UID

    # Deleting the claim releases the volume; the provisioner removes it and its folder.
    kubectl(kube_cluster, "delete", "pod", reader, "--wait=true", "--timeout=60s")
    kubectl(kube_cluster, "delete", "pvc", claim, "--wait=true", "--timeout=60s")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and folder.exists():
        time.sleep(0.5)
    assert not folder.exists()
    gone = kubectl(kube_cluster, "get", "pv", volume, check=False)
    assert "NotFound" in gone.stderr


def test_python_client_lists_pods_and_streams_exec(
    kube_cluster: Any, images: dict[str, str]
) -> None:
    from kubernetes import client, config
    from kubernetes.stream import stream

    name = agent_name("client")
    apply(
        kube_cluster,
        pod(name, [container("main", images["agent"], "exec sleep 3600", uid=AGENT_UID)]),
    )
    wait_ready(kube_cluster, name)

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)))
    listed = api.list_namespaced_pod(
        kube_cluster.namespace, label_selector=f"bottle-dash.test-run={RUN_ID}"
    )
    assert name in {p.metadata.name for p in listed.items}

    resp = stream(
        api.connect_get_namespaced_pod_exec,
        name,
        kube_cluster.namespace,
        container="main",
        command=["sh", "-c", "read line; echo out:$line; echo err >&2; exit 4"],
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    resp.write_stdin("from-client\n")
    out, err = "", ""
    deadline = time.monotonic() + 30
    while resp.is_open() and time.monotonic() < deadline:
        resp.update(timeout=1)
        out += resp.read_stdout()
        err += resp.read_stderr()
    resp.close()
    assert out == "out:from-client\n"
    assert err == "err\n"
    assert resp.returncode == 4
