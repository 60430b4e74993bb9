"""The docker backend's command lines, as exact lists: what a pane runs to reach claude."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.base import GUEST_PROMPT, AgentSpec
from backends.claude import status_settings_arg
from backends.docker.argv import claude_exec_argv, env_file_text, env_flags, exec_argv
from backends.docker.backend import DockerBackend
from backends.docker.bottle import DockerBottle
from backends.docker.engine import Engine
from backends.egress.plan import SKIP_PERMISSIONS
from backends.holder import held_argv

NASTY = 'it\'s "quoted" $(rm -rf /) `id` a\nnew line ünïcødé ✓ ; | & *'


def handle(
    agent: str = "alpha", env: dict[str, str] | None = None, ids: tuple[int, int] = (1000, 1000)
) -> DockerBottle:
    # Engine() is lazy: building argv never talks to Docker.
    return DockerBottle(Engine(), agent, env=env, ids=ids)


def env_file_of(agent: str = "alpha") -> Path:
    from backends import paths

    return paths.agent_state_dir(agent) / "exec.env"


def test_claude_argv_tty_is_exact() -> None:
    argv = handle(env={"B": "2", "A": "1"}, ids=(1234, 1001)).claude_argv(["--model", "opus"])
    assert argv == [
        "docker",
        "exec",
        "-it",
        # The agent's uid:gid (its workspace's owner), numeric: the engine would resolve
        # `node` in the image's own /etc/passwd, not in the one mounted over it.
        "-u",
        "1234:1001",
        "-w",
        "/workspace",
        "--env-file",
        str(env_file_of()),
        "-e",
        "HOME=/home/node",
        "bottle-alpha",
        "claude",
        "--model",
        "opus",
    ]
    # The values live in a private file, not on the command line.
    assert env_file_of().read_text() == "A=1\nB=2\n"
    assert env_file_of().stat().st_mode & 0o777 == 0o600


def test_claude_argv_without_tty_keeps_stdin_only() -> None:
    argv = handle().claude_argv(["-p", "hi"], tty=False)
    assert argv == [
        "docker",
        "exec",
        "-i",
        "-u",
        "1000:1000",
        "-w",
        "/workspace",
        "-e",
        "HOME=/home/node",
        "bottle-alpha",
        "claude",
        "-p",
        "hi",
    ]


def test_claude_argv_ends_with_claude_and_args() -> None:
    args = ["--x", "claude", "y"]
    argv = handle("claude").claude_argv(args)
    assert argv[-len(args) - 1 :] == ["claude", *args]
    assert argv[argv.index("bottle-claude") + 1] == "claude"


def test_module_builders_match_the_handle() -> None:
    env = {"K": "v"}
    file = str(env_file_of("a"))
    agent = {"user": "1000:1000", "home": "/home/node"}
    assert claude_exec_argv("bottle-a", ["--c"], env=env, env_file=file, **agent) == handle(
        "a", env
    ).claude_argv(["--c"])
    assert exec_argv("bottle-a", ["ls"], env=env, tty=True, env_file=file, **agent) == handle(
        "a", env
    ).exec_argv(["ls"], tty=True)
    # An agent env that sets HOME keeps it.
    assert "HOME=/home/node" not in exec_argv("b", ["ls"], env={"HOME": "/h"}, home="/home/node")


def test_exec_argv_user_tty_and_capture() -> None:
    assert handle().exec_argv(["id", "-u"], user="root") == [
        "docker",
        "exec",
        "-i",
        "-u",
        "root",
        "-w",
        "/workspace",
        "bottle-alpha",
        "id",
        "-u",
    ]
    assert handle().exec_argv(["sh"], tty=True)[:3] == ["docker", "exec", "-it"]
    # A foreground command keeps stdin unless told otherwise.
    assert exec_argv("bottle-a", ["sh"])[:3] == ["docker", "exec", "-i"]
    # A captured run must not take the caller's stdin: no -i at all.
    assert exec_argv("bottle-a", ["true"], interactive=False) == [
        "docker",
        "exec",
        "-u",
        "node",
        "-w",
        "/workspace",
        "bottle-a",
        "true",
    ]


def test_env_flags_with_a_file_keep_only_line_breaks_on_the_command_line() -> None:
    env = {"Z": "last", "A_B": NASTY, "M": " with space ", "E": "", "T": "tok=en#1", "R": "a\rb"}
    assert env_flags(env, "/s/exec.env") == [
        "--env-file", "/s/exec.env", "-e", f"A_B={NASTY}", "-e", "R=a\rb",
    ]  # fmt: skip
    assert env_file_text(env) == "E=\nM= with space \nT=tok=en#1\nZ=last\n"
    assert env_flags({}, None) == []


def test_env_flags_sorted_and_verbatim() -> None:
    env = {"Z": "last", "A_B": NASTY, "M": "with space", "E": ""}
    assert env_flags(env) == [
        "-e",
        f"A_B={NASTY}",
        "-e",
        "E=",
        "-e",
        "M=with space",
        "-e",
        "Z=last",
    ]


def test_nasty_values_pass_as_single_items() -> None:
    args = [NASTY, "two words", "$(id)", "--flag=a b"]
    argv = handle(env={"P": NASTY}).claude_argv(args)
    # Nothing was shell-joined or quoted: each value is exactly one argv element.
    assert argv == [
        *["docker", "exec", "-it", "-u", "1000:1000", "-w", "/workspace"],
        *["-e", f"P={NASTY}", "-e", "HOME=/home/node", "bottle-alpha", "claude"],
        *args,
    ]
    # NASTY has a line break, which an env file cannot carry: it stays a single -e item.
    assert not env_file_of().exists()


@pytest.mark.parametrize("tty", [True, False])
def test_held_argv_on_docker_argv(tty: bool) -> None:
    args = ["--append-system-prompt-file", GUEST_PROMPT, NASTY, "it's"]
    argv = handle(env={"E": "x y"}).claude_argv(args, tty=tty)
    wrapped = held_argv(argv, len(args), tty=tty)
    prefix = argv[: len(argv) - len(args) - 1]
    assert wrapped[: len(prefix)] == prefix
    assert wrapped[len(prefix) :][:2] == ["sh", "-c"]
    assert wrapped[len(prefix) + 4 :] == ["resume", "1" if tty else "0", "claude", *args]


def test_held_argv_splits_by_index_when_the_agent_is_called_claude() -> None:
    argv = handle("claude", env={"X": "claude"}).claude_argv(["claude"])
    wrapped = held_argv(argv, 1, fresh=True)
    assert wrapped[: argv.index("bottle-claude") + 1] == argv[: argv.index("bottle-claude") + 1]
    assert wrapped[-4:] == ["fresh", "1", "claude", "claude"]


@pytest.mark.parametrize(
    ("prompt", "present"),
    [("", False), ("be brief", True), (NASTY, True), (" ", False), ("\n\t", False)],
)
def test_system_prompt_flag_exactly_when_prompt_nonempty(
    prompt: str, present: bool, tmp_path: Path
) -> None:
    plan = DockerBackend().prepare(
        AgentSpec(name="alpha", prompt=prompt, claude_args=("--verbose",))
    )
    expected = ["--append-system-prompt-file", GUEST_PROMPT] if present else []
    # Sealed by default, so claude skips permission prompts (first), then the rest.
    assert plan.claude_args == [
        SKIP_PERMISSIONS,
        "--settings",
        status_settings_arg(),
        *expected,
        "--verbose",
    ]
    argv = handle().claude_argv(plan.claude_args)
    assert ("--append-system-prompt-file" in argv) is present
    if present:
        assert argv[argv.index("--append-system-prompt-file") + 1] == GUEST_PROMPT
