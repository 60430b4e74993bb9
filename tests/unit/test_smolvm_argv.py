"""Exact argv of every smolvm call the smolmachines backend makes, and its pure helpers."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

from backends import ownership, paths
from backends.base import GUEST_PROMPT, AgentSpec, BackendError
from backends.claude import GUEST_STATUS_DIR, status_settings_arg
from backends.egress.spec import EgressSpec
from backends.holder import held_argv
from backends.smolmachines import images, pty_resize
from backends.smolmachines import smolvm as cli
from backends.smolmachines.backend import SmolmachinesBackend
from backends.smolmachines.bottle import PTY_RESIZE, SmolBottle
from backends.smolmachines.preflight import cpu_flags, host_problems
from tests.support import start_keepalive

S = "/opt/smolvm"
NASTY = {
    "QUOTE": 'it\'s "quoted"',
    "SPACE": "a b  c",
    "DOLLAR": "$HOME and ${PATH} $(id)",
    "NEWLINE": "line one\nline two",
}


def test_create_argv_from_image_with_everything() -> None:
    argv = cli.create_argv(
        S,
        "bottle-a1",
        image="/cache/img.tar",
        labels={"bottle-dash.agent": "a1", "bottle-dash.backend": "smolmachines"},
        env={"K": "v w"},
        allow_cidrs=["10.0.0.0/8"],
        net=True,
        volumes=["/src:/workspace"],
        workdir="/workspace",
        cpus=1.5,
        memory=512 * 1024 * 1024,
    )
    assert argv == [
        S, "machine", "create", "--name", "bottle-a1",
        "--image", "/cache/img.tar",
        "--user", "root",
        "--workdir", "/workspace",
        "--volume", "/src:/workspace",
        "--net",
        "--allow-cidr", "10.0.0.0/8",
        "--cpus", "2",
        "--mem", "512",
        "-e", "K=v w",
        "--label", "bottle-dash.agent=a1",
        "--label", "bottle-dash.backend=smolmachines",
        "--", *cli.KEEPALIVE,
    ]  # fmt: skip


def test_create_argv_from_pack_minimal() -> None:
    argv = cli.create_argv(S, "m", from_pack="/p/agent.smolmachine", user=None, workload=())
    assert argv == [S, "machine", "create", "--name", "m", "--from", "/p/agent.smolmachine"]


def test_create_argv_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one of image and from_pack"):
        cli.create_argv(S, "m")
    with pytest.raises(ValueError, match="exactly one of image and from_pack"):
        cli.create_argv(S, "m", image="x", from_pack="y")


@pytest.mark.parametrize(
    ("cpus", "memory", "flags"),
    [
        (1, 2 * 1024**3, ["--cpus", "1", "--mem", "2048"]),
        (0.25, 1024**2, ["--cpus", "1", "--mem", "1"]),  # whole vCPUs, whole MiB
        (0, 1000, ["--cpus", "1", "--mem", "1"]),  # never below one of each
        (3.01, 4 * 1024**3 + 5, ["--cpus", "4", "--mem", "4096"]),
    ],
)
def test_create_argv_rounds_limits_to_what_smolvm_takes(
    cpus: float, memory: int, flags: list[str]
) -> None:
    argv = cli.create_argv(S, "m", image="x", user=None, cpus=cpus, memory=memory, workload=())
    assert argv == [S, "machine", "create", "--name", "m", "--image", "x", *flags]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_keepalive_workload_exits_at_once_on_term_and_int(sig: int) -> None:
    """The machine's workload (run here by the host's sh) exits 0 on SIGTERM or SIGINT,
    so `machine stop` never waits out its timeout."""
    proc = start_keepalive(list(cli.KEEPALIVE))
    proc.send_signal(sig)
    assert proc.wait(timeout=10) == 0


def test_lifecycle_argv() -> None:
    assert cli.start_argv(S, "m") == [S, "machine", "start", "--name", "m"]
    assert cli.stop_argv(S, "m") == [S, "machine", "stop", "--name", "m"]
    assert cli.delete_argv(S, "m") == [S, "machine", "delete", "--name", "m", "-f"]
    assert cli.ls_argv(S) == [S, "machine", "ls", "--json"]
    assert cli.version_argv(S) == [S, "--version"]
    assert cli.logs_argv(S, "m", 50) == [S, "machine", "logs", "--name", "m", "--tail", "50"]
    assert cli.pack_create_argv(S, "node:22", "/c/agent") == [
        S, "pack", "create", "--image", "node:22", "-o", "/c/agent",
    ]  # fmt: skip


def test_cp_argv() -> None:
    assert cli.cp_argv(S, "/h/a b.md", "m", "/home/node/x y") == [
        S, "machine", "cp", "/h/a b.md", "m:/home/node/x y",
    ]  # fmt: skip
    assert cli.cp_argv(S, "/h/p", "m", "/d", mode=0o600) == [
        S, "machine", "cp", "--mode", "600", "/h/p", "m:/d",
    ]  # fmt: skip


def test_exec_argv_env_and_uid_switch() -> None:
    argv = cli.exec_argv(S, "m", ["sh", "-c", "echo $HOME"], user="node", env=NASTY)
    assert argv == [
        S, "machine", "exec", "--name", "m",
        "-e", "HOME=/home/node", "-e", "USER=node",
        "-e", "QUOTE=it's \"quoted\"",
        "-e", "SPACE=a b  c",
        "-e", "DOLLAR=$HOME and ${PATH} $(id)",
        "-e", "NEWLINE=line one\nline two",
        "--", "setpriv", "--no-new-privs", "--", "runuser", "-u", "node", "--",
        "sh", "-c", "echo $HOME",
    ]  # fmt: skip


def test_exec_argv_root_gets_root_home_and_tty_flags() -> None:
    argv = cli.exec_argv(S, "m", ["id"], user="root", tty=True)
    assert argv == [
        S, "machine", "exec", "--name", "m", "-i", "-t",
        "-e", "HOME=/root", "-e", "USER=root",
        "--", "setpriv", "--no-new-privs", "--", "runuser", "-u", "root", "--", "id",
    ]  # fmt: skip


def test_agent_env_cannot_override_home_or_user() -> None:
    assert cli.guest_env("node", {"HOME": "/x", "A": "1"}) == {
        "HOME": "/home/node",
        "USER": "node",
        "A": "1",
    }
    assert cli.guest_env("bob", {}) == {"HOME": "/home/bob", "USER": "bob"}
    assert cli.guest_env("root", {}) == {"HOME": "/root", "USER": "root"}


def test_claude_argv_tty_is_wrapped_exactly() -> None:
    bottle = SmolBottle(S, "bottle-a1", "a1", NASTY, python="/usr/bin/python3")
    prompt = "say \"hi\" to $USER\nand 'bye'"
    argv = bottle.claude_argv(["--append-system-prompt-file", GUEST_PROMPT, "-p", prompt])
    assert argv == [
        "/usr/bin/python3", PTY_RESIZE, "bottle-a1", "--",
        S, "machine", "exec", "--name", "bottle-a1", "-i", "-t",
        "-e", "HOME=/home/node", "-e", "USER=node",
        "-e", "QUOTE=it's \"quoted\"",
        "-e", "SPACE=a b  c",
        "-e", "DOLLAR=$HOME and ${PATH} $(id)",
        "-e", "NEWLINE=line one\nline two",
        "--", "setpriv", "--no-new-privs", "--", "runuser", "-u", "node", "--",
        "claude", "--append-system-prompt-file", GUEST_PROMPT, "-p", prompt,
    ]  # fmt: skip
    assert Path(PTY_RESIZE).is_absolute() and Path(PTY_RESIZE).is_file()


def test_claude_argv_without_tty_has_no_wrapper_and_only_i() -> None:
    bottle = SmolBottle(S, "m", "a", {"K": "V"})
    assert bottle.claude_argv(["-p", "x"], tty=False) == [
        S, "machine", "exec", "--name", "m", "-i",
        "-e", "HOME=/home/node", "-e", "USER=node", "-e", "K=V",
        "--", "setpriv", "--no-new-privs", "--", "runuser", "-u", "node", "--",
        "claude", "-p", "x",
    ]  # fmt: skip


def test_claude_argv_defaults_to_this_interpreter() -> None:
    assert SmolBottle(S, "m", "a").claude_argv([])[0] == sys.executable


def test_held_argv_keeps_wrapper_and_uid_switch() -> None:
    bottle = SmolBottle(S, "bottle-claude", "claude", {}, python="/py")
    args = ["-p", "it's $x"]
    argv = held_argv(bottle.claude_argv(args), len(args))
    assert argv[:4] == ["/py", PTY_RESIZE, "bottle-claude", "--"]
    assert argv[-13:-9] == ["runuser", "-u", "node", "--"]
    assert argv[-9:-7] == ["sh", "-c"]
    assert argv[-5:] == ["resume", "1", "claude", "-p", "it's $x"]


def test_side_channel_argv() -> None:
    argv = cli.side_channel_argv(S, "m", 120, 40)
    assert argv == pty_resize.side_channel_argv(S, "m", 120, 40)
    assert cli.NO_NEW_PRIVS == pty_resize.NO_NEW_PRIVS  # one rule for every exec
    assert argv[:10] == [
        S, "machine", "exec", "--name", "m", "--", "setpriv", "--no-new-privs", "--", "sh"
    ]  # fmt: skip
    assert argv[10] == "-c"
    assert "for f in /dev/pts/*" in argv[11] and "stty -F" in argv[11]
    assert "cols 120 rows 40" in argv[11]
    assert "-t" not in argv and "-i" not in argv


# --------------------------------------------------------------------------- ls


LS_REAL = [  # shape of smolvm 1.32.2 `machine ls --json` (fields trimmed)
    {
        "name": "bottle-a1",
        "state": "running",
        "image": "/c/img.tar",
        "labels": {"bottle-dash.agent": "a1", "bottle-dash.backend": "smolmachines"},
        "pid": 4242,
        "created_at": 1795736186,
        "cpus": 4,
        "last_exit": None,
    },
    {
        "name": "other",
        "state": "created",
        "image": "alpine",
        "labels": {},
        "pid": None,
        "created_at": 1795736000,
    },
    {"state": "running"},
]


def test_parse_ls() -> None:
    records = cli.parse_ls(json.dumps(LS_REAL))
    assert [r.name for r in records] == ["bottle-a1", "other"]
    first = records[0]
    assert first.live and first.pid == 4242 and first.created_at == 1795736186
    assert first.labels["bottle-dash.agent"] == "a1"
    assert not records[1].live and records[1].pid is None
    assert cli.parse_ls("[]") == []
    assert cli.parse_ls("") == []


def test_parse_ls_tolerates_sparse_items_and_a_wrapping_object() -> None:
    text = json.dumps(
        {
            "machines": [
                {"name": "boot", "state": "started", "pid": 0, "image": None},
                {"name": "bare"},
            ]
        }
    )
    boot, bare = cli.parse_ls(text)
    assert (boot.name, boot.live, boot.pid, boot.image) == ("boot", True, None, "")
    assert (bare.state, bare.live, bare.image, bare.labels, bare.pid) == (
        "unknown", False, "", {}, None,
    )  # fmt: skip
    [one] = cli.parse_ls(json.dumps([{"name": "one", "pid": 1, "image": "img"}]))
    assert (one.pid, one.image) == (1, "img")


def test_list_bottles_filters_by_label(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = SmolmachinesBackend()
    mine = json.loads(json.dumps(LS_REAL))
    mine[0]["labels"][ownership.LABEL_OWNER] = ownership.current()
    # Another operator's machine for the same agent name is not listed.
    theirs = json.loads(json.dumps(LS_REAL[0]))
    theirs["name"] = "bottle-a1-x"
    theirs["labels"][ownership.LABEL_OWNER] = "uid4242:feedfacecafe"
    mine.append(theirs)
    monkeypatch.setattr(backend, "_records", lambda: cli.parse_ls(json.dumps(mine)))
    [info] = backend.list_bottles()
    assert (info.agent, info.bottle, info.state, info.host_pid) == (
        "a1",
        "bottle-a1",
        "running",
        4242,
    )
    assert info.created.startswith("2026-")
    # A handle on what the listing saw asks smolvm nothing more (attach lists again).
    monkeypatch.setattr(cli, "find_smolvm", lambda: S)
    listings: list[int] = []
    monkeypatch.setattr(backend, "_records", lambda: listings.append(1) or [])
    handle = backend.bottle_from(info)
    assert (handle.name, handle.agent, listings) == ("bottle-a1", "a1", [])
    assert handle.claude_argv([])[-1] == "claude"


def test_clean_stderr_drops_wheel_note() -> None:
    text = "note: no packed assets found for 'smol-vmm' (...)\nError: vm not found: x\n"
    assert cli.clean_stderr(text) == "Error: vm not found: x"
    coloured = "\x1b[2m2026-11-26T23:52:55Z\x1b[0m \x1b[33m WARN\x1b[0m VMM exited"
    assert cli.clean_stderr(coloured) == "2026-11-26T23:52:55Z  WARN VMM exited"
    assert cli.clean_stderr(f"one\n{text}two") == "one\nError: vm not found: x\ntwo"


# --------------------------------------------------------------------------- finding


def test_find_smolvm_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOTTLE_DASH_SMOLVM", "/x/smolvm")  # the README's override
    assert cli.find_smolvm() == "/x/smolvm"
    monkeypatch.delenv("BOTTLE_DASH_SMOLVM")
    fake = tmp_path / "smolvm"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.find_smolvm() == str(fake)
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    found = cli.find_smolvm()  # the wheel's binary (installed in the dev venv)
    assert found is None or found.endswith("/smol/smol-vmm")
    assert "smol" not in sys.modules  # located without importing the SDK


def test_find_smolvm_falls_back_to_the_wheels_executable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No override and nothing on PATH: the executable ``smol/smol-vmm`` of the ``smol``
    package (a stand-in package first on sys.path, so the result does not depend on what
    the venv has installed); None when the package holds no executable one."""
    monkeypatch.delenv(cli.ENV_OVERRIDE, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    monkeypatch.delitem(sys.modules, "smol", raising=False)
    package = tmp_path / "site" / "smol"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('located, never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert cli.find_smolvm() is None  # the package, without the binary
    binary = package / "smol-vmm"  # the executable the smolvm wheel ships
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o644)
    assert cli.find_smolvm() is None  # there, but not executable
    binary.chmod(0o755)
    assert cli.find_smolvm() == str(binary)
    assert "smol" not in sys.modules


# --------------------------------------------------------------------------- host


def test_host_problems_no_virtualization() -> None:
    problems = host_problems("Linux", "x86_64", "flags\t: fpu sse2 avx\n", "ok")
    assert len(problems) == 1
    assert "vmx or svm" in problems[0].what and problems[0].fix


def test_host_problems_ok_and_kvm_states() -> None:
    info = "flags\t: fpu vmx sse2\n"
    assert host_problems("Linux", "x86_64", info, "ok") == []
    [denied] = host_problems("Linux", "x86_64", info, "denied")
    assert "kvm" in denied.fix
    [missing] = host_problems("Linux", "x86_64", info, "missing")
    assert "modprobe" in missing.fix
    assert host_problems("Linux", "aarch64", "Features\t: fp asimd\n", "ok") == []


def test_host_problems_macos_and_others() -> None:
    assert host_problems("Darwin", "arm64", "", "missing") == []
    assert "Apple silicon" in host_problems("Darwin", "x86_64", "", "missing")[0].what
    assert host_problems("Windows", "AMD64", "", "missing")


def test_cpu_flags() -> None:
    assert {"vmx", "sse2"} <= cpu_flags("processor: 0\nflags\t\t: vmx sse2\n")


def test_preflight_here_reports_why_vms_cannot_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.ENV_OVERRIDE, "/nonexistent/smolvm")
    problems = SmolmachinesBackend().preflight()
    assert any("--version" in p.what for p in problems)
    if (
        "vmx" not in Path("/proc/cpuinfo").read_text()
        and "svm" not in Path("/proc/cpuinfo").read_text()
    ):
        assert any("cannot boot" in p.what for p in problems)


