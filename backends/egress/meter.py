"""Reading the token usage of one Messages API response as it passes the broker.

``ResponseMeter.feed`` is handed each chunk of the response body (the broker's stream
filter, which passes the chunk on unchanged whatever happens here); ``record`` gives the
usage line for the usage log. Memory stays bounded: a streamed answer is read line by
line (a line longer than ``MAX_LINE`` is skipped, the usage events are small), a JSON body
is kept whole up to ``MAX_BODY`` and beyond that only its head and tail (the usage is at
its end). A gzip or deflate body is read through an incremental decompressor (at most
``MAX_INFLATED`` bytes); any other encoding is not read (the record says so).

What it reads (and nothing else: never a prompt or a response's text):

- ``message_start``: the message's model and id, input, cache-write (the 5 min / 1 h split
  where given) and cache-read tokens, output so far;
- ``message_delta``: the cumulative counts (output, and any other field it carries);
- ``error``: the error's type;
- a JSON body: its model, id and usage (a ``count_tokens`` answer: its input tokens, which
  cost nothing).

Stdlib only: it runs in the sidecar beside ``addon.py`` (imported there as ``meter``), and
on the host in tests.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

#: An SSE line longer than this is not parsed (message_start/message_delta are far smaller).
MAX_LINE = 256 * 1024
#: A JSON body up to this size is parsed whole; a larger one by its head and tail.
MAX_BODY = 4 * 1024**2
HEAD_TAIL = 64 * 1024
#: A compressed body is read up to this many inflated bytes.
MAX_INFLATED = 256 * 1024**2
#: A token count above this is not believed (the record says the usage was unreadable).
MAX_TOKENS = 10**9
#: Strings kept from a response (model, ids, error type) are cut to this length.
MAX_TEXT = 120

#: The usage fields of the API -> the kinds of ``prices.KINDS``.
FIELDS = {
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_read_input_tokens": "cache_read",
}
#: ``cache_creation``'s split by lifetime.
CACHE_SPLIT = {
    "ephemeral_5m_input_tokens": "cache_write_5m",
    "ephemeral_1h_input_tokens": "cache_write_1h",
}
WANTED_EVENTS = {"message_start", "message_delta", "error"}
_SAFE = re.compile(r"[^A-Za-z0-9._:/@+-]")


def clean(value: Any) -> str:
    """A short, plain string of a response's identifier (model, id, type)."""
    return _SAFE.sub("?", str(value))[:MAX_TEXT] if value is not None else ""


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise ValueError(f"not a token count: {str(value)[:40]!r}")
    return value


def read_usage(usage: Any) -> dict[str, int]:
    """The token counts (by kind) of an API ``usage`` object; ValueError when it is not one
    (not an object, a count that is not a whole number from 0 to ``MAX_TOKENS``). Fields it
    does not carry are absent (a ``message_delta`` carries some)."""
    if not isinstance(usage, dict):
        raise ValueError("usage is not an object")
    tokens: dict[str, int] = {}
    for field, kind in FIELDS.items():
        if usage.get(field) is not None:
            tokens[kind] = _count(usage[field])
    split = usage.get("cache_creation")
    if isinstance(split, dict) and any(split.get(f) is not None for f in CACHE_SPLIT):
        for field, kind in CACHE_SPLIT.items():
            tokens[kind] = _count(split.get(field) or 0)
    elif usage.get("cache_creation_input_tokens") is not None:
        tokens["cache_write_5m"] = _count(usage["cache_creation_input_tokens"])
        tokens["cache_write_1h"] = 0
    return tokens


