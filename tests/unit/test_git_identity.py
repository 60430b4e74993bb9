"""git_user and the operator's git identity, as they reach a bottle's environment; and
the plan's note on a workspace whose .git the agent cannot write (real git, real files)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from backends.base import AgentSpec
from backends.git_identity import identity_env, operator_identity, parse_git_user
from backends.plan import git_notes
from bottle_dash.config import ConfigError, parse_config

ADA = {
    "GIT_AUTHOR_NAME": "Ada Lovelace",
    "GIT_AUTHOR_EMAIL": "ada@example.org",
    "GIT_COMMITTER_NAME": "Ada Lovelace",
    "GIT_COMMITTER_EMAIL": "ada@example.org",
}


def test_parse_git_user() -> None:
    assert parse_git_user(" Ada Lovelace  <ada@example.org> ") == (
        "Ada Lovelace",
        "ada@example.org",
    )
    for bad in ("Ada", "<ada@example.org>", "Ada <ada>", "Ada <a b@x>", "Ada <a@x> extra"):
        with pytest.raises(ValueError, match="Name <email>"):
            parse_git_user(bad)


def test_identity_env_prefers_git_user_then_the_operator_and_keeps_the_agents_env() -> None:
    operator = lambda: ("Op Erator", "op@host.example")  # noqa: E731
    assert identity_env("Ada Lovelace <ada@example.org>", {}, operator) == ADA
    assert identity_env("", {}, operator)["GIT_AUTHOR_EMAIL"] == "op@host.example"
    assert identity_env("", {}, lambda: None) == {}
    mine = {"GIT_AUTHOR_NAME": "Mine"}
    assert "GIT_AUTHOR_NAME" not in identity_env("Ada <a@b.c>", mine, operator)
    assert identity_env("Ada <a@b.c>", ADA, operator) == {}


def test_operator_identity_reads_the_operators_git_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert operator_identity() is None  # conftest: git reads an empty global config
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Op Erator\n\temail = op@host.example\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    assert operator_identity() == ("Op Erator", "op@host.example")
    config.write_text("[user]\n\tname = Op Erator\n")
    assert operator_identity() is None  # half an identity is none


def test_git_user_key_is_validated_where_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    good = '[agents.a]\ngit_user = "Ada Lovelace <ada@example.org>"\n'
    assert parse_config(good, path).agents["a"].git_user == "Ada Lovelace <ada@example.org>"
    with pytest.raises(ConfigError) as caught:
        parse_config('[agents.a]\ngit_user = "Ada"\n', path)
    text = str(caught.value)
    assert "key 'git_user'" in text and "Name <email>" in text and "agent 'a'" in text


def test_a_plain_git_workspace_is_said_read_only_pointing_at_repo(tmp_path: Path) -> None:
    assert git_notes(str(tmp_path), "web") == []
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (note,) = git_notes(str(tmp_path), "web")
    assert "read-only in the bottle" in note and "[agents.web]" in note
    assert f'repo = "{tmp_path}"' in note


def test_the_plan_carries_the_identity(tmp_path: Path) -> None:
    from backends.plan import shared_plan

    spec = AgentSpec("idt", git_user="Ada Lovelace <ada@example.org>", env={"A": "1"})
    plan = shared_plan(spec, "docker")
    assert {k: plan.env[k] for k in ADA} == ADA and plan.env["A"] == "1"
    assert list(plan.env) == sorted(plan.env)
