"""Images in the cluster's containerd: no registry is reachable, so every image a pod runs
is imported (``ctr -n k8s.io images import``) and pods say ``imagePullPolicy: Never``.

- the sandbox ("pause") image: a docker-archive tar written here around the pause binary
  compiled from the Kubernetes source;
- ``import_image(tag)``: ``docker save <tag> | ctr images import -``, skipped when the
  image in containerd already carries the Docker image id in its label.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

from tests.fakes.kube.commands import KubeError, run
from tests.fakes.kube.layout import PAUSE_IMAGE, Layout, say

#: Label on an imported image: the Docker image id it came from (import is idempotent).
ID_LABEL = "bottle-dash.docker-id"
CRI_NAMESPACE = "k8s.io"


def ctr_argv(lay: Layout, *args: str) -> list[str]:
    """``ctr`` against the cluster's containerd (never the Docker engine's), in the
    namespace the CRI uses."""
    return ["ctr", "--address", str(lay.containerd_socket), "-n", CRI_NAMESPACE, *args]


def normalized(reference: str) -> str:
    """The name containerd stores ``reference`` under (``busybox:1`` ->
    ``docker.io/library/busybox:1``), as the CRI looks a pod's image up."""
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:
        name, tag = reference, "latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    return f"{name}:{tag}"


def _labelled_id(lay: Layout, reference: str) -> str | None:
    proc = run(ctr_argv(lay, "images", "ls", f"name=={reference}"), check=False)
    for line in proc.stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == reference:
            for label in fields[-1].split(","):
                key, _, value = label.partition("=")
                if key == ID_LABEL:
                    return value
            return ""
    return None


def import_image(lay: Layout, tag: str) -> str:
    """Move the Docker engine's image ``tag`` into the cluster; returns the reference pods
    use (``tag`` as written works too: the CRI normalizes it the same way). Skipped when
    the cluster already has this image id under that name."""
    image_id = run(["docker", "image", "inspect", "--format", "{{.Id}}", tag]).stdout.strip()
    reference = normalized(tag)
    if _labelled_id(lay, reference) == image_id:
        return reference
    say(f"importing {tag} ({image_id[:19]}) into the cluster's containerd")
    save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
    try:
        imp = subprocess.run(
            ctr_argv(lay, "images", "import", "-"),
            stdin=save.stdout,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        if save.stdout:
            save.stdout.close()
        save.wait(timeout=60)
    if save.returncode != 0 or imp.returncode != 0:
        raise KubeError(f"importing {tag} failed: {imp.stderr.strip()[-800:]}")
    run(ctr_argv(lay, "images", "label", reference, f"{ID_LABEL}={image_id}"))
    return reference


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pause_archive(pause: Path) -> bytes:
    """A docker-archive (``docker save`` format) holding one layer with /pause."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tar.gettarinfo(str(pause), arcname="pause")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        info.mode = 0o755
        with open(pause, "rb") as fh:
            tar.addfile(info, fh)
    layer_bytes = layer.getvalue()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{_sha(layer_bytes)}"]},
    }
    config_bytes = json.dumps(config).encode()
    config_name = f"{_sha(config_bytes)}.json"
    layer_name = f"{_sha(layer_bytes)}/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [PAUSE_IMAGE], "Layers": [layer_name]}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (
            (config_name, config_bytes),
            (layer_name, layer_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def import_pause(lay: Layout) -> None:
    """Import the sandbox image (before the kubelet asks for its first pod)."""
    if _labelled_id(lay, PAUSE_IMAGE) is not None:
        return
    say(f"importing the sandbox image {PAUSE_IMAGE}")
    run(ctr_argv(lay, "images", "import", "-"), input=pause_archive(lay.pause_binary))
    if _labelled_id(lay, PAUSE_IMAGE) is None:
        raise KubeError(f"{PAUSE_IMAGE} is not in containerd after its import")
