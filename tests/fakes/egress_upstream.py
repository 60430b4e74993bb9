"""A test upstream ("the outside world") for the egress tests: stdlib only, run in a
container on the sidecar's outer network.

- ``GET /echo``: the request's method, path and headers as JSON (shows what the broker
  forwarded: the swapped credential, or that a header was left alone);
- ``GET /sse``: ``text/event-stream``; sends ``data: first``, then waits until
  ``GET /release`` arrives before it sends ``data: second`` — a buffering proxy would
  never deliver the first event before the release, so a test needs no clock;
- ``GET /stream``: ``text/event-stream`` of five token events sent at once, then closes
  (the benchmark's time to first token);
- any other path that names a file under ``/files`` (when mounted): that file; a folder
  serves its ``index.html`` or ``index.json`` (the git, pip and npm sites of
  package_sites.py); a path under ``/files`` that is not there: 404;
- ``GET /stream?keep``: the same five events, chunked, and the connection stays open
  (a second request on it is the benchmark's warm time to first token);
- listens on 80 (HTTP) and, when ``/certs/server.pem`` exists, on 443 (HTTPS).

``make_certs`` (run on the host) makes the CA and the server certificate it serves.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RELEASE = threading.Event()
FILES = Path("/files")
TYPES = {".html": "text/html", ".json": "application/json"}


def static_file(path: str) -> Path | None:
    """The file under ``FILES`` that the URL path ``path`` names (query dropped, no way
    out of the folder), or None."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if any(p in (".", "..") for p in parts):
        return None
    found = FILES.joinpath(*parts)
    if found.is_dir():
        found = next(
            (found / n for n in ("index.html", "index.json") if (found / n).is_file()), found
        )
    return found if found.is_file() else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Each event is its own small write: with Nagle's algorithm on, an event waits for
    # the ACK of the headers (the peer's delayed ACK, ~40 ms), which no real API does.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _seen(self) -> None:
        """One line per request on stdout (``docker logs``): the test's view of what reached
        "the outside" (method, target, Host; never a credential)."""
        print(json.dumps({"seen": self.command, "path": self.path,
                          "host": self.headers.get("Host", "")}), flush=True)  # fmt: skip

    def do_GET(self) -> None:
        self._seen()
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
            # ?keep: chunked, the connection stays open; else it closes after the events.
            keep = self.path.startswith("/stream?keep")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header(
                *(("Transfer-Encoding", "chunked") if keep else ("Connection", "close"))
            )
            self.end_headers()
            for i in range(5):
                event = f"data: token {i}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event) if keep else event)
                self.wfile.flush()
            if keep:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            self.close_connection = not keep
            return
        if self.path.startswith("/release"):
            RELEASE.set()
            self._send(200, b"released")
            return
        if FILES.is_dir() and not self.path.startswith("/echo"):
            found = static_file(self.path)
            if found is None:
                self._send(404, b"not found", "text/plain")
                return
            ctype = TYPES.get(found.suffix, "application/octet-stream")
            self._send(200, found.read_bytes(), ctype)
            return
        self._echo()

    def do_POST(self) -> None:
        self._seen()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._sink()
            return
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._echo()

    def _sink(self) -> None:
        """A chunked body read to its end (or until the connection breaks); how much came is
        logged (``{"sink": bytes, "complete": bool}``) and answered."""
        got, complete = 0, False
        try:
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    complete = True
                    break
                got += len(self.rfile.read(size))
                self.rfile.readline()
        except (OSError, ValueError):
            pass
        print(json.dumps({"sink": got, "complete": complete}), flush=True)
        if complete:
            self._send(200, json.dumps({"received": got}).encode())
        else:
            self.close_connection = True

    def _echo(self) -> None:
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        ).encode()
        self._send(200, body)


def make_certs(where: Path, names: Sequence[str]) -> Path:
    """A CA and a server certificate for ``names`` in ``where`` (``server.pem``,
    ``server.key``: what ``main`` serves from ``/certs``), all world-readable; returns the
    CA certificate."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True, timeout=60)

    where.mkdir(parents=True, exist_ok=True)
    openssl(
        "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=egress test upstream CA", "-keyout", "ca.key", "-out", "ca.pem",
    )  # fmt: skip
    openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}",
        "-keyout", "server.key", "-out", "server.csr",
    )  # fmt: skip
    (where / "ext").write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "server.pem",
    )  # fmt: skip
    for f in where.iterdir():
        f.chmod(0o644)
    return where / "ca.pem"


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
