"""Image references are checked where they are entered (config file and new-agent form)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.images.reference import image_problem, is_reference
from bottle_dash.config import ConfigError, validate_agent

GOOD = [
    "bottle-dash-agent:latest",
    "ubuntu",
    "localhost:5000/team/agent:1.2-rc",
    "ghcr.io/x/y_z:v1",
    "a@sha256:" + "0" * 64,
]
BAD = [
    "bottle-accept:latest/tmp/my projectBe brief.",  # what the new-agent form once saved
    "bottle-accept:latest/tmp/my",
    "Ubuntu",
    "agent:",
    "agent:tag with space",
    "-agent",
]


@pytest.mark.parametrize("ref", GOOD)
def test_good_references(ref: str) -> None:
    assert is_reference(ref)
    assert image_problem(ref, "docker") is None


@pytest.mark.parametrize("ref", BAD)
def test_bad_references(ref: str) -> None:
    assert not is_reference(ref)
    assert image_problem(ref, "docker")


def test_paths_only_for_smolmachines() -> None:
    for path in ("./agent.tar", "/srv/rootfs", "~/a.smolmachine"):
        assert image_problem(path, "smolmachines") is None
        assert image_problem(path, "docker")


def test_the_form_and_the_file_refuse_a_bad_image(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    bad = "bottle-accept:latest/tmp/my projectBe brief."
    with pytest.raises(ConfigError) as err:
        validate_agent("web", {"image": bad}, {}, config)
    assert err.value.key == "image" and err.value.agent == "web"
    assert "whitespace" in str(err.value)
    assert 'image = "bottle-dash-agent:latest"' in (err.value.fix or "")
    assert validate_agent("web", {"image": "ghcr.io/x/y:1"}, {}, config).image == "ghcr.io/x/y:1"
