"""A custom tag's rebuild leaves the shared cached image alone (real Docker engine).

The rebuild itself is a stand-in (``rootfs.build_image`` replaced by a ``docker tag`` of
another local image: a real assembly takes minutes, and bench_image/claude tier do it);
what is tested is which tags move, on the real engine.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from backends.images import rootfs
from backends.images.spec import ImageSpec
from tests.support import agent_name

pytestmark = pytest.mark.docker


def image_id(ref: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def spec(test_image: str, egress_image: str) -> Iterator[ImageSpec]:
    repository = agent_name("imgtag")
    made = ImageSpec(repository=repository, packages=("bash",))
    yield made
    out = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    for ref in out:  # untag only: the images themselves are the fixtures' own
        subprocess.run(["docker", "image", "rm", ref], capture_output=True, check=False)


def test_a_custom_tags_rebuild_leaves_the_shared_tag(
    spec: ImageSpec, test_image: str, egress_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = f"{spec.repository}:{rootfs.digest(spec)}"
    subprocess.run(["docker", "tag", test_image, shared], check=True)  # the cached build
    custom = f"{spec.repository}:custom"

    def rebuilt(spec: Any, progress: Any, *, tag: str, image_digest: str) -> str:
        subprocess.run(["docker", "tag", egress_image, tag], check=True)  # "a new image"
        return tag

    monkeypatch.setattr(rootfs, "build_image", rebuilt)
    got = rootfs.ensure_image(spec, tags=[custom], rebuild=True, shared=False)
    assert got == custom
    assert image_id(custom) == image_id(egress_image)
    assert image_id(shared) == image_id(test_image)  # not moved
    # The default build (shared) still moves it: that is what the cache is for.
    rootfs.ensure_image(spec, tags=[f"{spec.repository}:latest"], rebuild=True)
    assert image_id(shared) == image_id(egress_image)
