"""The CLI as an operator meets it: real subprocesses, messages on stderr, exit codes, and
never a traceback (config errors, unknown names, Docker down, --help)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bottle_dash import cli
from bottle_dash.cli import ls
from tests.fakes.cli_run import bd

SUBCOMMANDS = [
    "init", "add", "doctor", "plan", "up", "ls", "attach", "exec", "down", "rm", "logs", "egress",
    "allow", "image", "probe", "usage", "budget", "fetch", "merge", "pr", "diff",
]  # fmt: skip
DEAD_DOCKER = "unix:///nonexistent.sock"


def assert_error(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.startswith("bottle-dash: error: "), done.stderr
    assert "\nfix: " in done.stderr, done.stderr
    for needle in needles:
        assert needle in done.stderr, (needle, done.stderr)


def config_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return {"BOTTLE_DASH_CONFIG": str(path)}


# --------------------------------------------------------------------------- help


def test_help_lists_every_command_and_global_option() -> None:
    done = bd("--help")
    assert done.returncode == 0
    for word in [*SUBCOMMANDS, "--config", "--theme", "--no-tmux", "-v", "BOTTLE_DASH_CONFIG"]:
        assert word in done.stdout


@pytest.mark.parametrize(
    ("argv", "options"),
    [
        (["init"], []),
        (["doctor"], ["--json"]),
        (["plan"], ["NAME", "--json"]),
        (["up"], ["NAME"]),
        (["ls"], ["--json", "defined"]),
        (["attach"], ["NAME", "--fresh"]),
        (["exec"], ["NAME", "--user", "-- CMD"]),
        (["down"], ["NAME"]),
        (["rm"], ["NAME", "--volumes"]),
        (["image"], ["build"]),
        (["image", "build"], ["--tag", "bottle-dash-agent:latest"]),
    ],
)
def test_each_command_help(argv: list[str], options: list[str]) -> None:
    done = bd(*argv, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: bottle-dash " + " ".join(argv))
    for option in options:
        assert option.replace("NAME", "name") in done.stdout or option in done.stdout


def test_parser_help_matches_the_handlers() -> None:
    # Every subcommand the parser (and so --help) offers has a handler, and every handler
    # is a subcommand.
    (subparsers,) = [
        a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ]
    assert set(subparsers.choices) == set(cli.COMMANDS) == set(SUBCOMMANDS)


def test_each_command_module_owns_its_subparser_and_handler() -> None:
    # cli/__init__ only wires: the module that owns a command (OWNERS) defines both its
    # create_<command>_subparser and its command_<command>, and owns no other command's.
    for command in SUBCOMMANDS:
        module = cli.owner(command)
        assert callable(getattr(module, f"create_{command}_subparser")), command
        assert callable(getattr(module, f"command_{command}")), command
        owned = {n.removeprefix("command_") for n in vars(module) if n.startswith("command_")}
        assert {c for c in SUBCOMMANDS if cli.OWNERS[c] == cli.OWNERS[command]} == owned


#: One command line per subcommand (global options before it, spelled out in full).
EVERY_COMMAND = [
    ["init", "--name", "web", "--no-build"],
    ["logs", "web", "--tail", "5"],
    ["add", "web", "--workspace", "w", "--allow", "a.example", "b.example", "--env", "A=1"],
    ["--config", "c.toml", "doctor", "--json"],
    ["--config=c.toml", "plan", "web", "--json"],
    ["-v", "up", "web"],
    ["--no-tmux", "--theme", "dark", "probe", "web", "--only", "host", "--json"],
    ["--verbose", "ls", "--json"],
    ["attach", "web", "--fresh"],
    ["exec", "-u", "root", "web", "--", "ls", "-la"],
    ["down", "web"],
    ["rm", "web", "--volumes", "--force"],
    ["fetch", "web", "--yes"],
    ["merge", "web", "-y"],
    ["pr", "web", "--remote", "upstream", "--yes"],
    ["diff", "web", "--stat", "--json"],
    ["--theme=dark", "egress", "web", "--json"],
    ["allow", "web", "*.npmjs.org"],
    ["usage", "web", "--since", "2026-01-02", "--json"],
    ["budget", "web", "40/day"],
    ["image", "build", "--offline", "--tag", "t:1"],
]


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(subparsers.choices)


def test_every_command_parses_alike_with_only_its_own_parser() -> None:
    # `ls` builds the parser of its own subcommand only; what it parses must not change.
    seen = []
    for line in EVERY_COMMAND:
        head = line[: line.index("--")] if "--" in line else line
        command = cli.command_word(head)
        assert command is not None, line
        lean = cli.build_parser(only=command)
        assert subcommands(lean) == [command]  # the others were not built
        assert lean.parse_args(head) == cli.build_parser().parse_args(head), line
        seen.append(command)
    assert sorted(seen) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize(
    "argv",
    [
        [],  # the dashboard
        ["-h", "ls"],  # the top-level help lists every command
        ["--conf", "c.toml", "ls"],  # abbreviations: argparse decides
        ["-vv", "ls"],
        ["frobnicate"],  # invalid choice: the full list in the message
        ["--config"],
    ],
)
def test_no_command_word_means_the_full_parser(argv: list[str]) -> None:
    assert cli.command_word(argv) is None


def test_lean_parser_errors_and_help_are_the_full_ones() -> None:
    # `--them` is an abbreviation: the full parser prints that help
    assert bd("ls", "--help").stdout == bd("--them", "x", "ls", "--help").stdout
    assert_error(bd("ls", "--bogus"), 2, "unrecognized arguments: --bogus")
    assert_error(bd("-v", "up"), 2, "the following arguments are required: name")
    done = bd("-h", "ls")
    assert done.returncode == 0 and all(word in done.stdout for word in SUBCOMMANDS)


def test_usage_error_shape() -> None:
    assert_error(bd("frobnicate"), 2, "invalid choice")
    assert_error(bd("up"), 2, "name")


# --------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[agents.web\n", ["line 1", "TOML syntax error"]),
        (
            '[agents.web]\nbakend = "docker"\n',
            ["line 2", "agent 'web'", "key 'bakend'", "'backend'"],
        ),
        (
            '[agents.web]\nbackend = "dokcer"\n',
            ["agent 'web'", "key 'backend'", "docker, smolmachines"],
        ),
        ('[agents.web]\ncpus = "many"\n', ["key 'cpus'", "must be a number"]),
        ('[agents."Web App"]\n', ["agent 'Web App'", "not a valid agent name"]),
        ('[agents.web]\nworkspace = "/nonexistent/ws"\n', ["key 'workspace'", "does not exist"]),
        ('[agents.web]\nprompt = "a"\nprompt_file = "p"\n', ["key 'prompt_file'", "both set"]),
        ('[agents.web]\nprompt_file = "missing.md"\n', ["key 'prompt_file'", "missing.md"]),
    ],
)
@pytest.mark.parametrize("command", [["ls"], ["up", "web"], ["down", "web"], ["plan", "web"]])
def test_config_errors(tmp_path: Path, text: str, needles: list[str], command: list[str]) -> None:
    env = config_file(tmp_path, text)
    # Docker is pointed at a dead socket: the config error must come first, untouched.
    done = bd(*command, env={**env, "DOCKER_HOST": DEAD_DOCKER})
    assert_error(done, 3, env["BOTTLE_DASH_CONFIG"], *needles)
    assert "Docker" not in done.stderr


def test_config_flag_beats_environment(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[agents.one]\n")
    env = config_file(tmp_path, "[broken\n")
    done = bd("--config", str(good), "ls", "--json", env={**env, "DOCKER_HOST": DEAD_DOCKER})
    assert "TOML" not in done.stderr  # the broken env file was not read
    assert [r["name"] for r in json.loads(done.stdout)] == ["one"]


def test_unknown_agent_suggests_nearest(tmp_path: Path) -> None:
    env = config_file(tmp_path, "[agents.webapp]\n[agents.api]\n")
    done = bd("up", "webap", env=env)
    assert_error(done, 2, "unknown agent 'webap'", "did you mean 'webapp'")


def test_unknown_agent_is_named_even_with_the_engine_down(tmp_path: Path) -> None:
    # A mistyped name is the likelier mistake than an orphan bottle the engine could show.
    env = config_file(tmp_path, "[agents.webapp]\n[agents.api]\n")
    env["DOCKER_HOST"] = f"unix://{tmp_path}/no-engine.sock"
    done = bd("up", "webap", env=env)
    assert_error(done, 2, "unknown agent 'webap'", "did you mean 'webapp'", "not listed")


def test_init_writes_then_refuses(tmp_path: Path) -> None:
    target = tmp_path / "cfg" / "config.toml"
    first = bd("--config", str(target), "init")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(target)
    assert target.exists()
    target.write_text("# mine\n")
    assert_error(bd("--config", str(target), "init"), 3, "already exists")
    assert target.read_text() == "# mine\n"


def test_init_uses_xdg_by_default(tmp_path: Path) -> None:
    done = bd("init", "--name", "example", "--workspace", str(tmp_path), "--no-build")
    assert done.returncode == 0, done.stderr
    expected = Path(os.environ["XDG_CONFIG_HOME"]) / "bottle-dash" / "config.toml"
    assert done.stdout.strip() == str(expected)
    # ... and the starter it wrote is a valid config (plan needs no engine).
    plan = bd("plan", "example", "--json", env={"DOCKER_HOST": DEAD_DOCKER})
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["bottle"] == "bottle-example"
    assert json.loads(plan.stdout)["workspace"] == str(tmp_path)
    assert "next: bottle-dash attach example" in done.stderr


def test_init_names_the_first_agent_after_the_directory_it_runs_in(tmp_path: Path) -> None:
    start = tmp_path / "My Project"
    start.mkdir()
    full = {**os.environ, "DOCKER_HOST": DEAD_DOCKER}
    done = subprocess.run(
        [sys.executable, "-m", "bottle_dash", "init"],
        cwd=start,
        env=full,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = Path(done.stdout.strip()).read_text()
    assert "[agents.my-project]" in text and f'workspace = "{start}"' in text
    assert 'image = "bottle-dash-agent:latest"' in text
    assert "Traceback" not in done.stderr
    bad = bd("--config", str(tmp_path / "c.toml"), "init", "--name", "Bad Name")
    assert_error(bad, 2, "not an agent name")


def test_verbose_logs_the_host_commands_run(tmp_path: Path) -> None:
    # The commands' log needs -v (which loads logging); without it, no log line.
    env = {"DOCKER_HOST": DEAD_DOCKER, "BOTTLE_DASH_SMOLVM": "/bin/false"}
    config = ["--config", str(tmp_path / "none.toml")]
    loud = bd(*config, "-v", "ls", "--json", env=env)
    assert "bottle-dash: bottle_dash.run: run ['/bin/false'" in loud.stderr, loud.stderr
    quiet = bd(*config, "ls", "--json", env=env)
    assert "bottle_dash.run" not in quiet.stderr, quiet.stderr
    assert json.loads(loud.stdout) == json.loads(quiet.stdout) == []


def test_ls_without_tmux_on_path(tmp_path: Path) -> None:
    # No tmux binary: no panes to read, the statuses come from the status files alone.
    config = config_file(tmp_path, '[agents.web]\nbackend = "docker"\n')
    env = {**config, "DOCKER_HOST": DEAD_DOCKER, "PATH": str(tmp_path), "TMUX": ""}
    done = bd("ls", "--json", env=env)
    assert "Traceback" not in done.stderr
    assert [(r["name"], r["state"]) for r in json.loads(done.stdout)] == [("web", "unknown")]


def test_missing_config_is_reported_not_an_error(tmp_path: Path) -> None:
    done = bd(
        "--config", str(tmp_path / "none.toml"), "ls", "--json", env={"DOCKER_HOST": DEAD_DOCKER}
    )
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout) == []
    text = bd("--config", str(tmp_path / "none.toml"), "ls", env={"DOCKER_HOST": DEAD_DOCKER})
    assert "no config file at" in text.stderr and "bottle-dash init" in text.stderr


def test_exec_needs_a_command(tmp_path: Path) -> None:
    env = config_file(tmp_path, "[agents.web]\n")
    assert_error(bd("exec", "web", env=env), 2, "needs a command")


# --------------------------------------------------------------------------- docker down


@pytest.mark.parametrize(
    "command",
    [
        ["ls"],
        ["ls", "--json"],
        ["up", "web"],
        ["down", "web"],
        ["rm", "web"],
        ["attach", "web"],
        ["exec", "web", "--", "id"],
    ],
)
def test_docker_down(tmp_path: Path, command: list[str]) -> None:
    env = {**config_file(tmp_path, "[agents.web]\n"), "DOCKER_HOST": DEAD_DOCKER}
    done = bd(*command, env=env)
    assert_error(done, 4, "Docker engine not answering", "nonexistent.sock")


def test_docker_down_without_agents(tmp_path: Path) -> None:
    # No agents: Docker (the default backend) is still what ls needs to find bottles.
    env = {"BOTTLE_DASH_CONFIG": str(tmp_path / "none.toml"), "DOCKER_HOST": DEAD_DOCKER}
    done = bd("ls", env=env)
    assert_error(done, 4, "Docker engine not answering")
    assert "no bottles found" not in done.stdout


def test_docker_down_image_build() -> None:
    done = bd("image", "build", "--tag", "bottle-dash-never:x", env={"DOCKER_HOST": DEAD_DOCKER})
    assert "building bottle-dash-never:x" in done.stdout
    assert_error(done, 4, "Docker engine not answering")


def test_docker_down_ls_json_still_prints_what_it_knows(tmp_path: Path) -> None:
    env = {**config_file(tmp_path, "[agents.web]\n"), "DOCKER_HOST": DEAD_DOCKER}
    done = bd("ls", "--json", env=env)
    rows = json.loads(done.stdout)
    assert [(r["name"], r["state"], r["defined"]) for r in rows] == [("web", "unknown", True)]


def test_docker_down_doctor(tmp_path: Path) -> None:
    env = {**config_file(tmp_path, "[agents.web]\n"), "DOCKER_HOST": DEAD_DOCKER}
    done = bd("doctor", env=env)
    assert done.returncode == 4
    assert "Traceback" not in done.stderr + done.stdout
    assert "Docker engine not answering" in done.stdout
    assert "fix:" in done.stdout
    assert "bottle-dash: error: needed components are missing: docker" in done.stderr
    as_json = bd("doctor", "--json", env=env)
    assert as_json.returncode == 4
    checks = {c["component"]: c for c in json.loads(as_json.stdout)}
    assert checks["docker"]["ok"] is False and checks["docker"]["needed"] is True
    assert checks["docker"]["problems"][0]["fix"]
    assert {"config", "docker", "smolmachines", "tmux"} <= set(checks)


# --------------------------------------------------------------------------- in process


def test_dashboard_missing_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "bottle_dash.session", None)  # import fails
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bottle-dash: error: the dashboard is not available")
    assert "fix:" in err


def test_dashboard_gets_the_resolved_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    seen: dict[str, object] = {}

    def run_dashboard(**kwargs: object) -> int:
        seen.update(kwargs)
        return 0

    fake = types.ModuleType("bottle_dash.session")
    fake.run_dashboard = run_dashboard  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bottle_dash.session", fake)
    target = tmp_path / "c.toml"
    assert cli.main(["--config", str(target), "--no-tmux", "--theme", "x"]) == 0
    assert seen == {"config_path": target, "no_tmux": True, "theme": "x"}


def test_dashboard_not_started_on_bad_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import types

    fake = types.ModuleType("bottle_dash.session")
    fake.run_dashboard = lambda **kw: pytest.fail("dashboard started")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bottle_dash.session", fake)
    target = tmp_path / "c.toml"
    target.write_text("[x\n")
    assert cli.main(["--config", str(target)]) == 3
    assert "TOML syntax error" in capsys.readouterr().err


# --------------------------------------------------------------------------- images


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool | None, bool]]:
    """``AgentService.build_image``, recorded (image, offline, rebuild): the one way the
    CLI builds an image. The fake streams one progress line, as a build does."""
    from bottle_dash.service import AgentService

    calls: list[tuple[str, bool | None, bool]] = []

    def build_image(
        self: AgentService,
        image: str,
        progress: Any,
        *,
        offline: bool | None = None,
        rebuild: bool = False,
    ) -> str:
        calls.append((image, offline, rebuild))
        progress("step 1/1")
        return image

    monkeypatch.setattr(AgentService, "build_image", build_image)
    return calls


@pytest.mark.parametrize(
    ("options", "offline", "rebuild"),
    [
        ([], None, False),
        (["--offline"], True, False),
        (["--dockerfile"], False, False),
        (["--offline", "--rebuild"], True, True),
    ],
)
def test_image_build_goes_through_the_service(
    builds: list[tuple[str, bool | None, bool]],
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    offline: bool | None,
    rebuild: bool,
) -> None:
    assert cli.main(["image", "build", "--tag", "bottle-dash-agent:t", *options]) == 0
    assert builds == [("bottle-dash-agent:t", offline, rebuild)]
    out = capsys.readouterr()
    assert out.out == "building bottle-dash-agent:t\n  step 1/1\nbuilt bottle-dash-agent:t\n"
    assert out.err == ""


def test_init_builds_the_missing_image_through_the_service(
    builds: list[tuple[str, bool | None, bool]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from backends.images import agent

    def image_state(ref: str) -> agent.ImageState:
        return agent.ImageState(ref, bool(builds))  # there once built

    monkeypatch.setattr(agent, "image_state", image_state)
    target = tmp_path / "config.toml"
    argv = ["--config", str(target), "init", "--name", "a", "--workspace", str(tmp_path)]
    assert cli.main([*argv, "--build"]) == 0
    assert builds == [("bottle-dash-agent:latest", None, False)]
    out = capsys.readouterr()
    assert out.out == f"{target}\n  step 1/1\n"
    assert "built bottle-dash-agent:latest" in out.err
    assert "build the agent image with" not in out.err


def test_image_build_without_the_docker_backend_is_an_error_with_a_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "backends.docker.image", None)  # import fails
    assert cli.main(["image", "build"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("bottle-dash: error: the docker backend cannot be loaded")
    assert "\nfix: reinstall bottle-dash with its dependencies" in err


def test_panes_are_read_beside_the_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    # `ls` reads the tmux panes in a thread while it lists: the same panes, a tmux that
    # does not answer means none, and any other failure reaches the caller as before.
    from backends.base import CommandFailed
    from bottle_dash import tmux

    pane = tmux.PaneInfo(pane_id="%1", agent="web", title="t", pid=1, dead=False)
    answers: list[Any] = [{"web": pane}, CommandFailed("timed out"), PermissionError("tmux")]

    def list_panes() -> dict[str, tmux.PaneInfo]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    monkeypatch.setattr(tmux, "list_panes", list_panes)
    assert ls.panes_meanwhile()() == {"web": pane}
    assert ls.panes_meanwhile()() == {}
    with pytest.raises(PermissionError):
        ls.panes_meanwhile()()


def test_plan_says_a_root_agent_and_allow_root_false_refuses_it(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs a root-owned folder")
    ws = tmp_path / "ws"
    ws.mkdir()
    os.chown(ws, 0, 0)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[agents.web]\nworkspace = "{ws}"\n')
    env = {"DOCKER_HOST": DEAD_DOCKER, "BOTTLE_DASH_CONFIG": str(cfg)}
    shown = bd("plan", "web", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "WARNING" in shown.stdout and "the agent runs as root (uid 0)" in shown.stdout
    cfg.write_text(f'[defaults]\nallow_root = false\n[agents.web]\nworkspace = "{ws}"\n')
    refused = bd("plan", "web", env=env)
    assert refused.returncode != 0
    for part in (str(cfg), "agent web", "allow_root = false", "chown -R"):
        assert part in refused.stderr, (part, refused.stderr)


def test_plan_folds_long_values_and_json_keeps_them_whole(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[agents.web]\nprompt = "be brief"\n')
    env = {"DOCKER_HOST": DEAD_DOCKER, "BOTTLE_DASH_CONFIG": str(cfg)}
    shown = bd("plan", "web", env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) < 260, max(lines, key=len)
    # The status hooks' settings: summarised, with where to read them whole.
    assert any("JSON object with hooks" in line and "plan --json" in line for line in lines)
    assert any(line.startswith("claude_args[0]") for line in lines)
    whole = json.loads(bd("plan", "web", "--json", env=env).stdout)
    assert any(len(arg) > 1000 and '"hooks"' in arg for arg in whole["claude_args"])


def test_ls_says_every_bad_agent_and_lists_the_good_ones(tmp_path: Path) -> None:
    env = config_file(
        tmp_path,
        '[agents.good]\n[agents.bad1]\ncpus = "many"\n[agents.bad2]\nbakend = "docker"\n',
    )
    done = bd("ls", "--json", env={**env, "DOCKER_HOST": DEAD_DOCKER})
    assert done.returncode == 3, done.stderr
    assert "agent 'bad1'" in done.stderr and "agent 'bad2'" in done.stderr
    assert [row["name"] for row in json.loads(done.stdout)] == ["good"]
    plan = bd("plan", "good", env={**env, "DOCKER_HOST": DEAD_DOCKER})
    assert plan.returncode == 3  # other commands still stop on the file's errors, all said
    assert "agent 'bad1'" in plan.stderr and "agent 'bad2'" in plan.stderr


def test_plan_of_a_new_agent_leaves_no_state_behind(tmp_path: Path) -> None:
    env = config_file(tmp_path, '[agents.fresh]\nprompt = "hello"\n')
    state = Path(os.environ["XDG_STATE_HOME"]) / "bottle-dash" / "agents" / "fresh"
    done = bd("plan", "fresh", env={**env, "DOCKER_HOST": DEAD_DOCKER})
    assert done.returncode == 0, done.stderr
    assert "prompt.md" in done.stdout  # where it would be
    assert not state.exists()
