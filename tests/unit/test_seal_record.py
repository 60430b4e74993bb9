"""The seal record (``seal.json``) is read again only when it changed: the dashboard asks
for every running bottle's badge on every tick."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from backends.probes import record
from backends.probes.base import FAIL, PASS, Result


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))


def write(agent: str, outcomes: list[str], finished: float) -> None:
    run = record.SuiteRun(
        agent,
        "docker",
        tuple(Result(f"p{i}", "g", o, "ev") for i, o in enumerate(outcomes)),
        finished,
    )
    path = record.seal_file(agent)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run.to_dict()))


def test_an_unchanged_record_is_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    write("alpha", [PASS, PASS], finished=100.0)
    reads: list[Path] = []
    original = Path.read_text

    def counting(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counting)
    first = record.last_run("alpha")
    assert first is not None and first.seal == record.SEAL_VERIFIED
    for _ in range(5):
        assert record.seal_of("alpha") == record.SEAL_VERIFIED
    assert len(reads) == 1

    write("alpha", [PASS, FAIL], finished=200.0)
    os.utime(record.seal_file("alpha"), ns=(10**18, 10**18))  # a new mtime, surely
    assert record.seal_of("alpha") == "1 failing"
    assert len(reads) == 2


def test_a_removed_record_is_not_checked(tmp_path: Path) -> None:
    write("beta", [PASS], finished=100.0)
    assert record.seal_of("beta") == record.SEAL_VERIFIED
    record.seal_file("beta").unlink()
    assert record.last_run("beta") is None
    assert record.seal_of("beta") == record.NOT_CHECKED


def test_a_record_older_than_the_bottle_is_not_its_seal() -> None:
    write("gamma", [PASS], finished=100.0)
    assert record.seal_of("gamma", "1970-01-01T00:01:00+00:00") == record.SEAL_VERIFIED
    assert record.seal_of("gamma", "1970-01-01T00:05:00+00:00") == record.NOT_CHECKED
