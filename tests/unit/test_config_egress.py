"""The egress keys of the config file: located errors, defaults, and the spec they make."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.egress.spec import EgressSpec
from bottle_dash.config import load_config
from tests.unit.config_files import error_of, write


def test_defaults_are_sealed_api_only_and_unattended(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[agents.a]\n"))
    spec = cfg.agents["a"].egress
    assert spec == EgressSpec()
    assert spec.sealed and spec.unattended and spec.allow == ()


def test_egress_keys_merge_over_defaults(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    text = (
        '[defaults]\negress_allow = ["github.com"]\ncredential = "env:ANTHROPIC_API_KEY"\n'
        '[agents.a]\negress_allow = ["*.npmjs.org", "Example.org:80"]\n'
        'credential = "file:token"\napi_base = "https://gw.corp:8443/v1"\n'
        'upstream_ca = "ca.pem"\nskip_permissions = false\n'
        "[agents.b]\nsealed = false\n"
    )
    cfg = load_config(write(tmp_path, text))
    a, b = cfg.agents["a"].egress, cfg.agents["b"].egress
    assert a.allow == ("*.npmjs.org", "example.org:80")
    assert a.credential == f"file:{tmp_path / 'token'}"
    assert a.api_base == "https://gw.corp:8443/v1"
    assert a.upstream_ca == tmp_path / "ca.pem"
    assert a.sealed and not a.unattended
    assert b.allow == ("github.com",) and b.credential == "env:ANTHROPIC_API_KEY"
    assert not b.sealed and not b.unattended


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        ('egress_allow = ["https://github.com"]', "egress_allow", "not a host"),
        ('egress_allow = "github.com"', "egress_allow", "list of strings"),
        ('credential = "ANTHROPIC_API_KEY"', "credential", "not a credential source"),
        ('credential = "env:1BAD"', "credential", "not a credential source"),
        ('api_base = "gw.corp"', "api_base", "not an https URL"),
        ('api_base = "http://gw.corp:443"', "api_base", "would cross the network in the clear"),
        ('upstream_ca = "missing.pem"', "upstream_ca", "does not exist"),
        ('sealed = "no"', "sealed", "true or false"),
        ("skip_permissions = 1", "skip_permissions", "true or false"),
    ],
)
def test_bad_egress_values_are_located(tmp_path: Path, line: str, key: str, words: str) -> None:
    err = error_of(tmp_path, f"[agents.a]\n{line}\n")
    assert err.agent == "a" and err.key == key and err.line == 2
    assert words in err.message
    assert err.fix


def test_a_name_like_another_agents_sidecar_is_refused_with_the_fix(tmp_path: Path) -> None:
    """Agent ``web``'s sidecar is the container ``bottle-web-egress``: an agent named
    ``web-egress`` would have a bottle of that very name."""
    err = error_of(tmp_path, '[agents.web]\nimage = "i"\n\n[agents.web-egress]\nimage = "i"\n')
    assert (err.agent, err.line, err.path) == ("web-egress", 4, tmp_path / "config.toml")
    assert "bottle-web-egress" in err.message and "egress sidecar" in err.message
    assert "'web'" in err.message
    assert err.fix and "rename the agent" in err.fix and "'egress-web'" in err.fix
    shown = str(err)
    assert str(tmp_path / "config.toml") in shown and "agent 'web-egress'" in shown
    # Alone in its config too: the same engine may run agent "web" of another config.
    assert error_of(tmp_path, "[agents.web-egress]\n").agent == "web-egress"
    assert list(load_config(write(tmp_path, "[agents.egress]\n[agents.egress-web]\n")).agents)
