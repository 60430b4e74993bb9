"""The pod a kubernetes bottle is: pure documents from a plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.base import AgentSpec
from backends.egress.spec import EgressSpec
from backends.kubernetes import pod
from backends.kubernetes.names import kube_labels, label_value
from backends.kubernetes.settings import KubeSettings


@pytest.fixture
def sealed_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    from backends.kubernetes.plan import prepare_plan

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("TEST_TOKEN", "sk-ant-real")
    spec = AgentSpec(
        name="web",
        backend="kubernetes",
        image="agent:1",
        egress=EgressSpec(credential="env:TEST_TOKEN"),
    )
    return prepare_plan(spec, "kubernetes", KubeSettings(namespace="agents"))


def test_sealed_pod_has_seal_sidecar_and_a_hardened_agent(sealed_plan: object) -> None:
    doc = pod.pod(sealed_plan, KubeSettings(image_pull_policy="Never"))  # type: ignore[arg-type]
    spec = doc["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["hostNetwork"] is False and spec["shareProcessNamespace"] is False
    (seal,) = spec["initContainers"]
    assert seal["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    agent, egress = spec["containers"]
    assert agent["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert agent["securityContext"]["allowPrivilegeEscalation"] is False
    assert agent["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert agent["securityContext"]["runAsUser"] == 1000 != pod.EGRESS_UID
    assert egress["securityContext"]["runAsUser"] == pod.EGRESS_UID
    assert f"--uid-owner {pod.EGRESS_UID} -j ACCEPT" in seal["command"][-1]
    # the credential's Secret reaches the egress container only
    agent_volumes = {m["name"] for m in agent["volumeMounts"]}
    assert "egress-files" not in agent_volumes
    assert "egress-files" in {m["name"] for m in egress["volumeMounts"]}
    assert all(c["imagePullPolicy"] == "Never" for c in [seal, agent, egress])
    # the env comes from a Secret, never written in the pod's spec
    assert agent["envFrom"] == [{"secretRef": {"name": "bottle-web-env"}}]
    assert "sk-ant-real" not in str(doc)


def test_the_plan_points_the_agent_at_its_sidecar_on_loopback(sealed_plan: object) -> None:
    plan = sealed_plan
    assert plan.env["HTTPS_PROXY"] == "http://127.0.0.1:8080"  # type: ignore[attr-defined]
    assert plan.extra["kubernetes"]["namespace"] == "agents"  # type: ignore[attr-defined]
    assert plan.status_dir is None  # type: ignore[attr-defined]


def test_labels_are_label_safe_and_kept_exact(sealed_plan: object) -> None:
    doc = pod.pod(sealed_plan, KubeSettings())  # type: ignore[arg-type]
    owner = sealed_plan.labels["bottle-dash.owner"]  # type: ignore[attr-defined]
    assert ":" in owner
    assert doc["metadata"]["labels"]["bottle-dash.owner"] == label_value(owner)
    assert ":" not in label_value(owner)
    assert owner in doc["metadata"]["annotations"][pod.LABELS_ANNOTATION]
    assert kube_labels({"a": "x:y"}) == {"a": "x.y"}


def test_the_seal_image_defaults_to_the_one_bottle_dash_builds(sealed_plan: object) -> None:
    from backends.kubernetes.image import SEAL_SPEC, seal_tag

    assert "iptables" in SEAL_SPEC.packages and "iproute2" in SEAL_SPEC.packages
    built = pod.pod(sealed_plan, KubeSettings())  # type: ignore[arg-type]
    assert built["spec"]["initContainers"][0]["image"] == seal_tag()
    named = pod.pod(sealed_plan, KubeSettings(seal_image="reg/seal:1"))  # type: ignore[arg-type]
    assert named["spec"]["initContainers"][0]["image"] == "reg/seal:1"


def test_plan_says_how_the_pod_is_sealed(sealed_plan: object) -> None:
    from backends.egress.plan import describe

    lines = describe(sealed_plan)  # type: ignore[arg-type]
    assert lines[0].startswith("sealed: sidecar container in the pod")
    assert "127.0.0.1:8080" in lines[0]
    assert not any("None" in line for line in lines), lines
