"""The corpus: bad and good snippets, each with its exact findings (file, line, rule)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from runaway_guard.lint import RULES, check_source, load_config

CORPUS = Path(__file__).parent / "corpus"
CLEAN_MARKS = ("_good", "_fixed", "near_misses", "file_level_suppression")


def corpus_files() -> list[str]:
    return sorted(path.name for path in CORPUS.glob("*.py.txt"))


def expected() -> dict[str, list[tuple[int, str]]]:
    table: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for raw in (CORPUS / "expected.txt").read_text(encoding="utf-8").splitlines():
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        where, rule = entry.split(": ")
        name, line = where.rsplit(":", 1)
        table[name].append((int(line), rule))
    return table


def actual(name: str) -> list[tuple[int, str]]:
    config = load_config(CORPUS / "pyproject.toml")
    source = (CORPUS / name).read_text(encoding="utf-8")
    return [(finding.line, finding.rule) for finding in check_source(source, name, config)]


@pytest.mark.parametrize("name", corpus_files())
def test_corpus_file_has_exactly_its_expected_findings(name: str) -> None:
    assert sorted(expected().get(name, [])) == actual(name)


def test_every_rule_is_caught_somewhere_in_the_corpus() -> None:
    caught = {rule for entries in expected().values() for _, rule in entries}
    assert set(RULES) == caught


def test_every_rule_has_a_bad_and_a_good_snippet() -> None:
    names = set(corpus_files())
    for rule in RULES:
        number = rule.lower()
        if rule == "RG011":
            assert f"{number}_suppressions.py.txt" in names
            continue
        assert {f"{number}_bad.py.txt", f"{number}_good.py.txt"} <= names


def test_expected_findings_name_only_corpus_files() -> None:
    assert set(expected()) <= set(corpus_files())


@pytest.mark.parametrize("name", [name for name in corpus_files() if name.endswith(".py.txt")])
def test_clean_snippets_expect_no_findings(name: str) -> None:
    if any(mark in name for mark in CLEAN_MARKS):
        assert [] == expected().get(name, [])


def test_the_protocol_and_incident_examples_are_in_the_corpus() -> None:
    names = set(corpus_files())
    for stem in ("protocol_job_loop", "protocol_campaign", "incident_overnight_retry"):
        assert {f"{stem}_bad.py.txt", f"{stem}_fixed.py.txt"} <= names
    assert {"incident_agent_loop_bad.py.txt", "incident_agent_loop_fixed.py.txt"} <= names
