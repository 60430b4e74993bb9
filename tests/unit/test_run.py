"""``backends.run``: the captured runner and the foreground runner, on real processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from backends.base import BackendUnavailable, CommandFailed
from backends.run import foreground, redact, run, which

REPO = Path(__file__).resolve().parents[2]


def test_foreground_returns_the_exit_status() -> None:
    assert foreground(["sh", "-c", "exit 7"]) == 7
    assert foreground(["true"]) == 0


def test_foreground_a_child_killed_by_a_signal_is_128_plus_its_number() -> None:
    assert foreground(["sh", "-c", "kill -TERM $$"]) == 128 + signal.SIGTERM


def test_foreground_missing_binary_is_an_error_with_a_fix() -> None:
    with pytest.raises(BackendUnavailable) as info:
        foreground(["bottle-dash-no-such-binary", "x"])
    assert info.value.message == "command not found: bottle-dash-no-such-binary"
    assert "put it on PATH" in (info.value.fix or "")


def test_foreground_restores_the_signal_handlers() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    foreground(["true"])
    assert {s: signal.getsignal(s) for s in before} == before


def test_foreground_forwards_sigterm_and_survives_sigint(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    # The child says it is ready, then exits 42 on SIGTERM; SIGINT sent to the parent
    # alone must not kill the parent (it waits to report the child's status).
    child = f"trap 'exit 42' TERM; touch {ready}; while :; do sleep 0.05; done"
    code = textwrap.dedent(
        f"""
        import sys
        from backends.run import foreground
        sys.exit(foreground(["sh", "-c", {child!r}]))
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.02)
        os.kill(parent.pid, signal.SIGINT)
        time.sleep(0.1)
        assert parent.poll() is None
        os.kill(parent.pid, signal.SIGTERM)
        assert parent.wait(20) == 42
    finally:
        if parent.poll() is None:
            parent.kill()


def test_foreground_child_keeps_ctrl_c_at_its_default(tmp_path: Path) -> None:
    # The parent survives Ctrl-C during the child's life, spawn included, with a handler
    # of its own: the child must still get SIGINT and SIGQUIT at their default action (an
    # ignored signal would stay ignored across exec and Ctrl-C would not stop claude).
    # The parent's own handler is put back afterwards: whatever it was (a run started in
    # the background of a non-interactive shell begins with SIGINT ignored).
    before = signal.getsignal(signal.SIGINT)
    out = tmp_path / "status"
    assert foreground(["sh", "-c", f"grep -E '^Sig(Ign|Cgt):' /proc/self/status > {out}"]) == 0
    masks = dict(line.split(":\t") for line in out.read_text().splitlines())
    for sig in (signal.SIGINT, signal.SIGQUIT):
        assert not int(masks["SigIgn"], 16) & (1 << (sig - 1)), (sig, masks)
    assert signal.getsignal(signal.SIGINT) is before


def test_run_captures_and_raises_with_check() -> None:
    done = run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    with pytest.raises(CommandFailed) as info:
        run(["sh", "-c", "echo boom >&2; exit 3"], check=True)
    assert "exit 3" in info.value.message and "boom" in info.value.message
    with pytest.raises(BackendUnavailable):
        run(["bottle-dash-no-such-binary"])


def test_redact_hides_secret_values() -> None:
    assert redact(["-e", "API_KEY=s3cret", "PATH=/bin"]) == ["-e", "API_KEY=***", "PATH=/bin"]


def test_which_finds_what_shutil_which_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, plain = tmp_path / "first", tmp_path / "second", tmp_path / "plain"
    for folder in (first, second, plain):
        folder.mkdir()
    (first / "tool").mkdir()  # a folder of that name is no command
    (plain / "tool").write_text("not executable")
    (second / "tool").write_text("#!/bin/sh\n")
    (second / "tool").chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join(map(str, (first, plain, second))))
    assert which("tool") == shutil.which("tool") == str(second / "tool")
    assert which("no-such-tool") is None
    assert shutil.which("no-such-tool") is None
