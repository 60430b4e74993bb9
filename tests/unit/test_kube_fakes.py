"""The pure parts of the test cluster's tooling (tests/fakes/kube): what it asks apt for,
which packages openapi-gen sees, image names and archives, the volumes it provisions,
and the host rules it adds."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.fakes.kube import build, components, host, images, layout, provisioner


def test_source_lines_follow_the_hosts_mirrors(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main contrib\n"
        "deb-src http://ignored.example/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\nTypes: deb\nURIs: https://vendor.example/apt\n"
        "Suites: cloud-sdk-bookworm\nComponents: main\n\nTypes: deb\nEnabled: no\n"
        "URIs: http://off.example/debian\nSuites: bookworm\nComponents: main\n"
    )
    (tmp_path / "sources.list.d" / "old.list.disabled").write_text(
        "deb http://disabled.example/debian bookworm main\n"
    )
    assert build.host_source_lines("bookworm", tmp_path) == [
        "deb-src http://deb.example/debian-security bookworm-security main",
        "deb-src http://mirror.example/debian bookworm main contrib",
    ]


def test_source_lines_fall_back_to_debian(tmp_path: Path) -> None:
    lines = build.host_source_lines("bookworm", tmp_path)
    assert lines[0] == "deb-src http://deb.debian.org/debian bookworm main"


def test_openapi_dirs_are_found_as_upstreams_makefile_finds_them(tmp_path: Path) -> None:
    def go(rel: str, text: str) -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    tag = "// +k8s:openapi-gen=true\npackage x\n"
    go("pkg/apis/abac/v1/doc.go", tag)
    go("pkg/apis/other/doc.go", "// +k8s:deepcopy-gen=package\npackage other\n")
    go("staging/src/k8s.io/api/core/v1/doc.go", tag)
    go("staging/src/k8s.io/code-generator/x/doc.go", tag)
    go("vendor/github.com/some/lib/doc.go", tag)
    go("_output/local/doc.go", tag)
    go("pkg/notag/doc.go", "package notag // +k8s:openapi-gen=true is not at column 0\n")
    assert build.openapi_dirs(tmp_path) == [
        "k8s.io/kubernetes/pkg/apis/abac/v1",
        "k8s.io/kubernetes/vendor/k8s.io/api/core/v1",
    ]


def test_image_names_are_normalized_as_the_cri_does() -> None:
    assert images.normalized("busybox") == "docker.io/library/busybox:latest"
    assert images.normalized("bottle-dash-test-agent:abc") == (
        "docker.io/library/bottle-dash-test-agent:abc"
    )
    assert images.normalized("owner/app:1") == "docker.io/owner/app:1"
    assert images.normalized("localhost/bottle-dash/pause:3.4") == "localhost/bottle-dash/pause:3.4"
    assert images.normalized("registry.example:5000/app") == "registry.example:5000/app:latest"


def test_pause_archive_is_a_docker_archive_of_one_layer(tmp_path: Path) -> None:
    binary = tmp_path / "pause"
    binary.write_bytes(b"\x7fELF pause")
    with tarfile.open(fileobj=io.BytesIO(images.pause_archive(binary))) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(archive.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layer = archive.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == [layout.PAUSE_IMAGE]
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert config["config"]["Entrypoint"] == ["/pause"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        assert inner.getmember("pause").mode == 0o755
        assert inner.extractfile("pause").read() == b"\x7fELF pause"  # type: ignore[union-attr]


def test_provisioned_volume_is_bound_to_its_claim(tmp_path: Path) -> None:
    claim = {
        "metadata": {"name": "home", "namespace": "ns", "uid": "0123456789ab-cdef"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
    }
    pv = provisioner.volume_for(claim, tmp_path / "ns.home.01234567")
    assert pv["metadata"]["name"] == "pvc-0123456789ab-cdef"
    assert pv["spec"]["claimRef"] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": "ns",
        "name": "home",
        "uid": "0123456789ab-cdef",
    }
    assert pv["spec"]["capacity"] == {"storage": "2Gi"}
    assert pv["spec"]["hostPath"]["path"] == str(tmp_path / "ns.home.01234567")
    assert pv["spec"]["storageClassName"] == layout.STORAGE_CLASS == provisioner.STORAGE_CLASS
    assert provisioner.PROVISIONER == layout.PROVISIONER


def test_claim_folder_without_owner_is_open_to_all(tmp_path: Path) -> None:
    claim = {"metadata": {"name": "c", "namespace": "ns", "uid": "u" * 12}}
    folder = provisioner.make_folder(claim, tmp_path)
    assert folder.stat().st_mode & 0o777 == 0o777


def test_forward_rules_are_ours_and_about_our_bridge_only() -> None:
    for rule in host.forward_rules():
        assert rule[rule.index("--comment") + 1] == layout.RULE_COMMENT
        assert layout.BRIDGE in rule
        assert rule[-2:] == ["-j", "ACCEPT"]


def test_containerd_never_shares_the_docker_engines_paths() -> None:
    lay = layout.Layout(cache=Path("/c"), run=Path("/r"))
    config = components.containerd_config(lay)
    assert "/run/containerd" not in config and "/var/lib/containerd" not in config
    assert 'address = "/r/containerd.sock"' in config
    assert "restrict_oom_score_adj = true" in config
    assert 'Root = "/r/runc"' in config


def test_subnet_gateway_is_the_first_address() -> None:
    assert host.gateway("10.244.0.0/16") == "10.244.0.1"
    assert components.service_ip("10.96.0.0/16") == "10.96.0.1"


def test_status_says_why_it_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.fakes.kube import cluster

    monkeypatch.setenv("BOTTLE_DASH_KUBE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cluster.os, "geteuid", lambda: 1000)
    assert cluster.why_not() == (
        "needs root (it installs Debian packages, mounts, and adds iptables rules)"
    )
    monkeypatch.setattr(cluster.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cluster.build, "codename", lambda: "trixie")
    problem = cluster.why_not()
    assert problem is not None and "Debian 12" in problem and "trixie" in problem
