"""The egress broker's decisions (backends/egress/policy.py) and the sealed plan's pieces
(backends/egress/plan.py) as pure functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.base import AgentSpec, LaunchError
from backends.docker.backend import DockerBackend
from backends.egress import plan as egress
from backends.egress import policy as pol
from backends.egress import sidecar
from backends.egress.credential import resolve_credential
from backends.egress.spec import EgressSpec

OAUTH = "sk-ant-oat01-" + "Ab9_" * 20 + "-zz"
POLICY = pol.Policy(
    agent="web",
    allow=pol.allowlist(
        ["github.com", "*.npmjs.org", "plain.example:80"], ("api.anthropic.com", 443)
    ),
    placeholder="sk-ant-oat01-PLACEHOLDER",
)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("github.com", pol.Rule("github.com", 443)),
        ("GitHub.COM.", pol.Rule("github.com", 443)),
        ("example.org:80", pol.Rule("example.org", 80)),
        ("*.npmjs.org", pol.Rule("*.npmjs.org", 443)),
        ("gw.corp:8443", pol.Rule("gw.corp", 8443)),
    ],
)
def test_parse_rule(text: str, rule: pol.Rule) -> None:
    assert pol.parse_rule(text) == rule


@pytest.mark.parametrize(
    "text",
    ["https://github.com", "github.com/x", "", "exa mple.com", "a.com:0", "a.com:99999", "*"],
)
def test_parse_rule_refuses_what_is_not_a_host(text: str) -> None:
    with pytest.raises(ValueError):
        pol.parse_rule(text)


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("api.anthropic.com", 443, True),
        ("API.Anthropic.com.", 443, True),
        ("api.anthropic.com", 80, False),
        ("github.com", 443, True),
        ("github.com", 22, False),
        ("evilgithub.com", 443, False),
        ("github.com.evil.net", 443, False),
        ("registry.npmjs.org", 443, True),
        ("npmjs.org", 443, False),  # *.domain is subdomains only
        ("x.evilnpmjs.org", 443, False),
        ("plain.example", 80, True),
        ("plain.example", 443, False),
    ],
)
def test_allowlist_matches_host_and_port(host: str, port: int, allowed: bool) -> None:
    assert pol.check_target(POLICY, host, port).allow is allowed


def test_port_80_only_where_listed_and_deny_body_names_host_and_key() -> None:
    decision = pol.check_target(POLICY, "github.com", 80)
    assert not decision.allow
    body = pol.deny_body(decision, "web")
    assert "github.com:80" in body
    assert pol.ALLOW_KEY in body and '"github.com:80"' in body and "[agents.web]" in body


def test_the_403s_reason_phrase_names_host_and_key_on_one_safe_line() -> None:
    """Clients show a refused CONNECT's status line, not its body."""
    denied = pol.check_target(POLICY, "evil.net", 443, "connect")
    assert pol.deny_reason(denied, "web") == (
        "bottle-dash egress: evil.net is not in egress_allow of agent web"
    )
    odd = pol.Decision(False, "a\r\nb\u00e9", 8443, "connect")
    assert pol.deny_reason(odd, "web").startswith("bottle-dash egress: a??b?:8443 is not in")
    refused = pol.check_placeholder(POLICY, "github.com", 443, True)
    assert "placeholder" in pol.deny_reason(refused, "web")


def test_sni_must_match_the_tunnel() -> None:
    assert pol.check_sni(POLICY, "github.com", 443, "github.com").allow
    assert pol.check_sni(POLICY, "github.com", 443, None).allow
    wrong = pol.check_sni(POLICY, "github.com", 443, "evil.net")
    assert not wrong.allow and "evil.net" in wrong.reason


def test_host_header_must_match_and_then_be_allowed() -> None:
    assert pol.check_host_header(POLICY, "github.com", 443, "github.com:443").allow
    assert pol.check_host_header(POLICY, "github.com", 443, "GitHub.com").allow
    mismatch = pol.check_host_header(POLICY, "github.com", 443, "evil.net")
    assert not mismatch.allow and mismatch.check == "host"
    assert not pol.check_host_header(POLICY, "evil.net", 443, "evil.net").allow


def test_placeholder_goes_to_the_api_host_only() -> None:
    parts: list[str | bytes] = ["https://github.com/x", "Bearer sk-ant-oat01-PLACEHOLDER"]
    assert pol.carries(POLICY.placeholder, parts)
    assert pol.carries(POLICY.placeholder, [b'{"k": "sk-ant-oat01-PLACEHOLDER"}'])
    assert not pol.carries(POLICY.placeholder, ["nothing", b"here"])
    assert not pol.carries("", ["anything"])
    assert pol.check_placeholder(POLICY, "api.anthropic.com", 443, True).allow
    refused = pol.check_placeholder(POLICY, "github.com", 443, True)
    assert not refused.allow and "placeholder" in pol.deny_body(refused, "web")
    assert pol.check_placeholder(POLICY, "github.com", 443, False).allow


