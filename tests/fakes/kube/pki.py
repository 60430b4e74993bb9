"""Certificates (openssl) and kubeconfigs for one cluster run.

One CA signs everything: the API server's serving certificate, a client certificate per
component (the name and group each one is authorized as under Node,RBAC), the kubelet's
serving certificate, and the admin's (group ``system:masters``). Keys are EC P-256 (fast
to make); the service-account signing key is RSA. All files are 0600 in ``pki/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from tests.fakes.kube.commands import run
from tests.fakes.kube.layout import NODE_NAME, Layout

DAYS = "30"


class Identity(NamedTuple):
    """A certificate to make: file stem, subject CN and O, SANs, usage."""

    stem: str
    cn: str
    org: str = ""
    sans: tuple[str, ...] = ()
    server: bool = False


def identities(node_ip: str, service_ip: str) -> list[Identity]:
    """Every certificate the cluster uses."""
    api_sans = (
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
        "DNS:localhost",
        "IP:127.0.0.1",
        f"IP:{node_ip}",
        f"IP:{service_ip}",
    )
    return [
        Identity("apiserver", "kube-apiserver", sans=api_sans, server=True),
        Identity("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"),
        Identity("admin", "bottle-dash-admin", "system:masters"),
        Identity("controller-manager", "system:kube-controller-manager"),
        Identity("scheduler", "system:kube-scheduler"),
        Identity("kubelet-client", f"system:node:{NODE_NAME}", "system:nodes"),
        Identity(
            "kubelet-server", NODE_NAME, sans=(f"DNS:{NODE_NAME}", f"IP:{node_ip}"), server=True
        ),
    ]


def _key(path: Path) -> None:
    run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            path,
        ]
    )
    path.chmod(0o600)


def make_pki(lay: Layout, node_ip: str, service_ip: str) -> None:
    """CA, service-account keys, and every certificate of ``identities``."""
    pki = lay.pki
    pki.mkdir(parents=True, exist_ok=True)
    os.chmod(pki, 0o700)
    _key(pki / "ca.key")
    run(
        [
            "openssl", "req", "-x509", "-new", "-key", pki / "ca.key", "-days", DAYS,
            "-subj", "/CN=bottle-dash-kube-ca", "-out", pki / "ca.crt",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ]
    )  # fmt: skip
    run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            pki / "sa.key",
        ]
    )
    (pki / "sa.key").chmod(0o600)
    run(["openssl", "pkey", "-in", pki / "sa.key", "-pubout", "-out", pki / "sa.pub"])
    for ident in identities(node_ip, service_ip):
        key, csr, crt = (pki / f"{ident.stem}.{ext}" for ext in ("key", "csr", "crt"))
        ext = pki / f"{ident.stem}.ext"
        _key(key)
        subject = f"/CN={ident.cn}" + (f"/O={ident.org}" if ident.org else "")
        run(["openssl", "req", "-new", "-key", key, "-subj", subject, "-out", csr])
        lines = [
            "basicConstraints=CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage=" + ("serverAuth,clientAuth" if ident.server else "clientAuth"),
        ]
        if ident.sans:
            lines.append("subjectAltName=" + ",".join(ident.sans))
        ext.write_text("\n".join(lines) + "\n")
        run(
            [
                "openssl", "x509", "-req", "-in", csr, "-CA", pki / "ca.crt",
                "-CAkey", pki / "ca.key", "-CAcreateserial", "-days", DAYS,
                "-extfile", ext, "-out", crt,
            ]
        )  # fmt: skip
        csr.unlink()
        ext.unlink()
    for path in pki.iterdir():
        path.chmod(0o600)


def write_kubeconfig(lay: Layout, path: Path, stem: str, server: str, namespace: str = "") -> None:
    """A kubeconfig (JSON is YAML) for the client certificate ``pki/<stem>``."""
    context = {"cluster": "bottle-dash-kube", "user": stem}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "bottle-dash-kube",
                "cluster": {"server": server, "certificate-authority": str(lay.pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": stem,
                "user": {
                    "client-certificate": str(lay.pki / f"{stem}.crt"),
                    "client-key": str(lay.pki / f"{stem}.key"),
                },
            }
        ],
        "contexts": [{"name": "bottle-dash-kube", "context": context}],
        "current-context": "bottle-dash-kube",
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    path.chmod(0o600)
