"""pty_resize.py: arguments, the side channel, the window size, exit status and signals."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from backends.smolmachines import pty_resize as pr
from backends.smolmachines.bottle import PTY_RESIZE
from tests import support

PY = sys.executable


def wait_for(check: Callable[[], object], seconds: float = 10.0) -> object:
    """``tests.support.wait_for`` at this module's pace (the resizer's timers are short)."""
    return support.wait_for(check, seconds, interval=0.02)


# --------------------------------------------------------------------------- args


def test_parse_args() -> None:
    assert pr.parse_args(["m", "--", "/s", "machine", "exec", "--", "x"]) == (
        "m",
        ["/s", "machine", "exec", "--", "x"],
    )


@pytest.mark.parametrize(
    "argv", [[], ["m"], ["m", "--"], ["m", "/s", "x"], ["--", "--", "/s"], ["", "--", "/s"]]
)
def test_parse_args_rejects(argv: list[str]) -> None:
    with pytest.raises(pr.UsageError):
        pr.parse_args(argv)


def test_bad_usage_exits_2() -> None:
    done = subprocess.run([PY, PTY_RESIZE, "m"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "usage" in done.stderr


def test_side_channel_command() -> None:
    argv = pr.side_channel_argv("/abs/smolvm", "bottle-x", 132, 43)
    assert argv == [
        "/abs/smolvm", "machine", "exec", "--name", "bottle-x", "--",
        "setpriv", "--no-new-privs", "--", "sh", "-c",
        'for f in /dev/pts/*; do stty -F "$f" cols 132 rows 43 2>/dev/null; done; true',
    ]  # fmt: skip


def test_side_channel_script_runs_in_a_shell() -> None:
    # Every PTY the script can reach gets the size; an unreachable one is not an error.
    done = subprocess.run(["sh", "-n", "-c", pr.side_channel_script(80, 24)], check=False)
    assert done.returncode == 0


def test_channel_command() -> None:
    argv = pr.channel_argv("/abs/smolvm", "bottle-x")
    assert argv == [
        "/abs/smolvm", "machine", "exec", "--name", "bottle-x", "-i", "--stream", "--",
        "setpriv", "--no-new-privs", "--", "sh", "-c",
        'while read -r c r; do for f in /dev/pts/*; do stty -F "$f" cols "$c" rows "$r"'
        " 2>/dev/null; done; echo ok; done",
    ]  # fmt: skip
    assert "-t" not in argv
    done = subprocess.run(["sh", "-n", "-c", pr.channel_script()], check=False)
    assert done.returncode == 0


def test_channel_script_acknowledges_each_size() -> None:
    # Run the guest script on this host: no /dev/pts access is needed for the acks.
    done = subprocess.run(
        ["sh", "-c", pr.channel_script()], input="80 24\n100 30\n", capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert done.stdout == "ok\nok\n"


def test_channel_sends_lines_and_is_verified_by_acks(tmp_path: Path) -> None:
    log = tmp_path / "log"
    reader = (
        "import sys\n"
        f"for line in sys.stdin:\n    open({str(log)!r}, 'a').write(line); print('ok', flush=True)"
    )
    channel = pr.Channel([PY, "-c", reader])
    assert not channel.verified
    assert channel.send(80, 24) and channel.send(100, 30)
    wait_for(lambda: channel.verified)
    channel.close()  # EOF: the reader ends
    assert log.read_text() == "80 24\n100 30\n"
    assert not channel.verified


def test_channel_without_acks_is_never_verified() -> None:
    channel = pr.Channel([PY, "-c", "import sys\nfor line in sys.stdin: pass"])
    assert channel.send(80, 24)
    time.sleep(0.3)
    assert not channel.verified
    channel.close()


def test_channel_that_keeps_dying_is_given_up(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    channel = pr.Channel([PY, "-c", f"open({str(starts)!r}, 'a').write('x')"])
    results = []
    for _ in range(10):
        results.append(channel.send(1, 1))
        if channel.proc is not None:
            channel.proc.wait()
    assert results[-1] is False and channel.failures >= pr.CHANNEL_RETRIES
    assert starts.read_text() == "xxx"  # started three times, then left for the one-shots
    assert pr.Channel(["/nonexistent/smolvm"]).send(1, 1) is False


def test_a_restarted_channel_must_prove_itself_again(tmp_path: Path) -> None:
    # The first channel acknowledges one size, then ends on the next line; the second one
    # (started for the size after that) reads sizes but never acknowledges them.
    marker = tmp_path / "started"
    reader = (
        f"import os, sys\nfirst = not os.path.exists({str(marker)!r})\n"
        f"open({str(marker)!r}, 'a').close()\n"
        "for n, line in enumerate(sys.stdin):\n"
        "    if first and n == 1: sys.exit(0)\n"
        "    if first: print('ok', flush=True)\n"
    )
    channel = pr.Channel([PY, "-c", reader])
    assert channel.send(80, 24)
    wait_for(lambda: channel.verified)
    first = channel.proc
    assert first is not None and channel.send(81, 24)
    first.wait(timeout=10)
    assert channel.send(82, 24) and channel.proc is not first  # restarted
    time.sleep(0.3)  # room for an acknowledgement that must not come
    assert not channel.verified
    channel.close()


#: Exits 0 only in a session of its own (no terminal of the wrapper's to touch), else 9.
OWN_SESSION = "import os, sys; sys.exit(0 if os.getsid(0) == os.getpid() else 9)"


def test_one_shot_side_channel_status_and_session() -> None:
    assert pr.run_side_channel([PY, "-c", OWN_SESSION]) == 0
    assert pr.run_side_channel(["sh", "-c", "exit 3"]) == 3
    assert pr.run_side_channel(["/nonexistent/smolvm"]) == -1


def test_channel_runs_in_its_own_session() -> None:
    # Acknowledges (and so becomes verified) only when it runs in a session of its own.
    reader = "import os, sys\nown = os.getsid(0) == os.getpid()\n"
    reader += "for line in sys.stdin: print('ok' if own else 'no', flush=True)"
    channel = pr.Channel([PY, "-c", reader])
    assert channel.send(80, 24)
    wait_for(lambda: channel.verified)
    channel.close()


def test_channel_that_ignores_eof_is_killed_on_close() -> None:
    channel = pr.Channel([PY, "-c", "import time; time.sleep(60)"])
    assert channel.send(80, 24)
    proc = channel.proc
    assert proc is not None
    channel.close()
    assert channel.proc is None
    assert proc.wait(timeout=10) == -signal.SIGKILL  # it would have slept on


class FakeChannel(pr.Channel):
    def __init__(self, up: bool, proven: bool) -> None:
        super().__init__([])
        self.up, self.proven = up, proven
        self.sent: list[tuple[int, int]] = []

    @property
    def verified(self) -> bool:
        return self.up and self.proven

    def send(self, cols: int, rows: int) -> bool:
        self.sent.append((cols, rows))
        return self.up


@pytest.mark.parametrize(
    ("up", "proven", "one_shot"),
    [(True, True, False), (True, False, True), (False, False, True)],
)
def test_resizer_uses_one_shot_until_the_channel_is_proven(
    up: bool, proven: bool, one_shot: bool
) -> None:
    calls: list[Sequence[str]] = []
    channel = FakeChannel(up, proven)
    resizer = pr.Resizer(
        "/s", "m", size=lambda: (90, 20), runner=calls.append, schedule=[], channel=channel
    )
    resizer.sync()
    assert channel.sent == [(90, 20)] and resizer.calls == [(90, 20)]
    assert calls == ([pr.side_channel_argv("/s", "m", 90, 20)] if one_shot else [])


def test_exit_status() -> None:
    assert pr.exit_status(0) == 0
    assert pr.exit_status(3) == 3
    assert pr.exit_status(-signal.SIGTERM) == 128 + signal.SIGTERM
    assert pr.exit_status(-signal.SIGKILL) == 137


# --------------------------------------------------------------------------- window size


@pytest.fixture
def ptys() -> Iterator[Callable[[int, int], int]]:
    """Make PTYs with a given size; returns the slave fd (closed after the test)."""
    fds: list[int] = []

    def make(rows: int, cols: int) -> int:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        fds.extend([master, slave])
        return slave

    yield make
    for fd in fds:
        os.close(fd)


def test_fd_size_of_a_terminal(ptys: Callable[[int, int], int]) -> None:
    slave = ptys(40, 120)
    assert pr.fd_size(slave) == (120, 40)


def test_fd_size_zero_and_non_terminal(ptys: Callable[[int, int], int], tmp_path: Path) -> None:
    zero = ptys(0, 0)
    assert pr.fd_size(zero) is None
    assert pr.fd_size(ptys(0, 80)) is None and pr.fd_size(ptys(24, 0)) is None
    with open(tmp_path / "f", "w") as fh:
        assert pr.fd_size(fh.fileno()) is None
    assert pr.fd_size(9999) is None


def test_window_size_falls_back_past_zero_and_non_tty(
    ptys: Callable[[int, int], int], tmp_path: Path
) -> None:
    zero = ptys(0, 0)
    good = ptys(30, 90)
    with open(tmp_path / "f", "w") as fh:
        assert pr.window_size([fh.fileno(), zero, good]) == (90, 30)
        assert pr.window_size([zero, fh.fileno()]) is None
    assert pr.window_size([good, zero]) == (90, 30)


# --------------------------------------------------------------------------- resizer


def test_resizer_schedule_and_request() -> None:
    calls: list[Sequence[str]] = []
    resizer = pr.Resizer(
        "/s", "m", size=lambda: (100, 30), runner=lambda a: calls.append(a) or 0, schedule=[0.0]
    )
    resizer.start()
    wait_for(lambda: len(calls) >= 1)
    resizer.request()
    wait_for(lambda: len(calls) >= 2)
    resizer.stop()
    assert calls[0] == pr.side_channel_argv("/s", "m", 100, 30)


def test_resizer_syncs_on_schedule_and_request_only() -> None:
    """After the first scheduled sync nothing runs until the next one is due (30 s away)
    or a resize is asked for; a request does not use up a scheduled sync."""
    calls: list[Sequence[str]] = []
    resizer = pr.Resizer("/s", "m", size=lambda: (1, 1), runner=calls.append, schedule=[0.0, 30])
    resizer.start()
    wait_for(lambda: calls)
    time.sleep(0.5)  # room for a sync that should not happen
    assert len(calls) == 1
    resizer.request()
    wait_for(lambda: len(calls) == 2)
    resizer.stop()

    calls.clear()
    resizer = pr.Resizer("/s", "m", size=lambda: (1, 1), runner=calls.append, schedule=[0.2, 0.4])
    resizer.start()
    resizer.request()
    wait_for(lambda: len(calls) == 3)  # the request's, then both scheduled ones
    resizer.stop()


def test_resizer_stop_ends_the_thread_and_closes_the_channel() -> None:
    channel = FakeChannel(up=True, proven=True)
    closed: list[bool] = []
    channel.close = lambda: closed.append(True)  # type: ignore[method-assign]
    resizer = pr.Resizer("/s", "m", size=lambda: (1, 1), runner=len, schedule=[], channel=channel)
    before = set(threading.enumerate())
    resizer.start()
    # The resizer's thread, seen from outside: the one named "pty-resize" that start made.
    (thread,) = [t for t in threading.enumerate() if t not in before and t.name == "pty-resize"]
    resizer.stop()
    thread.join(timeout=10)
    assert not thread.is_alive() and closed == [True]


def test_resizer_skips_unknown_size() -> None:
    calls: list[Sequence[str]] = []
    resizer = pr.Resizer("/s", "m", size=lambda: None, runner=calls.append, schedule=[])
    resizer.sync()
    assert calls == []


def test_resizer_request_does_not_wait_for_a_slow_side_channel() -> None:
    # request() is what the SIGWINCH handler calls: it must return at once even while a
    # side channel hangs.
    started = []

    def slow(argv: Sequence[str]) -> int:
        started.append(argv)
        time.sleep(2)
        return 0

    resizer = pr.Resizer("/s", "m", size=lambda: (1, 1), runner=slow, schedule=[0.0])
    resizer.start()
    wait_for(lambda: started)
    t0 = time.monotonic()
    for _ in range(100):
        resizer.request()
    assert time.monotonic() - t0 < 1.0  # functional bound: the handler never blocks
    resizer.stop()


# --------------------------------------------------------------------------- real child


def test_runs_with_the_standard_library_only() -> None:
    # -S: no site-packages at all; -I: no cwd on sys.path, no PYTHON* variables.
    done = subprocess.run(
        [PY, "-S", "-I", PTY_RESIZE, "m", "--", PY, "-c", "raise SystemExit(4)"],
        cwd="/",
        check=False,
    )
    assert done.returncode == 4


def test_forwards_exit_status(tmp_path: Path) -> None:
    done = subprocess.run(
        [PY, PTY_RESIZE, "m", "--", PY, "-c", "import sys; sys.exit(7)"],
        cwd="/",
        check=False,
    )
    assert done.returncode == 7


def test_child_killed_by_signal_becomes_128_plus_n() -> None:
    done = subprocess.run(
        [PY, PTY_RESIZE, "m", "--", PY, "-c", "import os, signal; os.kill(os.getpid(), 9)"],
        check=False,
    )
    assert done.returncode == 137


def test_missing_child_is_127() -> None:
    done = subprocess.run(
        [PY, PTY_RESIZE, "m", "--", "/nonexistent/smolvm"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 127
    assert done.stderr.startswith("pty_resize: cannot run /nonexistent/smolvm: ")


CHILD = """
import signal, sys, time
def on(sig, _):
    print("child got", sig, flush=True)
    sys.exit(40 + sig)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, on)
