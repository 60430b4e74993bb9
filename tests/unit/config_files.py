"""Config files for the config tests: write one, and the error loading it raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from bottle_dash.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.path == path
    assert str(path) in str(err)
    return err
