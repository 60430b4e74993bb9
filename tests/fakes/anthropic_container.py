"""The stand-in Anthropic API (anthropic_api.py) in a container on a test network (test
fixture only).

``STANDIN_SPEC`` is a small image (Debian ``python3`` and the stand-in's one file) built
offline by ``backends.images.rootfs``; ``StandInContainer`` runs it on a network and reads
what it recorded through ``docker exec`` (so the test never needs a route to the network).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from backends.images.rootfs import ImageFile, ImageSpec
from tests.fakes.anthropic_api import Recorded, Rule

HERE = Path(__file__).resolve().parent
PORT = 8080
LABEL = "bottle-dash.test-api"

STANDIN_SPEC = ImageSpec(
    repository="bottle-dash-test-api",
    packages=("python3",),
    files=(ImageFile("/srv/anthropic_api.py", source=HERE / "anthropic_api.py", mode=0o755),),
    user="nobody",
    workdir="/srv",
    labels={"bottle-dash.test-image": "1"},
    cmd=("python3", "/srv/anthropic_api.py", "--listen", f"0.0.0.0:{PORT}"),
)


def _docker(*argv: str, input: str | None = None) -> str:
    done = subprocess.run(
        ["docker", *argv], capture_output=True, text=True, input=input, timeout=120, check=False
    )
    if done.returncode:
        raise RuntimeError(f"docker {' '.join(argv[:3])} failed: {done.stderr.strip()}")
    return done.stdout


class StandInContainer:
    """``docker run -d --name NAME --network NETWORK`` of the stand-in image; its URL on
    that network is ``http://NAME:8080``.

    With ``tls`` (a directory holding ``server.pem`` and ``server.key``) it serves HTTPS
    with that certificate, and ``alias`` is its name on the network too (the name the
    certificate is for): then its URL is ``https://ALIAS:8080``."""

    def __init__(
        self,
        image: str,
        name: str,
        network: str,
        run_id: str,
        *,
        alias: str = "",
        tls: Path | None = None,
    ) -> None:
        self.image, self.name, self.network = image, name, network
        self.scheme = "https" if tls else "http"
        self.url = f"{self.scheme}://{alias or name}:{PORT}"
        extra: list[str] = ["--network-alias", alias] if alias else []
        cmd: list[str] = []
        if tls:
            extra += ["-v", f"{tls}:/certs:ro"]
            cmd = [*STANDIN_SPEC.cmd, "--tls-cert", "/certs/server.pem"]
            cmd += ["--tls-key", "/certs/server.key"]
        _docker(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            network,
            "--label",
            f"{LABEL}={run_id}",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            *extra,
            image,
            *cmd,
        )
        self._call("GET", "/_stand-in/requests")  # wait until it answers

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        script = (
            "import ssl, sys, time, urllib.request\n"
            "data = sys.stdin.read().encode() or None\n"
            "ctx = ssl._create_unverified_context()\n"
            "for _ in range(100):\n"
            "    try:\n"
            f"        url = '{self.scheme}://127.0.0.1:{PORT}' + sys.argv[2]\n"
            "        req = urllib.request.Request(url, data=data, method=sys.argv[1])\n"
            "        reply = urllib.request.urlopen(req, timeout=5, context=ctx)\n"
            "        sys.stdout.write(reply.read().decode())\n"
            "        break\n"
            "    except OSError:\n"
            "        time.sleep(0.1)\n"
            "else:\n"
            "    sys.exit('stand-in API does not answer')\n"
        )
        out = _docker(
            "exec",
            "-i",
            self.name,
            "python3",
            "-c",
            script,
            method,
            path,
            input=json.dumps(body) if body is not None else "",
        )
        return json.loads(out)

    def requests(self) -> list[Recorded]:
        return [Recorded(**r) for r in self._call("GET", "/_stand-in/requests")]

    def messages(self) -> list[Recorded]:
        return [r for r in self.requests() if r.path.split("?")[0] == "/v1/messages"]

    def set_rules(self, rules: list[Rule]) -> None:
        self._call("POST", "/_stand-in/rules", [r.__dict__ for r in rules])

    def set_usage(self, usage: dict[str, Any], cut_after: int | None = None) -> None:
        """``StandInAPI.set_usage`` of the stand-in in the container."""
        self._call("POST", "/_stand-in/usage", {"usage": usage, "cut_after": cut_after})

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)
