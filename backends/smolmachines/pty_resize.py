#!/usr/bin/env python3
"""Keep a smolvm guest PTY at the size of the host terminal (stdlib only).

Usage: ``python /abs/path/pty_resize.py <machine> -- <smolvm> machine exec ... -t ...``

smolvm's ``machine exec -t`` gives the guest command a PTY that starts at 0x0 and never
hears the host's resizes, so a full-screen program in the guest draws for a 0x0
terminal. This wrapper runs the smolvm argv as a child on the same terminal (it is not
a PTY proxy: the child reads and writes the terminal directly, so the wrapper can never
slow its I/O down), and at start and on every SIGWINCH sets the size of every PTY in the
guest through a side channel::

    <smolvm> machine exec --name M -- sh -c 'for f in /dev/pts/*; do stty -F $f ...; done'

Setting the size on the guest side makes the guest kernel send SIGWINCH to the PTY's
foreground process, exactly as a local resize would. The side channel runs in a daemon
thread (a signal handler only sets an event), with its stdio away from the terminal.

To keep a resize fast, the sizes normally travel over one long-lived side channel (a
``machine exec -i`` whose guest shell runs the same ``stty`` loop for each ``COLS ROWS``
line on its stdin and acknowledges it) instead of one exec per resize; the one-shot exec
above also runs until that channel has acknowledged a size, and whenever it is down.

The window size comes from stdin, stdout or stderr, whichever is a terminal that does
not report 0x0. SIGINT, SIGTERM and SIGHUP are forwarded to the child; the child's exit
status is the wrapper's (death by signal N becomes 128 + N).

It is run by absolute path (never ``python -m``) so it works from any working directory,
and it imports nothing outside the standard library for the same reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Sequence

SYNC_DELAY = 0.15
"""Seconds between starting the child and the first side-channel call.

The guest PTY exists only once smolvm has connected to the guest agent and spawned the
command; a side channel that runs before that sets the size of PTYs that are not the
child's, and the child would start at 0x0. The delay covers a warm exec; the resyncs in
``RESYNC_AT`` cover a slow one (setting an unchanged size is a no-op in the guest, so
repeating it costs one exec and never a spurious SIGWINCH)."""

RESYNC_AT: tuple[float, ...] = (0.4, 0.8, 1.6, 3.2)
"""Seconds after start at which the size is set again, for a child whose PTY appeared
after the first sync (a cold machine, a loaded host)."""

SIDE_CHANNEL_TIMEOUT = 10.0
"""A side channel that hangs (a stopped machine) is abandoned after this many seconds."""

CHANNEL_RETRIES = 3
"""A persistent side channel that died this many times is given up for one-shot calls."""

CHANNEL_CLOSE_WAIT = 2.0
"""Seconds the persistent side channel gets to end after its stdin closes."""

ONESHOT_ENV = "BOTTLE_DASH_RESIZE_ONESHOT"
"""Set (non-empty) to use only the one-shot side channel (benchmarks compare the two)."""

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

USAGE = "usage: pty_resize.py <machine> -- <smolvm> <args...>"


class UsageError(ValueError):
    """The wrapper's own arguments are wrong."""


def parse_args(argv: Sequence[str]) -> tuple[str, list[str]]:
    """``[machine, "--", smolvm, ...]`` -> ``(machine, [smolvm, ...])``."""
    args = list(argv)
    if len(args) < 3 or args[1] != "--" or not args[0] or args[0].startswith("-"):
        raise UsageError(USAGE)
    return args[0], args[2:]


#: Every exec into the guest runs with no_new_privs (``smolvm.user_switch`` puts the same
#: ``smolvm.NO_NEW_PRIVS`` before the agent's commands too).
NO_NEW_PRIVS: tuple[str, ...] = ("setpriv", "--no-new-privs", "--")


def side_channel_script(cols: int, rows: int) -> str:
    """The guest script that gives every guest PTY ``cols`` x ``rows``."""
    return (
        f'for f in /dev/pts/*; do stty -F "$f" cols {int(cols)} rows {int(rows)} 2>/dev/null;'
        " done; true"
    )


def side_channel_argv(smolvm: str, machine: str, cols: int, rows: int) -> list[str]:
    """The host argv of one side-channel call (no ``-i``/``-t``: it must not touch the
    terminal)."""
    return [
        smolvm,
        "machine",
        "exec",
        "--name",
        machine,
        "--",
        *NO_NEW_PRIVS,
        "sh",
        "-c",
        side_channel_script(cols, rows),
    ]


def channel_script() -> str:
    """The guest script of the persistent side channel: for each ``COLS ROWS`` line on its
    stdin it sets every guest PTY, then prints ``ok`` (the wrapper's proof that the channel
    really delivers)."""
    return (
        "while read -r c r; do for f in /dev/pts/*; do"
        ' stty -F "$f" cols "$c" rows "$r" 2>/dev/null; done; echo ok; done'
    )


def channel_argv(smolvm: str, machine: str) -> list[str]:
    """The host argv of the persistent side channel: ``-i`` so sizes arrive on its stdin,
    ``--stream`` so its acknowledgements come back as they happen."""
    return [
        smolvm, "machine", "exec", "--name", machine, "-i", "--stream",
        "--", *NO_NEW_PRIVS, "sh", "-c", channel_script(),
    ]  # fmt: skip