def test_swap_touches_only_credential_headers_holding_the_placeholder() -> None:
    headers = {
        "Authorization": "Bearer PH",
        "X-Api-Key": "PH",
        "Cookie": "PH",
        "x-other": "Bearer other",
    }
    assert pol.swapped_headers(headers, "PH", "REAL") == {
        "Authorization": "Bearer REAL",
        "X-Api-Key": "REAL",
    }
    assert pol.swapped_headers({"Authorization": "Bearer github"}, "PH", "REAL") == {}
    assert pol.swapped_headers(headers, "PH", "") == {}


def test_placeholder_has_the_same_shape_and_is_random() -> None:
    a, b = pol.placeholder_for(OAUTH), pol.placeholder_for(OAUTH)
    assert a != OAUTH and a != b
    assert len(a) == len(OAUTH) and a.startswith("sk-ant-oat01-")
    assert pol.same_shape(OAUTH, a)
    api_key = "sk-ant-api03-" + "x" * 90
    assert pol.placeholder_for(api_key).startswith("sk-ant-api03-")
    assert not pol.same_shape(OAUTH, pol.placeholder_for(api_key))


def test_log_line_is_one_json_object_without_secrets() -> None:
    line = pol.log_line(pol.check_target(POLICY, "evil.net", 443), ts="T", method="CONNECT")
    assert "\n" not in line
    record = json.loads(line)
    assert record == {
        "ts": "T",
        "decision": "deny",
        "check": "connect",
        "host": "evil.net",
        "port": 443,
        "method": "CONNECT",
        "reason": "evil.net:443 is not on the allowlist",
    }


def test_policy_round_trips_through_json() -> None:
    assert pol.Policy.from_json(POLICY.to_json()) == POLICY


def test_host_port_of_urls() -> None:
    assert pol.host_port("https://gw.corp:8443/v1") == ("gw.corp", 8443)
    assert pol.host_port("http://gw.corp/v1") == ("gw.corp", 80)
    assert pol.host_port("api.anthropic.com") == ("api.anthropic.com", 443)


# --------------------------------------------------------------------------- plan


def test_sealed_plan_env_has_proxy_ca_placeholder_and_telemetry_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", OAUTH)
    plan = DockerBackend().prepare(AgentSpec(name="web"))
    env = plan.env
    proxy = "http://bottle-web-egress:8080"
    for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        assert env[key] == proxy
    assert "127.0.0.1" in env["NO_PROXY"] and "localhost" in env["no_proxy"]
    for key in ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        assert env[key] == egress.GUEST_CA
    for key, value in egress.TELEMETRY_ENV.items():
        assert env[key] == value
    # The bottle is the sandbox: claude accepts --dangerously-skip-permissions as root too.
    assert env["IS_SANDBOX"] == "1"
    holder = env["CLAUDE_CODE_OAUTH_TOKEN"]
    assert holder != OAUTH and pol.same_shape(OAUTH, holder)
    # The plan (printed by `plan`, recorded at launch) never holds the real value.
    assert OAUTH not in plan.to_json()
    info = plan.extra["egress"]
    assert info["credential"] == {
        "source": "env:CLAUDE_CODE_OAUTH_TOKEN",
        "var": "CLAUDE_CODE_OAUTH_TOKEN",
    }
    assert info["allow"] == ["api.anthropic.com"]
    assert info["networks"] == {"internal": "bottle-web-net", "outer": "bottle-web-out"}
    assert plan.claude_args[0] == egress.SKIP_PERMISSIONS
    # The same placeholder on the next prepare (a pane's env must not change under it).
    again = DockerBackend().prepare(AgentSpec(name="web"))
    assert again.env["CLAUDE_CODE_OAUTH_TOKEN"] == holder


def test_credential_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAUDE_CODE_OAUTH_TOKEN", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert resolve_credential(EgressSpec(), {}, "a").source == "none"
    auto = resolve_credential(EgressSpec(), {"ANTHROPIC_API_KEY": "sk-ant-api03-x"}, "a")
    assert (auto.source, auto.var, auto.value) == (
        "env:ANTHROPIC_API_KEY",
        "ANTHROPIC_API_KEY",
        "sk-ant-api03-x",
    )
    file = tmp_path / "token"
    file.write_text(OAUTH + "\n")
    got = resolve_credential(EgressSpec(credential=f"file:{file}"), {}, "a")
    assert (got.var, got.value) == ("CLAUDE_CODE_OAUTH_TOKEN", OAUTH)
    assert OAUTH not in repr(got) and OAUTH not in f"{got}" and OAUTH not in str([got])
    with pytest.raises(LaunchError, match="MISSING_VAR is not set"):
        resolve_credential(EgressSpec(credential="env:MISSING_VAR"), {}, "a")
    with pytest.raises(LaunchError, match="cannot be read"):
        resolve_credential(EgressSpec(credential=f"file:{tmp_path / 'nope'}"), {}, "a")


def test_sealed_agent_refuses_a_credential_in_env() -> None:
    with pytest.raises(LaunchError, match="must not hold the real credential"):
        DockerBackend().prepare(AgentSpec(name="web", env={"ANTHROPIC_API_KEY": "sk-ant-x"}))


