"""The public surface: `__all__` is sorted, importable, and documented in docs/api.md."""

from __future__ import annotations

import re
from pathlib import Path

import runaway_guard as rg

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def test_all_is_sorted_and_every_name_exists() -> None:
    assert sorted(rg.__all__) == list(rg.__all__)
    assert [] == [name for name in rg.__all__ if not hasattr(rg, name)]


def test_every_exported_name_is_documented_and_nothing_else() -> None:
    documented = set(re.findall(r"^\| `rg\.(\w+)` \|", API_PAGE.read_text(), re.MULTILINE))
    assert set(rg.__all__) - {"__version__"} == documented


def test_every_exported_name_has_a_docstring() -> None:
    missing = [
        name
        for name in rg.__all__
        if name != "__version__" and not (getattr(rg, name).__doc__ or "").strip()
    ]
    assert [] == missing
