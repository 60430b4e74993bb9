"""An attacker's client on a bottle's own network (test fixture, run in a container there):
talks to the bottle's egress sidecar the way a turned agent would, byte for byte.

Usage (prints one JSON object):
  proxy_client.py raw PROXY HEX [HEX ...]      send each chunk (hex) a second apart; the
                                               reply (hex) and whether the peer closed
  proxy_client.py tls PROXY TARGET SNI REQUEST_HEX [CAFILE]
                                               CONNECT TARGET, TLS with SNI (the bottle's
                                               CA trusted when given, no hostname check),
                                               then the request; the status and reply
  proxy_client.py h2 PROXY TARGET SNI PATH AUTHORITY [HEADER=VALUE ...]
                                               the same over HTTP/2 (ALPN h2) with these
                                               pseudo-headers, ``h2`` from the image
  proxy_client.py sse PROXY URL_FIRST URL_RELEASE
                                               the first event of URL_FIRST arrives before
                                               URL_RELEASE is sent (no buffering proxy)

PROXY is host:port. Only ever run against the test's own sidecar and networks.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import time


def _proxy(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _read_all(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    sock.settimeout(seconds)
    data = b""
    closed = False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except (TimeoutError, OSError):
        pass
    return data, closed


def raw(proxy: str, *chunks: str) -> dict[str, object]:
    with socket.create_connection(_proxy(proxy), timeout=10) as sock:
        reply = b""
        closed = False
        for chunk in chunks:
            sock.sendall(bytes.fromhex(chunk))
            got, closed = _read_all(sock, 1.5)
            reply += got
            if closed:
                break
        if not closed:
            got, closed = _read_all(sock, 2.0)
            reply += got
    return {"reply": reply.hex(), "closed": closed}


def _tunnel(proxy: str, target: str) -> tuple[socket.socket, str]:
    sock = socket.create_connection(_proxy(proxy), timeout=15)
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head.split(b"\r\n", 1)[0].decode("latin-1")


def _context(cafile: str | None, alpn: list[str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    context.check_hostname = False  # the SNI under test need not be the certificate's name
    if not cafile:
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    return context


def tls(proxy: str, target: str, sni: str, request_hex: str, cafile: str = "") -> dict[str, object]:
    sock, status = _tunnel(proxy, target)
    if not status.startswith("HTTP/1.1 200"):
        sock.close()
        return {"connect": status, "reply": ""}
    try:
        with _context(cafile or None, ["http/1.1"]).wrap_socket(sock, server_hostname=sni) as tls_:
            tls_.sendall(bytes.fromhex(request_hex))
            reply, _ = _read_all(tls_, 5.0)
        return {"connect": status, "reply": reply.decode("latin-1")}
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        return {"connect": status, "error": f"handshake failed: {exc}"}


def http2(
    proxy: str, target: str, sni: str, path: str, authority: str, *headers: str
) -> dict[str, object]:
    import h2.config
    import h2.connection
    import h2.events

    sock, status = _tunnel(proxy, target)
    if not status.startswith("HTTP/1.1 200"):
        return {"connect": status}
    try:
        tls_ = _context(None, ["h2"]).wrap_socket(sock, server_hostname=sni)
    except (ssl.SSLError, OSError) as exc:
        return {"connect": status, "error": f"handshake failed: {exc}"}
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    extra = [tuple(h.split("=", 1)) for h in headers]
    conn.send_headers(
        1,
        [(":method", "GET"), (":scheme", "https"), (":path", path), (":authority", authority),
         *extra],
        end_stream=True,
    )  # fmt: skip
    tls_.sendall(conn.data_to_send())
    out: dict[str, object] = {"connect": status, "alpn": tls_.selected_alpn_protocol()}
    body = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            data = tls_.recv(65536)
        except (TimeoutError, OSError):
            break
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                out["status"] = dict(event.headers).get(b":status", b"").decode()
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                deadline = 0
        tls_.sendall(conn.data_to_send())
    out["body"] = body.decode("latin-1")
    return out


def sse(proxy: str, first: str, release: str) -> dict[str, object]:
    host = first.split("/")[2]
    with socket.create_connection(_proxy(proxy), timeout=20) as conn:
        conn.sendall(f"GET {first} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        got = b""
        while b"data: first" not in got:
            chunk = conn.recv(4096)
            if not chunk:
                return {"error": f"closed before the first event: {got!r}"}
            got += chunk
        early_second = b"data: second" in got
        with socket.create_connection(_proxy(proxy), timeout=20) as rel:
            rel.sendall(f"GET {release} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            released = rel.recv(4096).startswith(b"HTTP/1.1 200")
        while b"data: second" not in got:
            chunk = conn.recv(4096)
            if not chunk:
                return {"error": f"closed before the second event: {got!r}"}
            got += chunk
    return {"first_before_release": not early_second, "released": released}


def main(argv: list[str]) -> int:
    commands = {"raw": raw, "tls": tls, "h2": http2, "sse": sse}
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(commands[argv[0]](*argv[1:])))  # type: ignore[operator]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
