"""The egress broker: a mitmproxy addon, run in the sidecar as ``mitmdump -s addon.py``.

Each decision comes from ``policy.py`` (pure, copied beside this file in the sidecar):

- ``http_connect``: the CONNECT host:port must be on the allowlist, else a 403;
- ``tls_clienthello``: the ClientHello's SNI must name the tunnel's (CONNECT) host, else
  the handshake fails (``tls_start_client`` hands mitmproxy a TLS context without a
  certificate: the client gets a handshake-failure alert, never a certificate);
- ``requestheaders``: the TLS SNI must match the tunnel's host (again: a connection the
  handshake check let through has no other SNI), the Host header the request's host,
  and that host:port must be allowed, else a 403 (no upstream connection is made: the
  sidecar runs with ``connection_strategy=lazy``);
- ``request``: a request that carries the credential placeholder (headers, URL or body)
  goes only to the API host, where the placeholder is replaced by the real credential in
  ``Authorization``/``x-api-key``; anywhere else it is refused;
- ``responseheaders``: every response streams (server-sent events pass token by token).

Every decision is one JSON line in ``/egress/egress.log`` (the agent's egress log on the
host). The policy and the credential are read again when their files change, so an
allowlist edit applies without restarting the sidecar.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mitmproxy import ctx, http, tls

try:
    from backends.egress import policy
except ImportError:  # in the sidecar, policy.py sits beside this file
    import policy  # type: ignore[no-redef]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Cached:
    """A file read again only when its mtime or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp: tuple[int, int] | None = None
        self.text = ""

    def read(self) -> str:
        try:
            st = self.path.stat()
        except OSError:
            self.stamp, self.text = None, ""
            return ""
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self.stamp:
            self.text = self.path.read_text(encoding="utf-8").strip()
            self.stamp = stamp
        return self.text


class EgressBroker:
    """Allowlist, credential broker and decision log for one bottle."""

    def __init__(self, directory: str = policy.SIDECAR_DIR) -> None:
        self.configure_dir(directory)

    def configure_dir(self, directory: str) -> None:
        base = Path(directory)
        self._policy_file = _Cached(base / policy.POLICY_FILE)
        self._credential = _Cached(base / policy.CREDENTIAL_FILE)
        self._log_path = base / policy.LOG_FILE
        self._policy: policy.Policy | None = None
        self._policy_text = ""
        self._log_fd: int | None = None
        #: Client connections whose ClientHello named another host than their tunnel's.
        self._refused_tls: set[str] = set()

    def load(self, loader: Any) -> None:
        loader.add_option(
            "egress_dir", str, policy.SIDECAR_DIR, "Directory of policy.json, credential, log"
        )

    def configure(self, updated: set[str]) -> None:
        if "egress_dir" in updated:
            self.configure_dir(ctx.options.egress_dir)

    # ------------------------------------------------------------------ state

    @property
    def current(self) -> policy.Policy:
        text = self._policy_file.read()
        if self._policy is None or text != self._policy_text:
            # No readable policy: nothing is allowed (fail closed).
            self._policy = policy.Policy.from_json(text) if text else policy.Policy("?", ())
            self._policy_text = text
        return self._policy

    def log(self, decision: policy.Decision, flow: http.HTTPFlow | None = None) -> None:
        method = flow.request.method if flow is not None else ""
        client = ""
        if flow is not None and flow.client_conn.peername:
            client = str(flow.client_conn.peername[0])
        line = policy.log_line(decision, ts=_now(), method=method, client=client) + "\n"
        if self._log_fd is None:
            self._log_fd = os.open(self._log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(self._log_fd, line.encode())

    def deny(self, flow: http.HTTPFlow, decision: policy.Decision) -> None:
        self.log(decision, flow)
        flow.response = http.Response.make(
            403,
            policy.deny_body(decision, self.current.agent),
            {"Content-Type": "text/plain; charset=utf-8", "X-Bottle-Egress": "denied"},
        )
        flow.response.reason = policy.deny_reason(decision, self.current.agent)

    # ------------------------------------------------------------------ hooks

    def http_connect(self, flow: http.HTTPFlow) -> None:
        decision = policy.check_target(self.current, flow.request.host, flow.request.port)
        if not decision.allow:
            self.deny(flow, decision)
            return
        self.log(decision, flow)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        address = data.context.server.address
        if not address:
            return
        decision = policy.check_sni(self.current, address[0], address[1], data.client_hello.sni)
        if not decision.allow:
            self.log(decision)
            self._refused_tls.add(data.context.client.id)

    def tls_start_client(self, data: tls.TlsData) -> None:
        if data.context.client.id not in self._refused_tls:
            return
        self._refused_tls.discard(data.context.client.id)
        # Script addons run before mitmproxy's own TLS setup, which keeps a context that
        # is already there: one without a certificate ends the handshake with an alert.
        from OpenSSL import SSL

        refused = SSL.Connection(SSL.Context(SSL.TLS_METHOD))
        refused.set_accept_state()
        data.ssl_conn = refused

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        pol = self.current
        host, port = flow.request.host, flow.request.port
        client = flow.client_conn
        if client.tls_established:
            decision = policy.check_sni(pol, host, port, client.sni)
            if not decision.allow:
                self.deny(flow, decision)
                return
        decision = policy.check_host_header(pol, host, port, flow.request.host_header)
        if not decision.allow:
            self.deny(flow, decision)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:  # already denied
            return
        pol = self.current
        host, port = flow.request.host, flow.request.port
        parts: list[str | bytes] = [flow.request.url, *flow.request.headers.values()]
        if flow.request.raw_content:
            parts.append(flow.request.raw_content)
        found = policy.carries(pol.placeholder, parts)
        decision = policy.check_placeholder(pol, host, port, found)
        if not decision.allow:
            self.deny(flow, decision)
            return
        extra: dict[str, Any] = {}
        if found:
            real = self._credential.read()
            swaps = policy.swapped_headers(
                dict(flow.request.headers.items()), pol.placeholder, real
            )
            for name, value in swaps.items():
                flow.request.headers[name] = value
            extra["credential"] = "swapped" if swaps else "none"
        self.log(
            policy.Decision(True, policy.normal_host(host), port, "request", extra=extra), flow
        )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            flow.response.stream = True


addons = [EgressBroker()]
