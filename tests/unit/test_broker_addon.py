"""The broker addon's hooks on mitmproxy's own flow objects (mitmproxy's test helpers,
no network): what each hook does with a request the red team sent. The end-to-end
versions, through a real sidecar to a real upstream, are in the docker tier
(tests/integration/test_broker_attacks.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mitmproxy.test import taddons, tflow

from backends.egress import addon as broker
from backends.egress import policy as pol
from backends.egress import sidecar_files

PH = "sk-ant-oat01-" + "Ph0lder" * 12 + "-xyz"
REAL = "sk-ant-oat01-" + "R3al" * 21 + "-xyz"


@pytest.fixture
def addon(tmp_path: Path) -> broker.EgressBroker:
    policy = pol.Policy(
        "web", pol.allowlist(["github.com", "plain.example:80"], ("api.example", 443)), (
            "api.example", 443), PH, ("172.30.0.0/16",)
    )  # fmt: skip
    (tmp_path / pol.POLICY_FILE).write_text(policy.to_json())
    (tmp_path / pol.CREDENTIAL_FILE).write_text(REAL)
    return broker.EgressBroker(str(tmp_path))


def flow(
    host: str = "api.example",
    port: int = 443,
    *,
    scheme: str = "https",
    path: str = "/v1/messages",
    headers: dict[str, str] | None = None,
    authority: str = "",
    method: str = "POST",
) -> object:
    f = tflow.tflow()
    req = f.request
    req.host, req.port, req.scheme, req.path, req.method = host, port, scheme, path, method
    req.authority = authority
    req.content = b""
    req.headers.clear()
    req.headers["Host"] = host
    for k, v in (headers or {}).items():
        req.headers[k] = v
    f.client_conn.sni = host  # the tunnel's TLS named the request's host
    f.response = None
    return f


def tunnel(addon: broker.EgressBroker, f: object, host: str, port: int) -> None:
    """The CONNECT that opened ``f``'s tunnel to ``host:port``, through the addon's own
    ``http_connect`` hook (on ``f``'s client connection)."""
    connect = tflow.tflow()
    connect.client_conn = f.client_conn  # type: ignore[attr-defined]
    connect.request.method = "CONNECT"
    connect.request.host, connect.request.port = host, port
    connect.response = None
    addon.http_connect(connect)
    assert connect.response is None, "the CONNECT was refused"


def log(tmp: Path) -> list[dict[str, object]]:
    text = (tmp / pol.LOG_FILE).read_text() if (tmp / pol.LOG_FILE).exists() else ""
    return [json.loads(line) for line in text.splitlines()]


def test_the_placeholder_is_swapped_on_the_api_host(addon: broker.EgressBroker) -> None:
    f = flow(headers={"x-api-key": PH})
    with taddons.context(addon):
        addon.requestheaders(f)  # type: ignore[arg-type]
        addon.request(f)  # type: ignore[arg-type]
    assert f.response is None and f.request.headers["x-api-key"] == REAL  # type: ignore[attr-defined]


def test_an_absolute_target_in_a_tunnel_is_refused_before_the_swap(
    addon: broker.EgressBroker, tmp_path: Path
) -> None:
    f = flow(headers={"x-api-key": PH}, authority="evil.example", path="/collect")
    with taddons.context(addon):
        tunnel(addon, f, "api.example", 443)
        addon.requestheaders(f)  # type: ignore[arg-type]
    assert f.response.status_code == 403  # type: ignore[attr-defined]
    assert f.request.headers["x-api-key"] == PH  # type: ignore[attr-defined]
    assert log(tmp_path)[-1]["check"] == "target"


def test_a_matching_absolute_target_leaves_in_origin_form(addon: broker.EgressBroker) -> None:
    f = flow(authority="api.example:443")
    with taddons.context(addon):
        tunnel(addon, f, "api.example", 443)
        addon.requestheaders(f)  # type: ignore[arg-type]
    assert f.response is None and f.request.authority == ""  # type: ignore[attr-defined]


def test_another_key_and_cleartext_are_refused(addon: broker.EgressBroker, tmp_path: Path) -> None:
    other = flow(headers={"x-api-key": "sk-ant-api03-" + "m" * 90})
    plain = flow(scheme="http", headers={"Host": "api.example:443", "x-api-key": PH})
    with taddons.context(addon):
        addon.requestheaders(other)  # type: ignore[arg-type]
        addon.requestheaders(plain)  # type: ignore[arg-type]
    assert other.response.status_code == 403  # type: ignore[attr-defined]
    assert plain.response.status_code == 403  # type: ignore[attr-defined]
    assert [ln["check"] for ln in log(tmp_path)] == ["credential", "scheme"]


def test_forwarding_headers_are_stripped(addon: broker.EgressBroker) -> None:
    f = flow("github.com", headers={"X-Forwarded-Host": "evil", "Forwarded": "host=evil"})
    with taddons.context(addon):
        addon.requestheaders(f)  # type: ignore[arg-type]
    assert "x-forwarded-host" not in f.request.headers  # type: ignore[attr-defined]
    assert "forwarded" not in f.request.headers  # type: ignore[attr-defined]


def test_a_probe_request_is_answered_by_the_sidecar(
    addon: broker.EgressBroker, tmp_path: Path
) -> None:
    f = flow("github.com", headers={"x-bottle-probe": "probe-1", "X-Forwarded-For": "1"})
    with taddons.context(addon):
        addon.requestheaders(f)  # type: ignore[arg-type]
    assert f.response.status_code == 299  # type: ignore[attr-defined]
    assert f.response.headers["x-bottle-probe-stripped"] == "x-forwarded-for"  # type: ignore[attr-defined]
    assert log(tmp_path)[-1]["probe"] == "probe-1"


def test_a_probe_body_is_searched_before_the_answer(addon: broker.EgressBroker) -> None:
    import base64

    body = base64.b64encode(PH.encode())
    f = flow(
        "github.com",
        headers={"x-bottle-probe": "probe-1", "content-length": str(len(body))},
    )
    with taddons.context(addon):
        addon.requestheaders(f)  # type: ignore[arg-type]
        assert f.response is None  # type: ignore[attr-defined]
        f.request.content = body  # type: ignore[attr-defined]
        addon.request(f)  # type: ignore[arg-type]
    assert f.response.status_code == 403  # type: ignore[attr-defined]


def test_a_refused_request_with_a_large_body_is_closed_not_read(
    addon: broker.EgressBroker,
) -> None:
    f = flow("evil.example", headers={"content-length": str(pol.API_BODY_MAX * 4)})
    with taddons.context(addon):
        addon.requestheaders(f)  # type: ignore[arg-type]
    assert f.response is None and f.error is not None  # type: ignore[attr-defined]
    assert f.error.msg == "Connection killed."  # type: ignore[attr-defined]


def test_a_large_body_streams_through_the_scanner(addon: broker.EgressBroker) -> None:
    f = flow("github.com", headers={"transfer-encoding": "chunked"})
    with taddons.context(addon):
        addon.requestheaders(f)  # type: ignore[arg-type]
        scan = f.request.stream  # type: ignore[attr-defined]
        assert callable(scan)
        assert scan(b"harmless " * 10) == b"harmless " * 10
        assert scan(PH[:30].encode()) == PH[:30].encode()
        assert scan(PH[30:].encode()) == b""  # found across the two chunks
        assert scan(b"more") == b""
    assert f.error is not None  # type: ignore[attr-defined]


def test_the_status_relay_keeps_one_word(addon: broker.EgressBroker, tmp_path: Path) -> None:
    f = flow(pol.STATUS_HOST, 80, scheme="http", path="/working", method="GET")
    bad = flow(pol.STATUS_HOST, 80, scheme="http", path="/" + "x" * 1000, method="GET")
    with taddons.context(addon):
        addon.requestheaders(f)  # type: ignore[arg-type]
        addon.requestheaders(bad)  # type: ignore[arg-type]
    assert f.response.status_code == 204  # type: ignore[attr-defined]
    assert bad.response.status_code == 400  # type: ignore[attr-defined]
    assert (tmp_path / pol.STATUS_FILE).read_text() == "working\n"
    assert not log(tmp_path)  # the relay is not egress


def test_the_log_rotates_at_its_limit(tmp_path: Path) -> None:
    log_ = sidecar_files.RotatedLog(tmp_path / "egress.log", limit=100)
    for i in range(30):
        log_.write(f"line {i:02d} " + "x" * 20)
    assert (tmp_path / "egress.log").stat().st_size <= 100
    assert (tmp_path / "egress.log.1").stat().st_size <= 100
    assert "line 29" in (tmp_path / "egress.log").read_text()


def test_unsafe_options_are_forced_back(addon: broker.EgressBroker) -> None:
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rawtcp=True, ssl_insecure=True, http2=True)
        assert tctx.options.rawtcp is False and tctx.options.ssl_insecure is False
        assert tctx.options.http2 is False
