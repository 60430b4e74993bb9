"""The workspace check: the git-config reader (against git itself), what git reads in a
planted tree, setuid/setgid and device files, and the bits cleared."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from backends import gitconfig, gitscan, workspace

GIT = shutil.which("git")

VALID_CONFIGS = [
    "[core]\n\tbare = false\n\tfsmonitor = ./x\n",
    '[diff "Foo Bar"]\n\ttextconv = cat -v\n',
    "[diff.Tool]\n  command = x\n",  # old form: subsection lower-cased
    "[core] fsmonitor = on-the-header-line\n",
    '[core]\n\tpager = "less  -R" ; a comment\n\teditor = vi # another\n',
    "[core]\n\tsshCommand = ssh \\\n  -i key\n",  # continuation
    '[filter "lfs"]\n\tclean = a"#b"c\n\tsmudge = "q\\"uote\\\\d"\n',
    "[pager]\n\tlog\n\tdiff = false\n",  # a bare name is boolean true
    '[includeIf "gitdir:/x/"]\n\tpath = inc\n[include]\n\tpath = ../i2\n',
    "# only a comment\n; and another\n",
    "[CORE]\n\tHooksPath = .h\n",
    '[remote "o"]\n\turl = u\n\tuploadpack = evil\n[gpg "ssh"]\n\tprogram = x\n',
    '[sub "a\\"b"]\n\tk = v\n',
    "[core]\r\n\tfsmonitor = crlf\r\n",
    '[core]\n\teditor = "a" b "c"\n\tx = tail   \n',
    "[a]\n\tk = \\ttab\\nnl\n",
]


def git_list(tmp_path: Path, text: str) -> list[tuple[str, str | None]]:
    """``git config --list`` of ``text``: (key, value or None for a bare name)."""
    assert GIT
    file = tmp_path / "cfg"
    file.write_bytes(text.encode())
    done = subprocess.run(
        [GIT, "config", "--file", str(file), "--list", "--no-includes", "-z"],
        capture_output=True, check=True,
    )  # fmt: skip
    out: list[tuple[str, str | None]] = []
    for record in done.stdout.decode().split("\0"):
        if not record:
            continue
        key, nl, value = record.partition("\n")
        out.append((key, value if nl else None))
    return out


@pytest.mark.skipif(GIT is None, reason="git is not installed")
@pytest.mark.parametrize("text", VALID_CONFIGS)
def test_the_parser_reads_what_git_reads(tmp_path: Path, text: str) -> None:
    parsed = gitconfig.parse(text)
    assert parsed.bad_lines == []
    assert [(e.key, e.value) for e in parsed.entries] == git_list(tmp_path, text)


def test_the_parser_skips_bad_lines_and_goes_on() -> None:
    parsed = gitconfig.parse('[core]\nnot a setting\n[broken\n[core]\n\teditor = "open\n[x]\ny=1\n')
    assert parsed.bad_lines == [2, 3, 5]
    assert [(e.key, e.value, e.line) for e in parsed.entries] == [("x.y", "1", 7)]
    assert gitconfig.parse("[core]\n\tfsmonitor\n").entries[0].value is None


@pytest.mark.parametrize(
    ("key", "value", "runs"),
    [
        ("core.fsmonitor", "./evil", True),
        ("core.fsmonitor", "true", False),  # the built-in daemon
        ("core.fsmonitor", "false", False),
        ("core.hookspath", ".h", True),
        ("core.sshcommand", "x", True),
        ("core.pager", "x", True),
        ("core.editor", "x", True),
        ("core.askpass", "x", True),
        ("core.gitproxy", "x", True),
        ("sequence.editor", "x", True),
        ("gpg.program", "x", True),
        ("gpg.ssh.program", "x", True),
        ("credential.helper", "x", True),
        ("credential.https://h.helper", "x", True),
        ("filter.lfs.clean", "x", True),
        ("filter.lfs.smudge", "x", True),
        ("filter.lfs.process", "x", True),
        ("diff.x.command", "x", True),
        ("diff.x.textconv", "x", True),
        ("diff.external", "x", True),
        ("merge.x.driver", "x", True),
        ("pager.log", "x", True),
        ("remote.origin.uploadpack", "x", True),
        ("remote.origin.receivepack", "x", True),
        ("uploadpack.packobjectshook", "x", True),
        ("core.bare", "false", False),
        ("remote.origin.url", "x", False),
        ("user.name", "x", False),
    ],
)
def test_command_keys(key: str, value: str, runs: bool) -> None:
    section, _, rest = key.partition(".")
    sub, _, name = rest.rpartition(".")
    entry = gitconfig.Entry(section, sub or None, name, value, 1)
    assert gitscan.is_command_key(entry) is runs


# ----------------------------------------------------------------- planted trees


def repo(root: Path, config: str = "[core]\n\tbare = false\n") -> Path:
    git = root / ".git"
    (git / "hooks").mkdir(parents=True)
    (git / "config").write_text(config)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    return git


def gained_after(tmp_path: Path, plant: object) -> list[str]:
    """What the check reports once ``plant(ws)`` ran on a clean repository."""
    ws = tmp_path / "ws"
    repo(ws)
    workspace.record_baseline("a1", ws)
    assert workspace.gained("a1", ws) == []
    plant(ws)  # type: ignore[operator]
    return workspace.gained("a1", ws)


def test_commondir_pointing_at_the_agents_own_dir(tmp_path: Path) -> None:
    def plant(ws: Path) -> None:
        evil = ws / "build" / "common"
        evil.mkdir(parents=True)
        (evil / "config").write_text("[core]\n\tfsmonitor = ./run-me\n")
        (ws / ".git" / "commondir").write_text("../build/common\n")

    assert gained_after(tmp_path, plant) == [
        ".git/commondir points git at the common directory build/common",
        "git setting core.fsmonitor in build/common/config runs a command: ./run-me",
    ]


def test_a_git_file_naming_a_copy(tmp_path: Path) -> None:
    def plant(ws: Path) -> None:
        shutil.move(ws / ".git", ws / ".git-real")
        copy = ws / "lib" / "copy"
        repo(copy.parent / "tmp")
        shutil.move(copy.parent / "tmp" / ".git", copy)
        (copy / "config").write_text('[diff "x"]\n\ttextconv = ./conv\n')
        (ws / ".git").write_text("gitdir: lib/copy\n")

    found = gained_after(tmp_path, plant)
    assert ".git names the git directory lib/copy" in found
    assert "git setting diff.x.textconv in lib/copy/config runs a command: ./conv" in found
    # the moved original is a nested repository now: read too (nothing risky in it)
    assert not any(".git-real" in f for f in found)


def test_a_git_file_naming_a_dir_outside_is_named_not_followed(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".git").write_text("gitdir: /etc\n")
    assert workspace.findings(ws) == [
        ".git names the git directory /etc (outside the workspace: not read)"
    ]


def test_include_path_to_a_file_with_fsmonitor(tmp_path: Path) -> None:
    def plant(ws: Path) -> None:
        (ws / "docs").mkdir()
        (ws / "docs" / "inc.cfg").write_text("[include]\n\tpath = deeper.cfg\n")
        (ws / "docs" / "deeper.cfg").write_text("[core]\n\tfsmonitor = ./docs/run\n")
        (ws / ".git" / "config").write_text(
            '[core]\n\tbare = false\n[includeIf "onbranch:main"]\n\tpath = ../docs/inc.cfg\n'
            "[include]\n\tpath = ~/elsewhere.cfg\n"
        )

    found = gained_after(tmp_path, plant)
    assert found == sorted(
        [
            "git setting includeif.onbranch:main.path in .git/config includes docs/inc.cfg",
            "git setting include.path in docs/inc.cfg includes docs/deeper.cfg",
            "git setting core.fsmonitor in docs/deeper.cfg runs a command: ./docs/run",
            "git setting include.path in .git/config includes ~/elsewhere.cfg (outside the "
            "workspace)",
        ]
    )


def test_include_loops_and_depth_are_bounded(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    git = repo(ws, "[include]\n\tpath = config\n")  # includes itself
    for i in range(15):
        (git / f"c{i}").write_text(f"[include]\n\tpath = c{i + 1}\n")
    (git / "config.worktree").write_text("[include]\n\tpath = c0\n")
    found = workspace.findings(ws)
    assert any("deeper than 10" in f for f in found), found


def test_config_worktree_and_submodule_configs(tmp_path: Path) -> None:
    def plant(ws: Path) -> None:
        (ws / ".git" / "config.worktree").write_text("[core]\n\tsshCommand = ./ssh\n")
        module = ws / ".git" / "modules" / "lib" / "modules" / "inner"
        module.mkdir(parents=True)
        (module / "HEAD").write_text("ref: refs/heads/main\n")
        (module / "config").write_text('[filter "f"]\n\tsmudge = ./s\n')
        (module / "hooks").mkdir()
        (module / "hooks" / "post-checkout").write_text("#!/bin/sh\n")
        (module / "hooks" / "post-checkout").chmod(0o755)

    assert gained_after(tmp_path, plant) == [
        "executable git hook .git/modules/lib/modules/inner/hooks/post-checkout",
        "git setting core.sshcommand in .git/config.worktree runs a command: ./ssh",
        "git setting filter.f.smudge in .git/modules/lib/modules/inner/config runs a command: ./s",
    ]


def test_nested_repositories_and_hooks_path(tmp_path: Path) -> None:
    def plant(ws: Path) -> None:
        nested = repo(ws / "vendor" / "pkg", "[core]\n\thooksPath = ../tools/hooks\n")
        hooks = ws / "vendor" / "tools" / "hooks"
        hooks.mkdir(parents=True)
        (hooks / "pre-commit").write_text("#!/bin/sh\n")
        (hooks / "pre-commit").chmod(0o755)
        (nested / "hooks" / "post-merge").symlink_to("/bin/sh")
        (ws / "sub").mkdir()
        (ws / "sub" / ".git").write_text("gitdir: ../.git/modules/sub\n")
        (ws / ".git" / "modules" / "sub").mkdir(parents=True)
        (ws / ".git" / "modules" / "sub" / "config").write_text("[pager]\n\tlog = ./p\n")

    found = gained_after(tmp_path, plant)
    assert (
        "git setting core.hookspath in vendor/pkg/.git/config runs a command: ../tools/hooks"
        in found
    )
    assert "executable git hook vendor/tools/hooks/pre-commit" in found
    assert "executable git hook vendor/pkg/.git/hooks/post-merge" in found
    assert "sub/.git names the git directory .git/modules/sub" in found
    assert "git setting pager.log in .git/modules/sub/config runs a command: ./p" in found


def test_setuid_setgid_and_devices_flagged_and_bits_cleared(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    shared = ws / "shared"
    shared.mkdir()
    shared.chmod(0o2775)  # the operator's group folder: in the baseline
    workspace.record_baseline("a1", ws)
    assert workspace.gained("a1", ws) == []
    (ws / "sh").write_bytes(b"#!/bin/sh\n")
    (ws / "sh").chmod(0o4755)
    (ws / "g").write_bytes(b"x")
    (ws / "g").chmod(0o2755)
    (ws / "d").mkdir()
    (ws / "d").chmod(0o2755)
    (shared / "inherited").mkdir()  # setgid from its parent: the kernel's, not flagged
    assert (shared / "inherited").stat().st_mode & stat.S_ISGID
    found = workspace.findings(ws)
    assert found == [
        "setgid directory d (mode 2755)",
        "setgid directory shared (mode 2775)",
        "setgid file g (mode 2755)",
        "setuid file sh (mode 4755)",
    ]
    gained = workspace.gained("a1", ws)
    assert gained == [
        "setgid directory d (mode 2755): bits cleared by bottle-dash",
        "setgid file g (mode 2755): bits cleared by bottle-dash",
        "setuid file sh (mode 4755): bits cleared by bottle-dash",
    ]
    for name, mode in (("sh", 0o755), ("g", 0o755), ("d", 0o755), ("shared", 0o2775)):
        assert stat.S_IMODE((ws / name).stat().st_mode) == mode, name
    # the warning outlives the bits, until the probes' own records are forgotten
    assert workspace.gained("a1", ws) == gained
    workspace.forget("a1", " sh ")
    assert len(workspace.gained("a1", ws)) == 2


def test_a_setuid_file_that_cannot_be_cleared_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    workspace.record_baseline("a1", ws)
    (ws / "sh").write_bytes(b"#!/bin/sh\n")
    (ws / "sh").chmod(0o4755)

    def refuse(path: object, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(workspace.os, "chmod", refuse)
    assert workspace.gained("a1", ws) == [
        "setuid file sh (mode 4755): could not clear the bits (Operation not permitted): remove it"
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_files_are_flagged(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    os.mknod(ws / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    assert workspace.findings(ws) == ["character device file null: remove it"]


def test_the_scan_is_bounded_and_skips_objects(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    git = repo(ws)
    (git / "objects" / "ab").mkdir(parents=True)
    (git / "objects" / "ab" / "x").write_bytes(b"")
    (git / "objects" / "ab" / "x").chmod(0o4755)  # never walked
    (ws / "node_modules" / "p").mkdir(parents=True)
    (ws / "node_modules" / "p" / "s").write_bytes(b"")
    (ws / "node_modules" / "p" / "s").chmod(0o4755)  # walked last, still seen
    assert workspace.findings(ws) == ["setuid file node_modules/p/s (mode 4755)"]
    for i in range(30):
        (ws / f"f{i}").write_bytes(b"")
    cut = workspace.findings(ws, limit=10)
    assert cut == ["the check stopped after 10 entries: the rest is not checked"]


def test_symlinked_config_and_fifo_are_not_read_past_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    git = repo(ws)
    outside = tmp_path / "outside.cfg"
    outside.write_text("[core]\n\tfsmonitor = ./x\n")
    (git / "config").unlink()
    (git / "config").symlink_to(outside)
    os.mkfifo(git / "config.worktree")  # a FIFO would block a naive reader
    found = workspace.findings(ws)
    assert found == [
        ".git/config is a symlink out of the workspace",
        f"symlink .git/config leaves the workspace ({outside})",
    ]
