"""The per-bottle certificate authority the sidecar signs its certificates with.

Made at the first ``up`` with the ``openssl`` CLI into the agent's egress directory: the
key and certificate together (``mitmproxy-ca.pem``, 0600, read by the sidecar only) and
the certificate alone (``mitmproxy-ca-cert.pem``), which is provisioned into the bottle's
trust. The key never enters the bottle.
"""

from __future__ import annotations

import os
from pathlib import Path

from backends import run
from backends.base import BackendError
from backends.egress.policy import CA_CERT_FILE, CA_FILE

#: Ten years: a bottle's CA outlives many bottles of the same agent.
DAYS = 3650


def openssl_argv(key: Path, cert: Path, agent: str) -> list[str]:
    """One self-signed CA certificate and its RSA key (mitmproxy signs leaves with it)."""
    return [
        "openssl",
        "req",
        "-x509",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-days",
        str(DAYS),
        "-subj",
        f"/O=bottle-dash/CN=bottle-dash egress {agent}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    ]


def ensure_ca(directory: Path, agent: str) -> Path:
    """The CA certificate of ``agent`` in ``directory`` (made when missing); returns the
    path of the certificate alone."""
    bundle, cert = directory / CA_FILE, directory / CA_CERT_FILE
    if bundle.is_file() and cert.is_file():
        return cert
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = directory / "ca-key.tmp"
    old = os.umask(0o077)
    try:
        done = run.run(openssl_argv(key, cert, agent), timeout=60)
        if not done.ok:
            raise BackendError(
                f"making the egress CA of agent {agent} failed: {done.stderr.strip()[-200:]}",
                fix="check that `openssl` works (apt-get install -y openssl)",
                agent=agent,
            )
        fd = os.open(bundle, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, key.read_bytes() + cert.read_bytes())
        finally:
            os.close(fd)
    finally:
        os.umask(old)
        key.unlink(missing_ok=True)
    cert.chmod(0o644)
    return cert
