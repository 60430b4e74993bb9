"""A handle on one bottle's pod: claude's argv (``kubectl exec -it``), exec and copy-in,
all in the ``agent`` container as the image's ``node`` (the pod's ``runAsUser``).

A pod's containers run as one user fixed at creation and ``kubectl exec`` cannot change
it: a command asked to run as another user (root) is refused with a ``ProvisionError``,
not quietly run as the agent. Files travel as a tar archive on the exec's stdin (the exec
API; no host path reaches the pod).
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Sequence
from pathlib import Path

from backends import run as runner
from backends.base import (
    CLAUDE,
    GUEST_USER,
    GUEST_WORKSPACE,
    Bottle,
    Completed,
    ProvisionError,
)
from backends.kubernetes.names import AGENT_CONTAINER

#: The users a command may ask for: the agent's (the container's own).
AGENT_USERS = (GUEST_USER,)


def in_workspace(argv: Sequence[str]) -> list[str]:
    """``sh -c 'cd /workspace && exec "$@"' sh ARGV...``: ``kubectl exec`` has no workdir
    flag; the tail stays ``ARGV`` (the resume fallback splits claude's argv by index)."""
    return ["sh", "-c", f'cd {GUEST_WORKSPACE} 2>/dev/null; exec "$@"', "sh", *argv]


class KubeBottle(Bottle):
    """The pod ``name`` of ``agent``; ``kubectl`` is the argv prefix that reaches its
    cluster and namespace (``client.kubectl_base``)."""

    def __init__(self, kubectl: Sequence[str], name: str, agent: str, uid: int) -> None:
        self.kubectl = list(kubectl)
        self.name = name
        self.agent = agent
        self.uid = uid

    def claude_argv(self, argv: Sequence[str], *, tty: bool = True) -> list[str]:
        """``kubectl ... exec -i -t POD -c agent -- sh -c 'cd /workspace; exec "$@"' sh
        claude ARGV...``."""
        return self.wrap_argv([CLAUDE, *argv], user=GUEST_USER, interactive=True, tty=tty)

    def wrap_argv(
        self, argv: Sequence[str], *, user: str, interactive: bool, tty: bool = False
    ) -> list[str]:
        """``kubectl exec [-i] [-t] POD -c agent -- ...``; the environment is the
        container's own (its Secret), so no value travels in the argv."""
        if user not in (*AGENT_USERS, str(self.uid)):
            raise ProvisionError(
                f"a command as {user!r} cannot run in {self.name}: the pod's containers run "
                f"as uid {self.uid} and kubectl exec cannot change that",
                agent=self.agent,
            )
        flags = ["-i"] if interactive or tty else []
        if tty:
            flags.append("-t")
        return [
            *self.kubectl,
            "exec",
            *flags,
            self.name,
            "-c",
            AGENT_CONTAINER,
            "--",
            *in_workspace(argv),
        ]

    def exec(self, script: str, *, user: str = GUEST_USER, timeout: float = 120) -> Completed:
        """Run ``sh -c script`` in the agent container; never raises on non-zero."""
        done = runner.run(
            self.wrap_argv(["sh", "-c", script], user=user, interactive=False), timeout=timeout
        )
        return Completed(done.argv, done.returncode, done.stdout, done.stderr)

    def cp_in(
        self, src: Path, dst: str, *, mode: int | None = None, user: str = GUEST_USER
    ) -> None:
        """Copy a host file or directory to ``dst`` (a tar on the exec's stdin, unpacked by
        the agent's user, so it owns what arrives); ``mode`` sets a file's mode."""
        src = Path(src)
        if not src.exists():
            raise ProvisionError(f"{src} does not exist", agent=self.agent)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            if src.is_dir():
                tar.add(str(src), arcname=".", filter=_portable)
                into = dst
            else:
                info = tar.gettarinfo(str(src), arcname=posixpath.basename(dst))
                info = _portable(info)
                if mode is not None:
                    info.mode = mode
                with open(src, "rb") as fh:
                    tar.addfile(info, fh)
                into = posixpath.dirname(dst.rstrip("/")) or "/"
        argv = self.wrap_argv(
            ["sh", "-c", 'mkdir -p "$1" && tar -x -o -f - -C "$1"', "sh", into],
            user=user,
            interactive=True,
        )
        done = runner.run(argv, input=buf.getvalue(), timeout=600)
        if not done.ok:
            raise ProvisionError(
                f"copy {src} -> {self.name}:{dst} failed: {done.stderr.strip()}",
                agent=self.agent,
            )


def _portable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """No host owner travels: what arrives belongs to whoever unpacks it."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
