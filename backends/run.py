"""The one place where backends run host commands.

Commands are values (an argv list) built by pure ``*_argv()`` functions elsewhere; this
module runs them with a timeout, never through a shell, and logs them with secrets
redacted.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Mapping, Sequence

from backends.base import BackendUnavailable, CommandFailed, Completed

log = logging.getLogger("bottle_dash.run")

_SECRET_KEY = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|CREDENTIAL)", re.I)


def redact(argv: Sequence[str]) -> list[str]:
    """``argv`` with the values of secret-looking ``K=V`` items replaced by ``***``."""
    out: list[str] = []
    for item in argv:
        key, sep, _value = item.partition("=")
        if sep and _SECRET_KEY.search(key) and "/" not in key:
            out.append(f"{key}=***")
        else:
            out.append(item)
    return out


def run(
    argv: Sequence[str],
    *,
    timeout: float = 60,
    input: str | bytes | None = None,
    check: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Completed:
    """Run ``argv`` and capture its output as text.

    Raises ``BackendUnavailable`` when the executable does not exist, ``CommandFailed`` on
    a timeout, and on a non-zero exit when ``check`` is set.
    """
    argv = [str(a) for a in argv]
    log.debug("run %s", redact(argv))
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.run(
            argv,
            input=data,
            capture_output=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BackendUnavailable(
            f"command not found: {argv[0]}",
            fix=f"install {argv[0]!r} or put it on PATH",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(
            f"timed out after {timeout:g}s: {' '.join(redact(argv))}",
        ) from exc
    done = Completed(
        argv=tuple(argv),
        returncode=proc.returncode,
        stdout=proc.stdout.decode(errors="replace"),
        stderr=proc.stderr.decode(errors="replace"),
    )
    if check and not done.ok:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise CommandFailed(
            f"exit {done.returncode}: {' '.join(redact(argv))}"
            + (f"\n  {detail[-1]}" if detail else "")
        )
    return done
