"""Metering in the broker on mitmproxy's own flow objects: a response of the stand-in API
(its real event shapes) passes the broker's stream filter chunk by chunk; the usage log
gets exact token counts, every chunk leaves unchanged, bad input never breaks it, and a
spent budget refuses the next Messages request. Through a real sidecar: the docker tier
(tests/integration/test_metering_docker.py)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mitmproxy.test import taddons, tflow, tutils

from backends.egress import addon as broker
from backends.egress import ledger, prices
from backends.egress import policy as pol
from tests.fakes import anthropic_api as standin

PH = "sk-ant-oat01-" + "Ph0lder" * 12 + "-xyz"
CACHED = {
    "input_tokens": 12,
    "output_tokens": 345,
    "cache_creation_input_tokens": 700,
    "cache_creation": {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 400},
    "cache_read_input_tokens": 5000,
}
MODEL = "claude-sonnet-4-5-20250929"


@pytest.fixture
def addon(tmp_path: Path) -> broker.EgressBroker:
    policy = pol.Policy("web", pol.allowlist([], ("api.example", 443)), ("api.example", 443), PH)
    (tmp_path / pol.POLICY_FILE).write_text(policy.to_json())
    (tmp_path / pol.CREDENTIAL_FILE).write_text("sk-ant-oat01-real")
    return broker.EgressBroker(str(tmp_path))


@pytest.fixture(autouse=True)
def _usage() -> Iterator[None]:
    yield
    standin.USAGE_OVERRIDE.clear()


def request(path: str = "/v1/messages", host: str = "api.example") -> Any:
    f = tflow.tflow()
    req = f.request
    req.host, req.port, req.scheme, req.path, req.method = host, 443, "https", path, "POST"
    req.authority = ""
    req.content = json.dumps({"model": MODEL, "messages": []}).encode()
    req.headers.clear()
    req.headers["Host"] = host
    req.headers["x-api-key"] = PH
    req.headers["content-length"] = str(len(req.content))
    f.client_conn.sni = host
    f.response = None
    return f


def sse(usage: dict[str, Any], *, model: str = MODEL) -> bytes:
    standin.USAGE_OVERRIDE.update(usage)
    events = standin.sse_events({"model": model, "messages": []}, [])
    return b"".join(f"event: {e}\ndata: {json.dumps(d)}\n\n".encode() for e, d in events)


def through(
    addon: broker.EgressBroker,
    f: Any,
    body: bytes,
    headers: dict[str, str],
    *,
    split: int = 7,
    cut: bool = False,
) -> bytes:
    """``body`` through the broker's hooks in chunks of ``split`` bytes; what left."""
    with taddons.context(addon):
        addon.requestheaders(f)
        assert f.response is None, f.response and f.response.content
        addon.request(f)
        f.response = tutils.tresp(content=b"")
        f.response.headers.clear()
        for k, v in headers.items():
            f.response.headers[k] = v
        f.response.headers["request-id"] = "req_01abc"
        addon.responseheaders(f)
        stream = f.response.stream
        assert callable(stream)
        out = b"".join(stream(body[i : i + split]) for i in range(0, len(body), split))
        if cut:
            addon.error(f)
        else:
            out += stream(b"")
            addon.response(f)
    return out


def usage_lines(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / ledger.USAGE_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


SSE = {"content-type": "text/event-stream; charset=utf-8"}
JSON = {"content-type": "application/json"}


def test_a_stream_is_metered_exactly_and_passes_unchanged(
    addon: broker.EgressBroker, tmp_path: Path
) -> None:
    body = sse(CACHED)
    assert through(addon, request(), body, SSE) == body
    (line,) = usage_lines(tmp_path)
    assert line["model"] == MODEL and line["stream"] is True and line["complete"] is True
    assert line["request_id"] == "req_01abc" and line["message_id"].startswith("msg_")
    assert [line[k] for k in prices.KINDS] == [12, 345, 300, 400, 5000]
    assert "unread" not in line
    text = (tmp_path / ledger.USAGE_FILE).read_text()
    assert "stand-in answer" not in text  # never a response's text
    assert (tmp_path / ledger.USAGE_FILE).stat().st_mode & 0o777 == 0o600


def test_a_json_answer_and_count_tokens_are_metered(
    addon: broker.EgressBroker, tmp_path: Path
) -> None:
    standin.USAGE_OVERRIDE.update({"cache_creation_input_tokens": 50, "output_tokens": 9})
    asked = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 40}]}
    doc = json.dumps(standin.message_json(asked, [])).encode()
    assert through(addon, request(), doc, JSON, split=5) == doc
    counted = b'{"input_tokens": 77}'
    assert through(addon, request("/v1/messages/count_tokens"), counted, JSON) == counted
    line, count = usage_lines(tmp_path)
    assert line["stream"] is False and line["input"] == len(json.dumps(asked["messages"])) // 4
    assert (line["output"], line["cache_write_5m"], line["cache_write_1h"]) == (9, 50, 0)
    assert count["path"] == "/v1/messages/count_tokens" and count["input"] == 0


