"""A tiny volume provisioner for the test cluster (stdlib only; run by ``cluster.py up``).

The cluster has no storage driver, so this answers every PersistentVolumeClaim of the
storage class ``bottle-dash-hostpath`` (the cluster's default class) with a hostPath
PersistentVolume: a folder ``volumes/<namespace>.<claim>.<uid>`` in the run folder,
pre-bound to the claim. The folder is mode 0777, or owned by ``uid:gid`` with mode 0700
when the claim carries the annotation ``bottle-dash.dev/owner: "uid:gid"`` (a home
folder the agent owns). When the claim is deleted the volume is Released; this removes the
folder and the volume (reclaim policy Delete).

It polls the API every second over one HTTPS connection with the admin's certificate.

Usage: ``provisioner.py <run folder> <API URL>``
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import sys
import time
import urllib.parse
from pathlib import Path

STORAGE_CLASS = "bottle-dash-hostpath"
PROVISIONER = "bottle-dash.dev/hostpath"
OWNER_ANNOTATION = "bottle-dash.dev/owner"


class Api:
    """GET/POST/DELETE against the API server, reconnecting when the connection drops."""

    def __init__(self, run_dir: Path, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 443
        pki = run_dir / "pki"
        self.ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self.conn: http.client.HTTPSConnection | None = None

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(
                    self.host, self.port, context=self.ctx, timeout=10
                )
            try:
                headers = {"Content-Type": "application/json"} if data else {}
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                text = resp.read()
                return resp.status, json.loads(text or b"{}")
            except (OSError, http.client.HTTPException, json.JSONDecodeError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def volume_for(claim: dict, folder: Path) -> dict:
    """The PersistentVolume that answers ``claim`` with ``folder``."""
    meta, spec = claim["metadata"], claim["spec"]
    size = spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta['uid']}",
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "hostPath": {"path": str(folder), "type": "Directory"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }


def make_folder(claim: dict, volumes: Path) -> Path:
    """The claim's folder, owned as its annotation asks."""
    meta = claim["metadata"]
    folder = volumes / f"{meta['namespace']}.{meta['name']}.{meta['uid'][:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    owner = (meta.get("annotations") or {}).get(OWNER_ANNOTATION, "")
    uid, _, gid = owner.partition(":")
    if uid.isdigit():
        os.chown(folder, int(uid), int(gid) if gid.isdigit() else int(uid))
        folder.chmod(0o700)
    else:
        folder.chmod(0o777)
    return folder


def sweep(api: Api, volumes: Path) -> None:
    """One pass: provision pending claims, delete released volumes."""
    status, claims = api.call("GET", "/api/v1/persistentvolumeclaims")
    if status == 200:
        for claim in claims.get("items", []):
            spec = claim["spec"]
            if spec.get("storageClassName") != STORAGE_CLASS or spec.get("volumeName"):
                continue
            if claim.get("status", {}).get("phase") != "Pending":
                continue
            folder = make_folder(claim, volumes)
            api.call("POST", "/api/v1/persistentvolumes", volume_for(claim, folder))
    status, pvs = api.call("GET", "/api/v1/persistentvolumes")
    if status == 200:
        for pv in pvs.get("items", []):
            annotations = pv["metadata"].get("annotations") or {}
            if annotations.get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
                continue
            if pv.get("status", {}).get("phase") not in ("Released", "Failed"):
                continue
            path = Path(pv["spec"]["hostPath"]["path"])
            if path.parent == volumes:
                shutil.rmtree(path, ignore_errors=True)
            api.call("DELETE", f"/api/v1/persistentvolumes/{pv['metadata']['name']}")


def main() -> None:
    run_dir, url = Path(sys.argv[1]), sys.argv[2]
    volumes = run_dir / "volumes"
    volumes.mkdir(parents=True, exist_ok=True)
    api = Api(run_dir, url)
    while True:
        try:
            sweep(api, volumes)
        except (OSError, http.client.HTTPException, json.JSONDecodeError, KeyError) as exc:
            print(f"provisioner: {exc!r}", file=sys.stderr, flush=True)
        time.sleep(1)


if __name__ == "__main__":
    main()
