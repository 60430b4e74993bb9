"""The status hooks claude gets (backends.claude), the status dir and the host-side reader
(backends.status_file): real files, real shell, no fakes."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from backends import paths
from backends.base import GUEST_UID, AgentSpec
from backends.claude import (
    GUEST_STATUS_DIR,
    STATUS_FILE,
    STATUS_HOOKS,
    STATUS_WORDS,
    WORD_IDLE,
    WORD_WORKING,
    claude_args,
    status_hook_command,
    status_settings,
    status_settings_arg,
)
from backends.docker.backend import DockerBackend
from backends.egress.spec import EgressSpec
from backends.status_file import MAX_BYTES, UNREADABLE, read_status, read_status_file

pytestmark = pytest.mark.unit


def test_settings_hook_every_measured_event() -> None:
    hooks = status_settings()["hooks"]
    assert set(hooks) == {
        "SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest", "Notification",
        "PostToolUse", "Stop", "StopFailure", "SessionEnd",
    }  # fmt: skip
    matchers = {entry.get("matcher") for entry in hooks["Notification"]}
    # Claude Code sends notification_type; a matcher on anything else never fires.
    assert matchers == {"permission_prompt", "idle_prompt", "elicitation_dialog"}
    for entries in hooks.values():
        for entry in entries:
            (hook,) = entry["hooks"]
            assert hook["type"] == "command" and GUEST_STATUS_DIR in hook["command"]


def test_settings_arg_is_the_settings_as_json() -> None:
    assert json.loads(status_settings_arg()) == status_settings()
    args = claude_args("/p", True, ["--model", "x"], status_hooks=True)
    assert args[:2] == ["--settings", status_settings_arg()]
    assert args[2:] == ["--append-system-prompt-file", "/p", "--model", "x"]
    assert claude_args("/p", False, []) == []


@pytest.mark.parametrize(("event", "matcher", "word"), STATUS_HOOKS)
def test_each_hook_writes_its_word_silently(
    event: str, matcher: str | None, word: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        ["sh", "-c", status_hook_command(word, str(tmp_path))],
        input=json.dumps({"hook_event_name": event}),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert (tmp_path / STATUS_FILE).read_text() == word
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATUS_FILE]  # no temp file left


@pytest.mark.parametrize(
    ("stdin", "word"),
    [
        ({"tool_name": "AskUserQuestion", "tool_input": {}}, "question"),
        ({"tool_name": "ExitPlanMode"}, "question"),
        ({"tool_name": "Bash", "tool_input": {"command": "npm test"}}, "permission"),
        ({"tool_name": "Bash", "tool_input": {"command": "echo AskUserQuestion"}}, "permission"),
    ],
)
@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_permission_hook_tells_a_question_from_a_command(
    stdin: dict[str, object], word: str, separators: tuple[str, str], tmp_path: Path
) -> None:
    (entry,) = status_settings(str(tmp_path))["hooks"]["PermissionRequest"]
    payload = {"hook_event_name": "PermissionRequest", **stdin}
    done = subprocess.run(
        ["sh", "-c", entry["hooks"][0]["command"]],
        input=json.dumps(payload, separators=separators),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert (tmp_path / STATUS_FILE).read_text() == word


def test_hook_without_the_mount_prints_nothing_and_succeeds(tmp_path: Path) -> None:
    done = subprocess.run(
        ["sh", "-c", status_hook_command("working", str(tmp_path / "absent"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_hook_command_refuses_unknown_words() -> None:
    with pytest.raises(ValueError):
        status_hook_command("working; rm -rf /")


def test_status_dir_is_private_and_the_agents(tmp_path: Path) -> None:
    path = paths.ensure_status_dir("web", GUEST_UID)
    assert path == paths.status_dir("web") and path.is_dir()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.geteuid() in (0, GUEST_UID):
        assert mode == 0o700 and path.stat().st_uid == GUEST_UID
    else:
        assert mode == 0o777  # closed to other host users by the 0700 parent


def test_plan_records_and_creates_the_status_dir() -> None:
    """Only an unsealed bottle mounts a status dir: a sealed one's hooks send their word to
    its sidecar, so nothing the bottle writes lands in the operator's state dir."""
    plan = DockerBackend().prepare(AgentSpec(name="web", egress=EgressSpec(sealed=False)))
    assert plan.status_dir == str(paths.status_dir("web"))
    assert Path(plan.status_dir).is_dir()
    assert DockerBackend().prepare(AgentSpec(name="web")).status_dir is None


# ------------------------------------------------------------------ the reader


