"""The client side of the test's remote Docker engine: keys, the pinned host key, an ssh
config and an ``ssh`` wrapper (test fixture only; see remote_engine.py).

Why a wrapper: ``ssh`` reads only ``-F FILE`` or the *passwd* home's ``~/.ssh/config``
(not ``$HOME``), and neither the docker CLI (``-H ssh://…`` runs ``ssh … -- HOST docker
system dial-stdio``) nor docker-py (``use_ssh_client=True`` runs ``ssh -l USER -p PORT --
HOST 'docker system dial-stdio'`` with ``os.environ``) takes ssh options. Both find
``ssh`` on ``$PATH``, so a folder whose ``ssh`` is ``exec /usr/bin/ssh -F CONFIG "$@"``,
put first on ``$PATH``, makes every client use this config and never touches the
operator's ``~/.ssh``.

The config matches both the instance's alias (``ssh://NAME``) and ``127.0.0.1`` (the URL
``ssh://root@127.0.0.1:PORT``); the host key is pinned under ``HostKeyAlias NAME``, so a
new port after a container restart keeps the same known_hosts line.
"""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import subprocess
import tarfile
from pathlib import Path
from typing import NamedTuple

CLIENT_KEY = "id_ed25519"
HOST_KEY = "ssh_host_ed25519_key"
#: A unix socket path has at most 107 bytes, and ssh adds 17 while it makes one.
MAX_CONTROL_PATH = 90


class SshFiles(NamedTuple):
    """Where one instance's client files are."""

    folder: Path

    @property
    def client_key(self) -> Path:
        return self.folder / CLIENT_KEY

    @property
    def host_key(self) -> Path:
        return self.folder / HOST_KEY

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    def config(self, mux: bool = True) -> Path:
        return self.folder / ("ssh_config" if mux else "ssh_config.nomux")

    def bin_dir(self, mux: bool = True) -> Path:
        """The folder whose ``ssh`` uses ``config(mux)``."""
        return self.folder / ("bin" if mux else "bin-nomux")

    @property
    def control_path(self) -> str:
        """The ControlMaster socket (``%p``: a master for an old port is never reused)."""
        return str(self.folder / "cm-%p")


