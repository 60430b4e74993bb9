"""The ``[kubernetes]`` table: checked with located errors, handed to the backend, and the
pod it makes (pure documents: hardening, seal, where the credential goes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.kubernetes import settings as kube
from bottle_dash.config import ConfigError, load_config


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no cluster named and leaves none named after it."""
    monkeypatch.setattr(kube, "_current", kube.KubeSettings())


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(path)


def _error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return info.value


def test_the_table_reaches_the_backend(tmp_path: Path) -> None:
    (tmp_path / "kc").write_text("apiVersion: v1\n")
    _load(
        tmp_path,
        '[kubernetes]\nkubeconfig = "kc"\ncontext = "lab"\nnamespace = "agents"\n'
        'node_selector = { "kubernetes.io/arch" = "amd64" }\nimage_pull_policy = "Never"\n'
        '[agents.web]\nbackend = "kubernetes"\n',
    )
    got = kube.current()
    assert got.kubeconfig == str(tmp_path / "kc")
    assert (got.context, got.namespace, got.image_pull_policy) == ("lab", "agents", "Never")
    assert dict(got.node_selector) == {"kubernetes.io/arch": "amd64"}
    assert got.configured()


def test_no_table_names_no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    _load(tmp_path, "[agents.web]\n")
    assert kube.current() == kube.KubeSettings()
    assert not kube.current().configured()


@pytest.mark.parametrize(
    ("text", "key", "line", "words"),
    [
        ('[kubernetes]\nkubeconfig = "missing"\n', "kubeconfig", 2, "does not exist"),
        ('[kubernetes]\n\nnamespace = "Agents_1"\n', "namespace", 3, "not a valid Kubernetes"),
        ('[kubernetes]\nimage_pull_policy = "never"\n', "image_pull_policy", 2, "pull policy"),
        ("[kubernetes]\nnode_selector = 3\n", "node_selector", 2, "table of labels"),
        ('[kubernetes]\nhome_size = "lots"\n', "home_size", 2, "not a size"),
        ('[kubernetes]\nnamspace = "a"\n', "namspace", 2, "unknown key"),
    ],
)
def test_errors_are_located_with_a_fix(
    tmp_path: Path, text: str, key: str, line: int, words: str
) -> None:
    err = _error(tmp_path, text)
    assert (err.key, err.line) == (key, line)
    assert words in err.message
    assert err.fix


def test_a_missing_client_is_an_error_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from backends.base import BackendUnavailable
    from backends.kubernetes import client

    real = builtins.__import__

    def no_kubernetes(name: str, *args: object, **kwargs: object) -> object:
        if name == "kubernetes":
            raise ImportError("No module named 'kubernetes'")
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_kubernetes)
    with pytest.raises(BackendUnavailable) as info:
        client.kube_module()
    assert "bottle-dash[kubernetes]" in (info.value.fix or "")


def test_an_agent_on_kubernetes_without_a_table_uses_the_kubeconfig_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kc").write_text("apiVersion: v1\n")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kc"))
    _load(tmp_path, '[agents.web]\nbackend = "kubernetes"\n')
    assert kube.current().configured()
    assert kube.current().kubeconfig_path() == tmp_path / "kc"
    _load(tmp_path, "[agents.web]\n")
    assert not kube.current().configured()  # an existing kubeconfig alone is not asked
