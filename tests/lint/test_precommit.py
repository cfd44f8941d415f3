"""The pre-commit hook definition runs the installed `runaway-guard lint` on Python files."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def hook() -> dict[str, str]:
    """The hook's `key: value` lines (the file is a one-item YAML list of flat keys)."""
    lines = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8").splitlines()
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line.lstrip("- ").partition(":")
        fields[key.strip()] = value.strip()
    return fields


def test_the_hook_has_a_stable_id_and_runs_on_python_files() -> None:
    fields = hook()
    assert ("runaway-guard-lint", "python", "[python]") == (
        fields["id"],
        fields["language"],
        fields["types"],
    )


def test_the_hook_entry_is_the_installed_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    command, subcommand = hook()["entry"].split()
    assert ("runaway_guard.cli:main", "lint") == (scripts[command], subcommand)
