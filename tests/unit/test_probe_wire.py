"""The probes' raw exchange with a sidecar (``net_facts.EXCHANGE_FN``), run by the shell
against a server on loopback: with busybox ``nc`` (the test image) and with ``node`` (the
agent image has no nc), the bytes must arrive exactly as meant, NULs and the request's
final CRLF included; and the probes' hand-made ClientHello must get a ServerHello from a
real TLS server."""

from __future__ import annotations

import shlex
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.probes import net_facts as nf

REQUEST = "CONNECT a.invalid:443 HTTP/1.1\r\nHost: a.invalid:443\r\n\r\n"
BINARY = bytes(range(256))


class Recorder:
    """A loopback server: records what one client sends, answers each chunk with
    ``reply`` once, and closes when the client does."""

    def __init__(self, reply: bytes = b"HTTP/1.1 403 Forbidden\r\n\r\n") -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.got = b""
        self.reply = reply
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(10)
            replied = False
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                self.got += data
                if not replied:
                    conn.sendall(self.reply)
                    replied = True


def _busybox() -> str:
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(cand).exists():
            return cand
    pytest.fail("busybox is not installed (the test image is made from it)")


@pytest.fixture(params=["nc", "node"])
def shell(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """argv prefix of a shell whose PATH offers only the client under test."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    busybox = _busybox()
    tools = ["sleep", "printf", "od", "cat"]
    if request.param == "nc":
        tools.append("nc")
    else:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed (the agent image's only TCP client)")
        (bindir / "node").symlink_to(node)
    for tool in tools:
        (bindir / tool).symlink_to(busybox)
    yield ["env", f"PATH={bindir}", busybox, "sh", "-c"]


def _run(shell: list[str], script: str) -> bytes:
    done = subprocess.run([*shell, script], capture_output=True, timeout=60, check=False)
    return done.stdout


def test_the_request_arrives_whole_and_the_reply_comes_back(shell: list[str]) -> None:
    server = Recorder()
    out = _run(
        shell,
        nf.EXCHANGE_FN + f"exchange 127.0.0.1 {server.port} {shlex.quote(nf.wire(REQUEST))}",
    )
    server.thread.join(15)
    assert server.got == REQUEST.encode()  # the final CRLF too: no reply without it
    assert out.startswith(b"HTTP/1.1 403")


def test_binary_chunks_arrive_byte_for_byte(shell: list[str]) -> None:
    server = Recorder()
    chunks = [nf.wire(REQUEST), nf.wire(BINARY)]
    words = " ".join(shlex.quote(c) for c in chunks)
    _run(shell, nf.EXCHANGE_FN + f"exchange 127.0.0.1 {server.port} {words}")
    server.thread.join(15)
    assert server.got == REQUEST.encode() + BINARY


def test_wire_escapes_everything_a_shell_or_printf_would_change() -> None:
    text = nf.wire(b"a\\b\r\n\x00%$\xff")
    assert text == "a\\\\b\\0015\\0012\\0000%$\\0377"
    assert all(0x20 <= ord(c) < 0x7F for c in text)


def test_the_client_hello_gets_a_server_hello(tmp_path: Path) -> None:
    """From a real TLS server (Python's ssl with a throwaway certificate); the SNI it saw
    is the one asked for."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=probe.invalid", "-keyout", "key.pem", "-out", "cert.pem"],
        cwd=tmp_path, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    seen: list[str | None] = []
    context.sni_callback = lambda _obj, name, _ctx: seen.append(name)  # type: ignore[assignment,misc,func-returns-value]
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = context.wrap_bio(incoming, outgoing, server_side=True)
    incoming.write(nf.client_hello("allowed.probe.invalid"))
    with pytest.raises(ssl.SSLWantReadError):
        server.do_handshake()
    answer = outgoing.read()
    assert nf.tls_answer(answer) == "server-hello"
    assert seen == ["allowed.probe.invalid"]


def test_replies_are_read_as_refused_or_answered() -> None:
    status, rest = nf.split_reply(
        b"HTTP/1.1 200 Connection established\r\n\r\n\x15\x03\x03\x00\x02"
    )
    assert status == "HTTP/1.1 200 Connection established"
    assert nf.tls_answer(rest) == "alert"
    assert nf.tls_answer(b"") == "closed"
    assert nf.split_reply(b"HTTP/1.1 403 Forbidden\r\n\r\nno")[0].startswith("HTTP/1.1 403")
