"""The config file: every error names the file, line, agent, key and what is valid."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from backends.base import AgentSpec
from bottle_dash import config
from bottle_dash.config import ConfigError, append_agent, load_config, validate_agent
from tests.unit.config_files import error_of, write

# --------------------------------------------------------------------------- locations


def test_the_writing_half_is_the_same_through_the_package() -> None:
    # edit and starter load on first use (ls only reads the config): the package's names
    # are theirs, every name it offers resolves, and a name it does not have is still an
    # AttributeError.
    from bottle_dash.config import edit, starter

    assert config.append_agent is edit.append_agent and config.toml_value is edit.toml_value
    assert config.render_agent is edit.render_agent and config.allow_host is edit.allow_host
    assert config.write_starter is starter.write_starter
    assert config.starter_config is starter.starter_config
    assert config.first_agent_values is starter.first_agent_values
    assert {"load_config", "ConfigError", "append_agent", "starter_text"} <= set(config.__all__)
    for name in config.__all__:
        assert getattr(config, name) is not None, name
    with pytest.raises(AttributeError) as info:
        config.no_such_name  # noqa: B018
    assert str(info.value) == "module 'bottle_dash.config' has no attribute 'no_such_name'"


def test_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = Path(os.environ["XDG_CONFIG_HOME"])
    assert config.resolve_config_path() == xdg / "bottle-dash" / "config.toml"
    monkeypatch.setenv("BOTTLE_DASH_CONFIG", str(tmp_path / "env.toml"))
    assert config.resolve_config_path() == tmp_path / "env.toml"
    assert config.resolve_config_path(tmp_path / "flag.toml") == tmp_path / "flag.toml"


def test_default_path_without_xdg_is_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.resolve_config_path() == tmp_path / ".config" / "bottle-dash" / "config.toml"


def test_missing_file_is_no_agents_and_says_where(tmp_path: Path) -> None:
    loaded = load_config(tmp_path / "nowhere.toml")
    assert loaded.exists is False
    assert loaded.agents == {}
    assert loaded.path == tmp_path / "nowhere.toml"


# --------------------------------------------------------------------------- errors


def test_error_text_is_file_line_agent_key_message_then_the_fix(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[agents.web]\nbackend = "dokcer"\n')
    assert str(err) == (
        f"config {tmp_path / 'config.toml'}, line 2, agent 'web', key 'backend': unknown "
        "backend 'dokcer' (did you mean 'docker'?); valid backends: docker, smolmachines, "
        "kubernetes\n  fix: set backend to one of: 'docker', 'smolmachines', 'kubernetes'"
    )
    assert str(ConfigError("bad", path=None)) == "config: bad"  # no file, no fix: no line
    located = ConfigError("bad", path=Path("/c.toml"), key="k", fix="do x")
    assert str(located) == "config /c.toml, key 'k': bad\n  fix: do x"


def test_config_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == (
        f"config {tmp_path}: is a directory, not a file\n  fix: point --config at a TOML file"
    )


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xff\xfe[agents.web]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.path == path and err.message.startswith("cannot be read: 'utf-8' codec")
    assert err.fix == "check the file's permissions and encoding"


@pytest.mark.parametrize(
    ("text", "message", "fix"),
    [
        ("defaults = 3\n", "must be a table, not an integer", "write it as a [defaults] table"),
        (
            "agents = 3\n",
            "must be a table of agents, not an integer",
            "write one [agents.<name>] table per agent",
        ),
        ("[agents]\nweb = 3\n", "must be a table, not an integer", "an [agents.web] table"),
        ("[agent.web]\n", "valid top-level tables: defaults, agents", "rename it to 'agents'"),
    ],
)
def test_tables_that_are_not_tables(tmp_path: Path, text: str, message: str, fix: str) -> None:
    err = error_of(tmp_path, text)
    assert message in err.message
    assert err.fix and fix in err.fix


def test_syntax_error_has_line(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[defaults]\nmemory = "2g"\n\n[agents.web\nimage = "x"\n')
    assert err.line == 4
    assert "line 4" in str(err)
    assert "TOML syntax error" in err.message
    try:
        tomllib.loads('[defaults]\nmemory = "2g"\n\n[agents.web\nimage = "x"\n')
    except tomllib.TOMLDecodeError as exc:
        raw = str(exc)
    assert raw.endswith(" (at line 4, column 12)")  # tomllib's own position, replaced:
    assert err.message == "TOML syntax error: " + raw.replace("at line 4, column", "column")
    assert err.fix


def test_syntax_error_unquoted_string(tmp_path: Path) -> None:
    err = error_of(tmp_path, "[agents.web]\nimage = bottle\n")
    assert err.line == 2


def test_unknown_key_suggests_nearest(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[agents.web]\nimage = "x"\nbakend = "docker"\n')
    assert (err.agent, err.key, err.line) == ("web", "bakend", 3)
    assert "did you mean 'backend'" in err.message
    assert "backend, image, workspace" in err.message  # the valid keys
    assert "agent 'web'" in str(err) and "key 'bakend'" in str(err)
    assert err.message.startswith("unknown key 'bakend'; did you mean 'backend'? valid keys: ")
    assert err.fix == "rename it to 'backend'"


def test_unknown_key_with_nothing_close_lists_the_valid_ones(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[agents.web]\nzzzz = "x"\n')
    assert err.message.startswith("unknown key 'zzzz'; valid keys: backend, image, ")
    assert err.fix and err.fix.startswith("use one of: backend, image, ")


def test_unknown_key_in_defaults(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[defaults]\nmemroy = "2g"\n')
    assert (err.agent, err.key, err.line) == (None, "memroy", 2)
    assert "did you mean 'memory'" in err.message


def test_unknown_top_level_table(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[agent.web]\nimage = "x"\n')
    assert err.key == "agent"
    assert "did you mean 'agents'" in err.message
    assert err.line == 1


@pytest.mark.parametrize(
    ("line", "key", "expect"),
    [
        ("image = 3", "image", "must be a string, not an integer"),
        ('cpus = "2"', "cpus", "must be a number, not a string"),
        ("cpus = 0", "cpus", "greater than 0"),
        ("cpus = -1.5", "cpus", "greater than 0"),
        ("pids = 1.5", "pids", "must be an integer, not a number"),
        ("pids = 0", "pids", "greater than 0"),
        ("pids = true", "pids", "must be an integer, not a boolean"),
        ('memory = "lots"', "memory", "not a memory size"),
        ("memory = 0", "memory", "not a memory size"),
        ('skills = "a"', "skills", "must be a list of strings, not a string"),
        ("claude_args = [1]", "claude_args", "a list holding an integer"),
        ('env = "A=1"', "env", "must be a table of strings"),
        ("env = { A = 1 }", "env", "value of A must be a string"),
        ('env = { "A-B" = "1" }', "env", "not a valid environment variable name"),
        ("prompt = 1", "prompt", "must be a string"),
        ('workspace = ""', "workspace", "is empty"),
        ('prompt_file = " "', "prompt_file", "is empty"),
        ('image = ""', "image", "is empty"),
    ],
)
def test_wrong_types(tmp_path: Path, line: str, key: str, expect: str) -> None:
    err = error_of(tmp_path, f"[agents.web]\n{line}\n")
    assert (err.agent, err.key, err.line) == ("web", key, 2)
    assert expect in err.message
    assert err.fix  # what would be valid


def test_wrong_type_says_what_it_must_be_and_what_it_is(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[agents.web]\ncpus = "x"\n')
    assert err.message == "must be a number, not a string"


def test_wrong_type_from_defaults_is_located_in_defaults(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[defaults]\ncpus = "x"\n\n[agents.web]\nimage = "i"\n')
    assert (err.agent, err.key, err.line) == ("web", "cpus", 2)


def test_unknown_backend_lists_valid(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[agents.web]\nbackend = "dokcer"\n')
    assert (err.agent, err.key, err.line) == ("web", "backend", 2)
    assert "unknown backend 'dokcer'" in err.message
    assert "docker, smolmachines" in err.message
    assert "did you mean 'docker'" in err.message


def test_unknown_backend_with_nothing_close(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[agents.web]\nbackend = "zzzz"\n')
    assert err.message == (
        "unknown backend 'zzzz'; valid backends: docker, smolmachines, kubernetes"
    )


@pytest.mark.parametrize(
    "name", ["Web", "web_1", "-web", "a" * 41, "web.app", "wéb", "team/web", "a/b", "web/"]
)
def test_name_not_a_slug(tmp_path: Path, name: str) -> None:
    err = error_of(tmp_path, f'[agents."{name}"]\nimage = "x"\n')
    assert (err.agent, err.line) == (name, 1)
    assert "not a valid agent name" in err.message
    assert err.fix and "at most 40" in err.fix and "lower-case" in err.fix


@pytest.mark.parametrize(
    ("header", "suggested"),
    [
        ("[agents.'My App!']", "my-app"),
        ('[agents."__"]', "agent"),
        ("[ agents . 'A' ]", "a"),
        ('[agents.""]', "agent"),
    ],
)
def test_name_not_a_slug_is_located_and_a_slug_suggested(
    tmp_path: Path, header: str, suggested: str
) -> None:
    err = error_of(tmp_path, f"# agents\n{header}\n")
    assert err.line == 2
    assert err.fix and err.fix.endswith(f"(e.g. {suggested!r})")


def test_top_level_keys_are_located(tmp_path: Path) -> None:
    assert error_of(tmp_path, "# c\ndefaults = 3\n").line == 2
    assert error_of(tmp_path, '[agents.x]\nimage = "i"\n[agent.web]\n').line == 3


def test_longest_slug_is_fine(tmp_path: Path) -> None:
    name = "a" * 40
    assert list(load_config(write(tmp_path, f"[agents.{name}]\n")).agents) == [name]


def test_missing_workspace(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[agents.web]\nworkspace = "src/none"\n')
    assert (err.agent, err.key, err.line) == ("web", "workspace", 2)
    missing = tmp_path / "src" / "none"
    assert err.message == f"workspace {str(missing)!r} does not exist"
    assert err.fix == f"create it (mkdir -p {missing}) or point workspace at an existing directory"


def test_workspace_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    err = error_of(tmp_path, '[agents.web]\nworkspace = "f"\n')
    assert "is not a directory" in err.message


def test_prompt_and_prompt_file_both_set(tmp_path: Path) -> None:
    (tmp_path / "p.md").write_text("hi")
    err = error_of(tmp_path, '[agents.web]\nprompt = "a"\nprompt_file = "p.md"\n')
    assert (err.agent, err.key, err.line) == ("web", "prompt_file", 3)
    assert "both set" in err.message
    assert err.fix and "keep one of them" in err.fix


def test_prompt_and_prompt_file_both_in_defaults(tmp_path: Path) -> None:
    (tmp_path / "p.md").write_text("hi")
    err = error_of(tmp_path, '[defaults]\nprompt = "a"\nprompt_file = "p.md"\n')
    assert (err.key, err.line) == ("prompt_file", 3)


def test_missing_prompt_file(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[agents.web]\nprompt_file = "prompts/web.md"\n')
    assert (err.agent, err.key, err.line) == ("web", "prompt_file", 2)
    assert err.message == f"prompt file {str(tmp_path / 'prompts' / 'web.md')!r} does not exist"
    assert err.fix and "relative paths start at the config file's folder" in err.fix


def test_prompt_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "p.md").write_bytes(b"\xff\xfe")
    err = error_of(tmp_path, '[agents.web]\nprompt_file = "p.md"\n')
    assert (err.agent, err.key, err.line) == ("web", "prompt_file", 2)
    assert err.message.startswith(f"prompt file {str(tmp_path / 'p.md')!r} cannot be read: ")
    assert err.fix == "make it a readable UTF-8 text file"


def test_bad_env_in_defaults_is_located_in_defaults(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[defaults]\nenv = { "A-B" = "1" }\n[agents.web]\n')
    assert (err.agent, err.key, err.line) == ("web", "env", 2)


def test_agents_not_a_table(tmp_path: Path) -> None:
    err = error_of(tmp_path, 'agents = "web"\n')
    assert err.key == "agents" and "table" in err.message


# --------------------------------------------------------------------------- values


def test_full_agent_and_defaults_merge(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "web.md").write_text("Be brief.\n", encoding="utf-8")
    path = write(
        tmp_path,
        """
