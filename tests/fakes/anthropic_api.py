"""A stand-in for the Anthropic Messages API (test fixture; stdlib only).

Claude Code pointed at it (``ANTHROPIC_BASE_URL=http://host:port``) holds a conversation
with it. It answers ``POST /v1/messages`` streaming (server-sent events in the real API's
order and shapes: ``message_start``, ``content_block_start``, ``ping``,
``content_block_delta`` with ``text_delta``/``input_json_delta``, ``content_block_stop``,
``message_delta`` with ``stop_reason`` and usage, ``message_stop``; chunked transfer
encoding, like the real API) and non-streaming, ``POST /v1/messages/count_tokens`` and
``GET /v1/models``. Every request is recorded with its headers and body.

What it answers: the first rule (``StandInAPI.on``) whose ``contains`` is in the last
user text wins, replying with text or a tool call; a request whose last user message
carries a ``tool_result`` gets ``tool result: <its text>``; anything else gets
``stand-in answer: <the last user text>``.

Three ways to run it:

- in process: ``with StandInAPI(("127.0.0.1", 0)) as api: api.url, api.requests``;
- standalone: ``python anthropic_api.py --listen 0.0.0.0:8080`` (``--tls-cert``/``--tls-key``
  to serve HTTPS);
- in a container on a test network (``python3 /anthropic_api.py --listen 0.0.0.0:8080``),
  read back over HTTP: ``GET /_stand-in/requests`` (JSON list of recorded requests),
  ``POST /_stand-in/rules`` (a JSON list of rules, replacing the current ones),
  ``POST /_stand-in/usage`` (``{"usage": {...}, "cut_after": n}``: ``StandInAPI.set_usage``),
  ``POST /_stand-in/reset`` (forget requests and rules).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "claude-stand-in"


@dataclass
class Rule:
    """When ``contains`` is in the last user text: answer ``text``, or call ``tool`` with
    ``tool_input`` (stop reason ``tool_use``)."""

    contains: str
    text: str = ""
    tool: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or the raw text when it was not JSON

    @property
    def system(self) -> str:
        """The system prompt as one string (Claude Code sends a list of text blocks)."""
        system = self.body.get("system", "") if isinstance(self.body, dict) else ""
        if isinstance(system, list):
            return "\n".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
        return str(system)

    @property
    def last_user_text(self) -> str:
        return last_user_text(self.body if isinstance(self.body, dict) else {})


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            out.append(str(block.get("text", "")))
    return out


def last_user_text(body: dict[str, Any]) -> str:
    """The last text the user typed (Claude Code's ``<system-reminder>`` blocks skipped)."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        texts = [t for t in _texts(message.get("content")) if not t.startswith("<system-")]
        if texts:
            return texts[-1].strip()
    return ""


def _tool_result(body: dict[str, Any]) -> str | None:
    messages = body.get("messages") or []
    if not messages or messages[-1].get("role") != "user":
        return None
    content = messages[-1].get("content")
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            inner = block.get("content")
            return "\n".join(_texts(inner)) if not isinstance(inner, str) else inner
    return None


def reply_blocks(body: dict[str, Any], rules: list[Rule]) -> tuple[list[dict[str, Any]], str]:
    """The content blocks and stop reason the stand-in answers ``body`` with."""
    result = _tool_result(body)
    if result is not None:
        return [{"type": "text", "text": f"tool result: {result.strip()[:500]}"}], "end_turn"
    text = last_user_text(body)
    for rule in rules:
        if rule.contains in text:
            if rule.tool:
                block = {
                    "type": "tool_use",
                    "id": "toolu_" + uuid.uuid4().hex[:24],
                    "name": rule.tool,
                    "input": rule.tool_input,
                }
                return ([{"type": "text", "text": rule.text}] if rule.text else []) + [
                    block
                ], "tool_use"
            return [{"type": "text", "text": rule.text}], "end_turn"
    return [{"type": "text", "text": f"stand-in answer: {text}"}], "end_turn"


#: The usage every answer reports instead of the computed one (``StandInAPI.usage``); the
#: ``output_tokens`` of a stream's ``message_delta`` is taken from it too.
USAGE_OVERRIDE: dict[str, Any] = {}


def _usage(body: dict[str, Any]) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": max(1, len(json.dumps(body.get("messages", []))) // 4),
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    return {**usage, **USAGE_OVERRIDE}


def sse_events(body: dict[str, Any], rules: list[Rule]) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of one streamed answer, in the real API's order."""
    blocks, stop = reply_blocks(body, rules)
    message = {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(body),
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": message}),
    ]
    out_tokens = 0
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            text = block["text"]
            pieces = [text[i : i + 16] for i in range(0, len(text), 16)] or [""]
            deltas = [{"type": "text_delta", "text": p} for p in pieces]
        else:
            start = {**block, "input": {}}
            raw = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
                {"type": "input_json_delta", "partial_json": raw[i : i + 16]}
                for i in range(0, len(raw), 16)
            ]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        for delta in deltas:
            out_tokens += 1
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": USAGE_OVERRIDE.get("output_tokens", max(1, out_tokens))},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def message_json(body: dict[str, Any], rules: list[Rule]) -> dict[str, Any]:
    """The non-streaming answer."""
    blocks, stop = reply_blocks(body, rules)
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or MODEL,
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _usage(body),
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return raw.decode(errors="replace")

    def _json(self, status: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/_stand-in/requests":
            self._json(200, [asdict(r) for r in self.server.api.requests])
            return
        self.server.api.record(self.command, self.path, dict(self.headers.items()), None)
        if path == "/v1/models":
            model = {"type": "model", "id": MODEL, "display_name": "Stand-in"}
            self._json(200, {"data": [model], "has_more": False})
            return
        self._not_found()

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def _not_found(self) -> None:
        self._json(
            404,
            {"type": "error", "error": {"type": "not_found_error", "message": self.path}},
        )

    def do_POST(self) -> None:
        api = self.server.api
        path = self.path.split("?")[0]
        body = self._body()
        if path == "/_stand-in/rules":
            api.rules = [Rule(**r) for r in body]
            self._json(200, {"rules": len(api.rules)})
            return
        if path == "/_stand-in/usage":
            api.set_usage(body.get("usage") or {}, cut_after=body.get("cut_after"))
            self._json(200, {})
            return
        if path == "/_stand-in/reset":
            api.reset()
            self._json(200, {})
            return
        api.record(self.command, self.path, dict(self.headers.items()), body)
        if not isinstance(body, dict):
            body = {}
        if path == "/v1/messages/count_tokens":
            self._json(200, {"input_tokens": _usage(body)["input_tokens"]})
            return
        if path != "/v1/messages":
            self._not_found()
            return
        if not body.get("stream"):
            self._json(200, message_json(body, api.rules))
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        self.end_headers()
        for n, (event, data) in enumerate(sse_events(body, api.rules)):
            if api.cut_after is not None and n >= api.cut_after:
                self.close_connection = True  # cut off midway: no last chunk
                return
            self._chunk(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: StandInAPI


class StandInAPI:
    """The stand-in, serving on ``address`` (port 0 picks a free one) in a thread."""

    def __init__(
        self,
        address: tuple[str, int] = ("127.0.0.1", 0),
        *,
        tls: tuple[str, str] | None = None,  # (certificate file, key file)
    ) -> None:
        self.rules: list[Rule] = []
        self.requests: list[Recorded] = []
        #: A stream is cut off (the connection closed) after this many events.
        self.cut_after: int | None = None
        self._lock = threading.Lock()
        self._server = _Server(address, _Handler)
        self._server.api = self
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"{self.scheme}://{host}:{port}"

    def on(self, contains: str, text: str = "", *, tool: str = "", **tool_input: Any) -> None:
        """Add a rule (see ``Rule``)."""
        self.rules.append(Rule(contains, text, tool, dict(tool_input)))

    def set_usage(self, usage: dict[str, Any], *, cut_after: int | None = None) -> None:
        """Answer with ``usage`` (fields over the computed ones; {} for those alone) and
        cut streams off after ``cut_after`` events (None: whole)."""
        USAGE_OVERRIDE.clear()
        USAGE_OVERRIDE.update(usage)
        self.cut_after = cut_after

    def record(self, method: str, path: str, headers: dict[str, str], body: Any) -> None:
        with self._lock:
            low = {k.lower(): v for k, v in headers.items()}
            self.requests.append(Recorded(method, path, low, body))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
        self.rules = []
        self.set_usage({})

    def messages(self) -> list[Recorded]:
        """Recorded ``POST /v1/messages`` requests."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == "/v1/messages"]

    def wait_for(self, pred: Callable[[Recorded], bool], timeout: float = 60) -> Recorded:
        """The first recorded messages request matching ``pred``, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.messages():
                if pred(rec):
                    return rec
            time.sleep(0.1)
        raise TimeoutError(f"no /v1/messages request matched within {timeout}s")

    def start(self) -> StandInAPI:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StandInAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Stand-in Anthropic Messages API")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", help="and this key")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    api = StandInAPI((host or "0.0.0.0", int(port)), tls=tls)
    print(f"stand-in Anthropic API on {api.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        api._server.serve_forever()


if __name__ == "__main__":
    main()
