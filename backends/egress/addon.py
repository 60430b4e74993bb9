"""The egress broker: a mitmproxy addon, run in the sidecar as ``mitmdump -s addon.py``.

Each decision comes from ``policy.py`` (pure, with its siblings beside this file in the
sidecar); this file only wires them to mitmproxy's hooks (``flows.py`` holds what it hands
mitmproxy for a refused tunnel and a streamed body; ``sidecar_files.py`` the policy,
credential, log and status files it keeps):

- ``http_connect``: the CONNECT host:port must be on the allowlist, else a 403;
- ``next_layer``: a tunnel's first bytes must be TLS the sidecar intercepts or HTTP; else
  the client gets a 403 line and the connection is closed, logged (a ClientHello with
  another record version passed as raw TCP, unread; ``rawtcp`` is forced off too);
- ``tls_clienthello``: the ClientHello's SNI must name the tunnel's (CONNECT) host, else
  the handshake fails (``tls_start_client`` hands mitmproxy a TLS context without a
  certificate: the client gets a handshake-failure alert, never a certificate);
- ``requestheaders``: the status hooks' requests are answered here; then the SNI again,
  the request target (an absolute URL naming another host than the tunnel's is refused,
  and every request leaves in origin-form), the Host header (host and port), plain HTTP
  never to port 443, the allowlist; ``Forwarded``/``X-Forwarded-*`` are removed; the
  credential rules (the placeholder only to the API host, over HTTPS; no other key to the
  API host) and the swap; large bodies are streamed and searched as they pass;
- ``request``: a buffered body is searched for the placeholder;
- ``server_connect``: the name is resolved here and every address checked (no loopback,
  link-local or metadata address, nothing of the sidecar's own networks, private ranges
  only where a rule names them); the connection goes to the checked address;
- ``responseheaders``: every response streams (server-sent events pass token by token);
  an API response is read as it passes (``metering``: usage log, budget), one line when it
  ends (``response``) or is cut off (``error``). A Messages request once the agent's
  budget is spent is answered in ``requestheaders`` with an API-shaped error.

Every decision is one JSON line in ``/egress/egress.log`` (rotated at
``policy.LOG_MAX_BYTES``, one older file kept). A request marked by ``bottle-dash probe``
(``policy.PROBE_HEADER``) is checked like any other, logged as probe traffic, and answered
here: it never leaves the sidecar. The policy and the credential are read again when their
files change, so an allowlist edit applies without restarting the sidecar.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mitmproxy import ctx, http, tls

try:
    from backends.egress import policy
    from backends.egress.flows import BodyScan, Refused
    from backends.egress.metering import MeteredHooks, Metering, metered
    from backends.egress.sidecar_files import CachedFile, RotatedLog, keep_status, read_text
except ImportError:  # in the sidecar, they sit beside this file
    import policy  # type: ignore[no-redef]
    from flows import BodyScan, Refused  # type: ignore[no-redef]
    from metering import MeteredHooks, Metering, metered  # type: ignore[no-redef]
    from sidecar_files import (  # type: ignore[no-redef]
        CachedFile,
        RotatedLog,
        keep_status,
        read_text,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


#: Options that would let traffic pass unread or unverified: forced to these values.
SAFE_OPTIONS: dict[str, Any] = {
    "rawtcp": False,
    "http2": False,
    "ssl_insecure": False,
    "ignore_hosts": [],
    "allow_hosts": [],
    "tcp_hosts": [],
    "udp_hosts": [],
    "connection_strategy": "lazy",
}


class EgressBroker(MeteredHooks):
    """Allowlist, credential broker and decision log for one bottle."""

    def __init__(self, directory: str = policy.SIDECAR_DIR) -> None:
        self.configure_dir(directory)
        #: The sidecar's own addresses and gateways (the host): never dialled.
        self.own: list[str] = []

    def configure_dir(self, directory: str) -> None:
        base = Path(directory)
        self._dir = base
        self._policy_file = CachedFile(base / policy.POLICY_FILE)
        self._credential = CachedFile(base / policy.CREDENTIAL_FILE)
        self._log = RotatedLog(base / policy.LOG_FILE)
        self._metering = Metering(base)
        self._policy: policy.Policy | None = None
        self._policy_text = ""
        #: Client connections whose ClientHello named another host than their tunnel's.
        self._refused_tls: set[str] = set()
        #: Client connection -> the host:port its CONNECT opened.
        self._tunnels: dict[str, tuple[str, int]] = {}
        #: Client connection -> the probe mark its CONNECT carried.
        self._probes: dict[str, str] = {}
        #: Client connections whose tunnel bytes were judged (one line each).
        self._judged: set[str] = set()

    def load(self, loader: Any) -> None:
        loader.add_option(
            "egress_dir", str, policy.SIDECAR_DIR, "Directory of policy.json, credential, log"
        )

    def configure(self, updated: set[str]) -> None:
        if "egress_dir" in updated:
            self.configure_dir(ctx.options.egress_dir)
        unsafe = {k: v for k, v in SAFE_OPTIONS.items() if getattr(ctx.options, k, v) != v}
        if unsafe:
            ctx.options.update(**unsafe)

    def running(self) -> None:
        self.own = sorted(
            {*policy.local_addresses(read_text("/proc/net/fib_trie")),
             *policy.gateways(read_text("/proc/net/route"))}
        )  # fmt: skip

    # ------------------------------------------------------------------ state

    @property
    def current(self) -> policy.Policy:
        text = self._policy_file.read()
        if self._policy is None or text != self._policy_text:
            # No readable policy: nothing is allowed (fail closed).
            try:
                self._policy = policy.Policy.from_json(text) if text else policy.Policy("?", ())
            except (ValueError, KeyError, TypeError):
                self._policy = policy.Policy("?", ())
            self._policy_text = text
        return self._policy

    def log(
        self, decision: policy.Decision, flow: http.HTTPFlow | None = None, probe: str = ""
    ) -> None:
        method = flow.request.method if flow is not None else ""
        self._log.limit = self.current.log_max
        client = ""
        if flow is not None and flow.client_conn.peername:
            client = str(flow.client_conn.peername[0])
        self._log.write(
            policy.log_line(decision, ts=_now(), method=method, client=client, probe=probe)
        )

    def deny(self, flow: http.HTTPFlow, decision: policy.Decision, probe: str = "") -> None:
        self.log(decision, flow, probe)
        flow.response = http.Response.make(
            403,
            policy.deny_body(decision, self.current.agent),
            {"Content-Type": "text/plain; charset=utf-8", "X-Bottle-Egress": "denied"},
        )
        flow.response.reason = policy.deny_reason(decision, self.current.agent)

    def _probe(self, flow: http.HTTPFlow) -> str:
        return policy.probe_mark(dict(flow.request.headers.items())) or self._probes.get(
            flow.client_conn.id, ""
        )

    # ------------------------------------------------------------------ hooks

    def http_connect(self, flow: http.HTTPFlow) -> None:
        probe = self._probe(flow)
        if probe:
            self._probes[flow.client_conn.id] = probe
        decision = policy.check_target(self.current, flow.request.host, flow.request.port)
        if not decision.allow:
            self.deny(flow, decision, probe)
            return
        self._tunnels[flow.client_conn.id] = (
            policy.normal_host(flow.request.host),
            flow.request.port,
        )
        self.log(decision, flow, probe)

    def client_disconnected(self, client: Any) -> None:
        for table in (self._tunnels, self._probes):
            table.pop(client.id, None)
        self._judged.discard(client.id)
        self._refused_tls.discard(client.id)

    def next_layer(self, nextlayer: Any) -> None:
        context = nextlayer.context
        client = context.client.id
        tunnel = self._tunnels.get(client)
        # Only a tunnel's first bytes, before the client's TLS (if any) is up.
        if tunnel is None or client in self._judged or context.client.tls_established:
            return
        decision = policy.check_tunnel_bytes(
            self.current, tunnel[0], tunnel[1], nextlayer.data_client()
        )
        if decision is None:
            return
        self._judged.add(client)
        if not decision.allow:
            self.log(decision, probe=self._probes.get(client, ""))
            reason = policy.deny_reason(decision, self.current.agent)
            nextlayer.layer = Refused(context, f"HTTP/1.1 403 {reason}\r\n\r\n".encode())

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        address = data.context.server.address
        if not address:
            return
        decision = policy.check_sni(self.current, address[0], address[1], data.client_hello.sni)
        if not decision.allow:
            client = data.context.client.id
            self.log(decision, probe=self._probes.get(client, ""))
            self._refused_tls.add(client)

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
        req = flow.request
        word = policy.status_word(req.method, req.host, req.path)
        if word is not None:
            self._status(flow, word)
            return
        probe = self._probe(flow)
        host, port = req.host, req.port
        client = flow.client_conn
        size = policy.announced_body(
            dict(req.headers.items()), method=req.method, http2=req.is_http2 or req.is_http3
        )
        state: dict[str, Any] = {"probe": probe, "size": size}
        flow.metadata["bottle-dash"] = state
        if client.tls_established:
            decision = policy.check_sni(pol, host, port, client.sni)
            if not decision.allow:
                self.refuse(flow, decision)
                return
        decision = policy.check_request(
            pol,
            host=host,
            port=port,
            scheme=req.scheme,
            method=req.method,
            # HTTP/2's authority is its Host; HTTP/1's is the request target.
            authority="" if req.is_http2 or req.is_http3 else req.authority,
            path=req.path,
            host_header=req.host_header,
            tunnel=self._tunnels.get(client.id),
        )
        if not decision.allow:
            self.refuse(flow, decision)
            return
        if not (req.is_http2 or req.is_http3):
            req.authority = ""  # origin-form upstream, whatever the client sent
        stripped = policy.forwarding_headers(list(req.headers.keys()))
        for name in stripped:
            del req.headers[name]
        state["stripped"] = stripped
        headers = dict(req.headers.items())
        found = policy.carries(pol.placeholder, [req.url, *headers, *headers.values()])
        decision = policy.check_credentials(
            pol, host, port, scheme=req.scheme, headers=headers, found=found
        )
        if not decision.allow:
            self.refuse(flow, decision)
            return
        too_large = policy.body_too_large(pol, host, port, size or 0)
        if too_large is not None:
            self.refuse(flow, too_large)
            return
        if probe:
            # Answered here, or once its (small) body has been searched; never streamed.
            if size is None or size > policy.BUFFER_BODY_BYTES:
                self.refuse(flow, policy.Decision(False, host, port, "size", "a probe's body"))
            elif not size:
                self._answer_probe(flow)
            return
        if pol.is_api(host, port) and metered(req.method, req.path):
            refusal = self._metering.refusal(pol.agent)
            if refusal is not None:
                spent = policy.Decision(False, host, port, "budget", "budget spent")
                if size is None:  # a body of no announced size is not waited for
                    self.refuse(flow, spent)
                    return
                self.log(spent, flow)
                flow.response = http.Response.make(*refusal)
                return
        swaps = policy.swapped_headers(headers, pol.placeholder, self._credential.read())
        for name, value in swaps.items():
            req.headers[name] = value
        state["credential"] = "swapped" if swaps else "none"
        if size is None or size > policy.BUFFER_BODY_BYTES:
            req.stream = BodyScan(self.log, flow, pol)

    def refuse(self, flow: http.HTTPFlow, decision: policy.Decision) -> None:
        """Refuse ``flow``: a 403 once its body has come, when that body is small; a body
        of unknown or large size is not waited for (mitmproxy would hold all of it before
        answering): the connection is closed at once, the refusal logged."""
        state = flow.metadata.get("bottle-dash") or {}
        size = state.get("size", 0)
        if size is None or size > policy.BUFFER_BODY_BYTES:
            self.log(decision, flow, state.get("probe", ""))
            flow.kill()
            return
        self.deny(flow, decision, state.get("probe", ""))

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:  # answered or denied already
            return
        req = flow.request
        host, port = req.host, req.port
        state = flow.metadata.get("bottle-dash") or {}
        if not req.stream and req.raw_content:
            parts: list[str | bytes] = [req.raw_content]
            decoded = req.get_content(strict=False)
            if decoded is not None and decoded != req.raw_content:
                parts.append(decoded)
            found = policy.carries(self.current.placeholder, parts)
            decision = policy.check_placeholder(self.current, host, port, found)
            if not decision.allow:
                self.refuse(flow, decision)
                return
        if state.get("probe"):
            self._answer_probe(flow)
            return
        extra = {"credential": state.get("credential", "none")}
        allowed = policy.Decision(True, policy.normal_host(host), port, "request", extra=extra)
        self.log(allowed, flow)

    async def server_connect(self, data: Any) -> None:
        server = data.server
        if not server.address:
            return
        host, port = str(server.address[0]), int(server.address[1])
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        except OSError:
            addresses = []
        decision = policy.address_decision(self.current, host, port, addresses, own=self.own)
        if not decision.allow:
            self.log(decision)
            server.error = (
                policy.deny_reason(decision, self.current.agent) + ": " + (decision.reason)
            )
            return
        if server.sni is None and policy.parse_ip(host) is None:
            server.sni = host  # the certificate is checked against the name, not the address
        server.address = (decision.extra["address"], port)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is None:
            return
        response.stream = True
        self.meter_response(flow)

    # ------------------------------------------------------------------ the sidecar's own

    def _status(self, flow: http.HTTPFlow, word: str) -> None:
        """A status hook's word: kept in ``STATUS_FILE`` (one word, replaced whole)."""
        code = 204 if word else 400
        if word and not keep_status(self._dir, word):
            code = 500  # the host's folder cannot take it: the title still tells
        flow.response = http.Response.make(code)

    def _answer_probe(self, flow: http.HTTPFlow) -> None:
        """A probe's request passed every check: say so (and which headers were removed),
        and send nothing upstream."""
        state = flow.metadata.get("bottle-dash") or {}
        probe = str(state.get("probe", ""))
        host, port = policy.normal_host(flow.request.host), flow.request.port
        self.log(policy.Decision(True, host, port, "request"), flow, probe)
        headers = {"Content-Type": "text/plain", "X-Bottle-Egress": "probe"}
        stripped = state.get("stripped") or []
        if stripped:
            headers["X-Bottle-Probe-Stripped"] = ", ".join(sorted(n.lower() for n in stripped))
        flow.response = http.Response.make(
            299, f"bottle-dash egress: probe {probe}: would forward to {host}:{port}\n", headers
        )
        flow.response.reason = "Probe Not Forwarded"


addons = [EgressBroker()]