# a comment
[defaults]
backend = "docker"
image = "base:1"
memory = "512m"
env = { TZ = "UTC", SHARED = "default" }
claude_args = ["--model", "opus"]

[agents.web]
workspace = "ws"
prompt_file = "prompts/web.md"
skills = ["skills/review", "/abs/skill"]
env = { SHARED = "mine", NODE_ENV = "dev" }
cpus = 1.5
pids = 256

[agents.api]
image = "api:2"
memory = 1073741824
claude_args = []
""",
    )
    loaded = load_config(path)
    assert loaded.exists and list(loaded.agents) == ["web", "api"]
    web, api = loaded.agents["web"], loaded.agents["api"]
    assert web == AgentSpec(
        name="web",
        backend="docker",
        image="base:1",
        workspace=tmp_path / "ws",
        prompt="Be brief.\n",
        skills=(tmp_path / "skills" / "review", Path("/abs/skill")),
        env={"TZ": "UTC", "SHARED": "mine", "NODE_ENV": "dev"},
        claude_args=("--model", "opus"),
        cpus=1.5,
        memory=512 * 1024**2,
        pids=256,
        source=path,
    )
    assert api.image == "api:2"
    assert api.memory == 1024**3
    assert api.claude_args == ()
    assert api.env == {"TZ": "UTC", "SHARED": "default"}
    assert api.workspace is None and api.prompt == ""
    assert loaded.defaults["memory"] == "512m"


def test_agent_prompt_file_replaces_default_prompt(tmp_path: Path) -> None:
    (tmp_path / "p.md").write_text("from file")
    path = write(tmp_path, '[defaults]\nprompt = "default"\n[agents.a]\nprompt_file = "p.md"\n')
    assert load_config(path).agents["a"].prompt == "from file"


def test_agent_prompt_replaces_default_prompt_file_and_others_inherit_it(tmp_path: Path) -> None:
    (tmp_path / "p.md").write_text("from file")
    text = '[defaults]\nprompt_file = "p.md"\n[agents.a]\nprompt = "own"\n[agents.b]\n'
    agents = load_config(write(tmp_path, text)).agents
    assert (agents["a"].prompt, agents["b"].prompt) == ("own", "from file")


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "proj").mkdir()
    path = write(tmp_path, '[agents.a]\nworkspace = "~/proj"\n')
    assert load_config(path).agents["a"].workspace == tmp_path / "proj"


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512m", 512 * 1024**2),
        ("2g", 2 * 1024**3),
        ("2G", 2 * 1024**3),
        ("1.5g", int(1.5 * 1024**3)),
        ("64k", 64 * 1024),
        ("2GiB", 2 * 1024**3),
        ("1024", 1024),
        ("1t", 1024**4),
        ("2TiB", 2 * 1024**4),
        (4096, 4096),
    ],
)
def test_memory_parsing(value: object, size: int) -> None:
    assert config.parse_memory(value) == size


@pytest.mark.parametrize("value", ["", "2x", "-1g", "g", True, 1.5, "1 2g"])
def test_memory_rejects(value: object) -> None:
    with pytest.raises(ValueError, match=r"^not a size: "):
        config.parse_memory(value)


@pytest.mark.parametrize("value", [0, -5, "0g"])
def test_memory_must_be_positive(value: object) -> None:
    with pytest.raises(ValueError, match=r"^must be greater than 0: "):
        config.parse_memory(value)


def test_smallest_limits_are_fine(tmp_path: Path) -> None:
    spec = load_config(write(tmp_path, "[agents.web]\npids = 1\nmemory = 1\n")).agents["web"]
    assert (spec.pids, spec.memory) == (1, 1)


@pytest.mark.parametrize(
    ("line", "fix"),
    [
        ("image = 1", 'quote it: image = "..."'),
        ("backend = 1", 'quote it: backend = "..."'),
        ('skills = "a"', 'e.g. skills = ["one", "two"]'),
        ("env = { A = 1 }", 'quote it: A = "1"'),
    ],
)
def test_type_errors_show_the_fix_for_that_key(tmp_path: Path, line: str, fix: str) -> None:
    assert error_of(tmp_path, f"[agents.web]\n{line}\n").fix == fix


def test_starter_config_is_valid_with_one_docker_agent(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, config.starter_text()))
    assert list(loaded.agents) == ["example"]
    assert loaded.agents["example"].backend == "docker"
    assert config.starter_text().count("\n#") > 10  # commented


def test_init_writes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "dir" / "config.toml"
    assert config.write_starter(target) == target
    assert target.read_text() == config.starter_text()
    # 0600 in a 0700 folder whatever the umask: the config holds `env` (secrets).
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.parent.stat().st_mode & 0o777 == 0o700
    target.write_text("# mine\n")
    with pytest.raises(ConfigError) as info:
        config.write_starter(target)
    assert "already exists" in str(info.value) and str(target) in str(info.value)
    assert info.value.fix == "edit it, or move it away and run bottle-dash init again"
    assert target.read_text() == "# mine\n"


# --------------------------------------------------------------------------- the form


def test_validate_agent_uses_defaults_and_config_folder(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    spec = validate_agent(
        "new-one",
        {"workspace": "ws", "env": {"B": "2"}},
        {"env": {"A": "1"}, "memory": "1g"},
        tmp_path / "config.toml",
    )
    assert spec.workspace == tmp_path / "ws"
    assert spec.env == {"A": "1", "B": "2"}
    assert spec.memory == 1024**3


def test_validate_agent_errors_name_agent_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        validate_agent("x", {"pids": "many"}, {}, tmp_path / "c.toml")
    assert (info.value.agent, info.value.key) == ("x", "pids")
    with pytest.raises(ConfigError) as info:
        validate_agent("Bad Name", {}, {}, tmp_path / "c.toml")
    assert "not a valid agent name" in str(info.value)


def test_validate_agent_over_defaults_holding_both_prompts_takes_prompt(tmp_path: Path) -> None:
    # A loaded file cannot hold both in [defaults]; the form's defaults are passed as given:
    # prompt wins, and the prompt_file beside it is not read.
    defaults = {"prompt": "the text", "prompt_file": "missing.md"}
    assert validate_agent("x", {}, defaults, tmp_path / "c.toml").prompt == "the text"


# --------------------------------------------------------------------------- append


EXISTING = """\
# my agents -- keep this comment
[defaults]
memory = "1g"   # trailing comment

