"""Broker probes: the egress sidecar attacked the ways a turned agent would, through its
own proxy, from inside the bottle.

Each probe sends what an attacker sent (an absolute request target inside a tunnel to the
API host, a ClientHello with another record version, the credential over plain HTTP to
port 443, another account's key to the API host, a Host naming another port, a body over
the API's limit, the loopback and metadata addresses) and passes only when the sidecar
refuses it. Every request carries the run's probe mark (``policy.PROBE_HEADER``): the
sidecar logs it as probe traffic and, should a request pass every check, answers it
itself, so nothing a probe sends leaves the sidecar while the broker works as designed.
A broker that fails a probe may have forwarded that one request (to the bottle's own
allowlisted host): that is the failure the probe reports.

This module is the group's table, in suite order; the probes live by what they attack:
``forged.py`` (requests shaped to fool the broker), ``sidecar_bounds.py`` (the sidecar
itself), ``placeholder.py`` (the credential swap), all sent through ``proxy_client.py``.
"""

from __future__ import annotations

from backends.probes.base import CREDENTIAL, HOST, NETWORK, Probe
from backends.probes.forged import body_limit, host_port, request_target, tunnel_bytes
from backends.probes.placeholder import (
    cleartext_credential,
    other_key_refused,
    placeholder_encodings,
)
from backends.probes.sidecar_bounds import (
    inside_addresses,
    log_bounded,
    proxy_bottle_side_only,
    status_channel,
)

SEAL_FIX = "rm and up the agent with this bottle-dash (the sidecar is made again)"

PROBES = (
    Probe(
        "request-target",
        NETWORK,
        "an absolute request target naming another host is refused in a tunnel",
        SEAL_FIX,
        request_target,
    ),
    Probe(
        "tunnel-bytes",
        NETWORK,
        "a tunnel's bytes are TLS the sidecar reads, or HTTP: never relayed unread",
        SEAL_FIX,
        tunnel_bytes,
    ),
    Probe(
        "host-port",
        NETWORK,
        "a Host naming another port is refused; X-Forwarded-* are stripped",
        SEAL_FIX,
        host_port,
    ),
    Probe(
        "inside-addresses",
        NETWORK,
        "loopback, metadata and the sidecar's own addresses are never dialled",
        SEAL_FIX,
        inside_addresses,
    ),
    Probe(
        "proxy-bottle-side",
        NETWORK,
        "the proxy answers on the bottle's network only",
        SEAL_FIX,
        proxy_bottle_side_only,
    ),
    Probe(
        "body-limit",
        NETWORK,
        "a body over the API's limit is refused before it is read",
        SEAL_FIX,
        body_limit,
    ),
    Probe(
        "log-bounded",
        NETWORK,
        "the egress log is rotated at its limit",
        SEAL_FIX,
        log_bounded,
    ),
    Probe(
        "status-channel",
        HOST,
        "nothing the bottle writes lands in the operator's state dir",
        SEAL_FIX,
        status_channel,
    ),
    Probe(
        "cleartext-credential",
        CREDENTIAL,
        "the credential never goes over plain HTTP, not even to the API host's port 443",
        SEAL_FIX,
        cleartext_credential,
    ),
    Probe(
        "api-other-key",
        CREDENTIAL,
        "the API host takes the placeholder only: another account's key is refused",
        SEAL_FIX,
        other_key_refused,
    ),
    Probe(
        "placeholder-refused",
        CREDENTIAL,
        "the placeholder off the API host is refused however it is encoded",
        SEAL_FIX,
        placeholder_encodings,
    ),
)