def test_a_stream_cut_off_records_what_it_carried(
    addon: broker.EgressBroker, tmp_path: Path
) -> None:
    body = sse(CACHED)
    half = body[: body.index(b"event: message_delta")]
    assert through(addon, request(), half, SSE, cut=True) == half
    (line,) = usage_lines(tmp_path)
    assert line["complete"] is False and line["input"] == 12 and line["cache_read"] == 5000
    assert line["output"] == 345  # message_start's count: the override here


def test_a_stream_cut_before_its_first_event_names_the_asked_model(
    addon: broker.EgressBroker, tmp_path: Path
) -> None:
    through(addon, request(), b"", SSE, cut=True)
    (line,) = usage_lines(tmp_path)
    assert line["model"] == MODEL and line["input"] == 0 and line["complete"] is False


@pytest.mark.parametrize(
    ("mangle", "unread"),
    [
        (lambda b: b.replace(b'"input_tokens": 12', b'"input_tokens": "12"'), "message_start"),
        (lambda b: b.replace(b'"input_tokens": 12', b'"input_tokens": 1e99'), "message_start"),
        (lambda b: b.replace(b'data: {"type": "message_delta"', b"data: {nope"), "not JSON"),
        (lambda b: b'event: surprise\ndata: {"type": "surprise"}\n\n' + b, None),
        (lambda b: b"event: message_delta\ndata: " + b"[" * 300_000 + b"\n\n" + b, "too long"),
    ],
)
def test_bad_input_passes_unchanged_and_the_log_says_what_was_unread(
    addon: broker.EgressBroker, tmp_path: Path, mangle: Any, unread: str | None
) -> None:
    body = mangle(sse(CACHED))
    assert through(addon, request(), body, SSE, split=4096) == body
    (line,) = usage_lines(tmp_path)
    if unread is None:
        assert "unread" not in line and line["input"] == 12
    else:
        assert unread in line["unread"]


def test_a_gzip_answer_is_read_and_passes_compressed(
    addon: broker.EgressBroker, tmp_path: Path
) -> None:
    body = gzip.compress(sse(CACHED))
    br = {**SSE, "content-encoding": "br"}
    assert through(addon, request(), body, {**SSE, "content-encoding": "gzip"}) == body
    assert through(addon, request(), b"\x1b\x00junk", br) == b"\x1b\x00junk"
    gz, brotli = usage_lines(tmp_path)
    assert [gz[k] for k in prices.KINDS] == [12, 345, 300, 400, 5000]
    assert "'br' is not read" in brotli["unread"] and brotli["input"] == 0


def test_a_large_json_answer_is_read_from_its_end(
    addon: broker.EgressBroker, tmp_path: Path
) -> None:
    doc = standin.message_json({"model": MODEL, "messages": []}, [])
    doc["content"] = [{"type": "text", "text": "y" * (5 * 1024**2)}]
    doc["usage"] = CACHED
    body = json.dumps(doc).encode()
    assert through(addon, request(), body, JSON, split=256 * 1024) == body
    (line,) = usage_lines(tmp_path)
    assert line["model"] == MODEL and line["cache_write_1h"] == 400 and line["output"] == 345


def test_other_hosts_and_paths_are_not_metered(addon: broker.EgressBroker, tmp_path: Path) -> None:
    f = request("/v1/models")
    f.request.method = "GET"
    with taddons.context(addon):
        addon.requestheaders(f)
        f.response = tutils.tresp()
        addon.responseheaders(f)
    assert f.response.stream is True and usage_lines(tmp_path) == []


