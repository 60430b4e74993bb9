"""``DockerBottle``: a handle on one agent's container.

Commands meant for a terminal (claude, ``bottle-dash exec``) are docker CLI argv from
``argv.py``; captured commands (``exec``) run that same CLI through ``backends.run`` so
they get a real timeout; files go in through the SDK's ``put_archive`` (see archive.py).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from backends import paths, run
from backends.agent_files import EXEC_ENV_FILE
from backends.base import (
    GUEST_HOME,
    GUEST_UID,
    GUEST_USER,
    BackendError,
    Bottle,
    BottleNotFound,
    Completed,
    bottle_name,
)
from backends.docker.argv import claude_exec_argv, env_file_text, exec_argv
from backends.docker.engine import Engine, api_message, errors, unavailable

#: Owners that need no lookup in the guest (the agent's own are the bottle's ``ids``).
KNOWN_IDS: dict[str, tuple[int, int]] = {"root": (0, 0)}

# What the docker CLI prints (exit 1) when the trouble is the engine or the container,
# not the script: those are errors, not a script's non-zero exit.
_CLI_DOWN = "Cannot connect to the Docker daemon"
_CLI_NO_CONTAINER = "Error response from daemon: No such container"
_CLI_NOT_RUNNING = "is not running"


def sdk_exec(api: Any, container: str, argv: Sequence[str], *, user: str) -> tuple[int, str, str]:
    """Run ``argv`` in ``container`` through the SDK (no docker CLI needed); returns
    ``(exit code, stdout, stderr)``. For short provisioning commands only: it has no
    timeout of its own beyond the client's."""
    exec_id = api.exec_create(container, list(argv), user=user, stdout=True, stderr=True)["Id"]
    out, err = api.exec_start(exec_id, demux=True)
    code = api.exec_inspect(exec_id).get("ExitCode")
    return (
        code if isinstance(code, int) else -1,
        (out or b"").decode(errors="replace"),
        (err or b"").decode(errors="replace"),
    )


def put_archive(api: Any, container: str, path: str, data: bytes | IO[bytes]) -> None:
    """Unpack the tar ``data`` (bytes, or a file streamed from its position) at ``path`` in
    ``container`` (``path`` must exist)."""
    if not api.put_archive(container, path, data):
        raise BackendError(f"the engine refused to unpack an archive at {path} in {container}")