def test_preflight_without_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "find_smolvm", lambda: None)
    [problem] = SmolmachinesBackend().preflight()
    assert "not installed" in problem.what and "bottle-dash[smolvm]" in problem.fix


# --------------------------------------------------------------------------- images


def test_resolve_image_sources(tmp_path: Path) -> None:
    assert images.resolve("node:22") == images.ImageSource("reference", "node:22")
    assert images.resolve("ghcr.io/a/b@sha256:" + "0" * 64).kind == "reference"
    assert images.resolve("/x/img.tar") == images.ImageSource("archive", "/x/img.tar")
    assert images.resolve("img.tar.gz", base=tmp_path) == images.ImageSource(
        "archive", str(tmp_path / "img.tar.gz")
    )
    assert images.resolve("./a.smolmachine", base=tmp_path) == images.ImageSource(
        "smolmachine", str(tmp_path / "a.smolmachine")
    )
    assert images.resolve("../rootfs", base=tmp_path / "cfg") == images.ImageSource(
        "rootfs", str(tmp_path / "rootfs") + "/"
    )


def test_materialize_prefers_cached_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    pack = images.pack_output("node:22").with_suffix(".smolmachine")
    pack.parent.mkdir(parents=True)
    pack.write_text("{}")
    monkeypatch.setattr(images, "docker_image_id", lambda ref: pytest.fail("not asked"))
    assert images.materialize(images.resolve("node:22")) == images.CreateSource(from_pack=str(pack))


