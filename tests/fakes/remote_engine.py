"""A second Docker engine on this machine, reachable only over SSH (test fixture only).

An engine in a container: ``bottle-dash-remote-engine`` runs Debian's dockerd and sshd
(image: remote_engine_image.py, assembled offline, built once per machine) with nearly
every privilege (``remote_engine_image.run_flags``), its own network namespace and
filesystem, its data root in the named volume ``<name>-data`` (overlay2 needs a backing
filesystem that is not overlay), and sshd's port 22 published on ``127.0.0.1:<port
docker picks>`` only. Nothing of the host is mounted into it, so a bind mount of a local
path made through it shows the engine container's own files (or fails), never the
host's. Login is root by key only;
the client key, the engine's host key (pinned in a known_hosts file), an ssh config and
an ``ssh`` wrapper that uses it live in ``$BOTTLE_DASH_REMOTE_DIR/<name>/`` (default
``~/.cache/bottle-dash/remote-engines/<name>/``, 0700; see remote_engine_ssh.py).

``ensure_remote_engine()`` brings it up (idempotent; a file lock serializes every
process on the machine) and returns a ``RemoteEngine``: ``url``, ``env()`` (PATH with
the wrapper, DOCKER_HOST), ``stop()`` (sshd down, connections cut: the host went away;
dockerd and its containers keep running), ``start()``, ``teardown()`` (container and
volume removed). The shared instance is left running after a test run, like the images
are kept; other names (``bottle-dash-remote-…``) make private instances.

CLI: ``python tests/fakes/remote_engine.py [--name NAME] up|down|stop|start|status|env``
(``eval "$(python tests/fakes/remote_engine.py env)"`` then ``docker ps`` talks to it).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __name__ == "__main__" and not __package__:
    # Run as a script (``python tests/fakes/remote_engine.py up``): the repository goes on the path
    # so that the ``tests.fakes`` package imports. Imported (by pytest, or with
    # ``python -m tests.fakes.remote_engine``), it is there already and nothing changes.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backends.images import rootfs  # noqa: E402
from tests.fakes import remote_engine_image as engine_image  # noqa: E402
from tests.fakes import remote_engine_ssh as sshfiles  # noqa: E402

DEFAULT_NAME = "bottle-dash-remote-engine"
PREFIX = "bottle-dash-remote-"
LABEL = engine_image.LABEL
LABEL_KEYS = f"{LABEL}.keys"
READY_TIMEOUT = 120.0

Progress = Callable[[str], None]


class RemoteEngineError(RuntimeError):
    """The remote test engine could not be brought up or driven (message says why)."""


def state_root() -> Path:
    """Where every instance's client files live (not under XDG: tests repoint XDG per
    test, and every process on the machine must find the same keys)."""
    env = os.environ.get("BOTTLE_DASH_REMOTE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "bottle-dash" / "remote-engines"


def missing_tools() -> list[str]:
    """What this host lacks to build and reach the engine, each with its fix."""
    out = [f"{what}: {fix}" for what, fix in rootfs.missing_tools(engine_image.ENGINE_SPEC)]
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            out.append(f"{tool}: apt-get install -y openssh-client")
    return out


def _local_env() -> dict[str, str]:
    """The environment of docker commands that manage the engine container: on the local
    engine, even in a shell where ``env`` pointed DOCKER_HOST at one of ours."""
    env = dict(os.environ)
    if env.get("DOCKER_HOST", "").startswith(("ssh://root@127.0.0.1:", f"ssh://{PREFIX}")):
        del env["DOCKER_HOST"]
    return env


def _docker(
    *argv: str, check: bool = True, timeout: float = 120, stdin: bytes | None = None
) -> str:
    """Run ``docker ARGV`` on the local engine; its stdout, or RemoteEngineError."""
    done = subprocess.run(
        ["docker", *argv],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=_local_env(),
        check=False,
    )
    if check and done.returncode:
        err = done.stderr.decode(errors="replace").strip()
        raise RemoteEngineError(f"docker {shlex.join(argv[:3])} failed: {err}")
    return done.stdout.decode(errors="replace")


class RemoteEngine:
    """One engine-in-a-container instance and the client files that reach it."""

    def __init__(self, name: str = DEFAULT_NAME) -> None:
        if not re.fullmatch(re.escape(PREFIX) + r"[a-z0-9][a-z0-9-]{0,40}", name):
            raise RemoteEngineError(f"{name!r}: an instance is named {PREFIX}<slug>")
        self.name = name
        self.volume = f"{name}-data"
        self.files = sshfiles.SshFiles(state_root() / name)
        self.image = rootfs.image_tag(engine_image.ENGINE_SPEC)
        #: Seconds: image_build (when this process built it), start (create/start to ready).
        self.timings: dict[str, float] = {}
        self._port: int | None = None

    # ------------------------------------------------------------------ client side

    @property
    def port(self) -> int:
        """The loopback port sshd is published on (docker picks it at each container
        start; asked once, and again by ``ensure``)."""
        if self._port is None:
            self._port = self._published_port()
        return self._port

    def _published_port(self) -> int:
        out = _docker("port", self.name, "22/tcp", check=False).strip().splitlines()
        for line in out:
            host, _, port = line.rpartition(":")
            if host == "127.0.0.1" and port.isdigit():
                return int(port)
        raise RemoteEngineError(
            f"{self.name} has no published ssh port (is it up? "
            f"python tests/fakes/remote_engine.py --name {self.name} up)"
        )

    @property
    def url(self) -> str:
        """``ssh://root@127.0.0.1:PORT``, for ``docker -H`` and docker-py."""
        return f"ssh://root@127.0.0.1:{self.port}"

    @property
    def alias_url(self) -> str:
        """``ssh://NAME``: the same engine by the config's Host alias."""
        return f"ssh://{self.name}"

    @property
    def key_path(self) -> Path:
        return self.files.client_key

    @property
    def known_hosts(self) -> Path:
        return self.files.known_hosts

    def ssh_config(self, mux: bool = True) -> Path:
        return self.files.config(mux)

    def env(self, mux: bool = True) -> dict[str, str]:
        """What to add to an environment so that ``docker`` (and docker-py's ssh) reach
        this engine with its config: the wrapper first on PATH, DOCKER_HOST."""
        path = os.environ.get("PATH", os.defpath)
        return {"PATH": f"{self.files.bin_dir(mux)}{os.pathsep}{path}", "DOCKER_HOST": self.url}

    def environ(self, mux: bool = True) -> dict[str, str]:
        """``os.environ`` with ``env(mux)`` applied."""
        return {**os.environ, **self.env(mux)}

    def ssh_argv(self, *command: str, mux: bool = True) -> list[str]:
        """``ssh`` to the engine running ``command`` (quoted: the far side runs a shell)."""
        argv = [sshfiles.real_ssh(self.files), "-F", str(self.files.config(mux)), self.name]
        return [*argv, "--", shlex.join(command)] if command else argv

    def sdk_client(self, timeout: int = 60) -> Any:
        """A docker-py client over ``ssh`` (``use_ssh_client=True``). docker-py runs the
        ``ssh`` on this process's PATH, so the wrapper must be first there."""
        import docker

        found = shutil.which("ssh")
        if found is None or Path(found).parent != self.files.bin_dir(True):
            raise RemoteEngineError(
                f"docker-py would run {found}, not {self.files.bin_dir(True)}/ssh: put "
                "engine.env()['PATH'] in os.environ first"
            )
        return docker.DockerClient(base_url=self.url, use_ssh_client=True, timeout=timeout)

    def forward_socket(self, local: Path) -> str:
        """Forward the engine's docker socket to the unix socket ``local`` (0600) through
        the ControlMaster (``ssh -O forward``); returns ``unix://LOCAL``. docker-py then
        pools its connections there, where ``use_ssh_client`` runs an ssh per request."""
        subprocess.run(self.ssh_argv("true"), check=True, capture_output=True, timeout=60)
        spec = f"{local}:/var/run/docker.sock"
        done = subprocess.run(
            [*self.ssh_argv(), "-O", "forward", "-L", spec],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode:
            raise RemoteEngineError(f"ssh -O forward -L {spec}: {done.stderr.strip()}")
        return f"unix://{local}"

    def cancel_forward(self, local: Path) -> None:
        """Undo ``forward_socket(local)`` (nothing when the master is gone)."""
        spec = f"{local}:/var/run/docker.sock"
        subprocess.run(
            [*self.ssh_argv(), "-O", "cancel", "-L", spec],
            capture_output=True,
            timeout=60,
            check=False,
        )
        local.unlink(missing_ok=True)

    def master_running(self) -> bool:
        """Whether a ControlMaster connection to the engine is up (``ssh -O check``)."""
        done = subprocess.run(
            [*self.ssh_argv(), "-O", "check"], capture_output=True, timeout=30, check=False
        )
        return done.returncode == 0

    # ------------------------------------------------------------------ engine side

    def in_engine(self, script: str, *, check: bool = True, timeout: float = 60) -> str:
        """Run ``sh -c script`` in the engine container (from the local engine: no ssh)."""
        return _docker("exec", self.name, "sh", "-c", script, check=check, timeout=timeout)

    def accepted_logins(self) -> int:
        """How many ssh logins sshd accepted since the container was made."""
        log = self.in_engine(f"cat {engine_image.SSHD_LOG} 2>/dev/null || true")
        return log.count("Accepted publickey")

    def container_state(self) -> str:
        """``running``, ``exited``, … or ``absent``."""
        out = _docker("inspect", "--format", "{{.State.Status}}", self.name, check=False)
        return out.strip() or "absent"

    def sshd_running(self) -> bool:
        out = self.in_engine("pgrep -x sshd >/dev/null && echo yes || true", check=False)
        return out.strip() == "yes"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One process at a time changes this instance (pytest runs, the CLI)."""
        sshfiles.private_folder(state_root())
        with open(state_root() / f"{self.name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def ensure(self, progress: Progress = lambda _line: None) -> RemoteEngine:
        """Build what is missing, create or start what is not running, wait until the
        engine answers over ssh. Idempotent."""
        with self._locked():
            started = time.monotonic()
            if not rootfs.image_exists(self.image):
                rootfs.ensure_image(engine_image.ENGINE_SPEC, progress)
                self.timings["image_build"] = time.monotonic() - started
                self._record("image_build", self.timings["image_build"])
            sshfiles.private_folder(self.files.folder)
            sshfiles.ensure_keys(self.files)
            begin = time.monotonic()
            changed = self._ensure_container(progress)
            self._ensure_sshd()
            self._port = self._published_port()
            sshfiles.write_client_files(self.files, self.name, self.port)
            self._wait_ready()
            if changed:
                self.timings["start"] = time.monotonic() - begin
                self._record("start", self.timings["start"])
        return self

    def _ensure_container(self, progress: Progress) -> bool:
        """Make or start the container; True when it had to."""
        keys = sshfiles.keys_fingerprint(self.files)
        found = _docker(
            "inspect",
            "--format",
            '{{.Config.Image}} {{ index .Config.Labels "' + LABEL_KEYS + '" }} {{.State.Running}}',
            self.name,
            check=False,
        ).split()
        if found and found[:2] != [self.image, keys]:
            # A new image or new keys: a fresh container, the same data volume.
            progress(f"{self.name}: recreating (image or keys changed)")
            _docker("rm", "-f", self.name)
            found = []
        if found and found[2] == "true":
            return False
        if not found:
            progress(f"{self.name}: creating the container and volume {self.volume}")
            labels = ["--label", f"{LABEL}=1", "--label", f"{LABEL}.instance={self.name}"]
            if not _docker("volume", "ls", "-q", "--filter", f"name=^{self.volume}$").strip():
                _docker("volume", "create", *labels, self.volume)
            _docker(
                "create",
                "--name",
                self.name,
                "--hostname",
                self.name,
                *engine_image.run_flags(),
                *labels,
                "--label",
                f"{LABEL_KEYS}={keys}",
                "--publish",
                "127.0.0.1::22",
                "--volume",
                f"{self.volume}:/var/lib/docker",
                self.image,
            )
            _docker(
                "cp",
                "-",
                f"{self.name}:/",
                stdin=sshfiles.key_tar(self.files, engine_image.HOST_KEY),
            )
        progress(f"{self.name}: starting")
        _docker("start", self.name)
        return True

    def _ensure_sshd(self) -> None:
        self.in_engine(engine_image.SSHD_START)

    def _wait_ready(self) -> None:
        """Until ``docker version`` answers over ssh (dockerd starts after sshd)."""
        deadline = time.monotonic() + READY_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            done = subprocess.run(
                self.ssh_argv("docker", "version", "--format", "{{.Server.Version}}"),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if done.returncode == 0 and done.stdout.strip():
                return
            last = (done.stderr or done.stdout).strip()
            time.sleep(0.2)
        logs = _docker("logs", "--tail", "20", self.name, check=False)
        raise RemoteEngineError(
            f"{self.name}: the engine did not answer over ssh in {READY_TIMEOUT:.0f}s: {last}\n"
            f"container log:\n{logs}"
        )

    def _record(self, what: str, seconds: float) -> None:
        """Keep a measured time for the benchmark (the first build happens only once)."""
        path = self.files.folder / "timings.json"
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text()) if path.exists() else {}
            data[what] = round(seconds, 2)
            path.write_text(json.dumps(data))

    def recorded_timings(self) -> dict[str, float]:
        path = self.files.folder / "timings.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}

    def stop(self) -> None:
        """The host goes away: every sshd in the engine is killed (the listener and each
        connection's, so a ControlMaster is cut too). dockerd and its containers run on."""
        with self._locked():
            # Names are safe to match here: this is the container's own pid namespace,
            # and every sshd in it was started by this fixture.
            self.in_engine(
                "pkill -x sshd || true; for _ in $(seq 100); do "
                "pgrep -x sshd >/dev/null || exit 0; sleep 0.1; done; exit 1"
            )

    def start(self) -> None:
        """sshd back up; returns once the engine answers over ssh again."""
        with self._locked():
            self._ensure_sshd()
            self._wait_ready()

    def teardown(self) -> None:
        """Remove the container and its volume, end the ControlMaster, drop the files."""
        with self._locked():
            if self.files.config(True).exists():
                subprocess.run(
                    [*self.ssh_argv(), "-O", "exit"], capture_output=True, timeout=30, check=False
                )
            _docker("rm", "-f", "-v", self.name, check=False)
            _docker("volume", "rm", self.volume, check=False)
            shutil.rmtree(self.files.folder, ignore_errors=True)
            self._port = None
            if self.name != DEFAULT_NAME:
                # A private instance's lock goes too (the shared one's stays: another
                # process may be waiting on it to bring the engine up again).
                (state_root() / f"{self.name}.lock").unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        """What is up, for the CLI and for error messages."""
        state = self.container_state()
        out: dict[str, Any] = {"name": self.name, "container": state, "image": self.image}
        if state != "running":
            return out
        out.update(port=self.port, url=self.url, sshd=self.sshd_running())
        out["ssh_config"] = str(self.files.config(True))
        out["master"] = self.master_running()
        done = subprocess.run(
            self.ssh_argv("docker", "version", "--format", "{{.Server.Version}}"),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        out["engine"] = done.stdout.strip() if done.returncode == 0 else done.stderr.strip()
        return out


def ensure_remote_engine(
    progress: Progress = lambda _line: None, name: str = DEFAULT_NAME
) -> RemoteEngine:
    """The remote test engine ``name``, up and answering over ssh."""
    return RemoteEngine(name).ensure(progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default=DEFAULT_NAME, help="instance (bottle-dash-remote-…)")
    parser.add_argument("action", choices=["up", "down", "stop", "start", "status", "env"])
    args = parser.parse_args(argv)
    engine = RemoteEngine(args.name)
    try:
        if args.action == "up":
            missing = missing_tools()
            if missing:
                print("cannot build the engine image:\n  " + "\n  ".join(missing), file=sys.stderr)
                return 1
            engine.ensure(lambda line: print(line, file=sys.stderr))
            print(json.dumps(engine.status(), indent=2))
        elif args.action == "down":
            engine.teardown()
        elif args.action == "stop":
            engine.stop()
        elif args.action == "start":
            engine.start()
        elif args.action == "status":
            print(json.dumps(engine.status(), indent=2))
        else:
            for key, value in engine.env().items():
                print(f"export {key}={shlex.quote(value)}")
    except RemoteEngineError as exc:
        print(f"remote_engine: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
