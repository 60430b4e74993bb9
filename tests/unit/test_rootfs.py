"""The offline image builder's pure parts: the digest, the import config, the argv."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from backends.images import agent, rootfs
from backends.images.rootfs import ImageFile, ImageSpec, ImageUser

SPEC = ImageSpec(
    repository="r",
    packages=("git",),
    pip=("mitmproxy==11.0.2",),
    npm=("left-pad@1.3.0",),
    users=(ImageUser("node", 1000),),
    files=(ImageFile("/etc/x", data=b"x"), ImageFile("/workspace", uid=1000, gid=1000)),
    user="node",
    workdir="/workspace",
    env={"A": 'say "hi" \\ there'},
    labels={"k": "v"},
    cmd=("sleep", "infinity"),
)


def test_digest_is_stable_and_names_every_input(tmp_path: Path) -> None:
    assert rootfs.digest(SPEC) == rootfs.digest(dataclasses.replace(SPEC))
    assert rootfs.image_tag(SPEC) == f"r:{rootfs.digest(SPEC)}"
    # The mirror is where packages come from, not what the image is.
    assert rootfs.digest(dataclasses.replace(SPEC, mirror="http://mirror.invalid/debian")) == (
        rootfs.digest(SPEC)
    )
    changed = [
        dataclasses.replace(SPEC, packages=("git", "curl")),
        dataclasses.replace(SPEC, pip=("mitmproxy==11.0.1",)),
        dataclasses.replace(SPEC, npm=("left-pad@1.3.1",)),
        dataclasses.replace(SPEC, users=(ImageUser("node", 1001),)),
        dataclasses.replace(SPEC, files=(ImageFile("/etc/x", data=b"y"),)),
        dataclasses.replace(SPEC, user="root"),
        dataclasses.replace(SPEC, env={"A": "b"}),
        dataclasses.replace(SPEC, labels={"k": "w"}),
        dataclasses.replace(SPEC, cmd=("sh",)),
        dataclasses.replace(SPEC, suite="trixie"),
    ]
    digests = {rootfs.digest(s) for s in changed}
    assert rootfs.digest(SPEC) not in digests and len(digests) == len(changed)
    # A copied host file counts by its contents.
    src = tmp_path / "f"
    src.write_text("one")
    with_src = dataclasses.replace(SPEC, files=(ImageFile("/f", source=src),))
    before = rootfs.digest(with_src)
    src.write_text("two")
    assert rootfs.digest(with_src) != before


def test_changes_carry_user_workdir_env_labels_cmd_quoted() -> None:
    out = rootfs.changes(SPEC, "abc")
    assert out[:2] == ["USER node", "WORKDIR /workspace"]
    assert 'ENV A="say \\"hi\\" \\\\ there"' in out
    assert f'ENV PATH="{rootfs.DEFAULT_PATH}"' in out
    assert '"k"="v"' in " ".join(out) and f'LABEL "{rootfs.LABEL_DIGEST}"="abc"' in out
    assert out[-1] == 'CMD ["sleep", "infinity"]'
    assert 'ENV PATH="/x"' in rootfs.changes(dataclasses.replace(SPEC, env={"PATH": "/x"}), "")


def test_argv_builders(tmp_path: Path) -> None:
    root = tmp_path / "root"
    boot = rootfs.debootstrap_argv(SPEC, root, tmp_path / "debs")
    assert boot[:2] == ["debootstrap", "--variant=minbase"]
    assert "--include=git,python3,python3-pip" in boot  # pip brings its Python
    assert boot[-3:] == ["bookworm", str(root), rootfs.DEBIAN_MIRROR]
    assert rootfs.pip_argv(root, ["a==1"])[:4] == ["chroot", str(root), "python3", "-m"]
    npm = rootfs.npm_argv(root, ["p@1"])
    assert npm[:5] == ["npm", "install", "--global", "--prefix", str(root / "usr/local")]
    groupadd, useradd = rootfs.user_argvs(root, ImageUser("node", 1000))
    assert groupadd[-3:] == ["--gid", "1000", "node"]
    assert "/home/node" in useradd and useradd[-1] == "node"
    tar, imp = rootfs.import_argvs(SPEC, root, "r:t", "d")
    assert tar[-1] == "." and "--numeric-owner" in tar
    assert imp[:2] == ["docker", "import"] and imp[-2:] == ["-", "r:t"]
    assert imp.count("--change") == len(rootfs.changes(SPEC, "d"))


def test_agent_spec_pins_claude_code_and_labels_it() -> None:
    spec = agent.AGENT_SPEC
    assert spec.npm == (agent.NPM, f"@anthropic-ai/claude-code@{agent.CLAUDE_CODE_VERSION}")
    assert spec.labels[agent.LABEL_CLAUDE_CODE] == agent.CLAUDE_CODE_VERSION
    assert spec.user == "node" and spec.workdir == "/workspace"
    assert {"nodejs", "git", "ca-certificates", "util-linux", "procps", "bash"} <= set(
        spec.packages
    )
    assert ImageUser("node", 1000, home="/home/node") in spec.users
    # Upgrading is one line: a different version is a different image.
    assert rootfs.digest(agent.agent_spec("0.0.1")) != rootfs.digest(spec)
    dockerfile = (Path(agent.__file__).parents[1] / "docker/agent-image/Dockerfile").read_text()
    assert 'bottle-dash.claude-code="${CLAUDE_CODE_VERSION}"' in dockerfile
    # The tools an agent fetches with, in both builds; pip may install for the user.
    assert {"curl", "python3-pip"} <= set(spec.packages)
    assert spec.env["PIP_BREAK_SYSTEM_PACKAGES"] == "1"
    assert "curl" in dockerfile and "python3-pip" in dockerfile
    assert "ENV PIP_BREAK_SYSTEM_PACKAGES=1" in dockerfile


def test_pip_in_the_chroot_gets_a_clean_env_with_the_hosts_index_and_cas() -> None:
    host = {
        "PIP_INDEX_URL": "https://pypi.mirror.invalid/simple",
        "PIP_EXTRA_INDEX_URL": "file:///opt/pypi/simple",  # a host path: meaningless there
        "PIP_FIND_LINKS": "/opt/wheels",
        "HTTPS_PROXY": "http://proxy.invalid:3128",
        "PYTHONPATH": "/host/lib",
    }
    env = rootfs.pip_env(host, ca=True)
    assert env["PIP_INDEX_URL"] == "https://pypi.mirror.invalid/simple"
    assert env["HTTPS_PROXY"] == "http://proxy.invalid:3128"
    assert env["PIP_CERT"] == rootfs.PIP_CA_GUEST and env["PIP_CERT"].startswith("/tmp/")
    for absent in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PYTHONPATH"):
        assert absent not in env
    assert "PIP_CERT" not in rootfs.pip_env(host, ca=False)
