"""Every agent on its own branch, for real: a real host repository, real bottles from the
offline test image, real git on both sides.

What is checked: two agents on one repository each get their own copy and commit at once
without seeing each other; the copy survives down/up; from inside a bottle every way to
touch the host repository fails (push by path, writes under its .git by path or symlink,
config and hooks); a copy armed with programs in its config and attributes (fsmonitor,
filter, textconv, diff driver) never runs them on the host through ls, fetch or rm's
check; rm --volumes refuses to lose unfetched commits or uncommitted changes; fetch,
merge and pr (against a local bare "remote" and a stub gh that records its argv).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.fakes.cli_run import bd
from tests.integration.cli_helpers import docker_labelled, write_config
from tests.support import agent_name

pytestmark = pytest.mark.docker

GIT_ID = ["-c", "user.name=op", "-c", "user.email=op@example.invalid"]


def git(repo: Path, *args: str) -> str:
    """Host git in the test's own repository (trusted: the test made it)."""
    done = subprocess.run(
        ["git", "-c", "safe.directory=*", *GIT_ID, "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def tree_digest(root: Path) -> str:
    """A digest of every path, mode and content under ``root`` (the host repository,
    .git included): any change the agent made to it would show."""
    h = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files + dirs):
            p = Path(folder) / name
            st = p.lstat()
            h.update(f"{p.relative_to(root)}:{st.st_mode}:{st.st_uid}\n".encode())
            if p.is_file() and not p.is_symlink():
                h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def host_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "host-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("host\n")
    git(repo, "add", "README")
    git(repo, "commit", "-qm", "first")
    # The operator is uid 1000 (the image's node): the agent runs as the repository's owner.
    subprocess.run(["chown", "-R", "1000:1000", str(repo)], check=True)
    return repo


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stdout


def run_in(env: dict[str, str], name: str, script: str) -> subprocess.CompletedProcess[str]:
    return bd("exec", name, "--", "sh", "-c", script, env=env)


def setup_env(tmp_path: Path, agents: dict[str, dict[str, object]]) -> dict[str, str]:
    path = tmp_path / "config.toml"
    write_config(path, agents)
    return {
        "BOTTLE_DASH_CONFIG": str(path),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }


def test_two_agents_own_copies_and_the_host_repo_untouchable(
    tmp_path: Path, test_image: str, host_repo: Path, cleanup: list[str]
) -> None:
    a, b = agent_name("copy-a"), agent_name("copy-b")
    cleanup += [a, b]
    agents = {n: {"image": test_image, "repo": str(host_repo)} for n in (a, b)}
    env = setup_env(tmp_path, agents)
    ok(bd("up", a, env=env))
    ok(bd("up", b, env=env))
    before = tree_digest(host_repo)

    # Both commit at once, each on its own branch, each in its own copy.
    commit = (
        "echo {n} > {n}.txt && git add {n}.txt && "
        "git -c user.name=ag -c user.email=a@b.invalid commit -qm {n}"
    )
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    threads = [
        threading.Thread(
            target=lambda n=n: results.__setitem__(n, run_in(env, n, commit.format(n=n)))
        )
        for n in (a, b)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in (a, b):
        ok(results[n])
    show = "git symbolic-ref --short HEAD; ls /workspace; git log --format=%s"
    out_a = ok(run_in(env, a, show)).split()
    out_b = ok(run_in(env, b, show)).split()
    assert out_a[0] == f"bottle/{a}" and out_b[0] == f"bottle/{b}"
    assert f"{a}.txt" in out_a and f"{b}.txt" not in out_a
    assert f"{b}.txt" in out_b and f"{a}.txt" not in out_b
    assert ok(run_in(env, a, "stat -c %u:%g /workspace /workspace/README")).split() == [
        "1000:1000",
        "1000:1000",
    ]
    # No remote to push to, and no other branch.
    assert ok(run_in(env, a, "git remote; git branch --format='%(refname)'")).split() == [
        f"refs/heads/bottle/{a}"
    ]

    # Attacks from inside the bottle on the host repository: every one fails.
    hp = str(host_repo)
    attacks = {
        "push by path": f"git push {hp} HEAD:refs/heads/evil",
        "push by file url": f"git push file://{hp} HEAD:refs/heads/evil",
        "write its hooks": f"echo evil > {hp}/.git/hooks/post-checkout",
        "write its config": f"git config --file {hp}/.git/config core.fsmonitor evil",
        "write a ref": f"echo 0 > {hp}/.git/refs/heads/main",
        "symlink into its .git": f"ln -s {hp}/.git /workspace/hostgit && "
        "echo evil > /workspace/hostgit/hooks/pre-commit",
        "find it anywhere": f"ls -d {hp} || find / -xdev -name host-repo 2>/dev/null | grep .",
        "its path in mountinfo": f"grep -F {hp} /proc/self/mountinfo",
    }
    for what, script in attacks.items():
        done = run_in(env, a, script)
        assert done.returncode != 0, (what, done.stdout, done.stderr)
    assert tree_digest(host_repo) == before
    assert git(host_repo, "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]

    # The copy survives down/up.
    ok(bd("down", a, env=env))
    ok(bd("up", a, env=env))
    assert ok(run_in(env, a, "git log --format=%s -1")).strip() == a


def test_hostile_copy_fetch_merge_pr_and_rm_safety(
    tmp_path: Path, test_image: str, host_repo: Path, cleanup: list[str]
) -> None:
    name = agent_name("copy-w")
    cleanup.append(name)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(host_repo, "remote", "add", "origin", str(remote))
    env = setup_env(tmp_path, {name: {"image": test_image, "repo": str(host_repo)}})
    ok(bd("up", name, env=env))

    # Arm the copy: programs in its config and attributes that would leave a marker on the
    # host if host git ever read the copy, and one in the bottle proving they are live.
    marker = tmp_path / "HOST-MARKER"
    runs = f"sh -c 'touch /tmp/ran-in-bottle; touch {marker}; cat'"
    arm = (
        f'git config core.fsmonitor "{runs} #" && '
        f'git config filter.evil.clean "{runs}" && git config filter.evil.smudge "{runs}" && '
        f'git config diff.evil.textconv "{runs} <" && git config diff.evil.command "{runs} #" && '
        "echo '* filter=evil diff=evil' > .gitattributes && "
        "echo agent > work.txt && git add -A && "
        "git -c user.name=ag -c user.email=a@b.invalid commit -qm 'agent work'"
    )
    ok(run_in(env, name, arm))
    ok(run_in(env, name, "git status >/dev/null; test -e /tmp/ran-in-bottle"))

    # ls --json: the summary is read in the bottle.
    rows = json.loads(ok(bd("ls", "--json", env=env)))
    row = next(r for r in rows if r["name"] == name)
    assert row["branch"] == f"bottle/{name}" and row["ahead"] == 1 and row["dirty"] is False
    assert row["files_changed"] == 2 and row["insertions"] == 2

    # diff: read in the bottle (the copy's diff driver and textconv are not run for it).
    found = json.loads(ok(bd("diff", name, "--json", env=env)))
    work = next(f for f in found["files"] if f["path"] == "work.txt")
    assert (work["part"], work["insertions"]) == ("committed", 1)
    assert "+agent" in work["patch"]
    assert "work.txt" in ok(bd("diff", name, "--stat", env=env))

    # rm --volumes refuses: the commit is not in the host repository.
    done = bd("rm", "--volumes", name, env=env)
    assert done.returncode != 0 and "not fetched" in done.stderr, done.stderr
    assert docker_labelled(name)["volume"]

    # fetch without --yes and without a terminal changes nothing; with --yes it does.
    assert bd("fetch", name, env=env).returncode != 0
    assert git(host_repo, "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]
    ok(bd("fetch", name, "--yes", env=env))
    assert git(host_repo, "log", "--format=%s", "-1", f"bottle/{name}").strip() == "agent work"
    assert not marker.exists()

    # Uncommitted changes: refused again, while the bottle is stopped (helper container).
    ok(run_in(env, name, "echo more >> work.txt"))
    ok(bd("down", name, env=env))
    done = bd("rm", "--volumes", name, env=env)
    assert done.returncode != 0 and "uncommitted" in done.stderr, done.stderr
    ok(bd("up", name, env=env))

    # merge refuses a dirty host tree, then merges.
    (host_repo / "README").write_text("dirty\n")
    done = bd("merge", name, "--yes", env=env)
    assert done.returncode != 0 and "uncommitted" in done.stderr
    git(host_repo, "checkout", "--", "README")
    ok(bd("merge", name, "--yes", env=env))
    assert (host_repo / "work.txt").read_text() == "agent\n"
    assert git(host_repo, "symbolic-ref", "--short", "HEAD").strip() == "main"

    # A host branch that moved on is never overwritten by a fetch.
    git(host_repo, "checkout", "-q", f"bottle/{name}")
    git(host_repo, "commit", "-q", "--allow-empty", "-m", "operator's own")
    git(host_repo, "checkout", "-q", "main")
    ok(run_in(env, name, "git -c user.name=ag -c user.email=a@b.invalid commit -qam more"))
    refused = bd("fetch", name, "--yes", env=env)
    assert refused.returncode != 0 and "fast-forward" in refused.stderr, refused.stderr
    assert git(host_repo, "log", "--format=%s", "-1", f"bottle/{name}").strip() == "operator's own"

    # pr: pushed with the operator's remote; a stub gh records its argv.
    stub = tmp_path / "bin"
    stub.mkdir()
    record = tmp_path / "gh-argv"
    (stub / "gh").write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$PWD" "$@" > {record}\necho https://pr.invalid/1\n'
    )
    (stub / "gh").chmod(0o755)
    pr_env = {**env, "PATH": f"{stub}:{os.environ['PATH']}"}
    out = ok(bd("pr", name, "--yes", env=pr_env))
    assert "https://pr.invalid/1" in out
    assert git(remote, "for-each-ref", "--format=%(refname)").split() == [
        f"refs/heads/bottle/{name}"
    ]
    assert record.read_text().splitlines() == [
        str(host_repo),
        "pr",
        "create",
        "--head",
        f"bottle/{name}",
        "--fill",
    ]
    # Without gh: the command is printed.
    bare_path = {**env, "PATH": "/usr/bin:/bin"}
    out = ok(bd("pr", name, "--yes", env=bare_path))
    assert "gh pr create --head" in out

    assert not marker.exists()
    done = bd("rm", "--volumes", name, env=env)
    assert done.returncode != 0  # the agent's last commit was never fetched
    ok(bd("rm", "--volumes", "--force", name, env=env))
    assert not docker_labelled(name)["volume"]


def test_copy_files_and_setup(
    tmp_path: Path, test_image: str, host_repo: Path, cleanup: list[str]
) -> None:
    name = agent_name("copy-s")
    cleanup.append(name)
    (host_repo / ".env").write_text("SECRET=host\n")
    table = {
        "image": test_image,
        "repo": str(host_repo),
        "copy": [".env"],
        "setup": ["echo ran > setup-ran; echo step-one", "echo boom >&2; exit 3", "touch never"],
    }
    env = setup_env(tmp_path, {name: table})
    out = bd("up", name, env=env)
    assert out.returncode == 0, out.stderr  # a failed setup: the agent still starts
    assert "setup failed: echo boom >&2; exit 3 (exit 3) boom" in out.stdout + out.stderr
    # The copied file is there, never committed (excluded), and setup ran up to the failure.
    assert ok(run_in(env, name, "cat .env")) == "SECRET=host\n"
    assert ok(run_in(env, name, "git status --porcelain --ignored=no")).split() == [
        "??",
        "setup-ran",
    ]
    assert run_in(env, name, "test -e never").returncode != 0
    row = next(r for r in json.loads(ok(bd("ls", "--json", env=env))) if r["name"] == name)
    assert row["setup"] == "failed: echo boom >&2; exit 3 (exit 3)"
    log = (tmp_path / "state" / "bottle-dash" / "agents" / name / "setup.log").read_text()
    assert "step-one" in log and "boom" in log