def test_materialize_reference_without_docker_goes_to_smolvm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(images, "docker_image_id", lambda ref: None)
    assert images.materialize(images.resolve("alpine")) == images.CreateSource(image="alpine")


def test_materialize_missing_file_is_image_not_found(tmp_path: Path) -> None:
    with pytest.raises(images.ImageNotFound):
        images.materialize(images.resolve(str(tmp_path / "no.tar")))


# --------------------------------------------------------------------------- prepare


def test_prepare_plan(tmp_path: Path) -> None:
    skill = tmp_path / "skills" / "review"
    skill.mkdir(parents=True)
    spec = AgentSpec(
        name="a1",
        backend="smolmachines",
        image="node:22",
        workspace=tmp_path,
        prompt="be 'careful' with $money\n",
        skills=(skill,),
        env={"K": "V"},
        claude_args=("--model", "opus"),
        memory=1 << 30,
    )
    plan = SmolmachinesBackend().prepare(spec)
    assert plan.bottle == "bottle-a1" and plan.backend == "smolmachines"
    assert plan.claude_args == [
        "--dangerously-skip-permissions",  # sealed by default: unattended
        "--settings",
        status_settings_arg(),
        "--append-system-prompt-file",
        GUEST_PROMPT,
        "--model",
        "opus",
    ]
    assert plan.skills == [(str(skill), "/home/node/.claude/skills/review")]
    assert plan.extra["source"] == {"kind": "reference", "ref": "node:22"}
    prompt = Path(plan.prompt_host)
    assert prompt.read_bytes() == spec.prompt.encode()
    assert prompt.stat().st_mode & 0o777 == 0o600
    assert plan.labels["bottle-dash.backend"] == "smolmachines"


