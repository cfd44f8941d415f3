"""Configuration tests run in a scratch folder with no runaway-guard variables set."""

from __future__ import annotations

from pathlib import Path

import pytest

from runaway_guard.config import CONFIG_ENV, ENV_VARS

VARIABLES = (CONFIG_ENV, *ENV_VARS.values())


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(folder: Path, text: str, name: str = "runaway-guard.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