print("ready", flush=True)
time.sleep(30)
sys.exit(1)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_forwards_signals_to_child(sig: int) -> None:
    # The wrapper is in its own session so that only the signal we send reaches it; the
    # child hears it only if the wrapper forwards it.
    proc = subprocess.Popen(
        [PY, PTY_RESIZE, "m", "--", PY, "-c", CHILD],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=10)
    assert f"child got {int(sig)}" in out
    assert proc.returncode == 40 + sig


SLEEPS = "import time; time.sleep(30)"
#: A terminal command that ends (status 0) once a size has reached the guest, else 1.
WAITS_FOR_SIZE = (
    "import os, time\n"
    "for _ in range(500):\n"
    "    if os.path.exists(LOG) and 'cols' in open(LOG).read():\n"
    "        sys.exit(0)\n"
    "    time.sleep(0.02)\n"
    "sys.exit(1)"
)


def fake_smolvm(tmp_path: Path, log: Path, child: str) -> Path:
    """A fake smolvm: its side channels log every size they are asked to set (the
    persistent one as ``channel cols C rows R``), and its terminal command runs ``child``
    (Python, with ``LOG`` the log path)."""
    fake = tmp_path / "smolvm"
    fake.write_text(
        f"#!{PY}\nimport sys\nLOG = {str(log)!r}\n"
        "log = open(LOG, 'a', buffering=1)\n"
        "if '-i' in sys.argv and '-t' not in sys.argv:  # the persistent channel\n"
        "    for line in sys.stdin:\n"
        "        c, r = line.split()\n"
        "        log.write(f'channel cols {c} rows {r}\\n')\n"
        "        print('ok', flush=True)\n"
        "    log.write('channel end\\n')\n"
        "elif '--' in sys.argv and sys.argv[sys.argv.index('--') + 1] in ('sh', 'setpriv'):\n"
        "    log.write(sys.argv[-1] + '\\n')\n"
        "else:\n" + "".join(f"    {line}\n" for line in child.splitlines())
    )
    fake.chmod(0o755)
    return fake