def test_prepare_missing_skill_names_it(tmp_path: Path) -> None:
    spec = AgentSpec(name="a1", skills=(tmp_path / "gone",))
    with pytest.raises(BackendError, match="gone"):
        SmolmachinesBackend().prepare(spec)


def test_create_argv_of_plan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(cli.ENV_OVERRIDE, S)
    backend = SmolmachinesBackend()
    unsealed = EgressSpec(sealed=False)  # the whole network (sealed: test_egress_policy)
    plan = backend.prepare(AgentSpec(name="a1", workspace=tmp_path, cpus=2, egress=unsealed))
    argv = backend.create_argv(plan, images.CreateSource(image="/c/x.tar"))
    assert argv[:7] == [S, "machine", "create", "--name", "bottle-a1", "--image", "/c/x.tar"]
    assert ["--volume", f"{tmp_path}:/workspace"] == argv[argv.index("--volume") :][:2]
    status = f"{paths.status_dir('a1')}:{GUEST_STATUS_DIR}"
    assert argv[argv.index(status) - 1] == "--volume"
    assert "--net" in argv and argv[7:9] == ["--user", "root"]
    assert argv[-4:] == ["--", *cli.KEEPALIVE]
    assert "--label" in argv and "bottle-dash.agent=a1" in argv


