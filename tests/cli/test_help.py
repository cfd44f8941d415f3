"""Every operator command has help text and a section in docs/cli.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import run

COMMANDS = ["status", "report", "kill", "revive", "reap", "doctor"]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_explains_itself(command: str) -> None:
    result = run(command, "--help")
    assert 0 == result.exit_code
    assert "--ledger URL" in result.stdout
    assert "--config" in result.stdout
    summary = result.stdout.split("\n\n")[1].strip()
    assert len(summary) > 30


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_a_section_in_the_docs(command: str) -> None:
    assert f"\n## `{command}`" in DOCS.read_text(encoding="utf-8")
