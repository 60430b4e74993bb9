"""The smolvm CLI as values: where it is, and pure builders for every argv we run.

The grammar follows ``smolvm --help`` of the smolmachines 1.32 wheel (``smol/smol-vmm``):
a machine is always named with ``--name`` (``exec`` takes only the long form), ``cp``
takes ``SRC NAME:DST`` positionals, and ``machine ls --json`` prints a JSON array whose
items carry ``name``, ``state`` (``created`` | ``started`` | ``running`` | ``stopped``),
``image``, ``labels`` (a dict), ``pid`` (the VMM's host pid while running, else null) and
``created_at`` (Unix seconds).

Nothing here runs a command; ``backends.run`` does, elsewhere.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from backends import run
from backends.base import GUEST_HOME, GUEST_USER, NO_ENTRIES

#: Path of the smolvm binary to use, overriding PATH and the wheel (tests point it at
#: the stand-in in tests/fakes).
ENV_OVERRIDE = "BOTTLE_DASH_SMOLVM"
#: Executable name of the wheel's CLI inside the ``smol`` package directory.
WHEEL_BINARY = "smol-vmm"

#: The machine's long-running workload. Without one smolvm launches the image's own
#: CMD, which for an agent image may be ``claude`` itself (without a terminal); the
#: agent's claude is started by ``exec`` instead, so the workload only keeps it up. It
#: exits on SIGTERM at once (``machine stop`` would otherwise wait out its stop timeout
#: for a ``sleep`` that, as the container's first process, ignores the signal).
KEEPALIVE: tuple[str, ...] = (
    "sh",
    "-c",
    "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
)
#: The machine's default exec user. Agent images set ``USER node``, and ``machine exec``
#: defaults to the machine's configured user: root is needed for ``chown`` and for
#: ``runuser``, which is how every exec switches to the agent user (under
#: ``setpriv --no-new-privs``).
MACHINE_USER = "root"

#: ``machine ls`` states that mean the VM is up.
LIVE_STATES = frozenset({"running", "started"})

#: Written by the wheel's binary to stderr on every call (it is named ``smol-vmm``, not
#: ``smolvm``); it is noise, never the error, so error messages leave it out.
_WHEEL_NOTE = "note: no packed assets found for"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def find_smolvm() -> str | None:
    """The smolvm CLI: ``$BOTTLE_DASH_SMOLVM``, else ``smolvm`` on PATH, else the binary the
    ``smolmachines`` wheel ships (``smol/smol-vmm``). None when there is none.

    ``importlib.util.find_spec("smol")`` locates the package without importing it (its
    import loads a native extension and wires environment variables).
    """
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        return override
    on_path = run.which("smolvm")
    if on_path:
        return on_path
    import importlib.util  # here: with smolvm on PATH, listing never needs it

    try:
        spec = importlib.util.find_spec("smol")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / WHEEL_BINARY
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def clean_stderr(text: str) -> str:
    """``text`` without terminal colour codes and the wheel binary's "no packed assets"
    note (smolvm logs in colour even to a pipe)."""
    plain = _ANSI.sub("", text)
    return "\n".join(line for line in plain.splitlines() if not line.startswith(_WHEEL_NOTE))


# --------------------------------------------------------------------------- argv


def version_argv(smolvm: str) -> list[str]:
    """``smolvm --version``."""
    return [smolvm, "--version"]


def _pairs(flag: str, items: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for key, value in items.items():
        out += [flag, f"{key}={value}"]
    return out


def create_argv(
    smolvm: str,
    name: str,
    *,
    image: str | None = None,
    from_pack: str | None = None,
    labels: Mapping[str, str] = {},
    env: Mapping[str, str] = {},
    allow_cidrs: Sequence[str] = (),
    dns: str | None = None,
    net: bool = False,
    volumes: Sequence[str] = (),
    workdir: str | None = None,
    user: str | None = MACHINE_USER,
    cpus: float | None = None,
    memory: int | None = None,
    workload: Sequence[str] = KEEPALIVE,
) -> list[str]:
    """``smolvm machine create``: from ``image`` (a registry ref, a ``docker save`` archive
    or a rootfs dir) or ``from_pack`` (a ``.smolmachine``), exactly one of them.

    ``cpus`` is rounded up to whole vCPUs; ``memory`` is in bytes (smolvm takes MiB).
    ``dns`` is the guest's resolver (smolvm's gateway forwards every query there; without
    it, to the host's resolver, whatever ``--allow-cidr`` says).
    """
    if (image is None) == (from_pack is None):
        raise ValueError("give exactly one of image and from_pack")
    argv = [smolvm, "machine", "create", "--name", name]
    argv += ["--image", image] if image is not None else ["--from", str(from_pack)]
    if user:
        argv += ["--user", user]
    if workdir:
        argv += ["--workdir", workdir]
    for volume in volumes:
        argv += ["--volume", volume]
    if net:
        argv.append("--net")
    for cidr in allow_cidrs:
        argv += ["--allow-cidr", cidr]
    if dns:
        argv += ["--dns", dns]
    if cpus is not None:
        argv += ["--cpus", str(max(1, math.ceil(cpus)))]
    if memory is not None:
        argv += ["--mem", str(max(1, memory // (1024 * 1024)))]
    argv += _pairs("-e", env)
    argv += _pairs("--label", labels)
    if workload:
        argv += ["--", *workload]
    return argv


def start_argv(smolvm: str, name: str) -> list[str]:
    """``smolvm machine start --name N``."""
    return [smolvm, "machine", "start", "--name", name]


def stop_argv(smolvm: str, name: str) -> list[str]:
    """``smolvm machine stop --name N``."""
    return [smolvm, "machine", "stop", "--name", name]


def delete_argv(smolvm: str, name: str) -> list[str]:
    """``smolvm machine delete --name N -f`` (no confirmation prompt)."""
    return [smolvm, "machine", "delete", "--name", name, "-f"]


def ls_argv(smolvm: str) -> list[str]:
    """``smolvm machine ls --json``: every machine, one call."""
    return [smolvm, "machine", "ls", "--json"]


def cp_argv(smolvm: str, src: str, name: str, dst: str, *, mode: int | None = None) -> list[str]:
    """``smolvm machine cp [--mode OCTAL] SRC NAME:DST`` (host to guest; the mode is set on
    upload, so the file is never readable by others, even for a moment)."""
    argv = [smolvm, "machine", "cp"]
    if mode is not None:
        argv += ["--mode", f"{mode:o}"]
    return [*argv, src, f"{name}:{dst}"]


def logs_argv(smolvm: str, name: str, tail: int) -> list[str]:
    """``smolvm machine logs --name N --tail T``: the workload's output."""
    return [smolvm, "machine", "logs", "--name", name, "--tail", str(tail)]


