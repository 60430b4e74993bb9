"""Shim tier: an agent with ``repo`` on the smolmachines backend (the stand-in smolvm): its
copy is made on the machine's own disk at /workspace (no host path mounted), survives
down/up, gives its change summary, comes home with fetch, and rm --volumes refuses to
lose unfetched commits."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fakes.cli_run import bd
from tests.fakes.smolvm_support import standin_machines
from tests.integration.cli_helpers import write_config
from tests.support import agent_name

pytestmark = pytest.mark.shim


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done.stdout


def test_smol_copy_lifecycle(standin: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    ident = ["-c", "user.name=op", "-c", "user.email=op@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README").write_text("host\n")
    subprocess.run(["git", "-C", str(repo), "add", "README"], check=True)
    subprocess.run(["git", *ident, "-C", str(repo), "commit", "-qm", "first"], check=True)
    subprocess.run(["chown", "-R", "1000:1000", str(repo)], check=True)
    name = agent_name("smolcopy")
    config = tmp_path / "config.toml"
    write_config(
        config,
        {name: {"backend": "smolmachines", "sealed": False, "image": standin, "repo": str(repo)}},
    )
    env = {
        "BOTTLE_DASH_CONFIG": str(config),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }

    def sh(script: str) -> str:
        return ok(bd("exec", name, "--", "sh", "-c", f"cd /workspace && {script}", env=env))

    try:
        ok(bd("up", name, env=env))
        assert sh("git symbolic-ref --short HEAD; cat README; stat -c %u /workspace/README") == (
            f"bottle/{name}\nhost\n1000\n"
        )
        assert str(repo) not in sh("cat /proc/self/mountinfo")
        sh("echo w > w.txt && git add w.txt && git -c user.name=a -c user.email=a@b commit -qm w")
        ok(bd("down", name, env=env))
        ok(bd("up", name, env=env))
        assert sh("git log --format=%s -1").strip() == "w"
        rows = json.loads(ok(bd("ls", "--json", env=env)))
        found = next(r for r in rows if r["name"] == name)
        assert (found["ahead"], found["files_changed"], found["dirty"]) == (1, 1, False)
        refused = bd("rm", "--volumes", name, env=env)
        assert refused.returncode != 0 and "not fetched" in refused.stderr
        ok(bd("fetch", name, "--yes", env=env))
        log = subprocess.run(
            ["git", "-c", "safe.directory=*", "-C", str(repo), "log", "--format=%s", "-1",
             f"bottle/{name}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert log.strip() == "w"
        ok(bd("rm", "--volumes", name, env=env))
        assert not any(m["name"] == f"bottle-{name}" for m in standin_machines())
    finally:
        bd("rm", "--volumes", "--force", name, env=env)
