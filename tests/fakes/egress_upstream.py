"""A test upstream ("the outside world") for the egress tests: stdlib only, run in a
container on the sidecar's outer network.

- ``GET /echo``: the request's method, path and headers as JSON (shows what the broker
  forwarded: the swapped credential, or that a header was left alone);
- ``GET /sse``: ``text/event-stream``; sends ``data: first``, then waits until
  ``GET /release`` arrives before it sends ``data: second`` — a buffering proxy would
  never deliver the first event before the release, so a test needs no clock;
- ``GET /stream``: ``text/event-stream`` of five token events sent at once, then closes
  (the benchmark's time to first token);
- listens on 80 (HTTP) and, when ``/certs/server.pem`` exists, on 443 (HTTPS).
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RELEASE = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/sse"):
            RELEASE.clear()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"data: first\n\n")
            self.wfile.flush()
            RELEASE.wait(60)
            self.wfile.write(b"data: second\n\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(5):
                self.wfile.write(f"data: token {i}\n\n".encode())
                self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/release"):
            RELEASE.set()
            self._send(200, b"released")
            return
        self._echo()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._echo()

    def _echo(self) -> None:
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        ).encode()
        self._send(200, body)


def serve(port: int, context: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    serve(80)
    cert = Path("/certs/server.pem")
    if cert.exists():
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(Path("/certs/server.key")))
        serve(443, context)
    print("upstream listening", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
