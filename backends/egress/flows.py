"""What the broker addon hands mitmproxy for a flow it refuses or watches: the layer that
answers a tunnel refused on its first bytes, and the filter a streamed request body
passes through.

Runs in the egress sidecar only (it imports mitmproxy), beside ``addon.py``, which imports
it as the top-level module ``flows``; on the host the unit tests import it as
``backends.egress.flows``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mitmproxy import http
from mitmproxy.proxy import commands, layer

try:  # on the host: a module of the package backends.egress
    from backends.egress import policy
except ImportError:  # in the sidecar: beside policy.py, imported as a top-level module
    import policy  # type: ignore[no-redef]

#: How a refusal is logged: the broker's ``log(decision, flow)``.
LogFn = Callable[[policy.Decision, http.HTTPFlow], None]


class Refused(layer.Layer):
    """A tunnel refused on its first bytes: one status line to the client, then closed.
    Nothing of it is read further, and no server connection is ever made for it."""

    def __init__(self, context: Any, answer: bytes) -> None:
        super().__init__(context)
        self.answer = answer
        self.done = False

    def _handle_event(self, event: Any) -> Any:
        if not self.done:
            self.done = True
            yield commands.SendData(self.context.client, self.answer)
            yield commands.CloseConnection(self.context.client)


class BodyScan:
    """A streamed request body's filter: counts it (the API host's limit) and searches it
    for the placeholder as it passes, a window of the last bytes kept across chunks; on a
    refusal the rest is withheld and the refusal logged. mitmproxy cannot abort a stream
    it has begun (it still ends the message), so the upstream gets a cut body, never more
    than the limit and never the chunk that held the placeholder."""

    def __init__(self, log: LogFn, flow: http.HTTPFlow, pol: policy.Policy) -> None:
        self.log, self.flow, self.pol = log, flow, pol
        self.keep = 4 * len(pol.placeholder) + 16
        self.tail = b""
        self.total = 0
        self.refused = False

    def __call__(self, chunk: bytes) -> bytes:
        if self.refused:
            return b""
        host, port = self.flow.request.host, self.flow.request.port
        self.total += len(chunk)
        window = self.tail + chunk
        self.tail = window[-self.keep :]
        decision = policy.body_too_large(self.pol, host, port, self.total)
        if decision is None:
            found = policy.carries(self.pol.placeholder, [window])
            checked = policy.check_placeholder(self.pol, host, port, found)
            decision = None if checked.allow else checked
        if decision is None:
            return chunk
        self.refused = True
        self.log(decision, self.flow)
        self.flow.kill()
        return b""
