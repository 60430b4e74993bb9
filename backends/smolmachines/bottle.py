"""A handle on one smolvm machine: claude's argv, exec and copy-in, as the agent user."""

from __future__ import annotations

import contextlib
import os
import posixpath
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from backends import run as runner
from backends.base import CLAUDE, GUEST_UID, GUEST_USER, Bottle, Completed, ProvisionError
from backends.smolmachines import smolvm as cli

#: Absolute path of the resize wrapper; tmux panes run it by path from any cwd.
PTY_RESIZE = str(Path(__file__).resolve().with_name("pty_resize.py"))


def wrap_tty(python: str, machine: str, argv: Sequence[str]) -> list[str]:
    """``[python, /abs/pty_resize.py, MACHINE, --, *argv]``: keeps the guest PTY sized."""
    return [python, PTY_RESIZE, machine, "--", *argv]


class SmolBottle(Bottle):
    """One machine. ``env`` is the agent's guest env, put on every exec.

    Every command runs through ``machine exec`` as the machine's user (root, set at create)
    under ``setpriv --no-new-privs`` and switches to the target user with ``runuser -u USER
    --`` (no login shell, so the env given with ``-e`` is what the command sees).
    """

    def __init__(
        self,
        smolvm: str,
        name: str,
        agent: str,
        env: Mapping[str, str] | None = None,
        *,
        python: str = sys.executable,
        agent_uid: int = GUEST_UID,
    ) -> None:
        self.smolvm = smolvm
        self.name = name
        self.agent = agent
        self.env = dict(env or {})
        self.python = python
        #: The agent's uid (its plan's): 0 switches with ``smolvm.ROOT_AGENT_SWITCH``.
        self.agent_uid = agent_uid

    def claude_argv(self, argv: Sequence[str], *, tty: bool = True) -> list[str]:
        """``smolvm machine exec --name M -i [-t] -e HOME.. -e USER.. -e K=V.. -- setpriv
        --no-new-privs -- runuser -u node -- claude ARGV..``; with ``tty`` wrapped by
        pty_resize.py."""
        return self.exec_argv([CLAUDE, *argv], user=GUEST_USER, tty=tty)

    def wrap_argv(
        self, argv: Sequence[str], *, user: str, interactive: bool, tty: bool = False
    ) -> list[str]:
        """Host argv running ``argv`` as ``user`` with the guest env; wrapped when ``tty``."""
        inner = cli.exec_argv(
            self.smolvm,
            self.name,
            argv,
            user=user,
            env=self.env,
            interactive=interactive,
            tty=tty,
            agent_uid=self.agent_uid,
        )
        return wrap_tty(self.python, self.name, inner) if tty else inner

    def exec(self, script: str, *, user: str = GUEST_USER, timeout: float = 120) -> Completed:
        """Run ``sh -c script`` as ``user`` and capture its output; never raises on non-zero."""
        argv = self.wrap_argv(["sh", "-c", script], user=user, interactive=False)
        done = runner.run(argv, timeout=timeout)
        return Completed(done.argv, done.returncode, done.stdout, cli.clean_stderr(done.stderr))

    def _check(self, script: str, *args: str, user: str, what: str) -> None:
        # Paths travel as positional parameters of `sh -c`, never pasted into the script.
        argv = self.wrap_argv(["sh", "-c", script, "sh", *args], user=user, interactive=False)
        done = runner.run(argv, timeout=120)
        if not done.ok:
            detail = cli.clean_stderr(done.stderr).strip() or done.stdout.strip()
            raise ProvisionError(f"{what} failed in {self.name}: {detail}", agent=self.agent)

    def cp_in(
        self, src: Path, dst: str, *, mode: int | None = None, user: str = GUEST_USER
    ) -> None:
        """Copy a host file or directory to ``dst``, owned by ``user`` (and ``mode`` if given).

        Parent directories are made as ``user`` (so they belong to it). A directory
        travels as one tar archive (``machine cp`` copies files) unpacked as root, then
        handed to ``user`` with ``chown -R``.
        """
        src = Path(src)
        if not src.exists():
            raise ProvisionError(f"{src} does not exist", agent=self.agent)
        parent = posixpath.dirname(dst.rstrip("/")) or "/"
        target = dst if src.is_dir() else parent
        self._check('mkdir -p "$1"', target, user=user, what=f"mkdir {target}")
        if src.is_dir():
            self._cp_dir(src, dst, user)
        else:
            self._cp(str(src), dst, mode)
        script = 'chown -R "$2:$(id -g "$2")" "$1"'
        args = [dst, user]
        if mode is not None:
            script += ' && chmod "$3" "$1"'
            args.append(f"{mode:o}")
        self._check(script, *args, user="root", what=f"chown {dst}")

    def _cp(self, src: str, dst: str, mode: int | None) -> None:
        argv = cli.cp_argv(self.smolvm, src, self.name, dst, mode=mode)
        done = runner.run(argv, timeout=300)
        if not done.ok:
            detail = cli.clean_stderr(done.stderr).strip()
            raise ProvisionError(f"copy {src} -> {self.name}:{dst} failed: {detail}")

    def _cp_dir(self, src: Path, dst: str, user: str) -> None:
        # Imported here: only provisioning copies directories, and `ls` pays for imports.
        import tarfile
        import tempfile
        import uuid

        staged = f"/tmp/.bottle-dash-{uuid.uuid4().hex}.tar"
        fd, local = tempfile.mkstemp(suffix=".tar")
        os.close(fd)
        try:
            with tarfile.open(local, "w") as tar:
                tar.add(str(src), arcname=".")
            self._cp(local, staged, 0o600)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(local)
        self._check(
            'tar -xf "$2" -C "$1"; rc=$?; rm -f "$2"; exit $rc',
            dst,
            staged,
            user="root",
            what=f"unpack {src.name} into {dst}",
        )
