"""Running host commands (argv lists, never a shell) and the cluster's long-lived daemons.

A daemon is started in its own session with its output in ``logs/<name>.log`` and its pid
in ``pids/<name>.pid``, so it outlives the process that started it (``cluster.py up``
returns) and a later ``down`` finds it again. A pid is trusted only while its command line
still names the run folder: a pid the kernel reused for something else is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.fakes.kube.layout import Layout


class KubeError(RuntimeError):
    """A step of building, starting or stopping the cluster failed; the message says
    which step, what it printed and where its log is."""


def run(
    argv: Sequence[str | Path],
    *,
    check: bool = True,
    timeout: float = 120,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and capture its output as text; raise KubeError (with the output's
    tail) when it fails and ``check`` is set."""
    args = [str(a) for a in argv]
    try:
        raw = subprocess.run(
            args,
            capture_output=True,
            input=input,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError as exc:
        raise KubeError(f"{args[0]} is not installed ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise KubeError(f"{' '.join(args[:4])} … did not finish in {timeout:.0f}s") from exc
    proc = subprocess.CompletedProcess(
        args,
        raw.returncode,
        raw.stdout.decode(errors="replace"),
        raw.stderr.decode(errors="replace"),
    )
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise KubeError(f"{' '.join(args[:6])} exited {proc.returncode}:\n{tail}")
    return proc


def kubectl(lay: Layout, *args: str, check: bool = True, timeout: float = 60) -> str:
    """Our kubectl as the cluster's admin; its output."""
    argv = [str(lay.binary("kubectl")), f"--kubeconfig={lay.admin_kubeconfig}", *args]
    return run(argv, check=check, timeout=timeout).stdout


def _pid_file(lay: Layout, name: str) -> Path:
    return lay.pids / f"{name}.pid"


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in {"Z", "X"}


def owned_pid(lay: Layout, name: str) -> int | None:
    """The live pid of daemon ``name`` when its command line still names the run folder."""
    try:
        pid = int(_pid_file(lay, name).read_text().strip())
    except (OSError, ValueError):
        return None
    if str(lay.run) not in _cmdline(pid) or _is_zombie(pid):
        _reap(pid)
        return None
    return pid


def start_daemon(
    lay: Layout, name: str, argv: Sequence[str | Path], env: Mapping[str, str] | None = None
) -> int:
    """Start ``argv`` detached, output to ``logs/<name>.log``; returns its pid."""
    lay.logs.mkdir(parents=True, exist_ok=True)
    lay.pids.mkdir(parents=True, exist_ok=True)
    log = open(lay.logs / f"{name}.log", "ab")  # noqa: SIM115 - the daemon owns it
    try:
        proc = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            cwd=lay.run,
        )
    finally:
        log.close()
    _pid_file(lay, name).write_text(f"{proc.pid}\n")
    # Until the child has exec'd, its command line is ours and names no run folder.
    deadline = time.monotonic() + 5
    while str(lay.run) not in _cmdline(proc.pid) and proc.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return proc.pid


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status when it was our child (no zombie left behind)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_pid(pid: int, *, grace: float = 10) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                _reap(pid)
                return
            time.sleep(0.1)


def stop_daemon(lay: Layout, name: str, *, grace: float = 10) -> bool:
    """Stop daemon ``name`` if it runs; True when there was one."""
    pid = owned_pid(lay, name)
    _pid_file(lay, name).unlink(missing_ok=True)
    if pid is None:
        return False
    stop_pid(pid, grace=grace)
    return True


def pids_naming(text: str, *, program: str) -> list[int]:
    """Pids of live processes running ``program`` (its file name starts so) whose command
    line contains ``text``, a path of ours (our containerd's socket): a program name
    alone would find other people's processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
        except OSError:
            continue
        if exe.startswith(program) and text in _cmdline(pid) and not _is_zombie(pid):
            found.append(pid)
    return found


def log_tail(lay: Layout, name: str, lines: int = 25) -> str:
    """The last lines of a daemon's log, for an error message."""
    path = lay.logs / f"{name}.log"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return f"--- last lines of {path}:\n" + "\n".join(text.splitlines()[-lines:])


def wait_for(what: str, probe: object, timeout: float, lay: Layout, log: str) -> None:
    """Call ``probe()`` until it returns true; KubeError naming ``what`` and the log's
    tail when ``timeout`` seconds pass or the daemon ``log`` died."""
    assert callable(probe)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        if log and owned_pid(lay, log) is None:
            raise KubeError(f"{log} exited while waiting for {what}\n{log_tail(lay, log)}")
        time.sleep(0.25)
    raise KubeError(f"timed out after {timeout:.0f}s waiting for {what}\n{log_tail(lay, log)}")
