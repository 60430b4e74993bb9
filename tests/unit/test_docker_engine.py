"""The stdlib read path to the engine's unix socket: statuses, a hung or absent engine.

A tiny server on a unix socket stands in for the engine's error answers (the real engine
is exercised by tests/integration/test_docker_backend.py)."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.base import BackendError, BackendUnavailable
from backends.docker import engine
from backends.docker.engine import Engine, EngineNotFound


def serve(path: Path, answer: bytes | None) -> socket.socket:
    """Answer every request on ``path`` with ``answer`` (None: accept and never answer)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(4)
    held: list[socket.socket] = []

    def loop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            if answer is None:
                held.append(conn)  # keep it open and silent
                continue
            conn.sendall(answer)
            conn.close()

    threading.Thread(target=loop, daemon=True).start()
    return server


@pytest.fixture
def sock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "engine.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    yield path


def http(status: str, body: bytes) -> bytes:
    return f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\n\r\n".encode() + body


def test_get_decodes_json(sock: Path) -> None:
    server = serve(sock, http("200 OK", b'[{"Id": "abc"}]'))
    try:
        assert Engine().get("/containers/json", {"all": "1"}) == [{"Id": "abc"}]
    finally:
        server.close()


def test_get_404_and_500(sock: Path) -> None:
    server = serve(sock, http("404 Not Found", b'{"message": "No such container: x"}'))
    try:
        with pytest.raises(EngineNotFound, match="No such container: x"):
            Engine().get("/containers/x/json")
    finally:
        server.close()
    sock.unlink()
    server = serve(sock, http("500 Internal Server Error", b'{"message": "boom"}'))
    try:
        with pytest.raises(BackendError, match="boom"):
            Engine().get("/version")
    finally:
        server.close()


def test_hung_engine_times_out_into_unavailable(
    sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "READ_TIMEOUT", 0.2)
    server = serve(sock, None)
    try:
        with pytest.raises(BackendUnavailable, match="timed out") as err:
            Engine().get("/version")
        assert err.value.fix and "dockerd" in err.value.fix
    finally:
        server.close()


def test_absent_socket_and_a_file_that_is_not_one(sock: Path) -> None:
    with pytest.raises(BackendUnavailable, match="No such file or directory"):
        Engine().get("/version")
    sock.write_text("")  # a file, not a socket: connect is refused
    with pytest.raises(BackendUnavailable, match=str(sock)):
        Engine().get("/version")


def write_context(config: Path, name: str, host: str) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    data = {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}}
    (meta / "meta.json").write_text(json.dumps(data))


def test_docker_host_order_env_then_context_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cfg"
    write_context(config, "rootless", "unix:///run/user/1000/docker.sock")
    write_context(config, "other", "tcp://10.0.0.9:2375")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    assert engine.docker_host() == "unix:///var/run/docker.sock"  # no config.json
    (config / "config.json").write_text(json.dumps({"currentContext": "rootless"}))
    assert engine.docker_host() == "unix:///run/user/1000/docker.sock"
    assert engine.unix_socket() == "/run/user/1000/docker.sock"
    monkeypatch.setenv("DOCKER_CONTEXT", "other")
    assert engine.docker_host() == "tcp://10.0.0.9:2375"
    assert engine.unix_socket() is None  # the SDK path
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert engine.docker_host() == "unix:///var/run/docker.sock"
    monkeypatch.setenv("DOCKER_CONTEXT", "missing")
    assert engine.docker_host() == "unix:///var/run/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "unix:///x.sock")
    assert engine.docker_host() == "unix:///x.sock"
