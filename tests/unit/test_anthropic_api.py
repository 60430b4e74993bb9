"""The stand-in Anthropic API (tests/fakes/anthropic_api.py) answers like the real one:
checked over loopback with a plain HTTP client."""

from __future__ import annotations

import http.client
import json
from typing import Any

from tests.fakes.anthropic_api import StandInAPI, sse_events


def _post(api: StandInAPI, path: str, body: dict[str, Any]) -> http.client.HTTPResponse:
    host, port = api.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request(
        "POST",
        path,
        json.dumps(body),
        {"content-type": "application/json", "x-api-key": "sk-test", "anthropic-version": "v"},
    )
    return conn.getresponse()


def _events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for chunk in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def test_streamed_text_answer_in_the_real_order_and_recorded() -> None:
    with StandInAPI() as api:
        body = {
            "model": "m",
            "stream": True,
            "system": [{"type": "text", "text": "SYS-A"}, {"type": "text", "text": "SYS-B"}],
            "messages": [_user("<system-reminder>x</system-reminder>"), _user("hello")],
        }
        resp = _post(api, "/v1/messages?beta=true", body)
        assert resp.status == 200
        assert resp.getheader("content-type", "").startswith("text/event-stream")
        assert resp.getheader("transfer-encoding") == "chunked"
        events = _events(resp.read().decode())
        names = [e for e, _ in events]
        assert names[:3] == ["message_start", "content_block_start", "ping"]
        assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
        assert all(e == d["type"] for e, d in events)
        text = "".join(d["delta"]["text"] for e, d in events if e == "content_block_delta")
        assert text == "stand-in answer: hello"
        assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
        (rec,) = api.messages()
        assert rec.headers["x-api-key"] == "sk-test"
        assert rec.system == "SYS-A\nSYS-B" and rec.last_user_text == "hello"


def test_tool_use_then_tool_result() -> None:
    with StandInAPI() as api:
        api.on("list files", tool="Bash", command="ls")
        events = sse_events({"messages": [_user("please list files")]}, api.rules)
        start = next(d for e, d in events if e == "content_block_start")
        assert start["content_block"]["type"] == "tool_use"
        assert start["content_block"]["name"] == "Bash"
        partial = "".join(
            d["delta"]["partial_json"] for e, d in events if e == "content_block_delta"
        )
        assert json.loads(partial) == {"command": "ls"}
        assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
        result = {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t", "content": "a.txt"}],
        }
        resp = _post(api, "/v1/messages", {"messages": [_user("list files"), result]})
        doc = json.loads(resp.read())
        assert doc["content"] == [{"type": "text", "text": "tool result: a.txt"}]


def test_remote_control_endpoints() -> None:
    with StandInAPI() as api:
        resp = _post(api, "/_stand-in/rules", [{"contains": "ping", "text": "pong"}])  # type: ignore[arg-type]
        assert resp.status == 200
        resp.read()
        doc = json.loads(_post(api, "/v1/messages", {"messages": [_user("ping")]}).read())
        assert doc["content"][0]["text"] == "pong"
        host, port = api.address
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/_stand-in/requests")
        recorded = json.loads(conn.getresponse().read())
        assert [r["path"] for r in recorded] == ["/v1/messages"]
        assert recorded[0]["body"]["messages"][0]["content"][0]["text"] == "ping"