def pack_create_argv(smolvm: str, image: str, output: str) -> list[str]:
    """``smolvm pack create --image IMG -o OUT`` (writes OUT and ``OUT.smolmachine``)."""
    return [smolvm, "pack", "create", "--image", image, "-o", output]


def guest_env(user: str, env: Mapping[str, str]) -> dict[str, str]:
    """The env of every exec: ``HOME`` and ``USER`` of ``user``, then the agent's env.

    Env given at create time never reaches exec'd processes, so it goes on every exec.
    """
    home = "/root" if user == "root" else (GUEST_HOME if user == GUEST_USER else f"/home/{user}")
    out = {"HOME": home, "USER": user}
    out.update({k: v for k, v in env.items() if k not in out})
    return out


#: How the agent becomes uid 0 when its workspace belongs to root: every capability out
#: of its bounding and inheritable sets and no-new-privileges, as in a docker bottle (a
#: plain ``runuser`` to a uid-0 ``node`` would keep all of root's capabilities in the VM).
ROOT_AGENT_SWITCH: tuple[str, ...] = (
    "setpriv",
    "--reuid=0",
    "--regid=0",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
)


#: Put before every other exec: no_new_privs is inherited by everything the exec starts
#: and survives ``runuser``'s switch, so no setuid or file-capability binary in the guest
#: can raise the privileges of an agent's process (docker's ``no-new-privileges``).
#: pty_resize.py (run by path, so it imports nothing of ours) holds the same tuple.
NO_NEW_PRIVS: tuple[str, ...] = ("setpriv", "--no-new-privs", "--")


def user_switch(user: str, agent_uid: int | None = None) -> list[str]:
    """The guest command that runs the rest as ``user`` with no_new_privs set:
    ``setpriv --no-new-privs -- runuser -u USER --``, or ``ROOT_AGENT_SWITCH`` for the
    agent (``node``) when it is uid 0 (``agent_uid``)."""
    if user == GUEST_USER and agent_uid == 0:
        return list(ROOT_AGENT_SWITCH)
    return [*NO_NEW_PRIVS, "runuser", "-u", user, "--"]


def exec_argv(
    smolvm: str,
    name: str,
    argv: Sequence[str],
    *,
    user: str = GUEST_USER,
    env: Mapping[str, str] = {},
    interactive: bool = False,
    tty: bool = False,
    agent_uid: int | None = None,
) -> list[str]:
    """``smolvm machine exec --name N [-i] [-t] -e HOME=.. -e USER=.. -e K=V.. -- setpriv
    --no-new-privs -- runuser -u USER -- ARGV..``: ``argv`` runs as ``user`` (no login
    shell) with the guest env and no_new_privs (see ``user_switch`` for the agent as
    uid 0)."""
    out = [smolvm, "machine", "exec", "--name", name]
    if interactive or tty:
        out.append("-i")
    if tty:
        out.append("-t")
    out += _pairs("-e", guest_env(user, env))
    return [*out, "--", *user_switch(user, agent_uid), *argv]


def side_channel_argv(smolvm: str, machine: str, cols: int, rows: int) -> list[str]:
    """The argv of one resize side-channel call (``pty_resize.side_channel_argv``): the
    side channel lives in pty_resize.py (stdlib only, run by path), imported only here
    because it loads termios and signal handling that listing machines does not need."""
    from backends.smolmachines import pty_resize

    return pty_resize.side_channel_argv(smolvm, machine, cols, rows)


# --------------------------------------------------------------------------- listing


class MachineRecord(NamedTuple):
    """One item of ``machine ls --json``, reduced to what a backend reads."""

    name: str
    state: str
    image: str
    labels: Mapping[str, str] = NO_ENTRIES
    pid: int | None = None
    created_at: int | None = None

    @property
    def live(self) -> bool:
        """The VM is up (``running``, or ``started`` while it boots)."""
        return self.state in LIVE_STATES


def parse_ls(text: str) -> list[MachineRecord]:
    """Parse ``machine ls --json`` output; items without a name are skipped."""
    data = json.loads(text or "[]")
    if isinstance(data, dict):  # tolerate {"machines": [...]}
        data = data.get("machines", [])
    out = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        labels = item.get("labels") or {}
        pid = item.get("pid")
        created = item.get("created_at")
        out.append(
            MachineRecord(
                name=str(item["name"]),
                state=str(item.get("state") or "unknown"),
                image=str(item.get("image") or ""),
                labels={str(k): str(v) for k, v in labels.items()}
                if isinstance(labels, dict)
                else {},
                pid=pid if isinstance(pid, int) and pid > 0 else None,
                created_at=created if isinstance(created, int) else None,
            )
        )
    return out
