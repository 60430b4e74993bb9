"""The kubernetes listing from pods and claims (the API's objects, as the client gives
them), and the probe suite refusing to call a kubernetes bottle sealed unchecked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace as NS
from typing import Any

import pytest

from backends import ownership
from backends.base import BackendError, bottle_labels
from backends.kubernetes.listing import STARTING, infos
from backends.kubernetes.names import LABELS_ANNOTATION, kube_labels

WHEN = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)


def _meta(name: str, agent: str, *, mine: bool = True, sealed: bool = True) -> Any:
    labels = bottle_labels(agent, "kubernetes")
    if sealed:
        labels["bottle-dash.sealed"] = "true"
    if not mine:
        labels[ownership.LABEL_OWNER] = "uid4242:someone"
    return NS(
        name=name,
        uid=f"uid-{name}",
        labels=kube_labels(labels),
        annotations={LABELS_ANNOTATION: json.dumps(labels)},
        creation_timestamp=WHEN,
        deletion_timestamp=None,
    )


def _status(name: str, running: bool) -> Any:
    return NS(name=name, state=NS(running=NS() if running else None))


def _pod(agent: str, phase: str, agent_up: bool, egress_up: bool, **kw: Any) -> Any:
    return NS(
        metadata=_meta(f"bottle-{agent}", agent, **kw),
        spec=NS(containers=[NS(name="agent", image="img:1"), NS(name="egress", image="e")]),
        status=NS(
            phase=phase,
            container_statuses=[_status("agent", agent_up), _status("egress", egress_up)],
        ),
    )


def _claim(agent: str, **kw: Any) -> Any:
    return NS(metadata=_meta(f"bottle-{agent}-home", agent, **kw))


def test_pods_and_claims_become_rows() -> None:
    rows = infos(
        [
            _pod("a", "Running", True, True),
            _pod("b", "Running", True, False),
            _pod("c", "Pending", False, False),
            _pod("x", "Running", True, True, mine=False),
        ],
        [_claim("a"), _claim("d"), _claim("y", mine=False)],
    )
    got = {r.agent: (r.state, r.egress) for r in rows}
    assert got == {
        "a": ("running", "sealed"),
        "b": ("running", "sidecar down"),
        "c": (STARTING, "sidecar down"),
        "d": ("stopped", "sidecar down"),  # its pod is gone: down keeps the home
    }
    a = rows[0]
    assert (a.bottle, a.image, a.backend) == ("bottle-a", "img:1", "kubernetes")
    assert ":" in a.labels[ownership.LABEL_OWNER]  # the exact labels, from the annotation
    assert a.created.startswith("2026-12-07T18:00")


def test_the_probe_suite_does_not_call_a_kubernetes_bottle_sealed() -> None:
    from backends.kubernetes.backend import KubernetesBackend
    from backends.probes import suite

    with pytest.raises(BackendError) as info:
        suite.run_suite(KubernetesBackend(), "web")
    assert "no escape probe covers kubernetes" in info.value.message


def test_a_cluster_that_does_not_answer_shows_its_agents_unknown(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kubeconfig whose API server does not answer (a closed loopback port): the listing
    is a ``BackendError``, the kubernetes agents are ``unknown``, the other backends list."""
    from backends.kubernetes import client
    from bottle_dash.config import load_config
    from bottle_dash.service import AgentService

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:9', "
        "insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u, namespace: n}}]\n"
    )
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[kubernetes]\nkubeconfig = "{kubeconfig}"\n[agents.far]\nbackend = "kubernetes"\n'
    )
    client.reset()
    from backends.kubernetes import settings

    monkeypatch.setattr(settings, "_current", settings.KubeSettings())  # put back after
    config = load_config(config_file)

    class Empty:
        name = "docker"

        def list_bottles(self) -> list[Any]:
            return []

    from backends.kubernetes.backend import KubernetesBackend

    kube = KubernetesBackend()
    with pytest.raises(BackendError) as info:
        kube.list_bottles()
    assert "listing pods in namespace n failed" in info.value.message
    service = AgentService({"docker": Empty(), "kubernetes": kube})  # type: ignore[dict-item]
    rows, problems = service.list_agents(config)
    assert [(r.name, r.state) for r in rows] == [("far", "unknown")]
    assert [p.component for p in problems] == ["kubernetes"]
    client.reset()
