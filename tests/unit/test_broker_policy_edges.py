"""The broker's decisions (backends/egress/policy.py) at their edges: the exact words an
operator reads for each refusal (a 403's body and reason phrase, a refused rule, the log
line are the only explanation they get), the boundaries of each check, and the small
readers of the sidecar's own files. The red team's findings are in test_broker_policy.py;
these cover what ``make mutate`` showed that no test noticed.
"""

from __future__ import annotations

import base64
import ipaddress
import json

import pytest
from mitmproxy.options import CONF_BASENAME

from backends.egress import policy as pol

PH = "sk-ant-oat01-" + "Ph0lder" * 12 + "-xyz"
API = ("api.anthropic.com", 443)
POLICY = pol.Policy(
    agent="web",
    allow=pol.allowlist(["github.com", "plain.example:80", "10.1.2.0/24"], API),
    placeholder=PH,
    internal=("172.30.0.0/16",),
)
ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"


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


# ----------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://github.com", " is not a host: write the host only, e.g. 'github.com'"),
        # The scheme is named first, whatever stands before it.
        ("fe80:://x", " is not a host: write the host only, e.g. 'github.com'"),
        ("github.com/x", " is not a host: write the host only, e.g. 'github.com'"),
        ("10.0.0.0/8/9", " is not a host: write the host only, e.g. 'github.com'"),
        ("127.0.0.1:8080", " is a loopback address (the sidecar itself): no rule may open it"),
        (
            "169.254.169.254",
            " is a link-local address (where cloud metadata services answer): no rule may open it",
        ),
        (
            "127.0.0.0/8",
            " holds 127.0.0.0/8, a loopback address (the sidecar itself): no rule may open it",
        ),
        (
            "100.100.0.0/16",
            " holds 100.100.100.200/32, a link-local address (where cloud metadata services "
            "answer): no rule may open it",
        ),
        ("10.0.0.0/99", " is not an address range (e.g. 10.1.0.0/16)"),
        ("8.0.0.0/7", " is wider than a /8: name the range the host is in"),
        ("fd00::/8", ": the sidecar has no IPv6 way out; name an IPv4 range"),
        ("::1", ": the sidecar has no IPv6 way out; name a host or IPv4"),
        ("a.example:0", " has a bad port (1-65535)"),
        (
            "127.1",
            " looks like an address in a short or numeric form; write it as four decimal "
            "numbers (a.b.c.d)",
        ),
        ("exa mple.com", " is not a host name (letters, digits, '-', '.', '*.' first)"),
        ("x.localhost", " names this machine (localhost): no rule may open it"),
        ("*.254", " can only match addresses, not names: name the address"),
        (
            "*.com",
            " would allow every host under the top-level domain 'com': name the domain "
            "(e.g. '*.example.com')",
        ),
    ],
)
def test_a_refused_rule_says_what_is_wrong_and_what_to_write(text: str, message: str) -> None:
    """The message is all an operator sees of a bad ``egress_allow`` entry."""
    with pytest.raises(ValueError) as refused:
        pol.parse_rule(text)
    assert str(refused.value) == repr(text) + message


def test_a_host_name_may_be_253_characters_long_and_no_longer() -> None:
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(longest) == 253
    assert pol.parse_rule(longest) == pol.Rule(longest)
    too_long = ".".join(["a" * 63] * 3 + ["b" * 62])
    with pytest.raises(ValueError, match="is not a host name"):
        pol.parse_rule(too_long)


def test_a_name_whose_last_label_is_a_number_is_refused_only_as_a_wildcard() -> None:
    assert pol.parse_rule("node.42") == pol.Rule("node.42")
    with pytest.raises(ValueError, match="can only match addresses"):
        pol.parse_rule("*.node.42")


def test_an_ipv6_literal_loses_its_brackets() -> None:
    assert pol.normal_host(" [2001:DB8::1]. ") == "2001:db8::1"
    assert pol.host_port("https://[2001:db8::1]:8443/v1") == ("2001:db8::1", 8443)
    assert pol.host_port("[2001:db8::1]") == ("2001:db8::1", 443)
    assert pol.host_port("http://gw.corp/a/b:1") == ("gw.corp", 80)


