"""The remote test engine's client files and run flags (tests/fakes/remote_engine*.py):
pure text and the ``ssh`` wrapper, with no engine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fakes import remote_engine, remote_engine_image
from tests.fakes import remote_engine_ssh as sshfiles

STATUS = "Name:\tx\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n"


def test_capabilities_missing_from_the_bounding_set_are_dropped() -> None:
    assert remote_engine_image.missing_capabilities(STATUS) == ["SYS_RESOURCE"]
    full = STATUS.replace("000001fffeffffff", "000001ffffffffff")
    assert remote_engine_image.missing_capabilities(full) == []
    # A kernel that knows 38 capabilities: 39 and 40 are not "missing", docker lacks them too.
    older = STATUS.replace("000001fffeffffff", "0000003ffeffffff")
    assert remote_engine_image.missing_capabilities(older, last_cap=37) == ["SYS_RESOURCE"]
    assert remote_engine_image.missing_capabilities(older) == [
        "SYS_RESOURCE",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ]


def test_run_flags_grant_nearly_everything_but_never_privileged() -> None:
    flags = remote_engine_image.run_flags()
    assert "--privileged" not in flags
    assert flags[:2] == ["--cap-add", "ALL"]
    assert "--init" in flags and "systempaths=unconfined" in flags


def test_config_pins_the_host_key_and_shares_one_connection(tmp_path: Path) -> None:
    files = sshfiles.SshFiles(tmp_path / "my engine")
    text = sshfiles.config_text(files, "bottle-dash-remote-x", 40022, mux=True)
    lines = [line.strip() for line in text.splitlines()]
    assert "Host bottle-dash-remote-x 127.0.0.1" in lines
    assert "StrictHostKeyChecking yes" in lines
    assert "HostKeyAlias bottle-dash-remote-x" in lines
    assert f'IdentityFile "{files.client_key}"' in lines
    assert f'UserKnownHostsFile "{files.known_hosts}"' in lines
    assert "IdentitiesOnly yes" in lines and "BatchMode yes" in lines
    assert "ControlMaster auto" in lines
    assert f'ControlPath "{tmp_path}/my engine/cm-%p"' in lines
    nomux = sshfiles.config_text(files, "bottle-dash-remote-x", 40022, mux=False)
    assert "ControlPath none" in nomux and "ControlMaster no" in nomux


def test_a_control_path_too_long_for_a_socket_is_refused(tmp_path: Path) -> None:
    files = sshfiles.SshFiles(tmp_path / ("d" * 100))
    with pytest.raises(RuntimeError, match="BOTTLE_DASH_REMOTE_DIR"):
        sshfiles.config_text(files, "bottle-dash-remote-x", 22, mux=True)


def test_the_wrapper_passes_its_config_and_every_argument_intact(tmp_path: Path) -> None:
    fake = tmp_path / "real ssh"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "[%s]" "$a"; done\n')
    fake.chmod(0o755)
    config = tmp_path / "it's a config"
    wrapper = tmp_path / "ssh"
    wrapper.write_text(sshfiles.wrapper_text(str(fake), config))
    wrapper.chmod(0o755)
    out = subprocess.run(
        [str(wrapper), "-p", "22", "--", "host", "docker system dial-stdio"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == f"[-F][{config}][-p][22][--][host][docker system dial-stdio]"


def test_instances_are_named_in_the_fixture_namespace() -> None:
    with pytest.raises(remote_engine.RemoteEngineError):
        remote_engine.RemoteEngine("my-engine")
    assert remote_engine.RemoteEngine("bottle-dash-remote-t1-x").volume == (
        "bottle-dash-remote-t1-x-data"
    )