[agents.web]
image = "web:1"
"""


def test_append_keeps_existing_text(tmp_path: Path) -> None:
    path = write(tmp_path, EXISTING)
    spec = append_agent(path, "api", {"image": "api:1", "pids": 64})
    text = path.read_text()
    assert text.startswith(EXISTING)
    assert "[agents.api]" in text[len(EXISTING) :]
    assert spec.name == "api" and spec.memory == 1024**3  # defaults apply
    loaded = load_config(path)
    assert list(loaded.agents) == ["web", "api"]


def test_append_escapes_strings(tmp_path: Path) -> None:
    path = write(tmp_path, EXISTING.rstrip("\n"))  # no final newline
    tricky = 'say "hi" \\ $(rm -rf /)\nline2\ttab \x01 héllo 🙂'
    append_agent(
        path,
        "tricky",
        {
            "prompt": tricky,
            "claude_args": ["--x", 'a "b"'],
            "env": {"K": "v'\"", "L": "é"},
            "cpus": 0.5,
        },
    )
    data = tomllib.loads(path.read_text())
    table = data["agents"]["tricky"]
    assert table["prompt"] == tricky
    assert table["claude_args"] == ["--x", 'a "b"']
    assert table["env"] == {"K": "v'\"", "L": "é"}
    assert load_config(path).agents["tricky"].prompt == tricky


def test_append_refuses_duplicates(tmp_path: Path) -> None:
    path = write(tmp_path, EXISTING)
    with pytest.raises(ConfigError) as info:
        append_agent(path, "web", {"image": "other"})
    assert "already defined" in str(info.value) and info.value.line == 5
    assert info.value.fix == "choose another name, or edit the existing table"
    assert path.read_text() == EXISTING


def test_append_refuses_invalid_agent(tmp_path: Path) -> None:
    path = write(tmp_path, EXISTING)
    with pytest.raises(ConfigError) as info:
        append_agent(path, "api", {"backend": "nope"})
    assert info.value.key == "backend"
    assert path.read_text() == EXISTING


def test_append_refuses_when_result_would_not_parse(tmp_path: Path) -> None:
    # An inline agents table cannot be extended by a new [agents.x] header.
    text = 'agents = { web = { image = "w" } }\n'
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        append_agent(path, "api", {"image": "a"})
    assert "cannot append" in info.value.message
    assert info.value.fix == "add the agent by editing the file by hand"
    assert path.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temp file left


@pytest.mark.parametrize(
    ("old", "sep"), [("", ""), ("# c\n", "\n"), ("# c", "\n\n"), ("# c\n\n", "")]
)
def test_append_leaves_one_blank_line_before_the_table(tmp_path: Path, old: str, sep: str) -> None:
    path = write(tmp_path, old)
    append_agent(path, "api", {"image": "a", "pids": 8})
    assert path.read_text() == old + sep + '[agents.api]\nimage = "a"\npids = 8\n'


def test_append_to_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="cannot be read: "):
        append_agent(path, "api", {})
    assert path.read_bytes() == b"\xff\xfe"


def test_toml_values() -> None:
    assert [config.toml_value(v) for v in (True, False, 3, 0.5, [], {})] == [
        "true", "false", "3", "0.5", "[]", "{}",
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"^cannot write nan in TOML config$"):
        config.toml_value(float("nan"))
    with pytest.raises(ValueError, match="^cannot write a object in TOML config$"):
        config.toml_value(object())


def test_append_creates_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "config.toml"
    append_agent(path, "first", {"image": "i"})
    assert list(load_config(path).agents) == ["first"]
    # private: the config holds `env` (secrets)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_append_that_cannot_replace_the_file_leaves_it_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, EXISTING)

    def refuse(src: object, dst: object) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="read-only"):
        append_agent(path, "api", {})
    assert path.read_text() == EXISTING
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def test_toml_strings_escape_quotes_backslashes_and_control_characters() -> None:
    text = 'a"b\\c\nd\te\rf\x01g\x7fh\x1f i é'
    literal = config.toml_value(text)
    assert literal == '"a\\"b\\\\c\\nd\\te\\rf\\u0001g\\u007fh\\u001f i é"'
    assert tomllib.loads(f"k = {literal}")["k"] == text
    assert config.toml_value({"A B": "x", "c_d-1": 2}) == '{ "A B" = "x", c_d-1 = 2 }'


def test_every_agent_key_has_one_validator_and_the_first_wrong_key_is_reported(
    tmp_path: Path,
) -> None:
    # AGENT_KEYS (the order messages and written tables use) and AGENT_SCHEMA (the order
    # keys are checked) name the same keys; of two wrong keys, the one checked first is
    # reported, whatever order the file writes them in.
    from bottle_dash.config.schema import AGENT_SCHEMA

    assert sorted(config.AGENT_KEYS) == sorted(AGENT_SCHEMA)
    assert len(set(config.AGENT_KEYS)) == len(config.AGENT_KEYS)
    for first, second in [("claude_args", "env"), ("skip_permissions", "egress_allow")]:
        text = f"[agents.web]\n{second} = 1\n{first} = 1\n"
        assert error_of(tmp_path, text).key == first


def test_wrong_type_names_lists_and_tables(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[agents.web]\ncpus = []\n").message.endswith("not a list")
    assert error_of(tmp_path, "[agents.web]\ncpus = {}\n").message.endswith("not a table")


def test_append_keeps_file_mode(tmp_path: Path) -> None:
    path = write(tmp_path, EXISTING)
    path.chmod(0o600)
    append_agent(path, "api", {})
    assert path.stat().st_mode & 0o777 == 0o600


def test_dashboard_notify_command(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text('[dashboard]\nnotify_command = ["notify-send", "-u", "critical"]\n')
    assert load_config(file).notify_command == ("notify-send", "-u", "critical")
    file.write_text("[agents.a]\n")
    assert load_config(file).notify_command == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[dashboard]\nnotify_command = "notify-send hi"\n', "non-empty list of strings"),
        ("[dashboard]\nnotify_command = []\n", "non-empty list of strings"),
        ('[dashboard]\nnotify_command = ["a", 1]\n', "non-empty list of strings"),
        ('[dashboard]\nnotify_comand = ["a"]\n', "did you mean 'notify_command'"),
        ('dashboard = "x"\n', "must be a table"),
    ],
)
def test_dashboard_notify_command_errors_are_located(tmp_path: Path, text: str, says: str) -> None:
    file = tmp_path / "config.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(file)
    assert says in str(err.value) and str(file) in str(err.value)


NOTIFY_FIX = (
    'e.g. notify_command = ["notify-send", "bottle-dash"] (run without a shell; '
    "the agent's name and the reason are appended)"
)


@pytest.mark.parametrize(
    ("text", "line", "key", "message", "fix"),
    [
        (
            '# the dashboard\n[dashboard]\nnotify_command = "notify-send hi"\n',
            3,
            "notify_command",
            "must be a non-empty list of strings (a command and its arguments), not a string",
            NOTIFY_FIX,
        ),
        (
            "[dashboard]\n\nnotify_command = []\n",
            3,
            "notify_command",
            "must be a non-empty list of strings (a command and its arguments), not an empty list",
            NOTIFY_FIX,
        ),
        (
            '[dashboard]\nnotify_command = ["notify-send", ""]\n',
            2,
            "notify_command",
            "must be a non-empty list of strings (a command and its arguments), not a list "
            "holding an empty string",
            NOTIFY_FIX,
        ),
        (
            '[dashboard]\nnotify_command = ["a", 1]\n',
            2,
            "notify_command",
            "must be a non-empty list of strings (a command and its arguments), not a list "
            "holding an integer",
            NOTIFY_FIX,
        ),
        (
            '[agents.a]\n[dashboard]\nnotify_comand = ["a"]\n',
            3,
            "notify_comand",
            "unknown key 'notify_comand'; did you mean 'notify_command'? valid keys: "
            "notify_command",
            "rename it to 'notify_command'",
        ),
        (
            '\ndashboard = "x"\n',
            2,
            "dashboard",
            "must be a table, not a string",
            "write it as a [dashboard] table",
        ),
    ],
)
def test_dashboard_errors_name_the_file_line_key_and_fix(
    tmp_path: Path, text: str, line: int, key: str, message: str, fix: str
) -> None:
    # What the operator reads, word for word: where (file, line, key), what is wrong, and
    # the fix on its own line.
    err = error_of(tmp_path, text)
    assert (err.line, err.agent, err.key, err.message, err.fix) == (line, None, key, message, fix)
    path = tmp_path / "config.toml"
    assert str(err) == f"config {path}, line {line}, key {key!r}: {message}\n  fix: {fix}"


@pytest.mark.parametrize(
    ("text", "key", "message", "fix"),
    [
        (
            '[agents.a]\nimage = "Bad Image"\n',
            "image",
            None,
            'set an image reference, e.g. image = "bottle-dash-agent:latest"',
        ),
        (
            '[agents.a]\nbackend = "smolmachines"\nimage = "Bad Image"\n',
            "image",
            None,
            "set an image reference or a path (/…, ./…, ….tar, ….smolmachine), "
            'e.g. image = "bottle-dash-agent:latest"',
        ),
        (
            '[agents.a]\nsealed = "yes"\n',
            "sealed",
            "must be true or false, not a string",
            "sealed = true",
        ),
        (
            "[agents.a]\nskip_permissions = 1\n",
            "skip_permissions",
            "must be true or false, not an integer",
            "skip_permissions = true",
        ),
        (
            '[agents.a]\nupstream_ca = "missing.pem"\n',
            "upstream_ca",
            "upstream CA file {ca!r} does not exist",
            "point it at a PEM file of CA certificates, or remove the key",
        ),
    ],
)
def test_agent_errors_state_the_key_and_the_fix(
    tmp_path: Path, text: str, key: str, message: str | None, fix: str
) -> None:
    err = error_of(tmp_path, text)
    assert (err.agent, err.key) == ("a", key)
    if message is not None:
        assert err.message == message.format(ca=str(tmp_path / "missing.pem"))
    assert err.fix == fix
