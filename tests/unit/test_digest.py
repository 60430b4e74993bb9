"""SHA-256 without hashlib: the same digests, so owner labels of existing bottles and
docker context folders are found as before."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from backends import ownership
from backends.digest import sha256_hex
from tests.fakes.loaded_modules import run_fresh


@pytest.mark.parametrize("text", ["", "abc", "/home/op/.config/bottle-dash/config.toml", "zé☃"])
def test_sha256_hex_is_hashlibs(text: str) -> None:
    assert sha256_hex(text) == hashlib.sha256(text.encode()).hexdigest()


def test_sha256_hex_known_answer() -> None:
    assert sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_owner_label_digest_is_unchanged(tmp_path: Path) -> None:
    # Bottles made before carry hashlib's digest of the config path in their owner label.
    config = tmp_path / "config.toml"
    ownership.use_config(config)
    try:
        want = hashlib.sha256(str(config.absolute()).encode()).hexdigest()[:12]
        assert ownership.current() == f"uid{os.getuid()}:{want}"
    finally:
        ownership.use_config(None)


FALLBACK = """
import hashlib, json, sys
sys.modules["_sha2"] = None  # an interpreter built without its own SHA-256 module
sys.modules["_sha256"] = None
from backends.digest import sha256, sha256_hex
print(json.dumps([sha256 is hashlib.sha256, sha256_hex("abc")]))
"""


def test_without_the_builtin_module_hashlib_gives_the_digest() -> None:
    used_hashlib, digest = run_fresh(FALLBACK, {"PATH": os.environ.get("PATH", "")})
    assert used_hashlib
    assert digest == hashlib.sha256(b"abc").hexdigest()
