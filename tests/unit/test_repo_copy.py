"""repo/base/branch config keys (located errors), and the parsing of what a copy prints
(hostile text) in ``backends.repo_copy``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from backends import repo_copy
from backends.base import BackendError, ProvisionError
from bottle_dash.config import ConfigError, parse_config

OID = "a" * 40


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    return path


def load(tmp_path: Path, text: str) -> object:
    return parse_config(text, tmp_path / "config.toml")


def error_of(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value


def test_repo_defaults_branch_and_resolves_relative(tmp_path: Path, repo: Path) -> None:
    config = parse_config('[agents.a]\nrepo = "repo"\n', tmp_path / "config.toml")
    spec = config.agents["a"]
    assert spec.repo == repo.resolve() and spec.branch == "bottle/a" and spec.base is None
    assert spec.workspace is None


def test_not_a_repository_names_file_agent_key_and_fix(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    err = error_of(tmp_path, '[agents.a]\nrepo = "plain"\n')
    text = str(err)
    assert err.key == "repo" and err.agent == "a" and "config.toml" in text
    assert "is not a git repository" in text and "git init" in text


def test_repo_and_workspace_together_refused(tmp_path: Path, repo: Path) -> None:
    err = error_of(tmp_path, f'[agents.a]\nworkspace = "{tmp_path}"\nrepo = "{repo}"\n')
    assert err.key == "repo" and "both set" in str(err)


def test_a_branch_of_another_agent_refused(tmp_path: Path, repo: Path) -> None:
    text = f'[agents.a]\nrepo = "{repo}"\nbranch = "x"\n[agents.b]\nrepo = "{repo}"\nbranch = "x"\n'
    err = error_of(tmp_path, text)
    assert (err.agent, err.key) == ("b", "branch") and "already agent a's" in str(err)
    assert err.line == 6


@pytest.mark.parametrize("bad", ["-x", "a..b", "a b", "x.lock", "a~1", "@{u}", ""])
def test_bad_branch_names_refused(tmp_path: Path, repo: Path, bad: str) -> None:
    err = error_of(tmp_path, f'[agents.a]\nrepo = "{repo}"\nbranch = "{bad}"\n')
    assert err.key == "branch"


def test_base_without_repo_refused(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[agents.a]\nbase = "main"\n')
    assert err.key == "base" and "repo" in str(err)


def test_unknown_base_and_empty_repo_at_plan_time(repo: Path) -> None:
    with pytest.raises(ProvisionError) as caught:
        repo_copy.resolve_base(repo, None, agent="a", source="/c.toml")
    assert "first commit" in str(caught.value) and "/c.toml" in str(caught.value)
    ident = ["-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run(["git", *ident, "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x"])
    assert repo_copy.is_oid(repo_copy.resolve_base(repo, None, agent="a"))
    with pytest.raises(ProvisionError) as caught:
        repo_copy.resolve_base(repo, "nope", agent="a", source="/c.toml")
    assert "base of agent a" in str(caught.value)


def test_summary_parse_is_bounded_and_checks_ids() -> None:
    out = (
        "fp x@1\ndirty 1\nbranch bottle/a\nhead not-an-id\nahead 3\n"
        "stat  2 files changed, 5 insertions(+), 1 deletion(-)\n"
    )
    s = repo_copy.parse_summary(out, branch="bottle/a", base="main", behind=2)
    assert (s.ahead, s.behind, s.files_changed, s.insertions, s.deletions, s.dirty) == (
        3, 2, 2, 5, 1, True
    )  # fmt: skip
    assert s.head == ""  # a forged id never reaches host git
    # Unchanged fingerprint: the last counts stand, dirty and behind are fresh.
    again = repo_copy.parse_summary("fp x@1\ndirty 0\n", branch="b", base="m", behind=0, last=s)
    assert (again.ahead, again.dirty, again.behind) == (3, False, 0)
    huge = repo_copy.parse_summary("ahead 99999999999999\n", branch="b", base="m", behind=0)
    assert huge.ahead == 10**9


def test_lost_work_only_hands_full_ids_to_host_git(repo: Path) -> None:
    ident = ["-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run(["git", *ident, "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x"])
    have = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    out = f"head {have} bottle/a\nhead {OID} other\nhead --upload-pack=x evil\ndirty  M f\n"
    lost = repo_copy.lost_work(out, repo)
    assert any("other" in line and "not fetched" in line for line in lost)
    assert not any("bottle/a" in line for line in lost)
    assert any("evil" in line and "unreadable" in line for line in lost)
    assert any("uncommitted" in line for line in lost)


def test_ext_url_quotes_and_refuses_control_characters() -> None:
    assert repo_copy.ext_url(["docker", "exec", "-i", "a b%"]) == "ext::docker exec -i a% b%%"
    with pytest.raises(BackendError):
        repo_copy.ext_url(["x\ny"])
    argv = repo_copy.fetch_argv(Path("/r"), ["docker", "exec"], "bottle/a")
    assert (
        "transfer.fsckObjects=true" in argv
        and argv[-1] == "refs/heads/bottle/a:refs/heads/bottle/a"
    )


def test_setup_and_copy_need_repo_and_paths_inside(tmp_path: Path, repo: Path) -> None:
    assert error_of(tmp_path, '[agents.a]\nsetup = ["npm ci"]\n').key == "setup"
    assert error_of(tmp_path, '[agents.a]\ncopy = [".env"]\n').key == "copy"
    for bad in ("../x", "/etc/passwd", ".git/config"):
        err = error_of(tmp_path, f'[agents.a]\nrepo = "{repo}"\ncopy = ["{bad}"]\n')
        assert err.key == "copy" and "inside the repository" in str(err), bad
    err = error_of(tmp_path, f'[agents.a]\nrepo = "{repo}"\ncopy = [".env"]\n')
    assert "is not a file" in str(err)
    (repo / ".env").write_text("X=1\n")
    config = parse_config(
        f'[agents.a]\nrepo = "{repo}"\ncopy = [".env"]\nsetup = ["npm ci"]\n',
        tmp_path / "config.toml",
    )
    assert config.agents["a"].copy == (".env",) and config.agents["a"].setup == ("npm ci",)


def test_copy_files_are_excluded_in_the_clone(tmp_path: Path, repo: Path) -> None:
    (repo / ".env").write_text("X=1\n")
    clone = tmp_path / "clone"
    (clone / ".git" / "info").mkdir(parents=True)
    repo_copy.copy_files(repo, clone, [".env"], agent="a")
    assert (clone / ".env").read_text() == "X=1\n"
    assert "/.env" in (clone / ".git" / "info" / "exclude").read_text().splitlines()


def test_plan_of_a_repo_agent_runs_as_its_owner_and_names_the_copy(repo: Path) -> None:
    import os

    from backends.base import AgentSpec, LaunchError
    from backends.plan import shared_plan

    ident = ["-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run(["git", *ident, "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x"])
    spec = AgentSpec(name="a", repo=repo, branch="bottle/a", copy=(), setup=("true",))
    plan = shared_plan(spec, "docker")
    assert plan.workspace is None and plan.uid == os.stat(repo).st_uid
    assert plan.extra["repo"]["branch"] == "bottle/a"
    assert plan.extra["repo"]["volume"] == "bottle-a-copy"
    assert plan.extra["repo"]["setup"] == ["true"]
    assert repo_copy.is_oid(plan.extra["repo"]["base_oid"])
    if os.stat(repo).st_uid == 0:  # a root-owned repository: allow_root = false refuses
        with pytest.raises(LaunchError):
            shared_plan(spec._replace(allow_root=False), "docker")