class DockerBottle(Bottle):
    """A handle on the container ``bottle-<agent>``.

    ``env`` is the agent's environment from its plan; it goes on every ``docker exec`` so
    claude sees the env of the last plan even when the container was created by an
    earlier one.
    """

    def __init__(
        self,
        engine: Engine,
        agent: str,
        *,
        env: Mapping[str, str] | None = None,
        running: bool = True,
        ids: tuple[int, int] = (GUEST_UID, GUEST_UID),
    ) -> None:
        self.engine = engine
        #: The uid:gid the agent (``node``) runs as in this bottle.
        self.ids = ids
        self.agent = agent
        self.name = bottle_name(agent)
        self.env: dict[str, str] = dict(env or {})
        #: Whether the container was running when this handle was made.
        self.running = running

    def __repr__(self) -> str:
        return f"DockerBottle(agent={self.agent!r}, name={self.name!r})"

    # ------------------------------------------------------------------ argv for a terminal

    def env_file(self) -> str | None:
        """Write the agent's env to ``<state>/agents/<agent>/exec.env`` (mode 0600) for
        ``docker exec --env-file`` and return its path (None when there is nothing to write).

        The values stay out of argv: a pane's command is visible to every user on the host
        (``ps``) and to tmux clients. Only a value with a line break, which an env file
        cannot carry, still goes on the command line as ``-e``.
        """
        text = env_file_text(self.env)
        if not text:
            return None
        path = paths.agent_path(self.agent, EXEC_ENV_FILE)
        paths.write_private(path, text.encode())
        return str(path)

    def as_user(self, user: str) -> tuple[str, str | None]:
        """``docker exec -u`` value and ``HOME`` for ``user``: the agent (``node``) is its
        numeric ``uid:gid`` with ``/home/node``, because the engine resolves names in the
        image's ``/etc/passwd``, not in the one mounted over it; others pass as given."""
        if user == GUEST_USER:
            return f"{self.ids[0]}:{self.ids[1]}", GUEST_HOME
        return user, None

    def claude_argv(self, argv: Sequence[str], *, tty: bool = True) -> list[str]:
        """``docker exec -it -u UID:GID -w /workspace [--env-file F] -e HOME=/home/node
        bottle-<agent> claude ARGV...`` (writes the env file, see ``env_file``)."""
        user, home = self.as_user(GUEST_USER)
        return claude_exec_argv(
            self.name,
            argv,
            env=self.env,
            tty=tty,
            env_file=self.env_file(),
            user=user,
            home=home,
        )

    def wrap_argv(
        self, argv: Sequence[str], *, user: str, interactive: bool, tty: bool = False
    ) -> list[str]:
        """``docker exec [-i|-it] -u USER -w /workspace [--env-file F] -e K=V...
        bottle-<agent> ARGV...`` (writes the env file, see ``env_file``)."""
        who, home = self.as_user(user)
        return exec_argv(
            self.name,
            argv,
            user=who,
            env=self.env,
            interactive=interactive,
            tty=tty,
            env_file=self.env_file(),
            home=home,
        )

    # ------------------------------------------------------------------ captured commands

    def exec(self, script: str, *, user: str = GUEST_USER, timeout: float = 120) -> Completed:
        """Run ``sh -c script`` as ``user`` and capture its output; a non-zero exit of the
        script is returned, not raised. A missing or stopped container raises
        ``BottleNotFound``; an engine that does not answer, ``BackendUnavailable``."""
        argv = self.wrap_argv(["sh", "-c", script], user=user, interactive=False)
        done = run.run(argv, timeout=timeout)
        if done.returncode == 1:
            first = done.stderr.strip().splitlines()[:1]
            line = first[0] if first else ""
            if line.startswith(_CLI_DOWN):
                raise unavailable(ConnectionError(line))
            if line.startswith(_CLI_NO_CONTAINER):
                raise BottleNotFound(
                    f"no bottle for agent {self.agent} (container {self.name} does not exist)",
                    fix=f"bottle-dash up {self.agent}",
                    agent=self.agent,
                )
            if line.startswith("Error response from daemon:") and _CLI_NOT_RUNNING in line:
                raise BottleNotFound(
                    f"the bottle of agent {self.agent} is not running",
                    fix=f"bottle-dash up {self.agent}",
                    agent=self.agent,
                )
        return done

    # ------------------------------------------------------------------ files

    def _ids(self, api: Any, user: str) -> tuple[int, int]:
        if user == GUEST_USER:
            return self.ids
        if user in KNOWN_IDS:
            return KNOWN_IDS[user]
        if user.isdigit():
            return int(user), int(user)
        code, out, err = sdk_exec(api, self.name, ["id", "-u", user], user="root")
        code_g, out_g, _ = sdk_exec(api, self.name, ["id", "-g", user], user="root")
        if code or code_g:
            raise BackendError(
                f"no user {user!r} in the bottle of agent {self.agent}: {err.strip()}",
                agent=self.agent,
            )
        return int(out.strip()), int(out_g.strip())

    def cp_in(
        self, src: Path, dst: str, *, mode: int | None = None, user: str = GUEST_USER
    ) -> None:
        """Copy the host file or directory ``src`` to the guest path ``dst``, every entry
        owned by ``user``; ``mode`` sets the mode of ``dst`` itself. A missing parent
        directory of ``dst`` is created as ``user``."""
        from backends.docker.archive import path_tar  # tarfile: imported when copying, not by `ls`

        src = Path(src)
        if not src.exists():
            raise BackendError(f"cannot copy {src} into agent {self.agent}: it does not exist")
        dst = posixpath.normpath(dst)
        parent, base = posixpath.split(dst)
        if not dst.startswith("/") or not base:
            raise BackendError(f"guest path must be absolute and name a file: {dst!r}")
        with self.engine.translating() as api:
            try:
                uid, gid = self._ids(api, user)
                data = path_tar(src, base, uid=uid, gid=gid, mode=mode)
                try:
                    put_archive(api, self.name, parent, data)
                except errors.NotFound as exc:
                    if "No such container" in api_message(exc):
                        raise
                    # The parent is missing: make it as the owner, then try once more.
                    code, _, err = sdk_exec(
                        api, self.name, ["mkdir", "-p", "--", parent], user=f"{uid}:{gid}"
                    )
                    if code:
                        raise BackendError(
                            f"cannot create {parent} in agent {self.agent}: {err.strip()}",
                            agent=self.agent,
                        ) from exc
                    put_archive(api, self.name, parent, data)
            except errors.NotFound as exc:
                raise BottleNotFound(
                    f"no bottle for agent {self.agent}: {api_message(exc)}",
                    fix=f"bottle-dash up {self.agent}",
                    agent=self.agent,
                ) from exc
            except errors.APIError as exc:
                if "read-only" not in api_message(exc):
                    raise BackendError(
                        f"copying {src} to {dst} in agent {self.agent} failed: {api_message(exc)}",
                        agent=self.agent,
                    ) from exc
                # The root is read-only and the engine's archive API refuses every path
                # outside a volume (a tmpfs too): unpack as the owner in the bottle instead.
                self._untar_as(user, parent, data, f"copying {src} to {dst}")

    def _untar_as(self, user: str, parent: str, data: bytes, what: str) -> None:
        script = 'mkdir -p -- "$1" && tar -x -o -f - -C "$1"'
        argv = exec_argv(
            self.name, ["sh", "-c", script, "cp-in", parent], user=user, interactive=True
        )
        done = run.run(argv, timeout=120, input=data)
        if not done.ok:
            raise BackendError(
                f"{what} in agent {self.agent} failed: {done.stderr.strip()[:200]}",
                agent=self.agent,
            )
