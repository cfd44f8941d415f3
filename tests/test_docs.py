"""The README's and the docs' Python examples run, exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def examples(page: Path) -> list[str]:
    return FENCE.findall(page.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All of a page's python blocks run in order, in one namespace, in a scratch folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUNAWAY_GUARD_LEDGER", f"sqlite:///{tmp_path / 'default.db'}")
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, block in enumerate(examples(page), start=1):
        code = compile(block, f"{page.name}:block{number}", "exec")
        exec(code, namespace)  # running our own documentation is the point


def test_readme_opens_with_the_two_setup_commands() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    commands = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert commands[0].endswith("runaway-guard demo")
    assert commands[1].endswith("python -m pytest")
    assert lines.index("```sh") <= 2


def test_every_docs_page_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [
        str(page.relative_to(ROOT / "docs"))
        for page in sorted((ROOT / "docs").rglob("*.md"))
        if str(page.relative_to(ROOT / "docs")) not in nav
    ]
    assert [] == missing
