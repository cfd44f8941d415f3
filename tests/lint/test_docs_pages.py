"""Every rule has a page, and the page's examples do what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runaway_guard.lint import RULES, Rule, check_source

DOCS = Path(__file__).resolve().parents[2] / "docs"
SECTIONS = ("## What it catches", "## Why it matters", "## How to fix it", "## Flagged", "## Fixed")


def section_code(page: str, heading: str) -> str:
    """The first ```py block after a heading."""
    after = page.split(f"\n{heading}\n", 1)[1]
    match = re.search(r"^```py\n(.*?)^```", after, re.MULTILINE | re.DOTALL)
    assert match is not None, f"no ```py block after {heading}"
    return match.group(1)


def page(rule: Rule) -> str:
    return (DOCS / rule.docs).read_text(encoding="utf-8")


@pytest.mark.parametrize("rule", RULES.values(), ids=list(RULES))
def test_each_rule_page_names_its_stable_id_and_name(rule: Rule) -> None:
    text = page(rule)
    assert text.startswith(f"# {rule.id} {rule.name}\n")
    assert f"- **Id:** `{rule.id}`" in text
    assert f"- **Name:** `{rule.name}`" in text


@pytest.mark.parametrize("rule", RULES.values(), ids=list(RULES))
def test_each_rule_page_says_what_why_and_the_fix(rule: Rule) -> None:
    text = page(rule)
    assert [True] * len(SECTIONS) == [f"\n{heading}\n" in text for heading in SECTIONS]


@pytest.mark.parametrize("rule", RULES.values(), ids=list(RULES))
def test_the_flagged_example_is_flagged_by_its_rule(rule: Rule) -> None:
    code = section_code(page(rule), "## Flagged")
    assert rule.id in {finding.rule for finding in check_source(code, f"{rule.id}.py")}


@pytest.mark.parametrize("rule", RULES.values(), ids=list(RULES))
def test_the_fixed_example_has_no_findings_at_all(rule: Rule) -> None:
    code = section_code(page(rule), "## Fixed")
    assert [] == check_source(code, f"{rule.id}.py")


def test_the_index_links_every_rule_page() -> None:
    index = (DOCS / "lint" / "index.md").read_text(encoding="utf-8")
    assert [f"[{rule}]({rule}.md)" in index for rule in RULES] == [True] * len(RULES)


def test_the_docs_home_links_the_lint_page() -> None:
    assert "(lint/index.md)" in (DOCS / "index.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("rule", RULES.values(), ids=list(RULES))
def test_the_page_quotes_the_message_its_flagged_example_gets(rule: Rule) -> None:
    text = page(rule)
    quoted = text.split("- **Message** (for the flagged example below):\n\n  > ", 1)[1]
    code = section_code(text, "## Flagged")
    messages = [f.message for f in check_source(code, f"{rule.id}.py") if f.rule == rule.id]
    assert messages[0] == quoted.split("\n", 1)[0]