@pytest.mark.parametrize(("oneshot", "resyncs"), [(False, True), (True, True), (True, False)])
def test_sigwinch_runs_side_channel_with_terminal_size(
    tmp_path: Path, oneshot: bool, resyncs: bool
) -> None:
    """A real wrapper on a PTY: its side channel (a fake smolvm that logs what it is asked)
    gets the terminal size at start and again after a resize + SIGWINCH, through the
    persistent channel, or one exec per size when that is switched off. With the resyncs
    out of reach, only the SIGWINCH handler can carry the new size."""
    log = tmp_path / "log"
    fake = fake_smolvm(tmp_path, log, SLEEPS)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    wrapper = [PY, PTY_RESIZE] if resyncs else [PY, "-c", NO_RESYNC]
    proc = subprocess.Popen(
        [*wrapper, "m", "--", str(fake), "machine", "exec", "--name", "m", "-t", "x"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env={**os.environ, pr.ONESHOT_ENV: "1" if oneshot else ""},
    )
    prefix = "for f in /dev/pts/*" if oneshot else "channel "
    try:
        wait_for(lambda: log.exists() and f"{prefix}" in log.read_text())
        assert "cols 80 rows 24" in log.read_text()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        proc.send_signal(signal.SIGWINCH)
        wanted = "cols 160 rows 50" if oneshot else "channel cols 160 rows 50"
        wait_for(lambda: wanted in log.read_text())
        if oneshot:
            assert "channel" not in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.close(master)
        os.close(slave)


WINDOW_SIZE = (
    "import sys\n"
    f"sys.path.insert(0, {str(Path(PTY_RESIZE).parent)!r})\n"
    "import pty_resize\n"
    "open(sys.argv[1], 'w').write(repr(pty_resize.window_size()))"
)


@pytest.mark.parametrize(
    ("stdin", "stdout", "stderr", "size"),
    [
        ("null", "80x24", "file", (80, 24)),  # a tmux pane: stdin from /dev/null
        ("null", "file", "80x24", (80, 24)),
        ("0x0", "100x30", "file", (100, 30)),
        ("null", "100x30", "120x40", (100, 30)),
        ("90x20", "100x30", "120x40", (90, 20)),
        ("null", "file", "file", None),
    ],
)
def test_window_size_defaults_to_stdin_then_stdout_then_stderr(
    ptys: Callable[[int, int], int],
    tmp_path: Path,
    stdin: str,
    stdout: str,
    stderr: str,
    size: tuple[int, int] | None,
) -> None:
    """``window_size()`` with no arguments, in a process whose stdio is set up for real."""
    plain = os.open(tmp_path / "plain", os.O_WRONLY | os.O_CREAT, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)

    def fd(kind: str) -> int:
        if kind in ("null", "file"):
            return null if kind == "null" else plain
        cols, rows = kind.split("x")
        return ptys(int(rows), int(cols))

    out = tmp_path / "size"
    try:
        subprocess.run(
            [PY, "-c", WINDOW_SIZE, str(out)],
            stdin=fd(stdin), stdout=fd(stdout), stderr=fd(stderr), check=True,
        )  # fmt: skip
    finally:
        os.close(plain)
        os.close(null)
    assert out.read_text() == repr(size)


@pytest.mark.parametrize("where", ["stdout", "stderr"])
def test_wrapper_with_stdin_from_dev_null_sizes_the_guest(
    ptys: Callable[[int, int], int], tmp_path: Path, where: str
) -> None:
    """The wrapper as a tmux pane runs it (stdin /dev/null, the terminal on stdout or only
    on stderr, no SIGWINCH ever): the guest still gets the terminal's size."""
    log = tmp_path / "log"
    fake = fake_smolvm(tmp_path, log, WAITS_FOR_SIZE)
    term = ptys(24, 80)
    with open(tmp_path / "plain", "w") as plain:
        done = subprocess.run(
            [PY, PTY_RESIZE, "m", "--", str(fake), "machine", "exec", "--name", "m", "-t", "x"],
            stdin=subprocess.DEVNULL,
            stdout=term if where == "stdout" else plain,
            stderr=term if where == "stderr" else plain,
            start_new_session=True,
            env={**os.environ, pr.ONESHOT_ENV: "1"},
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, log.read_text() if log.exists() else "no size at all"
    assert "cols 80 rows 24" in log.read_text()


# The wrapper with its resyncs moved out of reach: only the start-up sync can size the guest.
NO_RESYNC = (
    "import sys\n"
    f"sys.path.insert(0, {str(Path(PTY_RESIZE).parent)!r})\n"
    "import pty_resize\n"
    "pty_resize.RESYNC_AT = (600.0,)\n"
    "sys.exit(pty_resize.main(sys.argv[1:]))"
)


@pytest.mark.parametrize("oneshot", [False, True])
def test_start_up_sync_runs_before_any_resync_or_sigwinch(
    ptys: Callable[[int, int], int], tmp_path: Path, oneshot: bool
) -> None:
    """The size reaches the guest from the start-up sync alone: no SIGWINCH is sent and
    the first resync is ten minutes away, so a wrapper that left the start-up sync to the
    resyncs would leave the guest at 0x0 (the terminal command then exits 1)."""
    log = tmp_path / "log"
    fake = fake_smolvm(tmp_path, log, WAITS_FOR_SIZE)
    term = ptys(24, 80)
    done = subprocess.run(
        [PY, "-c", NO_RESYNC, "m", "--", str(fake), "machine", "exec", "--name", "m", "-t", "x"],
        stdin=term, stdout=term, stderr=term, start_new_session=True,
        env={**os.environ, pr.ONESHOT_ENV: "1" if oneshot else ""}, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, log.read_text() if log.exists() else "no size at all"
    sizes = [line for line in log.read_text().splitlines() if "cols" in line]
    # The wrapper ends its persistent channel (EOF) before it exits.
    assert ("channel end" in log.read_text()) is not oneshot
    assert sizes and all("cols 80 rows 24" in line for line in sizes)
    # One sync: one one-shot call, or a line on the channel plus the one-shot that runs
    # until the channel is proven (the terminal command may end after the first of them).
    assert len(sizes) == 1 if oneshot else 1 <= len(sizes) <= 2