def fd_size(fd: int) -> tuple[int, int] | None:
    """``(cols, rows)`` of the terminal on ``fd``; None when it is not a terminal or 0x0."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols = struct.unpack("HHHH", packed)[:2]
    if rows == 0 or cols == 0:
        return None
    return cols, rows


def window_size(fds: Sequence[int] = (0, 1, 2)) -> tuple[int, int] | None:
    """The first non-zero ``(cols, rows)`` among ``fds`` (stdin, stdout, stderr)."""
    for fd in fds:
        size = fd_size(fd)
        if size:
            return size
    return None


def exit_status(returncode: int) -> int:
    """A child's ``returncode`` as a shell reports it: a signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def run_side_channel(argv: Sequence[str]) -> int:
    """Run one side-channel call away from the terminal; its status (-1 if it failed)."""
    try:
        return subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # no terminal signals, no terminal at all
            timeout=SIDE_CHANNEL_TIMEOUT,
            check=False,
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return -1


class Channel:
    """A long-lived side channel: one ``machine exec -i`` whose guest shell reads a size
    per line, applies it at once and acknowledges it.

    A one-shot side channel costs a whole exec per resize (connect, spawn: ~100 ms in the
    shim tier); a line to a running channel costs next to nothing, which keeps resize
    propagation well under the 150 ms goal. The channel counts as ``verified`` only once a
    size came back acknowledged: until then (and whenever it has died) the caller also runs
    the one-shot side channel, so a CLI that buffers stdin or output can cost speed, never
    a size.
    """

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.proc: subprocess.Popen[bytes] | None = None
        self.failures = 0
        self._verified = threading.Event()

    @property
    def verified(self) -> bool:
        """A size went through the running channel and came back acknowledged."""
        return self._verified.is_set() and self.proc is not None and self.proc.poll() is None

    def _spawn(self) -> bool:
        if self.proc is not None:
            self.failures += 1
        if self.failures >= CHANNEL_RETRIES:
            return False
        self._verified.clear()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # no terminal signals, no terminal at all
            )
        except OSError:
            self.failures = CHANNEL_RETRIES
            return False
        threading.Thread(target=self._acks, args=(self.proc,), daemon=True).start()
        return True

    def _acks(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == b"ok" and proc is self.proc:
                self._verified.set()

    def send(self, cols: int, rows: int) -> bool:
        """Queue a size on the channel (starting it when needed); False when it is gone."""
        if (self.proc is None or self.proc.poll() is not None) and not self._spawn():
            return False
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"{int(cols)} {int(rows)}\n".encode())
            self.proc.stdin.flush()
        except (OSError, ValueError):  # EPIPE: it died since the poll; closed: stopping
            return False
        return True

    def close(self) -> None:
        """End the guest shell (EOF on its stdin) and the exec with it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin:
                proc.stdin.close()
        try:
            proc.wait(timeout=CHANNEL_CLOSE_WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()


class Resizer:
    """A daemon thread that sets the guest size when asked and on the start schedule.

    ``request()`` is safe to call from a signal handler: it only sets an event. Requests
    that arrive while a call runs are folded into one more call with the latest size.
    Each size goes through the persistent ``Channel``; the one-shot side channel runs too
    until that channel has proved itself (and again whenever it is down), so a size is
    never lost to a channel that does not work with this CLI.
    """

    def __init__(
        self,
        smolvm: str,
        machine: str,
        *,
        size: Callable[[], tuple[int, int] | None] = window_size,
        runner: Callable[[Sequence[str]], int] = run_side_channel,
        schedule: Sequence[float] | None = None,
        channel: Channel | None = None,
    ) -> None:
        self.smolvm = smolvm
        self.machine = machine
        self._size = size
        self._runner = runner
        # Read at run time (not as a default argument) so a test can move the resyncs away.
        self._schedule = sorted((SYNC_DELAY, *RESYNC_AT) if schedule is None else schedule)
        self._event = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pty-resize", daemon=True)
        self.calls: list[tuple[int, int]] = []
        self.channel = channel

    def start(self) -> None:
        """Start the thread; the start schedule counts from now."""
        self._t0 = time.monotonic()
        self._thread.start()

    def request(self) -> None:
        """Ask for a resize (from a SIGWINCH handler)."""
        self._event.set()

    def stop(self) -> None:
        """Stop the thread and close the persistent channel."""
        self._stop.set()
        self._event.set()
        if self.channel is not None:
            self.channel.close()

    def _loop(self) -> None:
        pending = list(self._schedule)
        while not self._stop.is_set():
            timeout = None
            if pending:
                timeout = max(0.0, self._t0 + pending[0] - time.monotonic())
            asked = self._event.wait(timeout)
            if self._stop.is_set():
                return
            self._event.clear()
            if not asked and pending:
                pending.pop(0)
            self.sync()

    def sync(self) -> None:
        """Set the guest PTYs to the host terminal's size now (nothing when it is unknown)."""
        size = self._size()
        if size is None:
            return
        cols, rows = size
        self.calls.append(size)
        if self.channel is not None:
            verified = self.channel.verified
            if self.channel.send(cols, rows) and verified:
                return
        self._runner(side_channel_argv(self.smolvm, self.machine, cols, rows))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the child, keep the guest PTYs sized, return the child's exit status."""
    try:
        machine, command = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    channel = None if os.environ.get(ONESHOT_ENV) else Channel(channel_argv(command[0], machine))
    resizer = Resizer(command[0], machine, channel=channel)
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        print(f"pty_resize: cannot run {command[0]}: {exc}", file=sys.stderr)
        return 127

    def forward(signum: int, _frame: object) -> None:
        # The child may already be gone; a signal to nobody is not an error.
        with contextlib.suppress(OSError):
            child.send_signal(signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    signal.signal(signal.SIGWINCH, lambda _s, _f: resizer.request())
    resizer.start()
    try:
        returncode = child.wait()
    finally:
        resizer.stop()
    return exit_status(returncode)


if __name__ == "__main__":
    sys.exit(main())