def test_an_ipv4_mapped_address_is_judged_as_its_ipv4_address() -> None:
    assert pol.never_reason(ipaddress.ip_address("::ffff:140.82.112.3")) == ""
    loop = pol.never_reason(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert loop == "a loopback address (the sidecar itself)"


# ----------------------------------------------------------------- policy.json


def test_a_policy_made_without_a_placeholder_or_read_without_one_has_none() -> None:
    bare = pol.Policy("web")
    assert bare.placeholder == "" and bare.internal == ()
    assert bare.allow == (pol.Rule("api.anthropic.com", 443),) and bare.api == API
    old = json.dumps({"agent": "a", "allow": ["x.example"], "api": "x.example:443"})
    assert pol.Policy.from_json(old).placeholder == ""


def test_a_bottle_side_network_written_with_a_host_address_is_read_as_its_network() -> None:
    """Docker reports a network as a CIDR; one with host bits set still names the net."""
    text = json.dumps({"agent": "a", "allow": [], "api": "h:1", "internal": ["172.30.5.6/16"]})
    assert pol.Policy.from_json(text).internal == ("172.30.0.0/16",)
    assert pol.listen_address(["192.168.96.2/20"], ["10.0.0.1", "192.168.96.2"]) == ("192.168.96.2")


def test_policy_json_reads_the_same_whenever_it_is_written() -> None:
    """Sorted keys, two-space indent: an operator reading (or diffing) policy.json sees
    only what changed."""
    policy = pol.Policy("web", pol.allowlist(["github.com"], API), API, "PH", ("172.30.0.0/16",))
    assert policy.to_json() == (
        '{\n  "agent": "web",\n  "allow": [\n    "api.anthropic.com",\n    "github.com"\n  ],\n'
        '  "api": "api.anthropic.com:443",\n  "internal": [\n    "172.30.0.0/16"\n  ],\n'
        '  "log_max": 4194304,\n  "placeholder": "PH"\n}'
    )


def test_a_policys_log_limit_has_a_floor() -> None:
    """A line must fit: a policy may make the log rotate sooner, never at nothing."""
    text = pol.Policy("web", log_max=10).to_json()
    assert pol.Policy.from_json(text).log_max == pol.LOG_MIN_BYTES == 4096
    text = pol.Policy("web", log_max=8192).to_json()
    assert pol.Policy.from_json(text).log_max == 8192


def test_the_ca_files_have_the_names_mitmproxy_looks_for() -> None:
    """mitmproxy signs with ``<confdir>/mitmproxy-ca.pem`` and makes a CA of its own when
    that file is missing, one the bottle would not trust."""
    names = (f"{CONF_BASENAME}-ca.pem", f"{CONF_BASENAME}-ca-cert.pem")
    assert names == (pol.CA_FILE, pol.CA_CERT_FILE)


# ----------------------------------------------------------------- tunnels


def test_sni_decisions_name_their_check_and_both_hosts() -> None:
    assert pol.check_sni(POLICY, "GitHub.com", 443, "github.com.") == pol.Decision(
        True, "github.com", 443, "sni"
    )
    assert pol.check_sni(POLICY, "github.com", 443, "Evil.net") == pol.Decision(
        False,
        "github.com",
        443,
        "sni",
        "TLS SNI 'evil.net' does not match the tunnel's host 'github.com'",
    )


def test_three_bytes_are_enough_to_tell_a_tunnels_protocol() -> None:
    assert not pol.looks_like_tls(b"\x16\x03")
    assert pol.looks_like_tls(b"\x16\x03\x01")
    tls = pol.check_tunnel_bytes(POLICY, "github.com", 443, b"\x16\x03\x01")
    assert tls == pol.Decision(True, "github.com", 443, "tunnel")
    raw = pol.check_tunnel_bytes(POLICY, "github.com", 443, b"\x00\x01\x02")
    assert raw == pol.Decision(
        False,
        "github.com",
        443,
        "tunnel",
        "the tunnel's first bytes are raw bytes, neither TLS the sidecar reads nor HTTP",
    )
    newer = pol.check_tunnel_bytes(POLICY, "github.com", 443, b"\x16\x03\x04\x00")
    assert newer is not None and newer.reason == (
        "the tunnel's first bytes are TLS record version 0x0304, neither TLS the sidecar "
        "reads nor HTTP"
    )


# ----------------------------------------------------------------- requests


def test_request_refusals_say_what_was_named_and_where_the_request_goes() -> None:
    target = request(authority="evil.example:8443", path="/collect")
    assert target.reason == (
        "the request target names evil.example:8443, but the request goes to api.anthropic.com:443"
    )
    path = request(path="x" * 100)
    assert path.reason == f"the request path {'x' * 80!r} is not origin-form"
    host = request(host_header="evil.example")
    assert host.reason == (
        "Host header 'evil.example' does not match the request's host 'api.anthropic.com'"
    )
    port = request(host_header="api.anthropic.com:8443")
    assert port.reason == "Host header port 8443 does not match the request's port 443"
    plain = request(scheme="http", host_header="api.anthropic.com:443")
    assert plain.reason == (
        "plain HTTP to api.anthropic.com:443: port 443 is for HTTPS (a rule without a port "
        "allows HTTPS only)"
    )
    assert pol.check_target(POLICY, "Evil.net", 8443) == pol.Decision(
        False, "evil.net", 8443, "connect", "evil.net:8443 is not on the allowlist"
    )


def test_address_refusals_say_what_the_name_resolved_to() -> None:
    assert pol.address_decision(POLICY, "Nowhere.example", 443, []) == pol.Decision(
        False, "nowhere.example", 443, "address", "nowhere.example did not resolve"
    )
    assert pol.address_decision(POLICY, "x.example", 443, ["not-an-ip"]) == pol.Decision(
        False, "x.example", 443, "address", "x.example resolved to 'not-an-ip'"
    )
    inside = pol.address_decision(POLICY, "github.com", 443, ["169.254.169.254"])
    assert inside.reason == (
        "github.com resolves to 169.254.169.254, a link-local address (where cloud metadata "
        "services answer): never dialled"
    )
    assert pol.address_decision(POLICY, "gw.office", 443, ["192.168.7.9"]) == pol.Decision(
        False,
        "gw.office",
        443,
        "address",
        "gw.office resolves to 192.168.7.9, a private address: add 192.168.7.9 (or its range, "
        "e.g. 192.168.7.0/24) to egress_allow to allow it",
    )


# ----------------------------------------------------------------- credential


def test_credential_refusals_say_where_the_credential_may_go() -> None:
    assert pol.check_placeholder(POLICY, "API.anthropic.com", 443, True) == pol.Decision(
        True, "api.anthropic.com", 443, "placeholder"
    )
    assert pol.check_placeholder(POLICY, "github.com", 443, True).reason == (
        "the credential placeholder was sent to github.com:443; only api.anthropic.com:443 "
        "receives the credential"
    )
    plain = pol.Policy("web", pol.allowlist([], ("gw.corp", 80)), ("gw.corp", 80), PH)
    clear = pol.check_credentials(plain, "gw.corp", 80, scheme="http", headers={}, found=True)
    assert clear.reason == (
        "a credential over plain HTTP to gw.corp:80: the credential goes over verified TLS only"
    )
    other = pol.check_credentials(
        POLICY, "api.anthropic.com", 443, scheme="https", headers={"X-Api-Key": "k"}, found=False
    )
    assert other.reason == (
        "x-api-key carries a credential that is not this bottle's placeholder: only the "
        "sidecar's own credential reaches the API"
    )


def test_a_fully_percent_encoded_placeholder_is_found() -> None:
    """Letters, digits and '-' pass ``quote`` untouched: encode every byte."""
    encoded = "".join(f"%{b:02X}" for b in PH.encode())
    assert PH not in encoded
    assert pol.carries(PH, ["/nothing", f"/v1?key={encoded}"])
    assert pol.carries(PH, [f"key={encoded}".encode()])


def test_a_form_encoded_space_is_read_as_a_space() -> None:
    spaced = "a placeholder with spaces"
    assert pol.carries(spaced, ["q=a+placeholder+with+spaces"])
    assert not pol.carries(spaced, ["q=a+placeholder+with+dots"])


def test_both_base64_alphabets_are_searched_at_every_alignment() -> None:
    odd = "ab~?" * 8  # '~' and '?' encode to '+' and '/' (or '-' and '_'), as no token does
    for lead in (b"", b"x", b"xy"):
        standard = base64.b64encode(lead + odd.encode())
        url_safe = base64.urlsafe_b64encode(lead + odd.encode())
        assert standard != url_safe
        assert pol.carries(odd, [standard]) and pol.carries(odd, [url_safe])


def test_base64_is_searched_for_placeholders_of_12_bytes_and_more() -> None:
    """A base64 form of fewer bytes would turn up in unrelated text."""
    assert pol.carries("twelve-bytes", [base64.b64encode(b"twelve-bytes")])
    assert not pol.carries("eleven-byte", [base64.b64encode(b"eleven-byte")])
    assert pol.carries("eleven-byte", ["eleven-byte"])


def test_only_the_whole_placeholder_is_the_placeholder() -> None:
    tail = PH.encode()[3:]
    assert not pol.carries(PH, [b"XYZ" + tail, base64.b64encode(b"XYZ" + tail)])


def test_a_header_with_undecodable_bytes_is_searched_as_it_came() -> None:
    """mitmproxy hands such header bytes over as lone surrogates."""
    assert pol.carries(PH, ["\udcff" + PH])
    assert not pol.carries(PH, ["\udcff"])


# ----------------------------------------------------------------- sizes, status, proc


@pytest.mark.parametrize(
    ("headers", "method", "http2", "size"),
    [
        ({"Content-Length": "12"}, "POST", False, 12),
        ({"content-length": " 7 "}, "GET", True, 7),
        ({"Transfer-Encoding": "gzip, Chunked", "Content-Length": "5"}, "POST", False, None),
        ({"Content-Length": "12x"}, "POST", False, None),
        ({}, "POST", False, 0),
        ({}, "post", True, None),
        ({}, "PUT", True, None),
        ({}, "PATCH", True, None),
    ],
)
def test_a_body_is_the_size_its_headers_announce(
    headers: dict[str, str], method: str, http2: bool, size: int | None
) -> None:
    assert pol.announced_body(headers, method=method, http2=http2) == size


def test_a_body_over_the_api_limit_says_both_sizes() -> None:
    over = pol.body_too_large(POLICY, "API.anthropic.com", 443, pol.API_BODY_MAX + 1)
    assert over == pol.Decision(
        False,
        "api.anthropic.com",
        443,
        "size",
        "a request body of 33554433 bytes is over the API's limit of 33554432",
    )


def test_a_status_hook_may_put_its_word() -> None:
    assert pol.status_word("PUT", pol.STATUS_HOST, "/idle") == "idle"
    assert pol.status_word("GET", pol.STATUS_HOST, "/question?a=1?b=2") == "question"


def test_the_sidecars_own_addresses_from_odd_proc_files() -> None:
    assert pol.local_addresses("Main:\n  /32 host LOCAL\n  |-- 10.0.0.2\n  /32 host LOCAL\n") == [
        "10.0.0.2"
    ]
    one = "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\n"
    assert pol.gateways(ROUTE_HEADER + one) == ["192.168.0.1"]
    assert pol.gateways(ROUTE_HEADER + "eth9\tbad\tnothex\n" + one) == ["192.168.0.1"]
    assert pol.gateways(ROUTE_HEADER + "eth0 00000000 0100A8C0\n") == ["192.168.0.1"]
    assert pol.gateways(ROUTE_HEADER + "eth0 00000000\n") == []


# ----------------------------------------------------------------- words


def test_each_refusals_403_body_in_full() -> None:
    refused = request(host="evil.net", host_header="evil.net", tunnel=("evil.net", 443))
    assert refused.check == "request"
    assert pol.deny_body(refused, "web") == (
        "bottle-dash egress: evil.net:443 refused for agent web: evil.net:443 is not on the "
        "allowlist.\n"
        "To allow it: `bottle-dash allow web evil.net` (applies at once), or add "
        '"evil.net" to egress_allow in [agents.web] (or [defaults]) of the bottle-dash config.\n'
    )
    placeholder = pol.check_placeholder(POLICY, "github.com", 443, True)
    assert pol.deny_body(placeholder, "web") == (
        "bottle-dash egress: request refused: the credential placeholder was sent to "
        "github.com:443; only api.anthropic.com:443 receives the credential.\n"
        "The bottle holds a placeholder, never the real credential.\n"
    )
    size = pol.Decision(False, "h.example", 443, "size", "why")
    assert pol.deny_body(size, "web") == (
        "bottle-dash egress: h.example:443 refused for agent web: why.\n"
    )


@pytest.mark.parametrize(
    ("check", "port", "phrase"),
    [
        ("placeholder", 443, "bottle-dash egress: credential placeholder refused for h.example"),
        ("credential", 443, "bottle-dash egress: credential refused for h.example"),
        ("sni", 8443, "bottle-dash egress: the sni does not match h.example:8443"),
        ("host", 443, "bottle-dash egress: the host does not match h.example"),
        ("request", 8443, "bottle-dash egress: h.example:8443 is not in egress_allow of agent web"),
        ("connect", 443, "bottle-dash egress: h.example is not in egress_allow of agent web"),
        ("address", 443, "bottle-dash egress: address refused for h.example"),
    ],
)
def test_each_refusals_reason_phrase(check: str, port: int, phrase: str) -> None:
    assert pol.deny_reason(pol.Decision(False, "h.example", port, check, "why"), "web") == phrase


def test_a_reason_phrase_keeps_visible_ascii_and_stops_at_200_characters() -> None:
    tilde = pol.deny_reason(pol.Decision(False, "a~b", 443, "connect"), "web")
    assert tilde == "bottle-dash egress: a~b is not in egress_allow of agent web"
    long = pol.deny_reason(pol.Decision(False, "h" * 300, 443, "connect"), "web")
    assert long == "bottle-dash egress: " + "h" * 180


def test_a_log_line_in_full() -> None:
    """Sorted keys, one line; an allowed decision has no reason, its extra is kept."""
    decision = pol.address_decision(POLICY, "github.com", 443, ["140.82.112.3"])
    assert decision.reason == ""
    assert pol.log_line(decision, ts="T", method="GET", client="172.30.0.3") == (
        '{"address": "140.82.112.3", "check": "address", "client": "172.30.0.3", '
        '"decision": "allow", "host": "github.com", "method": "GET", "port": 443, "ts": "T"}'
    )
    assert pol.log_line(pol.Decision(True, "h", 1, "request"), ts="T") == (
        '{"check": "request", "decision": "allow", "host": "h", "port": 1, "ts": "T"}'
    )


# ----------------------------------------------------------------- placeholders


def test_a_placeholder_without_a_known_prefix_is_random_in_every_letter() -> None:
    real = "abcdefgh-ijkl_mnop"
    made = [pol.placeholder_for(real) for _ in range(20)]
    assert all(pol.same_shape(real, m) and m[8] == "-" and m[13] == "_" for m in made)
    # Twenty placeholders that all begin alike: about one chance in 62**38.
    assert len({m[:2] for m in made}) > 1


def test_same_shape_compares_prefix_length_and_separators() -> None:
    assert pol.same_shape("abc-def", "xyz-uvw")
    assert not pol.same_shape("a-b", "a_b")
    assert not pol.same_shape("a-b", "ab-")
    assert not pol.same_shape("sk-ant-oat01-abc", "sk-ant-oat01-abcd")
    assert not pol.same_shape("sk-ant-oat01-abc", "sk-ant-api03-abc")
