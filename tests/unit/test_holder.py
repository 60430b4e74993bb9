"""The session holder's argv: exact argv lists for each backend's shape, quoting that
survives any argument (they travel as arguments, never in the script), the script run by
a real sh with the stand-in claude (pinned session ids), and the system-prompt flag
exactly when the prompt is non-empty."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from backends.base import GUEST_PROMPT, AgentSpec
from backends.claude import claude_args, status_settings_arg
from backends.docker.argv import claude_exec_argv
from backends.egress.plan import SKIP_PERMISSIONS
from backends.holder import ATTACH_MARK, attach_script, held_argv
from backends.smolmachines.bottle import PTY_RESIZE, SmolBottle

DOCKER_PREFIX = [
    "docker",
    "exec",
    "-it",
    "-u",
    "node",
    "-w",
    "/workspace",
    "-e",
    "TZ=UTC",
    "bottle-web",
]
SMOLVM_PREFIX = [
    "/usr/bin/python3",
    "/abs/backends/smolmachines/pty_resize.py",
    "bottle-web",
    "--",
    "smolvm",
    "machine",
    "exec",
    "--name",
    "bottle-web",
    "-i",
    "-t",
    "-e",
    "HOME=/home/node",
    "-e",
    "USER=node",
    "--",
    "setpriv",
    "--no-new-privs",
    "--",
    "runuser",
    "-u",
    "node",
    "--",
]


def held_tail(out: list[str], prefix: list[str]) -> list[str]:
    """What follows the kept framing: ``sh -c SCRIPT MARK MODE TTY claude ARGS...``."""
    assert out[: len(prefix)] == prefix
    rest = out[len(prefix) :]
    assert rest[:3] == ["sh", "-c", attach_script()]
    assert rest[3] == ATTACH_MARK
    return rest[4:]


def test_docker_shape_exact() -> None:
    args = ["--append-system-prompt-file", GUEST_PROMPT, "--model", "opus"]
    argv = [*DOCKER_PREFIX, "claude", *args]
    assert held_argv(argv, len(args)) == [
        *DOCKER_PREFIX,
        "sh",
        "-c",
        attach_script(),
        ATTACH_MARK,
        "resume",
        "1",
        "claude",
        *args,
    ]


def test_smolvm_shape_exact_keeps_wrapper_and_uid_switch() -> None:
    argv = [*SMOLVM_PREFIX, "claude"]
    assert held_tail(held_argv(argv, 0), SMOLVM_PREFIX) == ["resume", "1", "claude"]


def test_fresh_and_no_terminal_are_arguments() -> None:
    argv = [*DOCKER_PREFIX, "claude", "--x"]
    assert held_tail(held_argv(argv, 1, fresh=True), DOCKER_PREFIX) == [
        "fresh",
        "1",
        "claude",
        "--x",
    ]
    assert held_tail(held_argv(argv, 1, tty=False), DOCKER_PREFIX)[:2] == ["resume", "0"]


def test_split_by_index_when_name_and_args_say_claude() -> None:
    # The agent (and so the container) is called "claude", and an argument is "claude":
    # a search for the token would split in the wrong place.
    prefix = ["docker", "exec", "-it", "-u", "node", "-w", "/workspace", "claude"]
    args = ["--model", "claude"]
    out = held_argv([*prefix, "claude", *args], len(args))
    assert held_tail(out, prefix) == ["resume", "1", "claude", "--model", "claude"]


NASTY = [
    'it\'s "quoted"',
    "two  spaces",
    "$(touch /tmp/pwned) `id` $HOME",
    "line1\nline2",
    "héllo wörld 🙂 日本",
    "a;b&&c|d>e<f",
    "",
    "--",
    "\\backslash\\",
]


@pytest.mark.parametrize("shape", ["docker", "smolvm"])
def test_nasty_args_travel_as_arguments(shape: str) -> None:
    prefix = DOCKER_PREFIX if shape == "docker" else SMOLVM_PREFIX
    out = held_argv([*prefix, "claude", *NASTY], len(NASTY))
    assert held_tail(out, prefix) == ["resume", "1", "claude", *NASTY]


def test_index_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no claude executable at index -3: \['claude'\]"):
        held_argv(["claude"], 3)
    with pytest.raises(ValueError, match="no claude executable"):
        held_argv(["claude", "--x"], -1)


def test_with_the_real_docker_builder() -> None:
    args = claude_args(GUEST_PROMPT, True, ["--x", "a b"])
    argv = claude_exec_argv("bottle-web", args, env={"K": "v w"})
    prefix = argv[: -len(args) - 1]
    assert prefix[-1] == "bottle-web"
    assert held_tail(held_argv(argv, len(args)), prefix) == ["resume", "1", "claude", *args]


def test_with_the_real_smolmachines_builder() -> None:
    bottle = SmolBottle("/usr/bin/smolvm", "bottle-web", "web", {"K": "v"}, python="/py")
    args = claude_args(GUEST_PROMPT, False, ["--model", "claude"])
    argv = bottle.claude_argv(args)
    out = held_argv(argv, len(args))
    assert out[:2] == ["/py", PTY_RESIZE]
    prefix = argv[: -len(args) - 1]
    assert prefix[-4:] == ["runuser", "-u", "node", "--"]
    assert held_tail(out, prefix) == ["resume", "1", "claude", *args]


# --------------------------------------------------------------------------- prompt flag


def test_prompt_flag_only_when_prompt_nonempty() -> None:
    assert claude_args(GUEST_PROMPT, True, ["--y"]) == [
        "--append-system-prompt-file",
        GUEST_PROMPT,
        "--y",
    ]
    assert claude_args(GUEST_PROMPT, False, ["--y"]) == ["--y"]


@pytest.mark.parametrize("backend", ["docker", "smolmachines"])
@pytest.mark.parametrize(
    ("prompt", "flag"),
    [("", False), (" \n\t", False), ("Be brief.", True), ("$(x) 'q' \n é", True)],
)
def test_each_backend_plan_has_the_flag_exactly_when_prompt_nonempty(
    backend: str, prompt: str, flag: bool, tmp_path: Path
) -> None:
    from backends import registry

    impl = registry.get_backend(backend)
    spec = AgentSpec(name="web", backend=backend, prompt=prompt, claude_args=("--z",))
    plan = impl.prepare(spec)
    expected = ["--append-system-prompt-file", GUEST_PROMPT, "--z"] if flag else ["--z"]
    # An unattended (sealed) bottle's claude skips permission prompts: that flag goes first.
    skip = [SKIP_PERMISSIONS] if plan.extra.get("egress", {}).get("skip_permissions") else []
    assert plan.claude_args == [*skip, "--settings", status_settings_arg(), *expected]
    assert plan.prompt_nonempty is flag
    assert Path(plan.prompt_host).read_bytes() == prompt.encode()
    assert Path(plan.prompt_host).stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------- the script, run by sh

STANDIN = Path(__file__).resolve().parents[1] / "fakes" / "claude"


def run_held(tmp_path: Path, *, fresh: bool = False, **env: str) -> list[str]:
    """Run the attach script without a terminal (claude runs directly, no holder) with the
    stand-in claude as ``claude``, in ``tmp_path/work``; its conversation lines."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "claude").unlink(missing_ok=True)
    (bindir / "claude").symlink_to(STANDIN)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    full = {"PATH": f"{bindir}:{os.environ['PATH']}", "HOME": str(tmp_path / "home"), **env}
    done = subprocess.run(
        held_argv(["claude", "--x"], 1, fresh=fresh, tty=False),
        cwd=work,
        env=full,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    said = ("fresh conversation", "continued conversation", "arg1=", "arg2=")
    return [
        line
        for line in done.stdout.splitlines()
        if line.startswith(tuple(f"STANDIN-CLAUDE {s}" for s in said))
    ]


def pinned(tmp_path: Path) -> str:
    return (tmp_path / "home" / ".bottle-dash" / "session" / "session-id").read_text().strip()


def test_a_pinned_session_id_is_started_then_resumed(tmp_path: Path) -> None:
    first = run_held(tmp_path)
    sid = pinned(tmp_path)
    assert len(sid) == 36
    assert first == [
        "STANDIN-CLAUDE arg1=--session-id",
        f"STANDIN-CLAUDE arg2={sid}",
        "STANDIN-CLAUDE fresh conversation turn=1",
    ]
    assert run_held(tmp_path) == [
        "STANDIN-CLAUDE arg1=--resume",
        f"STANDIN-CLAUDE arg2={sid}",
        "STANDIN-CLAUDE continued conversation turn=2",
    ]
    # Fresh pins a new id; the next resume lands on it, not on the older conversation.
    fresh = run_held(tmp_path, fresh=True)
    new = pinned(tmp_path)
    assert new != sid
    assert fresh[-1] == "STANDIN-CLAUDE fresh conversation turn=1"
    assert run_held(tmp_path)[1:] == [
        f"STANDIN-CLAUDE arg2={new}",
        "STANDIN-CLAUDE continued conversation turn=2",
    ]


def test_a_conversation_from_before_pinning_is_adopted(tmp_path: Path) -> None:
    # A bottle whose claude ran with --continue: its newest transcript becomes the pin.
    import re

    folder = re.sub(r"[^A-Za-z0-9]", "-", str(tmp_path / "work"))
    project = tmp_path / "home" / ".claude" / "projects" / folder
    project.mkdir(parents=True)
    old = "00000001-aaaa-4bbb-8ccc-dddddddddddd"
    (project / f"{old}.jsonl").write_text("{}\n")
    lines = run_held(tmp_path)
    assert pinned(tmp_path) == old
    assert lines[:2] == ["STANDIN-CLAUDE arg1=--resume", f"STANDIN-CLAUDE arg2={old}"]


def test_a_pin_that_is_not_an_id_is_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "home" / ".bottle-dash" / "session"
    folder.mkdir(parents=True)
    (folder / "session-id").write_text("$(touch pwned) --dangerous\n")
    lines = run_held(tmp_path)
    assert lines[0] == "STANDIN-CLAUDE arg1=--session-id"
    assert len(pinned(tmp_path)) == 36
    assert not (tmp_path / "work" / "pwned").exists()


def test_claude_config_dir_is_where_the_transcripts_are(tmp_path: Path) -> None:
    config = tmp_path / "config"
    assert run_held(tmp_path, CLAUDE_CONFIG_DIR=str(config))[-1] == (
        "STANDIN-CLAUDE fresh conversation turn=1"
    )
    assert list(config.glob("projects/*/*.jsonl"))
    assert not (tmp_path / "home" / ".claude" / "projects").exists()
    assert run_held(tmp_path, CLAUDE_CONFIG_DIR=str(config))[-1] == (
        "STANDIN-CLAUDE continued conversation turn=2"
    )