def test_reader_words(tmp_path: Path) -> None:
    f = tmp_path / "state"
    assert read_status_file(f) is None
    for word in sorted(STATUS_WORDS):
        f.write_text(word + "\n")
        reading = read_status_file(f)
        assert reading is not None and reading.word == word
        assert reading.mtime == f.stat().st_mtime
    for junk in ["", "busy", "[red]waiting[/red]", "working working", "w\x00rking", "x" * 40]:
        f.write_text(junk)
        junk_reading = read_status_file(f)
        assert junk_reading is not None and junk_reading.word == UNREADABLE, junk
        assert junk_reading.mtime == f.stat().st_mtime  # when it was written still counts


def test_reader_refuses_big_files(tmp_path: Path) -> None:
    f = tmp_path / "state"
    f.write_text("working" + " " * MAX_BYTES)
    assert read_status_file(f).word == UNREADABLE  # type: ignore[union-attr]


def test_reader_refuses_symlinks_even_to_a_good_word(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("working")
    link = tmp_path / "state"
    link.symlink_to(target)
    assert read_status_file(link).word == UNREADABLE  # type: ignore[union-attr]
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert read_status_file(tmp_path / "dangling").word == UNREADABLE  # type: ignore[union-attr]


def test_reader_does_not_block_on_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "state"
    os.mkfifo(fifo)
    assert read_status_file(fifo).word == UNREADABLE  # type: ignore[union-attr]


def test_reader_refuses_a_directory_and_a_socket(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    assert read_status_file(tmp_path / "d").word == UNREADABLE  # type: ignore[union-attr]
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s"))
        assert read_status_file(tmp_path / "s").word == UNREADABLE  # type: ignore[union-attr]
    finally:
        sock.close()


def test_read_status_of_an_agent() -> None:
    assert read_status("web") is None
    d = paths.ensure_status_dir("web", GUEST_UID)
    (d / STATUS_FILE).write_text("permission")
    reading = read_status("web")
    assert reading is not None and reading.word == "permission"


def test_hooks_as_claude_code_reads_them_stated_literally() -> None:
    """The hook settings are a contract with Claude Code, with the bottle's mount and with
    the sidecar: the command writes a temporary file next to the status file in the mounted
    folder, unique per hook process, and renames it; where that fails (a sealed bottle has
    no mount) it sends the word to the sidecar's status host through the proxy; each hook
    has a 5 s timeout; the JSON keys are sorted (a stable argv)."""
    assert status_hook_command("idle") == (
        "{ printf %s idle >/opt/bottle-dash/status/.state.$$ && mv -f "
        "/opt/bottle-dash/status/.state.$$ /opt/bottle-dash/status/state; } >/dev/null 2>&1"
        " || { curl -sf -m 3 -o /dev/null http://status.bottle-dash.invalid/idle || "
        "{ p=${http_proxy#*://}; p=${p%%/*}; printf 'GET http://status.bottle-dash.invalid/idle"
        " HTTP/1.0\\r\\nHost: status.bottle-dash.invalid\\r\\n\\r\\n' | nc -w 3 "
        '"${p%:*}" "${p##*:}"; } || '
        "wget -q -T 3 -O /dev/null http://status.bottle-dash.invalid/idle; } >/dev/null 2>&1;"
        " exit 0"
    )
    [ask] = status_settings()["hooks"]["PreToolUse"]
    assert ask == {
        "matcher": "AskUserQuestion|ExitPlanMode",
        "hooks": [{"type": "command", "command": status_hook_command("question"), "timeout": 5}],
    }
    assert status_settings_arg().startswith('{"hooks":{"Notification":[{"hooks":[{"command":')
    with pytest.raises(ValueError, match="^not a status word: 'working; rm -rf /'$"):
        status_hook_command("working; rm -rf /")


def test_the_newer_of_the_sidecars_word_and_the_mounted_file_wins() -> None:
    """A sealed bottle's word comes from its sidecar (``egress/status``), an unsealed one's
    from the mounted status dir; after a bottle changed between the two the newer counts."""
    from backends.status_file import relayed_status_file, status_file

    assert read_status("web") is None
    relayed, mounted = Path(relayed_status_file("web")), Path(status_file("web"))
    relayed.parent.mkdir(parents=True)
    relayed.write_text("working\n")
    assert read_status("web") == (WORD_WORKING, relayed.stat().st_mtime)
    mounted.parent.mkdir(parents=True)
    mounted.write_text("idle")
    os.utime(mounted, (1, 1))
    assert read_status("web").word == WORD_WORKING  # type: ignore[union-attr]
    os.utime(relayed, (0, 0))
    assert read_status("web").word == WORD_IDLE  # type: ignore[union-attr]
    relayed.unlink()
    assert read_status("web").word == WORD_IDLE  # type: ignore[union-attr]
