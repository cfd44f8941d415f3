"""The agent guard's public surface matches what its docs page names."""

from __future__ import annotations

import re
from pathlib import Path

import runaway_guard as rg
from runaway_guard import agents

DOC = Path(__file__).resolve().parents[2] / "docs" / "agents.md"


def test_the_package_is_exported_from_the_top_level() -> None:
    assert rg.agents is agents
    assert "agents" in rg.__all__


def test_all_is_sorted_and_matches_the_documented_names() -> None:
    text = DOC.read_text(encoding="utf-8")
    listed = text.split("The public names of\n`runaway_guard.agents`:", 1)[1]
    documented = re.findall(r"`(\w+)`", listed)
    assert sorted(agents.__all__) == agents.__all__
    assert agents.__all__ == documented


def test_every_exported_name_exists() -> None:
    assert [] == [name for name in agents.__all__ if not hasattr(agents, name)]
