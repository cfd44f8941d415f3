"""Suppressions: `# runaway-guard: ignore[RG00N] reason`, and what RG011 says about them."""

from __future__ import annotations

from runaway_guard.lint import LintConfig, check_source

LOOP = """\
from openai import OpenAI
client = OpenAI(max_retries=0)
# cost contract: unit cost $0.002 per call, max calls per run: 80, max $ per run: $0.16,
# provider cap: OpenAI org usage limit $25/month
while True:{comment}
    client.embeddings.create(model="m", input="x")
"""


def findings(source: str) -> list[tuple[int, str, str]]:
    return [(item.line, item.rule, item.message) for item in check_source(source, "x.py")]


def rules(source: str) -> list[tuple[int, str]]:
    return [(line, rule) for line, rule, _ in findings(source)]


def test_a_trailing_suppression_with_a_reason_silences_its_line() -> None:
    comment = "  # runaway-guard: ignore[RG001] consumer loop, one call per capped message"
    assert [] == rules(LOOP.format(comment=comment))


def test_a_suppression_on_its_own_line_silences_the_next_line() -> None:
    source = LOOP.format(comment="").replace(
        "while True:", "# runaway-guard: ignore[RG001] consumer loop, capped queue\nwhile True:"
    )
    assert [] == rules(source)


def test_a_suppression_silences_only_the_rules_it_names() -> None:
    comment = "  # runaway-guard: ignore[RG009] not an LLM call"
    assert [(5, "RG001")] == rules(LOOP.format(comment=comment))


def test_a_suppression_does_not_reach_other_lines() -> None:
    source = LOOP.format(comment="") + "x = 1  # runaway-guard: ignore[RG001] wrong line\n"
    assert [(5, "RG001")] == rules(source)


def test_rule_names_work_in_suppressions() -> None:
    comment = "  # runaway-guard: ignore[unbounded-loop] consumer loop"
    assert [] == rules(LOOP.format(comment=comment))


def test_a_suppression_without_a_reason_is_reported_where_it_stands() -> None:
    comment = "  # runaway-guard: ignore[RG001]"
    assert [(5, "RG011", "suppression has no reason: say why after the bracket")] == findings(
        LOOP.format(comment=comment)
    )


def test_a_suppression_of_an_unknown_rule_is_reported_and_silences_nothing() -> None:
    comment = "  # runaway-guard: ignore[RG404] typo"
    assert [(5, "RG001"), (5, "RG011")] == rules(LOOP.format(comment=comment))


def test_a_suppression_naming_no_rule_is_reported_and_silences_nothing() -> None:
    comment = "  # runaway-guard: ignore this loop please"
    assert [(5, "RG001"), (5, "RG011")] == rules(LOOP.format(comment=comment))


def test_the_rg011_column_points_at_the_comment() -> None:
    comment = "  # runaway-guard: ignore[RG001]"
    assert [14] == [item.column for item in check_source(LOOP.format(comment=comment))]


def test_a_file_level_suppression_silences_a_rule_everywhere() -> None:
    source = "# runaway-guard: ignore-file[RG001] fixture of loops\n" + LOOP.format(comment="")
    assert [] == rules(source)


def test_text_that_looks_like_a_suppression_inside_a_string_is_ignored() -> None:
    source = LOOP.format(comment="") + 'NOTE = "# runaway-guard: ignore[RG001]"\n'
    assert [(5, "RG001")] == rules(source)


def test_rg011_can_itself_be_ignored() -> None:
    source = "# runaway-guard: ignore[RG001]\nx = 1\n"
    assert ([(1, "RG011")], []) == (
        rules(source),
        [(i.line, i.rule) for i in check_source(source, "x.py", _without("RG011"))],
    )


def _without(rule: str) -> LintConfig:
    return LintConfig().with_rules(None, [rule])