class ResponseMeter:
    """The usage of one response, read from its body chunk by chunk (never raises)."""

    def __init__(self, *, path: str, status: int, content_type: str, encoding: str,
                 request_id: str = "") -> None:  # fmt: skip
        self.path = path.split("?", 1)[0]
        self.status = status
        self.stream = "text/event-stream" in content_type.lower()
        self.request_id = clean(request_id)
        self.model = ""
        self.message_id = ""
        self.error = ""
        self.tokens: dict[str, int] = {}
        self.problems: list[str] = []
        self.bytes = 0
        self._line = b""
        self._skipping = False
        self._event = ""
        self._body: list[bytes] = []
        self._kept = 0
        self._tail = b""
        self._whole = True
        self._inflated = 0
        self._inflate: Any = None
        encoding = encoding.strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        elif encoding not in ("", "identity"):
            self.note(f"content-encoding {clean(encoding)!r} is not read")
        self._reading = not self.problems

    def note(self, problem: str) -> None:
        """Remember what could not be read (a few of them: the record stays small)."""
        if len(self.problems) < 5:
            self.problems.append(problem)

    # ------------------------------------------------------------------ feeding

    def feed(self, chunk: bytes) -> None:
        """Read ``chunk`` of the body; whatever it holds, this never raises."""
        self.bytes += len(chunk)
        if not self._reading or not chunk:
            return
        try:
            if self._inflate is not None:
                chunk = self._inflate.decompress(chunk, MAX_INFLATED - self._inflated + 1)
                self._inflated += len(chunk)
                if self._inflated > MAX_INFLATED:
                    self.note("compressed body too large to read")
                    self._reading = False
                    return
            if self.stream:
                self._feed_lines(chunk)
            else:
                self._keep(chunk)
        except Exception as exc:  # the meter never breaks the stream
            self.note(f"unreadable body: {type(exc).__name__}")
            self._reading = False

    def _feed_lines(self, chunk: bytes) -> None:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                rest = chunk[start:]
                if not self._skipping:
                    if len(self._line) + len(rest) > MAX_LINE:
                        self.note("an event line too long to read")
                        self._skipping, self._line = True, b""
                    else:
                        self._line += rest
                return
            piece = chunk[start:end]
            start = end + 1
            if self._skipping:
                self._skipping = False
                continue
            line, self._line = self._line + piece, b""
            self._sse_line(line.rstrip(b"\r"))

    def _sse_line(self, line: bytes) -> None:
        if line.startswith(b"event:"):
            self._event = line[6:].strip().decode("utf-8", "replace")
            return
        if not line:
            self._event = ""
            return
        if not line.startswith(b"data:"):
            return
        if self._event and self._event not in WANTED_EVENTS:
            return  # a text delta, a ping, an event type this does not know: not parsed
        try:
            data = json.loads(line[5:])
        except ValueError:
            self.note(f"event {clean(self._event) or '?'}: data is not JSON")
            return
        if isinstance(data, dict):
            self._event_data(str(data.get("type", self._event)), data)

    def _event_data(self, kind: str, data: dict[str, Any]) -> None:
        try:
            if kind == "message_start":
                message = data.get("message")
                if not isinstance(message, dict):
                    raise ValueError("message_start without a message")
                self.model = clean(message.get("model"))
                self.message_id = clean(message.get("id"))
                self.tokens.update(read_usage(message.get("usage")))
            elif kind == "message_delta":
                if data.get("usage") is not None:
                    self.tokens.update(read_usage(data["usage"]))
            elif kind == "error":
                error = data.get("error")
                self.error = clean(error.get("type") if isinstance(error, dict) else "error")
        except ValueError as exc:
            self.note(f"{kind}: {str(exc)[:80]}")

    def _keep(self, chunk: bytes) -> None:
        if self._whole and self._kept + len(chunk) <= MAX_BODY:
            self._body.append(chunk)
            self._kept += len(chunk)
            return
        if self._whole:
            head = b"".join(self._body)
            self._body, self._whole = [head[:HEAD_TAIL]], False
            self._tail = head[HEAD_TAIL:]
        self._tail = (self._tail + chunk)[-HEAD_TAIL:]

    # ------------------------------------------------------------------ the record

    def _json_body(self) -> None:
        head = b"".join(self._body)
        try:
            if self._whole:
                doc = json.loads(head) if head.strip() else None
                if doc is None:
                    return
                if not isinstance(doc, dict):
                    raise ValueError("the body is not a JSON object")
                self._doc(doc)
                return
            # Too large to keep: the model and id lead the object, the usage ends it.
            found = re.search(rb'"model"\s*:\s*"([^"]{0,200})"', head)
            self.model = clean(found.group(1).decode("utf-8", "replace")) if found else ""
            found = re.search(rb'"id"\s*:\s*"([^"]{0,200})"', head)
            self.message_id = clean(found.group(1).decode("utf-8", "replace")) if found else ""
            at = self._tail.rfind(b'"usage"')
            if at < 0:
                raise ValueError("no usage at the end of a large body")
            text = self._tail[at:].decode("utf-8", "replace")
            value = text[text.index(":") + 1 :].lstrip()
            self.tokens.update(read_usage(json.JSONDecoder().raw_decode(value)[0]))
        except ValueError as exc:
            self.note(f"body: {str(exc)[:80]}")

    def _doc(self, doc: dict[str, Any]) -> None:
        if doc.get("type") == "error":
            error = doc.get("error")
            self.error = clean(error.get("type") if isinstance(error, dict) else "error")
            return
        self.model = clean(doc.get("model"))
        self.message_id = clean(doc.get("id"))
        if self.path.endswith("/count_tokens"):
            return  # an estimate: no tokens are used (and none cost)
        if "usage" in doc:
            self.tokens.update(read_usage(doc["usage"]))

    def record(self, *, ts: str, complete: bool, model_asked: str = "") -> dict[str, Any]:
        """The usage log's line for this response (``complete`` False: the stream was cut
        off; the line has what it carried). Token kinds not seen are 0."""
        if self._reading and not self.stream:
            self._json_body()
        if self._reading and self.stream and self._line and not self._skipping:
            self._sse_line(self._line.rstrip(b"\r"))  # a last line without its newline
            self._line = b""
        line: dict[str, Any] = {
            "ts": ts,
            "model": self.model or clean(model_asked),
            "request_id": self.request_id,
            "message_id": self.message_id,
            "path": clean(self.path),
            "status": self.status,
            "stream": self.stream,
            "complete": complete,
        }
        for kind in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read"):
            line[kind] = int(self.tokens.get(kind, 0))
        if self.error:
            line["error"] = self.error
        if self.problems:
            line["unread"] = "; ".join(self.problems)
        return line