def test_a_spent_budget_refuses_new_requests_until_raised(
    addon: broker.EgressBroker, tmp_path: Path
) -> None:
    big = {"input_tokens": 1_000_000, "output_tokens": 0}  # $3 of sonnet input
    (tmp_path / ledger.BUDGET_FILE).write_text(ledger.Budget(5.0, "day").to_json())
    through(addon, request(), sse(big), SSE)
    through(addon, request(), sse(big), SSE)  # $3 spent, under $5: it went
    refused = request()
    with taddons.context(addon):
        addon.requestheaders(refused)
    assert refused.response.status_code == 429
    error = json.loads(refused.response.content)
    assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
    assert "$6.00 of its budget of $5/day" in error["error"]["message"]
    assert refused.response.headers["x-should-retry"] == "false"
    assert refused.request.headers["x-api-key"] == PH  # never swapped, never sent
    counted = request("/v1/messages/count_tokens")
    with taddons.context(addon):
        addon.requestheaders(counted)
    assert counted.response.status_code == 429  # every Messages API call
    (tmp_path / ledger.BUDGET_FILE).write_text(ledger.Budget(40.0, "day").to_json())
    assert through(addon, request(), sse({}), SSE)  # raised: read again, it goes


def test_usage_survives_a_restart_and_rotation(tmp_path: Path) -> None:
    from backends.egress.metering import Metering

    first = Metering(tmp_path)
    first.log.limit = 600
    for n in range(6):
        reading = first.start(path="/v1/messages", status=200, headers=JSON)
        reading.feed(json.dumps({"model": MODEL, "usage": {"input_tokens": 10 + n}}).encode())
        first.finish(reading, complete=True, request=None)
    assert (tmp_path / (ledger.USAGE_FILE + ".1")).exists()
    again = Metering(tmp_path)  # a new sidecar, reading the files back
    assert again.ledger.total[MODEL]["input"] == sum(range(10, 16))
    assert again.ledger.total[MODEL]["requests"] == 6
    assert any("carry" in line for line in (tmp_path / ledger.USAGE_FILE).read_text().splitlines())


def test_the_price_table() -> None:
    tokens = {"input": 1_000_000, "output": 1_000_000, "cache_read": 1_000_000}
    assert prices.cost("claude-opus-4-5-20251101", tokens) == pytest.approx(5 + 25 + 0.5)
    assert prices.cost("claude-opus-4-1-20250805", tokens) == pytest.approx(15 + 75 + 1.5)
    assert prices.cost("us.anthropic.claude-haiku-4-5", tokens, 0.5) == pytest.approx(3.05)
    assert prices.cost("claude-stand-in", tokens) is None
    assert prices.cost("claude-opus-4-6", tokens) is None  # a newer model: not priced wrongly
    assert prices.family("anthropic.claude-sonnet-4-5-20250929-v1:0") == "claude-sonnet-4-5"
    assert prices.family("claude-haiku-4-5@20251001") == "claude-haiku-4-5"
    assert prices.family("claude-3-5-sonnet-latest") == "claude-3-5-sonnet"
    assert prices.cost(MODEL, tokens, prices.parse_price("none")) is None
    assert "claude-stand-in" in prices.unknown_reason("claude-stand-in")
    with pytest.raises(ValueError):
        prices.parse_price("-1")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("20/day", (20.0, "day")), ("100/week", (100.0, "week")), ("500", (500.0, "total"))],
)
def test_budget_words(text: str, parsed: tuple[float, str]) -> None:
    assert ledger.parse_budget(text) == parsed
    assert ledger.budget_text(*parsed) == text


@pytest.mark.parametrize("bad", ["", "0/day", "20/month", "twenty", "-5"])
def test_bad_budget_words(bad: str) -> None:
    with pytest.raises(ValueError, match="20/day"):
        ledger.parse_budget(bad)


def test_a_spent_budget_does_not_wait_for_a_body_of_no_announced_size(
    addon: broker.EgressBroker, tmp_path: Path
) -> None:
    (tmp_path / ledger.BUDGET_FILE).write_text(ledger.Budget(1.0, "total").to_json())
    through(addon, request(), sse({"input_tokens": 1_000_000}), SSE)  # $3: spent
    endless = request()
    del endless.request.headers["content-length"]
    endless.request.headers["transfer-encoding"] = "chunked"
    with taddons.context(addon):
        addon.requestheaders(endless)
    assert endless.response is None and endless.error is not None  # closed, not buffered
    assert json.loads((tmp_path / pol.LOG_FILE).read_text().splitlines()[-1])["check"] == "budget"