def private_folder(folder: Path) -> None:
    """Create ``folder`` (and parents) 0700 and refuse one that another user owns: it
    holds a private key and the ControlMaster socket, which carries root on the engine."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.geteuid():
        raise RuntimeError(
            f"{folder} belongs to uid {st.st_uid}, not to you; remove it or set "
            "BOTTLE_DASH_REMOTE_DIR to a folder of your own"
        )
    os.chmod(folder, 0o700)


def ensure_keys(files: SshFiles) -> None:
    """Make the client key pair and the engine's host key pair when missing (ed25519,
    no passphrase, private halves 0600)."""
    for path, comment in ((files.client_key, "client"), (files.host_key, "host")):
        if path.exists() and path.with_suffix(".pub").exists():
            continue
        path.unlink(missing_ok=True)
        path.with_suffix(".pub").unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"bottle-dash-remote-{comment}"]
            + ["-f", str(path)],
            check=True,
            capture_output=True,
        )
        os.chmod(path, 0o600)


def keys_fingerprint(files: SshFiles) -> str:
    """A short hash of both public keys: the container records which keys it was given."""
    h = hashlib.sha256()
    for path in (files.client_key, files.host_key):
        h.update(path.with_suffix(".pub").read_bytes())
    return h.hexdigest()[:12]


def _public(path: Path) -> str:
    """``type base64`` of a public key file (its comment dropped)."""
    kind, blob, *_ = path.with_suffix(".pub").read_text().split()
    return f"{kind} {blob}"


def _conf_path(path: Path | str) -> str:
    """A path as an ssh_config value (double-quoted; ssh has no escape for a quote)."""
    text = str(path)
    if '"' in text or "\n" in text:
        raise RuntimeError(f"{text!r}: an ssh config path cannot hold a quote or newline")
    return f'"{text}"'


def config_text(files: SshFiles, alias: str, port: int, *, mux: bool) -> str:
    """The ssh config of one instance (``-F``: nothing of ~/.ssh or /etc/ssh is read)."""
    if mux and len(files.control_path) > MAX_CONTROL_PATH:
        raise RuntimeError(
            f"ControlPath {files.control_path} is too long for a unix socket; set "
            "BOTTLE_DASH_REMOTE_DIR to a shorter folder"
        )
    control = (
        [
            "ControlMaster auto",
            f"ControlPath {_conf_path(files.control_path)}",
            "ControlPersist 600",
            # A forwarded socket left by a master that died is replaced, not an error.
            "StreamLocalBindUnlink yes",
        ]
        if mux
        else ["ControlMaster no", "ControlPath none"]
    )
    lines = [
        f"# Written by tests/fakes/remote_engine.py for {alias}; use with ssh -F.",
        f"Host {alias} 127.0.0.1",
        "  HostName 127.0.0.1",
        f"  Port {port}",
        "  User root",
        f"  IdentityFile {_conf_path(files.client_key)}",
        "  IdentitiesOnly yes",
        "  IdentityAgent none",
        f"  HostKeyAlias {alias}",
        f"  UserKnownHostsFile {_conf_path(files.known_hosts)}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  UpdateHostKeys no",
        "  CheckHostIP no",
        "  PasswordAuthentication no",
        "  KbdInteractiveAuthentication no",
        "  BatchMode yes",
        "  ConnectTimeout 5",
        # A master whose server vanished without a FIN notices within ~10 s.
        "  ServerAliveInterval 5",
        "  ServerAliveCountMax 2",
        "  LogLevel ERROR",
        *(f"  {line}" for line in control),
    ]
    return "\n".join(lines) + "\n"


def wrapper_text(real_ssh: str, config: Path) -> str:
    """An ``ssh`` that is the real one with ``-F config``."""
    return (
        "#!/bin/sh\n# bottle-dash remote test engine: ssh with its own config.\n"
        f'exec {shlex.quote(real_ssh)} -F {shlex.quote(str(config))} "$@"\n'
    )


def real_ssh(files: SshFiles) -> str:
    """The ssh binary on ``$PATH`` that is not one of this instance's wrappers."""
    ours = {str(files.bin_dir(True)), str(files.bin_dir(False))}
    for folder in os.get_exec_path():
        if folder in ours:
            continue
        candidate = os.path.join(folder, "ssh")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("ssh is not installed: apt-get install -y openssh-client")


def write_client_files(files: SshFiles, alias: str, port: int) -> None:
    """known_hosts (the pinned host key), both configs and both wrappers, 0600/0700."""
    _write(files.known_hosts, f"{alias} {_public(files.host_key)}\n", 0o600)
    ssh = real_ssh(files)
    for mux in (True, False):
        _write(files.config(mux), config_text(files, alias, port, mux=mux), 0o600)
        files.bin_dir(mux).mkdir(mode=0o700, exist_ok=True)
        _write(files.bin_dir(mux) / "ssh", wrapper_text(ssh, files.config(mux)), 0o700)


def _write(path: Path, text: str, mode: int) -> None:
    """Replace ``path`` atomically (a concurrent reader sees the old or the new file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def authorized_keys(files: SshFiles) -> str:
    """The engine's /root/.ssh/authorized_keys: the client key, with no restriction (as
    on an ordinary host: port forwarding and ptys stay available to what is tested)."""
    return f"{_public(files.client_key)} bottle-dash-remote-client\n"


def key_tar(files: SshFiles, host_key_path: str) -> bytes:
    """authorized_keys and the host key pair (at ``host_key_path`` in the engine), as a
    tar for ``docker cp - NAME:/`` (root-owned, 0600: sshd's StrictModes checks)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder in ("root/.ssh", "etc/ssh/bottle-dash"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o700
            tar.addfile(info)
        host_key = host_key_path.lstrip("/")
        entries = [
            ("root/.ssh/authorized_keys", authorized_keys(files).encode(), 0o600),
            (host_key, files.host_key.read_bytes(), 0o600),
            (host_key + ".pub", files.host_key.with_suffix(".pub").read_bytes(), 0o644),
        ]
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