def test_unsealed_plan_says_so_and_has_no_proxy() -> None:
    plan = DockerBackend().prepare(AgentSpec(name="web", egress=EgressSpec(sealed=False)))
    assert plan.extra["egress"]["sealed"] is False
    assert "UNSEALED" in plan.extra["egress"]["warning"]
    assert "HTTPS_PROXY" not in plan.env and "IS_SANDBOX" not in plan.env
    assert egress.SKIP_PERMISSIONS not in plan.claude_args


def test_skip_permissions_can_be_turned_off_and_gateway_replaces_the_api() -> None:
    spec = EgressSpec(skip_permissions=False, api_base="https://gw.corp:8443/anthropic")
    plan = DockerBackend().prepare(AgentSpec(name="web", egress=spec))
    assert egress.SKIP_PERMISSIONS not in plan.claude_args
    assert plan.extra["egress"]["api"] == "gw.corp:8443"
    assert plan.extra["egress"]["allow"] == ["gw.corp:8443"]
    assert plan.env["ANTHROPIC_BASE_URL"] == "https://gw.corp:8443/anthropic"


def test_mitmdump_argv_is_lazy_and_loads_the_addon() -> None:
    plan = DockerBackend().prepare(AgentSpec(name="web"))
    argv = sidecar.mitmdump_argv(plan, "/opt/bottle-egress/addon.py")
    assert argv[argv.index("-s") + 1] == "/opt/bottle-egress/addon.py"
    assert "connection_strategy=lazy" in argv and "rawtcp=false" in argv
    assert "http2=false" in argv
    # Through the launcher, which puts the bottle-side address in place of the mark.
    assert argv[:2] == ["python3", "/opt/bottle-egress/launch.py"]
    assert f"regular@{sidecar.LISTEN_MARK}:{pol.PROXY_PORT}" in argv
    assert not any("ssl_verify_upstream" in a for a in argv)  # mitmproxy's public roots


def test_an_upstream_ca_is_trusted_beside_the_public_roots_never_instead(
    tmp_path: Path,
) -> None:
    """mitmproxy's ``ssl_verify_upstream_trusted_ca`` replaces its public roots: the
    sidecar then also trusts the image's system roots, so a private gateway CA does not
    cut the bottle off from public hosts; verification itself is never turned off."""
    (tmp_path / "ca.pem").write_text("x")
    spec = EgressSpec(upstream_ca=tmp_path / "ca.pem")
    plan = DockerBackend().prepare(AgentSpec(name="web", egress=spec))
    argv = sidecar.mitmdump_argv(plan, "/opt/bottle-egress/addon.py")
    assert "ssl_verify_upstream_trusted_ca=/egress/upstream-ca.pem" in argv
    assert "ssl_verify_upstream_trusted_confdir=/etc/ssl/certs" in argv
    assert not any("ssl_insecure" in a for a in argv)


def test_smolmachines_plan_is_sealed_like_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    from backends import registry
    from backends.smolmachines.backend import SmolmachinesBackend
    from backends.smolmachines.images import CreateSource

    smol = registry.get_backend("smolmachines").prepare(
        AgentSpec(name="vm", backend="smolmachines")
    )
    dock = DockerBackend().prepare(AgentSpec(name="vm"))
    assert smol.extra["egress"]["sealed"] is True
    assert smol.extra["egress"]["networks"] == dock.extra["egress"]["networks"]
    assert smol.extra["egress"]["sidecar"] == dock.extra["egress"]["sidecar"]
    assert smol.env == dock.env  # the same proxy, CA trio, placeholder, telemetry off
    assert egress.SKIP_PERMISSIONS in smol.claude_args
    assert any("--allow-cidr" in line for line in egress.describe(smol))
    # At up the proxy is aimed at the sidecar's address, the only one the machine gets.
    egress.point_proxy(smol, "10.9.8.7")
    smol.extra["egress"]["allow_cidr"] = "10.9.8.7/32"
    monkeypatch.setattr(SmolmachinesBackend, "smolvm", lambda self: "smolvm")
    argv = SmolmachinesBackend().create_argv(smol, CreateSource(image="img"))
    assert smol.env["HTTPS_PROXY"] == smol.env["http_proxy"] == "http://10.9.8.7:8080"
    assert argv[argv.index("--allow-cidr") + 1] == "10.9.8.7/32"
    assert argv.count("--allow-cidr") == 1 and "--net" not in argv
    # DNS goes to the sidecar too (no resolver there): smolvm would forward it to the
    # host's resolver otherwise.
    assert argv[argv.index("--dns") + 1] == "10.9.8.7" and argv.count("--dns") == 1


def test_smolmachines_unsealed_when_configured_so() -> None:
    from backends import registry

    plan = registry.get_backend("smolmachines").prepare(
        AgentSpec(name="vm", backend="smolmachines", egress=EgressSpec(sealed=False))
    )
    assert plan.extra["egress"]["sealed"] is False
    assert egress.describe(plan)[0].startswith("UNSEALED")
    assert egress.SKIP_PERMISSIONS not in plan.claude_args
