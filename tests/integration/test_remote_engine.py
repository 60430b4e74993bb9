"""The remote tier's engine (tests/fakes/remote_engine.py): a second Docker engine on this
machine that answers only over SSH, proved with the docker CLI and docker-py as the
product will use them.

Everything made inside the engine is named ``bottle-dash-remote-t<run>-…`` and labelled
``bottle-dash.test-remote=1``. The tests that count sshd's logins or stop sshd use an
instance of this module's own (the shared one may serve another test run meanwhile),
removed at the end.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.remote_engine import LABEL, PREFIX, RemoteEngine, ensure_remote_engine
from tests.fakes.remote_engine_image import INNER_BIP
from tests.support import RUN_ID, agent_name

pytestmark = [pytest.mark.remote, pytest.mark.timeout(900)]

LABEL_ARGS = ["--label", f"{LABEL}=1"]


def named(label: str) -> str:
    """A name for something this run makes inside an engine."""
    return f"{PREFIX}{agent_name(label)}"


def docker(
    engine: RemoteEngine | None,
    *argv: str,
    mux: bool = True,
    timeout: float = 120,
    stdin: Any = None,
) -> subprocess.CompletedProcess[str]:
    """``docker -H <engine url> ARGV`` with the engine's env (None: the local engine)."""
    env = engine.environ(mux) if engine else None
    prefix = ["docker", "-H", engine.url] if engine else ["docker"]
    return subprocess.run(
        [*prefix, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=stdin,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def local_image(docker_engine: None) -> str:
    """The offline busybox test image on the local engine."""
    from tests.fakes import image

    return image.ensure_image()


def stream_image(tag: str, engine: RemoteEngine) -> str:
    """``docker save TAG | docker -H URL load``; the load's output."""
    save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
    try:
        done = docker(engine, "load", stdin=save.stdout, timeout=300)
    finally:
        assert save.stdout is not None
        save.stdout.close()
        save.wait(timeout=60)
    assert save.returncode == 0
    return ok(done)


@pytest.fixture(scope="module")
def remote_image(remote_engine: RemoteEngine, local_image: str) -> str:
    """The test image on the shared remote engine."""
    if docker(remote_engine, "image", "inspect", local_image).returncode != 0:
        stream_image(local_image, remote_engine)
    return local_image


@pytest.fixture
def sdk_path(remote_engine: RemoteEngine, monkeypatch: pytest.MonkeyPatch) -> RemoteEngine:
    """This process's PATH starts with the engine's ssh wrapper (docker-py runs ``ssh``)."""
    monkeypatch.setenv("PATH", remote_engine.env()["PATH"])
    return remote_engine


def test_cli_and_sdk_answer_over_ssh(remote_engine: RemoteEngine, sdk_path: RemoteEngine) -> None:
    """The docker CLI (by URL and by the config's alias) and docker-py reach the engine
    in the container (its name is its hostname), not the local one; without the
    engine's ssh config, ssh refuses (so nothing of ~/.ssh made it work)."""
    fmt = "{{.Name}} {{.DockerRootDir}}"
    local_name = ok(docker(None, "info", "--format", "{{.Name}}")).strip()
    assert local_name != remote_engine.name
    assert ok(docker(remote_engine, "info", "--format", fmt)).split() == [
        remote_engine.name,
        "/var/lib/docker",
    ]
    by_alias = subprocess.run(
        ["docker", "-H", remote_engine.alias_url, "info", "--format", "{{.Name}}"],
        capture_output=True,
        text=True,
        env=remote_engine.environ(),
        timeout=120,
        check=False,
    )
    assert ok(by_alias).strip() == remote_engine.name

    client = remote_engine.sdk_client()
    try:
        assert client.ping() is True
        assert client.info()["Name"] == remote_engine.name
    finally:
        client.close()

    bare = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-p", str(remote_engine.port), "root@127.0.0.1", "true"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        check=False,
    )
    assert bare.returncode == 255, bare.stderr


def test_the_host_key_is_pinned(remote_engine: RemoteEngine, tmp_path: Path) -> None:
    """A known_hosts that pins another key for the engine's alias stops the login (on a
    fresh connection: a running master was checked when it was made)."""
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob, *_ = Path(f"{other}.pub").read_text().split()
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{remote_engine.name} {kind} {blob}\n")
    fresh = ["-o", "ControlMaster=no", "-o", "ControlPath=none"]

    def login(*extra: str) -> subprocess.CompletedProcess[str]:
        argv = [remote_engine.ssh_argv()[0], "-F", str(remote_engine.ssh_config())]
        return subprocess.run(
            [*argv, *fresh, *extra, remote_engine.name, "true"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert login().returncode == 0
    refused = login("-o", f"UserKnownHostsFile={wrong}")
    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr


def test_image_streams_to_the_engine_and_runs_there(
    remote_engine: RemoteEngine, sdk_path: RemoteEngine, local_image: str
) -> None:
    """An image built locally reaches the engine by ``docker save | docker -H … load``
    and by docker-py (save's stream into load, with progress), then runs there."""
    import docker as docker_sdk

    cli_tag = f"{local_image.split(':')[0]}:{agent_name('cli')}"
    sdk_tag = f"{local_image.split(':')[0]}:{agent_name('sdk')}"
    for tag in (cli_tag, sdk_tag):
        ok(docker(None, "tag", local_image, tag))
    try:
        for tag in (cli_tag, sdk_tag):
            assert docker(remote_engine, "image", "inspect", tag).returncode != 0
        assert f"Loaded image: {cli_tag}" in stream_image(cli_tag, remote_engine)
        ran = docker(remote_engine, "run", "--rm", *LABEL_ARGS, cli_tag, "echo", "cli-ran")
        assert ok(ran).strip() == "cli-ran"

        local = docker_sdk.from_env()
        remote = remote_engine.sdk_client(timeout=300)
        sent: list[int] = []  # the progress: bytes streamed so far, chunk by chunk

        def chunks() -> Iterator[bytes]:
            # get_image by tag: the archive names that tag (Image.save names its first).
            for chunk in local.api.get_image(sdk_tag):
                sent.append(len(chunk))
                yield chunk

        events = list(remote.api.load_image(chunks()))
        assert len(sent) > 1 and sum(sent) > 1_000_000
        assert any(f"Loaded image: {sdk_tag}" in e.get("stream", "") for e in events), events
        out = remote.containers.run(sdk_tag, ["echo", "sdk-ran"], remove=True, labels={LABEL: "1"})
        assert out == b"sdk-ran\n"
        local.close()
        remote.close()
    finally:
        for tag in (cli_tag, sdk_tag):
            docker(None, "rmi", tag)
            docker(remote_engine, "rmi", tag)


def test_a_bind_mount_of_a_local_path_never_shows_local_files(
    remote_engine: RemoteEngine, remote_image: str, tmp_path: Path
) -> None:
    """``-v LOCAL:/mnt`` made through the engine mounts the engine's own folder of that
    name (here one holding ``engine-marker``), never the local one; ``--mount`` of a
    path the engine lacks fails. The same commands on the local engine show the local
    file: the difference is the engine, not the command."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "local-marker").write_text("local\n")
    remote_engine.in_engine(f"mkdir -p '{shared}' && touch '{shared}/engine-marker'")
    only_local = tmp_path / "only-local"
    only_local.mkdir()
    (only_local / "local-marker").write_text("local\n")
    try:
        listing = ["run", "--rm", *LABEL_ARGS, "-v", f"{shared}:/mnt", remote_image, "ls", "/mnt"]
        assert ok(docker(remote_engine, *listing)).split() == ["engine-marker"]
        assert ok(docker(None, *listing)).split() == ["local-marker"]

        mount = ["run", "--rm", *LABEL_ARGS, "--mount", f"type=bind,src={only_local},dst=/mnt"]
        failed = docker(remote_engine, *mount, remote_image, "ls", "/mnt")
        assert failed.returncode != 0
        assert "bind source path does not exist" in failed.stderr
        assert ok(docker(None, *mount, remote_image, "ls", "/mnt")).split() == ["local-marker"]
    finally:
        remote_engine.in_engine(f"rm -rf '{tmp_path}'", check=False)


def _fetch(engine: RemoteEngine, image: str, network: str, host: str, port: int) -> str:
    """What a container on ``network`` gets from ``http://host:port/`` (busybox nc)."""
    script = f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {host} {port} 2>&1 || true'
    done = docker(
        engine, "run", "--rm", *LABEL_ARGS, "--network", network, image, "sh", "-c", script
    )
    return done.stdout + done.stderr


def _listener(engine: RemoteEngine, image: str, name: str, port: int, *net: str) -> None:
    """A busybox httpd answering ``reachable`` on ``port``."""
    script = (
        "mkdir -p /tmp/w && echo reachable > /tmp/w/index.html && "
        f"exec httpd -f -p {port} -h /tmp/w"
    )
    run = ["run", "-d", "--name", name, *LABEL_ARGS, *net, image, "sh", "-c", script]
    ok(docker(engine, *run))


def test_sealed_network_inside_the_engine_keeps_the_engine_out_of_reach(
    remote_engine: RemoteEngine, remote_image: str
) -> None:
    """An internal network with ``inhibit_ipv4`` works in that engine as on the local
    one: its containers reach each other but not a listener on the engine's own
    addresses, which a plain internal network does reach (the control)."""
    port = 20000 + int(RUN_ID, 16) % 20000  # two runs sharing the engine never collide
    sealed, plain = named("sealed"), named("plain")
    listener, peer = named("listener"), named("peer")
    engine_addrs = [
        ok(
            docker(
                None, "inspect", "--format", "{{.NetworkSettings.IPAddress}}", remote_engine.name
            )
        ).strip(),
        INNER_BIP.split("/")[0],
    ]
    try:
        ok(
            docker(
                remote_engine,
                "network",
                "create",
                "--internal",
                "-o",
                "com.docker.network.bridge.inhibit_ipv4=true",
                *LABEL_ARGS,
                sealed,
            )
        )
        ok(docker(remote_engine, "network", "create", "--internal", *LABEL_ARGS, plain))
        _listener(remote_engine, remote_image, listener, port, "--network", "host")
        _listener(remote_engine, remote_image, peer, 8080, "--network", sealed)
        for addr in engine_addrs:
            assert "reachable" in _fetch(remote_engine, remote_image, plain, addr, port)
            assert "reachable" not in _fetch(remote_engine, remote_image, sealed, addr, port)
        assert "reachable" in _fetch(remote_engine, remote_image, sealed, peer, 8080)
    finally:
        docker(remote_engine, "rm", "-f", listener, peer)
        docker(remote_engine, "network", "rm", sealed, plain)


@pytest.fixture(scope="module")
def own_engine(remote_engine: RemoteEngine) -> Iterator[RemoteEngine]:
    """An instance of this module's own (same image; ``remote_engine`` built it), for
    the tests that count sshd's logins or cut sshd: the shared instance may serve
    another test run meanwhile. Removed at the end."""
    engine = RemoteEngine(named("own"))
    try:
        yield ensure_remote_engine(name=engine.name)
    finally:
        engine.teardown()


@pytest.fixture
def own_path(own_engine: RemoteEngine, monkeypatch: pytest.MonkeyPatch) -> RemoteEngine:
    """This process's PATH starts with the own instance's ssh wrapper."""
    monkeypatch.setenv("PATH", own_engine.env()["PATH"])
    return own_engine


def test_one_controlmaster_connection_serves_every_client(own_path: RemoteEngine) -> None:
    """docker CLI calls, plain ssh commands and docker-py's connections all ride one
    ControlMaster connection: sshd accepts no new login for them; the config without
    ControlMaster logs in once per call (the count can move)."""
    remote_engine = own_path
    ok(docker(remote_engine, "version"))
    assert remote_engine.master_running()
    before = remote_engine.accepted_logins()
    for _ in range(5):
        ok(docker(remote_engine, "ps"))
    for _ in range(3):
        subprocess.run(remote_engine.ssh_argv("true"), check=True, timeout=60)
    client = remote_engine.sdk_client()
    for _ in range(3):
        assert client.ping() is True
    client.close()
    assert remote_engine.accepted_logins() == before
    assert remote_engine.master_running()

    for _ in range(2):
        ok(docker(remote_engine, "ps", mux=False))
    assert remote_engine.accepted_logins() == before + 2


def test_the_engine_socket_forwarded_over_the_master_serves_docker_py(
    own_engine: RemoteEngine,
) -> None:
    """``ssh -O forward -L LOCAL:/var/run/docker.sock`` through the ControlMaster gives a
    local socket that docker-py and the CLI use like a local engine's (pooled
    connections), with no new ssh login; cancelled, it is gone."""
    import docker as docker_sdk

    remote_engine = own_engine
    folder = Path(tempfile.mkdtemp(prefix="bdr-"))  # short: a socket path is <108 bytes
    sock = folder / "docker.sock"
    try:
        url = remote_engine.forward_socket(sock)
        before = remote_engine.accepted_logins()
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        client = docker_sdk.DockerClient(base_url=url)
        assert client.info()["Name"] == remote_engine.name
        assert all(client.ping() for _ in range(5))
        client.close()
        plain = subprocess.run(
            ["docker", "-H", url, "info", "--format", "{{.Name}}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert ok(plain).strip() == remote_engine.name
        assert remote_engine.accepted_logins() == before
    finally:
        remote_engine.cancel_forward(sock)
        shutil.rmtree(folder, ignore_errors=True)
    assert not sock.exists()


def test_stop_cuts_the_engine_off_and_start_brings_it_back(
    own_path: RemoteEngine, local_image: str
) -> None:
    """``stop()`` is the host going away: the CLI and docker-py fail with an ssh error
    instead of waiting, and the shared connection is gone; ``start()`` brings the same
    engine back, with the container started before still running."""
    engine = own_path
    stream_image(local_image, engine)
    keeper = named("keeper")
    ok(docker(engine, "run", "-d", "--name", keeper, *LABEL_ARGS, local_image, "sleep", "3600"))
    client = engine.sdk_client(timeout=30)
    assert client.ping() is True
    assert engine.master_running()

    engine.stop()
    failed = docker(engine, "ps", timeout=60)
    assert failed.returncode != 0
    assert "ssh" in failed.stderr and "exit status 255" in failed.stderr, failed.stderr
    # docker-py shows only that the connection closed: ssh's reason goes to stderr.
    with pytest.raises(requests.exceptions.ConnectionError, match="Connection aborted"):
        client.ping()
    assert not engine.master_running()
    inner = engine.in_engine("docker ps --format '{{.Names}}'")
    assert keeper in inner.split(), "dockerd and its containers outlive sshd"

    engine.start()
    names = ok(docker(engine, "ps", "--format", "{{.Names}} {{.State}}")).splitlines()
    assert f"{keeper} running" in names
    assert client.ping() is True
    client.close()