def test_memory_defaults_to_docker_s_capped_by_the_host() -> None:
    from backends.smolmachines.plan import DEFAULT_MEMORY, machine_memory

    assert DEFAULT_MEMORY == 4 * 1024**3
    assert machine_memory(None, 24 * 1024**3) == (
        DEFAULT_MEMORY,
        "default (4 GiB, as docker bottles)",
    )
    assert machine_memory(None, None)[0] == DEFAULT_MEMORY
    small, why = machine_memory(None, 6 * 1024**3)  # half of the host: 3 GiB
    assert small == 3 * 1024**3 and "half of the host's 6144 MiB" in why
    assert machine_memory(512 * 1024**2, 6 * 1024**3) == (
        512 * 1024**2,
        "the agent's memory setting",
    )


def test_plan_has_the_memory_and_create_argv_passes_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from backends.smolmachines import plan as smol

    monkeypatch.setenv(cli.ENV_OVERRIDE, S)
    monkeypatch.setattr(smol, "host_memory", lambda: 32 * 1024**3)
    plan = SmolmachinesBackend().prepare(AgentSpec(name="a1", egress=EgressSpec(sealed=False)))
    assert plan.memory == 4 * 1024**3 and "default" in plan.extra["memory_reason"]
    argv = SmolmachinesBackend().create_argv(plan, images.CreateSource(image="/c/x.tar"))
    assert argv[argv.index("--mem") + 1] == "4096"


