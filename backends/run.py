"""The one place where host commands run.

Commands are values (an argv list) built by pure ``*_argv()`` functions elsewhere; this
module runs them never through a shell and logs them with secrets redacted: ``run``
captures their output under a timeout, ``stream`` hands each output line to a callback as
it arrives, ``foreground`` hands them this terminal.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import FrameType

from backends.base import BackendUnavailable, CommandFailed, Completed


def _debug(message: str, *args: object) -> None:
    """Log ``message`` at debug level on ``bottle_dash.run``, without importing logging:
    until something imports it (``-v``, the dashboard, a test) nothing has set up a
    handler, and unset logging drops debug lines anyway (``ls`` is run often)."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("bottle_dash.run").debug(message, *args)


_SECRET_KEY = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|CREDENTIAL)", re.I)


def which(command: str) -> str | None:
    """The path of ``command`` (a bare name) on ``$PATH``, as ``shutil.which`` finds it;
    None when it is not there. Here so that ``ls`` does not import shutil, which loads
    zlib, bz2 and lzma for its archive functions (``ls`` is run often)."""
    for folder in os.get_exec_path():
        candidate = os.path.join(folder or os.curdir, command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


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
    _debug("run %s", redact(argv))
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


def stream(
    argv: Sequence[str],
    on_line: Callable[[str], None],
    *,
    stdin_from: Sequence[str] | None = None,
    timeout: float = 3600,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    keep: int = 20,
) -> Completed:
    """Run ``argv`` and hand each line of its output (stdout and stderr merged) to
    ``on_line`` as it arrives: for long steps (an image build) whose progress the operator
    watches. With ``stdin_from`` a second command's stdout is piped into ``argv``'s stdin
    (``producer | argv`` without a shell).

    Returns the exit status with the last ``keep`` lines as ``stdout``; raises
    ``BackendUnavailable`` when an executable does not exist, ``CommandFailed`` on a
    timeout or when either command exits non-zero (with its last output line).
    """
    argv = [str(a) for a in argv]
    _debug("stream %s", redact(argv))
    producer: subprocess.Popen[bytes] | None = None
    tail: collections.deque[str] = collections.deque(maxlen=keep)
    deadline = time.monotonic() + timeout
    try:
        if stdin_from is not None:
            producer = subprocess.Popen(
                [str(a) for a in stdin_from],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        # Its own process group: a timeout or an interrupted caller stops the whole
        # tree (debootstrap runs dpkg and maintainer scripts below it).
        proc = subprocess.Popen(
            argv,
            stdin=producer.stdout if producer else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if producer:
            producer.kill()
            producer.wait()
        missing = exc.filename or argv[0]
        raise BackendUnavailable(
            f"command not found: {missing}", fix=f"install {missing!r} or put it on PATH"
        ) from exc
    if producer and producer.stdout:
        producer.stdout.close()  # the consumer holds the pipe now

    def kill_tree() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill_tree)
    timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                tail.append(line)
                on_line(line)
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            kill_tree()
            proc.wait()
        if producer and producer.poll() is None:
            producer.kill()
    producer_err = ""
    if producer:
        _out, err_bytes = producer.communicate()
        producer_err = err_bytes.decode(errors="replace").strip()
        if producer.returncode and not code:
            code = producer.returncode
            tail.append(producer_err.splitlines()[-1] if producer_err else "")
    if time.monotonic() > deadline:
        raise CommandFailed(f"timed out after {timeout:g}s: {' '.join(redact(argv))}")
    done = Completed(argv=tuple(argv), returncode=code, stdout="\n".join(tail), stderr="")
    if not done.ok:
        last = next((t for t in reversed(tail) if t.strip()), "")
        raise CommandFailed(
            f"exit {code}: {' '.join(redact(argv))}" + (f"\n  {last}" if last else "")
        )
    return done


#: Signals the terminal sends to the whole foreground process group: the child gets them
#: itself, so the parent only has to survive them to report the child's status.
_IGNORED = (signal.SIGINT, signal.SIGQUIT)
#: Signals sent to this process alone (a closing terminal, ``kill``): passed to the child.
_FORWARDED = (signal.SIGTERM, signal.SIGHUP)


def _survive(_signum: int, _frame: FrameType | None) -> None:
    """A terminal signal the child gets itself: this process only lives on. (A Python
    handler, not SIG_IGN: an ignored signal would stay ignored in the child after exec.)"""


@contextlib.contextmanager
def _signals_for(
    child: Callable[[], subprocess.Popen[bytes] | None],
) -> Iterator[Callable[[], None]]:
    """Around the child's whole life, spawn included (a signal that comes while it starts
    must not kill this process): survive what the terminal also sends the child, forward
    the rest. Those that arrive before ``child()`` exists are held; the function this
    yields sends them once it does."""
    held: list[int] = []

    def release() -> None:
        running = child()
        while held and running is not None:
            running.send_signal(held.pop(0))

    if threading.current_thread() is not threading.main_thread():
        yield release  # only the main thread may set handlers; the defaults stay
        return

    def forward(signum: int, _frame: FrameType | None) -> None:
        running = child()
        if running is None:
            held.append(signum)
        else:
            running.send_signal(signum)

    previous = {s: signal.getsignal(s) for s in (*_IGNORED, *_FORWARDED)}
    for sig in _IGNORED:
        signal.signal(sig, _survive)
    for sig in _FORWARDED:
        signal.signal(sig, forward)
    try:
        yield release
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def foreground(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
    """Run ``argv`` on this terminal (inherited stdio) until it exits; returns its status.

    Ctrl-C and Ctrl-\\ reach the child from the terminal; this process survives them
    meanwhile (from before the spawn, so one that comes while the child starts does not
    kill it) and is still here to report the status. SIGTERM and SIGHUP sent to this
    process are forwarded to the child (one that arrives while it starts is sent once it
    exists). A child killed by signal N returns 128 + N, as a shell would. A missing
    executable raises ``BackendUnavailable`` with the fix.
    """
    argv = [str(a) for a in argv]
    _debug("foreground %s", redact(argv))
    spawned: list[subprocess.Popen[bytes]] = []
    with _signals_for(lambda: spawned[0] if spawned else None) as release:
        try:
            spawned.append(subprocess.Popen(argv, env=dict(env) if env is not None else None))
        except FileNotFoundError as exc:
            raise BackendUnavailable(
                f"command not found: {argv[0]}",
                fix=f"install {argv[0]!r} or put it on PATH",
            ) from exc
        release()
        code = spawned[0].wait()  # a forwarded signal's handler runs; the wait goes on (PEP 475)
    return 128 - code if code < 0 else code
