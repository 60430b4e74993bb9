"""The resume fallback: exact argv lists for each backend's shape, quoting that survives
any argument, and the system-prompt flag exactly when the prompt is non-empty."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from backends.base import GUEST_PROMPT, AgentSpec
from backends.claude import HAS_CONVERSATION, claude_args, resume_fallback, status_settings_arg
from backends.docker.argv import claude_exec_argv
from backends.egress.plan import SKIP_PERMISSIONS
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


def script_tokens(argv: list[str]) -> list[str]:
    """The words ``sh -c`` will see in the fallback script after the transcript test."""
    assert argv[-3:-1] == ["sh", "-c"]
    assert argv[-1].startswith(HAS_CONVERSATION)
    return shlex.split(argv[-1].removeprefix(HAS_CONVERSATION))


def test_docker_shape_exact() -> None:
    args = ["--append-system-prompt-file", GUEST_PROMPT, "--model", "opus"]
    argv = [*DOCKER_PREFIX, "claude", *args]
    assert resume_fallback(argv, len(args)) == [
        *DOCKER_PREFIX,
        "sh",
        "-c",
        HAS_CONVERSATION
        + "claude --continue --append-system-prompt-file /home/node/.bottle-dash/prompt.md "
        "--model opus || claude --append-system-prompt-file "
        "/home/node/.bottle-dash/prompt.md --model opus",
    ]


def test_smolvm_shape_exact_keeps_wrapper_and_uid_switch() -> None:
    argv = [*SMOLVM_PREFIX, "claude"]
    assert resume_fallback(argv, 0) == [
        *SMOLVM_PREFIX,
        "sh",
        "-c",
        HAS_CONVERSATION + "claude --continue || claude",
    ]


def test_split_by_index_when_name_and_args_say_claude() -> None:
    # The agent (and so the container) is called "claude", and an argument is "claude":
    # a search for the token would split in the wrong place.
    prefix = ["docker", "exec", "-it", "-u", "node", "-w", "/workspace", "claude"]
    args = ["--model", "claude"]
    out = resume_fallback([*prefix, "claude", *args], len(args))
    script = HAS_CONVERSATION + "claude --continue --model claude || claude --model claude"
    assert out == [*prefix, "sh", "-c", script]
    smol = ["python", "/p.py", "claude", "--", "smolvm", "machine", "exec", "--name", "claude"]
    smol += ["--", "setpriv", "--no-new-privs", "--", "runuser", "-u", "node", "--"]
    out = resume_fallback([*smol, "claude", "claude"], 1)
    assert out[: len(smol)] == smol
    assert script_tokens(out) == ["claude", "--continue", "claude", "||", "claude", "claude"]


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
def test_nasty_args_round_trip(shape: str) -> None:
    prefix = DOCKER_PREFIX if shape == "docker" else SMOLVM_PREFIX
    out = resume_fallback([*prefix, "claude", *NASTY], len(NASTY))
    assert out[: len(prefix)] == prefix
    assert len(out) == len(prefix) + 3
    assert script_tokens(out) == ["claude", "--continue", *NASTY, "||", "claude", *NASTY]


def test_fresh_returns_argv_unchanged() -> None:
    argv = [*SMOLVM_PREFIX, "claude", *NASTY]
    assert resume_fallback(argv, len(NASTY), fresh=True) == argv
    argv = [*DOCKER_PREFIX, "claude"]
    assert resume_fallback(argv, 0, fresh=True) == argv


def test_index_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no claude executable at index -3: \['claude'\]"):
        resume_fallback(["claude"], 3)
    with pytest.raises(ValueError, match="no claude executable"):
        resume_fallback(["claude", "--x"], -1)


def test_claude_first_with_no_prefix() -> None:
    # The executable at index 0 (nothing runs it: a local claude) is still in range.
    assert resume_fallback(["claude", "--x"], 1) == [
        "sh",
        "-c",
        HAS_CONVERSATION + "claude --continue --x || claude --x",
    ]
    script = HAS_CONVERSATION + "claude --continue || claude"
    assert resume_fallback(["claude"], 0) == ["sh", "-c", script]


def test_with_the_real_docker_builder() -> None:
    args = claude_args(GUEST_PROMPT, True, ["--x", "a b"])
    argv = claude_exec_argv("bottle-web", args, env={"K": "v w"})
    out = resume_fallback(argv, len(args))
    assert out[:-3] == argv[: -len(args) - 1]
    assert out[:-3][-1] == "bottle-web"
    assert script_tokens(out) == ["claude", "--continue", *args, "||", "claude", *args]


def test_with_the_real_smolmachines_builder() -> None:
    bottle = SmolBottle("/usr/bin/smolvm", "bottle-web", "web", {"K": "v"}, python="/py")
    args = claude_args(GUEST_PROMPT, False, ["--model", "claude"])
    argv = bottle.claude_argv(args)
    out = resume_fallback(argv, len(args))
    assert out[:2] == ["/py", PTY_RESIZE]
    assert out[-7:-3] == ["runuser", "-u", "node", "--"]
    assert script_tokens(out) == ["claude", "--continue", *args, "||", "claude", *args]


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


def run_fallback(tmp_path: Path, **env: str) -> list[str]:
    """Run the fallback script with the stand-in claude as ``claude`` (stdin not a
    terminal: it starts, says how, and exits), in ``tmp_path/work``; its lines."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "claude").unlink(missing_ok=True)
    (bindir / "claude").symlink_to(STANDIN)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    full = {"PATH": f"{bindir}:{os.environ['PATH']}", "HOME": str(tmp_path / "home"), **env}
    done = subprocess.run(
        resume_fallback(["claude", "--x"], 1),
        cwd=work,
        env=full,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    return [line for line in done.stdout.splitlines() if "conversation" in line]


def test_no_transcript_starts_claude_once_without_continue(tmp_path: Path) -> None:
    assert run_fallback(tmp_path) == ["STANDIN-CLAUDE fresh conversation turn=1"]
    # The fresh start left its transcript where Claude Code keeps it: the next continues.
    assert run_fallback(tmp_path) == ["STANDIN-CLAUDE continued conversation turn=2"]
    assert run_fallback(tmp_path) == ["STANDIN-CLAUDE continued conversation turn=3"]


def test_a_transcript_that_cannot_be_continued_falls_back_to_a_fresh_start(
    tmp_path: Path,
) -> None:
    # A transcript of another start directory: the test says "try", --continue finds
    # nothing for this one and fails, and the || starts claude afresh (two starts).
    other = tmp_path / "home" / ".claude" / "projects" / "-elsewhere"
    other.mkdir(parents=True)
    (other / "s.jsonl").write_text("{}\n")
    assert run_fallback(tmp_path) == [
        "STANDIN-CLAUDE no conversation to continue",
        "STANDIN-CLAUDE fresh conversation turn=1",
    ]


def test_claude_config_dir_is_where_the_transcripts_are(tmp_path: Path) -> None:
    config = tmp_path / "config"
    assert run_fallback(tmp_path, CLAUDE_CONFIG_DIR=str(config)) == [
        "STANDIN-CLAUDE fresh conversation turn=1"
    ]
    assert list(config.glob("projects/*/*.jsonl"))
    assert not (tmp_path / "home" / ".claude" / "projects").exists()
    assert run_fallback(tmp_path, CLAUDE_CONFIG_DIR=str(config)) == [
        "STANDIN-CLAUDE continued conversation turn=2"
    ]
    # Without it, ~/.claude holds no transcript: a fresh start, no --continue tried.
    assert run_fallback(tmp_path) == ["STANDIN-CLAUDE fresh conversation turn=1"]