def test_the_whole_git_dir_is_mounted_read_only_over_the_workspace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(cli.ENV_OVERRIDE, S)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]\n")
    plan = SmolmachinesBackend().prepare(
        AgentSpec(name="a1", workspace=tmp_path, egress=EgressSpec(sealed=False))
    )
    assert not (tmp_path / ".git" / "hooks").exists()  # the plan writes nothing there
    assert plan.extra["read_only_in_workspace"] == [".git"]
    assert "no host seccomp" in plan.extra["setuid_files"]
    argv = SmolmachinesBackend().create_argv(plan, images.CreateSource(image="/c/x.tar"))
    vols = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    ws, git = (
        vols.index(f"{tmp_path}:/workspace"),
        vols.index(f"{tmp_path}/.git:/workspace/.git:ro"),
    )
    assert ws < git  # over the workspace mount, not under it
    no_git = SmolmachinesBackend().prepare(
        AgentSpec(name="a2", workspace=tmp_path / ".git", egress=EgressSpec(sealed=False))
    )
    assert no_git.extra["read_only_in_workspace"] == []


def test_a_git_file_cannot_be_mounted_by_smolvm_and_plan_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(cli.ENV_OVERRIDE, S)
    (tmp_path / ".git").write_text("gitdir: /elsewhere/.git/worktrees/x\n")
    plan = SmolmachinesBackend().prepare(
        AgentSpec(name="a1", workspace=tmp_path, egress=EgressSpec(sealed=False))
    )
    assert plan.extra["read_only_in_workspace"] == []
    assert plan.extra["git_file_writable"] is True
    assert any("smolvm mounts directories only" in w for w in plan.extra["warnings"])
